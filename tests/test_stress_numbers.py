"""benchmarks/stress_numbers.py: each strip is seeded, the same number under every condition, and the condition
does what its name says; --also-sharp reads a soft model's pieces as before; the command's JSON and report section
(with the shipped model, a few strips)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from digits import data, images, multidigit, runs
from helpers import assert_clean_error, fixed_machine, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import report  # noqa: E402
import stress  # noqa: E402
import stress_numbers  # noqa: E402


@pytest.fixture(scope="module")
def test_digits():
    mnist = data.load_dataset("mnist")
    return mnist.x_test[:200], mnist.y_test[:200]


def inked(photo: bytes) -> int:
    """Pixels of ink as the reading half sees it."""
    return int((images.clean(images.load_gray(photo))[0] >= 0.5).sum())


def pieces_blur(photo: bytes) -> float:
    """The mean blur (`images.ink_blur`) of the pieces a number is cut into."""
    def scores(batch):
        return np.full((len(batch), 10), 0.1), np.full(len(batch), 0.9)

    ink = images.analyse(images.load_gray(photo))
    return float(np.mean([piece.blur for piece in multidigit.read_scored(None, scores, ink=ink, soft_above=-1.0)[0]]))


def test_a_strip_is_seeded_and_its_condition_changes_only_the_photo(test_digits):
    x, y = test_digits
    for index in range(3):
        truth, clean = stress_numbers.render_strip("clean", x, y, 0, index)
        assert 2 <= len(truth) <= 6 and truth.isdigit()
        assert stress_numbers.render_strip("clean", x, y, 0, index) == (truth, clean)  # seeded
        twins = {name: stress_numbers.render_strip(name, x, y, 0, index) for name in stress_numbers.CONDITIONS}
        assert {number for number, _ in twins.values()} == {truth}  # the same digits under every condition
        assert len({photo for _, photo in twins.values()}) == len(twins)
        assert inked(twins["thick"][1]) > inked(clean) > max(inked(twins["thin"][1]), inked(twins["broken"][1]))
        sharp, soft = (pieces_blur(twins[name][1]) for name in ("clean", "blur"))
        assert soft > sharp + 0.3  # blurred: its pieces' ink measures softer
    assert stress_numbers.render_strip("clean", x, y, 1, 0) != stress_numbers.render_strip("clean", x, y, 0, 0)
    with pytest.raises(ValueError, match="unknown condition 'smudge'"):
        stress_numbers.render_strip("smudge", x, y, 0, 0)


def test_also_sharp_copies_only_the_models_that_read_soft_pictures():
    class Model:
        def __init__(self, soft_above):
            self.soft_above = soft_above

    soft, plain = Model(0.5), Model(None)
    found = stress_numbers.readers({"soft": soft, "plain": plain}, also_sharp=True)
    assert list(found) == ["soft", "plain", "soft" + stress_numbers.SHARP]
    assert found["soft" + stress_numbers.SHARP].soft_above is None and soft.soft_above == 0.5
    assert stress_numbers.readers({"soft": soft}, also_sharp=False) == {"soft": soft}
    # --piece-margins: reading adds SOFT_MARGIN to a model's soft_above for its pieces, so the copy's pieces are
    # taken as they are above 0.5 + M
    found = stress_numbers.readers({"soft": soft, "plain": plain}, also_sharp=False, margins=(0.1, 0.3))
    assert list(found) == ["soft", "plain", "soft (pieces above +0.1)", "soft (pieces above +0.3)"]
    for margin in (0.1, 0.3):
        copied = found[stress_numbers.margin_label("soft", margin)]
        assert copied.soft_above + multidigit.SOFT_MARGIN == pytest.approx(0.5 + margin)


def test_workers_read_the_same_strips_alike(monkeypatch):
    """Strips read in two spawned workers, a strip a task, come back in order and as one process reads them."""
    monkeypatch.setattr(stress_numbers, "CHUNK", 1)
    shipped = {"mine": str(runs.shipped_model())}
    alone, shared = (stress_numbers.measure(shipped, 3, 4, ["thin"], workers=workers) for workers in (1, 2))
    assert shared["workers"] == 2
    for name in ("clean", "thin"):
        assert shared["conditions"][name]["strips"] == alone["conditions"][name]["strips"]
        assert shared["conditions"][name]["right_count"] == alone["conditions"][name]["right_count"]
    # the order of the strips: each as a reading of strip index i alone says
    first = stress_numbers._read(tuple(shipped.items()), False, (), "test", 4, "thin", 2, 3)["mine"][0][0]
    assert shared["conditions"]["thin"]["strips"]["mine"][2] == ("1" if first else "0")


def test_without_runs_the_command_says_how_to_call_it():
    result = run_cli(script="benchmarks/stress_numbers.py", timeout=60)
    assert result.returncode == 2
    assert_clean_error(result, "--run reader=")
    no_workers = run_cli("--run", f"mine={runs.shipped_model()}", "--workers", "0",
                         script="benchmarks/stress_numbers.py", timeout=60)
    assert no_workers.returncode == 2
    assert_clean_error(no_workers, "--workers 0", "pick 1 or more")


def test_command_writes_json_and_report_section(tmp_path, monkeypatch, capsys):
    fixed_machine(monkeypatch)
    shipped = str(runs.shipped_model())
    out = tmp_path / "stress_numbers.json"
    monkeypatch.setattr(sys, "argv", ["stress_numbers.py", "--run", f"mine={shipped}", "--strips", "2",
                                      "--conditions", "blur", "--also-sharp", "--piece-margins", "0.2",
                                      "--out", str(out)])
    stress_numbers.main()
    assert "blur" in capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert list(summary["conditions"]) == ["clean", "blur"] and summary["strips"] == 2
    soft_above = runs.read_card()["calibration"].get("soft_above")
    copies = [stress_numbers.margin_label("mine", 0.2), "mine" + stress_numbers.SHARP]
    labels = ["mine"] + (copies if soft_above is not None else [])
    assert list(summary["models"]) == labels and summary["models"]["mine"]["soft_above"] == soft_above
    if soft_above is not None:
        pieces = {label: summary["models"][label]["pieces_soft_above"] for label in labels}
        assert pieces == pytest.approx({"mine": soft_above + multidigit.SOFT_MARGIN, copies[0]: soft_above + 0.2,
                                        copies[1]: None})
    blur = summary["conditions"]["blur"]
    assert blur["parameters"] == stress.CONDITIONS["blur"]
    for label in labels:
        assert len(blur["strips"][label]) == 2 and blur["read_whole"][label] == blur["strips"][label].count("1") / 2
        assert blur["loss_points"][label] == pytest.approx(
            100 * (summary["conditions"]["clean"]["read_whole"][label] - blur["read_whole"][label]))
    assert str(stress.ROOT) not in out.read_text()  # no paths of this machine
    section = "\n".join(report.stress_numbers(summary))
    assert "| blur | " in section and "`mine`: read whole / loss" in section
    assert ("--also-sharp" in section) == (soft_above is not None)
    assert np.isfinite(summary["seconds"])
