"""benchmarks/report.py: a figure measured on a recipe file that has changed since is labelled as the old one's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import report  # noqa: E402

RESULT = {"config_file": "configs/r.json", "config": {"model": "cnn", "epochs": 5},
          "runs": [{"seed": 1, "test_accuracy": 0.99, "training_seconds": 60.0}], "mean_test_accuracy": 0.99,
          "device": "CPU", "machine": {"cpu": "a CPU", "cores": 2, "memory_gib": 1.0, "tensorflow": "2", "keras": "3",
                                          "python": "3.11", "measured": "2026-12-03"}}


def test_a_result_of_the_recipe_as_it_is_is_not_labelled(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "ROOT", tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "r.json").write_text(json.dumps({"epochs": 5, "model": "cnn"}))
    assert report.changed_since(RESULT) == ""
    assert "changed" not in report.best_model(RESULT)[0]


def test_a_result_of_an_older_recipe_says_what_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "ROOT", tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "r.json").write_text(json.dumps({"model": "cnn", "epochs": 6, "pieces": 12}))
    line = report.best_model(RESULT)[0]
    assert "measured before the recipe file changed: `epochs` then 5, now 6; `pieces` then not set, now 12" in line
    (tmp_path / "configs" / "r.json").unlink()
    assert "a recipe file that is gone: configs/r.json" in report.changed_since(RESULT)


def test_the_cards_data_line_names_what_the_recipe_adds_to_mnist():
    assert report.generated({"outlier_exposure": 0.0, "touching_pieces": 0}) == ""
    assert report.generated({"outlier_exposure": 0.3, "outlier_images": 20000, "outlier_families": ["letters", "pairs"],
                             "touching_pieces": 12000}) == (
        ", plus 20,000 generated non-digits (Outlier Exposure: letters, pairs) and 12,000 digits cut out of touching "
        "numbers written with its own training digits")


def test_a_stress_model_of_an_older_recipe_says_what_changed(tmp_path, monkeypatch):
    """benchmarks/stress.py keeps each model's recipe file as it read then; the section names what changed since."""
    stress = json.loads((report.RESULTS / "stress.json").read_text())
    monkeypatch.setattr(report, "ROOT", tmp_path)
    (tmp_path / "configs").mkdir()
    for model in stress["models"].values():
        model["config"] = {"model": model["model"], "epochs": 5}
        (tmp_path / model["recipe"]).write_text(json.dumps(model["config"]))
    assert "changed" not in report.stress(stress)[0]
    reader = stress["models"][stress["reader"]]
    (tmp_path / reader["recipe"]).write_text(json.dumps({**reader["config"], "epochs": 6}))
    assert (f"`{reader['recipe']}` (measured before the recipe file changed: `epochs` then 5, now 6;"
            in report.stress(stress)[0])
    del reader["config"]  # results from before stress.py kept the file: not labelled, as before
    assert "changed" not in report.stress(stress)[0]


def test_the_readme_renders_from_the_results_in_the_repo():
    """Every committed result renders (a result of another benchmark whose name starts like a section's, e.g.
    rejection_scores.json beside rejection_*.json, is left out rather than read as one), and the README holds
    what report.py renders: its figures are the committed JSON's."""
    rendered = report.render()
    assert "**Knowing what is not a digit**" in rendered
    readme = (report.ROOT / "README.md").read_text()
    assert report.replace_block(readme, report.START, report.END, rendered) == readme
    assert report.replace_block(readme, report.CARD_START, report.CARD_END, report.render_card()) == readme


def test_the_card_says_which_score_refuses():
    card = {"calibration": {"score": "energy", "energy_below": 1.736, "reject_below": 0.5,
                            "max_probability_below": 0.7357},
            "refit": {"created": "2026-12-03T22:00:00+00:00", "what": "logits added"}}
    line = report.operating_point(card)
    assert "energy T log sum exp(z / T) of 1.736" in line and "top probability of 0.736" in line
    assert "refit 2026-12-03: logits added" in line
    assert report.operating_point({"calibration": {"score": "max_probability", "reject_below": 0.7357}}) == (
        "not-a-digit below a calibrated top probability of 0.736")
