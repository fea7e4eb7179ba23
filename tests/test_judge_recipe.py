"""scripts/judge_recipe.py: the rule recipes are judged by, read from the judging commands' JSON; checked on the
judging runs stored for reader-v10 (docs/reader.md: it failed touching strips, the validation split and broken
strokes, and gained what it was for)."""

import json
import sys

import pytest

from helpers import REPO, assert_clean_error, run_cli

sys.path.insert(0, str(REPO / "scripts"))
import judge_recipe  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
V10_FILES = [RESULTS / name for name in (
    "stress_validation_reader-v10.json", "stress_validation_shipped-seed10.json", "validation_strips_reader-v10.json",
    "validation_strips_shipped-2200.json", "printed_reader-v10_seed2.json", "printed_shipped_seed2.json")]

CONTROL_FILES = [RESULTS / name for name in (  # the shipped recipe trained again with seed 2, read by the same commands
    "stress_validation_reader-seed2.json", "validation_strips_reader-seed2.json", "printed_reader-seed2_seed2.json")]
V10, CONTROL = judge_recipe.load(V10_FILES), judge_recipe.load(CONTROL_FILES)  # read once


def verdict(baseline: str, candidate: str, gains=("printed",)) -> dict:
    clauses = judge_recipe.judge(judge_recipe.figures(V10, baseline), judge_recipe.figures(V10, candidate),
                                 list(gains))
    return {row["clause"]: row["passed"] for row in clauses}


def test_reader_v10_fails_the_three_clauses_docs_reader_names_and_passes_its_gains():
    passed = verdict("shipped", "v10")
    assert sorted(name for name, ok in passed.items() if not ok) == \
        ["stress broken", "touching_read_whole", "validation_accuracy"]
    assert passed["printed numbers (gain)"] and passed["printed singles (gain)"]
    assert len([name for name in passed if name.startswith("stress ")]) == 9  # every condition, clean included
    touching = judge_recipe.judge(judge_recipe.figures(V10, "shipped"), judge_recipe.figures(V10, "v10"), [])[0]
    pair = touching["paired"]  # the same 1,000 strips: the difference is the strips each read whole alone
    assert pair["strips"] == 1000 and pair["better"] - pair["worse"] == -10  # 87.7% against 88.7%
    assert pair["ci95"][0] < -0.01 < pair["ci95"][1]


def test_a_model_against_itself_meets_every_clause_but_a_gain():
    assert all(verdict("v10", "v10", gains=()).values())
    passed = verdict("shipped", "shipped")
    assert [name for name, ok in passed.items() if not ok] == ["printed numbers (gain)", "printed singles (gain)"]


def test_the_marked_gain_asks_five_points_more_numbers_holding_a_non_digit_marked():
    """--gains marked (reader-v12's): the marked numbers' clause asked as a gain of 5 points, from the strips files
    alone (no printed file needed); reader-v10 marks 81.3% of them against the shipped model's 78.5%: not enough."""
    strips_only = judge_recipe.load([path for path in V10_FILES if "printed" not in path.name])
    base, cand = judge_recipe.figures(strips_only, "shipped"), judge_recipe.figures(strips_only, "v10")
    [gain] = [row for row in judge_recipe.judge(base, cand, ["marked"]) if row["clause"].endswith("(gain)")]
    assert gain["clause"] == "marked marked_numbers (gain)" and gain["allowed"] == 0.05
    assert (gain["candidate"], gain["baseline"]) == pytest.approx((0.8133, 0.785), abs=1e-4) and not gain["passed"]
    lowered = {**base, "strips": {**base["strips"], "marked_numbers": 0.76}}  # 5.3 points under reader-v10's
    assert [row for row in judge_recipe.judge(lowered, cand, ["marked"]) if row["clause"].endswith("(gain)")][0][
        "passed"]


def test_the_baseline_better_than_the_candidate_fails_where_the_candidate_gained():
    """Turned round, the shipped model as the candidate loses what reader-v10 gained on printed digits (no clause
    measures them but the gains) and is no worse on the three: a share that must not grow (singles split) is
    compared the right way round."""
    passed = verdict("v10", "shipped", gains=())
    assert passed["touching_read_whole"] and passed["validation_accuracy"] and passed["stress broken"]
    assert passed["singles_split"]


def test_the_command_prints_each_clause_writes_json_and_refuses_a_missing_label(tmp_path):
    out = tmp_path / "verdict.json"
    result = run_cli("--baseline", "shipped", "--candidate", "v10", *map(str, V10_FILES), "--gains", "printed",
                     "--out", str(out), script="scripts/judge_recipe.py")
    assert result.returncode == 0, result.stderr
    assert "FAIL  touching strips read whole: 87.70% against 88.70% (at least -0.5 points; " in result.stdout
    assert "verdict: v10 against shipped: failed (3 of 19 clauses failed)" in result.stdout
    written = json.loads(out.read_text())
    assert written["met"] is False and len(written["clauses"]) == 19 and str(REPO) not in out.read_text()
    missing = run_cli("--baseline", "shipped", "--candidate", "reader-v99", *map(str, V10_FILES),
                      script="scripts/judge_recipe.py")
    assert_clean_error(missing, "no stress figures for the candidate")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert_clean_error(run_cli("--baseline", "a", "--candidate", "b", str(broken), script="scripts/judge_recipe.py"),
                       "cannot read it as JSON")


def test_a_clause_the_control_fails_is_judged_against_the_control():
    """The control (the shipped recipe, seed 2) reads touching strips and the validation split worse than the
    shipped model beyond the rule's allowance: there the shipped model is a lucky draw. Judged with the control,
    reader-v10 meets those two clauses against the control's figures and still fails broken strokes, which the
    control reads as well as the shipped model (docs/reader.md)."""
    shipped, control, v10 = (judge_recipe.figures(V10 + CONTROL, label) for label in ("shipped", "seed2", "v10"))
    assert sorted(row["clause"] for row in judge_recipe.judge(shipped, control, []) if not row["passed"]) == \
        ["touching_read_whole", "validation_accuracy"]
    rows = {row["clause"]: row for row in judge_recipe.with_control(shipped, control, v10, ["printed"])}
    assert [name for name, row in rows.items() if not row["passed"]] == ["stress broken"]
    assert {name for name, row in rows.items() if row["against"] == "control"} == \
        {"touching_read_whole", "validation_accuracy"}
    assert rows["touching_read_whole"]["baseline"] == control["strips"]["touching_read_whole"]
    assert rows["stress broken"]["baseline"] == shipped["stress"]["broken"]
    result = run_cli("--baseline", "shipped", "--candidate", "v10", "--control", "seed2",
                     *map(str, V10_FILES + CONTROL_FILES), "--gains", "printed", script="scripts/judge_recipe.py")
    assert "pass  touching strips read whole: 87.70% against 88.00% (seed2's, the control's)" in result.stdout
    assert "verdict: v10 against shipped: failed (1 of 19 clauses failed)" in result.stdout


def test_labels_joined_by_commas_judge_each_recipe_by_the_mean_of_its_seeds():
    """The two-seed rule: "shipped,seed2" is the shipped recipe's mean over its two draws, figure by figure
    (nested alike, the strip-by-strip records left out: they pair two runs, not two means)."""
    both = V10 + CONTROL
    shipped, control = judge_recipe.figures(both, "shipped"), judge_recipe.figures(both, "seed2")
    mean = judge_recipe.figures(both, "shipped,seed2")
    for kind, key in (("strips", "touching_read_whole"), ("stress", "broken")):
        assert mean[kind][key] == (shipped[kind][key] + control[kind][key]) / 2
    assert mean["printed"]["numbers"]["read_exactly"] == \
        (shipped["printed"]["numbers"]["read_exactly"] + control["printed"]["numbers"]["read_exactly"]) / 2
    assert "touching_strips" not in mean["strips"] and "touching_strips" in shipped["strips"]
    rows = judge_recipe.judge(mean, judge_recipe.figures(both, "v10,v10"), ["printed"])
    assert "paired" not in rows[0] and rows[0]["candidate"] == pytest.approx(shipped["strips"]["touching_read_whole"]
                                                                             - 0.01)  # reader-v10 read 87.7%
    result = run_cli("--baseline", "shipped,seed2", "--candidate", "v10,v10", *map(str, V10_FILES + CONTROL_FILES),
                     "--gains", "printed", script="scripts/judge_recipe.py")
    assert "verdict: v10,v10 against shipped,seed2: failed (" in result.stdout
    assert "FAIL  touching strips read whole: 87.70% against 88.35% (at least -0.5 points)\n" in result.stdout
    missing = run_cli("--baseline", "shipped,seed2", "--candidate", "v10,reader-v99",
                      *map(str, V10_FILES + CONTROL_FILES), script="scripts/judge_recipe.py")
    assert_clean_error(missing, "no stress figures for the candidate")
