"""Request inputs -> what the model or the reading path takes, or a ValueError saying what to send.

Raw pixels from any protocol (`/predict` pixels, V2 tensors, TF Serving instances): a batch
is (N, 28, 28) or (N, 28, 28, 1) (a single 28x28 image is a batch of one where the protocol
allows it), scaled by the one rule of `images.to_model_input` (uint8 0..255; other numbers
0..1, or 0..255 when any value is above 1). NaN, infinities, values outside 0..255,
booleans, strings and ragged nesting are refused. Raw pixels are used as given (already
MNIST-style: ink bright on black), not re-prepared. Pictures (files, base64) are read by
`reading.read`, the path every interface shares (`read_picture`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import warnings
from itertools import chain

import numpy as np
from PIL import Image

from .. import images, reading
from ..images import to_model_input
from .deps import ApiError

log = logging.getLogger("digits.api")
SIDE = 28
# a picture counts at least this many pixels of work: reading even a tiny one (cleaning, cutting, model calls)
# costs about what decoding and cleaning a quarter megapixel does
PICTURE_FLOOR = 250_000


def as_array(value, what: str, max_batch: int | None = None) -> np.ndarray:
    """A JSON value (nested lists of numbers) as a numeric array. With `max_batch`, a list too long to be a batch
    or one image's rows is refused before it is converted (BatchTooLarge): converting 8 million numbers holds
    the GIL for half a second, whichever thread does it."""
    if max_batch is not None and isinstance(value, list) and len(value) > max(max_batch, SIDE):
        raise BatchTooLarge(f"{what} holds {len(value):,} entries, more than the limit of {max_batch} images; "
                            "split the batch (or raise DIGITS_MAX_BATCH)")
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
    return to_model_input(array, what)[..., 0]


class BatchTooLarge(ValueError):
    """More images than Settings.max_batch (answered with 413)."""


def decode_base64(text, position: int) -> bytes:
    """An image file's bytes from base64 (or a base64 data: URL); 422 naming `image[position]` if not."""
    what = "image" if position < 0 else f"image[{position}]"
    if not isinstance(text, str):
        raise ApiError(422, f"{what} must be a base64 string of an image file, not {type(text).__name__}")
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ApiError(422, f"{what} is a data: URL without ;base64; send base64-encoded image bytes")
    text = "".join(text.split())
    try:
        return base64.b64decode(text, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{what} is not valid base64; encode the image file's bytes with base64") from None


def picture_pixels(data: bytes) -> int:
    """The work of reading an upload, in pixels, from its header alone (nothing is decoded): its declared
    width x height, at least PICTURE_FLOOR. Files the reading path refuses before decoding (not a picture,
    more than images.MAX_PIXELS) count PICTURE_FLOOR: refusing them is cheap, and they get their own 422."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                declared = image.width * image.height
    except Exception:  # noqa: BLE001  (anything Pillow cannot open is the reading path's 422)
        return PICTURE_FLOOR
    return PICTURE_FLOOR if declared > images.MAX_PIXELS else max(declared, PICTURE_FLOOR)


def read_picture(data: bytes, name: str, mode: str, predictor, uncertain_below: float,
                 reject_below: float | None = None) -> reading.Reading:
    """`reading.read` on an upload, on a worker thread. Bad pictures raise `images.ImageError` (one line
    naming the problem and the fix); any other failure on an odd picture is logged with its traceback
    (a bug in the reading path) and also becomes an ImageError, so one strange upload never costs a 500."""
    try:
        return reading.read(data, mode, predictor, uncertain_below, name=name, reject_below=reject_below)
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001
        log.exception("reading %s failed (mode %s); answering 422", name, mode)
        raise images.ImageError(f"{name} could not be read ({type(error).__name__}); try a tighter crop, another "
                                "photo, or mode=digit") from None


@contextlib.contextmanager
def answered_as(invalid: int = 400):
    """Input errors inside the block become HTTP errors: too many images 413, anything else `invalid`."""
    try:
        yield
    except BatchTooLarge as error:
        raise ApiError(413, str(error)) from None
    except ValueError as error:
        raise ApiError(invalid, str(error)) from None
