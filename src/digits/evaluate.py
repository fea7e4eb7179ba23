"""Evaluation: a metrics dict, a confusion matrix and a per-class report from predictions.

Everything here starts from plain arrays, the class probabilities a model predicted
(shape (N, C)) and the true labels (shape (N,)), so any backend that can produce
probabilities can be scored the same way. The metrics are computed with NumPy (the
calibration error and reliability bins by digits.calibration) and returned as a
JSON-serialisable dict of Python floats, ints and lists; `write_report` stores that dict
next to a confusion matrix, a reliability diagram and a gallery of the most confidently
wrong images. Nothing here prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from . import calibration, files

PROBABILITY_FLOOR = 1e-7  # clip before log so a confident mistake costs ~16, not infinity
CALIBRATION_BINS = 15  # confidence bins for the ECE and the reliability diagram (Guo et al. 2017)


def _safe_divide(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 0.0 when the ratio is undefined (as scikit-learn reports)."""
    return float(numerator / denominator) if denominator else 0.0


def evaluate(probabilities: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict:
    """Score predictions: accuracy, loss, per-class precision/recall/F1, confusion matrix, calibration.

    "ece" is the expected calibration error over 15 confidence bins and "reliability" the
    per-bin numbers behind the diagram (see digits.calibration.reliability).

    probabilities: (N, C) class probabilities; labels: (N,) integer classes;
    class_names: C names, in class-index order. Returns plain Python values only.
    """
    probabilities, labels = calibration.check_predictions(probabilities, labels)
    sample_count, class_count = probabilities.shape
    class_names = [str(name) for name in class_names]
    if len(class_names) != class_count:
        raise ValueError(
            f"class_names must have C = {class_count} entries to match probabilities of shape "
            f"(N, C) = {probabilities.shape}, got {len(class_names)}; pass one name per class"
        )
    predicted = probabilities.argmax(axis=1)
    # confusion[true, predicted]: rows are true classes, columns predicted classes.
    confusion = np.bincount(labels * class_count + predicted, minlength=class_count ** 2)
    confusion = confusion.reshape(class_count, class_count)
    correct = int(np.trace(confusion))
    true_probability = probabilities[np.arange(sample_count), labels]
    loss = float(-np.mean(np.log(np.clip(true_probability, PROBABILITY_FLOOR, 1.0))))

    per_class = []
    for index, name in enumerate(class_names):
        true_positives = int(confusion[index, index])
        predicted_count = int(confusion[:, index].sum())
        support = int(confusion[index, :].sum())
        precision = _safe_divide(true_positives, predicted_count)
        recall = _safe_divide(true_positives, support)
        f1 = _safe_divide(2 * precision * recall, precision + recall)
        per_class.append({"class": name, "precision": precision, "recall": recall,
                          "f1": f1, "support": support})
    macro_avg = {key: float(np.mean([row[key] for row in per_class]))
                 for key in ("precision", "recall", "f1")}
    curve = calibration.reliability(probabilities, labels, bins=CALIBRATION_BINS)
    return {
        "count": int(sample_count),
        "accuracy": correct / sample_count,
        "loss": loss,
        "errors": int(sample_count - correct),
        "per_class": per_class,
        "macro_avg": macro_avg,
        "confusion_matrix": confusion.tolist(),
        "ece": curve["ece"],
        "reliability": curve,
    }


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray,
                            count: int = 25) -> np.ndarray:
    """Indices of wrongly predicted samples, most confident wrong prediction first, at most count."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}; try count=25")
    probabilities, labels = calibration.check_predictions(probabilities, labels)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    # Stable sort so equally confident mistakes keep their dataset order.
    order = np.argsort(-confidence, kind="stable")
    return wrong[order][:count].astype(np.int64)


def write_report(metrics: dict, images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str], out_dir: Path, *, mistake_count: int = 24) -> dict[str, Path]:
    """Write evaluation.json, confusion_matrix.json/.png, reliability.png and mistakes.png into out_dir.

    images: (N, H, W) or (N, H, W, 1), uint8 0..255 or float 0..1, in the same order as
    probabilities (N, C) and labels (N,). Returns the path of each file by name.
    """
    from . import plots  # matplotlib only when a report is drawn, not for metrics

    probabilities, labels = calibration.check_predictions(probabilities, labels)
    images = np.asarray(images)
    if images.ndim not in (3, 4) or images.shape[0] != len(labels):
        raise ValueError(
            f"images must have shape (N, 28, 28) or (N, 28, 28, 1) with N = {len(labels)}, "
            f"got {images.shape}; pass the images the probabilities were predicted from"
        )
    class_names = [str(name) for name in class_names]
    matrix = metrics.get("confusion_matrix")
    if matrix is None:
        matrix = evaluate(probabilities, labels, class_names)["confusion_matrix"]
    curve = metrics.get("reliability")
    if curve is None:  # metrics from before calibration was scored
        curve = calibration.reliability(probabilities, labels, bins=CALIBRATION_BINS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    paths = {
        "evaluation": files.write_json(out_dir / "evaluation.json", metrics),
        "confusion_matrix_json": files.write_json(
            out_dir / "confusion_matrix.json", {"class_names": class_names, "matrix": np.asarray(matrix).tolist()}),
        "confusion_matrix_png": plots.save_figure(
            plots.confusion_matrix_figure(matrix, class_names), out_dir / "confusion_matrix.png"),
        "reliability_png": plots.save_figure(plots.reliability_diagram(curve), out_dir / "reliability.png"),
    }
    worst = most_confident_mistakes(probabilities, labels, count=mistake_count)
    predicted = probabilities.argmax(axis=1)
    gallery = plots.mistakes_figure(images[worst], predicted[worst],
                                    probabilities[worst, predicted[worst]], labels[worst], class_names)
    paths["mistakes_png"] = plots.save_figure(gallery, out_dir / "mistakes.png")
    return paths
