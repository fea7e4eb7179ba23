"""benchmarks/operating_point.py: the threshold for each rate refuses what it says on the validation scores, and
the rate chosen is the largest whose validation shares stay within the in-distribution targets; the command end
to end on a tiny run writes its JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from helpers import REPO, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import operating_point  # noqa: E402

TARGETS = {"mnist_refused": 0.01, "photos_refused": 0.02}


def test_each_rate_refuses_at_most_its_share_of_validation_digits():
    scores = {"validation": np.arange(1, 201) / 200.0, "validation_photos": np.arange(1, 101) / 100.0}
    labels = {"validation": np.zeros(200, int), "validation_photos": np.zeros(100, int)}
    predictions = {"validation": np.zeros(200, int), "validation_photos": np.r_[np.ones(5, int), np.zeros(95, int)]}
    row = operating_point.shares(scores, labels, predictions, 0.01)
    assert row["reject_below"] == 0.015  # the two lowest of 200 fall below it
    assert row["validation"]["refused"] == 0.01
    assert row["validation_photos"]["refused"] == 0.01  # 0.01 only: one photo score under 0.015
    assert row["validation_photos"]["accuracy_accepted"] == 95 / 99  # four wrong photos were accepted


def test_the_largest_rate_within_both_targets_is_chosen():
    def row(rate, validation, photos):
        return {"reject_rate": rate, "validation": {"refused": validation}, "validation_photos": {"refused": photos}}

    rows = [row(0.005, 0.005, 0.008), row(0.01, 0.01, 0.0123), row(0.0125, 0.0123, 0.0147), row(0.02, 0.02, 0.027)]
    assert operating_point.choose(rows, TARGETS)["reject_rate"] == 0.01  # 0.0125 refuses 1.23% of validation digits
    rows[1]["validation_photos"]["refused"] = 0.021  # photos over their 2%: the rate below
    assert operating_point.choose(rows, TARGETS)["reject_rate"] == 0.005
    assert operating_point.choose([row(0.02, 0.02, 0.03)], TARGETS) is None


def test_the_command_writes_its_json(tiny_run, tmp_path):
    out = tmp_path / "op.json"
    result = run_cli("--run", str(tiny_run), "--photos", "40", "--rates", "0.005", "0.05", "--out", str(out),
                     script="benchmarks/operating_point.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert [row["reject_rate"] for row in saved["rates"]] == [0.005, 0.05]
    low, high = saved["rates"]
    assert low["reject_below"] <= high["reject_below"]
    assert low["validation"]["refused"] <= 0.005 < high["validation"]["refused"] <= 0.05
    assert saved["validation_images"] == json.loads((tiny_run / "metrics.json").read_text())["validation_images"]
    assert saved["photos"] == 40 and saved["machine"]["cpu"]
    assert str(REPO) not in out.read_text()
