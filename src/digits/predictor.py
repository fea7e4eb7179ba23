"""The Predictor: one model loaded once and warmed, predicting batches from any thread.

`Predictor(source)` takes a run directory or an exported model file (`runs.resolve` turns
a name into one). On a run it loads the portable copies the run holds (ONNX, LiteRT),
never the Keras model unless `backend="keras"` is asked for, so reading digits needs no
TensorFlow; with several copies and no backend named, each is timed at the caller's batch
size and the fastest kept. Loading reads files and writes nothing. A run without any
portable copy (trained before runs held one) loads with Keras if TensorFlow is installed,
and otherwise says how to write one.

`predict_proba(images)` takes (N, 28, 28) or (N, 28, 28, 1), uint8 0..255 or numbers in
0..1 (`images.to_model_input`, the one scaling rule) and returns (N, classes) float32,
calibrated: the temperature fitted on validation data when the run was trained (stored in
its metrics, and in an exported file's sidecar) is applied.

A model trained on soft pictures (far off, enlarged from few pixels, out of focus) may read them as they
are: `soft_above`, stored beside the temperature, is the blur (`images.ink_blur`) above which `reading`
leaves a digit's ink unsharpened and its strokes as drawn (None: never); a piece of a number, above it plus
`multidigit.SOFT_MARGIN`.

The shipped model also carries a sequence model (`digits.sequence`), loaded as `sequence`, which settles
where a number is cut (`digits.multidigit`); `sequence=False` leaves it out, to compare.

`predict_scores(images)` also returns each image's digit score, the number `reject_below` (the
stored not-a-digit threshold; None for a model without one) is compared with, as `score` says:

    energy           the calibrated chance that the picture is a digit at all
                     (`calibration.digit_probability`, from the logits; threshold 0.5 as fitted)
    max_probability  the calibrated top probability (runs fitted before the energy score, ensembles,
                     and a copy that gives no logits, e.g. LiteRT: its stored `max_probability_below`)

With several copies, one that gives the logits the stored score needs is preferred to a faster
one that does not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import backends, calibration, runs
from .images import to_model_input
from .sequence import SequenceReader

logger = logging.getLogger(__name__)


def check_shape(backend, path: Path) -> None:
    """Refuse a loaded backend whose model does not take 28x28 images."""
    if tuple(backend.input_shape) != (28, 28, 1):
        raise ValueError(f"{path} expects inputs of shape {tuple(backend.input_shape)}, not 28x28 images; "
                         "this is not a digits model")


def _warmed(name: str, path: Path, threads: int | None, probe: np.ndarray):
    """Backend `name` loaded from `path`, checked to take 28x28 images, and warmed on `probe` (graphs built,
    tensors allocated); a ValueError where the file is damaged or no digits model."""
    loaded = backends.load(name, path, threads)
    check_shape(loaded, path)
    loaded(probe)
    return loaded


class Predictor:
    """A model loaded once and warmed; `predict_proba` is safe to call from many threads.

    `threads` caps the threads inside one ONNX Runtime or LiteRT call (a server running its own
    threads wants 1); `batch` is the batch size the fastest backend is measured at (a server
    batching requests: the fastest on one image is not always the fastest on 16).
    """

    def __init__(self, source: str | Path, backend: str | None = None, batch: int = 1, threads: int | None = None,
                 sequence: bool = True):
        if backend is not None:
            backends.require(backend)
        self.info = runs.load_info(source)
        # the shipped model's sequence reader settles a number's cuts (digits.sequence); sequence=False: without it
        self.sequence = SequenceReader(self.info.sequence, threads) if sequence and self.info.sequence else None
        candidates = self._candidates(backend)
        probe = np.zeros((max(1, batch), 28, 28, 1), np.float32)
        self.latencies, loaded, self.skipped = {}, {}, {}
        for name, path in candidates.items():
            try:
                loaded[name] = _warmed(name, path, threads, probe)
            except ValueError as error:  # a damaged copy: another backend may still serve the run
                self.skipped[name] = str(error)
                continue
            if len(candidates) > 1:
                self.latencies[name] = backends.latency(loaded[name], probe)
        if not loaded:
            loaded = self._fallback(backend, threads, probe)
        for name, reason in self.skipped.items():
            logger.warning("warning: skipped the %s copy: %s; reading with %s", name, reason, next(iter(loaded)))
        fitted = self.info.metrics.get("calibration") or {}  # fitted on validation data when the run was trained
        timed = self.latencies
        if fitted.get("score") == "energy" and any(getattr(loaded[name], "gives_logits", False) for name in timed):
            timed = {name: seconds for name, seconds in timed.items() if getattr(loaded[name], "gives_logits", False)}
        self.backend = min(timed, key=timed.get) if timed else next(iter(loaded))
        self._run = loaded[self.backend]
        self.input_shape, self.num_classes = self._run.input_shape, self._run.num_classes
        self.model = getattr(self._run, "model", None)  # the keras.Model, on the keras backend
        names = self.info.class_names  # one per output; "0".."9"... if the run names none or too few
        self.class_names = names if len(names) == self.num_classes else [str(i) for i in range(self.num_classes)]
        self.temperature = float(fitted.get("temperature", 1.0))
        # ink blurred by more than this (MNIST pixels) is read as it is (images.to_mnist); chosen for the model on
        # validation digits by scripts/tune_soft.py; None: every picture's strokes are sharpened and re-drawn
        self.soft_above = fitted.get("soft_above")
        self.score, self.reject_below, self.energy_below = "max_probability", fitted.get("reject_below"), None
        if fitted.get("score") == "energy" and getattr(self._run, "gives_logits", False):
            self.score, self.energy_below = "energy", float(fitted["energy_below"])
        elif fitted.get("score") == "energy":  # this copy gives no logits: the top probability at the same rate
            self.reject_below = fitted.get("max_probability_below")

    def _fallback(self, backend: str | None, threads, probe) -> dict:
        """No candidate loaded: the Keras model where every portable copy is damaged and Keras is installed,
        else the first error, as one line."""
        keras_file = self.info.files.get("keras")
        if backend is None and keras_file is not None and "keras" not in self.skipped and backends.installed("keras"):
            try:
                return {"keras": _warmed("keras", keras_file, threads, probe)}
            except ValueError as error:
                self.skipped["keras"] = str(error)
        raise ValueError(next(iter(self.skipped.values())))

    def _candidates(self, backend: str | None) -> dict[str, Path]:
        """backend -> file to load: the one asked for, else every portable copy whose runtime is installed."""
        held, source = self.info.files, self.info.run_dir
        if backend is not None:
            if backend not in held:
                kind = next(iter(held)) if source.is_file() else None
                if kind is not None:
                    raise ValueError(f"{source} is a {kind} model; it cannot run on the {backend} backend")
                raise ValueError(f"run {source} holds no {backend} copy ({runs.PORTABLE[backend]}); write one with "
                                 f"`digits export {source} --format {backend} --out {source / runs.PORTABLE[backend]}`")
            return {backend: held[backend]}
        portable = {name: path for name, path in held.items() if name != "keras"}
        usable = {name: path for name, path in portable.items() if backends.installed(name)}
        if usable:
            return usable
        if "keras" in held and (backends.installed("keras") or not portable):
            return {"keras": held["keras"]}
        missing = sorted(portable)
        raise ValueError(f"{source} holds only {', '.join(missing)} copies, and no runtime for them is installed: "
                         f"pip install '{backends.install_hint(backends.RUNTIMES[missing[0]])}'")

    def predict_proba(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """(N, num_classes) float32 probabilities, calibrated with the run's temperature."""
        return self.predict_scores(images, batch_size)[0]

    def predict_scores(self, images: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """((N, num_classes) calibrated probabilities, (N,) digit scores) in one pass of the model: a digit score
        under `reject_below` means "not a digit" (see the module doc for what the score is)."""
        inputs = to_model_input(images)
        if self.score == "energy":
            logits = backends.in_batches(self._run.logits, inputs, batch_size, self.num_classes)
            return (calibration.softmax(logits, self.temperature),
                    calibration.digit_probability(logits, self.temperature, self.energy_below))
        raw = backends.in_batches(self._run, inputs, batch_size, self.num_classes)
        probabilities = raw if self.temperature == 1.0 else calibration.apply_temperature(raw, self.temperature)
        return probabilities, probabilities.max(1).astype(np.float64)


def check(source: str | Path, backend: str | None = None) -> None:
    """What a server checks once, before starting its workers: the run's recipe and metrics are whole, and a
    backend loads its model (a run read with Keras only has its archive checked, without importing TensorFlow).
    A damaged run is a one-line ValueError."""
    info = runs.load_info(source)
    portable = [name for name in info.files if name != "keras" and backends.installed(name)]
    if backend == "keras" or (backend is None and not portable and "keras" in info.files):
        if backend is not None:
            backends.require(backend)
        _check_keras_archive(info.files["keras"])
        return
    Predictor(source, backend=backend, threads=1)


def _check_keras_archive(path: Path) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names, damaged = archive.namelist(), archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path} is not a readable Keras model ({error}); re-train the run") from None
    if damaged is not None or "config.json" not in names:
        raise ValueError(f"{path} is not a readable Keras model (damaged at {damaged or 'config.json'}); "
                         "re-train the run")
