"""MNIST test digits as people hand them in (photos, scans, strips of digits) through `digits.images`.

Each test digit is rendered as a picture: dark ink on light paper, 40 to 600 px, random
margins and position, thinner or thicker strokes, blur, noise, a lighting gradient, JPEG
(or PNG) compression; strips of 2 to 6 test digits side by side (small gaps, sometimes
touching) are rendered the same way. Everything is seeded. The pictures go through
`images.prepare_file` / `reading.read(mode="number")` and a trained model; the targets are keeping
99% of the clean test accuracy and reading 95% of the strips whole.
Writes benchmarks/results/real_images.json.
Usage: python benchmarks/real_images.py [--run RUN_DIR | --config configs/cnn-995.json] [--samples 10000]
       [--strips 1000] [--seed 0]   (default: trains configs/cnn-995.json first, about a minute)
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

STROKE_CHANGE = (-0.8, 2.0)  # stroke width added, in MNIST pixels: fine pen .. marker
GAP = (1, 5)  # visible columns between neighbouring digits of a strip, MNIST pixels
TOUCHING = 0.1  # share of neighbouring digits drawn overlapping by a pixel instead


def as_ink(digit) -> np.ndarray:
    """A 28x28 digit (uint8 0..255 or float 0..1) as float32 ink 0..1, bright."""
    digit = np.asarray(digit)
    return digit.astype(np.float32) / (255.0 if digit.dtype == np.uint8 else 1.0)


def _ink_columns(digit: np.ndarray) -> np.ndarray:
    columns = np.flatnonzero(digit.max(0) > 0.1)
    return digit[:, columns[0]:columns[-1] + 1] if columns.size else digit


def strip_layers(digits: list[np.ndarray], rng: np.random.Generator, stroke_change: float = 0.0,
                 touching: float | None = None) -> np.ndarray:
    """(D, 32, W): 28x28 digits (float 0..1, ink bright) placed side by side with small random gaps and
    vertical jitter, each digit's ink on its own layer (`strip_ink` is their maximum, the strip itself).

    The gaps are what remains visible once the strokes are `stroke_change` wider. Without `touching`, a
    share TOUCHING of neighbours overlap by a pixel; with it (0..1), that share of neighbours is pushed
    together until their ink overlaps by 1 to 3 columns (touching digits, written close).
    """
    parts = [_ink_columns(digit) for digit in digits]
    if touching is None:
        gaps = np.where(rng.random(len(parts) - 1) < TOUCHING, -1, rng.integers(GAP[0], GAP[1] + 1, len(parts) - 1))
    else:
        gaps = np.where(rng.random(len(parts) - 1) < touching, -rng.integers(1, 4, len(parts) - 1),
                        rng.integers(GAP[0], GAP[1] + 1, len(parts) - 1))
    gaps = gaps + int(math.ceil(max(stroke_change, 0.0)))
    width = sum(part.shape[1] for part in parts) + int(gaps.sum()) + 8
    out, column = np.zeros((len(parts), 32, width), np.float32), 4
    for index, part in enumerate(parts):
        row = 2 + int(rng.integers(-1, 2))
        out[index, row:row + 28, column:column + part.shape[1]] = part
        column += part.shape[1] + (int(gaps[index]) if index < len(gaps) else 0)
    return out


def strip_ink(digits: list[np.ndarray], rng: np.random.Generator, stroke_change: float = 0.0,
              touching: float | None = None) -> np.ndarray:
    """(32, W): the digits' ink written as one strip (see `strip_layers`, which draws the same)."""
    return strip_layers(digits, rng, stroke_change, touching).max(0, initial=0.0)


def pen_on_paper(pen: np.ndarray, rng: np.random.Generator, printed=None) -> np.ndarray:
    """`render`'s own surface: slightly tinted paper and one of three inks, the pen's coverage (H, W) laid on it ->
    (H, W, 3) 0..1. `printed(paper)`, if given, draws on the paper under the pen (the paper's colour: (3,))."""
    paper = rng.uniform(0.72, 1.0) * (1 - rng.uniform(0, 0.08, 3))  # slightly tinted
    ink_colour = rng.choice([[0.05, 0.05, 0.08], [0.1, 0.15, 0.5], [0.3, 0.3, 0.3]]) * rng.uniform(0.5, 1.2)
    sheet = paper if printed is None else printed(paper)
    return sheet * (1 - pen[..., None]) + np.clip(ink_colour, 0, 1) * pen[..., None]


def printed_lines(size: int, spacing: float, width: float, rng: np.random.Generator) -> np.ndarray:
    """(size,) 0..1: how much of each of `size` rows (or columns) a printed line covers, lines `width` pixels wide every
    `spacing` pixels from a random offset (ruled or squared paper)."""
    place = np.arange(size) - rng.uniform(0, spacing)
    distance = np.abs((place + spacing / 2) % spacing - spacing / 2)  # to the nearest line's middle
    return np.clip(width / 2 + 0.5 - distance, 0, 1)


def pen_on_squared_paper(pen: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A `render` surface: `pen_on_paper` on squared paper (a school exercise book's): printed lines across and down
    every 14-24 MNIST pixels (0.7-1.2 digit heights: 5 mm squares under digits 4-7 mm tall), 0.4-0.8 MNIST pixels wide
    (at least a photo pixel), blue (taking red and green) or grey, taking 10-30% of the paper's light, placed at
    random -> (H, W, 3) 0..1."""
    spacing, width = rng.uniform(14, 24) * scale, max(rng.uniform(0.4, 0.8) * scale, 1.0)
    contrast = rng.uniform(0.1, 0.3)
    colour = np.array([1.3, 1.0, 0.4]) if rng.random() < 0.5 else np.ones(3)
    across, down = (printed_lines(size, spacing, width, rng) for size in pen.shape)
    grid = np.maximum(across[:, None], down[None, :])
    shade = 1 - np.clip(contrast * grid[..., None] * colour, 0, 1)
    return pen_on_paper(pen, rng, printed=lambda paper: paper * shade)


def render_squared(digits: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """A number of MNIST digits written as `strip_ink` writes a strip (10% of neighbours touching) on squared paper
    (`pen_on_squared_paper`) -> an encoded photo (digits >= 16 px tall)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    ink = strip_ink([as_ink(digit) for digit in digits], rng, stroke_change) if len(digits) > 1 else as_ink(digits[0])
    return render(ink, rng, min_height=16.0, stroke_change=stroke_change, surface=pen_on_squared_paper)


def render(ink: np.ndarray, rng: np.random.Generator, min_height: float = 0.0,
           stroke_change: float | None = None, *, blur: float | None = None, surface=None,
           low_resolution: tuple[float, int] | None = None, placement: dict | None = None,
           margins: tuple[float, float] = (0.05, 0.6)) -> bytes:
    """Ink (h, w) at MNIST scale (float 0..1, bright) -> an encoded photo of it: dark on light paper.

    benchmarks/stress.py sets what its conditions change (the defaults draw everything as before):
    `blur` the focus blur's sigma in MNIST pixels; `surface(pen, scale, rng)` -> (H, W, 3) picture 0..1
    the paper and ink (pen: (H, W) ink coverage 0..1, scale: photo pixels per MNIST pixel);
    `low_resolution` (digit height in pixels, PIL filter): the photo taken with the ink that many pixels
    tall, then enlarged back to its size with the filter. `margins`: the paper around the ink, each side, in
    shares of its height. `placement`, a dict, is filled with where the ink
    went: photo pixel (row, col) shows ink pixel (row * canvas[0] / size[1] - top + first_row,
    col * canvas[1] / size[0] - left + first_col) (the inked box's first row and column, margins in ink pixels).
    """
    rows, columns = np.flatnonzero(ink.max(1) > 0.1), np.flatnonzero(ink.max(0) > 0.1)
    ink = ink[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    height, width = ink.shape
    margins = rng.uniform(*margins, 4) * height  # top, bottom, left, right, in ink units
    canvas = (height + margins[0] + margins[1], width + margins[2] + margins[3])
    side = rng.uniform(40, 600)
    scale = max(side / max(canvas), min_height / height)  # pixels per MNIST pixel
    size = (max(8, round(canvas[1] * scale)), max(8, round(canvas[0] * scale)))  # (width, height)
    padded = np.zeros((round(canvas[0]) + 2, round(canvas[1]) + 2), np.float32)
    top, left = round(margins[0]), round(margins[2])
    padded[top:top + height, left:left + width] = ink
    if placement is not None:
        placement.update(first_row=int(rows[0]), first_col=int(columns[0]), top=top, left=left, canvas=canvas,
                         size=size)
    smooth = np.asarray(Image.fromarray(padded).resize(size, Image.Resampling.BICUBIC, box=(0, 0, *canvas[::-1])))
    # a pen draws hard-edged strokes: redraw the smooth shape from its signed distance, wider or thinner
    core = smooth >= 0.5
    signed = np.where(core, ndimage.distance_transform_edt(core) - 0.5, 0.5 - ndimage.distance_transform_edt(~core))
    stroke_change = rng.uniform(*STROKE_CHANGE) if stroke_change is None else stroke_change
    pen = np.clip(signed + stroke_change * scale / 2 + 0.5, 0, 1)
    pen = ndimage.gaussian_filter(pen, rng.uniform(0, 0.3 + 0.05 * scale) if blur is None else blur * scale)  # focus
    picture = pen_on_paper(pen, rng) if surface is None else surface(pen, scale, rng)
    full_size = size
    if low_resolution is not None:  # the camera's pixels average the scene: a box filter
        factor = low_resolution[0] / (height * scale)
        size = (max(2, round(size[0] * factor)), max(2, round(size[1] * factor)))
        picture = np.stack([np.asarray(Image.fromarray(picture[..., channel].astype(np.float32)).resize(
            size, Image.Resampling.BOX)) for channel in range(3)], -1)
    angle = rng.uniform(0, 2 * np.pi)
    grid_rows, grid_cols = np.mgrid[0:size[1], 0:size[0]] / max(size)
    ramp = np.cos(angle) * grid_cols + np.sin(angle) * grid_rows
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    picture *= (1 - rng.uniform(0, 0.4) * ramp)[..., None]  # light falling off across the page
    picture += rng.normal(0, rng.uniform(0, 0.03), picture.shape)  # sensor noise
    image = Image.fromarray(np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8), "RGB")
    if low_resolution is not None:
        image = image.resize(full_size, low_resolution[1])
    buffer = io.BytesIO()
    if rng.random() < 0.8:
        image.save(buffer, "JPEG", quality=int(rng.integers(35, 96)))
    else:
        image.filter(ImageFilter.SMOOTH).save(buffer, "PNG")
    return buffer.getvalue()


def render_digit(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One 28x28 MNIST digit (uint8 or float) -> an encoded photo of it."""
    return render(as_ink(digit), rng)


def render_strip(digits: list[np.ndarray], rng: np.random.Generator, touching: float | None = None) -> bytes:
    """Several 28x28 MNIST digits -> an encoded photo of them written side by side (digits >= 16 px tall);
    `touching`: see `strip_ink`."""
    scaled = [as_ink(digit) for digit in digits]
    stroke_change = rng.uniform(*STROKE_CHANGE)
    return render(strip_ink(scaled, rng, stroke_change, touching), rng, min_height=16.0, stroke_change=stroke_change)


def render_decimal(digits: list[np.ndarray], place: int, rng: np.random.Generator, comma: bool = False) -> bytes:
    """A number with a decimal point (or comma) before digit `place` (1 .. len - 1): the digits on both sides written
    as `strip_ink` writes a strip (10% of neighbours touching), a dot 2.4-4.4 MNIST pixels across on their baseline
    (the lower of the two sides' ink bottoms) in a gap of 3-6 pixels each side, with a tail 5-8 pixels down and
    to the left for a comma -> an encoded photo (digits >= 16 px tall)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    scaled = [as_ink(digit) for digit in digits]
    left, right = (_ink_columns(strip_ink(part, rng, stroke_change)) for part in (scaled[:place], scaled[place:]))
    radius = rng.uniform(1.2, 2.2)
    gaps = rng.integers(3, 7, 2) + int(math.ceil(max(stroke_change, 0.0)))
    width = int(gaps.sum() + 2 * math.ceil(radius))
    baseline = max(np.flatnonzero(part.max(1) > 0.5)[-1] for part in (left, right))
    mark = Image.new("L", (width, 32), 0)
    draw = ImageDraw.Draw(mark)
    centre = (gaps[0] + radius, baseline - radius + 0.5)
    draw.ellipse((centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius), fill=255)
    if comma:
        draw.line([centre, (centre[0] - rng.uniform(0.5, 1.5), centre[1] + rng.uniform(5, 8))], fill=255,
                  width=max(1, round(radius)))
    ink = np.concatenate([left, np.asarray(mark, np.float32) / 255.0, right], axis=1)
    return render(ink, rng, min_height=16.0, stroke_change=stroke_change)


def _mark_canvas(width: int) -> Image.Image:
    """A blank canvas for a mark (a sign, dots, a parenthesis) `width` MNIST pixels wide and a strip's 32 rows tall,
    at 4 times their size: draw on it in 4-times coordinates, then `_shrunk` (smooth strokes and dots of any width)."""
    return Image.new("L", (4 * width, 4 * 32), 0)


def _shrunk(mark: Image.Image) -> np.ndarray:
    """A mark drawn on a `_mark_canvas`, shrunk by area to the strip's pixels: (32, width) ink 0..1."""
    return np.asarray(mark.resize((mark.width // 4, 32), Image.Resampling.BOX), np.float32) / 255.0


def render_colon(digits: list[np.ndarray], place: int, rng: np.random.Generator) -> bytes:
    """A number with a colon before digit `place` (1 .. len - 1, as in a time, "12:30"): the digits on both sides
    written as `strip_ink` writes a strip (10% of neighbours touching), two dots 2.4-4.4 MNIST pixels across one above
    the other, each nudged up to a pixel sideways, the upper one's centre 25-45% and the lower one's 60-85% of the way
    down the digits' ink, in a gap of 3-6 pixels each side -> an encoded photo (digits >= 16 px tall)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    return render(colon_ink(digits, place, rng, stroke_change), rng, min_height=16.0, stroke_change=stroke_change)


def colon_ink(digits: list[np.ndarray], place: int, rng: np.random.Generator, stroke_change: float) -> np.ndarray:
    """`render_colon`'s ink, before it is photographed: (32, width) 0..1."""
    scaled = [as_ink(digit) for digit in digits]
    left, right = (_ink_columns(strip_ink(part, rng, stroke_change)) for part in (scaled[:place], scaled[place:]))
    rows = np.flatnonzero(np.maximum(left.max(1), right.max(1)) > 0.5)
    radius = rng.uniform(1.2, 2.2)
    gaps = rng.integers(3, 7, 2) + int(math.ceil(max(stroke_change, 0.0)))
    width = int(gaps.sum() + 2 * math.ceil(radius) + 2)
    mark = _mark_canvas(width)
    for low, high in ((0.25, 0.45), (0.6, 0.85)):
        centre = (gaps[0] + 1 + radius + rng.uniform(-1, 1), rows[0] + rng.uniform(low, high) * (rows[-1] - rows[0]))
        ImageDraw.Draw(mark).ellipse([4 * (centre[0] - radius), 4 * (centre[1] - radius), 4 * (centre[0] + radius),
                                      4 * (centre[1] + radius)], fill=255)
    return np.concatenate([left, _shrunk(mark), right], axis=1)


def render_signed(digits: list[np.ndarray], place: int, rng: np.random.Generator, char: str = "-") -> bytes:
    """A number with a dash before digit `place`: a minus sign before the first digit (0) or a hyphen between two
    digits (1 .. len - 1, as in "555-1234"), the digits on both sides written as `strip_ink` writes a strip (10% of
    neighbours touching), the dash a line 6-13 MNIST pixels long (a third to two thirds of a digit's height), 2.5-4
    pixels thick (the same pen: MNIST's strokes are 2.1-3.5 pixels wide where at least half inked), tilted up to 10
    degrees, its middle at 40-65% of the digits' height from their tops, in a gap of 2-5 pixels each side -> an encoded
    photo (digits >= 16 px tall). With `char` "+", a plus sign: the same line and one as long across it, through its
    middle (the same draws: a dash's photos are the same whatever the sign drawn with other seeds)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    scaled = [as_ink(digit) for digit in digits]
    parts = [_ink_columns(strip_ink(part, rng, stroke_change)) for part in (scaled[:place], scaled[place:]) if part]
    rows = np.flatnonzero(np.maximum.reduce([part.max(1) for part in parts]) > 0.5)
    length, thickness, tilt = rng.uniform(6, 13), rng.uniform(2.5, 4), math.radians(rng.uniform(-10, 10))
    gaps = rng.integers(2, 6, 2) + int(math.ceil(max(stroke_change, 0.0)))
    width = int(gaps.sum() + math.ceil(length) + 2)
    middle = rows[0] + rng.uniform(0.4, 0.65) * (rows[-1] - rows[0])
    mark = _mark_canvas(width)
    half = (length / 2 * math.cos(tilt), length / 2 * math.sin(tilt))
    centre = (gaps[0] + 1 + length / 2, middle)
    for along in [half] + ([(-half[1], half[0])] if char == "+" else []):  # a plus: a line across the dash too
        ImageDraw.Draw(mark).line([(4 * (centre[0] - along[0]), 4 * (centre[1] + along[1])),
                                   (4 * (centre[0] + along[0]), 4 * (centre[1] - along[1]))], fill=255,
                                  width=max(1, round(4 * thickness)))
    dash = _shrunk(mark)
    ink = np.concatenate([dash, *parts] if place == 0 else [parts[0], dash, parts[1]], axis=1)
    return render(ink, rng, min_height=16.0, stroke_change=stroke_change)


def render_percent(digits: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """A number with a percent sign after it ("42%"): the digits written as `strip_ink` writes a strip (10% of
    neighbours touching), then, 2-6 MNIST pixels on, a percent sign drawn with a pen 2-3.5 pixels wide: a slash over
    the digits' height (its ends up to a tenth of it inside or beyond), leaning 55-75 degrees, and two rings 0.24-0.4
    of that height across (each 0.85-1.2 times as wide as tall, drawn round 330-390 degrees, so now and then left
    a little open; at least three pen widths across, the pen's width grown as `render` grows the strokes, but at most
    half the height: a thick pen's rings are larger), one centred 20-30% of the way down and 15-30% across the sign,
    the other 70-80% down and 70-85% across -> an encoded photo (digits >= 16 px tall)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    number = _ink_columns(strip_ink([as_ink(digit) for digit in digits], rng, stroke_change))
    rows = np.flatnonzero(number.max(1) > 0.5)
    top, bottom = (rows[0] + rng.uniform(-0.1, 0.1) * (rows[-1] - rows[0]),
                   rows[-1] - rng.uniform(-0.1, 0.1) * (rows[-1] - rows[0]))
    height, pen = bottom - top, rng.uniform(2.0, 3.5)
    slant = height / math.tan(math.radians(rng.uniform(55, 75)))  # how far right its top stands of its bottom
    width = slant + rng.uniform(0.2, 0.35) * height
    gap = int(rng.integers(2, 7)) + int(math.ceil(max(stroke_change, 0.0)))
    canvas = int(math.ceil(gap + width + pen + 2))
    mark = _mark_canvas(canvas)
    draw = ImageDraw.Draw(mark)
    middle = gap + pen / 2 + width / 2
    draw.line([(4 * (middle - slant / 2), 4 * bottom), (4 * (middle + slant / 2), 4 * top)], fill=255,
              width=max(1, round(4 * pen)))
    left = gap + pen / 2
    for down, across in (((0.2, 0.3), (0.15, 0.3)), ((0.7, 0.8), (0.7, 0.85))):
        tall = min(max(rng.uniform(0.24, 0.4) * height, 3 * (pen + max(stroke_change, 0.0))), 0.5 * height)
        wide = tall * rng.uniform(0.85, 1.2)
        centre = (left + rng.uniform(*across) * width, top + rng.uniform(*down) * height)
        start = rng.uniform(0, 360)
        draw.arc([4 * (centre[0] - wide / 2), 4 * (centre[1] - tall / 2), 4 * (centre[0] + wide / 2),
                  4 * (centre[1] + tall / 2)], start, start + rng.uniform(330, 390), fill=255,
                 width=max(1, round(4 * pen)))
    return render(np.concatenate([number, _shrunk(mark)], axis=1), rng, min_height=16.0, stroke_change=stroke_change)


def render_parens(inside: list[np.ndarray], after: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """A number in parentheses ("(42)"), and after them, where `after` holds digits, a second number 24-40 MNIST pixels
    on (a telephone number's "(555) 123"): each number written as `strip_ink` writes a strip (10% of neighbours
    touching), each parenthesis an arc drawn with a pen 2-3.5 pixels wide, 1.0-1.3 times the digits' height tall, its
    middle bowed out 10-25% of that height from its ends, leaning -8 to 8 degrees, its middle 0-10% of the digits'
    height above or below theirs, 2-6 pixels from the digits -> an encoded photo (digits >= 16 px tall)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    number = _ink_columns(strip_ink([as_ink(digit) for digit in inside], rng, stroke_change))
    rows = np.flatnonzero(number.max(1) > 0.5)
    digits_tall = rows[-1] - rows[0]
    middle = (rows[0] + rows[-1]) / 2 + rng.uniform(-0.1, 0.1) * digits_tall
    height, pen = rng.uniform(1.0, 1.3) * digits_tall, rng.uniform(2.0, 3.5)
    bow, lean = rng.uniform(0.1, 0.25) * height, math.tan(math.radians(rng.uniform(-8, 8)))
    grown = int(math.ceil(max(stroke_change, 0.0)))

    def paren(opening: bool) -> np.ndarray:
        gap = int(rng.integers(2, 7)) + grown
        width = int(math.ceil(bow + abs(lean) * height + pen + gap + 2))
        mark = _mark_canvas(width)
        ends = pen / 2 + 1 + (bow if opening else 0.0) + abs(lean) * height / 2 + (0 if opening else gap)
        points = []
        for along in np.linspace(-1, 1, 24):  # top to bottom: a parabola, its middle `bow` out of its ends
            column = ends + (-1 if opening else 1) * bow * (1 - along ** 2) - lean * along * height / 2
            points.append((4 * column, 4 * (middle + along * height / 2)))
        ImageDraw.Draw(mark).line(points, fill=255, width=max(1, round(4 * pen)), joint="curve")
        return _shrunk(mark)

    parts = [paren(True), number, paren(False)]
    if after:
        parts += [np.zeros((32, int(rng.integers(24, 41))), np.float32),
                  _ink_columns(strip_ink([as_ink(digit) for digit in after], rng, stroke_change))]
    return render(np.concatenate(parts, axis=1), rng, min_height=16.0, stroke_change=stroke_change)


def render_date(parts: list[list[np.ndarray]], rng: np.random.Generator,
                time: list[np.ndarray] | None = None) -> bytes:
    """A date ("12/05/2026"): its parts (lists of digits) each written as `strip_ink` writes a strip (10% of
    neighbours touching), a slash between each two drawn with a pen 2-3.5 pixels wide, 1.0-1.3 times the digits' height
    tall, leaning right 15-40 degrees from upright (the writer's lean, each slash within 4 degrees of it), its middle
    0-10% of the digits' height above or below theirs, 2-6 pixels from the digits on each side -> an encoded photo
    (digits >= 16 px tall). With `time` (four digits), the time written after it as `render_spaced` parts two numbers
    (24-60 pixels on), hours and minutes parted by a colon as `render_colon` writes one ("12/05/2026 14:30")."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    strips = [_ink_columns(strip_ink([as_ink(digit) for digit in part], rng, stroke_change)) for part in parts]
    rows = np.flatnonzero(np.maximum.reduce([strip.max(1) for strip in strips]) > 0.5)
    digits_tall, grown = rows[-1] - rows[0], int(math.ceil(max(stroke_change, 0.0)))
    lean, ink = rng.uniform(15, 40), [strips[0]]
    for strip in strips[1:]:
        height, pen = rng.uniform(1.0, 1.3) * digits_tall, rng.uniform(2.0, 3.5)
        middle = (rows[0] + rows[-1]) / 2 + rng.uniform(-0.1, 0.1) * digits_tall
        slant = height * math.tan(math.radians(lean + rng.uniform(-4, 4)))  # how far right its top is of its bottom
        gaps = rng.integers(2, 7, 2) + grown
        width = int(math.ceil(gaps.sum() + slant + pen + 2))
        mark = _mark_canvas(width)
        bottom_x = gaps[0] + 1 + pen / 2
        ImageDraw.Draw(mark).line([(4 * bottom_x, 4 * (middle + height / 2)),
                                   (4 * (bottom_x + slant), 4 * (middle - height / 2))], fill=255,
                                  width=max(1, round(4 * pen)))
        ink += [_shrunk(mark), strip]
    if time is not None:
        ink += [np.zeros((32, int(rng.integers(24, 61))), np.float32), colon_ink(time, 2, rng, stroke_change)]
    return render(np.concatenate(ink, axis=1), rng, min_height=16.0, stroke_change=stroke_change)


def render_uneven(digits: list[np.ndarray], place: int, rng: np.random.Generator) -> bytes:
    """A number whose digit `place` is written smaller, 0.6-0.8 times the others' height, on their baseline (MNIST's
    row 24), the digits written as `strip_ink` writes a strip (10% of neighbours touching) -> an encoded photo (digits
    >= 16 px tall)."""
    scale, cells = rng.uniform(0.6, 0.8), [as_ink(digit) for digit in digits]
    size = max(1, round(28 * scale))
    smaller = np.asarray(Image.fromarray(cells[place]).resize((size, size), Image.Resampling.BILINEAR), np.float32)
    top = min(round(24 - 24 * scale), 28 - size)
    cells[place] = np.pad(smaller, ((top, 28 - size - top), ((28 - size) // 2, 28 - size - (28 - size) // 2)))
    stroke_change = rng.uniform(*STROKE_CHANGE)
    return render(strip_ink(cells, rng, stroke_change), rng, min_height=16.0, stroke_change=stroke_change)


def render_spaced(numbers: list[list[np.ndarray]], rng: np.random.Generator) -> bytes:
    """Numbers written on one line, each as `strip_ink` writes a strip (10% of neighbours touching), 24-60 MNIST
    pixels apart (1.2 to 3 digit heights: two numbers written apart, not one) -> an encoded photo (digits >= 16 px
    tall)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    strips = [_ink_columns(strip_ink([as_ink(digit) for digit in digits], rng, stroke_change)) for digits in numbers]
    parts = [strips[0]]
    for strip in strips[1:]:
        parts += [np.zeros((32, int(rng.integers(24, 61))), np.float32), strip]
    return render(np.concatenate(parts, axis=1), rng, min_height=16.0, stroke_change=stroke_change)


def render_lines(lines: list[list[np.ndarray]], rng: np.random.Generator) -> bytes:
    """Numbers written one under the other (each a list of 28x28 MNIST digits, written as `strip_ink` writes a
    strip, 10% of neighbours touching), each indented 0-20 MNIST pixels, 0-28 blank rows between their strips (their
    ink 0.4 to 2 digit heights apart) -> an encoded photo of them all (digits >= 16 px tall)."""
    stroke_change = rng.uniform(*STROKE_CHANGE)
    strips = [strip_ink([as_ink(digit) for digit in digits], rng, stroke_change) for digits in lines]
    indents = [int(rng.integers(0, 21)) for _ in strips]
    width = max(indent + strip.shape[1] for indent, strip in zip(indents, strips))
    rows = []
    for index, (indent, strip) in enumerate(zip(indents, strips)):
        rows += [np.zeros((int(rng.integers(0, 29)), width), np.float32)] if index else []
        rows.append(np.pad(strip, ((0, 0), (indent, width - indent - strip.shape[1]))))
    ink = np.concatenate(rows)
    return render(ink, rng, min_height=16.0 * ink.shape[0] / 28, stroke_change=stroke_change)


def _auto_split(model, photo: bytes, index: int) -> dict | None:
    """A photo of one digit read in auto mode, as `digits predict` reads a file (`model`: a Predictor, so with its
    stored not-a-digit threshold, or a predict_proba): {index, what was read} if it came back as several digits."""
    from digits import reading

    answer = reading.read(photo, "auto", model)
    return {"index": index, "read": answer.number} if answer.kind == "number" else None


def strip_photos(x_test, y_test, count: int, seed: list[int], touching: float | None = None,
                 longest: int = 6):
    """`count` strips of 2 to `longest` of the digits, each seeded `seed + [index]`: (true number, encoded photo)
    each."""
    for index in range(count):
        rng = np.random.default_rng([*seed, index])
        chosen = rng.choice(len(x_test), int(rng.integers(2, longest + 1)), replace=False)
        truth = "".join(str(int(label)) for label in y_test[chosen])
        yield truth, render_strip(list(x_test[chosen]), rng, touching)


def _strips_read(model, x_test, y_test, count: int, seed: list[int], touching: float | None = None):
    """`count` strips of 2-6 test digits (`strip_photos`), read as numbers by `model` (a Predictor, read as the
    package reads: its digit scores help choose the cuts and a piece under its not-a-digit threshold reads "?",
    so the strip is not read whole; or a predict_proba function): (read whole, right count, every digit's class
    right whatever was refused: what the strips read with refusal off)."""
    from digits import reading

    whole, counted, right = [], [], []
    for truth, photo in strip_photos(x_test, y_test, count, seed, touching):
        found = reading.read(photo, "number", model)
        whole.append(found.number == truth)
        counted.append(len(found.digits) == len(truth))
        right.append("".join(digit.label for digit in found.digits) == truth)
    return whole, counted, right


def measure(predict_proba, x_test, y_test, samples: int, strips: int, seed: int, model=None,
            touching_strips: int = 0) -> dict:
    """Clean and rendered accuracy on the first `samples` test digits, and whole-strip read rate."""
    from digits import calibration, images

    started = time.perf_counter()
    clean_probabilities = predict_proba(x_test[:samples])
    clean = float((clean_probabilities.argmax(1) == y_test[:samples]).mean())
    prepared, split = [], []
    for index in range(samples):  # each photo rendered once: prepared as one digit, and read in auto mode
        photo = render_digit(x_test[index], np.random.default_rng([seed, index]))
        prepared.append(images.prepare_file(photo, soft_above=getattr(model, "soft_above", None)))
        if (found := _auto_split(model or predict_proba, photo, index)) is not None:
            split.append(found)
    rendered_probabilities = predict_proba(np.stack([item.image for item in prepared]))
    predicted = rendered_probabilities.argmax(1)
    rendered = float((predicted == y_test[:samples]).mean())
    reads, counts, rights = _strips_read(model or predict_proba, x_test, y_test, strips, [seed, 1])
    touching_reads, _, touching_rights = _strips_read(model or predict_proba, x_test, y_test, touching_strips,
                                                      [seed, 3], touching=1.0)  # all touch
    return {"samples": samples, "strips": strips, "seed": seed, "clean_accuracy": clean,
            "rendered_accuracy": rendered, "kept_fraction": rendered / clean if clean else 0.0,
            "clean_ece": calibration.expected_calibration_error(clean_probabilities, y_test[:samples]),
            "rendered_ece": calibration.expected_calibration_error(rendered_probabilities, y_test[:samples]),
            "ink_not_found": sum(not item.ink_found for item in prepared),
            "auto_split_rate": len(split) / samples if samples else None, "auto_splits": split[:50],
            "strip_read_rate": float(np.mean(reads)) if reads else None,
            "strip_count_rate": float(np.mean(counts)) if counts else None,
            "strip_digits_right_rate": float(np.mean(rights)) if rights else None,
            "touching_strips": touching_strips,
            "touching_read_rate": float(np.mean(touching_reads)) if touching_reads else None,
            "touching_digits_right_rate": float(np.mean(touching_rights)) if touching_rights else None,
            "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory to measure (default: train --config first)")
    parser.add_argument("--config", default="configs/cnn-995.json",
                        help="recipe trained when no --run is given (default: configs/cnn-995.json)")
    parser.add_argument("--samples", type=int, default=10_000, help="test digits to render (default: 10000)")
    parser.add_argument("--strips", type=int, default=1000, help="multi-digit strips to render (default: 1000)")
    parser.add_argument("--touching-strips", type=int, default=1000,
                        help="strips whose neighbouring digits all touch (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--out", help="where to write the JSON (default: benchmarks/results/real_images.json)")
    args = parser.parse_args()

    from common import machine, predictors, save

    from digits import config, data, train
    from digits.predictor import Predictor

    given = predictors(parser, [args.run] if args.run else [])
    with tempfile.TemporaryDirectory() as scratch:
        if args.run:
            predictor, recipe = given[args.run], None
        else:
            recipe = args.config
            print(f"training {recipe} (no --run given) ...", file=sys.stderr)
            path = Path(recipe) if Path(recipe).is_file() else Path(__file__).resolve().parents[1] / recipe
            predictor = Predictor(train.train(config.load(path), out=Path(scratch) / "run", verbose=0).run_dir)
        dataset = data.load_dataset("mnist")
        result = measure(predictor.predict_proba, dataset.x_test, dataset.y_test, args.samples, args.strips,
                         args.seed, model=predictor, touching_strips=args.touching_strips)
    summary = {"benchmark": "real_images", "model": predictor.info.config.get("model"), "recipe": recipe,
               "backend": predictor.backend, **result,
               "targets": {"kept_fraction": 0.99, "strip_read_rate": 0.95, "auto_split_rate": 0.003,
                           "touching_read_rate": 0.90}, "machine": machine()}
    path = save("real_images", summary, args.out)
    rows = [("clean test accuracy", f"{result['clean_accuracy']:.4f}", ""),
            ("rendered accuracy", f"{result['rendered_accuracy']:.4f}", ""),
            ("kept fraction (rendered / clean)", f"{result['kept_fraction']:.4f}", ">= 0.99"),
            ("strips read whole", f"{result['strip_read_rate'] or 0:.4f}", ">= 0.95"),
            ("strips with the right digit count", f"{result['strip_count_rate'] or 0:.4f}", ""),
            ("strips' digits right, refusal aside", f"{result['strip_digits_right_rate'] or 0:.4f}", ""),
            ("touching strips read whole", f"{result['touching_read_rate'] or 0:.4f}", ">= 0.90"),
            ("  their digits right, refusal aside", f"{result['touching_digits_right_rate'] or 0:.4f}", ""),
            ("single digits split in auto mode", f"{result['auto_split_rate'] or 0:.4f}", "<= 0.003")]
    print(f"{'measure':36} {'value':>8}  target")
    for name, value, target in rows:
        print(f"{name:36} {value:>8}  {target}")
    print(f"{result['samples']} digits, {result['strips']} strips in {result['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
