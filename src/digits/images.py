"""Any image -> MNIST-style 28x28: decode, clean, crop, scale, centre; and whole numbers.

The one preprocessing path for every picture that reaches a model (CLI files, API uploads,
the drawing page). MNIST digits are ink-bright on black, their larger side scaled into a
20x20 box with anti-aliasing, their centre of mass at pixel (14, 14) of 28x28 (the mean
over MNIST's test set is row 13.99, column 14.01), strokes about 2-3 pixels wide. A photo
or scan is made to match:

    load_gray(source) -> (H, W) float32, 0 black .. 1 white: PNG, JPEG, BMP, GIF, WebP or
        TIFF, from a path or bytes; EXIF rotation applied, transparency laid on white.
    prepare(gray) -> Prepared: polarity found (dark-on-light is inverted), lighting removed
        (a robust quadratic surface), ink kept with its grey edges, specks dropped, stroke
        width brought into MNIST's range, then MNIST's crop / 20x20 / centre-of-mass recipe.
    prepare_file(source), prepare_array(array): the same from a file, or from any 2-D, RGB
        or RGBA array (a drawing canvas); an MNIST image (28x28, digit already 20 px) is only
        re-centred by whole pixels, as MNIST itself was, so it comes back unchanged.
    segment(gray, predict_proba=None) -> list[Prepared]: several digits, left to right:
        connected components, specks dropped, pieces stacked in one column (a broken 5) merged,
        over-wide ones cut where two digits touch; given a classifier, the doubtful joins and
        cuts are settled by how surely the classifier reads the result.
    read_number(source, predict_proba) -> dict: the number, each digit with its confidence
        and box, and the product of the confidences (`predict_proba`: (N, 28, 28) -> (N, 10),
        e.g. `engine.Predictor(run).predict_proba`).

A picture without ink gives `ink_found=False`, not an error. Bad input raises `ImageError`
(a `ValueError`) with one line naming the file, the problem and the fix.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

MAX_PIXELS = 50_000_000  # refuse larger pictures before decoding them (decompression bombs)
FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF", "WEBP", "TIFF"}  # MPO: JPEG from cameras
BOX, CANVAS, CENTRE = 20, 28, 14.0  # MNIST: digit fits 20x20, canvas 28x28, centre of mass (row, column)
WORK_SIDE = 1024  # larger pictures are averaged down to this side before cleaning
DETAIL = 80  # crops smaller than this are enlarged first, so stroke arithmetic has pixels to use
STROKE_RANGE = (2.0, 3.0)  # strokes are brought into this width, 28x28 pixels (MNIST: 10%..90% = 1.8..3.5)
DIGIT_BONUS, CUT_COST, OVERCUT = 0.7, 0.8, 0.9  # whole numbers: see _recognise
WIDTH_OK, WIDTH_COST = 1.0, 4.0  # a digit's width rarely passes the line height (MNIST: larger side 20 px)
SIZE_OK, SIZE_COST = 0.85, 6.0  # nor is its larger side much under it (a stray stroke, a cut-off stem)
WIDE = 1.3  # a digit group wider than this times the line height holds touching digits
MIN_HEIGHT = 4  # working pixels: ink no taller than this (a rule, specks, dots) holds no number
MAX_DIGITS = 40  # a group is cut into at most this many digits (a long rule is not 400 ones)
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


class ImageError(ValueError):
    """A file or upload that is not a readable image of a supported format."""


@dataclass(frozen=True)
class Prepared:
    image: np.ndarray  # (28, 28) float32 in 0..1, ink bright on black, as MNIST
    ink_found: bool  # False for a blank page or noise: no digit to read
    inverted: bool  # the input had dark ink on a light ground
    box: tuple[int, int, int, int] | None  # (top, left, bottom, right) of the ink in the input; bottom/right exclusive
    stroke_width: float = 0.0  # measured stroke width, in 28x28 pixels, before normalising
    stroke_change: float = 0.0  # width added (+) or removed (-) to reach MNIST's range, 28x28 pixels


# ---------------------------------------------------------------- decoding


def _sniff(head: bytes) -> str:
    """What a file that Pillow cannot read probably is, for the error message."""
    text = head.lstrip()[:200].lower()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing"
    return "not an image"


def load_gray(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode a path or bytes to (H, W) float32 gray, 0 black .. 1 white; raise ImageError if unreadable."""
    label = name or (f"{len(source)}-byte upload" if isinstance(source, (bytes, bytearray)) else str(source))
    if isinstance(source, (bytes, bytearray)):
        stream, head = io.BytesIO(source), bytes(source[:512])
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{label} does not exist; check the path")
        if path.is_dir():
            raise ImageError(f"{label} is a directory, not an image file; pass one image file")
        if not path.is_file():  # a FIFO or device would block forever
            raise ImageError(f"{label} is not a regular file; pass an image file")
        try:
            with path.open("rb") as opened:
                head = opened.read(512)
            stream = path.open("rb") if head else None
        except OSError as error:
            raise ImageError(f"cannot read {label} ({error.strerror or error}); check its permissions") from None
    if not head:
        raise ImageError(f"{label} is empty (0 bytes); pass a complete image file")
    try:
        # Pillow warns (89 to 178 megapixels) or raises (more) in Image.open; both mean a bomb. The
        # filter is process-wide: should threads race on it, the MAX_PIXELS check below still holds.
        with stream, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                if image.format not in FORMATS:
                    raise ImageError(f"{label} is {image.format}, an unsupported format; "
                                     f"convert it to PNG or JPEG (supported: {', '.join(sorted(FORMATS))})")
                if image.width * image.height > MAX_PIXELS:
                    raise Image.DecompressionBombError("too many pixels")
                image.load()  # inside the try: a truncated file fails here, never half-decoded
                return _to_gray(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label} claims more than {MAX_PIXELS // 1_000_000} megapixels (a decompression "
                         "bomb or a huge scan); resize it before reading") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label} is {_sniff(head)}, not a picture Pillow can read; "
                         "export it as PNG or JPEG") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise ImageError(f"{label} is truncated or damaged ({reason}); save or upload it again") from None


def _to_gray(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # 16-bit and float pictures
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values / (1.0 if image.mode == "F" and values.max() <= 1 else top), 0, 1)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def prepare_file(source: str | Path | bytes, name: str | None = None) -> Prepared:
    return prepare(load_gray(source, name))


def prepare_array(array) -> Prepared:
    """A 2-D gray, (H, W, 1), RGB or RGBA array, uint8 0..255 or float 0..1 (e.g. MNIST, a canvas)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (3, 4):  # colour: grayscale it (and lay RGBA on white) as a file would
        as_bytes = array if array.dtype == np.uint8 else np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
        return prepare(_to_gray(Image.fromarray(np.ascontiguousarray(as_bytes))))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(f"expected a 2-D image or (H, W, 1|3|4) array, got shape {array.shape}")
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return prepare(np.clip(array.astype(np.float32) / scale, 0, 1))


# ---------------------------------------------------------------- cleaning


def _shrink(gray: np.ndarray, side: int) -> tuple[np.ndarray, int]:
    """Average blocks down so the larger side is at most `side`; returns the image and the factor."""
    factor = math.ceil(max(gray.shape) / side)
    if factor <= 1:
        return gray, 1
    size = (max(1, gray.shape[1] // factor), max(1, gray.shape[0] // factor))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX)), factor


def _background(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """A smooth quadratic lighting surface fitted to the paper only (ink is trimmed away), and its spread."""
    small, _ = _shrink(gray, 64)

    def surface(height, width, coefficients):
        rows, cols = np.linspace(-1, 1, height)[:, None], np.linspace(-1, 1, width)[None, :]
        constant, row, col, row2, cross, col2 = coefficients
        return (constant + row * rows + col * cols + row2 * rows**2 + cross * rows * cols + col2 * cols**2)

    rows, cols = np.meshgrid(np.linspace(-1, 1, small.shape[0]), np.linspace(-1, 1, small.shape[1]), indexing="ij")
    design = np.stack([np.ones_like(rows), rows, cols, rows**2, rows * cols, cols**2], -1).reshape(-1, 6)
    values = small.ravel().astype(np.float64)
    # start from the border, which is mostly paper, then take every pixel that lies near the surface
    edge = max(1, round(0.15 * min(small.shape)))
    border = np.ones(small.shape, bool)
    border[edge:-edge, edge:-edge] = False
    border = border.ravel()
    coefficients = np.array([np.median(values[border]), 0, 0, 0, 0, 0])
    paper = border
    for step in range(8):
        deviation = np.abs(values - design @ coefficients)
        paper = (deviation <= max(2.5 * 1.4826 * np.median(deviation[paper]), 0.02)) & (border | (step >= 4))
        if paper.sum() < 12:
            break
        normal = design[paper].T @ design[paper] + 1e-6 * np.eye(6)  # 6x6 least squares
        coefficients = np.linalg.solve(normal, design[paper].T @ values[paper])
    spread = 1.4826 * float(np.median(np.abs(values - design @ coefficients)[paper])) if paper.any() else 0.0
    return surface(*gray.shape, coefficients).astype(np.float32), spread


def clean(gray: np.ndarray) -> tuple[np.ndarray, bool, bool]:
    """(H, W) gray -> (ink intensity 0..1 with the ground at 0, inverted, ink_found)."""
    background, spread = _background(gray)
    residual = gray - background
    # pixel-to-pixel differences measure the noise whatever share of the picture is ink
    steps = np.concatenate([np.diff(gray, axis=0).ravel(), np.diff(gray, axis=1).ravel()])
    noise = max(1.4826 * float(np.median(np.abs(steps))) / math.sqrt(2) if steps.size else 0, spread, 1 / 255)
    floor = max(5 * noise, 0.02)
    dark, light = np.clip(-residual - floor, 0, None).sum(), np.clip(residual - floor, 0, None).sum()
    inverted = bool(dark > light)  # ink is whichever side stands further out from the paper
    ink = -residual if inverted else residual
    candidates = ink[ink > floor]
    level = float(np.percentile(candidates, 90)) if candidates.size >= 4 else 0.0
    if level < max(0.06, 8 * noise):
        return np.zeros_like(gray), inverted, False
    return np.clip((ink - floor) / (level - floor), 0, 1).astype(np.float32), inverted, True


# ---------------------------------------------------------------- one digit, MNIST's recipe


def stroke_width(core: np.ndarray) -> float:
    """Mean stroke width of a boolean shape in its own pixels (a straight w-wide stroke gives w)."""
    inside = ndimage.distance_transform_edt(np.pad(core, 1))[1:-1, 1:-1]
    return max(4.0 * float(inside[core].mean()) - 2.0, 1.0) if core.any() else 0.0


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _window(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """image[top:top+height, left:left+width], zero outside the image."""
    out = np.zeros((height, width), np.float32)
    rows = slice(max(top, 0), min(top + height, image.shape[0]))
    cols = slice(max(left, 0), min(left + width, image.shape[1]))
    if rows.start < rows.stop and cols.start < cols.stop:
        out[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = image[rows, cols]
    return out


def to_mnist(intensity: np.ndarray) -> tuple[np.ndarray, float, float]:
    """One digit's ink (bright, ground 0) -> (28x28, stroke width, stroke change) by MNIST's recipe."""
    top, left, bottom, right = _bounds(intensity >= 0.5)
    size = max(bottom - top, right - left)
    if intensity.shape == (CANVAS, CANVAS) and abs(size - BOX) <= 1:  # already MNIST-sized (an MNIST image):
        rows, cols = np.mgrid[0:CANVAS, 0:CANVAS]  # only re-centre it, by whole pixels as MNIST did
        mass = intensity.sum()
        shift_row, shift_col = (round(float((intensity * axis).sum() / mass) - CENTRE) for axis in (rows, cols))
        return _window(intensity, shift_row, shift_col, CANVAS, CANVAS), stroke_width(intensity >= 0.5), 0.0
    top, left, bottom, right = _bounds(intensity > 0)
    intensity = intensity[max(top - 1, 0):bottom + 1, max(left - 1, 0):right + 1]  # the ink and a margin
    if size < DETAIL:  # enlarge small crops smoothly so widths and edges have sub-pixel room
        intensity = ndimage.zoom(intensity, DETAIL / size, order=1, grid_mode=True, mode="grid-constant")
        intensity = np.clip(intensity, 0, 1)
    for threshold in (0.5, 0.25):  # a thin stroke fades below half intensity in places: keep its faint parts
        core = intensity >= threshold
        top, left, bottom, right = _bounds(core)
        size = max(bottom - top, right - left)
        width = stroke_width(core) * BOX / size  # in 28x28 pixels
        if width >= STROKE_RANGE[0]:
            break
    target = float(np.clip(width, *STROKE_RANGE))
    source = intensity
    if abs(target - width) > 0.05 or threshold < 0.5:  # re-draw the shape at the new width from its signed distance
        half = (target - width) * size / (2 * (BOX - target))  # dilation also grows the box
        pad = max(int(math.ceil(half)), 0) + 2
        core = np.pad(core, pad)
        signed = np.where(core, ndimage.distance_transform_edt(core) - 0.5,
                          0.5 - ndimage.distance_transform_edt(~core))
        source = np.clip(signed + half + 0.5, 0, 1).astype(np.float32)
        top, left, bottom, right = _bounds(source >= 0.5)
        size = max(bottom - top, right - left)
    scale = BOX / size  # output pixels per source pixel
    mass = source.sum()
    com_row = float((source.sum(1) * np.arange(source.shape[0])).sum() / mass)
    com_col = float((source.sum(0) * np.arange(source.shape[1])).sum() / mass)
    # output coordinate u (pixel edges) <- source coordinate (com + 0.5) + (u - (CENTRE + 0.5)) / scale
    first_row = com_row + 0.5 - (CENTRE + 0.5) / scale
    first_col = com_col + 0.5 - (CENTRE + 0.5) / scale
    span = CANVAS / scale
    row0, col0 = math.floor(first_row), math.floor(first_col)
    window = _window(source, row0, col0, math.ceil(span) + 2, math.ceil(span) + 2)
    box = (first_col - col0, first_row - row0, first_col - col0 + span, first_row - row0 + span)
    image = Image.fromarray(window).resize((CANVAS, CANVAS), Image.Resampling.BOX, box=box)
    return np.clip(np.asarray(image), 0, 1).astype(np.float32), width, target - width


@dataclass
class _Ink:
    """The cleaned picture and its labelled ink, at working resolution (`factor` times smaller)."""
    intensity: np.ndarray
    inverted: bool
    factor: int
    shape: tuple[int, int]  # of the original picture
    labels: np.ndarray | None = None  # ink cores (intensity >= 0.5), 8-connected; None: no ink
    owner: np.ndarray | None = None  # each inked pixel's nearest core label, 0 if none
    areas: np.ndarray | None = None
    boxes: list | None = None  # ndimage.find_objects slices, index label - 1


def _analyse(gray: np.ndarray) -> _Ink:
    gray = np.asarray(gray, np.float32)
    small, factor = _shrink(gray, WORK_SIDE)
    intensity, inverted, found = clean(small)
    ink = _Ink(intensity, inverted, factor, gray.shape)
    core = intensity >= 0.5
    if not found or not core.any():
        return ink
    ink.labels, count = ndimage.label(core, EIGHT_NEIGHBOURS)
    distance, (near_rows, near_cols) = ndimage.distance_transform_edt(~core, return_indices=True)
    ink.owner = ink.labels[near_rows, near_cols]
    ink.owner[(distance > 2 + stroke_width(core)) | (intensity <= 0)] = 0
    ink.areas = np.bincount(ink.labels.ravel(), minlength=count + 1)
    ink.boxes = ndimage.find_objects(ink.labels)
    return ink


def _mask(ink: _Ink, members, columns=None) -> np.ndarray:
    """The pixels (cores and their faint edges) of components `members`, optionally only `columns`."""
    mask = np.isin(ink.owner, list(members))
    if columns is not None:
        mask[:, :columns[0]] = False
        mask[:, columns[1]:] = False
    return mask


def _digit(ink: _Ink, mask: np.ndarray) -> Prepared:
    """Cut one digit out of the cleaned picture and prepare it."""
    top, left, bottom, right = _bounds(mask & (ink.intensity >= 0.5))
    image, width, change = to_mnist(np.where(mask, ink.intensity, 0))
    box = (top * ink.factor, left * ink.factor, min(bottom * ink.factor, ink.shape[0]),
           min(right * ink.factor, ink.shape[1]))
    return Prepared(image, True, ink.inverted, box, width, change)


def _span(members, boxes) -> tuple[int, int, int, int]:
    return (min(boxes[label - 1][0].start for label in members), min(boxes[label - 1][1].start for label in members),
            max(boxes[label - 1][0].stop for label in members), max(boxes[label - 1][1].stop for label in members))


def prepare(gray: np.ndarray) -> Prepared:
    """One digit from (H, W) gray 0..1 (any polarity, any size) -> Prepared."""
    ink = _analyse(gray)
    if ink.labels is None:
        return Prepared(np.zeros((CANVAS, CANVAS), np.float32), False, ink.inverted, None)
    largest = ink.areas[1:].max()
    big = [label for label in range(1, ink.areas.size) if ink.areas[label] >= 0.1 * largest]
    top, left, bottom, right = _span(big, ink.boxes)
    reach = 0.25 * max(bottom - top, right - left)  # small pieces near the digit are part of it, specks are not
    near = [label for label, (rows, cols) in enumerate(ink.boxes, 1)
            if label not in big and ink.areas[label] >= 0.01 * largest and rows.stop > top - reach
            and rows.start < bottom + reach and cols.stop > left - reach and cols.start < right + reach]
    return _digit(ink, _mask(ink, big + near))


# ---------------------------------------------------------------- whole numbers


def _overlap(first, second) -> float:
    """Shared columns of two spans (top, left, bottom, right), as a fraction of the narrower one."""
    shared = min(first[3], second[3]) - max(first[1], second[1])
    return shared / max(1, min(first[3] - first[1], second[3] - second[1]))


def _pieces(ink: _Ink) -> tuple[list[set[int]], float]:
    """The components worth reading (specks dropped), one set each, and the line height (digit height)."""
    areas, boxes = ink.areas, ink.boxes
    largest = areas[1:].max()
    labels = sorted((label for label in range(1, areas.size) if areas[label] >= 0.02 * largest),
                    key=lambda label: -areas[label])[:60]  # a number has few pieces
    heights = {label: boxes[label - 1][0].stop - boxes[label - 1][0].start for label in labels}
    # the largest piece is a whole digit (or several touching), however many broken ones there are
    line = float(max(heights[labels[0]], np.percentile([heights[label] for label in labels
                                                        if areas[label] >= 0.2 * largest], 75)))
    if line < MIN_HEIGHT:  # rules, specks and dots: nothing as tall as a digit
        return [], line
    return [{label} for label in labels], line


def _merge(groups: list[set[int]], boxes, needed: Callable[[tuple, tuple], float]) -> list[set[int]]:
    """Merge groups whose column overlap reaches `needed(span, span)`, until none does."""
    merged = True
    while merged:
        merged = False
        spans = [_span(group, boxes) for group in groups]
        for first, second in ((a, b) for a in range(len(groups)) for b in range(a + 1, len(groups))):
            if _overlap(spans[first], spans[second]) >= needed(spans[first], spans[second]):
                groups[first] |= groups.pop(second)
                merged = True
                break
    return groups


def _groups(ink: _Ink) -> tuple[list[set[int]], float]:
    """Components -> one set of labels per digit (touching digits not yet split), and the line height."""
    boxes = ink.boxes
    groups, line = _pieces(ink)

    def needed(first, second):  # pieces stacked in one column are one digit: halves of an 8, a 4 in two strokes
        full = first[2] - first[0] >= 0.6 * line, second[2] - second[0] >= 0.6 * line
        return 0.7 if all(full) else 0.5 if not any(full) else 2.0

    groups = _merge(groups, boxes, needed)
    spans = [_span(group, boxes) for group in groups]
    seeds = [group for group, span in zip(groups, spans) if span[2] - span[0] >= 0.6 * line]
    parts = [(group, span) for group, span in zip(groups, spans) if span[2] - span[0] < 0.6 * line]
    if not seeds:
        return [group for group, span in parts if span[2] - span[0] >= 0.35 * line], line
    seed_of = np.zeros(ink.areas.size, int)
    for index, group in enumerate(seeds, 1):
        seed_of[list(group)] = index
    seeded = seed_of[ink.labels]
    distance, (near_rows, near_cols) = ndimage.distance_transform_edt(seeded == 0, return_indices=True)
    for group, span in parts:  # a loose piece (the bar of a 5) joins the digit whose ink is nearest
        closest = np.argmin(np.where(np.isin(ink.labels, list(group)), distance, np.inf))
        index = seeded[near_rows.flat[closest], near_cols.flat[closest]]
        if distance.flat[closest] <= 0.25 * line or _overlap(span, _span(seeds[index - 1], boxes)) > 0:
            seeds[index - 1] |= group
        elif span[2] - span[0] >= 0.35 * line:
            seeds.append(group)
    return seeds, line


def _split(core: np.ndarray, left: int, right: int, line: float, wide: float = WIDE,
           choose: Callable[[int, int, np.ndarray], int] | None = None) -> list[tuple[int, int]]:
    """Column ranges of the digits in one group: a group wider than `wide` lines is cut in two, then
    each part again; at its thinnest column, or where `choose(left, right, columns)` says."""
    width = right - left
    if width > MAX_DIGITS * line:  # no number at all: a long rule or a frame
        return []
    if width <= wide * line:
        return [(left, right)]
    middle = np.arange(left + int(0.2 * width), left + int(math.ceil(0.8 * width)))
    if choose is None:  # where two digits touch, the ink in a column spans the fewest rows
        inked = core[:, middle]
        extent = np.where(inked.any(0), len(core) - inked[::-1].argmax(0) - inked.argmax(0), 0)
        cut = int(middle[np.lexsort((np.abs(middle - left - width / 2), inked.sum(0), extent))[0]])
    else:
        cut = choose(left, right, middle[::max(1, len(middle) // 8)])
    return _split(core, left, cut, line, wide, choose) + _split(core, cut, right, line, wide, choose)


def _reading(confidence: float, height: float, line: float) -> float:
    """How well a piece reads as a digit: log-confidence, less a price if much shorter than the line
    (a piece of a digit, the loop of a 9 say, may still read confidently)."""
    return math.log(max(float(confidence), 1e-9)) - (1.0 + 6.0 * (0.5 - height / line) if height < 0.5 * line else 0)


def _strokes(column: np.ndarray) -> int:
    """Runs of ink in one column of a boolean mask: the strokes a vertical cut there crosses (at least 1)."""
    column = np.concatenate([[False], column, [False]])
    return max(1, int(np.count_nonzero(column[1:] & ~column[:-1])))


def _recognise(ink: _Ink, predict_proba) -> list[Prepared]:
    """Cut the ink into more pieces than digits, then choose how consecutive pieces join into digits so
    that the reading scores best (dynamic programming over the pieces, left to right).

    A reading's score adds, per digit, the classifier's log-confidence plus DIGIT_BONUS (else two
    digits squeezed into one box, read at 0.9, would beat two clear digits at 0.95 each), minus
    CUT_COST per stroke that a cut through connected ink crosses, and a price for joining pieces
    that stand apart (none when one sits above the other, as the bar of a 5; more the wider the
    gap), and a price for a digit whose size does not fit the line: wider than WIDTH_OK lines (two
    touching digits read as one) or with its larger side under SIZE_OK lines (a stem cut off a 7,
    read as a 1). The weights were tuned on rendered strips (benchmarks/real_images.py, seeds 1, 2).
    """
    groups, line = _pieces(ink)
    groups = _merge(groups, ink.boxes, lambda first, second: 0.8)
    core = ink.intensity >= 0.5
    pieces, owners = [], []
    for index, group in enumerate(groups):
        _, left, _, right = _span(group, ink.boxes)
        inside = np.isin(ink.labels, list(group))

        def choose(start, stop, columns):  # the cut whose two sides read best as digits, less its price
            sides = [_mask(ink, group, side) for cut in columns for side in ((start, cut), (cut, stop))]
            inked = [bool((side & core).any()) for side in sides]  # a cut may leave only faint edges on a side
            halves = [_digit(ink, side) for side, has_ink in zip(sides, inked) if has_ink]
            sure = iter(np.asarray(predict_proba(np.stack([half.image for half in halves]))).max(1)) if halves else None
            read, kept = [], iter(halves)
            for has_ink in inked:
                half = next(kept) if has_ink else None
                read.append(_reading(next(sure), half.box[2] - half.box[0], line * ink.factor) if has_ink else -50.0)
            crossed = [CUT_COST * _strokes(inside[:, cut]) for cut in columns]  # as the DP below prices it
            return int(columns[np.argmax(np.add(read[0::2], read[1::2]) - crossed)])

        for columns in _split(inside, left, right, line, OVERCUT, choose):
            piece = _mask(ink, group, columns)
            if (piece & core).any():
                pieces.append(piece)
                owners.append(index)
    if not pieces:
        return []
    spans = [_bounds(piece & core) for piece in pieces]
    order = np.argsort([(span[1] + span[3]) / 2 for span in spans])
    pieces, owners, spans = [pieces[i] for i in order], [owners[i] for i in order], [spans[i] for i in order]

    # boundary k lies before piece k: the price of cutting there, and of joining across it
    cut = [0.0] + [CUT_COST * _strokes((pieces[k] & core)[:, spans[k][1]]) if owners[k - 1] == owners[k] else 0.0
                   for k in range(1, len(pieces))]
    short = [span[2] - span[0] < 0.6 * line for span in spans]
    join_cost = [0.0] + [0.0 if cut[k] or (_overlap(spans[k - 1], spans[k]) >= 0.3 and (short[k - 1] or short[k]))
                         else 0.3 + 3.0 * max(0, spans[k][1] - spans[k - 1][3]) / line for k in range(1, len(pieces))]
    candidates, scores = {}, {}
    for first in range(len(pieces)):
        union = np.zeros_like(core)
        for last in range(first, min(first + 3, len(pieces))):
            union = union | pieces[last]
            top, left, bottom, right = _bounds(union & core)
            if right - left > 1.6 * line:
                break
            candidates[first, last + 1] = _digit(ink, union)
            scores[first, last + 1] = DIGIT_BONUS - sum(join_cost[first + 1:last + 1]) - cut[first]
    keys = list(candidates)
    if not keys:  # every piece is far wider than a digit: a rule or a frame, no number
        return []
    probabilities = np.asarray(predict_proba(np.stack([candidates[key].image for key in keys])))
    for key, probability in zip(keys, probabilities):
        box = candidates[key].box
        height, width = (box[2] - box[0]) / (line * ink.factor), (box[3] - box[1]) / (line * ink.factor)
        scores[key] += (_reading(probability.max(), box[2] - box[0], line * ink.factor)
                        - WIDTH_COST * max(0.0, width - WIDTH_OK) - SIZE_COST * max(0.0, SIZE_OK - max(height, width)))
    largest = ink.areas[1:].max()
    best, back = [0.0] + [-math.inf] * len(pieces), [None] * (len(pieces) + 1)
    for stop in range(1, len(pieces) + 1):
        for start in range(max(0, stop - 3), stop):
            if (start, stop) in scores and best[start] + scores[start, stop] > best[stop]:
                best[stop], back[stop] = best[start] + scores[start, stop], (start, True)
        small = (pieces[stop - 1] & core).sum() < 0.15 * largest and short[stop - 1]
        if small and best[stop - 1] - 0.5 > best[stop]:  # a speck may be left out, at a price
            best[stop], back[stop] = best[stop - 1] - 0.5, (stop - 1, False)
        if back[stop] is None:  # a piece no reading can hold (far wider than a digit) is left out
            best[stop], back[stop] = best[stop - 1] - 5.0, (stop - 1, False)
    chosen, stop = [], len(pieces)
    while stop > 0:
        start, kept = back[stop]
        if kept:
            chosen.append(candidates[start, stop])
        stop = start
    return chosen[::-1]


def segment(gray: np.ndarray, predict_proba: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Prepared]:
    """Every digit in (H, W) gray 0..1, left to right, each through the single-digit path; [] if no ink.

    Without `predict_proba` the split follows the shapes alone; with it, the classifier settles
    the doubtful joins and cuts (a loose bar of a 5, touching digits, a digit in two pieces).
    """
    ink = _analyse(gray)
    if ink.labels is None:
        return []
    if predict_proba is not None:
        return _recognise(ink, predict_proba)
    groups, line = _groups(ink)
    pieces = []
    for group in groups:
        _, left, _, right = _span(group, ink.boxes)
        inside = np.isin(ink.labels, list(group))
        pieces += [(columns, group) for columns in _split(inside, left, right, line)]
    return [_digit(ink, _mask(ink, group, columns)) for columns, group in sorted(pieces, key=lambda piece: piece[0])]


def read_number(source, predict_proba: Callable[[np.ndarray], np.ndarray]) -> dict:
    """Read a whole number from gray (H, W) 0..1, a path or bytes, with `predict_proba` (N,28,28) -> (N,10).

    Returns {"number": "2024", "digits": [{"digit", "confidence", "box"}, ...], "confidence": the
    product of the digits' confidences, "ink_found"}; an empty number with confidence 0 if no ink.
    """
    gray = source if isinstance(source, np.ndarray) else load_gray(source)
    digits = segment(gray, predict_proba)
    if not digits:
        return {"number": "", "digits": [], "confidence": 0.0, "ink_found": False}
    probabilities = np.asarray(predict_proba(np.stack([digit.image for digit in digits])))
    labels, confidences = probabilities.argmax(1), probabilities.max(1)
    return {"number": "".join(str(int(label)) for label in labels),
            "digits": [{"digit": int(label), "confidence": float(confidence), "box": digit.box}
                       for label, confidence, digit in zip(labels, confidences, digits)],
            "confidence": float(np.prod(confidences)), "ink_found": True}
