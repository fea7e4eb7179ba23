"""Training recipes: augmentation, schedule, keep-best, mixed precision, and the cnn recipe on real data."""

import json
from pathlib import Path

import numpy as np
import pytest

from digits import config, data, models, train

ROOT = Path(__file__).resolve().parents[1]


def _labelled_blocks(count=64):
    """Images whose ink brightness encodes the label: label k -> a 12x12 block of value (k+1)/10."""
    labels = np.arange(count) % 10
    images = np.zeros((count, 28, 28, 1), np.float32)
    for index, label in enumerate(labels):
        images[index, 8:20, 8:20, 0] = (label + 1) / 10
    return images, labels


def test_augmentation_keeps_labels_with_their_images():
    images, labels = _labelled_blocks()
    pipeline = data.make_tf_dataset(images, labels, 16, shuffle=True, seed=3,
                                    augment={"shift": 2.5, "rotation": 15, "zoom": 0.1})
    seen = 0
    for batch, batch_labels in pipeline:
        batch, batch_labels = batch.numpy(), batch_labels.numpy()
        for image, label in zip(batch, batch_labels):
            # the block's interior keeps its brightness, wherever the transform moved it
            assert np.isclose(image.max(), (label + 1) / 10, atol=1e-3)
            assert not np.array_equal(image, images[0] * 0)  # nothing was blanked out
        seen += len(batch)
    assert seen == len(images)


def test_augmentation_moves_pixels_and_is_reproducible():
    images, labels = _labelled_blocks(16)
    first = next(iter(data.make_tf_dataset(images, labels, 16, seed=1, augment={"shift": 3.0})))[0].numpy()
    again = next(iter(data.make_tf_dataset(images, labels, 16, seed=1, augment={"shift": 3.0})))[0].numpy()
    other = next(iter(data.make_tf_dataset(images, labels, 16, seed=2, augment={"shift": 3.0})))[0].numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, images)


def test_zero_augmentation_is_the_identity():
    import tensorflow as tf

    images, _ = _labelled_blocks(4)
    same = data.augment_batch(tf.constant(images), tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(same.numpy(), images, atol=1e-6)


def test_one_hot_labels_for_label_smoothing():
    images, labels = _labelled_blocks(10)
    _, one_hot = next(iter(data.make_tf_dataset(images, labels, 10, num_classes=10)))
    np.testing.assert_array_equal(one_hot.numpy().argmax(1), labels)


def test_one_cycle_schedule_shape():
    schedule = train.OneCycle(peak=0.01, total_steps=100, warmup_steps=20)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == pytest.approx(0.0004)
    assert rates.argmax() == 20 and rates[20] == pytest.approx(0.01)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) <= 1e-9)
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)
    assert train.OneCycle(**schedule.get_config()).get_config() == schedule.get_config()


def test_keep_best_mixed_precision_and_schedule_in_one_small_run(tmp_path):
    import keras

    settings = config.Config(model="cnn", epochs=3, limit=1500, batch_size=64, learning_rate=0.01,
                             schedule="one_cycle", label_smoothing=0.1, augment_shift=1.0, keep_best=True,
                             precision="mixed_bfloat16", model_args={"filters": 8, "dense_units": 32})
    result = train.train(settings, out=tmp_path / "run", verbose=0)
    history = result.history
    assert result.metrics["kept_epoch"] == int(np.argmax(history["val_accuracy"])) + 1
    assert result.metrics["precision"] == "mixed_bfloat16"
    assert not (result.run_dir / "best.weights.h5").exists()  # scratch files do not reach the run
    model = keras.models.load_model(result.run_dir / "model.keras", compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}  # saved to run anywhere
    assert result.metrics["test_accuracy"] > 0.5


@pytest.mark.slow
def test_cnn_fast_recipe_reaches_985_on_the_real_test_set(cnn_fast_run):
    metrics = json.loads((cnn_fast_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.985, metrics["test_accuracy"]
    assert metrics["test_images"] == 10000 and metrics["epochs"] == 2


@pytest.mark.parametrize("name", sorted(path.name for path in (ROOT / "configs").glob("*.json")))
def test_shipped_recipes_load_and_build(name):
    loaded = config.load(ROOT / "configs" / name)
    assert loaded.model in {"cnn", "cnn_large"}
    assert json.loads((ROOT / "configs" / name).read_text())["model"] == loaded.model
    model = models.create_model(loaded.model, **loaded.model_args)  # the recipe's model arguments are real ones
    assert model.output_shape == (None, 10)
