"""Training: fit a registered model on a verified dataset and write a run directory atomically.

`train(config)` returns a `TrainResult` (the run path, the history, the test metrics) and
prints nothing itself; the CLI passes Keras's progress bar level and extra callbacks. The
run is built in a hidden `.partial-<fingerprint>` directory beside the target and renamed
into place only when complete, so a reader never sees half a run. While training, Keras's
`BackupAndRestore` keeps the last finished epoch there: running the same command again after
a kill continues from that epoch instead of starting over.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, data, files, models, plots  # models imports TensorFlow quietly first
from .config import Config

RUN_FILES = ("model.keras", "config.json", "metrics.json", "history.json")  # what a complete run holds


@dataclass
class TrainResult:
    run_dir: Path
    history: dict[str, list[float]]
    metrics: dict
    resumed_from_epoch: int  # 0 for a fresh run


def default_run_name(config: Config) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{config.model}-{config.dataset}-{stamp}"


def partial_dir_for(config: Config, runs_dir: Path, out: Path | None) -> Path:
    """The work-in-progress directory: the same command (config and --out) finds the same one."""
    key = f"{config.fingerprint()}|{out.resolve() if out else ''}"
    return runs_dir / f".partial-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def seed_everything(seed: int) -> None:
    """Same seed -> same model on CPU: seed Python/NumPy/TF and make TF's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def environment() -> dict:
    import keras
    import tensorflow as tf

    return {
        "digits": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
        "numpy": np.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


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


def prepare_data(config: Config, data_dir=None, progress=None):
    """Load, limit and split the dataset: (dataset, x_train, y_train, x_val, y_val) as model inputs."""
    dataset = data.load_dataset(config.dataset, data_dir=data_dir, progress=progress)
    x, y = dataset.x_train, dataset.y_train
    if config.limit is not None:
        x, y = x[: config.limit], y[: config.limit]
    x_train, y_train, x_val, y_val = data.split_validation(x, y, config.validation_split)
    return dataset, data.to_model_input(x_train), y_train, data.to_model_input(x_val), y_val


def train(config: Config, out: str | Path | None = None, runs_dir: str | Path = "runs", data_dir=None,
          verbose: int | str = "auto", callbacks: tuple = (),
          download_progress: Callable[[str, int, int], None] | None = None) -> TrainResult:
    """Train `config` and write its run directory; returns the run path, history and test metrics."""
    config.validate()
    data.get_spec(config.dataset)  # unknown names fail before any work
    if config.model not in models.MODELS:
        models.create_model(config.model)
    runs_dir = Path(runs_dir)
    out = Path(out) if out is not None else None
    run_dir = out or runs_dir / default_run_name(config)
    if run_dir.exists():
        raise ValueError(f"run directory {run_dir} already exists; choose another --out or remove it first")
    partial = partial_dir_for(config, run_dir.parent, out)
    partial.mkdir(parents=True, exist_ok=True)
    files.write_json(partial / "config.json", config.to_dict())

    import keras

    dataset, x_train, y_train, x_val, y_val = prepare_data(config, data_dir, download_progress)
    seed_everything(config.seed)
    model = models.create_model(config.model, input_shape=x_train.shape[1:],
                                num_classes=len(dataset.class_names), **config.model_args)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    history_csv = partial / "history.csv"
    done_before = len(read_history_csv(history_csv).get("loss", []))
    backup = keras.callbacks.BackupAndRestore(str(partial / "backup"), double_checkpoint=True)
    train_data = data.make_tf_dataset(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed)
    val_data = data.make_tf_dataset(x_val, y_val, 1024)
    model.fit(train_data, validation_data=val_data, epochs=config.epochs, verbose=verbose, shuffle=False,
              callbacks=[_epoch_timer(), backup, keras.callbacks.CSVLogger(str(history_csv), append=True),
                         *callbacks])

    history = read_history_csv(history_csv)
    test_data = data.make_tf_dataset(data.to_model_input(dataset.x_test), dataset.y_test, 1024)
    test_loss, test_accuracy = model.evaluate(test_data, verbose=0)
    metrics = {
        "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
        "best_val_accuracy": max(history.get("val_accuracy", [float("nan")])),
        "epochs": len(history.get("loss", [])), "resumed_from_epoch": done_before,
        "training_seconds": float(sum(history.get("epoch_seconds", []))),
        "train_images": len(x_train), "validation_images": len(x_val), "test_images": len(dataset.x_test),
        "dataset": {"name": dataset.name, "checksum": dataset.checksum, "files": dataset.sha256,
                    "class_names": list(dataset.class_names)},
        "versions": environment(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
    with files.atomic_path(partial / "model.keras") as temporary:
        model.save(temporary)
    files.write_json(partial / "history.json", history)
    plots.training_curves(history, partial / "training_curves.png")
    files.write_json(partial / "metrics.json", metrics)  # last: its presence marks a complete run
    shutil.rmtree(partial / "backup", ignore_errors=True)
    history_csv.unlink(missing_ok=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(partial, run_dir)
    return TrainResult(run_dir=run_dir, history=history, metrics=metrics, resumed_from_epoch=done_before)
