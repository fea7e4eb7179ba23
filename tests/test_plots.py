"""Tests for digits.plots: files are real PNGs, saves are atomic, mistakes are marked red, reliability bars."""

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from digits import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RED = matplotlib.colors.to_rgba("red")


def _check_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert 50 <= pixels.shape[0] <= 5000 and 50 <= pixels.shape[1] <= 5000
    assert pixels.std() > 0
    return pixels


def _is_red(color):
    return matplotlib.colors.to_rgba(color) == RED


def _images(count, shape=(28, 28), dtype=np.uint8):
    images = np.random.default_rng(1).integers(0, 256, size=(count, *shape))
    return images.astype(dtype) if dtype == np.uint8 else (images / 255.0).astype(dtype)


def test_save_figure_is_atomic_and_returns_path(tmp_path):
    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    target = tmp_path / "sub" / "figure.png"
    assert plots.save_figure(figure, target) == target
    _check_png(target)
    assert [path.name for path in target.parent.iterdir()] == ["figure.png"]
    # Overwriting an existing file also goes through a temp file and leaves nothing behind.
    plots.save_figure(figure, target)
    assert [path.name for path in target.parent.iterdir()] == ["figure.png"]


def test_save_figure_failure_leaves_no_temp_file(tmp_path):
    figure = Figure()
    with pytest.raises(ValueError):
        plots.save_figure(figure, tmp_path / "figure.unknownformat")
    assert list(tmp_path.iterdir()) == []


def test_training_curves_with_validation(tmp_path):
    history = {"loss": [0.9, 0.5, 0.3], "accuracy": [0.7, 0.85, 0.9],
               "val_loss": [0.8, 0.6, 0.5], "val_accuracy": [0.75, 0.8, 0.82]}
    path = plots.training_curves(history, tmp_path / "curves.png")
    assert path == tmp_path / "curves.png"
    _check_png(path)
    assert [item.name for item in tmp_path.iterdir()] == ["curves.png"]


def test_training_curves_lines_with_and_without_validation(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: saved.append(figure) or path)
    plots.training_curves({"loss": [0.9, 0.5], "accuracy": [0.7, 0.8]}, tmp_path / "a.png")
    plots.training_curves({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7],
                           "accuracy": [0.7, 0.8], "val_accuracy": [0.6, 0.7]}, tmp_path / "b.png")
    train_only, with_validation = saved
    loss_axes, accuracy_axes = train_only.axes
    assert [line.get_label() for line in loss_axes.get_lines()] == ["train"]
    assert loss_axes.get_lines()[0].get_xdata().tolist() == [1, 2]  # epochs are 1-based
    assert loss_axes.get_title() == "loss per epoch" and accuracy_axes.get_title() == "accuracy per epoch"
    assert [line.get_label() for line in with_validation.axes[0].get_lines()] == ["train", "validation"]
    assert with_validation.axes[1].get_lines()[1].get_ydata().tolist() == [0.6, 0.7]


def test_training_curves_with_only_loss(tmp_path):
    path = plots.training_curves({"loss": [0.5, 0.4]}, tmp_path / "loss_only.png")
    _check_png(path)


@pytest.mark.parametrize("history", [{}, {"learning_rate": [0.1, 0.01]}, {"loss": []}])
def test_training_curves_empty_history_raises(tmp_path, history):
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.training_curves(history, tmp_path / "curves.png")
    assert list(tmp_path.iterdir()) == []


def test_prediction_grid_marks_exactly_the_mistakes_red():
    predicted = np.array([7, 1, 3, 3, 0])
    true = np.array([7, 2, 3, 8, 0])
    confidence = np.array([0.991, 0.6, 0.5, 0.75, 1.0])
    figure = plots.prediction_grid(_images(5), predicted, confidence, true, columns=3)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 5
    red = [_is_red(axes.title.get_color()) for axes in figure.axes]
    assert red == [False, True, False, True, False]
    frames = [all(spine.get_visible() and _is_red(spine.get_edgecolor()) for spine in axes.spines.values())
              for axes in figure.axes]
    assert frames == red
    assert figure.axes[0].get_title() == "pred 7 (99.1%)\ntrue 7"
    assert figure.axes[1].get_title() == "pred 1 (60.0%)\ntrue 2"
    assert figure.get_suptitle() == "2 mistakes out of 5"
    assert figure.axes[0].get_xticks().size == 0 and figure.axes[0].get_yticks().size == 0
    assert figure.axes[0].get_images()[0].get_cmap().name == "gray"


def test_prediction_grid_without_truth_and_with_class_names():
    names = ["zero", "one", "two"]
    figure = plots.prediction_grid(_images(2, (28, 28, 1), np.float32), np.array([2, 0]),
                                   np.array([0.5, 0.25]), class_names=names)
    assert [axes.get_title() for axes in figure.axes] == ["pred two (50.0%)", "pred zero (25.0%)"]
    assert not any(_is_red(axes.title.get_color()) for axes in figure.axes)
    assert figure.get_suptitle() == ""
    # Float images are shown on a 0..1 scale, uint8 on 0..255.
    assert figure.axes[0].get_images()[0].get_clim() == (0.0, 1.0)
    uint8_figure = plots.prediction_grid(_images(1), np.array([0]), np.array([1.0]))
    assert uint8_figure.axes[0].get_images()[0].get_clim() == (0.0, 255.0)


def test_prediction_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        plots.prediction_grid(np.zeros((2, 28, 28, 3)), np.array([0, 1]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"predicted must have shape \(N,\) = \(2,\)"):
        plots.prediction_grid(_images(2), np.array([0]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="columns"):
        plots.prediction_grid(_images(2), np.array([0, 1]), np.array([0.5, 0.5]), columns=0)


def test_confusion_matrix_figure_annotates_counts(tmp_path):
    matrix = np.array([[50, 2, 0], [3, 40, 1], [0, 0, 45]])
    figure = plots.confusion_matrix_figure(matrix, ["a", "b", "c"])
    axes = figure.axes[0]
    assert axes.get_xlabel() == "predicted" and axes.get_ylabel() == "true"
    assert len(figure.axes) == 2  # the heatmap and its colorbar
    texts = {(text.get_position(), text.get_text()): text.get_color() for text in axes.texts}
    assert len(texts) == 9
    assert texts[((0, 0), "50")] == "white"  # dark cell
    assert texts[((0, 1), "3")] == "black"  # light cell; position is (column, row) = (predicted, true)
    assert texts[((1, 0), "2")] == "black"
    assert [label.get_text() for label in axes.get_xticklabels()] == ["a", "b", "c"]
    _check_png(plots.save_figure(figure, tmp_path / "confusion.png"))
    with pytest.raises(ValueError, match=r"\(C, C\) = \(2, 2\)"):
        plots.confusion_matrix_figure(matrix, ["a", "b"])


def test_mistakes_figure_shows_only_mistakes(tmp_path):
    predicted = np.array([1, 2, 3])
    true = np.array([0, 2, 4])
    figure = plots.mistakes_figure(_images(3), predicted, np.array([0.9, 0.8, 0.7]), true, None)
    assert len(figure.axes) == 2
    assert all(_is_red(axes.title.get_color()) for axes in figure.axes)
    assert figure.get_suptitle().startswith("Most confidently wrong test images")
    _check_png(plots.save_figure(figure, tmp_path / "mistakes.png"))


def test_mistakes_figure_with_no_mistakes(tmp_path):
    figure = plots.mistakes_figure(np.zeros((0, 28, 28), np.uint8), np.array([], int), np.array([]),
                                   np.array([], int), ["a"])
    assert "no mistakes" in [text.get_text() for text in figure.texts]
    assert figure.get_suptitle() == "Most confidently wrong test images"
    _check_png(plots.save_figure(figure, tmp_path / "none.png"))


def _reliability():
    from digits import calibration

    probabilities = np.array([[0.85, 0.15], [0.85, 0.15], [0.35, 0.65], [0.35, 0.65], [0.98, 0.02]])
    return calibration.reliability(probabilities, np.array([0, 1, 1, 1, 0]), bins=10)


def test_reliability_diagram_bars_diagonal_counts_and_ece(tmp_path):
    curve = _reliability()  # bins 0.6-0.7 (2, all right), 0.8-0.9 (2, half right), 0.9-1.0 (1, right)
    figure = plots.reliability_diagram(curve)
    assert isinstance(figure, Figure) and len(figure.axes) == 1
    axes = figure.axes[0]
    bars = sorted(axes.patches, key=lambda bar: bar.get_x())
    assert [round(bar.get_x(), 6) for bar in bars] == [0.6, 0.8, 0.9]  # empty bins draw no bar
    assert [bar.get_height() for bar in bars] == [1.0, 0.5, 1.0]
    assert all(bar.get_width() == pytest.approx(0.1) for bar in bars)
    diagonal = [line for line in axes.get_lines() if line.get_label() == "perfect calibration"]
    assert len(diagonal) == 1 and list(diagonal[0].get_xdata()) == list(diagonal[0].get_ydata()) == [0, 1]
    assert sorted(text.get_text() for text in axes.texts) == ["1", "2", "2"]
    assert all(text.get_alpha() < 1 for text in axes.texts)  # faint
    assert f"ECE {curve['ece']:.4f}" in axes.get_title() and axes.get_title().startswith("Reliability diagram")
    assert axes.get_xlabel().startswith("confidence") and axes.get_ylabel() == "accuracy"
    assert axes.get_xlim() == (0, 1) and axes.get_ylim() == (0, 1)
    assert plots.reliability_diagram(curve, title="Test set").axes[0].get_title().startswith("Test set (ECE")
    _check_png(plots.save_figure(figure, tmp_path / "reliability.png"))
    assert [path.name for path in tmp_path.iterdir()] == ["reliability.png"]


def test_reliability_diagram_formats_large_counts():
    curve = {"ece": 0.01, "bins": [{"low": 0.9, "high": 1.0, "count": 9812, "confidence": 0.99, "accuracy": 0.98}]}
    assert [text.get_text() for text in plots.reliability_diagram(curve).axes[0].texts] == ["9,812"]


@pytest.mark.parametrize("curve", [
    {}, {"bins": [], "ece": 0.0}, {"bins": [{"low": 0.0, "high": 1.0}], "ece": 0.0},
    {"bins": [{"low": 0, "high": 1, "count": 0, "confidence": None, "accuracy": None}]}, [1, 2],
])
def test_reliability_diagram_rejects_other_dicts(curve):
    with pytest.raises(ValueError, match="calibration.reliability"):
        plots.reliability_diagram(curve)
