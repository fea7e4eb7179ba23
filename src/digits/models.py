"""The model registry: small builder functions that return an uncompiled `keras.Model`, by name.

Each builder takes the input shape, the number of classes and its own keyword arguments
(a run's `config.model_args`), so tuning and config files reach the same code; there is no
second model definition anywhere. Every model takes (batch, 28, 28, 1) float32 in 0..1 and
returns (batch, num_classes) probabilities. An unknown name raises `ValueError` listing the
known ones.
"""

from __future__ import annotations

import inspect
from typing import Callable

from . import runtime

runtime.load()  # TensorFlow quietly, before Keras imports it

import keras  # noqa: E402
from keras import layers  # noqa: E402

INPUT_SHAPE = (28, 28, 1)
MODELS: dict[str, Callable[..., keras.Model]] = {}
# Tunable builder arguments, declared beside each builder: name -> (kind, low, high[, log]) or
# ("categorical", choices). digits.tune samples these into `model_args`; nothing else changes.
SEARCH_SPACES: dict[str, dict[str, tuple]] = {}


def register(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """Add a builder to the registry under its function name."""
    MODELS[builder.__name__] = builder
    return builder


@register
def mlp(input_shape=INPUT_SHAPE, num_classes: int = 10, hidden_units: int = 128, hidden_layers: int = 1,
        dropout_rate: float = 0.0) -> keras.Model:
    """The original classic: Flatten 28x28 -> Dense 128 ReLU -> Dense 10 softmax (~97.7%)."""
    stack = [keras.Input(shape=input_shape), layers.Flatten()]
    for _ in range(hidden_layers):
        stack.append(layers.Dense(hidden_units, activation="relu"))
        if dropout_rate:
            stack.append(layers.Dropout(dropout_rate))
    stack.append(layers.Dense(num_classes, activation="softmax"))
    return keras.Sequential(stack, name="mlp")


SEARCH_SPACES["mlp"] = {"hidden_units": ("int", 32, 512, True), "hidden_layers": ("int", 1, 3),
                        "dropout_rate": ("float", 0.0, 0.5)}


def create_model(name: str, input_shape=INPUT_SHAPE, num_classes: int = 10, **model_args) -> keras.Model:
    """Build a registered model; unknown names and unknown arguments are ValueErrors."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; known models: {', '.join(sorted(MODELS))}")
    builder = MODELS[name]
    accepted = set(inspect.signature(builder).parameters) - {"input_shape", "num_classes"}
    unknown = sorted(set(model_args) - accepted)
    if unknown:
        raise ValueError(
            f"model '{name}' has no argument(s) {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(sorted(accepted)) or 'none'}"
        )
    return builder(input_shape=input_shape, num_classes=num_classes, **model_args)


def _conv_bn_relu(filters: int, kernel_size: int = 3, strides: int = 1, padding: str = "same") -> list:
    """Conv (no bias: BatchNorm has one) -> BatchNorm -> ReLU."""
    return [layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False),
            layers.BatchNormalization(), layers.ReLU()]


@register
def cnn(input_shape=INPUT_SHAPE, num_classes: int = 10, filters: int = 16, dense_units: int = 128,
        batch_norm: bool = False, dropout_rate: float = 0.0) -> keras.Model:
    """Small and fast: three Conv3x3-ReLU-MaxPool stages (filters, 2x, 4x), Dense, softmax.

    Built for time-to-accuracy on a CPU (configs/cnn-fast.json): 'same' padding keeps 28 ->
    14 -> 7 -> 3, few channels at full resolution, about 1.9 M multiply-adds per image.
    BatchNorm is optional: on a 2-core CPU it costs more time per epoch than it saves in
    epochs (measured in benchmarks/time_to_accuracy.py's notes in the README).
    """
    stack = [keras.Input(shape=input_shape)]
    for multiple in (1, 2, 4):  # 28x28 -> 14x14 -> 7x7 -> 3x3
        stack += (_conv_bn_relu(filters * multiple) if batch_norm else
                  [layers.Conv2D(filters * multiple, 3, padding="same", activation="relu")])
        stack.append(layers.MaxPooling2D(2))
    stack.append(layers.Flatten())
    if dense_units:
        stack.append(layers.Dense(dense_units, activation="relu"))
    if dropout_rate:
        stack.append(layers.Dropout(dropout_rate))
    stack.append(layers.Dense(num_classes, activation="softmax"))
    return keras.Sequential(stack, name="cnn")


SEARCH_SPACES["cnn"] = {"filters": ("int", 8, 48, False, 8), "dense_units": ("categorical", (0, 64, 128, 256)),
                        "dropout_rate": ("float", 0.0, 0.5)}


@register
def cnn_large(input_shape=INPUT_SHAPE, num_classes: int = 10, filters: int = 32,
              dropout_rate: float = 0.4) -> keras.Model:
    """For best accuracy: two blocks of 3x3, 3x3, strided 5x5 Conv-BN-ReLU with dropout, then 4x4.

    The shape of the strongest single Keras CNNs in public MNIST studies; meant to be trained
    with augmentation, a schedule and label smoothing (configs/best.json).
    """
    stack = [keras.Input(shape=input_shape)]
    for multiple in (1, 2):  # 28 -> 26 -> 24 -> 12, then 12 -> 10 -> 8 -> 4
        width = filters * multiple
        stack += [*_conv_bn_relu(width, padding="valid"), *_conv_bn_relu(width, padding="valid"),
                  *_conv_bn_relu(width, kernel_size=5, strides=2), layers.Dropout(dropout_rate)]
    stack += [*_conv_bn_relu(filters * 4, kernel_size=4, padding="valid"), layers.Flatten(),
              layers.Dropout(dropout_rate), layers.Dense(num_classes, activation="softmax")]
    return keras.Sequential(stack, name="cnn_large")


SEARCH_SPACES["cnn_large"] = {"filters": ("int", 16, 48, False, 8), "dropout_rate": ("float", 0.1, 0.5)}


@register
def convnet(input_shape=INPUT_SHAPE, num_classes: int = 10) -> keras.Model:
    """The keras-io `mnist_convnet` example, unchanged: the reference for time-to-accuracy."""
    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ], name="convnet")


def predict_batches(model: keras.Model, images, batch_size: int = 1024):
    """Probabilities for (N, 28, 28, 1) float inputs, in batches, without Keras's data adapters."""
    from .backends import in_batches

    return in_batches(lambda batch: model(batch, training=False), images, batch_size, model.output_shape[-1])
