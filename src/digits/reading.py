"""Reading a picture: the one path from any picture to an answer, shared by every interface.

    read(source, mode="auto", model=None) -> Reading

`source` is a path, bytes, a PIL image or an array (a photo, a scan, a canvas, an MNIST
image); `model` a loaded `Predictor`, a run directory or model file (loaded once and kept),
any `predict_proba`-like callable ((N, 28, 28) -> (N, classes)), or None for the latest run.
The picture is decoded and cleaned once (`images`), cut into digits once (`multidigit`) and
classified; `mode` says what to expect:

    digit   the whole picture is one digit
    number  digits left to right, read as one number (a handwritten "2024", a meter)
    auto    a number when several digits are found, else one digit (the default everywhere)

A Reading carries the kind ("digit" or "number"), the answer (`digit` and its `label`, or
`number`), its confidence, the uncertain flag, and per digit its probabilities, top 3, box
in the picture and the 28x28 the model saw. The rule for `uncertain` is the same for both
kinds: the reading's confidence is below `uncertain_below` (default 0.5). A digit's
confidence is its top probability; a number's is the product of its digits' (the chance
that every digit is right, so a long number needs sure digits). A picture without ink reads
as no answer (`ink_found` false, `digit`/`number` empty) and is uncertain. `Reading.to_dict()`
is the JSON the CLI prints and the API answers, the same fields with the same types.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import images, multidigit

MODES = ("auto", "digit", "number")
UNCERTAIN_BELOW = 0.5  # default threshold for the uncertain flag (CLI --uncertain-below, DIGITS_UNCERTAIN_BELOW)


@dataclass
class Digit:
    """One digit read: the class, its confidence and probabilities, where it was, what the model saw."""

    digit: int  # class index (for MNIST, the digit itself)
    label: str  # class name
    confidence: float  # top probability
    probabilities: np.ndarray  # (classes,) float32
    box: tuple[int, int, int, int] | None  # (top, left, bottom, right) in the picture; bottom/right exclusive
    image: np.ndarray  # (28, 28) float32 0..1, ink bright: the model's input
    class_names: list[str] = field(repr=False, default_factory=list)

    def top(self, count: int = 3) -> list[dict]:
        order = np.argsort(-self.probabilities)[:count]
        return [{"digit": int(index), "label": self.class_names[index], "probability": float(self.probabilities[index])}
                for index in order]

    def to_dict(self, uncertain_below: float, include_input: bool = False) -> dict:
        result = {"digit": self.digit, "label": self.label, "confidence": self.confidence,
                  "uncertain": self.confidence < uncertain_below,
                  "box": list(self.box) if self.box is not None else None,
                  "probabilities": self.probabilities.tolist(), "top3": self.top(3)}
        if include_input:
            result["input"] = as_uint8(self.image).tolist()
        return result


@dataclass
class Reading:
    """What a picture says: a digit, a number, or nothing (no ink)."""

    kind: str  # "digit" or "number"
    digits: list[Digit]  # one for a digit, left to right for a number, none without ink
    uncertain_below: float = UNCERTAIN_BELOW
    inverted: bool = False  # the picture had dark ink on a light ground
    ink_found: bool = True
    image: np.ndarray | None = None  # (28, 28) of a picture without ink (blank), for display

    @property
    def confidence(self) -> float:
        return float(np.prod([digit.confidence for digit in self.digits])) if self.digits else 0.0

    @property
    def uncertain(self) -> bool:
        return not self.digits or self.confidence < self.uncertain_below

    @property
    def digit(self) -> int | None:
        return self.digits[0].digit if self.kind == "digit" and self.digits else None

    @property
    def label(self) -> str | None:
        return self.digits[0].label if self.kind == "digit" and self.digits else None

    @property
    def number(self) -> str | None:
        return "".join(digit.label for digit in self.digits) if self.kind == "number" else None

    @property
    def text(self) -> str:
        """The answer as text: the digit's label or the number; "" without ink."""
        return "".join(digit.label for digit in self.digits)

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        boxes = [digit.box for digit in self.digits if digit.box is not None]
        if not boxes:
            return None
        return (min(box[0] for box in boxes), min(box[1] for box in boxes),
                max(box[2] for box in boxes), max(box[3] for box in boxes))

    def to_dict(self, include_input: bool = False) -> dict:
        """JSON-ready: kind, ink_found, digit, label, number, confidence, uncertain, inverted, box,
        probabilities and top3 (a digit's; null for a number), and digits (one entry per digit)."""
        single = self.digits[0] if self.kind == "digit" and self.digits else None
        result = {"kind": self.kind, "ink_found": self.ink_found, "digit": self.digit, "label": self.label,
                  "number": self.number, "confidence": self.confidence, "uncertain": self.uncertain,
                  "inverted": self.inverted, "box": list(self.box) if self.box is not None else None,
                  "probabilities": single.probabilities.tolist() if single else None,
                  "top3": single.top(3) if single else None,
                  "digits": [digit.to_dict(self.uncertain_below, include_input) for digit in self.digits]}
        if include_input and not self.digits and self.image is not None:
            result["input"] = as_uint8(self.image).tolist()
        return result


def as_uint8(image: np.ndarray) -> np.ndarray:
    """A model input (0..1 floats) as 0..255 bytes, for display and JSON."""
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def _digits(prepared: list, probabilities: np.ndarray, class_names: list[str]) -> list[Digit]:
    probabilities = np.asarray(probabilities, np.float32)
    names = class_names if len(class_names) == probabilities.shape[-1] else [str(i) for i in range(probabilities.shape[-1])]
    found = []
    for piece, row in zip(prepared, probabilities):
        index = int(row.argmax())
        found.append(Digit(index, names[index], float(row[index]), row, piece.box, piece.image, names))
    return found


def from_pixels(probabilities: np.ndarray, pixels: np.ndarray, class_names: list[str],
                uncertain_below: float = UNCERTAIN_BELOW) -> list[Reading]:
    """Readings for 28x28 model inputs that were classified directly (raw pixels, not pictures)."""
    pieces = [images.Prepared(image.reshape(28, 28), True, False, None) for image in np.asarray(pixels)]
    return [Reading("digit", [digit], uncertain_below) for digit in _digits(pieces, probabilities, class_names)]


_loaded: dict = {}
_loading = threading.Lock()


def load(model=None, backend: str | None = None, runs_dir=None):
    """A Predictor for `model` (a run directory or model file; None: the latest run), loaded once per process."""
    from . import runs
    from .predictor import Predictor

    source = runs.resolve(model, runs_dir)
    key = (str(Path(source).resolve()), backend)
    with _loading:
        if key not in _loaded:
            _loaded[key] = Predictor(source, backend=backend)
        return _loaded[key]


def _predict_function(model) -> tuple[Callable[[np.ndarray], np.ndarray], list[str]]:
    if hasattr(model, "predict_proba"):
        return model.predict_proba, list(getattr(model, "class_names", []))
    if callable(model):
        return model, []
    return _predict_function(load(model))


def read(source, mode: str = "auto", model=None, uncertain_below: float = UNCERTAIN_BELOW,
         name: str | None = None) -> Reading:
    """Read the digit or number in `source` (path, bytes, PIL image or array) with `model`; see the module doc.

    Raises `images.ImageError` (a ValueError) for a file or upload that is not a readable picture,
    and ValueError for an unknown mode or a threshold outside 0..1.
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    if not 0.0 <= uncertain_below <= 1.0:
        raise ValueError(f"uncertain_below must be between 0 and 1, got {uncertain_below}")
    predict, class_names = _predict_function(model)
    gray = images.to_gray(source, name)
    if mode != "digit":
        pieces, probabilities = multidigit.read(gray, predict)
        if mode == "number" or len(pieces) > 1:
            inverted = pieces[0].inverted if pieces else False
            return Reading("number", _digits(pieces, probabilities, class_names), uncertain_below, inverted,
                           ink_found=bool(pieces))
    prepared = images.prepare(gray)
    if not prepared.ink_found:
        return Reading("digit", [], uncertain_below, prepared.inverted, ink_found=False, image=prepared.image)
    probabilities = np.asarray(predict(prepared.image[None]))
    return Reading("digit", _digits([prepared], probabilities, class_names), uncertain_below, prepared.inverted)
