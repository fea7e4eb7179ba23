"""synthetic: the non-digits we draw for Outlier Exposure, in the order of src/digits/synthetic.py: fonts and
alphabets (no lookalikes), every family's raw pictures (seeded, inked after images.prepare), non_digits
(shape, dtype, mixing, progress), its cache (written, reused, damaged files drawn again) and workers (which end
with their parent); pairs; digits cut out of touching numbers (labels kept, seeded, cached) and how training
takes them."""

from __future__ import annotations

import math

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from digits import images, synthetic


# ---------------------------------------------------------------- fonts and alphabets


def test_training_fonts_are_matplotlibs_and_exist():
    fonts = synthetic.training_fonts()
    names = {font.name for font in fonts}
    assert {"DejaVuSans.ttf", "DejaVuSerif-BoldItalic.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf",
            "cmr10.ttf"} <= names
    assert all(font.is_file() and font.stat().st_size > 10_000 for font in fonts)


def test_alphabet_never_holds_lookalikes_unless_asked():
    default = synthetic.alphabet()
    assert len(default) == 52 - len(synthetic.LOOKALIKES)
    assert not set(default) & set(synthetic.LOOKALIKES)
    assert synthetic.alphabet(synthetic.LOOKALIKES) == synthetic.LOOKALIKES  # benchmarks/rejection.py's look-alikes
    assert synthetic.alphabet("AxA") == "Ax"
    with pytest.raises(ValueError, match="not letters"):
        synthetic.alphabet("AB7")
    with pytest.raises(ValueError, match="not letters"):
        synthetic.alphabet("")


def test_lookalikes_are_never_drawn_by_default():
    """The default letters draw exactly what the non-lookalike letters draw; the lookalikes draw otherwise."""
    others = "".join(char for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     if char not in synthetic.LOOKALIKES)
    default = synthetic.pictures("letters", 6, seed=3)
    chosen = synthetic.pictures("letters", 6, seed=3, letters=others)
    assert all(np.array_equal(first, second) for first, second in zip(default, chosen))
    lookalikes = synthetic.pictures("letters", 6, seed=3, letters=synthetic.LOOKALIKES)
    assert not any(first.shape == second.shape and np.array_equal(first, second)
                   for first, second in zip(default, lookalikes))


def test_every_symbol_font_draws_real_glyphs():
    """Computer Modern draws TeX's glyphs for ASCII punctuation ('<' as an inverted '!'): never used for symbols."""
    fonts = [str(font) for font in synthetic.training_fonts() if synthetic._faithful(font)]
    assert fonts and not any("/cm" in font for font in fonts)
    table = dict(synthetic._glyphs(synthetic.SYMBOLS, tuple(fonts)))
    assert set("#$%&@*+=<>?~^{}") <= set(table)
    assert not set(table) & set("|/\\()[]!0123456789")


def test_scripts_never_hold_greek_cyrillic_latin_or_digits():
    """benchmarks/rejection.py measures Greek and Cyrillic as a script no training step drew: the "scripts"
    family must never draw them (nor Latin letters, which "letters" handles, nor any kind of digit)."""
    import unicodedata

    chars = "".join(synthetic.SCRIPTS.values())
    assert len(chars) == len(set(chars)) and len(synthetic.SCRIPTS) >= 5
    for char in chars:
        name = unicodedata.name(char)
        assert not any(word in name for word in ("GREEK", "CYRILLIC", "LATIN", "DIGIT")), name
        assert char.isalpha() and not char.isdigit(), name
    table = [synthetic._glyphs(letters, tuple(map(str, synthetic.training_fonts())))
             for letters in synthetic.SCRIPTS.values()]
    assert all(table), "every script has letters the training fonts draw"


# ---------------------------------------------------------------- raw pictures


@pytest.mark.parametrize("family", synthetic.FAMILIES)
def test_every_family_renders_seeded_pictures_with_ink(family):
    drawn = synthetic.pictures(family, 6, seed=1)
    assert len(drawn) == 6
    for picture in drawn:
        assert picture.dtype == np.float32 and picture.ndim == 2
        assert synthetic.SIDE[0] <= min(picture.shape) and max(picture.shape) <= synthetic.SIDE[1]
        assert 0.0 <= picture.min() and picture.max() <= 1.0
        prepared = images.prepare(picture)
        assert prepared.ink_found and prepared.image.max() > 0.5
    again = synthetic.pictures(family, 6, seed=1)
    assert all(np.array_equal(first, second) for first, second in zip(drawn, again))
    other = synthetic.pictures(family, 6, seed=2)
    assert not any(first.shape == second.shape and np.array_equal(first, second) for first, second in zip(drawn, other))
    assert np.array_equal(synthetic.pictures(family, 3, seed=1)[2], drawn[2])  # picture i depends on (seed, i) only


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="letters, symbols, shapes, scribbles"):
        synthetic.pictures("digits", 1, seed=0)
    with pytest.raises(ValueError, match="letters, symbols, shapes, scribbles"):
        synthetic.non_digits(4, seed=0, families=("shapes", "faces"))
    with pytest.raises(ValueError, match="count=-1"):
        synthetic.pictures("shapes", -1, seed=0)
    with pytest.raises(ValueError, match="seed=-5"):
        synthetic.non_digits(4, seed=-5)
    with pytest.raises(ValueError, match="letters="):
        synthetic.pictures("shapes", 1, seed=0, letters="A")
    with pytest.raises(ValueError, match="not found"):
        synthetic.pictures("letters", 1, seed=0, fonts=["/nowhere/font.ttf"])
    with pytest.raises(ValueError, match="workers=0"):
        synthetic.non_digits(4, seed=0, workers=0)


def test_reads_as_one_catches_upright_bars_only():
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 12:15] = 1
    assert synthetic.reads_as_one(bar)
    slanted = np.zeros((28, 28), np.float32)
    for row in range(4, 24):  # leaning right by about 20 degrees, as many handwritten 1s do
        slanted[row, 17 - (row - 4) * 7 // 19:20 - (row - 4) * 7 // 19] = 1
    assert synthetic.reads_as_one(slanted)
    assert not synthetic.reads_as_one(bar.T)  # a dash, an arrow: not a 1
    rows, cols = np.mgrid[0:28, 0:28]
    ring = (np.abs(np.hypot(rows - 14, cols - 14) - 8) < 1.5).astype(np.float32)
    assert not synthetic.reads_as_one(ring)
    assert not synthetic.reads_as_one(np.zeros((28, 28)))


# ---------------------------------------------------------------- non_digits and its cache


def test_non_digits_are_prepared_mixed_and_seeded(monkeypatch):
    calls = []
    asked = []
    real = synthetic.pictures

    def recording(family, count, seed, fonts=None, letters=None):
        asked.append(family)
        return real(family, count, seed, fonts, letters)

    monkeypatch.setattr(synthetic, "pictures", recording)
    pixels = synthetic.non_digits(10, seed=0, progress=lambda done, total: calls.append((done, total)))
    assert pixels.shape == (10, 28, 28) and pixels.dtype == np.uint8
    assert (pixels.reshape(10, -1).max(1) > 128).all()  # every one has ink
    assert not any(synthetic.reads_as_one(image / 255) for image in pixels)
    assert set(asked) == set(synthetic.FAMILIES)
    assert calls[-1] == (10, 10) and [done for done, _ in calls] == sorted(done for done, _ in calls)
    synthetic.cache_path(10, 0).unlink()
    assert np.array_equal(synthetic.non_digits(10, seed=0), pixels)  # drawn again: the same
    assert not np.array_equal(synthetic.non_digits(10, seed=1), pixels)
    assert synthetic.non_digits(6, seed=0, families=("shapes",)).shape == (6, 28, 28)
    assert synthetic.non_digits(0, seed=0).shape == (0, 28, 28)


def test_cache_is_written_in_the_user_cache_and_reused(monkeypatch, tmp_path):
    pixels = synthetic.non_digits(8, seed=4)
    path = synthetic.cache_path(8, 4)
    assert path.is_file() and path.parent == tmp_path / "cache" / "digits" / "synthetic"  # conftest's XDG_CACHE_HOME
    assert not list(path.parent.glob(".*"))  # no temporary file left behind

    def fail(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(synthetic, "pictures", fail)
    calls = []
    assert np.array_equal(synthetic.non_digits(8, seed=4, progress=lambda *done: calls.append(done)), pixels)
    assert calls == [(8, 8)]
    assert synthetic.cache_path(8, 5) != path and synthetic.cache_path(8, 4, families=("shapes",)) != path


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shape"])
def test_a_damaged_cache_file_is_drawn_again(damage):
    pixels = synthetic.non_digits(8, seed=2)
    path = synthetic.cache_path(8, 2)
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        np.savez(path, images=np.zeros((3, 28, 28), np.uint8))
    assert np.array_equal(synthetic.non_digits(8, seed=2), pixels)
    with np.load(path) as stored:  # and the file is whole again
        assert np.array_equal(stored["images"], pixels)


def test_workers_do_not_change_the_result(monkeypatch, tmp_path):
    """Spawned worker processes (the path large requests take) draw exactly what one process draws."""
    alone = synthetic.non_digits(8, seed=6, workers=1)
    pools = []

    spawned = synthetic.worker_pool

    def recorded(processes, *rest):
        pools.append(processes)
        return spawned(processes, *rest)

    monkeypatch.setattr(synthetic, "worker_pool", recorded)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    assert np.array_equal(synthetic.non_digits(8, seed=6, workers=2), alone)
    assert pools == [2]


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_workers_end_when_their_parent_is_killed():
    """A drawing run killed outright (SIGKILL, no clean-up) takes its spawned workers with it: each worker watches
    its parent. Without that, they sleep on here for two minutes (and in training, draw on for half an hour)."""
    script = ("import time; from digits import synthetic\n"
              "synthetic._run(time.sleep, [(120,), (120,)], [1, 1], 2, None)\n")
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        workers, deadline = set(), time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:  # two workers (and the resource tracker) start
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert len(workers) >= 2, "the drawing workers never started"
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    for pid in alive:  # leave no sleeper behind when the check fails
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their killed parent"


# ---------------------------------------------------------------- pairs of digits


def _mnist_digits(count: int) -> np.ndarray:
    from digits import data

    return data.load_dataset("mnist", allow_download=False).x_train[:count]


def _ink_aspect(prepared: np.ndarray) -> float:
    top, left, bottom, right = images.bounds(prepared >= 128)
    return (right - left) / (bottom - top)


def test_pairs_put_two_digits_side_by_side_as_one_picture():
    """Two digits prepared as one picture are wide (MNIST's single digits are taller than wide); seeded."""
    digits = _mnist_digits(200)
    made = synthetic.pairs(digits, 24, seed=5)
    assert made.shape == (24, 28, 28) and made.dtype == np.uint8
    assert np.median([_ink_aspect(image) for image in made]) > 1.2
    assert np.median([_ink_aspect(digit) for digit in digits[:24]]) < 0.9
    assert np.array_equal(made, synthetic.pairs(digits, 24, seed=5))
    assert not np.array_equal(made, synthetic.pairs(digits, 24, seed=6))
    as_inputs = images.to_model_input(digits)  # (N, 28, 28, 1) float 0..1: the same pairs
    assert np.array_equal(synthetic.pairs(as_inputs, 24, seed=5), made)
    assert synthetic.pairs(digits, 0, seed=5).shape == (0, 28, 28)


def test_pairs_refuse_what_is_not_digits():
    with pytest.raises(ValueError, match="at least two"):
        synthetic.pairs(np.zeros((1, 28, 28), np.uint8), 3, seed=0)
    with pytest.raises(ValueError, match="at least two"):
        synthetic.pairs(np.zeros((28, 28), np.uint8), 3, seed=0)
    with pytest.raises(ValueError, match="seed"):
        synthetic.pairs(np.zeros((4, 28, 28), np.uint8), 3, seed=-1)


def test_outlier_exposure_shares_its_images_among_the_configured_families(monkeypatch):
    """train.non_digit_images: config.outlier_families share the non-digits evenly; pairs come from the training
    split for training and from the validation split for validation, never from the other."""
    from digits import config, train

    monkeypatch.setattr(train, "VALIDATION_NON_DIGITS", 10)
    digits = _mnist_digits(40)
    x_train, x_val = images.to_model_input(digits[:20]), images.to_model_input(digits[20:])
    asked = []
    pairs = synthetic.pairs
    monkeypatch.setattr(synthetic, "pairs", lambda source, count, seed: (asked.append((source, count)),
                                                                         pairs(source, count, seed))[1])
    recipe = config.Config(outlier_exposure=0.3, outlier_images=30, outlier_families=["shapes", "pairs"])
    training, validation = train.non_digit_images(recipe, x_train, x_val)
    assert training.shape == (30, 28, 28, 1) and validation.shape == (10, 28, 28, 1)
    assert [(source is x_train, source is x_val, count) for source, count in asked] == [(True, False, 15),
                                                                                        (False, True, 5)]
    assert np.median([_ink_aspect(image[..., 0] * 255) for image in training]) > 0.9  # half of them pairs
    asked.clear()
    default = config.Config(outlier_exposure=0.3, outlier_images=30)
    assert default.outlier_families == ["letters", "symbols", "shapes", "scribbles", "silhouettes"]
    training, validation = train.non_digit_images(default, x_train, x_val)
    assert [count for _, count in asked] == [0, 0] and training.shape == (30, 28, 28, 1)
    before = synthetic.non_digits(40, seed=42, families=tuple(default.outlier_families))  # what it drew before
    assert np.array_equal(training, images.to_model_input(before[:30]))
    cut, heard = [], []
    intruders = synthetic.intruders
    monkeypatch.setattr(synthetic, "intruders", lambda source, others, count, seed, progress: (
        cut.append((source, len(others), count, seed)), intruders(source, others, count, seed, progress))[1])
    recipe = config.Config(outlier_exposure=0.3, outlier_images=30, outlier_families=["shapes", "pairs", "intruders"])
    training, validation = train.non_digit_images(recipe, x_train, x_val, lambda *told: heard.append(told))
    assert training.shape == (30, 28, 28, 1) and validation.shape == (10, 28, 28, 1)
    assert [(source is x_train, source is x_val, others, count, seed) for source, others, count, seed in cut] == [
        (True, False, 10, 10, recipe.seed), (False, True, 4, 3, recipe.seed + 1)]  # each split's own shapes
    assert heard and {what for what, _, _ in heard} == {"drawing non-digits in numbers"}
    with pytest.raises(ValueError, match="intruders but nothing they are drawn from"):
        config.Config(outlier_exposure=0.3, outlier_families=["pairs", "intruders"]).validate()


# ---------------------------------------------------------------- digits cut out of touching numbers


def _rings_and_crosses(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 stand-ins for digits whose class shows after any fair cut: label 0 is a ring (its
    middle empty), label 1 a cross (its middle inked); sizes and strokes vary."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(3)
    out, labels = np.zeros((count, 28, 28), np.uint8), np.arange(count) % 2
    for index, label in enumerate(labels):
        picture = Image.new("L", (28, 28), 0)
        draw, pen, half = ImageDraw.Draw(picture), int(rng.integers(2, 4)), int(rng.integers(7, 10))
        if label:
            draw.line((14 - half, 5, 14 + half, 23), fill=255, width=pen)
            draw.line((14 + half, 5, 14 - half, 23), fill=255, width=pen)
        else:
            draw.ellipse((14 - half, 5, 14 + half, 23), outline=255, width=pen)
        out[index] = np.asarray(picture)
    return out, labels


def _middle_inked(image: np.ndarray) -> bool:
    return float(image[11:17, 11:17].mean()) > 0.25 * 255


def test_touching_pieces_keep_their_labels_and_are_seeded(monkeypatch, tmp_path):
    """Rings and crosses written touching, cut apart: the pieces labelled 1 (crosses) have their middle inked,
    those labelled 0 (rings) not, so each label is the digit its cut holds; the same seed draws the same pieces,
    from the cache or not, with one worker or two; another seed draws others."""
    digits, labels = _rings_and_crosses(40)
    monkeypatch.setattr(synthetic, "PIECE_CHUNK", 15)  # three tasks, so that two workers share them
    made, made_labels = synthetic.touching_pieces(digits, labels, 40, seed=4, workers=1)
    assert made.shape == (40, 28, 28) and made.dtype == np.uint8 and made_labels.shape == (40,)
    assert 10 <= made_labels.sum() <= 30  # both kinds are cut out
    crosses = [_middle_inked(image) for image in made]
    assert crosses == [bool(label) for label in made_labels], (crosses, made_labels.tolist())
    boxes = [images.bounds(image >= 128) for image in made]  # prepared: the larger side fills MNIST's 20 px box
    assert all(16 <= max(bottom - top, right - left) <= 22 for top, left, bottom, right in boxes), boxes
    again = synthetic.touching_pieces(digits, labels, 40, seed=4)  # from the cache
    assert all(np.array_equal(first, second) for first, second in zip((made, made_labels), again))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    drawn = synthetic.touching_pieces(images.to_model_input(digits), labels, 40, seed=4, workers=2)  # model inputs
    assert all(np.array_equal(first, second) for first, second in zip((made, made_labels), drawn))
    other, _ = synthetic.touching_pieces(digits, labels, 40, seed=5, workers=1)
    assert not np.array_equal(other, made)


def test_touching_pieces_of_mnist_digits_carry_the_label_of_the_digit_they_hold(tmp_path):
    """MNIST digits cut out of touching numbers: each piece's nearest source digit (both prepared, compared by
    correlation) nearly always has the piece's label (a piece keeps a stroke of its neighbour, or loses one of
    its own, so not always); a damaged cache file is drawn again, the same."""
    from digits import data

    dataset = data.load_dataset("mnist", allow_download=False)
    digits, labels = dataset.x_train[:150], dataset.y_train[:150]
    made, made_labels = synthetic.touching_pieces(digits, labels, 60, seed=1, workers=1)
    sources = np.stack([images.prepare(1.0 - digit / 255.0).image for digit in digits]).reshape(len(digits), -1)
    pieces = made.reshape(len(made), -1) / 255.0
    centred = [rows - rows.mean(1, keepdims=True) for rows in (sources, pieces)]
    unit = [rows / np.linalg.norm(rows, axis=1, keepdims=True) for rows in centred]
    nearest = labels[(unit[1] @ unit[0].T).argmax(1)]
    assert (nearest == made_labels).mean() >= 0.9, (nearest == made_labels).mean()
    [cached] = (tmp_path / "cache" / "digits" / "synthetic").glob("pieces-*.npz")
    cached.write_bytes(b"not a zip file")
    again = synthetic.touching_pieces(digits, labels, 60, seed=1, workers=1)
    assert all(np.array_equal(first, second) for first, second in zip((made, made_labels), again))


def test_intruders_are_the_non_digit_cut_out_of_a_number_and_seeded(monkeypatch, tmp_path):
    """Crosses (standing in for non-digits) written touching rings (the digits), cut apart: every piece taken has its
    middle inked, so it is the cross's; the same seed draws the same, from the cache or not, with one worker or two;
    another seed draws others; no non-digits is one ValueError."""
    shapes, labels = _rings_and_crosses(60)
    rings, crosses = shapes[labels == 0], shapes[labels == 1]
    monkeypatch.setattr(synthetic, "PIECE_CHUNK", 15)  # two tasks
    made = synthetic.intruders(rings, crosses, 30, seed=4, workers=1)
    assert made.shape == (30, 28, 28) and made.dtype == np.uint8
    assert all(_middle_inked(image) for image in made), [_middle_inked(image) for image in made]
    assert np.array_equal(synthetic.intruders(rings, crosses, 30, seed=4), made)  # from the cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    assert np.array_equal(synthetic.intruders(images.to_model_input(rings), crosses, 30, seed=4, workers=2), made)
    assert not np.array_equal(synthetic.intruders(rings, crosses, 30, seed=5, workers=1), made)
    with pytest.raises(ValueError, match="non_digits"):
        synthetic.intruders(rings, crosses[:0], 5, seed=0)


def test_touching_pieces_refuse_bad_arguments():
    digits, labels = _rings_and_crosses(4)
    with pytest.raises(ValueError, match="N labels"):
        synthetic.touching_pieces(digits, labels[:3], 5, seed=0)
    with pytest.raises(ValueError, match="N >= 2"):
        synthetic.touching_pieces(digits[:1], labels[:1], 5, seed=0)
    with pytest.raises(ValueError, match="count"):
        synthetic.touching_pieces(digits, labels, -1, seed=0)


def test_drawn_digits_join_the_training_split_only():
    """train.with_drawn_digits: config.touching_pieces digits cut from the training split's own digits, then
    config.digit_photos photos of them, then config.printed_digits digits printed in fonts, are appended with their
    labels, each drawing heard of by `progress`; all 0 leave the split as it is; a negative count is refused by the
    config."""
    from digits import config, data, train

    mnist = data.load_dataset("mnist", allow_download=False)
    digits, labels = mnist.x_train[:100], mnist.y_train[:100]
    x_train = images.to_model_input(digits)
    same = train.with_drawn_digits(config.Config(), x_train, labels)
    assert same[0] is x_train and same[1] is labels
    seen = []
    for pieces, photos, printed in ((12, 0, 0), (0, 8, 0), (12, 8, 0), (0, 0, 10), (12, 0, 10)):
        recipe = config.Config(touching_pieces=pieces, digit_photos=photos, printed_digits=printed, seed=3)
        grown, grown_labels = train.with_drawn_digits(recipe, x_train, labels, lambda *told: seen.append(told))
        assert grown.shape == (100 + pieces + photos + printed, 28, 28, 1) and grown.dtype == np.float32
        assert grown_labels.dtype == labels.dtype
        assert np.array_equal(grown[:100], x_train) and np.array_equal(grown_labels[:100], labels)
        drawn = [synthetic.touching_pieces(x_train, labels, pieces, seed=3)] if pieces else []
        drawn += [synthetic.digit_photos(x_train, labels, photos, seed=3)] if photos else []  # from the split's own
        drawn += [synthetic.printed_digits(printed, seed=3)] if printed else []  # from no digit of the split
        assert np.array_equal(grown[100:], np.concatenate([images.to_model_input(made) for made, _ in drawn]))
        assert np.array_equal(grown_labels[100:], np.concatenate([made_labels for _, made_labels in drawn]))
    assert ("drawing touching pieces", 12, 12) in seen and ("drawing digit photos", 8, 8) in seen
    assert ("drawing printed digits", 10, 10) in seen
    pens = config.Config(printed_digits=10, printed_pen_share=1.0, seed=3)  # the recipe's pen share is the one drawn
    grown, grown_labels = train.with_drawn_digits(pens, x_train, labels)
    made, made_labels = synthetic.printed_digits(10, seed=3, pen_share=1.0)
    assert np.array_equal(grown[100:], images.to_model_input(made)) and set(grown_labels[100:].tolist()) <= {1, 7}
    for setting in ("touching_pieces", "digit_photos", "printed_digits"):
        with pytest.raises(ValueError, match=f"{setting} must be 0 or more"):
            config.Config(**{setting: -1}).validate()
    with pytest.raises(ValueError, match="printed_pen_share is a share"):
        config.Config(printed_pen_share=-0.1).validate()


def test_printed_digits_keep_their_labels_and_are_seeded(monkeypatch, tmp_path):
    """Digits printed in matplotlib's fonts, prepared: each is nearest, by correlation, to the same digit printed
    plainly in the same fonts and prepared, nearly always; each fills MNIST's 20 px box; the same seed prints the
    same digits (from the cache, with one worker or two), another seed others. TeX's math italic, whose figures
    are old-style, is not among the fonts; a font that is not there is refused with the fix."""
    monkeypatch.setattr(synthetic, "PEN_SHARE", 0.0)
    monkeypatch.setattr(synthetic, "PRINTED_CHUNK", 30)  # three tasks, so that two workers share them
    made, labels = synthetic.printed_digits(90, seed=2, workers=1)
    assert made.shape == (90, 28, 28) and made.dtype == np.uint8 and len(set(labels.tolist())) == 10
    fonts = synthetic.numeral_fonts()
    assert fonts and "cmmi10" not in {font.stem for font in fonts} and "DejaVuSans" in {font.stem for font in fonts}
    plain, plain_labels = [], []
    for font in fonts:
        for digit in range(10):
            picture = synthetic._text(str(digit), synthetic._font(str(font), 64), 0)
            plain.append(images.prepare(1.0 - np.asarray(picture, np.float32) / 255).image.reshape(-1))
            plain_labels.append(digit)
    centred = [rows - rows.mean(1, keepdims=True) for rows in (np.array(plain), made.reshape(90, -1) / 255.0)]
    unit = [rows / np.linalg.norm(rows, axis=1, keepdims=True) for rows in centred]
    assert (np.array(plain_labels)[(unit[1] @ unit[0].T).argmax(1)] == labels).mean() >= 0.9
    boxes = [images.bounds(image >= 128) for image in made]
    assert all(16 <= max(bottom - top, right - left) <= 22 for top, left, bottom, right in boxes), boxes
    again = synthetic.printed_digits(90, seed=2)  # from the cache
    assert all(np.array_equal(first, second) for first, second in zip((made, labels), again))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    drawn = synthetic.printed_digits(90, seed=2, workers=2)
    assert all(np.array_equal(first, second) for first, second in zip((made, labels), drawn))
    assert not np.array_equal(synthetic.printed_digits(90, seed=3, workers=1)[0], made)
    with pytest.raises(ValueError, match="not found; pass existing"):
        synthetic.printed_digits(5, seed=1, fonts=[tmp_path / "absent.ttf"])


def test_pen_drawn_ones_have_a_falling_flag_and_sevens_a_level_bar():
    """The pen-drawn share of printed_digits holds only 1s and 7s. A 1's flag falls from the top of its stem,
    leftwards, by ONE_FLAG's angle; a 7's bar runs left from the top of its stem within SEVEN_BAR's angle of level,
    its stem upright or leaning left: the shapes that tell a flagged 1 from a 7 are drawn apart."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        one = synthetic._pen_digit(1, rng)[0][1]  # flag end, stem top, foot
        drop, reach = one[0][1] - one[1][1], one[1][0] - one[0][0]
        assert reach > 0 and drop > 0
        low, high = synthetic.ONE_FLAG[0]
        assert low - 1e-6 <= math.degrees(math.atan2(drop, reach)) <= high + 1e-6
        assert one[2][1] - one[1][1] == 1.0  # the stem runs the digit's height
        seven = synthetic._pen_digit(7, rng)[0][1]  # bar end, bar's right end (the stem's top), foot
        bar = seven[1] - seven[0]
        assert bar[0] >= synthetic.SEVEN_BAR[1][0] * math.cos(math.radians(10)) - 1e-6
        assert abs(math.degrees(math.atan2(bar[1], bar[0]))) <= synthetic.SEVEN_BAR[0][1] + 1e-6
        assert seven[2][1] - seven[1][1] == 1.0 and seven[2][0] <= seven[1][0]  # the stem upright or leaning left
    _, labels = synthetic.printed_digits(40, seed=5, pen_share=1.0)
    assert set(labels.tolist()) == {1, 7}
    _, labels = synthetic.printed_digits(40, seed=5, pen_share=0.0)  # fonts only: every digit
    assert len(set(labels.tolist())) >= 8
    with pytest.raises(ValueError, match="pen_share is a share"):
        synthetic.printed_digits(4, seed=5, pen_share=1.5)


def test_digit_photos_are_the_readers_view_of_their_own_digit_and_are_seeded(monkeypatch, tmp_path):
    """Photos of MNIST digits, prepared: each keeps its digit's label (the prepared photo is nearest, by
    correlation, to a prepared digit of its own label, nearly always), fills MNIST's 20 px box, and the same seed
    draws the same photos (from the cache, with one worker or two); another seed draws others. A bolder pen draws
    more ink; a digit drawn small and enlarged has fewer distinct shades than one drawn at full size."""
    from digits import data

    monkeypatch.setattr(synthetic, "PIECE_CHUNK", 20)  # three tasks, so that two workers share them
    dataset = data.load_dataset("mnist", allow_download=False)
    digits, labels = dataset.x_train[:150], dataset.y_train[:150]
    made, made_labels = synthetic.digit_photos(digits, labels, 60, seed=2, workers=1)
    assert made.shape == (60, 28, 28) and made.dtype == np.uint8 and set(made_labels) <= set(labels.tolist())
    sources = np.stack([images.prepare(1.0 - digit / 255.0).image for digit in digits]).reshape(len(digits), -1)
    centred = [rows - rows.mean(1, keepdims=True) for rows in (sources, made.reshape(len(made), -1) / 255.0)]
    unit = [rows / np.linalg.norm(rows, axis=1, keepdims=True) for rows in centred]
    assert (labels[(unit[1] @ unit[0].T).argmax(1)] == made_labels).mean() >= 0.9
    boxes = [images.bounds(image >= 128) for image in made]
    assert all(16 <= max(bottom - top, right - left) <= 22 for top, left, bottom, right in boxes), boxes
    again = synthetic.digit_photos(digits, labels, 60, seed=2)  # from the cache
    assert all(np.array_equal(first, second) for first, second in zip((made, made_labels), again))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    drawn = synthetic.digit_photos(images.to_model_input(digits), labels, 60, seed=2, workers=2)
    assert all(np.array_equal(first, second) for first, second in zip((made, made_labels), drawn))
    assert not np.array_equal(synthetic.digit_photos(digits, labels, 60, seed=3, workers=1)[0], made)
    eight = digits[labels == 8][0] / 255.0
    for setting, values in (("PHOTO_LOWRES", 0.0), ("PHOTO_BLUR", (0.0, 0.0))):
        monkeypatch.setattr(synthetic, setting, values)
    monkeypatch.setattr(synthetic, "PHOTO_SCALE", (3.0, 3.0))
    inks = {}
    for change in (-0.8, 2.5):
        monkeypatch.setattr(synthetic, "PHOTO_STROKE", (change, change))
        inks[change] = synthetic._photo_ink(eight, np.random.default_rng(0))
    assert inks[2.5].sum() > 1.5 * inks[-0.8].sum()  # the bolder pen
    from PIL import Image

    small = synthetic._drawn_small(inks[2.5], 10, Image.Resampling.NEAREST)  # 96 px, the digit 10 px tall: 48 px
    assert small.shape == inks[2.5].shape and len(np.unique(small, axis=0)) <= 48 < len(np.unique(inks[2.5], axis=0))
    assert abs(small.mean() - inks[2.5].mean()) < 0.02  # the same ink, coarser
