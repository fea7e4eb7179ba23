"""Tests for digits.evaluate: metrics computed by hand on tiny arrays, validation, the report."""

import json
import math

import matplotlib.image
import numpy as np
import pytest

from digits import calibration
from digits.evaluate import evaluate, most_confident_mistakes, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["zero", "one", "two"]

# Six samples, three classes. Predicted (argmax) = [0, 0, 1, 1, 2, 0]; true = [0, 0, 1, 2, 2, 1].
PROBABILITIES = np.array([
    [0.8, 0.1, 0.1],
    [0.6, 0.3, 0.1],
    [0.2, 0.7, 0.1],
    [0.1, 0.5, 0.4],  # wrong: true 2, predicted 1 with 0.5
    [0.1, 0.1, 0.8],
    [0.9, 0.05, 0.05],  # wrong: true 1, predicted 0 with 0.9
])
LABELS = np.array([0, 0, 1, 2, 2, 1])


def test_confusion_matrix_and_counts_by_hand():
    metrics = evaluate(PROBABILITIES, LABELS, NAMES)
    assert metrics["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert metrics["count"] == 6
    assert metrics["errors"] == 2
    assert metrics["accuracy"] == pytest.approx(4 / 6)


def test_loss_matches_hand_computation():
    metrics = evaluate(PROBABILITIES, LABELS, NAMES)
    expected = -np.mean(np.log([0.8, 0.6, 0.7, 0.4, 0.8, 0.05]))
    assert metrics["loss"] == pytest.approx(expected)


def test_loss_clips_zero_probability():
    metrics = evaluate(np.array([[1.0, 0.0]]), np.array([1]), ["a", "b"])
    assert metrics["loss"] == pytest.approx(-math.log(1e-7))


def test_per_class_precision_recall_f1_by_hand():
    metrics = evaluate(PROBABILITIES, LABELS, NAMES)
    rows = {row["class"]: row for row in metrics["per_class"]}
    assert [row["class"] for row in metrics["per_class"]] == NAMES
    # class 0: predicted 3 times, 2 right; 2 true samples, both found.
    assert rows["zero"]["precision"] == pytest.approx(2 / 3)
    assert rows["zero"]["recall"] == pytest.approx(1.0)
    assert rows["zero"]["f1"] == pytest.approx(0.8)
    # class 1: predicted twice, 1 right; 2 true samples, 1 found.
    assert rows["one"]["precision"] == pytest.approx(0.5)
    assert rows["one"]["recall"] == pytest.approx(0.5)
    assert rows["one"]["f1"] == pytest.approx(0.5)
    # class 2: predicted once, right; 2 true samples, 1 found.
    assert rows["two"]["precision"] == pytest.approx(1.0)
    assert rows["two"]["recall"] == pytest.approx(0.5)
    assert rows["two"]["f1"] == pytest.approx(2 / 3)
    assert [row["support"] for row in metrics["per_class"]] == [2, 2, 2]
    assert metrics["macro_avg"]["precision"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert metrics["macro_avg"]["recall"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert metrics["macro_avg"]["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_result_is_plain_json():
    metrics = evaluate(PROBABILITIES.astype(np.float32), LABELS.astype(np.uint8), NAMES)
    assert json.loads(json.dumps(metrics)) == metrics
    assert type(metrics["accuracy"]) is float and type(metrics["errors"]) is int
    assert type(metrics["per_class"][0]["support"]) is int
    assert type(metrics["confusion_matrix"][0][0]) is int


def test_perfect_predictions():
    labels = np.array([0, 1, 2, 1])
    probabilities = np.eye(3)[labels]
    metrics = evaluate(probabilities, labels, NAMES)
    assert metrics["accuracy"] == 1.0
    assert metrics["errors"] == 0
    assert metrics["loss"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["macro_avg"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert len(most_confident_mistakes(probabilities, labels)) == 0


def test_undefined_precision_and_recall_are_zero_not_nan():
    # Class 2 never predicted and never true: precision, recall and F1 are all 0/0.
    probabilities = np.array([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0]])
    labels = np.array([0, 1])
    metrics = evaluate(probabilities, labels, NAMES)
    rows = metrics["per_class"]
    for row in rows[1:]:
        for key in ("precision", "recall", "f1"):
            assert row[key] == 0.0 and not math.isnan(row[key])
    assert rows[2]["support"] == 0
    assert rows[0]["precision"] == pytest.approx(0.5)
    assert not any(math.isnan(value) for value in metrics["macro_avg"].values())


def test_calibration_error_by_hand():
    # Top confidences [0.8, 0.6, 0.7, 0.5, 0.8, 0.9], right = [1, 1, 1, 0, 1, 0]; with 15 bins only the two
    # 0.8s share a bin (both right), so ECE = (0.2 + 0.4 + 0.3 + 0.5 + 0.2 + 0.9) / 6.
    metrics = evaluate(PROBABILITIES, LABELS, NAMES)
    assert metrics["ece"] == pytest.approx(2.5 / 6)
    curve = metrics["reliability"]
    assert curve == calibration.reliability(PROBABILITIES, LABELS, bins=15)
    assert curve["ece"] == metrics["ece"] == calibration.expected_calibration_error(PROBABILITIES, LABELS)
    assert len(curve["bins"]) == 15 and sum(row["count"] for row in curve["bins"]) == 6
    assert sorted(row["count"] for row in curve["bins"] if row["count"]) == [1, 1, 1, 1, 2]
    assert all(row["accuracy"] is None for row in curve["bins"] if not row["count"])
    assert evaluate(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2]), NAMES)["ece"] == 0.0


@pytest.mark.parametrize("probabilities, labels, names, expected", [
    (np.zeros((4,)), np.zeros(4, dtype=int), NAMES, r"\(N, C\)"),
    (np.full((4, 3), 1 / 3), np.zeros((4, 1), dtype=int), NAMES, r"\(N,\)"),
    (np.full((4, 3), 1 / 3), np.zeros(5, dtype=int), NAMES, r"\(N,\) = \(4,\)"),
    (np.full((4, 3), 1 / 3), np.zeros(4, dtype=int), ["a", "b"], "C = 3"),
    (np.full((4, 3), 1 / 3), np.array([0, 1, 2, 3]), NAMES, r"\[0, 2\]"),
    (np.full((4, 3), 1 / 3), np.array([0, -1, 2, 1]), NAMES, r"\[0, 2\]"),
    (np.full((4, 3), 1 / 3), np.array([0.5, 1, 2, 1]), NAMES, "integer"),
    (np.full((4, 3), 5.0), np.zeros(4, dtype=int), NAMES, "softmax"),
    (np.zeros((0, 3)), np.zeros(0, dtype=int), NAMES, "at least one"),
])
def test_bad_inputs_raise_value_error(probabilities, labels, names, expected):
    with pytest.raises(ValueError, match=expected):
        evaluate(probabilities, labels, names)


def test_most_confident_mistakes_order_and_count():
    probabilities = np.array([
        [0.6, 0.4],  # 0: wrong (true 1), confidence 0.6
        [0.1, 0.9],  # 1: right
        [0.95, 0.05],  # 2: wrong (true 1), confidence 0.95
        [0.2, 0.8],  # 3: wrong (true 0), confidence 0.8
        [0.7, 0.3],  # 4: right
    ])
    labels = np.array([1, 1, 1, 0, 0])
    assert most_confident_mistakes(probabilities, labels).tolist() == [2, 3, 0]
    assert most_confident_mistakes(probabilities, labels, count=2).tolist() == [2, 3]
    assert most_confident_mistakes(probabilities, labels, count=0).tolist() == []
    with pytest.raises(ValueError, match="count"):
        most_confident_mistakes(probabilities, labels, count=-1)


def _check_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert 50 <= pixels.shape[0] <= 5000 and 50 <= pixels.shape[1] <= 5000
    assert pixels.std() > 0  # not a blank canvas


@pytest.mark.parametrize("image_shape, dtype", [((6, 28, 28), np.uint8), ((6, 28, 28, 1), np.float32)])
def test_write_report_writes_all_files(tmp_path, image_shape, dtype):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=image_shape).astype(dtype)
    if dtype == np.float32:
        images /= 255.0
    metrics = evaluate(PROBABILITIES, LABELS, NAMES)
    out_dir = tmp_path / "report" / "nested"
    paths = write_report(metrics, images, PROBABILITIES, LABELS, NAMES, out_dir)

    assert set(paths) == {"evaluation", "confusion_matrix_json", "confusion_matrix_png", "reliability_png",
                          "mistakes_png"}
    assert paths["evaluation"] == out_dir / "evaluation.json"
    assert paths["confusion_matrix_json"] == out_dir / "confusion_matrix.json"
    assert paths["confusion_matrix_png"] == out_dir / "confusion_matrix.png"
    assert paths["mistakes_png"] == out_dir / "mistakes.png"
    assert paths["reliability_png"] == out_dir / "reliability.png"
    assert json.loads(paths["evaluation"].read_text()) == metrics
    written = json.loads(paths["evaluation"].read_text())
    assert written["ece"] == pytest.approx(2.5 / 6) and len(written["reliability"]["bins"]) == 15
    assert json.loads(paths["confusion_matrix_json"].read_text()) == {
        "class_names": NAMES, "matrix": [[2, 0, 0], [1, 1, 0], [0, 1, 1]]}
    _check_png(paths["confusion_matrix_png"])
    _check_png(paths["mistakes_png"])
    _check_png(paths["reliability_png"])
    # Atomic writes leave only the five files, no temp files.
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "confusion_matrix.json", "confusion_matrix.png", "evaluation.json", "mistakes.png", "reliability.png"]


def test_write_report_with_no_mistakes(tmp_path):
    labels = np.array([0, 1, 2])
    probabilities = np.eye(3)[labels]
    metrics = evaluate(probabilities, labels, NAMES)
    paths = write_report(metrics, np.zeros((3, 28, 28), np.uint8), probabilities, labels, NAMES, tmp_path)
    _check_png(paths["mistakes_png"])


def test_write_report_draws_the_reliability_diagram_for_older_metrics(tmp_path):
    """Metrics saved before calibration was scored have no "reliability": the report computes it."""
    metrics = {key: value for key, value in evaluate(PROBABILITIES, LABELS, NAMES).items()
               if key not in ("ece", "reliability")}
    paths = write_report(metrics, np.zeros((6, 28, 28), np.uint8), PROBABILITIES, LABELS, NAMES, tmp_path)
    _check_png(paths["reliability_png"])
    assert "reliability" not in json.loads(paths["evaluation"].read_text())  # the metrics are written as given


def test_write_report_rejects_mismatched_images(tmp_path):
    metrics = evaluate(PROBABILITIES, LABELS, NAMES)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        write_report(metrics, np.zeros((5, 28, 28)), PROBABILITIES, LABELS, NAMES, tmp_path)
