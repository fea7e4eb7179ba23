"""Plots: training curves, prediction grids, confusion matrices, reliability diagrams and mistake galleries.

Figures are built as `matplotlib.figure.Figure` objects directly, never through pyplot's
global state, so they draw headless and from any thread whatever backend the CLI chose
(this module never calls `matplotlib.use`). Functions that take a `path` save atomically
(a temp file next to the target, then `os.replace`) and return the path; the others return
the Figure, which a caller saves with `save_figure` or shows with `pyplot.figure(figure)`
followed by `pyplot.show()`. Images may be (N, H, W) or (N, H, W, 1), uint8 0..255 or
float 0..1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import files

DPI = 120
MISTAKE_COLOR = "red"
CORRECT_COLOR = "black"
BIN_KEYS = ("low", "high", "count", "confidence", "accuracy")  # one bin of calibration.reliability
CURVES = {  # panel -> (history key, legend label), train first
    "loss": (("loss", "train"), ("val_loss", "validation")),
    "accuracy": (("accuracy", "train"), ("val_accuracy", "validation")),
}


def save_figure(figure: Figure, path: Path) -> Path:
    """Save figure to path atomically (temporary file with the same suffix, then rename)."""
    with files.atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=DPI, bbox_inches="tight")
    return Path(path)


def training_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Plot loss and accuracy per epoch (train and validation where present) and save to path."""
    known_keys = [key for lines in CURVES.values() for key, _ in lines]
    if not history or not any(len(history.get(key) or []) for key in known_keys):
        raise ValueError(
            f"history has nothing to plot, got keys {sorted(history or {})}; pass "
            f"model.fit(...).history with at least one of {known_keys}"
        )
    figure = Figure(figsize=(11, 4))
    for axes, (panel, lines) in zip(figure.subplots(1, 2), CURVES.items()):
        plotted = False
        for key, label in lines:
            values = history.get(key) or []
            if len(values):
                epochs = np.arange(1, len(values) + 1)
                axes.plot(epochs, values, marker="o", markersize=3, label=label)
                plotted = True
        if plotted:
            axes.legend()
        else:
            axes.text(0.5, 0.5, f"no {panel} recorded", ha="center", va="center",
                      transform=axes.transAxes)
        axes.set_title(f"{panel} per epoch")
        axes.set_xlabel("epoch")
        axes.set_ylabel(panel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
    return save_figure(figure, path)


def _as_images(images: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ((N, H, W) images, vmax): 255 for integer pixels, 1.0 for floats."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(
            f"images must have shape (N, 28, 28) or (N, 28, 28, 1), got {images.shape}; "
            f"pass a batch of single-channel images"
        )
    return images, 255.0 if np.issubdtype(images.dtype, np.integer) else 1.0


def _label(index: int, class_names: Sequence[str] | None) -> str:
    return str(class_names[index]) if class_names is not None else str(index)


def _grid_shape(count: int, columns: int) -> tuple[int, int]:
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}; try columns=8")
    columns = min(int(columns), count)
    return math.ceil(count / columns), columns


def prediction_grid(images: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                    true: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                    columns: int = 8) -> Figure:
    """Grid of images titled "pred 7 (99.1%)" (plus "true 7"); mistakes get a red title and frame.

    predicted: (N,) class indices; confidence: (N,) probability of the predicted class;
    true: optional (N,) class indices. Returns the Figure.
    """
    images, vmax = _as_images(images)
    count = len(images)
    predicted = np.asarray(predicted).astype(np.int64).reshape(-1)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    if count == 0:
        raise ValueError("images is empty, got shape (0, ...); pass at least one image to draw")
    arrays = {"predicted": predicted, "confidence": confidence}
    if true is not None:
        true = np.asarray(true).astype(np.int64).reshape(-1)
        arrays["true"] = true
    for name, values in arrays.items():
        if len(values) != count:
            raise ValueError(
                f"{name} must have shape (N,) = ({count},) to match images of shape "
                f"{images.shape}, got ({len(values)},); pass one value per image"
            )
    rows, columns = _grid_shape(count, columns)
    figure = Figure(figsize=(1.5 * columns, 1.8 * rows + (0.4 if true is not None else 0)))
    for index in range(count):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(images[index], cmap="gray", vmin=0.0, vmax=vmax)
        axes.set_xticks([])
        axes.set_yticks([])
        title = f"pred {_label(predicted[index], class_names)} ({100 * confidence[index]:.1f}%)"
        is_mistake = true is not None and predicted[index] != true[index]
        if true is not None:
            title += f"\ntrue {_label(true[index], class_names)}"
        color = MISTAKE_COLOR if is_mistake else CORRECT_COLOR
        axes.set_title(title, fontsize=8, color=color)
        for spine in axes.spines.values():
            # A thick red frame makes a mistake stand out; correct images get no frame.
            spine.set_visible(is_mistake)
            if is_mistake:
                spine.set_edgecolor(MISTAKE_COLOR)
                spine.set_linewidth(2.5)
    if true is not None:
        mistakes = int(np.sum(predicted != true))
        figure.suptitle(f"{mistakes} mistake{'s' if mistakes != 1 else ''} out of {count}")
    figure.tight_layout()
    return figure


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Heatmap of a (C, C) confusion matrix (rows true, columns predicted), counts in each cell."""
    matrix = np.asarray(matrix)
    class_names = [str(name) for name in class_names]
    class_count = len(class_names)
    if matrix.shape != (class_count, class_count):
        raise ValueError(
            f"matrix must have shape (C, C) = ({class_count}, {class_count}) for "
            f"{class_count} class names, got {matrix.shape}; pass evaluate(...)['confusion_matrix']"
        )
    size = max(4.0, 0.6 * class_count + 2)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(class_count):
        for column in range(class_count):
            value = matrix[row, column]
            text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
            axes.text(column, row, text, ha="center", va="center", fontsize=8,
                      color="white" if value > threshold else "black")
    axes.set_xticks(range(class_count), class_names)
    axes.set_yticks(range(class_count), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix")
    return figure


def reliability_diagram(reliability: dict, title: str = "Reliability diagram") -> Figure:
    """Accuracy per confidence bin as bars against the diagonal of perfect calibration.

    reliability: digits.calibration.reliability(...) (or evaluate(...)["reliability"]), i.e.
    {"bins": [{"low", "high", "count", "confidence", "accuracy"}, ...], "ece": float}. Bars under
    the diagonal are over-confident bins. Each non-empty bin's sample count is written faintly at
    its foot; the ECE goes in the title.
    """
    bins = reliability.get("bins") if isinstance(reliability, dict) else None
    if not bins or not isinstance(reliability.get("ece"), (int, float, np.floating)) \
            or not all(isinstance(row, dict) and all(key in row for key in BIN_KEYS) for row in bins):
        raise ValueError(
            f"reliability must be {{'bins': [{{{', '.join(repr(key) for key in BIN_KEYS)}}}, ...], 'ece': float}} "
            f"with at least one bin, got {reliability!r:.200}; "
            f"pass digits.calibration.reliability(probabilities, labels)"
        )
    figure = Figure(figsize=(5.5, 5.5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="0.4", linewidth=1, label="perfect calibration")
    filled = [row for row in bins if row["count"]]
    axes.bar([row["low"] for row in filled], [row["accuracy"] for row in filled],
             width=[row["high"] - row["low"] for row in filled], align="edge",
             color="tab:blue", edgecolor="white", alpha=0.85, label="accuracy")
    for row in filled:
        # Rotated so that five-digit counts fit a 1/15-wide bar; faint so the bars stay the message.
        axes.text((row["low"] + row["high"]) / 2, 0.02, f"{row['count']:,}", rotation=90, ha="center",
                  va="bottom", fontsize=7, color="0.35", alpha=0.8)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_aspect("equal")
    axes.set_xlabel("confidence (top-class probability)")
    axes.set_ylabel("accuracy")
    axes.set_title(f"{title} (ECE {reliability['ece']:.4f}, {len(bins)} bins)")
    axes.legend(loc="upper left")
    axes.grid(True, alpha=0.3)
    return figure


def mistakes_figure(images: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                    true: np.ndarray, class_names: Sequence[str] | None, columns: int = 8) -> Figure:
    """Gallery of wrongly predicted images, in the order given; says "no mistakes" when none.

    Pass the images already chosen, e.g. by evaluate.most_confident_mistakes; any correctly
    predicted ones among them are left out.
    """
    title = "Most confidently wrong test images"
    images, _ = _as_images(images)
    predicted = np.asarray(predicted).astype(np.int64).reshape(-1)
    true = np.asarray(true).astype(np.int64).reshape(-1)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    for name, values in {"predicted": predicted, "confidence": confidence, "true": true}.items():
        if len(values) != len(images):
            raise ValueError(
                f"{name} must have shape (N,) = ({len(images)},) to match images of shape "
                f"{images.shape}, got ({len(values)},); pass one value per image"
            )
    wrong = np.flatnonzero(predicted != true)
    if len(wrong) == 0:
        figure = Figure(figsize=(4, 2))
        figure.text(0.5, 0.5, "no mistakes", ha="center", va="center", fontsize=14)
        figure.suptitle(title)
        return figure
    figure = prediction_grid(images[wrong], predicted[wrong], confidence[wrong],
                             true[wrong], class_names, columns)
    figure.suptitle(f"{title} ({len(wrong)} shown)")
    figure.tight_layout()
    return figure


def file_predictions_figure(rows: Sequence[dict]) -> Figure:
    """One row per file: the original picture, the 28x28 input(s) the model saw, the probabilities.

    Each row is {"title": str, "original": (H, W) gray or (H, W, 3) colour 0..1, or None, "inputs": list of (28, 28),
    "probabilities": (C,) or None (a number or a failure shows its title only)}.
    """
    if not rows:
        raise ValueError("no rows to draw; pass at least one file's result")
    figure = Figure(figsize=(9, 2.4 * len(rows)))
    for index, row in enumerate(rows):
        original, inputs, probabilities = row.get("original"), row.get("inputs") or [], row.get("probabilities")
        axes = figure.add_subplot(len(rows), 3, 3 * index + 1)
        axes.set_title(row["title"], fontsize=9, loc="left")
        if original is not None:
            axes.imshow(original, cmap="gray", vmin=0.0, vmax=1.0)
            axes.set_xticks([])
            axes.set_yticks([])
        else:
            axes.axis("off")
        axes = figure.add_subplot(len(rows), 3, 3 * index + 2)
        if inputs:
            axes.imshow(np.concatenate([np.asarray(image) for image in inputs], axis=1), cmap="gray", vmin=0, vmax=1)
            axes.set_title("what the model saw (28x28)", fontsize=8)
            axes.set_xticks([])
            axes.set_yticks([])
        else:
            axes.axis("off")
        axes = figure.add_subplot(len(rows), 3, 3 * index + 3)
        if probabilities is not None:
            probabilities = np.asarray(probabilities)
            axes.bar(range(len(probabilities)), probabilities, color="0.6")
            axes.bar([int(probabilities.argmax())], [float(probabilities.max())], color="tab:blue")
            axes.set_xticks(range(len(probabilities)))
            axes.set_ylim(0, 1)
            axes.set_title("probabilities", fontsize=8)
        else:
            axes.axis("off")
    figure.tight_layout()
    return figure
