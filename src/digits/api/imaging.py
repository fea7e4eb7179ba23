"""The API's one door into `digits.images`, the single preprocessing path for every picture.

Uploads, base64 images and the drawing page's PNGs all pass through here and nowhere else:
`read(data, name, mode, predict)` decodes and prepares one picture in the mode asked for.
It runs on a worker thread (decoding a photo takes tens of milliseconds). Bad pictures
(not an image, truncated, a decompression bomb, an unsupported format) raise
`images.ImageError`, a `ValueError` with one line naming the problem and the fix. Any other
failure inside digits.images on an odd picture is logged with its traceback (it is a bug
there) and also becomes an `ImageError`, so one strange upload never costs a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import images, multidigit

ImageError = images.ImageError
MODES = ("digit", "number", "auto")
log = logging.getLogger("digits.api")


@dataclass
class Digit:
    """One picture prepared for the single-digit model call (run batched by the caller)."""

    image: np.ndarray  # (28, 28) float32 0..1, ink bright: what the model sees
    ink_found: bool
    inverted: bool
    box: tuple | None


@dataclass
class Number:
    """A picture read as a whole number by `multidigit.read_number`, plus what the model saw per digit."""

    reading: dict  # number, digits [{digit, confidence, box}], confidence, ink_found
    inputs: np.ndarray | None  # (D, 28, 28) float32, one per digit (None if read_number did not show them)
    probabilities: np.ndarray | None  # (D, classes)


def read(data: bytes, name: str, mode: str, predict) -> Digit | Number:
    """Decode `data` and prepare it: one digit (`mode="digit"`), a number, or `auto` (a number when
    several digits are found). `predict` ((N, 28, 28) -> (N, classes)) is used only for numbers."""
    try:
        return _read(data, name, mode, predict)
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001  (a bug in the image path must not become a 500 for the user)
        log.exception("digits.images failed on %s (mode %s); answering 422", name, mode)
        raise ImageError(f"{name} could not be prepared ({type(error).__name__}); try a tighter crop, another "
                         f"photo, or mode=digit") from None


def _read(data: bytes, name: str, mode: str, predict) -> Digit | Number:
    gray = images.load_gray(data, name=name)
    if mode in ("number", "auto"):
        calls = []

        def recording_predict(batch):  # read_number's last call classifies the chosen digits: keep it
            probabilities = np.asarray(predict(batch))
            calls.append((np.asarray(batch, np.float32).reshape(-1, 28, 28), probabilities))
            return probabilities

        reading = multidigit.read_number(gray, recording_predict)
        count = len(reading["digits"])
        if mode == "number" or count > 1:  # auto: a number when the reader finds several digits
            inputs, probabilities = calls[-1] if calls and len(calls[-1][0]) == count else (None, None)
            return Number(reading, inputs, probabilities)
    prepared = images.prepare(gray)
    return Digit(prepared.image, bool(prepared.ink_found), bool(prepared.inverted), prepared.box)
