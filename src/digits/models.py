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

from . import runtime  # noqa: F401  (imports TensorFlow quietly before Keras does)

import keras  # noqa: E402
from keras import layers  # noqa: E402

INPUT_SHAPE = (28, 28, 1)
MODELS: dict[str, Callable[..., keras.Model]] = {}


def register(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """Add a builder to the registry under its function name."""
    MODELS[builder.__name__] = builder
    return builder


@register
def mlp(input_shape=INPUT_SHAPE, num_classes: int = 10, hidden_units: int = 128,
        dropout_rate: float = 0.0) -> keras.Model:
    """The original classic: Flatten 28x28 -> Dense 128 ReLU -> Dense 10 softmax (~97.7%)."""
    stack = [keras.Input(shape=input_shape), layers.Flatten(), layers.Dense(hidden_units, activation="relu")]
    if dropout_rate:
        stack.append(layers.Dropout(dropout_rate))
    stack.append(layers.Dense(num_classes, activation="softmax"))
    return keras.Sequential(stack, name="mlp")


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
