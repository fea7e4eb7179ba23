"""scripts/dotted_check.py: the checks of the dotted-stroke rule (docs/reader.md), run end to end on a few pictures."""

from __future__ import annotations

import json

from helpers import REPO, assert_clean_error, run_cli

from digits import reading


def test_dotted_check_reads_the_same_pictures_with_the_rule_and_without(tmp_path):
    out = tmp_path / "dotted.json"
    result = run_cli("--samples", "3", "--strips", "2", "--letters", "6", "--bangs", "3", "--cache", str(tmp_path),
                     "--out", str(out), script="scripts/dotted_check.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    digits = saved["digits"]
    assert digits["pictures"] == 27 and len(digits["conditions"]) == 9  # 3 digits under nine conditions
    assert all(row["refused_by_rule_only"] <= row["dotted"] for row in digits["conditions"].values())
    assert digits["met"] == (digits["refused_by_rule_only"] <= 3)
    for side in ("with", "without"):
        assert {"touching_read_whole", "mixed_read_whole"} <= set(saved["strips"][side])
    dotted = saved["dotted"]
    assert dotted["with"]["all"] >= dotted["without"]["all"]  # the rule only adds refusals
    assert saved["kept"] == all(saved[check]["met"] for check in ("digits", "strips", "dotted"))
    assert saved["machine"]["cpu"] and str(REPO) not in out.read_text()
    assert list(tmp_path.glob("validation/stress-*.npz"))  # the prepared pictures kept for a second run
    assert reading.DOTTED is False  # reading as it stands: the rule failed its check


def test_dotted_check_runs_only_the_checks_asked_and_rejects_bad_counts(tmp_path):
    out = tmp_path / "digits.json"
    result = run_cli("--samples", "2", "--checks", "digits", "--out", str(out), script="scripts/dotted_check.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert "strips" not in saved and "dotted" not in saved
    assert saved["kept"] in (None, False) and (saved["kept"] is False) == (not saved["digits"]["met"])
    assert_clean_error(run_cli("--samples", "0", script="scripts/dotted_check.py"), "--samples must be at least 1")
