"""Raw pixel batches from any protocol -> the model's (N, 28, 28) float32 in 0..1, or a ValueError.

One convention for every protocol: a batch is (N, 28, 28) or (N, 28, 28, 1) (a single
28x28 image is a batch of one where the protocol allows it); uint8 is 0..255; floats are
0..1, or 0..255 when any value is above 1. NaN, infinities, negative values, values above
255, booleans, strings and ragged nesting are refused with a message saying what to send.
Raw pixels are used as given (already MNIST-style: ink bright on black), not re-prepared.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

SIDE = 28


def as_array(value, what: str) -> np.ndarray:
    """A JSON value (nested lists of numbers) as a numeric array."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting
        raise ValueError(f"{what} is not a rectangular array (rows of different lengths); "
                         f"send {SIDE} rows of {SIDE} numbers per image") from None
    if array.dtype == object or array.dtype.kind in "USbV":
        raise ValueError(f"{what} must hold only numbers (0..1 or 0..255), not "
                         f"{'true/false' if array.dtype.kind == 'b' else 'strings, nulls or mixed values'}")
    if array.dtype.kind == "c":
        raise ValueError(f"{what} holds complex numbers; send real pixel values")
    return array


def uint8_image(value) -> np.ndarray | None:
    """The common request, one 28x28 image of whole numbers 0..255 as nested lists, as a (1, 28, 28)
    uint8 array in half the time np.asarray takes (bytes() packs the ints in C); None for anything
    else (floats, batches, bad values), which then takes the general path and its checks."""
    if type(value) is not list or len(value) != SIDE or not all(type(row) is list and len(row) == SIDE
                                                                  for row in value):
        return None
    if type(value[0][0]) is bool:  # an all-boolean image is refused by the general path; keep it so
        return None
    try:
        flat = bytes(chain.from_iterable(value))
    except (TypeError, ValueError):  # a float, a string or null, a value outside 0..255
        return None
    return np.frombuffer(flat, np.uint8).reshape(1, SIDE, SIDE)


def to_batch(array: np.ndarray, what: str, max_batch: int, single_ok: bool = True) -> np.ndarray:
    """(N, 28, 28) float32 in 0..1 from a numeric array of shape (28, 28), (N, 28, 28) or (N, 28, 28, 1)."""
    if single_ok and array.shape == (SIDE, SIDE):
        array = array[None]
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1:] != (SIDE, SIDE):
        expected = "(28, 28), (N, 28, 28) or (N, 28, 28, 1)" if single_ok else "(N, 28, 28) or (N, 28, 28, 1)"
        raise ValueError(f"{what} has shape {tuple(array.shape)}; expected {expected}")
    if len(array) == 0:
        raise ValueError(f"{what} holds no images; send at least one {SIDE}x{SIDE} image")
    if len(array) > max_batch:
        raise BatchTooLarge(f"{what} holds {len(array)} images, more than the limit of {max_batch}; "
                            "split the batch (or raise DIGITS_MAX_BATCH)")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what} has dtype {array.dtype}; send uint8 (0..255) or floats (0..1)")
    images = array.astype(np.float32)
    # NaN propagates into both; ufunc.reduce skips ndarray.min's Python wrapper (this is the hot path)
    low, high = float(np.minimum.reduce(images, axis=None)), float(np.maximum.reduce(images, axis=None))
    if low != low or high != high or abs(low) == np.inf or abs(high) == np.inf:
        raise ValueError(f"{what} holds NaN or infinite values; send finite pixels in 0..1 or 0..255")
    if low < 0 or high > 255:
        raise ValueError(f"{what} holds values from {low:g} to {high:g}; pixels must be in 0..1 or 0..255")
    if high > 1:
        images /= 255.0
    return images


class BatchTooLarge(ValueError):
    """More images than Settings.max_batch (answered with 413)."""
