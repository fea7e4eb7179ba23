"""benchmarks/rejection.py end to end on a tiny run: every family's share refused and AUROC at the run's stored
threshold, and the same pictures read as `digits predict` reads a file (auto mode), written as JSON."""

from __future__ import annotations

import json

from helpers import REPO, run_cli

from digits import reading
from digits.predictor import Predictor


def test_the_benchmark_reads_each_family_as_one_digit_and_in_auto_mode(tiny_run, tmp_path):
    out = tmp_path / "rejection.json"
    result = run_cli("--run", str(tiny_run), "--samples", "30", "--auto", "6", "--out", str(out),
                     script="benchmarks/rejection.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    (measured,) = saved["recipes"].values()
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
