"""Reading a picture: the one path from any picture to an answer, shared by every interface.

    read(source, mode="auto", model=None) -> Reading

`source` is a path, bytes, a PIL image or an array (a photo, a scan, a canvas, an MNIST
image); `model` a loaded `Predictor`, a run directory or model file (loaded once and kept),
any `predict_proba`-like callable ((N, 28, 28) -> (N, classes)), or None for the latest run.
The picture is decoded and cleaned once (`images`), cut into digits once (`multidigit`; where the model carries a
sequence model, as the shipped one does, it settles the cuts of a number: `digits.sequence`) and classified;
`mode` says what to expect:

    digit   the whole picture is one digit
    number  digits left to right, read as one number (a handwritten "2024", a meter)
    auto    a number when several digits are found, else one digit (the default everywhere); touching
            pieces about as wide as tall are one shape, read whole (a letter is not cut into "14"), and so is
            one shape cut into crowded strokes, many of them "1"s (a "W" is not "1111"); a
            shape at most ONE_WIDE times as wide as tall is one digit when the whole reads at least as
            surely as the number its pieces make (a wide 0 or a 2 with a long tail is not "67" or "26");
            and one shape cut into a number with a piece that is not a digit is not a digit if its whole
            is not (a shoe or a tangle is not "1?"; see `read`)

In modes auto and number, numbers written one under the other are read line by line (`multidigit.lines`), each
line as a picture of one line would be; the reading is a number whose digits carry their line (0 the top one),
its text a line break between lines ("2024\n17"), or not a digit when no line holds one.

A Reading carries its kind, the answer (`digit` and its `label`, or `number`), its
confidence, the uncertain flag, and per piece its probabilities, top 3, box in the picture,
the 28x28 the model saw and whether it is a digit at all. Kinds:

    digit        one digit read
    number       several digits read left to right; a piece that is not a digit shows as "?"
    not_a_digit  ink, but not a digit: its digit score is below the model's stored threshold (fitted
                 on validation data when it was trained; `reject_below` overrides): the calibrated
                 chance that it is a digit at all, from the energy of the logits, for models fitted
                 so; the calibrated top probability for older ones (`Predictor.score`); a piece of a
                 number of two or more digits below PIECES (1) times it (`_pieces_threshold`)
    no_ink       a blank or noise-only picture: nothing to read

Confidences are calibrated (the model's temperature). The rule for `uncertain` is the same for
digits and numbers: the reading's confidence is below `uncertain_below` (default 0.5), or a
piece of the number is not a digit. A digit's confidence is its top probability; a number's is
the product of its pieces' (the chance that every digit is right, so a long number needs sure
digits). `Reading.to_dict()` is the JSON the CLI prints and the API answers, the same fields
with the same types.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

from . import calibration, images, multidigit

MODES = ("auto", "digit", "number")
ONE_GLYPH = 1.25  # auto mode: touching pieces no wider than this times their height are one shape, read whole
CROWDED, ONES_SHARE = 1.5, 1 / 3  # auto mode: one shape cut into this many pieces per line height, more than this
# share of them "1"s, is one glyph cut into strokes (see _one_glyph)
ONE_WIDE = 2.2  # auto mode: a shape up to this times as wide as tall may be one wide digit (see read)
SPACE, SPACE_RATIO, SPACE_PAIR = 1.0, 2.0, 2.0  # a gap between digits this many digit heights wide, and this many
# times the line's other gaps (of two digits: SPACE_PAIR digit heights), parts two numbers with a space (see _spaced)
PIECES = 1.0  # a piece of a number of two or more digits is shown refused below this times the not-a-digit threshold
# (_pieces_threshold). 1: the same threshold. Lower values read more strips whole and flag far fewer numbers holding a
# non-digit (benchmarks/pieces_look.py; docs/reader.md, 2026-12-08), so none was kept
DOTTED = False  # refuse a stroke with a dot apart from it (i, j, !: `dotted`) as not a digit. Off: the rule failed
# its check (docs/reader.md, "A stroke with a dot apart from it"; scripts/dotted_check.py): a 1 broken near an end is
# one too
DOT_SPECK, DOT_STROKE_WIDE, DOT_SIZE, DOT_FILL = 3, 0.5, 0.3, 0.5  # `dotted`'s constants, fixed before measuring
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
    not_a_digit: bool = False  # its confidence is below the model's not-a-digit threshold
    line: int = 0  # the line of writing it stands in, 0 the top one (a picture of several lines)
    mark: str = ""  # what stands just before it in a number: a point, comma or colon, a dash or plus sign, a date's
    # slash, an opening parenthesis, a space
    after: str = ""  # what stands just after it in a number: a closing parenthesis, a percent sign

    @property
    def text(self) -> str:
        return self.mark + ("?" if self.not_a_digit else self.label) + self.after

    def top(self, count: int = 3) -> list[dict]:
        order = np.argsort(-self.probabilities)[:count]
        return [{"digit": int(index), "label": self.class_names[index], "probability": float(self.probabilities[index])}
                for index in order]

    def to_dict(self, uncertain_below: float, include_input: bool = False) -> dict:
        result = {"digit": self.digit, "label": self.label, "confidence": self.confidence,
                  "not_a_digit": self.not_a_digit, "uncertain": not self.not_a_digit and self.confidence < uncertain_below,
                  "box": list(self.box) if self.box is not None else None, "line": self.line, "mark": self.mark,
                  "after": self.after,
                  "probabilities": self.probabilities.tolist(), "top3": self.top(3)}
        if include_input:
            result["input"] = as_uint8(self.image).tolist()
        return result


KINDS = ("digit", "number", "not_a_digit", "no_ink")


@dataclass
class Reading:
    """What a picture says: a digit, a number, not a digit, or nothing (no ink)."""

    kind: str  # one of KINDS
    digits: list[Digit]  # one for a digit (or the refused shape), left to right for a number, none without ink
    uncertain_below: float = UNCERTAIN_BELOW
    inverted: bool = False  # the picture had dark ink on a light ground
    image: np.ndarray | None = None  # (28, 28) of a picture without ink (blank), for display

    @property
    def ink_found(self) -> bool:
        return self.kind != "no_ink"

    @property
    def confidence(self) -> float:
        return float(np.prod([digit.confidence for digit in self.digits])) if self.digits else 0.0

    @property
    def uncertain(self) -> bool:
        """A digit or number read with low confidence (or holding a piece that is not a digit)."""
        if self.kind not in ("digit", "number"):
            return False
        return (not self.digits or self.confidence < self.uncertain_below
                or any(digit.not_a_digit for digit in self.digits))

    @property
    def digit(self) -> int | None:
        return self.digits[0].digit if self.kind == "digit" else None

    @property
    def label(self) -> str | None:
        return self.digits[0].label if self.kind == "digit" else None

    @property
    def number(self) -> str | None:
        return self.text if self.kind == "number" else None

    @property
    def text(self) -> str:
        """The answer as text: the digit, or the number with "?" for a piece that is not a digit and a line break
        between lines of writing; "" otherwise."""
        if self.kind not in ("digit", "number"):
            return ""
        return "".join(("\n" if index and digit.line != self.digits[index - 1].line else "") + digit.text
                       for index, digit in enumerate(self.digits))

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        boxes = [digit.box for digit in self.digits if digit.box is not None]
        if not boxes:
            return None
        return (min(box[0] for box in boxes), min(box[1] for box in boxes),
                max(box[2] for box in boxes), max(box[3] for box in boxes))

    def to_dict(self, include_input: bool = False) -> dict:
        """JSON-ready: kind, ink_found, digit, label, number, confidence, uncertain, inverted, box,
        probabilities and top3 (of a single picture's one reading; null for a number), and digits
        (one entry per piece read, each with its not_a_digit flag)."""
        digits = [digit.to_dict(self.uncertain_below, include_input) for digit in self.digits]
        single = digits[0] if self.kind in ("digit", "not_a_digit") and len(digits) == 1 else None  # its piece's
        result = {"kind": self.kind, "ink_found": self.ink_found, "digit": self.digit, "label": self.label,
                  "number": self.number, "confidence": self.confidence, "uncertain": self.uncertain,
                  "inverted": self.inverted, "box": list(self.box) if self.box is not None else None,
                  "probabilities": list(single["probabilities"]) if single else None,
                  "top3": [dict(entry) for entry in single["top3"]] if single else None, "digits": digits}
        if include_input and not self.digits and self.image is not None:
            result["input"] = as_uint8(self.image).tolist()
        return result


def as_uint8(image: np.ndarray) -> np.ndarray:
    """A model input (0..1 floats) as 0..255 bytes, for display and JSON."""
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def _digits(prepared: list, probabilities: np.ndarray, class_names: list[str],
            reject_below: float | None = None, scores: np.ndarray | None = None) -> list[Digit]:
    """One Digit per piece; refused (not a digit) where its digit score (default: the top probability) is under
    `reject_below` (and, with DOTTED and refusal on, where it is a stroke with a dot apart from it: `dotted`)."""
    probabilities = np.asarray(probabilities, np.float32)
    if scores is None:
        scores = probabilities.max(-1) if probabilities.size else np.zeros(len(probabilities))
    names = class_names if len(class_names) == probabilities.shape[-1] else [str(i) for i in range(probabilities.shape[-1])]
    found = []
    for piece, row, score in zip(prepared, probabilities, scores):
        index = int(row.argmax())
        refused = calibration.refused(score, reject_below) or (DOTTED and bool(reject_below) and dotted(piece.image))
        found.append(Digit(index, names[index], float(row[index]), row, piece.box, piece.image, names, refused))
    return found


def dotted(image: np.ndarray) -> bool:
    """Whether a prepared 28x28 image is a stroke with a dot apart from it ("i", "j", "!"), which no digit is: its
    ink at 0.5, in components of 8 neighbours (those under DOT_SPECK pixels left out), one narrow stroke (its box at
    most DOT_STROKE_WIDE of its height wide) and one or two dots wholly above or wholly below it, each apart from it
    by an empty row or more, its middle column within the stroke's columns, its box's longer side at most DOT_SIZE of
    the stroke's height, its ink filling DOT_FILL of its box or more."""
    labels, count = ndimage.label(np.asarray(image, np.float32) >= 0.5, structure=np.ones((3, 3), bool))
    if count < 2:
        return False
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    boxes = [box for box, area in zip(ndimage.find_objects(labels), areas) if area >= DOT_SPECK]
    kept = [area for area in areas if area >= DOT_SPECK]
    if not 2 <= len(boxes) <= 3:
        return False
    stroke = int(np.argmax(kept))
    rows, columns = boxes[stroke]
    tall, wide = rows.stop - rows.start, columns.stop - columns.start
    if wide > DOT_STROKE_WIDE * tall:
        return False
    for index, (dot_rows, dot_columns) in enumerate(boxes):
        if index == stroke:
            continue
        height, width = dot_rows.stop - dot_rows.start, dot_columns.stop - dot_columns.start
        apart = dot_rows.stop < rows.start or dot_rows.start > rows.stop  # an empty row or more between them
        middle = (dot_columns.start + dot_columns.stop - 1) / 2
        if not (apart and columns.start <= middle <= columns.stop - 1 and max(height, width) <= DOT_SIZE * tall
                and kept[index] >= DOT_FILL * height * width):
            return False
    return True


def from_pixels(probabilities: np.ndarray, pixels: np.ndarray, class_names: list[str],
                uncertain_below: float = UNCERTAIN_BELOW, reject_below: float | None = None,
                scores: np.ndarray | None = None) -> list[Reading]:
    """Readings for 28x28 model inputs that were classified directly (raw pixels, not pictures), with their
    digit scores (`Predictor.predict_scores`; default: the top probabilities)."""
    pieces = [images.Prepared(image.reshape(28, 28), True, False, None) for image in np.asarray(pixels)]
    return [Reading("not_a_digit" if digit.not_a_digit else "digit", [digit], uncertain_below)
            for digit in _digits(pieces, probabilities, class_names, reject_below, scores)]


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


@dataclass
class _Model:
    """What reading needs of a model: probabilities, digit scores, class names, the stored threshold."""

    predict: Callable[[np.ndarray], np.ndarray]  # images -> (N, classes) calibrated probabilities
    both: Callable[[np.ndarray], tuple]  # images -> (probabilities, digit scores), one pass
    class_names: list[str]
    stored: float | None  # the stored not-a-digit threshold on the digit score
    by_logits: bool  # the digit score is not the top probability: it takes a pass of the model
    sequence: Callable | None = None  # a whole-number reader that settles the cuts (digits.sequence), if any
    soft_above: float | None = None  # a soft picture's ink is read as it is above this blur (images.to_mnist)

    def whole(self, prepared) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities (1, classes) and digit score (1,) of a picture prepared as one digit."""
        probabilities, scores = self.both(prepared.image[None])
        return np.asarray(probabilities), np.asarray(scores)

    def cut(self, ink: images.Ink, threshold: float | None) -> tuple[list, np.ndarray, np.ndarray | None]:
        """The digits `multidigit` finds in a picture (`ink`: its `images.analyse`), their probabilities and, by
        the logits, their digit scores, which then help choose the cuts (None otherwise: the top probabilities
        are the scores); the model's sequence reader, if it has one, may settle the cuts (`threshold`: the
        not-a-digit threshold in force)."""
        soft = multidigit.pieces_soft_above(self.soft_above)  # a soft piece is taken as it is
        if self.by_logits:
            return multidigit.read_scored(None, self.both, self.sequence, threshold, ink=ink, soft_above=soft)
        return (*multidigit.read(None, self.predict, self.sequence, threshold, ink=ink, soft_above=soft), None)


def _top_probability(predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], tuple]:
    def both(pictures: np.ndarray) -> tuple:
        probabilities = np.asarray(predict(pictures))
        return probabilities, probabilities.max(-1) if probabilities.size else np.zeros(len(probabilities))

    return both


def _model(model) -> _Model:
    """A Predictor (or anything with predict_proba, and maybe predict_scores), a callable or a model name."""
    if hasattr(model, "predict_proba"):
        both = getattr(model, "predict_scores", None) or _top_probability(model.predict_proba)
        return _Model(model.predict_proba, both, list(getattr(model, "class_names", [])),
                      getattr(model, "reject_below", None), getattr(model, "score", None) == "energy",
                      getattr(model, "sequence", None), getattr(model, "soft_above", None))
    if callable(model):
        return _Model(model, _top_probability(model), [], None, False)
    return _model(load(model))


def _one_glyph(pieces: list, ones: int = 0) -> bool:
    """Do these pieces come from cutting one glyph: a shape about as wide as tall (each piece touching the next, or
    all cut from one shape of connected ink), or one shape cut into crowded pieces, at least CROWDED per line
    height of its width, more than ONES_SHARE of them read as "1" (`ones` of them)? In auto mode such a shape is
    read whole: a letter cut into "1" and "4", a "W" into "1111", or one wide digit cut in two, is one thing;
    touching digits that make a number are wider than they are tall, and seldom cut into strokes. (An "m" cut
    into "177" is not caught: one "1" of three is not more than a third.)

    The crowded-shape rule was chosen on validation data (the shipped model, card digits-reader-2026-12-04): 500
    pictures each of the six generated non-digit families (seed 903, as benchmarks/validation_strips.py draws
    them) and 500 numbers of 2-3 validation digits, all touching or mixed (seed 905), read in auto mode; over
    CROWDED 1.5 to 2.5 and ONES_SHARE 0 to 0.67, the setting that refused the most non-digits with at most one
    number lost of each 500: 109 more non-digits refused of 3,000, no number lost (without the "1"s it lost 47)."""
    boxes = [piece.box for piece in pieces]
    if any(box is None for box in boxes):
        return False
    one_shape = _one_shape(pieces)
    if not one_shape and any(after[1] > before[3] for before, after in zip(boxes, boxes[1:])):
        return False  # a gap between two pieces of different shapes: separate things
    extent = _extent(pieces)
    return extent <= ONE_GLYPH or (one_shape and len(pieces) >= CROWDED * extent and ones > ONES_SHARE * len(pieces))


def _one_shape(pieces: list) -> bool:
    """Were these pieces all cut from one shape of connected ink (as `multidigit` tells)?"""
    return bool(pieces) and pieces[0].shape is not None and len({piece.shape for piece in pieces}) == 1


def _ones(probabilities: np.ndarray, class_names: list[str]) -> int:
    """How many pieces read as "1" (class "1", or class 1 of a model without names)."""
    one = class_names.index("1") if "1" in class_names else None if class_names else 1
    return 0 if one is None or not len(probabilities) else int((np.asarray(probabilities).argmax(-1) == one).sum())


def _extent(pieces: list) -> float:
    """Width over height of the pieces' joint box (0 if a piece has no box)."""
    boxes = [piece.box for piece in pieces]
    if any(box is None for box in boxes):
        return 0.0
    height = max(box[2] for box in boxes) - min(box[0] for box in boxes)
    return (max(box[3] for box in boxes) - min(box[1] for box in boxes)) / max(1, height)


def _one_wide_digit(pieces: list, probabilities: np.ndarray, whole: np.ndarray, threshold: float | None,
                    whole_score: float) -> bool:
    """Auto mode: is a shape the segmenter cut into pieces rather one wide digit? Yes when it is at most ONE_WIDE
    times as wide as tall, the whole reads as a digit (its digit score `whole_score` is not refused) and at least
    as surely as the number: the whole's top probability >= the product of the pieces'. Chosen on MNIST training
    digits and strips rendered as photos (benchmarks/real_images.py, the shipped model of 2026-12-02): 52 of 1,500 single digits came back as
    numbers before, 1 after; 6 more of 1,500 strips (half of them touching) were read as one digit. Any ONE_WIDE
    from 1.8 to 2.2 gave the same figures there; 2.2 also keeps a flat drawn 0 whole."""
    sure = float(whole.max())
    if _extent(pieces) > ONE_WIDE or calibration.refused(whole_score, threshold):
        return False
    return np.log(max(sure, 1e-12)) >= float(np.log(np.maximum(probabilities.max(1), 1e-12)).sum())


def read(source, mode: str = "auto", model=None, uncertain_below: float = UNCERTAIN_BELOW,
         name: str | None = None, reject_below: float | None = None) -> Reading:
    """Read the digit or number in `source` (path, bytes, PIL image or array) with `model`; see the module doc.

    `reject_below` overrides the model's stored not-a-digit threshold (0 turns refusal off).
    Raises `images.ImageError` (a ValueError) for a file or upload that is not a readable picture,
    and ValueError for an unknown mode or a threshold outside 0..1.
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    for flag, value in (("uncertain_below", uncertain_below), ("reject_below", reject_below)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{flag} must be between 0 and 1, got {value}")
    reader = _model(model)
    threshold = reader.stored if reject_below is None else reject_below  # PIECES times it for a number's pieces
    gray = images.to_gray(source, name)
    if mode == "digit":
        return _one_digit(images.prepare(gray, reader.soft_above), reader, threshold, uncertain_below)
    ink = images.analyse(gray)  # taken once, for the lines, the cuts and the whole
    bands = multidigit.lines(ink)
    if len(bands) == 1:
        return _read_line(ink, mode, reader, threshold, uncertain_below)
    return _lines([_read_line(band, mode, reader, threshold, uncertain_below) for band in bands], uncertain_below,
                  ink.inverted)


def _read_line(ink: images.Ink, mode: str, reader: _Model, threshold: float | None,
               uncertain_below: float) -> Reading:
    """`read` of one line of writing (`ink`: its analysis), in mode "auto" or "number"."""
    ink, pieces, probabilities, digits, loose = _cut_line(ink, reader, threshold)
    several = len(pieces) > 1 and not _one_glyph(pieces, _ones(probabilities, reader.class_names))
    # one shape, part refused: a number only if its whole is not refused too (a shoe is not "1?"). Chosen on
    # validation data (shipped model; 500 each of six generated non-digit families, seed 903, and of numbers
    # of 2-3 validation digits, seed 905): of one shape or any shapes, any piece or half of them refused, the
    # rule refusing the most non-digits while answering at most 5 of 500 numbers of each kind "not a digit"
    # instead: non-digits refused 2,683 -> 2,871 of 3,000, no number changed
    partly = 0 < sum(digit.not_a_digit for digit in digits) < len(digits) and _one_shape(pieces)
    prepared = whole = None
    if mode == "auto" and several and (_extent(pieces) <= ONE_WIDE or partly):
        prepared = images.prepare_ink(ink, reader.soft_above)
        whole, whole_scores = reader.whole(prepared)
        several = not (prepared.ink_found and (
            _one_wide_digit(pieces, probabilities, whole[0], threshold, float(whole_scores[0]))
            or (partly and calibration.refused(float(whole_scores[0]), threshold))))
    if mode == "number" or several:
        inverted = pieces[0].inverted if pieces else False
        if not digits:
            return Reading("no_ink", [], uncertain_below, inverted)
        if mode == "auto" and all(digit.not_a_digit for digit in digits):  # letters, a word, a drawing
            return Reading("not_a_digit", digits, uncertain_below, inverted)
        if len(digits) > 1:  # a number's pieces: refused at the pieces' threshold
            digits = [dataclasses.replace(digit, not_a_digit=refused) for digit, refused in zip(digits, loose)]
        return Reading("number", digits, uncertain_below, inverted)
    prepared = prepared or images.prepare_ink(ink, reader.soft_above)
    found = _one_digit(prepared, reader, threshold, uncertain_below, None if whole is None else (whole, whole_scores))
    if found.kind == "digit" and digits and (digits[0].mark or digits[0].after):  # a sign or "(" before one digit,
        # a percent sign or ")" after it: a number ("-7", "5%", "(5)")
        return Reading("number", [dataclasses.replace(found.digits[0], mark=digits[0].mark, after=digits[0].after)],
                       uncertain_below, found.inverted)
    return found


def _pieces_threshold(threshold: float | None) -> float | None:
    """The not-a-digit threshold for a piece of a number of two or more digits: PIECES times `threshold` (None:
    refusal off). A digit cut from touching ink reads less surely than one alone, and the threshold fitted on single
    validation digits refuses some true pieces; but a number's non-digit piece scores little lower, so no factor
    under 1 kept the numbers holding one flagged (docs/reader.md, "A looser not-a-digit threshold for the pieces of
    a number")."""
    return None if threshold is None else threshold * PIECES


def _cut_line(ink: images.Ink, reader: _Model, threshold: float | None) -> tuple:
    """One line of writing cut into its digits as reading cuts it: its decimal points, commas and dashes read apart
    from them (`multidigit.marks`), then the cuts (`reader.cut`, settled at `threshold`): the ink without the marks,
    the pieces, their probabilities, the Digits, each carrying the mark before it (or a space: `_spaced`) and refused
    at `threshold`, and whether each is refused at the pieces' threshold (`_pieces_threshold`)."""
    points, ink = multidigit.marks(ink)
    pieces, probabilities, scores = reader.cut(ink, threshold)
    digits = _spaced(_marked(_digits(pieces, probabilities, reader.class_names, threshold, scores), points))
    refused = [digit.not_a_digit for digit in _digits(pieces, probabilities, reader.class_names,
                                                      _pieces_threshold(threshold), scores)]
    return ink, pieces, probabilities, digits, refused


def _marked(digits: list[Digit], points: list[tuple[int, str]]) -> list[Digit]:
    """The digits with each decimal point, comma, colon, dash, plus sign, slash or opening parenthesis (column,
    character) on the digit after it, where digits stand on both sides of it (a dash, plus or "(" also before the
    first digit), and each closing parenthesis or percent sign on the digit before it (its `after`)."""
    centres = [None if digit.box is None else (digit.box[1] + digit.box[3]) / 2 for digit in digits]
    for column, char in points:
        if char in "%)":
            before = [index for index, centre in enumerate(centres) if centre is not None and centre < column]
            if before:
                digits[before[-1]] = dataclasses.replace(digits[before[-1]], after=digits[before[-1]].after + char)
            continue
        after = next((index for index, centre in enumerate(centres) if centre is not None and centre > column), None)
        if after or (after == 0 and char in "-+("):  # not before the first digit, but for a sign or a parenthesis
            digits[after] = dataclasses.replace(digits[after], mark=digits[after].mark + char)
    return digits


def _spaced(digits: list[Digit]) -> list[Digit]:
    """The digits of one line with a space as the mark of each that stands far right of the digit before it and
    carries no other mark: two numbers written apart on one line ("3 7", "12 45") are not one ("37", "1245"). Far:
    SPACE digit heights (the upper quartile of their boxes' heights) or more and SPACE_RATIO times the median of the
    line's other gaps; with no other gap (two digits), SPACE_PAIR digit heights. Digits written as one number stand
    closer (a strip's gaps: under a third of a digit's height), and a number written one digit per box of a form has
    gaps alike, however wide ("2014" in boxes 1.5 digit heights apart is not "2 0 1 4")."""
    boxes = [digit.box for digit in digits]
    if len(digits) < 2 or any(box is None for box in boxes):
        return digits
    height = float(np.percentile([box[2] - box[0] for box in boxes], 75))
    gaps = [boxes[index][1] - max(box[3] for box in boxes[:index]) for index in range(1, len(digits))]
    for index, gap in enumerate(gaps, 1):
        others = gaps[:index - 1] + gaps[index:]
        wide = SPACE * height if others else SPACE_PAIR * height
        if not digits[index].mark and gap >= wide and (not others or gap >= SPACE_RATIO * np.median(others)):
            digits[index] = dataclasses.replace(digits[index], mark=" ")
    return digits


def _one_digit(prepared: images.Prepared, reader: _Model, threshold: float | None, uncertain_below: float,
               read_already: tuple | None = None) -> Reading:
    """The reading of a picture prepared as one digit (`read_already`: its probabilities and digit score)."""
    if not prepared.ink_found:
        return Reading("no_ink", [], uncertain_below, prepared.inverted, image=prepared.image)
    whole, whole_scores = read_already or reader.whole(prepared)
    digits = _digits([prepared], whole, reader.class_names, threshold, whole_scores)
    return Reading("not_a_digit" if digits[0].not_a_digit else "digit", digits, uncertain_below, prepared.inverted)


def _lines(readings: list[Reading], uncertain_below: float, inverted: bool) -> Reading:
    """One reading of a picture of several lines of writing, each read as a picture of one line (`readings`, top
    to bottom): a number whose digits carry their line (its text breaks between lines), or not a digit when no
    line holds one; a line without ink is left out."""
    inked = [found for found in readings if found.kind != "no_ink"]
    if len(inked) < 2:
        return inked[0] if inked else readings[0]
    digits = [dataclasses.replace(digit, line=line) for line, found in enumerate(inked) for digit in found.digits]
    refused = all(found.kind == "not_a_digit" for found in inked)
    return Reading("not_a_digit" if refused else "number", digits, uncertain_below, inverted)
