"""scripts/rescore.py: the records of a number's rival readings, their replay, and the committed choice."""

import json
import shutil
import sys
from pathlib import Path

from helpers import assert_clean_error, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import rescore  # noqa: E402

from digits import runs, sequence  # noqa: E402


def test_the_replay_reads_each_recorded_strip_as_the_package_read_it(tmp_path):
    """Real strips read by a staged copy of the shipped model (--model): the rival readings recorded, then
    replayed with the package's own settings (strict, with the rivals of one digit fewer and more), give the
    reading the package gave. A model without a sequence model has no rivals: one clear error."""
    staged = tmp_path / "staged"
    shutil.copytree(runs.SHIPPED_DIR, staged, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    out = tmp_path / "records.json"
    result = run_cli("collect", "--strips", "4", "--model", str(staged / "model.onnx"), "--out", str(out),
                     script="scripts/rescore.py")
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())
    assert records["strips"] == 4 and records["machine"]["cpu"] and records["model"] == str(staged / "model.onnx")
    card = json.loads((staged / "card.json").read_text())
    (staged / "card.json").write_text(json.dumps({key: value for key, value in card.items() if key != "sequence"}))
    alone = run_cli("collect", "--strips", "1", "--model", str(staged / "model.onnx"), "--out", str(out),
                    script="scripts/rescore.py")
    assert_clean_error(alone, "reads without a sequence model")
    assert json.loads(out.read_text()) == records  # nothing written over
    weighed = 0
    for kind in ("touching", "mixed", "with_non_digit"):
        assert len(records[kind]) == 4
        for row in records[kind]:
            assert rescore.new_rule(row, sequence.WEIGHT, sequence.MARGIN, True, True) == row["read"], row
            weighed += "rivals" in row
    assert weighed >= 8  # most strips are numbers the sequence model weighs
    assert sum("?" in row["truth"] for row in records["with_non_digit"]) == 4


def row(truth, own, rivals, sure=0.5, sequence_text=None):
    """A record as `collect` writes it; rivals: (text, lattice score, log-likelihood, refused, source)."""
    fields = ("text", "score", "likelihood", "refused", "source")
    return {"truth": truth, "read": own, "own": own, "sure": sure, "rivals": [dict(zip(fields, r)) for r in rivals],
            "sequence": sequence_text or next((r[0] for r in rivals if r[4] == "sequence"), own)}


def test_the_rules_replay_as_documented():
    merged = row("126", "12", [("12", 3.5, -12.0, False, "lattice"), ("126", 2.0, -0.01, False, "sequence")], 0.99)
    assert rescore.old_rule(merged) == "126"  # at least 0.98 sure
    assert rescore.old_rule({**merged, "sure": 0.9}) == "12"
    assert rescore.new_rule(merged, 1.0, 5.0, True, False) == "126"  # 2.0 - 0.01 against 3.5 - 12 + 5
    assert rescore.new_rule(merged, 0.1, 5.0, True, False) == "12"  # 1.999 against 7.3
    more = row("126", "12", [("12", 3.5, -12.0, False, "lattice"), ("126", 2.0, -0.5, False, "more")],
               sequence_text="129")
    assert rescore.new_rule(more, 1.0, 0.0, True, True) == "126"
    assert rescore.new_rule(more, 1.0, 0.0, True, False) == "12"  # the lengths' rivals left out
    refused = row("1?6", "1?", [("12", 3.5, -12.0, True, "lattice"), ("126", 2.0, -0.01, False, "sequence")], 0.99)
    assert rescore.old_rule(refused) == rescore.new_rule(refused, 1.0, 0.0, True, True) == "1?"  # strict
    assert rescore.new_rule(refused, 1.0, 0.0, False, True) == "126"  # not strict: the refused piece is gone


def test_choose_keeps_the_non_digits_reported_and_reads_the_most_strips(tmp_path):
    """Touching strips gain from not being strict, but a strip holding a non-digit then loses its "?": the floor
    (the SURE rule's share less 1 in 100) keeps the strict settings, and the best of them is chosen."""
    touching = row("126", "12", [("12", 3.5, -12.0, False, "lattice"), ("126", 2.0, -0.01, False, "sequence")])
    hidden = row("6?1", "6?", [("65", 3.0, -8.0, True, "lattice"), ("611", 2.0, -0.01, False, "sequence")])
    lost = row("61", "6?", [("65", 3.0, -8.0, True, "lattice"), ("61", 2.0, -0.01, False, "sequence")])
    records = {"touching": [touching, touching, lost, lost], "mixed": [touching] * 4,
               "with_non_digit": [hidden] * 4, "machine": {"cpu": "test"}}
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records))
    out = tmp_path / "chosen.json"
    result = run_cli("choose", "--records", str(path), "--out", str(out), script="scripts/rescore.py")
    assert result.returncode == 0, result.stderr
    found = json.loads(out.read_text())
    assert found["reported_floor"] == 0.99
    chosen = found["chosen"]
    assert chosen["strict"] and not chosen["lengths"] and chosen["even_read_whole"] == 3
    assert (chosen["margin"], chosen["weight"]) == (5.0, 0.7)  # ties: the larger margin, then the smaller weight
    assert found["touching_check"]["chosen_rule"]["read_whole"] == 0.5  # the touching strip; the lost one stays
    assert found["with_non_digit_check"]["chosen_rule_reported"] == 1.0
    best_loose = max((s for s in found["settings"] if not s["strict"]), key=lambda s: s["even_read_whole"])
    assert best_loose["even_read_whole"] == 4 and best_loose["even_reported"] == 0.0  # more read, "?" hidden
