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


class Predictor:
    """A run's model, loaded once and warmed; `predict_proba` is safe to call from many threads."""

    def __init__(self, run_dir: str | Path):
        from . import runtime  # noqa: F401  (quiet TensorFlow import)
        import keras

        self.info = load_info(run_dir)
        path = self.info.run_dir / "model.keras"
        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as error:  # Keras raises many types for a damaged zip / foreign file
            raise ValueError(f"{path} is not a readable Keras model ({type(error).__name__}: "
                             f"{str(error).splitlines()[0][:200]}); re-train the run") from None
        self.input_shape = tuple(self.model.input_shape[1:])
        if self.input_shape not in ((28, 28, 1), (28, 28)):
            raise ValueError(f"{path} expects inputs of shape {self.input_shape}, not 28x28 images; "
                             "this is not a digits model")
        self.num_classes = int(self.model.output_shape[-1])
        self._lock = threading.Lock()
        self.predict_proba(np.zeros((1, 28, 28), np.float32))  # warm: build the graph before first use

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
        return data.to_model_input(images).reshape((-1, *self.input_shape))

    def predict_proba(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """(N, num_classes) float32 probabilities."""
        batch = self.prepare(images)
        outputs = []
        with self._lock:
            for start in range(0, len(batch), batch_size):
                outputs.append(np.asarray(self.model(batch[start:start + batch_size], training=False)))
        return np.concatenate(outputs) if outputs else np.zeros((0, self.num_classes), np.float32)
