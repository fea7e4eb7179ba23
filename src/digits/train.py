"""Training: fit a registered model on a verified dataset and write a run directory atomically.

`train(config)` returns a `runs.Run` (the run path, the history, the test metrics) and
prints nothing itself; the CLI passes Keras's progress bar level and extra callbacks. The
run is built in a hidden `.partial-<fingerprint>` directory beside the target and renamed
into place only when complete, so a reader never sees half a run. While training, Keras's
`BackupAndRestore` keeps the last finished epoch there: running the same command again after
a kill continues from that epoch instead of starting over. A finished run holds the Keras
model and its portable copies (`export.save_model`: ONNX, LiteRT), so reading it needs no
TensorFlow and never converts anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import runtime

runtime.load()  # TensorFlow quietly, before Keras imports it

import keras  # noqa: E402
import numpy as np  # noqa: E402

from . import calibration, data, evaluate, export, files, models, plots, runs  # noqa: E402
from . import distribute as distribute_module  # noqa: E402
from .config import AUGMENTATIONS, Config  # noqa: E402
from .images import to_model_input  # noqa: E402

TrainResult = runs.Run  # the run path, history, test metrics and the epoch it resumed from
KEPT_ON_REFIT = ("soft_above", "soft_above_chosen")  # a new fit of the temperature and threshold keeps these: they
# are chosen on the model's readings of soft pictures (scripts/tune_soft.py), not by the fit


def default_run_name(config: Config) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{config.model}-{config.dataset}-{stamp}"


def partial_dir_for(config: Config, runs_dir: Path, out: Path | None) -> Path:
    """The work-in-progress directory: the same command (config and --out) finds the same one."""
    return runs.partial_dir(runs_dir, f"{config.fingerprint()}|{out.resolve() if out else ''}")


LOCK_FILE = "train.lock"  # in the work-in-progress directory: one `digits train` at a time builds a run


@contextlib.contextmanager
def exclusive(partial: Path, run_dir: Path):
    """Hold an OS lock on `partial` while training into it (released when the process ends, even killed);
    a second `digits train` for the same run is refused at once with one line naming the first."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    stream = open(partial / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.seek(0)
            holder = stream.read().strip() or "another process"
            raise ValueError(f"another `digits train` ({holder}) is already training into {partial} for --out "
                             f"{run_dir}; wait for it to finish, or stop it and run this command again to resume "
                             "its work, or choose another --out") from None
        stream.seek(0)
        stream.truncate()
        stream.write(f"pid {os.getpid()} on {socket.gethostname()}, started "
                     f"{datetime.now().isoformat(timespec='seconds')}")
        stream.flush()
        yield
    finally:
        stream.close()


def check_backup(backup: Path) -> None:
    """Keep only a backup Keras can resume from: a kill while it wrote `training_metadata.json` leaves half a
    JSON file (Keras would stop on it), so the previous state (`double_checkpoint`) is put back, else it is
    dropped and training starts over. (A half-written weights file Keras itself replaces by the previous one.)"""
    metadata, weights = backup / "training_metadata.json", backup / "latest.weights.h5"

    def whole(path: Path) -> bool:
        try:
            return isinstance(json.loads(path.read_text()).get("epoch"), int)
        except (OSError, ValueError, AttributeError):
            return False

    if not metadata.exists() or whole(metadata):
        return
    previous = Path(f"{metadata}.bkp")
    if whole(previous) and Path(f"{weights}.bkp").is_file():
        shutil.copyfile(f"{weights}.bkp", weights)
        shutil.copyfile(previous, metadata)
    else:
        shutil.rmtree(backup, ignore_errors=True)


def seed_everything(seed: int) -> None:
    """Same seed -> same model on CPU: seed Python/NumPy/TF and make TF's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _epoch_timer():
    """A callback that adds `epoch_seconds` to each epoch's logs (so history and CSV keep it)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = time.perf_counter() - self.started

    return EpochTimer()


def read_history_csv(path: Path) -> dict[str, list[float]]:
    """Per-epoch history from Keras's CSVLogger file; a re-run epoch keeps its last row."""
    if not path.is_file():
        return {}
    lines = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    header, rows = lines[0], {}
    for values in lines[1:]:
        if len(values) == len(header) and values[0] != "epoch":
            rows[int(values[0])] = [float(value) for value in values]
    ordered = [rows[epoch] for epoch in sorted(rows)]
    return {name: [row[index] for row in ordered] for index, name in enumerate(header) if name != "epoch"}


VALIDATION_NON_DIGITS = 1000  # generated non-digits held out from Outlier Exposure to report rejection


def non_digit_images(config: Config, x_train, x_val, progress=None):
    """(training, validation) non-digits as model inputs for Outlier Exposure; (None, None) when off, and no
    training ones when `x_train` is None.

    config.outlier_families share them evenly: digits.synthetic's generated families, "pairs" of two digits side
    by side, and "intruders" (the drawn non-digits cut out of numbers they touch), from the training split for
    training and the validation split for validation. `progress(what, done, total)` hears of drawing intruders."""
    if not config.outlier_exposure:
        return None, None
    from . import synthetic

    drawn = [family for family in config.outlier_families if family not in ("pairs", "intruders")]
    counts = (config.outlier_images, VALIDATION_NON_DIGITS)
    paired, intruded = ([count // len(config.outlier_families) if family in config.outlier_families else 0
                         for count in counts] for family in ("pairs", "intruders"))
    pictures = synthetic.non_digits(sum(counts) - sum(paired) - sum(intruded), seed=config.seed,
                                    families=tuple(drawn)) if drawn else np.zeros((0, 28, 28), np.uint8)
    alone = (pictures[:counts[0] - paired[0] - intruded[0]], pictures[counts[0] - paired[0] - intruded[0]:])
    told = None if progress is None else (lambda done, total: progress("drawing non-digits in numbers", done, total))

    def cut(digits, count: int, seed: int, others) -> np.ndarray:
        return synthetic.intruders(digits, others, count, seed, progress=told) if count \
            else np.zeros((0, 28, 28), np.uint8)

    training = None  # none when only the validation ones are asked for (recalibrating a trained run)
    if x_train is not None:
        training = np.concatenate([alone[0], synthetic.pairs(x_train, paired[0], config.seed),
                                   cut(x_train, intruded[0], config.seed, alone[0])])
        if paired[0] or intruded[0]:  # mixed through (without either, the order is non_digits' own, as before)
            training = training[np.random.default_rng([config.seed, 2]).permutation(len(training))]
        training = to_model_input(training)
    validation = np.concatenate([alone[1], synthetic.pairs(x_val, paired[1], config.seed + 1),
                                 cut(x_val, intruded[1], config.seed + 1, alone[1])])
    return training, to_model_input(validation)


def with_drawn_digits(config: Config, x_train, y_train, progress=None):
    """The training split with digits drawn from its own digits appended, seeded by the run's seed:
    config.touching_pieces digits cut out of touching numbers (digits.synthetic.touching_pieces), then
    config.digit_photos photos prepared as the reader prepares a picture (digits.synthetic.digit_photos), then
    config.printed_digits digits printed in fonts (digits.synthetic.printed_digits, drawn from no digit of the
    split; config.printed_pen_share of them a 1 or a 7 drawn by pen); as given when all are 0.
    `progress(what, done, total)` hears of each drawing. The validation split stays MNIST's own digits, so
    validation accuracy means what it always did."""
    if not (config.touching_pieces or config.digit_photos or config.printed_digits):
        return x_train, y_train
    from . import synthetic

    def printed(_digits, _labels, count, seed, progress=None):
        return synthetic.printed_digits(count, seed, progress=progress, pen_share=config.printed_pen_share)

    parts = [(x_train, y_train)]
    for count, draw, what in ((config.touching_pieces, synthetic.touching_pieces, "drawing touching pieces"),
                              (config.digit_photos, synthetic.digit_photos, "drawing digit photos"),
                              (config.printed_digits, printed, "drawing printed digits")):
        if count:
            told = None if progress is None else (lambda done, total, what=what: progress(what, done, total))
            drawn, labels = draw(x_train, y_train, count, seed=config.seed, progress=told)
            parts.append((to_model_input(drawn), labels.astype(y_train.dtype)))
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


@keras.saving.register_keras_serializable(package="digits")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from peak/25 to `peak` over `warmup_steps`, then cosine decay to 0."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        warm = self.peak * (0.04 + 0.96 * step / max(1, self.warmup_steps))
        progress = ops.minimum(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        decayed = self.peak * 0.5 * (1.0 + ops.cos(np.pi * progress))
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def compile_model(model, config: Config, steps_per_epoch: int, one_hot: bool) -> None:
    """Optimizer (Adam, or AdamW with weight decay), learning-rate schedule, loss and accuracy."""
    total = config.epochs * steps_per_epoch
    rate = {"constant": config.learning_rate,
            "one_cycle": OneCycle(config.learning_rate, total, int(total * config.warmup_fraction)),
            "cosine": OneCycle(config.learning_rate, total, 0)}[config.schedule]
    optimizer = (keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay)
                 if config.weight_decay else keras.optimizers.Adam(learning_rate=rate))
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing) if one_hot
            else keras.losses.SparseCategoricalCrossentropy())
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


class KeepBest(keras.callbacks.Callback):
    """Save the weights of the best epoch by validation accuracy; survives a resume via best.json."""

    def __init__(self, directory: Path):
        super().__init__()
        self.weights, self.record = directory / "best.weights.h5", directory / "best.json"
        self.best = json.loads(self.record.read_text())["val_accuracy"] if self.record.is_file() else -1.0

    def on_epoch_end(self, epoch, logs=None):
        score = (logs or {}).get("val_accuracy", -1.0)
        if score > self.best:
            self.best = score
            with files.atomic_path(self.weights) as temporary:
                self.model.save_weights(temporary)
            files.write_json(self.record, {"val_accuracy": score, "epoch": epoch + 1})

    def restore(self) -> int | None:
        """Load the best weights into the model; returns their epoch (1-based)."""
        if not self.record.is_file():
            return None
        self.model.load_weights(self.weights)
        return json.loads(self.record.read_text())["epoch"]


def fit_calibration(model, reject_rate: float, dataset, x_val, y_val, outliers_val=None) -> tuple[dict, dict]:
    """(calibration, test metrics) of a trained float32 `model`: the temperature and the not-a-digit threshold
    fitted on the validation split (`calibration.fit`; by the energy of the logits, which every model of
    digits.models gives), then the test set read with that temperature."""
    from .backends import in_batches, keras_logits

    logits = keras_logits(model)
    fitted = calibration.fit(models.predict_batches(model, x_val), y_val, reject_rate,
                             None if outliers_val is None else models.predict_batches(model, outliers_val),
                             None if logits is None else in_batches(logits, x_val),
                             None if logits is None or outliers_val is None else in_batches(logits, outliers_val))
    probabilities = models.predict_batches(model, to_model_input(dataset.x_test))
    test = evaluate.evaluate(calibration.apply_temperature(probabilities, fitted["temperature"]), dataset.y_test,
                             dataset.class_names)
    return fitted, test


def recalibrate(run: str | Path, reject_rate: float, data_dir=None) -> dict:
    """Move a trained run's operating point without training again: fit its temperature and not-a-digit threshold
    again on its own validation split, refusing at most `reject_rate` of those digits, and store them (metrics.json,
    then config.json's reject_rate), each file replaced whole. The run then holds exactly what training its recipe
    with this reject_rate writes: training uses reject_rate for nothing else. Returns {"before", "after"}: the
    calibration it had and the one it has now."""
    from . import backends, config as config_module

    info = runs.load_info(runs.check_run(run))
    if info.config.get("model") == "ensemble":
        raise ValueError(f"{info.run_dir} is an ensemble; set reject_rate in its members' recipe and run "
                         "`digits ensemble` again")
    recipe = config_module.from_dict({"reject_rate": reject_rate}, config_module.from_run(info.config))
    dataset, _, _, x_val, y_val = data.training_arrays(recipe, data_dir)
    trained_on = (info.metrics.get("dataset") or {}).get("checksum")
    if trained_on and dataset.checksum != trained_on:
        raise ValueError(f"the {dataset.name} files found ({dataset.source}) differ from those {info.run_dir} was "
                         "trained on; point --data-dir at the original files")
    model = backends.load("keras", info.run_dir / "model.keras").model
    _, outliers_val = non_digit_images(recipe, None, x_val)
    fitted, test = fit_calibration(model, recipe.reject_rate, dataset, x_val, y_val, outliers_val)
    if fitted["score"] == "energy" and "onnx" in info.files:  # a run written before ONNX copies gave logits
        export.add_logits_output(info.files["onnx"])
    before = info.metrics.get("calibration")
    fitted.update({key: value for key, value in (before or {}).items() if key in KEPT_ON_REFIT})
    metrics = {**info.metrics, "test_loss": test["loss"], "test_ece": test.get("ece"), "calibration": fitted,
               "recalibrated": {"from_reject_rate": (before or {}).get("reject_rate"),
                                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    files.write_json(info.run_dir / "metrics.json", metrics)
    files.write_json(info.run_dir / "config.json", {**info.config, "reject_rate": recipe.reject_rate})
    return {"before": before, "after": fitted}


def augmentation(config: Config) -> dict:
    """The recipe's augmentation settings, as keyword arguments of `digits.augment.batch`."""
    return {name: getattr(config, f"augment_{name}") for name in AUGMENTATIONS}


def train(config: Config, out: str | Path | None = None, runs_dir: str | Path = "runs", data_dir=None,
          verbose: int | str = "auto", callbacks: tuple = (),
          download_progress: Callable[[str, int, int], None] | None = None,
          distribute: str | None = None, tensorboard: bool = True) -> TrainResult:
    """Train `config` and write its run directory; returns the run path, history and test metrics.

    With `distribute`, the model is built under a tf.distribute strategy and `batch_size` is
    the global batch; in a multi-worker cluster only the chief writes the run directory (the
    other workers write theirs aside and delete it, as every worker must save). `tensorboard`
    writes TensorBoard logs into RUN/tensorboard/ (per-epoch scalars, the learning rate included).
    `download_progress(name, done, total)` follows the downloads, and the drawing of generated training
    pictures (a name starting with "drawing ", counted in pictures).
    """
    config.validate()
    data.get_spec(config.dataset)  # unknown names fail before any work
    if config.model not in models.MODELS:
        models.create_model(config.model)
    strategy = distribute_module.make_strategy(distribute)  # first TensorFlow work: collectives must start clean
    worker = distribute_module.worker_index(strategy)
    runs_dir = Path(runs_dir)
    out = Path(out) if out is not None else None
    run_dir = out or runs_dir / default_run_name(config)
    if worker:
        run_dir = Path(tempfile.mkdtemp(prefix=f"digits-worker{worker}-")) / "run"
    elif run_dir.exists():
        raise ValueError(f"run directory {run_dir} already exists; choose another --out or remove it first")
    partial = partial_dir_for(config, out.parent if out else runs_dir, out)
    if worker:
        partial = partial.with_name(f"{partial.name}-worker{worker}")  # each worker keeps its own backup
    partial.mkdir(parents=True, exist_ok=True)
    with exclusive(partial, run_dir):
        if run_dir.exists() and not worker:  # the run that held the lock a moment ago finished it
            raise ValueError(f"run directory {run_dir} already exists; choose another --out or remove it first")
        files.remove_temporaries(partial)  # a killed run's half-written files: never part of the run
        files.write_json(partial / "config.json", config.to_dict())

        dataset, x_train, y_train, x_val, y_val = data.training_arrays(config, data_dir, download_progress)
        x_train, y_train = with_drawn_digits(config, x_train, y_train, download_progress)
        seed_everything(config.seed)
        classes = len(dataset.class_names)
        policy = distribute_module.set_precision(config.precision)
        one_hot = classes if config.label_smoothing or config.outlier_exposure else None
        outliers, outliers_val = non_digit_images(config, x_train, x_val, download_progress)
        try:
            with strategy.scope() if strategy else contextlib.nullcontext():
                model = models.create_model(config.model, input_shape=x_train.shape[1:], num_classes=classes,
                                            **config.model_args)
                compile_model(model, config, -(-len(x_train) // config.batch_size), one_hot=bool(one_hot))
        finally:
            keras.mixed_precision.set_global_policy("float32")  # layers keep the policy they were built with

        history_csv = partial / "history.csv"
        # The backup is kept after fit (commit removes it with the partial directory): a run killed while saving
        # its results resumes from its last epoch instead of training again from scratch.
        check_backup(partial / "backup")
        backup = keras.callbacks.BackupAndRestore(str(partial / "backup"), double_checkpoint=True,
                                                  delete_checkpoint=False)
        keep_best = KeepBest(partial)
        train_data = data.make_tf_dataset(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed,
                                          augment=augmentation(config), num_classes=one_hot, outliers=outliers,
                                          outlier_share=config.outlier_exposure)
        val_data = data.make_tf_dataset(x_val, y_val, 1024, num_classes=one_hot)
        if distribute == "multi-worker":
            distribute_module.multi_worker_workarounds(model, strategy, train_data)
        fit = model.fit(train_data, validation_data=val_data, epochs=config.epochs, verbose=verbose, shuffle=False,
                        callbacks=[_epoch_timer(), *([keep_best] if config.keep_best else []), backup,
                                   keras.callbacks.CSVLogger(str(history_csv), append=True),
                                   *([keras.callbacks.TensorBoard(str(partial / "tensorboard"), write_graph=False,
                                                                  profile_batch=0)] if tensorboard else []),
                                   *callbacks])
        # The truth, whatever files a killed run left: the first epoch this fit trained (the backup it restored).
        done_before = fit.epoch[0] if fit.epoch else config.epochs
        best_epoch = keep_best.restore() if config.keep_best else None

        history = read_history_csv(history_csv)
        if policy != "float32":  # save (and so serve) a float32 copy: same weights, runs on any CPU
            trained, model = model, models.create_model(config.model, input_shape=x_train.shape[1:],
                                                        num_classes=classes, **config.model_args)
            model.set_weights(trained.get_weights())
        fitted, test = fit_calibration(model, config.reject_rate, dataset, x_val, y_val, outliers_val)
        metrics = {
            "test_loss": test["loss"], "test_accuracy": test["accuracy"], "test_ece": test.get("ece"),
            "calibration": fitted,
            "best_val_accuracy": max(history.get("val_accuracy", [float("nan")])), "kept_epoch": best_epoch,
            "epochs": len(history.get("loss", [])), "resumed_from_epoch": done_before,
            "training_seconds": float(sum(history.get("epoch_seconds", []))),
            "train_images": len(x_train), "validation_images": len(x_val), "test_images": len(dataset.x_test),
            "input_shape": list(x_train.shape[1:]), "precision": policy, "distribute": distribute,
            "replicas": strategy.num_replicas_in_sync if strategy else 1,
            "dataset": {"name": dataset.name, "checksum": dataset.checksum, "files": dataset.sha256,
                        "class_names": list(dataset.class_names)},
            "versions": distribute_module.environment(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        metrics["model_files"] = sorted(export.save_model(model, partial))
        if history:
            plots.training_curves(history, partial / "training_curves.png")
        (partial / LOCK_FILE).unlink(missing_ok=True)  # held until the rename below; never part of the run
        result = runs.commit(partial, run_dir, history, metrics, done_before)
    if worker:  # not the chief: its copy was only written because saving is collective
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    return result
