"""benchmarks/stress.py: each condition is seeded and does what its name says to the photo; the target rule;
the command's JSON, contact sheet and report section (with the shipped model, a few pictures)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from digits import data, images, runs
from helpers import assert_clean_error, fixed_machine, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import report  # noqa: E402
import stress  # noqa: E402

DIGITS = range(6)  # test digits the photo checks look at


@pytest.fixture(scope="module")
def mnist():
    return data.load_dataset("mnist")


@pytest.fixture(scope="module")
def x_test(mnist):
    return mnist.x_test


def ink(photo: bytes) -> np.ndarray:
    """The photo's ink as the reading half sees it (ground 0, ink 1), at the photo's resolution."""
    return images.clean(images.load_gray(photo))[0] >= 0.5


def lean(photo: bytes) -> float:
    """How far the top of the ink lies right of its bottom, in ink heights (centres of the top and bottom fifths)."""
    mask = ink(photo)
    rows = np.flatnonzero(mask.any(1))
    fifth = max(1, (rows[-1] - rows[0] + 1) // 5)
    top, bottom = mask[rows[0]:rows[0] + fifth], mask[rows[-1] + 1 - fifth:rows[-1] + 1]
    centre = [float(np.nonzero(part)[1].mean()) for part in (top, bottom)]
    return (centre[0] - centre[1]) / (rows[-1] - rows[0] + 1)


def detail(photo: bytes) -> float:
    """What a round trip through a grid 6 pixels a digit height loses, over the ink's box, per unit of contrast."""
    from PIL import Image

    gray = images.load_gray(photo)
    top, left, bottom, right = images.bounds(ink(photo))
    factor = (bottom - top) / 6
    small = Image.fromarray(gray).resize((max(1, round(gray.shape[1] / factor)), max(1, round(gray.shape[0] / factor))),
                                         Image.Resampling.BOX)
    back = np.asarray(small.resize(gray.shape[::-1], Image.Resampling.BILINEAR))
    return float(np.abs(gray - back)[top:bottom, left:right].mean() / np.ptp(np.percentile(gray, [1, 99])))


def test_every_condition_is_seeded_and_changes_the_photo(x_test):
    clean = stress.render_condition("clean", x_test[0], 0, 0)
    for name in stress.CONDITIONS:
        photo = stress.render_condition(name, x_test[0], 0, 0)
        assert photo == stress.render_condition(name, x_test[0], 0, 0), name
        assert photo != stress.render_condition(name, x_test[0], 1, 0), name
        assert (photo == clean) == (name == "clean"), name
    with pytest.raises(ValueError, match="unknown condition 'fog'"):
        stress.render_condition("fog", x_test[0], 0, 0)


def test_clean_is_real_images_rendering(x_test):
    import real_images

    for index in DIGITS:
        assert stress.render_condition("clean", x_test[index], 3, index) == real_images.render_digit(
            x_test[index], np.random.default_rng([3, index]))


def test_thick_and_thin_strokes_cover_more_and_less_paper(x_test):
    for index in DIGITS:
        share = {name: float(ink(stress.render_condition(name, x_test[index], 0, index)).mean())
                 for name in ("thin", "clean", "thick")}
        assert share["thin"] < share["clean"] < share["thick"], (index, share)


def test_slant_moves_the_top_of_a_vertical_stroke_sideways():
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 13:16] = 1.0
    for shear in (0.45, -0.45):
        leaning = stress.slanted(bar, shear)
        columns = [float(np.average(np.arange(leaning.shape[1]), weights=leaning[row])) for row in (4, 23)]
        assert columns[0] - columns[1] == pytest.approx(shear * 19, abs=0.1)  # top row 19 rows above the bottom


def test_slant_and_rotation_lean_the_photographed_ones_both_ways(mnist, x_test):
    ones = np.flatnonzero(mnist.y_test == 1)[:6]
    changes = {name: [lean(stress.render_condition(name, x_test[index], 0, index))
                      - lean(stress.render_condition("clean", x_test[index], 0, index)) for index in ones]
               for name in ("slant", "rotation")}
    # shear 0.45 moves the top fifth's centre 0.8 x 0.45 of the height beside the bottom's; 20 degrees about as much
    assert all(0.28 < abs(change) < 0.45 for change in changes["slant"]), changes
    assert all(0.2 < abs(change) < 0.6 for change in changes["rotation"]), changes
    assert all(min(values) < 0 < max(values) for values in changes.values()), changes


def test_lowres_photos_hold_no_detail_finer_than_a_six_pixel_digit(x_test):
    clean = [detail(stress.render_condition("clean", x_test[index], 0, index)) for index in DIGITS]
    lowres = [detail(stress.render_condition("lowres", x_test[index], 0, index)) for index in DIGITS]
    assert all(low < high for low, high in zip(lowres, clean)), (lowres, clean)
    assert np.mean(lowres) < 0.7 * np.mean(clean), (lowres, clean)


def test_blur_softens_edges_paper_lowers_contrast_broken_cuts_strokes(x_test):
    def sharpness(photo):  # the steepest edge, per unit of contrast and per digit height
        gray = images.load_gray(photo)
        steepest = np.hypot(*np.gradient(ndimage.gaussian_filter(gray, 1.0))).max()
        top, _, bottom, _ = images.bounds(ink(photo))
        return steepest * (bottom - top) / np.ptp(np.percentile(gray, [1, 99]))

    def contrast(photo):  # how much of the paper's light the darkest ink takes
        gray = images.load_gray(photo)
        return (np.median(gray) - np.percentile(gray, 0.5)) / np.median(gray)

    def pieces(photo):
        return ndimage.label(ink(photo), np.ones((3, 3)))[1]

    for index in DIGITS:
        clean = stress.render_condition("clean", x_test[index], 0, index)
        assert sharpness(stress.render_condition("blur", x_test[index], 0, index)) < 0.7 * sharpness(clean)
        assert contrast(stress.render_condition("paper", x_test[index], 0, index)) < 0.4 < contrast(clean)
        assert pieces(stress.render_condition("broken", x_test[index], 0, index)) >= pieces(clean) + 2


def test_a_model_reading_soft_pictures_takes_their_soft_preparation_above_its_blur(x_test):
    """With soft=True each picture is also prepared as it is (images.prepare(soft_above=-1)), its blur measured
    once; `selected` gives a model the soft one where the blur is above its soft_above, the usual one elsewhere."""
    prepared = stress.prepare_conditions(x_test[:3], ["clean", "blur"], 0, soft=True)
    for name, item in prepared.items():
        assert item["stack"].shape == item["soft_stack"].shape == (3, 28, 28) and item["blur"].shape == (3,)
        for index in range(3):
            photo = stress.render_condition(name, x_test[index], 0, index)
            np.testing.assert_array_equal(item["stack"][index], images.prepare_file(photo).image)
            np.testing.assert_array_equal(item["soft_stack"][index], images.prepare_file(photo, soft_above=-1.0).image)
    assert (prepared["blur"]["blur"] > prepared["clean"]["blur"]).all()
    item = prepared["blur"]
    assert stress.selected(item["stack"], item["soft_stack"], item["blur"], None) is item["stack"]
    middle = float(np.sort(item["blur"])[1])  # above it: the softest picture only
    picked = stress.selected(item["stack"], item["soft_stack"], item["blur"], middle)
    softest = int(np.argmax(item["blur"]))
    for index in range(3):
        expected = item["soft_stack"] if index == softest else item["stack"]
        np.testing.assert_array_equal(picked[index], expected[index])
    assert "soft_stack" not in stress.prepare_conditions(x_test[:1], ["clean"], 0)["clean"]


def test_the_reader_may_lose_half_of_what_the_baseline_loses():
    assert stress.allowed_loss(4.0) == 2.0
    assert stress.target_met(4.0, 2.0) and stress.target_met(4.0, -1.0) and not stress.target_met(4.0, 2.05)
    assert stress.target_met(0.3, 0.15) and not stress.target_met(0.3, 0.2)
    # the baseline loses nothing (or gains): the reader may lose 0.1 point
    assert stress.allowed_loss(0.0) == stress.allowed_loss(-0.5) == 0.1
    assert stress.target_met(0.0, 0.1) and stress.target_met(-0.5, 0.05) and not stress.target_met(0.0, 0.15)


def test_summary_measures_losses_against_clean():
    accuracies = {"cnn-fast": {"clean": 0.99, "thick": 0.95, "thin": 0.99},
                  "reader": {"clean": 0.995, "thick": 0.975, "thin": 0.994}}
    conditions = stress.summarise(accuracies, "cnn-fast", "reader")
    assert conditions["clean"]["target"] is None
    thick, thin = conditions["thick"], conditions["thin"]
    assert thick["loss_points"] == pytest.approx({"cnn-fast": 4.0, "reader": 2.0})
    assert thick["target"]["met"] and thick["target"]["allowed_loss"] == pytest.approx(2.0)
    assert thin["target"]["allowed_loss"] == 0.1 and thin["target"]["met"] and "nothing" in thin["target"]["rule"]
    assert all(row["target"] is None for row in stress.summarise(accuracies, "cnn-fast", "absent").values())


def test_recipe_is_named_when_a_config_matches():
    from digits import config

    trained = config.load(stress.ROOT / "configs" / "cnn-fast.json").to_dict()
    assert stress.recipe_of({**trained, "seed": 7}) == "configs/cnn-fast.json"
    assert stress.recipe_of({**trained, "epochs": 99}) is None
    assert stress.recipe_of({"no_such_setting": 1}) is None


def test_without_runs_the_command_says_how_to_call_it():
    result = run_cli(script="benchmarks/stress.py", timeout=60)
    assert result.returncode == 2
    assert_clean_error(result, "--run cnn-fast=")


def test_command_writes_json_sheet_and_report_section(tmp_path, monkeypatch, capsys):
    fixed_machine(monkeypatch)
    shipped = str(runs.shipped_model())
    out, sheet = tmp_path / "stress.json", tmp_path / "sheet.png"
    monkeypatch.setattr(sys, "argv", ["stress.py", "--run", f"base={shipped}", "--run", f"mine={shipped}",
                                      "--baseline", "base", "--reader", "mine", "--samples", "3",
                                      "--conditions", "thick", "--out", str(out), "--sheet", str(sheet)])
    stress.main()
    assert "thick" in capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert list(summary["conditions"]) == ["clean", "thick"] and summary["samples"] == 3
    assert summary["conditions"]["thick"]["parameters"] == stress.CONDITIONS["thick"]
    assert summary["conditions"]["thick"]["target"]["met"] == summary["all_met"]  # the same model twice
    assert set(summary["models"]) == {"base", "mine"} and summary["models"]["base"]["model"]
    soft_above = runs.read_card()["calibration"].get("soft_above")
    assert summary["models"]["mine"]["soft_above"] == soft_above
    reading_soft = set(summary["conditions"]["thick"]["read_as_they_are"])
    assert reading_soft == (set() if soft_above is None else {"base", "mine"})
    assert str(stress.ROOT) not in out.read_text()  # no paths of this machine
    from PIL import Image

    assert Image.open(sheet).size == (72 + 12 * 84, 2 * 84)
    section = "\n".join(report.stress(summary))
    assert "| thick | stroke change 3.5 |" in section and "`mine`: accuracy / loss" in section
    assert ("`mine` reads a picture whose ink is blurred by more than" in section) == (soft_above is not None)


def test_validation_split_draws_the_held_out_training_digits(mnist, tmp_path, monkeypatch):
    """--split validation reads the validation split configs/reader.json holds out (never a test digit), so models
    can be compared without the test set; its cached pictures are kept apart from the test digits'."""
    digits, labels = stress.digits_of("validation", 5)
    _, _, x_val, y_val = data.split_validation(mnist.x_train, mnist.y_train, stress.VALIDATION_SPLIT)
    assert np.array_equal(digits, x_val[:5]) and np.array_equal(labels, y_val[:5])
    assert np.array_equal(stress.digits_of("test", 5)[0], mnist.x_test[:5])
    fixed_machine(monkeypatch)
    shipped = str(runs.shipped_model())
    out, cache = tmp_path / "stress.json", tmp_path / "cache"
    monkeypatch.setattr(sys, "argv", ["stress.py", "--run", f"reader={shipped}", "--split", "validation",
                                      "--seed", "1", "--samples", "3", "--conditions", "thick", "--out", str(out),
                                      "--cache", str(cache)])
    stress.main()
    summary = json.loads(out.read_text())
    assert summary["split"] == "validation" and summary["samples"] == 3
    assert "the first 3 validation digits" in "\n".join(report.stress(summary))
    assert sorted(path.name.split("-")[1] for path in (cache / "validation").iterdir()) == ["clean", "thick"]
    assert not list(cache.glob("*.npz"))  # nothing under the test digits' names
    monkeypatch.setattr(sys, "argv", ["stress.py", "--run", f"reader={shipped}", "--split", "validation",
                                      "--samples", "3001"])
    with pytest.raises(SystemExit):
        stress.main()
