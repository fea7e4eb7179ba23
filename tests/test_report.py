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


def test_the_card_says_when_soft_pictures_are_read_as_they_are():
    assert report.soft_line({"score": "energy"}) == report.soft_line({"soft_above": None}) == ""
    from digits import multidigit

    line = report.soft_line({"soft_above": 0.5})
    assert "blurred by more than 0.5 MNIST pixels" in line and "scripts/tune_soft.py" in line
    assert f"a piece of a number above {0.5 + multidigit.SOFT_MARGIN:.2g} " in line


def test_the_card_shows_what_auto_mode_refuses_when_measured():
    """rejection.py's auto-mode reading reaches the card's figures and its table; a card measured before has none."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import ship_model

    real = {"rendered_accuracy": 0.98, "rendered_ece": 0.01, "kept_fraction": 1.0, "strip_read_rate": 0.95,
            "auto_split_rate": 0.001, "samples": 100, "strips": 10}
    families = {"letters-unseen": {"refused": 0.98, "auroc_vs_mnist": 0.995, "auroc_vs_photos": 0.993,
                                   "refused_auto": 0.917}}
    measured = {"digits": {"mnist-test": {"ece": 0.004, "refused": 0.005, "accuracy_accepted": 0.997},
                           "photos": {"refused": 0.01, "refused_auto": 0.012}},
                "non_digits": families, "lookalikes": {}, "met": {}}
    rejection = {"recipes": {"shipped": measured}, "samples": 40, "auto": 20}
    figures = ship_model.figures(0.996, real, rejection)
    assert figures["non_digits_refused_auto"] == {"letters-unseen": 0.917} and figures["photos_refused_auto"] == 0.012
    assert figures["benchmark_samples"]["rejection_auto"] == 20
    card = json.loads((Path(__file__).resolve().parents[1] / "src" / "digits" / "shipped" / "card.json").read_text())
    text = "\n".join(report.model_card({**card, "figures": figures}))
    assert "| non-digits refused: letters-unseen (AUROC); read in auto mode | 98.0% (0.9930); 91.7% |" in text
    assert "| rendered photos refused, read in auto mode (20) | 1.20% |" in text
    del measured["non_digits"]["letters-unseen"]["refused_auto"], measured["digits"]["photos"]["refused_auto"]
    before = "\n".join(report.model_card({**card, "figures": ship_model.figures(0.996, real, rejection)}))
    assert "auto mode (" not in before and "| non-digits refused: letters-unseen (AUROC) | 98.0% (0.9930) |" in before


def test_the_sequence_line_says_how_reading_weighs_the_model():
    entry = {"file": "sequence.onnx", "parameters": 262686, "size_bytes": 1058896, "sha256": "ab", "commands": []}
    weighed = report.sequence_line({"sequence": {**entry, "weight": 1.5, "margin": 5.0}})[0]
    assert "plus 1.5 times the model's log-likelihood, the lattice's own 5.0 more" in weighed
    assert "at least 0.98 sure" in report.sequence_line({"sequence": {**entry, "sure": 0.98}})[0]  # an older card
    assert report.sequence_line({}) == []


def test_printed_digits_render_per_font_set_and_model():
    entry = {"singles": {"read_exactly": 0.94, "per_digit": {"1": 0.5}}, "numbers": {"read_exactly": 0.72}}
    result = {"runs": {"a": "x.onnx", "b": "y.onnx"}, "single_sizes": [24, 64], "numbers": 300, "seed": 3,
              "number_size": [16, 64], "machine": RESULT["machine"],
              "sets": {"choosing": {"packages": {"fonts-x": ["X.ttf", "Y.ttf"], "fonts-z": ["Z.otf"]},
                                    "models": {"a": entry, "b": entry | {"numbers": {"read_exactly": 0.9}}}}}}
    lines = report.printed(result)
    assert "| choosing (2 packages, 3 fonts) | the ten digits alone | 94.00% | 94.00% |" in lines
    assert "|  | its 1s alone | 50.00% | 50.00% |" in lines and "|  | numbers | 72.00% | 90.00% |" in lines
    assert "(seed 3)" in lines[0] and "24 and 64 px" in lines[0] and lines[-1].startswith("Machine: a CPU")


def test_printed_digits_name_the_previous_model_and_recipes_apart():
    """`previous` (the model shipped before, `printed.py --run previous=...`) is said to be that, not a recipe judged
    in the recipe table; any other label beside `shipped` still is."""
    entry = {"singles": {"read_exactly": 0.94, "per_digit": {"1": 0.5}}, "numbers": {"read_exactly": 0.72}}
    result = {"runs": {"shipped": "x.onnx", "previous": "y.onnx", "reader-v12": "z.onnx"}, "single_sizes": [24, 64],
              "numbers": 300, "seed": 1, "number_size": [16, 64], "machine": RESULT["machine"],
              "sets": {"choosing": {"packages": {"fonts-x": ["X.ttf"]},
                                    "models": {"shipped": entry, "previous": entry, "reader-v12": entry}}}}
    text = "\n".join(report.printed(result))
    assert "`previous`: the model shipped before the installed one, read beside it." in text
    assert "\n`reader-v12`: a recipe judged in the recipe table below" in text
    assert "`previous`, `reader-v12`:" not in text


def test_the_card_shows_the_model_before_it_beside_its_own_figures(tmp_path):
    """With the card of the model it replaced (ship_model.install keeps it when the file changes), the README's card
    holds both models' figures row by row, a row the older card never measured said so; without one, one column.
    install keeps the replaced card only where the model file changed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import ship_model

    card = json.loads((Path(__file__).resolve().parents[1] / "src" / "digits" / "shipped" / "card.json").read_text())
    figures = {key: value for key, value in card["figures"].items() if key != "single_digits_split_in_auto_mode"}
    older = {**card, "name": "digits-reader-old", "recipe": "configs/old.json", "seed": 3, "sha256": "0" * 64,
             "figures": {**figures, "mnist_test_accuracy": 0.9912}}
    table = "\n".join(report.model_card(card, previous=older))
    assert "| measure | value | the model before it |" in table
    assert f"| MNIST test accuracy (ONNX, through the reading half) | {card['figures']['mnist_test_accuracy']:.2%} | " \
           "99.12% |" in table
    assert "| rendered photos of one digit read as several (auto mode) | " in table and "| not measured |" in table
    assert "The model before it: digits-reader-old (`configs/old.json`, seed 3)" in table
    assert "the model before it" not in "\n".join(report.model_card(card))

    model, destination, previous = tmp_path / "model.onnx", tmp_path / "shipped", tmp_path / "previous.json"
    model.write_bytes(b"onnx")
    ship_model.install(model, {**older, "sequence": None}, destination, previous)  # nothing installed before it
    assert not previous.exists()
    ship_model.install(model, {**card, "sequence": None}, destination, previous)
    assert json.loads(previous.read_text())["name"] == "digits-reader-old"
    ship_model.install(model, {**card, "sequence": None, "name": "remeasured"}, destination, previous)  # same file
    assert json.loads(previous.read_text())["name"] == "digits-reader-old"
    assert json.loads((destination / "card.json").read_text())["name"] == "remeasured"
