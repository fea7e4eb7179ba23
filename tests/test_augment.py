"""digits.augment: every transform keeps each picture with its label, is seeded, and does what its name says
(checked on synthetic strokes, where the effect can be measured)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO
from scipy import ndimage

from digits import augment, config, data, train

tf = pytest.importorskip("tensorflow")

ALL = {"shift": 2.5, "rotation": 10.0, "zoom": 0.1, "slant": 0.25, "aspect": 0.2, "elastic": 1.2, "stroke": 2.0,
       "broken": 0.15, "lowres": 0.2, "blur": 0.8, "texture": 0.4}


def _bars(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Label k (0..5): a vertical bar (rows 4-24, 2 px wide) centred on column 3.5 + 4k: where the ink is tells
    the label."""
    labels = np.arange(count) % 6
    images = np.zeros((count, 28, 28, 1), np.float32)
    for index, label in enumerate(labels):
        images[index, 4:24, 3 + 4 * label:5 + 4 * label, 0] = 1.0
    return images, labels


def _run(images, seed=(1, 2), **settings) -> np.ndarray:
    return augment.batch(tf.constant(images), tf.constant(seed, tf.int64), **settings).numpy()


def _column(image: np.ndarray) -> float:
    """The ink's centre column."""
    weights = image[..., 0].sum(0)
    return float((weights * np.arange(28)).sum() / weights.sum())


def test_every_setting_is_a_config_field_and_reaches_the_pipeline():
    assert set(config.AUGMENTATIONS) == set(augment.SETTINGS)
    recipe = config.load(REPO / "configs" / "reader.json")
    assert train.augmentation(recipe) == {name: getattr(recipe, f"augment_{name}") for name in augment.SETTINGS}
    assert all(train.augmentation(recipe).values()), "the reader recipe uses every augmentation"


@pytest.mark.parametrize("bad", [{"augment_elastic": -1.0}, {"augment_lowres": 1.5}, {"augment_aspect": 1.0}])
def test_bad_settings_are_refused_with_the_fix(bad):
    with pytest.raises(ValueError, match=list(bad)[0]):
        config.from_dict(bad)


def test_all_off_is_the_identity():
    images, _ = _bars(8)
    np.testing.assert_allclose(_run(images), images, atol=1e-6)


def test_seeded_same_seed_same_pictures_other_seed_others():
    images, _ = _bars(16)
    first, again, other = _run(images, **ALL), _run(images, **ALL), _run(images, (1, 3), **ALL)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first, images)


def test_labels_stay_with_their_pictures_through_the_pipeline():
    images, labels = _bars(200)
    pipeline = data.make_tf_dataset(images, labels, 32, shuffle=True, seed=5, num_classes=10,
                                    augment={**ALL, "shift": 0.5, "elastic": 0.5, "zoom": 0.0, "aspect": 0.0})
    seen = 0
    for batch, targets in pipeline:
        for image, target in zip(batch.numpy(), targets.numpy()):
            label = int(target.argmax())
            # the bar stays nearest its own column (bars of neighbouring labels are 4 px apart); scaling about
            # the centre is left out here, as it moves a bar near the edge by more than that
            inked = image[..., 0] * (image[..., 0] > 0.5)
            assert abs(_column(inked[..., None]) - (3.5 + 4 * label)) < 2.0, label
            assert image.max() > 0.3  # never blanked out
        seen += len(targets)
    assert seen == 200


def test_a_thicker_stroke_has_more_ink_and_a_thinner_one_less():
    images = np.zeros((64, 28, 28, 1), np.float32)
    images[:, 4:24, 12:17] = 1.0  # a 5 px bar: thinning by a pixel or two leaves a thinner bar
    changed = _run(images, stroke=3.0)
    ink = changed.sum((1, 2, 3)) / images.sum((1, 2, 3))
    assert ink.max() > 1.8  # up to 3 px wider on a 2 px bar
    assert ink.min() < 0.95  # some are drawn thinner
    assert np.mean(ink) > 1.0  # wider more often than thinner


def test_a_slant_moves_the_top_and_keeps_the_bottom_opposite():
    images = np.repeat(_bars(1)[0], 32, 0)  # a vertical bar, rows 4-24
    slanted = _run(images, slant=0.4)
    tops = np.array([_column(image[4:9]) for image in slanted])
    bottoms = np.array([_column(image[19:24]) for image in slanted])
    lean = tops - bottoms
    assert (lean > 1).any() and (lean < -1).any()  # leaning both ways
    assert np.abs(lean).max() <= 0.4 * 20 + 1  # by at most slant x height


def test_aspect_changes_the_width_not_the_height():
    square = np.zeros((32, 28, 28, 1), np.float32)
    square[:, 8:20, 8:20] = 1.0
    stretched = _run(square, aspect=0.3)
    widths = (stretched[..., 0].max(1) > 0.5).sum(1)
    heights = (stretched[..., 0].max(2) > 0.5).sum(1)
    assert widths.min() < 11 and widths.max() > 13
    assert set(heights) <= {11, 12, 13}


def test_elastic_bends_a_straight_bar_but_keeps_its_ink():
    images = np.repeat(_bars(1)[0], 16, 0)
    bent = _run(images, elastic=1.5)
    centres = np.array([[_column(image[row:row + 1] + 1e-6) for row in range(6, 22)] for image in bent])
    assert np.ptp(centres, axis=1).max() > 1.0  # the bar is no longer straight
    assert np.allclose(bent.sum((1, 2, 3)), images.sum((1, 2, 3)), rtol=0.35)


def test_broken_cuts_the_stroke():
    images = np.repeat(_bars(1)[0], 32, 0)
    broken = _run(images, broken=1.0)
    pieces = [ndimage.label(image[..., 0] > 0.5)[1] for image in broken]
    assert max(pieces) >= 3 and np.mean(np.array(pieces) >= 2) >= 0.4  # a gap may run along the bar
    untouched = _run(images, broken=0.3)
    assert 0 < sum(not np.allclose(a, b) for a, b in zip(untouched, images)) < 32


def test_lowres_blur_and_texture_soften_the_edges():
    images = np.repeat(_bars(1)[0], 16, 0)
    sharp_edges = (images[..., 0] > 0.9).sum()
    for settings in ({"lowres": 1.0}, {"blur": 1.5}):
        soft = _run(images, **settings)
        assert (soft > 0.05).sum() > (images > 0.05).sum()  # grey spreads past the bar
        assert (soft[..., 0] > 0.9).sum() < sharp_edges
        assert np.allclose(soft.max((1, 2, 3)), 1.0)  # ink is brought back to full strength
    textured = _run(images, texture=1.0)
    inside = textured[:, 4:24, 4:6, 0]
    assert inside.std() > 0.02  # uneven ink
    assert (textured[:, :, 14:, 0] > 0).mean() > 0.3  # paper noise away from the bar


@pytest.mark.parametrize("recipe_file", ["reader.json", "reader-v7.json", "reader-v10.json", "reader-v11.json",
                                         "reader-v12.json"])
def test_the_reader_recipe_builds_and_trains_a_few_steps(tmp_path, recipe_file):
    import dataclasses
    import json

    recipe = config.load(REPO / "configs" / recipe_file)
    recipe = dataclasses.replace(recipe, epochs=1, limit=640, outlier_images=64, touching_pieces=32,
                                 digit_photos=32 if recipe.digit_photos else 0,
                                 printed_digits=32 if recipe.printed_digits else 0)
    result = train.train(recipe, out=tmp_path / "run", verbose=0, tensorboard=False)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["digit_photos"] == recipe.digit_photos and saved["printed_digits"] == recipe.printed_digits
    assert saved["printed_pen_share"] == recipe.printed_pen_share
    assert {key: saved[key] for key in saved if key.startswith("augment_")} == \
        {f"augment_{name}": value for name, value in train.augmentation(recipe).items()}
    assert np.isfinite(result.history["loss"]).all() and 0.0 <= result.metrics["test_accuracy"] <= 1.0
