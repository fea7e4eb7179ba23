"""Digits on forms: in a printed box, in a row of boxes, over a printed line (issue 14: pictures of the world).

MNIST digits rendered as photos the way benchmarks/real_images.py renders them (paper, pen, focus, lighting, noise,
JPEG), with printed form lines drawn on the paper under the pen, each picture read by `digits.read` in auto mode:

    plain      one digit, no lines: the reference
    box        one digit in a box (margins 1-4 MNIST pixels)
    underline  one digit over a line under it (from crossing its foot to 3 pixels below; reaching past it or not)
    boxes      a number of 2-6 digits, one in each box of a row of boxes (numbers read whole)
    line       a number of 2-6 digits written over a line (numbers read whole)

The paper around the ink is wider than real_images.py draws it, to hold the lines.
Lines are 0.4-1.2 MNIST pixels wide (a digit is about 20 tall), black, grey, blue or red, tilted up to 2 degrees.
Every picture is read twice: as the reading path reads it, and with `images.erase_form_lines` turned off (what
the reading path did before it). Digits come from the test set, or from the validation split (`--split
validation`, for choosing without the test set: the line finder's constants were set on 200 of them).
Writes benchmarks/results/form_lines.json.
Usage: python benchmarks/form_lines.py [--run LABEL=PATH ...] [--samples N] [--numbers N] [--split test|validation]
       (default run: the shipped model)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_images  # noqa: E402
from stress import digits_of, parse_runs  # noqa: E402

SINGLE, NUMBER = ("plain", "box", "underline"), ("boxes", "line")
LINE_WIDTH = (0.4, 1.2)  # MNIST pixels
TILT = 2.0  # degrees, either way
COLOURS = {"black": (0.1, 0.1, 0.1), "grey": (0.45, 0.45, 0.45), "blue": (0.25, 0.35, 0.75), "red": (0.85, 0.25, 0.25)}
BOX_MARGIN = (1.0, 4.0)  # MNIST pixels between the ink and the box, where the photo has room
UNDER_GAP = (-1.0, 3.0)  # MNIST pixels from the ink's bottom to the line (negative: it crosses the digit's foot)
UNDER_REACH = (-2.0, 6.0)  # MNIST pixels the line reaches past the ink, each end (negative: it stops short)
CELL = (1.2, 1.6)  # a row of boxes: each box this many times a digit's height (20) wide
ROOM = {"box": (0.3, 0.7), "underline": (0.3, 0.7), "boxes": (0.6, 1.0), "line": (0.3, 0.7)}  # the paper around
# the ink, each side, in shares of its height: room for the lines (real_images draws 0.05-0.6)
SUPERSAMPLE = 4


def _rotate(points: np.ndarray, centre: tuple[float, float], degrees: float) -> np.ndarray:
    """(N, 2) (x, y) points turned about the centre."""
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (points - centre) @ rotation.T + centre


def line_coverage(shape: tuple[int, int], segments: list, width: float, blur: float) -> np.ndarray:
    """(H, W) coverage 0..1 of straight segments ((x0, y0), (x1, y1)), photo pixels, `width` wide: drawn
    SUPERSAMPLE times larger, averaged down, focus-blurred."""
    height, breadth = shape
    mask = Image.new("L", (breadth * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(mask)
    for start, end in segments:
        draw.line([tuple(np.asarray(start) * SUPERSAMPLE), tuple(np.asarray(end) * SUPERSAMPLE)], fill=255,
                  width=max(1, round(width * SUPERSAMPLE)))
    coverage = np.asarray(mask.resize((breadth, height), Image.Resampling.BOX), np.float32) / 255
    return ndimage.gaussian_filter(coverage, blur) if blur > 0 else coverage


def printed(lines_of, own: np.random.Generator):
    """A `surface` for real_images.render: its own paper and pen (`pen_on_paper`, the same draws, so the digit's photo
    is the plain one's), with the segments `lines_of(placement, scale, shape)` gives printed on the paper under the
    pen."""
    width, colour = own.uniform(*LINE_WIDTH), np.asarray(COLOURS[str(own.choice(list(COLOURS)))])
    tilt = own.uniform(-TILT, TILT)

    def surface(pen: np.ndarray, scale: float, rng: np.random.Generator, placement: dict) -> np.ndarray:
        def printing(paper: np.ndarray) -> np.ndarray:
            segments = lines_of(placement, scale, pen.shape, own)
            centre = (pen.shape[1] / 2, pen.shape[0] / 2)
            segments = [tuple(_rotate(np.asarray(segment, np.float64), centre, tilt)) for segment in segments]
            coverage = line_coverage(pen.shape, segments, max(width * scale, 1.0),
                                     own.uniform(0, 0.3 + 0.05 * scale))
            return paper * (1 - coverage[..., None] * (1 - colour))

        return real_images.pen_on_paper(pen, rng, printing)

    return surface


def _photo_box(placement: dict, scale_rows: float, scale_cols: float, top: float, left: float, bottom: float,
               right: float) -> tuple[float, float, float, float]:
    """Ink coordinates (rows, columns of the array given to render) -> photo (x0, y0, x1, y1)."""
    def row(value):
        return (value - placement["first_row"] + placement["top"]) * scale_rows

    def col(value):
        return (value - placement["first_col"] + placement["left"]) * scale_cols

    return col(left), row(top), col(right), row(bottom)


def _scales(placement: dict) -> tuple[float, float]:
    (width, height), (rows, cols) = placement["size"], placement["canvas"]
    return height / rows, width / cols


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(ink.max(1) > 0.1), np.flatnonzero(ink.max(0) > 0.1)
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _inside(value: float, low: float, high: float) -> float:
    return float(min(max(value, low), high))


def box_lines(ink_box, walls=None):
    """Segments of a box (or of a row of boxes, `walls`: the inner walls' ink columns) around the ink box, its
    margins drawn per side and kept inside the photo."""
    def lines_of(placement, scale, shape, own):
        scale_rows, scale_cols = _scales(placement)
        x0, y0, x1, y1 = _photo_box(placement, scale_rows, scale_cols, *ink_box)
        height, width = shape
        margins = own.uniform(*BOX_MARGIN, 4) * scale
        edge = 1.0 + LINE_WIDTH[1] * scale / 2
        x0, x1 = _inside(x0 - margins[0], edge, width - edge), _inside(x1 + margins[1], edge, width - edge)
        y0, y1 = _inside(y0 - margins[2], edge, height - edge), _inside(y1 + margins[3], edge, height - edge)
        segments = [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))]
        for column in walls or []:
            x = _photo_box(placement, scale_rows, scale_cols, 0, column, 0, column)[0]
            segments.append(((x, y0), (x, y1)))
        return segments

    return lines_of


def under_line(ink_box):
    """The segment of a line under the ink box, kept inside the photo."""
    def lines_of(placement, scale, shape, own):
        x0, _, x1, y1 = _photo_box(placement, *_scales(placement), *ink_box)
        height, width = shape
        gap, reach = own.uniform(*UNDER_GAP) * scale, own.uniform(*UNDER_REACH, 2) * scale
        edge = 1.0 + LINE_WIDTH[1] * scale / 2
        y = _inside(y1 + gap, edge, height - edge)
        return [((_inside(x0 - reach[0], edge, width - edge), y), (_inside(x1 + reach[1], edge, width - edge), y))]

    return lines_of


def row_of_boxes(digits: list[np.ndarray], own: np.random.Generator) -> tuple[np.ndarray, list[float],
                                                                             tuple[float, float]]:
    """((32, W) ink: each digit (float 0..1) centred in its own cell of a row, the cells' inner walls' columns, the
    row's first and last columns). The box drawn around it adds `BOX_MARGIN` outside them, so its end boxes are a
    little wider than the inner ones."""
    parts = [real_images._ink_columns(digit) for digit in digits]
    cell = own.uniform(*CELL) * 20
    ink = np.zeros((32, int(math.ceil(cell * len(parts))) + 8), np.float32)
    for index, part in enumerate(parts):
        column = 4 + index * cell + (cell - part.shape[1]) / 2 + own.uniform(-1, 1)
        column = int(round(_inside(column, 4 + index * cell, 4 + (index + 1) * cell - part.shape[1])))
        row = 2 + int(own.integers(-1, 2))
        ink[row:row + 28, column:column + part.shape[1]] = np.maximum(ink[row:row + 28, column:column + part.shape[1]],
                                                                      part)
    return ink, [4 + index * cell for index in range(1, len(parts))], (4, 4 + cell * len(parts))


def picture(name: str, x, y, index: int, seed: int) -> tuple[str, bytes]:
    """(the truth, an encoded photo) of picture `index` under condition `name`."""
    photo = np.random.default_rng([seed, index])
    own = np.random.default_rng([seed, index, SINGLE.index(name) if name in SINGLE else 10 + NUMBER.index(name)])
    if name in SINGLE:
        digit = np.asarray(x[index], np.float32) / 255
        if name == "plain":
            return str(int(y[index])), real_images.render(digit, photo)
        lines_of = box_lines(_ink_box(digit)) if name == "box" else under_line(_ink_box(digit))
        return str(int(y[index])), _render(digit, photo, printed(lines_of, own), margins=ROOM[name])
    chosen = own.choice(len(x), int(own.integers(2, 7)), replace=False)
    truth = "".join(str(int(label)) for label in y[chosen])
    digits = [np.asarray(x[item], np.float32) / 255 for item in chosen]
    if name == "boxes":
        ink, walls, (first, last) = row_of_boxes(digits, own)
        top, _, bottom, _ = _ink_box(ink)
        surface = printed(box_lines((top, first, bottom, last), walls), own)
        return truth, _render(ink, photo, surface, min_height=16.0, margins=ROOM[name])
    stroke_change = photo.uniform(*real_images.STROKE_CHANGE)
    ink = real_images.strip_ink(digits, photo, stroke_change)
    return truth, _render(ink, photo, printed(under_line(_ink_box(ink)), own), min_height=16.0,
                          stroke_change=stroke_change, margins=ROOM[name])


def _render(ink, photo, surface, **options) -> bytes:
    placement: dict = {}
    return real_images.render(ink, photo, surface=lambda pen, scale, rng: surface(pen, scale, rng, placement),
                              placement=placement, **options)


@contextmanager
def eraser_replaced(by=None):
    """Inside the block the reading path's `images.erase_form_lines` is `by` (default: none, the lines are kept, as
    the reading path read before it); the eraser is put back after."""
    from digits import images

    erase = images.erase_form_lines
    images.erase_form_lines = by or (lambda intensity: intensity)
    try:
        yield
    finally:
        images.erase_form_lines = erase


def _read(reader, model, photo: bytes, number: bool, truth: str) -> tuple[bool, str]:
    answer = reader.read(photo, "auto", model)
    right = answer.kind == "number" and answer.number == truth if number else \
        answer.kind == "digit" and str(answer.digit) == truth
    return bool(right), answer.kind


def measure(predictors: dict, samples: int, numbers: int, seed: int, split: str, sheet: str | None = None) -> dict:
    from common import machine

    from digits import reading

    x, y = digits_of(split, 60_000)  # all of them: numbers draw from all, single digits are the first
    started = time.perf_counter()
    conditions, shown = {}, []
    for name in SINGLE + NUMBER:
        count = samples if name in SINGLE else numbers
        right = {label: {"erased": 0, "kept": 0} for label in predictors}
        kinds = {label: {} for label in predictors}
        for index in tqdm(range(count), desc=name, unit="picture", leave=False):
            truth, photo = picture(name, x, y, index, seed)
            if sheet and index < 6:
                shown.append(photo)
            for label, model in predictors.items():
                ok, kind = _read(reading, model, photo, name in NUMBER, truth)
                right[label]["erased"] += ok
                kinds[label][kind] = kinds[label].get(kind, 0) + 1
                with eraser_replaced():
                    right[label]["kept"] += _read(reading, model, photo, name in NUMBER, truth)[0]
        conditions[name] = {"reads": "numbers" if name in NUMBER else "digits", "count": count,
                            "right": {label: {lines: value / count for lines, value in row.items()}
                                      for label, row in right.items()},
                            "kinds": kinds}
    if sheet:
        contact_sheet(shown, sheet)
    return {"benchmark": "form_lines", "split": split, "samples": samples, "numbers": numbers, "seed": seed,
            "parameters": {"line_width": LINE_WIDTH, "tilt_degrees": TILT, "colours": list(COLOURS),
                           "box_margin": BOX_MARGIN, "under_gap": UNDER_GAP, "under_reach": UNDER_REACH,
                           "cell": CELL},
            "conditions": conditions, "seconds": round(time.perf_counter() - started, 1), "machine": machine()}


def contact_sheet(photos: list[bytes], path: str | Path) -> Path:
    """The first pictures of each condition, a row each, 96 px tall, as photographed (grey)."""
    import io

    from digits import files, images

    rows = [photos[start:start + 6] for start in range(0, len(photos), 6)]
    pictures = [[Image.fromarray(np.round(images.load_gray(photo) * 255).astype(np.uint8)) for photo in row]
                for row in rows]
    pictures = [[image.resize((max(1, round(image.width * 96 / image.height)), 96)) for image in row]
                for row in pictures]
    sheet = Image.new("L", (max(sum(image.width + 8 for image in row) for row in pictures), len(pictures) * 104), 255)
    for number, row in enumerate(pictures):
        column = 0
        for image in row:
            sheet.paste(image, (column, number * 104))
            column += image.width + 8
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return files.write_bytes(path, buffer.getvalue())


def table(result: dict) -> list[str]:
    lines = []
    for name, row in result["conditions"].items():
        cells = "  ".join(f"{label} {value['erased']:.2%} (without erasing {value['kept']:.2%})"
                          for label, value in row["right"].items())
        lines.append(f"{name:10} {row['count']:5} {row['reads']:7} {cells}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=PATH",
                        help="a model to measure: a run directory or model file, under a label (repeat; default: "
                             "the shipped model)")
    parser.add_argument("--samples", type=int, default=1000, help="single digits per condition (default: 1000)")
    parser.add_argument("--numbers", type=int, default=300, help="numbers per condition (default: 300)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="whose digits (default: test; validation to choose without the test set)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--sheet", help="also write a PNG of each condition's first pictures here")
    parser.add_argument("--out", help="where to write the JSON (default: benchmarks/results/form_lines.json)")
    args = parser.parse_args()
    from common import save

    from digits.predictor import Predictor
    from digits.runs import shipped_model

    try:
        runs = parse_runs(args.run) or {"shipped": str(shipped_model())}
        if not 1 <= args.samples <= 5_000 or not 0 <= args.numbers <= 5_000:
            raise ValueError(f"--samples {args.samples} / --numbers {args.numbers}: pick 1..5000 and 0..5000")
        predictors = {label: Predictor(path) for label, path in runs.items()}
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    result = measure(predictors, args.samples, args.numbers, args.seed, args.split, args.sheet)
    result["runs"] = runs
    path = save("form_lines", result, args.out)
    print("\n".join(table(result)))
    print(f"{result['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
