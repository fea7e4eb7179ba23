"""benchmarks/validation_strips.py end to end on a tiny run: strips, singles and, with --non-digits, "not a digit"
at the run's stored threshold, all on validation digits and freshly generated non-digits, written as JSON."""

from __future__ import annotations

import json

from helpers import REPO, run_cli


def test_the_command_compares_runs_on_validation_data(tiny_run, tmp_path):
    out = tmp_path / "strips.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "3", "--singles", "3", "--non-digits", "40",
                     "--validation-split", "0.1", "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    row = saved["runs"]["tiny"]
    for key in ("touching_read_whole", "mixed_read_whole", "singles_split", "validation_refused",
                "non_digits_refused", "non_digits_auroc"):
        assert 0.0 <= row[key] <= 1.0, (key, row[key])
    stored = json.loads((tiny_run / "metrics.json").read_text())["calibration"]
    assert row["reject_below"] == stored["reject_below"]
    assert saved["non_digits"] == 40 and saved["machine"]["cpu"]
    assert str(REPO) not in out.read_text()


def test_strips_and_singles_can_be_left_out(tiny_run, tmp_path):
    out = tmp_path / "rejection.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "0", "--singles", "0", "--non-digits", "20",
                     "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["runs"]["tiny"]
    assert "touching_read_whole" not in row and "singles_split" not in row and 0 <= row["non_digits_refused"] <= 1


def test_auto_mode_reading_of_non_digits_and_numbers(tiny_run, tmp_path):
    out = tmp_path / "auto.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "0", "--singles", "0", "--auto", "3",
                     "--validation-split", "0.1", "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    row = saved["runs"]["tiny"]
    keys = [f"auto_refused_{family}" for family in ("letters", "symbols", "shapes", "scribbles", "silhouettes",
                                                     "scripts")] + ["auto_touching_numbers_right", "auto_mixed_numbers_right"]
    assert all(row[key] in (0.0, 1 / 3, 2 / 3, 1.0) for key in keys), row
    assert saved["auto"] == 3
