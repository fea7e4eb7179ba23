"""scripts/tune_soft.py: the rule that chooses a model's soft_above, and the choice stored where every reader
finds it (a run's metrics, the shipped card); one short real run of the script."""

import json
import shutil
import sys
from pathlib import Path

from helpers import assert_clean_error, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import tune_soft  # noqa: E402

from digits import runs  # noqa: E402
from digits.predictor import Predictor  # noqa: E402


def test_the_rule_takes_the_best_mean_within_its_limits():
    """The highest mean over the conditions but clean, among candidates that keep clean and lose at most 0.5 point
    on any condition; ties to the larger blur; never, unless some candidate's mean beats it."""
    never = {"clean": 0.99, "lowres": 0.90, "thick": 0.97}
    table = {"never": never,
             "0.5": {"clean": 0.99, "lowres": 0.97, "thick": 0.96},  # the best mean, but thick 1 point lower
             "0.6": {"clean": 0.99, "lowres": 0.94, "thick": 0.97},
             "0.7": {"clean": 0.99, "lowres": 0.94, "thick": 0.97},  # as good as 0.6: fewer pictures read soft
             "0.8": {"clean": 0.98, "lowres": 0.99, "thick": 0.97}}  # clean lower
    assert tune_soft.choose(table) == "0.7"
    table["0.9"] = {"clean": 0.99, "lowres": 0.945, "thick": 0.966}  # 0.4 point lower on thick: allowed, best mean
    assert tune_soft.choose(table) == "0.9"
    assert tune_soft.choose({"never": never, "0.5": dict(never), "0.6": {**never, "clean": 0.98}}) == "never"


def test_the_choice_is_stored_with_the_model(tiny_run, tmp_path):
    """--write's store: a run's metrics.json (the run and its model file read it), a shipped model's card; the rest
    of the calibration is kept, and None (never) reads as never."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = json.loads((run / "metrics.json").read_text())["calibration"]
    assert tune_soft.write(run, 0.7, {"by": "a test"}) == run / "metrics.json"
    after = json.loads((run / "metrics.json").read_text())["calibration"]
    assert after == {**before, "soft_above": 0.7, "soft_above_chosen": {"by": "a test"}}
    assert Predictor(run).soft_above == 0.7 and Predictor(run / "model.onnx").soft_above == 0.7
    tune_soft.write(run / "model.onnx", None, {"by": "a test"})
    assert Predictor(run).soft_above is None
    shipped = tmp_path / "shipped"
    shutil.copytree(runs.SHIPPED_DIR, shipped, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    assert tune_soft.write(shipped / "model.onnx", 0.8, {"by": "a test"}) == shipped / "card.json"
    assert Predictor(shipped / "model.onnx").soft_above == 0.8
    assert runs.read_card(shipped)["sha256"] == runs.read_card(runs.SHIPPED_DIR)["sha256"]


def test_a_short_run_chooses_for_each_model_and_writes_its_json(tmp_path):
    """Two validation digits under every condition, two models (staged copies of the shipped model): a table per
    model on the same pictures, a choice each, the JSON without this machine's paths, and --write; a model that is
    not there is one clear error."""
    for name in ("staged", "other"):
        shutil.copytree(runs.SHIPPED_DIR, tmp_path / name, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    staged, out = tmp_path / "staged", tmp_path / "soft.json"
    result = run_cli("--digits", "2", "--model", str(staged / "model.onnx"), "--model", str(tmp_path / "other"
                                                                                             / "model.onnx"),
                     "--out", str(out), "--write", "--workers", "1", script="scripts/tune_soft.py")
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert record["digits"] == 2 and record["first"] == tune_soft.FIRST and record["machine"]["cpu"]
    assert set(record["conditions"]) >= {"clean", "lowres", "blur"}
    chosen = {name: model["chosen"] for name, model in record["models"].items()}
    assert len(chosen) == 2 and set(next(iter(record["models"].values()))["accuracy"]) == {
        "never", *(f"{value:g}" for value in tune_soft.CANDIDATES)}
    assert chosen["staged/model.onnx"] == chosen["other/model.onnx"]  # the same model on the same pictures
    stored = Predictor(staged / "model.onnx").soft_above
    assert stored == (None if chosen["staged/model.onnx"] == "never" else float(chosen["staged/model.onnx"]))
    assert str(tmp_path) not in out.read_text()
    assert_clean_error(run_cli("--model", str(tmp_path / "nothing"), "--out", str(out), script="scripts/tune_soft.py"),
                       "tune_soft: error:")
