"""Inference: find a run directory, check it is complete, load its model once, predict batches.

`Predictor` is the one way into a trained model for the CLI (and later the API and
exports): it takes (N, 28, 28) or (N, 28, 28, 1) images, uint8 0..255 or float 0..1, and
returns class probabilities. A missing, half-written or foreign run directory is refused
with a `ValueError` naming the problem and the fix.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data
from .train import RUN_FILES


def runs_root(runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or os.environ.get("DIGITS_RUNS_DIR") or "runs")


def latest_run(runs_dir: str | Path | None = None) -> Path:
    """The most recently finished run under `runs_dir` (work-in-progress directories excluded)."""
    root = runs_root(runs_dir)
    finished = [path.parent for path in root.glob("*/metrics.json") if not path.parent.name.startswith(".")]
    if not finished:
        raise ValueError(f"no trained model found in {root}/; train one first with `python train.py` "
                         "or `digits train`, or name a run directory")
    return max(finished, key=lambda run: (run / "metrics.json").stat().st_mtime)


def check_run(run_dir: str | Path) -> Path:
    """Return `run_dir` if it is a complete run directory, else raise a one-line ValueError."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ValueError(f"run directory {run_dir} does not exist; pass a directory that `digits train` wrote")
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file, not a run directory; pass the directory that holds model.keras")
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ValueError(f"run directory {run_dir} is incomplete (missing {', '.join(missing)}); "
                         "its training did not finish: run the same `digits train` command again to resume it")
    return run_dir


def resolve_run(run: str | Path | None = None, runs_dir: str | Path | None = None) -> Path:
    return check_run(run) if run is not None else latest_run(runs_dir)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is unreadable or not valid JSON ({error}); the run is damaged: re-train it") from None


@dataclass
class RunInfo:
    run_dir: Path
    config: dict
    metrics: dict

    @property
    def class_names(self) -> list[str]:
        return self.metrics.get("dataset", {}).get("class_names") or [str(digit) for digit in range(10)]


def load_info(run_dir: str | Path) -> RunInfo:
    run_dir = check_run(run_dir)
    return RunInfo(run_dir, read_json(run_dir / "config.json"), read_json(run_dir / "metrics.json"))


BACKENDS = ("keras", "onnx", "litert")
SUFFIXES = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert"}
EXTRAS = {"onnx": ("onnxruntime", "digits[onnx]"), "litert": ("ai_edge_litert", "digits[litert]")}


def backend_installed(name: str) -> bool:
    import importlib.util

    return name == "keras" or importlib.util.find_spec(EXTRAS[name][0]) is not None


def _require(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}'; known backends: {', '.join(BACKENDS)}")
    if not backend_installed(name):
        module, extra = EXTRAS[name]
        raise ValueError(f"backend '{name}' needs the {module} package: pip install '{extra}'")


class KerasBackend:
    def __init__(self, path: Path, threads: int | None = None):  # TensorFlow's pools are process-wide
        from . import runtime  # noqa: F401  (quiet TensorFlow import)

        import keras

        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as error:  # Keras raises many types for a damaged zip / foreign file
            raise ValueError(f"{path} is not a readable Keras model ({type(error).__name__}: "
                             f"{str(error).splitlines()[0][:200]}); re-train the run") from None
        self.input_shape, self.num_classes = tuple(self.model.input_shape[1:]), int(self.model.output_shape[-1])
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self.model(batch, training=False), dtype=np.float32)


class OnnxBackend:
    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # Idle intra-op threads spin by default: on a small CPU that burns the cores a server needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = threads or 0  # 0: one per physical core
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(f"{path} is not a readable ONNX model ({str(error).splitlines()[0][:200]})") from None
        signature = self.session.get_inputs()[0]
        self.input_name = signature.name
        self.input_shape = tuple(signature.shape[1:])
        self.num_classes = int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, batch: np.ndarray) -> np.ndarray:  # InferenceSession.run is thread-safe
        return self.session.run(None, {self.input_name: batch})[0]


class LiteRTBackend:
    """One interpreter per thread (an Interpreter is not thread-safe); int8 models quantize I/O."""

    def __init__(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self._local, self._interpreter, self._threads = path, threading.local(), Interpreter, threads
        try:
            interpreter = self._get()
        except Exception as error:  # the interpreter raises ValueError/RuntimeError for foreign files
            raise ValueError(f"{path} is not a readable LiteRT model ({str(error).splitlines()[0][:200]})") from None
        details = interpreter.get_input_details()[0]
        self.input_shape = tuple(int(size) for size in details["shape_signature"][1:])
        self.num_classes = int(interpreter.get_output_details()[0]["shape"][-1])

    def _get(self):
        if getattr(self._local, "interpreter", None) is None:
            from . import runtime

            with runtime.quiet():  # "Created TensorFlow Lite XNNPACK delegate" on every interpreter
                self._local.interpreter = self._interpreter(model_path=str(self.path), num_threads=self._threads)
            self._local.batch = None
        return self._local.interpreter

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        interpreter = self._get()
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        if self._local.batch != len(batch):
            from . import runtime

            with runtime.quiet():  # the XNNPACK delegate announces itself when tensors are allocated
                interpreter.resize_tensor_input(source["index"], [len(batch), *batch.shape[1:]])
                interpreter.allocate_tensors()
            self._local.batch = len(batch)
        if source["dtype"] != np.float32:  # int8 model: quantize with the tensor's scale and zero point
            scale, zero_point = source["quantization"]
            info = np.iinfo(source["dtype"])
            batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(source["dtype"])
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        output = interpreter.get_tensor(target["index"])
        if target["dtype"] != np.float32:
            scale, zero_point = target["quantization"]
            output = (output.astype(np.float32) - zero_point) * scale
        return output


def load_backend(name: str, path: Path, threads: int | None = None):
    """Backend `name` on `path`; `threads` inside one call (None: the runtime's default, every core)."""
    _require(name)
    return {"keras": KerasBackend, "onnx": OnnxBackend, "litert": LiteRTBackend}[name](path, threads)


def exported_info(path: Path) -> RunInfo:
    """What an exported file's sidecar (`FILE.json`, written by `digits export`) says about it."""
    sidecar = path.with_name(path.name + ".json")
    details = read_json(sidecar) if sidecar.is_file() else {}
    return RunInfo(path, details.get("config", {}),
                   {"dataset": details.get("dataset", {"name": "mnist"}), **details})


def latency(function, image: np.ndarray, calls: int = 30) -> float:
    """Median seconds for one call on `image` (a batch)."""
    import time

    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function(image)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


class Predictor:
    """A model loaded once and warmed; `predict_proba` is safe to call from many threads.

    `source` is a run directory or an exported file (.keras, .onnx, .tflite). With a run
    directory and no `backend`, every installed backend is tried and the one with the lowest
    measured latency is kept (`self.backend`, `self.latencies`), for a single image or for `batch`
    images per call (a server batching requests: the fastest on one image is not always the fastest
    on 16); ONNX and LiteRT copies are converted once into RUN/exports/. `threads` caps the threads
    inside one ONNX Runtime or LiteRT call (a server running its own threads wants 1).
    """

    def __init__(self, source: str | Path, backend: str | None = None, batch: int = 1, threads: int | None = None):
        source = Path(source)
        if source.is_file():
            kind = SUFFIXES.get(source.suffix)
            if kind is None:
                raise ValueError(f"{source} is not a model file digits can load; "
                                 f"pass a run directory or a {', '.join(SUFFIXES)} file")
            if backend not in (None, kind):
                raise ValueError(f"{source} is a {kind} model; it cannot run on the {backend} backend")
            self.info, candidates = exported_info(source), {kind: source}
        else:
            self.info = load_info(source)
            names = [backend] if backend else [name for name in BACKENDS if backend_installed(name)]
            candidates = {name: self._model_file(name) for name in names}
        probe = np.zeros((max(1, batch), 28, 28, 1), np.float32)
        self.latencies, backends = {}, {}
        for name, path in candidates.items():
            backends[name] = load_backend(name, path, threads)
            self._check_shape(backends[name], path)
            backends[name](probe)  # warm: build graphs, allocate tensors
            if len(candidates) > 1:
                self.latencies[name] = latency(backends[name], probe)
        self.backend = min(self.latencies, key=self.latencies.get) if self.latencies else next(iter(backends))
        self._run = backends[self.backend]
        self.input_shape, self.num_classes = self._run.input_shape, self._run.num_classes
        self.model = getattr(self._run, "model", None)  # the keras.Model, on the keras backend

    def _model_file(self, backend: str) -> Path:
        _require(backend)
        if backend == "keras":
            return self.info.run_dir / "model.keras"
        from . import export  # converts once, into RUN/exports/ (or a temporary directory if read-only)

        return export.cached(self.info.run_dir, backend)

    @staticmethod
    def _check_shape(backend, path: Path) -> None:
        if tuple(backend.input_shape) not in ((28, 28, 1),):
            raise ValueError(f"{path} expects inputs of shape {tuple(backend.input_shape)}, not 28x28 images; "
                             "this is not a digits model")

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Check a batch and convert it to (N, 28, 28, 1) float32 in 0..1."""
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"expected a batch of shape (N, 28, 28) or (N, 28, 28, 1), got {images.shape}")
        if not (np.issubdtype(images.dtype, np.floating) or images.dtype == np.uint8):
            raise ValueError(f"expected uint8 (0..255) or float (0..1) pixels, got dtype {images.dtype}")
        if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
            raise ValueError("the batch holds NaN or infinite pixels; pass finite values in 0..1")
        return data.to_model_input(images)

    def predict_proba(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """(N, num_classes) float32 probabilities."""
        batch = self.prepare(images)
        outputs = [self._run(batch[start:start + batch_size]) for start in range(0, len(batch), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, self.num_classes), np.float32)
