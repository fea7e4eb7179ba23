"""benchmarks/rejection.py end to end on a tiny run: every family's share refused and AUROC at the run's stored
threshold, and the same pictures read as `digits predict` reads a file (auto mode), written as JSON."""

from __future__ import annotations

import json
import shutil

import numpy as np
from helpers import REPO, run_cli

from digits import reading
from digits.predictor import Predictor


def test_the_benchmark_reads_each_family_as_one_digit_and_in_auto_mode(tiny_run, tmp_path):
    """Beside the run, a copy reading every picture as it is (soft_above -1): each is measured on the pictures
    prepared as it reads them, and says so."""
    soft = tmp_path / "soft"
    shutil.copytree(tiny_run, soft)
    metrics = json.loads((soft / "metrics.json").read_text())
    metrics["calibration"]["soft_above"] = -1.0
    (soft / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "rejection.json"
    result = run_cli("--run", str(tiny_run), "--run", str(soft), "--samples", "30", "--auto", "6", "--out", str(out),
                     script="benchmarks/rejection.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    measured, as_they_are = saved["recipes"].values()
    assert (measured["soft_above"], as_they_are["soft_above"]) == (None, -1.0)
    assert measured["digits"]["mnist-test"] == as_they_are["digits"]["mnist-test"]  # 28x28 arrays: not prepared
    assert saved["auto"] == 6 and saved["machine"]["cpu"]
    assert {"scribbles", "shapes", "symbols", "silhouettes"} <= set(measured["non_digits"])
    for row in [*measured["non_digits"].values(), measured["digits"]["photos"]]:
        assert row["auto_read"] == 6 and 0.0 <= row["refused_auto"] <= 1.0 and 0.0 <= row["numbers_auto"] <= 1.0
        assert row["refused_auto"] + row["numbers_auto"] <= 1.0
    assert "refused_auto" not in measured["digits"]["mnist-test"]  # 28x28 digits: nothing to cut
    assert str(REPO) not in out.read_text()


def test_auto_mode_refusal_counts_what_reading_read_answers(tiny_run):
    """The auto-mode share is what `reading.read` answers: every picture refused at a threshold of 1, none at 0
    when it has ink."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import rejection
    from helpers import drawn_text, scribble

    pictures = [drawn_text("W"), drawn_text("4"), scribble(3)]
    predictor = Predictor(tiny_run)
    predictor.reject_below = 1.0
    assert rejection.refused_in_auto_mode(predictor, pictures)["refused_auto"] == 1.0
    predictor.reject_below = 0.0
    found = rejection.refused_in_auto_mode(predictor, pictures)
    assert found["refused_auto"] == 0.0 and found["auto_read"] == 3
    numbers = sum(reading.read(picture, "auto", predictor).kind == "number" for picture in pictures)
    assert found["numbers_auto"] == numbers / 3


def test_pictures_are_prepared_as_the_model_reads_them():
    """prepared_inputs(soft_above=...) prepares each picture as reading does for a model with that soft_above."""
    import sys

    from PIL import Image
    from scipy import ndimage

    from digits import data, images

    sys.path.insert(0, str(REPO / "benchmarks"))
    import rejection

    digit = data.load_dataset("mnist").x_test[0].astype(np.float32) / 255
    enlarged = np.clip(np.asarray(Image.fromarray(digit).resize((140, 140), Image.Resampling.BICUBIC)), 0, 1)
    blurred = ndimage.gaussian_filter(enlarged, 8.0)
    photo = np.round(255 * (0.9 - 0.7 * blurred / blurred.max())).astype(np.uint8)
    sharp, soft = (rejection.prepared_inputs([photo], value)[0][0] for value in (None, 0.5))
    np.testing.assert_array_equal(soft, images.prepare(images.to_gray(photo), 0.5).image)
    np.testing.assert_array_equal(sharp, images.prepare(images.to_gray(photo)).image)
    assert np.abs(soft - sharp).mean() > 0.02
