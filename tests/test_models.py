"""The model registry: every model builds, predicts (batch, 10) probabilities and trains a few steps."""

import numpy as np
import pytest

from digits import models


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_registered_model_builds_predicts_and_trains(name):
    import keras

    keras.utils.set_random_seed(0)
    model = models.create_model(name)
    batch = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    probabilities = np.asarray(model(batch, training=False))
    assert probabilities.shape == (4, 10)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    labels = np.arange(4) % 10
    before = model.evaluate(batch, labels, verbose=0)
    model.fit(batch, labels, epochs=5, verbose=0)
    assert model.evaluate(batch, labels, verbose=0) < before


def test_mlp_is_the_original_architecture():
    model = models.create_model("mlp")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dense"]
    assert model.layers[1].units == 128 and model.layers[2].units == 10
    assert model.count_params() == 784 * 128 + 128 + 128 * 10 + 10


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet9000'; known models: .*mlp"):
        models.create_model("resnet9000")


def test_unknown_builder_argument_is_refused():
    with pytest.raises(ValueError, match="model 'mlp' has no argument.*'width'.*hidden_units"):
        models.create_model("mlp", width=3)


def test_builder_arguments_reach_the_model():
    assert models.create_model("mlp", hidden_units=32).layers[1].units == 32
