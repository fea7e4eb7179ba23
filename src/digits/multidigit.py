"""Whole numbers: a picture of several digits (a handwritten "2024", a house number, a meter) -> the
digits, left to right, each prepared exactly as `digits.images` prepares one digit.

    segment(gray, predict_proba=None) -> list[Prepared]: connected components, specks dropped,
        pieces stacked in one column (a broken 5) merged, over-wide ones cut where two digits
        touch; given a classifier, cut at many candidate places (curved cuts, `curved_cuts`,
        along the gap where digits touch; straight ones where they overlap), and which cuts and
        joins are kept is settled by how surely the classifier reads the result and by how well
        each digit's size fits the line.
    read(gray, predict_proba) -> (digits, probabilities): the same, classifier-guided, with the
        classifier's answer for each chosen digit (`predict_proba`: (N, 28, 28) -> (N, classes),
        e.g. `Predictor(run).predict_proba`). `digits.reading` turns them into a Reading.
    read_scored(gray, predict_scores) -> (digits, probabilities, digit scores): the same with a model that
        also says how surely each picture is a digit at all (`Predictor(run).predict_scores`); a piece cut
        off a digit, which may read as a sure "1", is seldom sure to be a digit, so the scores help choose cuts.
    Both take `sequence` (a `digits.sequence.SequenceReader`, which the shipped model carries): a model that
        reads the strip whole, without cutting; its likelihood of each rival reading (its own text, one digit
        fewer or more), added to the lattice's score, settles which cuts are kept (`_settled`).

Pictures with nothing as tall as a digit (a rule, specks, a dot grid) hold no number.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Callable

import numpy as np
from scipy import ndimage

from . import calibration, sequence as sequences
from .images import Ink, Prepared, analyse, bounds, cut_digit, ink_mask, span_of, stroke_width

READ_WEIGHT, SURE, CUT_BASE, CUT_COST, OVERCUT = 0.25, 7.5, 0.6, 0.7, 0.75  # whole numbers: see _recognise
WIDTH_OK, WIDTH_COST = 0.9, 3.0  # a digit's width rarely passes the line height (MNIST: larger side 20 px)
SIZE_OK, SIZE_COST = 0.85, 6.0  # nor is its larger side much under it (a stray stroke, a cut-off stem)
WIDE = 1.3  # a digit group wider than this times the line height holds touching digits
MIN_HEIGHT = 4  # working pixels: ink no taller than this (a rule, specks, dots) holds no number
MIN_PENS = 2.0  # nor does ink no taller than this many pen widths (dashes, underlines: strokes lying flat)
MAX_DIGITS = 40  # a group is cut into at most this many digits (a long rule is not 400 ones)
STEP, EDGE, SEVERAL = 0.15, 0.15, 1.1  # touching digits: candidate cuts every STEP lines, EDGE lines in from
# the group's ends; straight ones too in groups over SEVERAL lines wide (see _slices). Chosen on strips of MNIST
# training digits (see _recognise): STEP 0.1 read as well, at more cost; EDGE 0.25 or 0.35 missed the cut beside a
# 1; straight cuts in every group (or from 0.95 lines) split wide single digits: mixed strips 89% (92%), not 96%
STACKED, STACK_GAP, STACK_LIMIT = 0.5, 0.5, 400  # the line height: components sharing STACKED of the narrower one's
# columns, STACK_GAP times the shorter one's height apart or nearer, are measured as one (of the 400 largest)
MARK_TALL, MARK_SIZE, MARK_LOW, MARK_DROP, MARK_COMMA = 0.6, 0.4, 0.25, 0.15, 0.55  # decimal points and commas
MARK_FILL, MARK_PEN, MARK_PIXELS = 0.45, 0.9, 4  # between digits: sizes in digit heights, pen widths, pixels (marks)
DASH_SHORT, DASH_LONG, DASH_THIN, DASH_FLAT = 0.2, 1.0, 0.35, 1.3  # a minus sign or hyphen (marks): its width (from,
# to) and height (at most) in digit heights, and its width over its height (at least)
DASH_MIDDLE, DASH_NEAR = (0.2, 0.8), 1.0  # the rows of its middle as shares of the digits' height from their tops,
# and how far before the first digit a minus may stand, in digit heights
PLUS_SIZE, PLUS_ACROSS, PLUS_STRAY = (0.25, 0.8), 0.7, 0.15  # a plus sign (marks): its width and height in digit
# heights, its bar and stem across this share of them, and at most this share of its ink off the two or in the
# corners of its box (their outer quarters)
COLON_UPPER, COLON_LOWER, COLON_APART = (0.0, 0.6), (0.4, 1.1), 0.2  # a colon (marks): the middles of its upper
# and lower dots as shares of the digits' height from their tops, and how far apart they are at least (digit heights)
COLON_PEN, COLON_PIXELS = 0.5, 2  # and how small its dots may be: pen widths and working pixels across
PERCENT_TALL, PERCENT_WIDE, PERCENT_RING = (0.6, 1.5), (0.5, 1.3), 0.5  # a percent sign (marks): its height in digit
# heights, its width in its own heights, and its rings' holes' height at most (its heights)
PERCENT_ACROSS, PERCENT_STEEP, PERCENT_REACH = 0.5, 45.0, 0.7  # its slash: spread across its line at most this many
# pen widths (a standard deviation), this many degrees from lying flat, reaching down this share of the sign's height
PAREN_TALL, PAREN_THIN, PAREN_BOW, PAREN_SMOOTH = (0.8, 1.8), 0.5, 0.08, 0.04  # a parenthesis (marks): its height in
# digit heights, its width in its own heights (at most), how far its middle bows out from the line through its ends
# (at least, in its own heights) and how far its midline strays from a smooth arc (at most: a standard deviation, in
# its own heights)
PAREN_CROSSED, PAREN_RUN = 0.1, 2.5  # one stroke: the share of its rows crossing ink twice, its fullest row's ink
# against the median row's (at most)
SLASH_TALL, SLASH_LEAN, SLASH_ALIKE = 0.7, 10.0, 10.0  # the slashes of a date (marks): their height in digit
# heights, their lean right from upright (at least, degrees) and how far the two leans differ (at most, degrees)
SLASH_PARTS, SLASH_PAIR = ((1, 2), (1, 2), (2, 4)), 1.0  # a date's parts around its two slashes: how many digits each
# holds, a component this many digit heights wide or wider may hold two (touching digits)
SLASH_WORD = 1.0  # a gap this many digit heights wide (reading.SPACE: two numbers written apart) bounds a date: other
# writing on its line before or after it ("12/05/2026 14:30") is not its day or its year
LINE_GAP, LINE_SHARE = 0.25, 0.5  # lines of writing: a blank this many digit heights tall parts two bands; a band
# this many digit heights tall is a line (see lines)
MAX_JOIN = 10  # a digit joins at most this many pieces (a digit a line wide is cut into about 7 slices)
MAX_SHAPES = 8  # and at most this many shapes of connected ink (3 before: a 7 written with a pen that skips is six)
ONE_CUT, ONE_SURE = 0.6, 0.7  # a digit read as a "1" at least ONE_SURE beside a cut pays ONE_CUT (_recognise)
HOLE_SIZE, HOLE_COST = 0.1, 0.5  # a cut through a hole (HOLE_SIZE lines across or more) pays HOLE_COST strokes
# more (0.25 to 1 read alike; without it a 0 cut in two arcs read "12")
BAND, BEND = 0.2, 0.2  # a cut between touching digits strays at most BAND line heights from its column, at
# BEND (a fifth of one pair of inked pixels cut apart) per column it moves sideways
DIGIT_WEIGHT, DIGIT_CAP = 0.1, 4.0  # with digit scores (read_scored): each candidate earns DIGIT_WEIGHT times
# the log-odds that it is a digit at all, up to DIGIT_CAP (see _hand_scores)
SOFT_MARGIN = 0.3  # a piece is taken as it is above the model's soft_above plus this (reading): a strip's digits are
# often fewer pixels than a single digit's photo, so their ink measures softer. Chosen among 0.1-0.4 by the rule in
# docs/reader.md ("Pieces of a number, soft") on validation strips, the shipped model: 400 a condition, seed 2
# (benchmarks/results/stress_numbers_margins.json): 0.1 read paper 0.75 point worse than sharpened pieces; of 0.2,
# 0.3 and 0.4, 0.3 read the eight conditions best (mean 65.4% whole, sharpened 57.5%; blur 38.5% -> 81.25%)
MAX_PIECES, PIECES_PER_LINE = 60, 3  # the pieces read: the largest 60, or 3 per line height of the picture's
# width if more (a strip of 200 digits has 200 pieces; a page of specks is not read speck by speck)


def pieces_soft_above(soft_above: float | None) -> float | None:
    """The blur above which a piece of a number is taken as it is, for a model with this `soft_above` (None:
    never): its soft_above plus SOFT_MARGIN."""
    return None if soft_above is None else soft_above + SOFT_MARGIN


def lines(ink: Ink) -> list[Ink]:
    """The picture's lines of writing, top to bottom, each an Ink holding only its own components (in the
    picture's coordinates); [ink] for one line, or no ink. The components worth reading (as `_pieces` keeps
    them) are taken by their rows, top to bottom, into bands: one joins the band above it where the blank between
    them is at most LINE_GAP digit heights (the upper quartile of the heights of components holding a tenth of the
    largest one's ink or more). A band at least LINE_SHARE digit heights tall (and MIN_HEIGHT) is a line; a lower one
    (a dash, a dot, a bar) joins the line nearest to it. A 5 with its bar apart or a digit written with a pen that
    skips stays one line; numbers written one under the other are lines, even close together."""
    if ink.labels is None:
        return [ink]
    spans, digit = _components(ink)
    bands: list[list] = []  # [top, bottom, labels]
    for label in sorted(spans, key=lambda label: spans[label][:2]):
        top, bottom = spans[label][:2]
        if bands and top - bands[-1][1] <= LINE_GAP * digit:
            bands[-1][1] = max(bands[-1][1], bottom)
            bands[-1][2].append(label)
        else:
            bands.append([top, bottom, [label]])
    members = {index: list(band[2]) for index, band in enumerate(bands)  # the lines' components, by band
               if band[1] - band[0] >= max(LINE_SHARE * digit, MIN_HEIGHT)}
    if len(members) < 2:
        return [ink]
    for top, bottom, labels in (band for index, band in enumerate(bands) if index not in members):
        nearest = min(members, key=lambda line: max(bands[line][0] - bottom, top - bands[line][1], 0))
        members[nearest] += labels  # a low band joins the line whose rows are nearest
    return [_only(ink, labels) for labels in members.values()]


def marks(ink: Ink) -> tuple[list[tuple[int, str]], Ink]:
    """A line's decimal points and commas (and its signs, hyphens and colons, below), and its ink without them:
    [(column in the picture, "." or "," ...)], left to right. A mark is a component of its own between two digits:
    ink at least MARK_TALL digit heights tall (as `lines` measures a digit) stands wholly left of it and wholly right
    of it, and no other ink shares its columns
    (a dash of a digit written with a pen that skips has another above or below it). It is at most MARK_SIZE digit
    heights wide and tall, no more than three times as wide as tall or as tall as wide, and sits on the line: its
    top below the digits' middle, its bottom within MARK_LOW digit heights of their baseline (the upper quartile of
    their bottoms). One reaching more than MARK_DROP digit heights below the baseline, at least 1.5 times as tall as
    wide and at most MARK_COMMA digit heights tall, is a comma. A mark fills at least MARK_FILL of its box (an arc
    broken off a loop does not) and is at least MARK_PEN pen widths and MARK_PIXELS working pixels across; specks
    (under 2% of the largest component's ink, as `_pieces` drops them) are not marks. The last three were added
    after the first look failed its rule on three validation strips (docs/reader.md).

    A dash ("-") is a minus sign before the first digit (at most DASH_NEAR digit heights before it) or a hyphen
    between two digits ("555-1234"): a component of its own (nothing above or below it), DASH_SHORT to DASH_LONG
    digit heights wide, at most DASH_THIN tall and at least DASH_FLAT times as wide as tall, its middle between
    DASH_MIDDLE of the digits' height (the median of their tops to the baseline) from their tops, the ink next to it
    on each side (the nearest component, a digit's or not) reaching above and below it: a 7's bar broken off its stem
    is level with the stem's top, a 5's bar written apart right of its body stands above the body. A bar written
    over its digit has it below; two dashes one above the other (=) are none. A minus sign is the first ink of its
    line. A plus sign ("+") is a cross (`_cross`) PLUS_SIZE digit heights wide and tall, placed as a dash is, but for
    the ink beside it, which need not reach above and below it (a cross is no bar broken off a digit).

    A colon (":", a time: "12:30") is two dots one above the other between two digits, nothing else in their columns
    (`_colon`): each a filled blob as a decimal point is, but as small as COLON_PEN pen widths and COLON_PIXELS working
    pixels (a colon's dots are often finer than the pen's strokes; two dots stacked in a gap are no speck of noise).
    Dots that touch each other are one blob and no colon.

    A percent sign ("%", "42%") is a group of components sharing columns (`_column_groups`) after a digit, PERCENT_TALL
    digit heights tall, its middle placed as a dash's, whose ink is two rings and a slash (`_percent`).

    Parentheses ("(555) 123", "(42)") and the two slashes of a date ("12/05/2026") are found first, in pairs
    (`_parens`, `_slashes`), and are not digits where the others are measured (nor in the digits' height: they stand
    taller)."""
    if ink.labels is None:
        return [], ink
    areas = ink.areas
    spans, digit = _components(ink)
    pairs = {**_parens(ink, spans, digit), **_slashes(ink, spans, digit)}  # parentheses and a date's slashes
    if pairs:  # taller than the digits: the digits' height without them
        digit = _components(ink, pairs)[1] or digit
    tall = [span for label, span in spans.items() if span[1] - span[0] >= MARK_TALL * digit and label not in pairs]
    if not tall:
        return [], ink
    baseline = float(np.percentile([span[1] for span in tall], 75))  # most digits reach it; a dash of one may not
    middle = float(np.median([(span[0] + span[1]) / 2 for span in tall]))
    tops = float(np.median([span[0] for span in tall]))
    pen = functools.cache(lambda: stroke_width(ink.labels > 0))  # the stroke width, measured once a candidate needs it
    found = [((spans[label][2] + spans[label][3]) // 2, char, label) for label, char in pairs.items()]
    used = set(pairs)
    for group in _column_groups(spans):
        if used & set(group):
            continue
        top, bottom = min(spans[label][0] for label in group), max(spans[label][1] for label in group)
        left, right = min(spans[label][2] for label in group), max(spans[label][3] for label in group)
        if PERCENT_TALL[0] * digit <= bottom - top <= PERCENT_TALL[1] * digit \
                and DASH_MIDDLE[0] <= _down(top, bottom, (tops, baseline)) <= DASH_MIDDLE[1] \
                and any(span[3] <= left for span in tall) \
                and _percent(np.isin(ink.labels[top:bottom, left:right], group)):
            found.append(((left + right) // 2, "%", group[0]))
            used |= set(group)
    for label, (top, bottom, left, right) in spans.items():
        if label in used:
            continue
        height, width = bottom - top, right - left
        sign = _sign(ink, spans, label, tall, digit, (tops, baseline))
        if sign:
            found.append(((left + right) // 2, sign, label))
            continue
        if max(height, width) > MARK_COMMA * digit or not _dot(areas[label], height, width, pen):
            continue
        lower = _colon(ink, spans, label, digit, (tops, baseline), pen, tall)
        if lower:
            found.append(((left + right) // 2, ":", label))
            used |= {label, lower}
            continue
        if max(height, width) < max(MARK_PEN * pen(), MARK_PIXELS) or top < middle or not _alone(spans, label):
            continue  # a speck narrower than the pen; nothing above or below it: not a piece of a digit written
            # with a pen that skips
        if not (any(span[3] <= left for span in tall) and any(span[2] >= right for span in tall)):
            continue
        below = bottom - baseline
        if below > MARK_DROP * digit and height >= 1.5 * width:
            found.append(((left + right) // 2, ",", label))
        elif abs(below) <= MARK_LOW * digit and max(height, width) <= MARK_SIZE * digit:
            found.append(((left + right) // 2, ".", label))
    if not found:
        return [], ink
    used |= {mark[2] for mark in found}
    rest = [label for label in range(1, areas.size) if areas[label] and label not in used]
    return [(column * ink.factor, char) for column, char, _ in sorted(found)], _only(ink, rest)


def _sign(ink: Ink, spans: dict, label: int, tall: list, digit: float, rows: tuple[float, float]) -> str:
    """"-" where component `label` is a minus sign or hyphen, "+" where it is a plus sign (see `marks`), else "":
    `tall` the spans of the digits, `rows` their tops' and baseline's rows."""
    top, bottom, left, right = spans[label]
    height, width = bottom - top, right - left
    if not DASH_MIDDLE[0] <= _down(top, bottom, rows) <= DASH_MIDDLE[1]:
        return ""
    if DASH_SHORT * digit <= width <= DASH_LONG * digit and height <= DASH_THIN * digit \
            and width >= DASH_FLAT * max(height, 1):
        char = "-"
    elif PLUS_SIZE[0] * digit <= min(height, width) and max(height, width) <= PLUS_SIZE[1] * digit \
            and _cross(ink.labels[top:bottom, left:right] == label):
        char = "+"
    else:
        return ""
    if not _alone(spans, label):
        return ""  # nothing above or below it: not a bar of a digit written apart, not half of an "="
    if not any(span[2] >= right for span in tall):
        return ""  # a digit after it
    before = [span for other, span in spans.items() if other != label and span[3] <= left]
    after = [span for other, span in spans.items() if other != label and span[2] >= right]
    beside = [min(after, key=lambda span: span[2])] + ([max(before, key=lambda span: span[3])] if before else [])
    if char == "-" and any(span[0] >= top or span[1] <= bottom for span in beside):
        return ""  # the ink beside a dash must reach above and below it: not a 7's or a 5's bar broken off the digit
    return char if before or beside[0][2] - right <= DASH_NEAR * digit else ""


def _down(top: float, bottom: float, rows: tuple[float, float]) -> float:
    """How far down the digits a mark's middle stands, rows `top` to `bottom`: a share of the digits' height from their
    tops (`rows`: their tops' and baseline's rows; 0 at the tops, 1 on the baseline)."""
    return ((top + bottom) / 2 - rows[0]) / max(rows[1] - rows[0], 1.0)


def _dot(area: int, height: int, width: int, pen: Callable[[], float]) -> bool:
    """Whether a component `height` x `width` holding `area` pixels may be a dot (of a decimal point or a colon): a
    filled blob (MARK_FILL of its box: an arc broken off a loop is not), at most three times as long as wide (not a
    stroke), at least COLON_PIXELS working pixels and COLON_PEN pen widths (`pen()`, measured only if needed) across."""
    size = max(height, width)
    return (size >= COLON_PIXELS and area >= MARK_FILL * height * width and size <= 3 * min(height, width)
            and size >= COLON_PEN * pen())


def _colon(ink: Ink, spans: dict, label: int, digit: float, rows: tuple[float, float], pen: Callable[[], float],
           tall: list) -> int:
    """The label of the lower dot of a colon whose upper dot is component `label` (a dot: see `marks`), else 0: a dot
    below it in the same columns (sharing half the narrower one's), with a gap between them; nothing else in the
    pair's columns; a digit wholly left and wholly right of it; the upper dot's middle COLON_UPPER and the lower
    one's COLON_LOWER of the way down from the digits' tops (`rows`: their tops' and baseline's rows), the two at
    least COLON_APART digit heights apart. `tall` the spans of the digits, `pen()` the stroke width (`_dot`)."""
    top, bottom, left, right = spans[label]
    size = max(bottom - top, right - left)
    if size > MARK_SIZE * digit:
        return 0
    if not COLON_UPPER[0] <= _down(top, bottom, rows) <= COLON_UPPER[1]:
        return 0
    for other, (low_top, low_bottom, low_left, low_right) in spans.items():
        height, width = low_bottom - low_top, low_right - low_left
        if other == label or low_top < bottom or min(right, low_right) - max(left, low_left) < 0.5 * min(
                right - left, width):
            continue
        if max(height, width) > MARK_SIZE * digit or not _dot(ink.areas[other], height, width, pen):
            continue  # not a dot
        if not COLON_LOWER[0] <= _down(low_top, low_bottom, rows) <= COLON_LOWER[1] \
                or (low_top + low_bottom - top - bottom) / 2 < COLON_APART * digit:
            continue
        first, last = min(left, low_left), max(right, low_right)
        if any(key not in (label, other) and span[2] < last and first < span[3] for key, span in spans.items()):
            return 0  # other ink in its columns: pieces of a digit
        if any(span[3] <= first for span in tall) and any(span[2] >= last for span in tall):
            return other
    return 0


def _percent(shape: np.ndarray) -> bool:
    """Whether a shape (the pixels of one group of components in its box, see `marks`) is a percent sign: two rings
    and a slash. Its box is PERCENT_WIDE of its height wide; exactly two holes of 2 pixels or more (and a tenth of the
    largest hole: not the chinks where a ring meets the slash), each at most PERCENT_RING of its height tall, one's
    middle above its middle row and left of the other's, the other's below it (a ring left open is no ring: closing
    gaps of a pixel or more before looking for holes read fewer signs on validation photos, 67.5% and 35% exactly
    against 70.8%, seed 914);
    and its ink off the two rings (farther than one and a half pen widths from their holes) a slash: reaching down
    PERCENT_REACH of the height, straight (its spread across its main axis at most PERCENT_ACROSS pen widths) and
    leaning right, at least PERCENT_STEEP degrees from lying flat. A "96" of touching digits has the same holes, but
    the 9's stem and the 6's top are no straight line, and lie flatter."""
    height, width = shape.shape
    if not PERCENT_WIDE[0] * height <= width <= PERCENT_WIDE[1] * height:
        return False
    holes, count = ndimage.label(ndimage.binary_fill_holes(shape) & ~shape)
    sizes = np.bincount(holes.ravel(), minlength=count + 1)
    rings = [label for label in range(1, count + 1) if sizes[label] >= max(2, 0.1 * sizes[1:].max())]
    if len(rings) != 2:
        return False
    (upper_row, upper_column), (lower_row, lower_column) = sorted(
        ndimage.center_of_mass(holes > 0, holes, rings))
    boxes = ndimage.find_objects(holes)
    if any(boxes[label - 1][0].stop - boxes[label - 1][0].start > PERCENT_RING * height for label in rings) \
            or not upper_row < height / 2 < lower_row or upper_column >= lower_column:
        return False
    pen = stroke_width(shape)  # measured only for a shape with its rings in place (most digits have none)
    near = ndimage.distance_transform_edt(~np.isin(holes, rings)) <= 1.5 * pen + 1
    rows, columns = np.nonzero(shape & ~near)
    if rows.size < 3 or rows.max() + 1 - rows.min() < PERCENT_REACH * height:
        return False
    return 0.0 <= _leaning(rows, columns, pen) <= 90.0 - PERCENT_STEEP


def _parens(ink: Ink, spans: dict, digit: float) -> dict[int, str]:
    """The components that are parentheses, in pairs around digits: label -> "(" or ")". Each is a component of its own
    (nothing above or below it), PAREN_TALL digit heights tall (`digit`), at most PAREN_THIN of its height wide, and a
    smooth stroke bowing out (`_arc`). Each ")" is paired with the nearest "(" left of it that holds a digit between
    them (a component MARK_TALL digit heights tall) whose middle row lies within both parentheses' rows; one alone is no
    parenthesis. A "1" written bowed is as thin as one, and reads as one where it is not paired."""
    sides = {}
    for label, (top, bottom, left, right) in spans.items():
        height = bottom - top
        if not PAREN_TALL[0] * digit <= height <= PAREN_TALL[1] * digit or right - left > PAREN_THIN * height \
                or not _alone(spans, label):
            continue
        side = _arc(ink.labels[top:bottom, left:right] == label)
        if side:
            sides[label] = side
    pairs: dict[int, str] = {}
    for label in sorted((label for label in sides if sides[label] == ")"), key=lambda label: spans[label][2]):
        closing = spans[label]
        for first in sorted((other for other in sides if sides[other] == "(" and other not in pairs
                             and spans[other][3] <= closing[2]), key=lambda other: -spans[other][3]):
            opening = spans[first]
            rows = (max(opening[0], closing[0]), min(opening[1], closing[1]))
            inside = [span for other, span in spans.items() if other not in (first, label) and other not in pairs
                      and span[2] >= opening[3] and span[3] <= closing[2] and span[1] - span[0] >= MARK_TALL * digit]
            if inside and all(rows[0] <= (span[0] + span[1]) / 2 <= rows[1] for span in inside):
                pairs[first], pairs[label] = "(", ")"
                break
    return pairs


def _slashes(ink: Ink, spans: dict, digit: float) -> dict[int, str]:
    """The two slashes of a date ("12/05/2026", "3/4/21"): label -> "/", else none. A slash is a component of its own
    (nothing above or below it), SLASH_TALL digit heights tall or more, one straight stroke (`_lean`) leaning right
    SLASH_LEAN degrees or more. A "1" written leaning is one too (of MNIST's training 1s, 54% lean so), so only two
    that part the line's tall components (MARK_TALL digit heights: digits, the slashes) as a date is parted are taken:
    SLASH_PARTS digits before, between and after them (a year of two digits or more; a component SLASH_PAIR digit
    heights wide may hold two, touching), leaning within SLASH_ALIKE degrees of each other; of several such
    pairs, the one leaning most. Where the whole line holds none, the date's first part starts after the last gap
    SLASH_WORD digit heights wide before its first slash, and its year ends at the first such gap after the second
    (none lies between them): a time or another number written apart on the line ("12/05/2026 14:30") stays out of
    it. A lone slash ("3/4") stays a "1"."""
    line = sorted((label for label, span in spans.items() if span[1] - span[0] >= MARK_TALL * digit),
                  key=lambda label: spans[label][2])
    if len(line) < 5:  # a digit, two slashes, a digit and a year (one component at the least): no date in fewer
        return {}
    leaning = {}
    for label in line:
        top, bottom, left, right = spans[label]
        if bottom - top >= SLASH_TALL * digit and _alone(spans, label):
            lean = _lean(ink.labels[top:bottom, left:right] == label)
            if lean >= SLASH_LEAN:
                leaning[label] = lean
    most = [1 + (spans[label][3] - spans[label][2] >= SLASH_PAIR * digit) for label in line]  # digits each may hold

    def pair(bounds: Callable[[int, int], tuple[int, int] | None]) -> dict[int, str]:
        """The pair leaning most whose parts, within `bounds(at, to)` of the line (None: no date), part as a date's."""
        best: tuple = ()
        for first, second in itertools.combinations([label for label in line if label in leaning], 2):  # left to right
            at, to = line.index(first), line.index(second)
            within = bounds(at, to)
            if within is None:
                continue
            parts = [(stop - start, sum(most[start:stop]))
                     for start, stop in ((within[0], at), (at + 1, to), (to + 1, within[1]))]
            if all(fewest <= high and low <= largest for (fewest, largest), (low, high) in zip(parts, SLASH_PARTS)) \
                    and abs(leaning[first] - leaning[second]) <= SLASH_ALIKE \
                    and (not best or min(leaning[first], leaning[second]) > best[0]):
                best = (min(leaning[first], leaning[second]), first, second)
        return {best[1]: "/", best[2]: "/"} if best else {}

    found = pair(lambda at, to: (0, len(line)))  # the whole line first: a date alone on it as before
    if found:
        return found
    reach = np.maximum.accumulate([spans[label][3] for label in line])  # the rightmost ink so far
    words = [index for index in range(1, len(line)) if spans[line[index]][2] - reach[index - 1] >= SLASH_WORD * digit]

    def between_words(at: int, to: int) -> tuple[int, int] | None:
        if any(at < index <= to for index in words):  # the slashes of one date are not written apart
            return None
        return (max([index for index in words if index <= at], default=0),
                min([index for index in words if index > to], default=len(line)))

    return pair(between_words) if words else {}


def _lean(shape: np.ndarray) -> float:
    """How far a shape (a component's pixels in its box) leans right from upright, in degrees, where it is one straight
    stroke (`_leaning`, as a percent sign's slash), else -1 (a 1's flag or foot spreads it; so does every other
    digit)."""
    rows, columns = np.nonzero(shape)
    return _leaning(rows, columns, stroke_width(shape)) if rows.size >= 3 else -1.0


def _leaning(rows: np.ndarray, columns: np.ndarray, pen: float) -> float:
    """How far ink (its pixels' `rows` and `columns`, three or more) leans right from upright, in degrees, where it lies
    along one straight line leaning right (its spread across its main axis at most PERCENT_ACROSS of the stroke width
    `pen`, a standard deviation), else -1."""
    (across, _), axes = np.linalg.eigh(np.cov(np.stack([columns, rows]).astype(float)))
    direction = axes[:, 1]  # (columns, rows) along the stroke
    if math.sqrt(max(across, 0.0)) > PERCENT_ACROSS * pen or direction[0] * direction[1] >= 0:
        return -1.0
    return 90.0 - math.degrees(math.atan2(abs(direction[1]), abs(direction[0])))


def _arc(shape: np.ndarray) -> str:
    """"(" or ")" where a shape (a component's pixels in its box) is one smooth stroke bowing out as a parenthesis
    does, else "": its midline (each row's middle column of ink), fitted with a parabola against the rows, bows out
    at least PAREN_BOW of its height from the line through its ends (its middle left of them for "(") and strays from
    it at most PAREN_SMOOTH of its height (a standard deviation: a 1's flag or foot strays); at most PAREN_CROSSED of
    its rows cross ink more than once (a 6's loop does) and none holds more than PAREN_RUN times the median row's ink
    (a 7's bar does)."""
    rows = np.flatnonzero(shape.any(1))
    if rows.size < 5:
        return ""
    inked = shape[rows]
    runs = inked[:, 0].astype(int) + (np.diff(inked.astype(int), axis=1) == 1).sum(1)
    widths = inked.sum(1)
    if np.mean(runs > 1) > PAREN_CROSSED or widths.max() > PAREN_RUN * np.median(widths):
        return ""
    middles = (inked * np.arange(shape.shape[1])).sum(1) / widths
    along = (rows - (rows[0] + rows[-1]) / 2) / max((rows[-1] - rows[0]) / 2, 1.0)
    fit = np.polyfit(along, middles, 2)
    height = shape.shape[0]
    if np.std(middles - np.polyval(fit, along)) > PAREN_SMOOTH * height or abs(fit[0]) < PAREN_BOW * height:
        return ""
    return "(" if fit[0] > 0 else ")"


def _column_groups(spans: dict) -> list[list[int]]:
    """The components (`spans`: label -> (top, bottom, left, right)) in groups, left to right, each holding those whose
    columns overlap one another's, in a chain (a percent sign's two rings and its slash)."""
    groups: list[list[int]] = []
    right = 0
    for label in sorted(spans, key=lambda label: spans[label][2]):
        left, end = spans[label][2:]
        if groups and left < right:
            groups[-1].append(label)
            right = max(right, end)
        else:
            groups.append([label])
            right = end
    return groups


def _alone(spans: dict, label: int) -> bool:
    """Whether no other component shares any of component `label`'s columns (a mark stands in a column of its own)."""
    left, right = spans[label][2:]
    return not any(other != label and span[2] < right and left < span[3] for other, span in spans.items())


def _cross(shape: np.ndarray) -> bool:
    """Whether a shape (a component's pixels in its box) is a plus sign: its fullest row (the bar) holds ink across
    PLUS_ACROSS of its width and its fullest column (the stem) down PLUS_ACROSS of its height, the two crossing in its
    middle half both ways, at most PLUS_STRAY of its ink lies off the rows and columns at least half as full as them
    (a 4's slanted stroke does, an x has no full row), and at most PLUS_STRAY in the corners of its box, the outer
    quarter of its rows and of its columns (a bold digit written as a blob fills them); and it encloses no hole, however
    small (a bold 0, 4, 6 or 9 written smaller than the other digits passes the rest)."""
    height, width = shape.shape
    rows, columns = shape.sum(1), shape.sum(0)
    bar, stem = int(np.argmax(rows)), int(np.argmax(columns))
    if rows[bar] < PLUS_ACROSS * width or columns[stem] < PLUS_ACROSS * height:
        return False
    if not (0.25 * height <= bar + 0.5 <= 0.75 * height and 0.25 * width <= stem + 0.5 <= 0.75 * width):
        return False
    if (ndimage.binary_fill_holes(shape) & ~shape).any():
        return False  # a loop, however small: a bold 0, 4, 6 or 9 written small, not a cross
    on = (rows >= 0.5 * rows[bar])[:, None] | (columns >= 0.5 * columns[stem])[None, :]
    edge = (np.arange(height) < height / 4) | (np.arange(height) >= 3 * height / 4)
    corners = edge[:, None] & ((np.arange(width) < width / 4) | (np.arange(width) >= 3 * width / 4))[None, :]
    stray = PLUS_STRAY * float(shape.sum())
    return float(shape[~on].sum()) <= stray and float(shape[corners].sum()) <= stray


def _components(ink: Ink, besides: dict | set = frozenset()) -> tuple[dict[int, tuple[int, int, int, int]], float]:
    """The components worth reading (2% of the largest one's ink or more, as `_pieces` keeps them), each label's
    span (top, bottom, left, right), and a digit's height: the upper quartile of the heights of those holding a
    tenth of the largest one's ink or more, but for the labels `besides` (parentheses and a date's slashes, taller than
    digits)."""
    areas = ink.areas
    largest = areas[1:].max()
    spans = {label: (box[0].start, box[0].stop, box[1].start, box[1].stop)
             for label, box in enumerate(ink.boxes, 1) if areas[label] >= 0.02 * largest}
    heights = [bottom - top for label, (top, bottom, _, _) in spans.items()
               if areas[label] >= 0.1 * largest and label not in besides]
    return spans, float(np.percentile(heights, 75)) if heights else 0.0


def _only(ink: Ink, labels: list[int]) -> Ink:
    """The Ink of these components alone (and the faint ink each owns): the others are paper."""
    keep = np.zeros(ink.areas.size, bool)
    keep[labels] = True
    owner = np.where(keep[ink.owner], ink.owner, 0)
    return dataclasses.replace(ink, intensity=np.where(owner > 0, ink.intensity, 0).astype(ink.intensity.dtype),
                               labels=np.where(keep[ink.labels], ink.labels, 0), owner=owner,
                               areas=np.where(keep, ink.areas, 0))


def _overlap(first, second) -> float:
    """Shared columns of two spans (top, left, bottom, right), as a fraction of the narrower one."""
    shared = min(first[3], second[3]) - max(first[1], second[1])
    return shared / max(1, min(first[3] - first[1], second[3] - second[1]))


def _pieces(ink: Ink) -> tuple[list[set[int]], float]:
    """The components worth reading (specks dropped), one set each, and the line height (digit height)."""
    areas = ink.areas
    largest = areas[1:].max()
    labels = sorted((label for label in range(1, areas.size) if areas[label] >= 0.02 * largest),
                    key=lambda label: -areas[label])
    line = _line_height(ink, labels)
    if line < MIN_HEIGHT:  # rules, specks and dots: nothing as tall as a digit
        return [], line
    if line < MIN_PENS * stroke_width(ink.labels > 0):  # dashes: strokes lying flat, cut into slivers read as 1s
        return [], line
    # a number has few pieces for its length: a few per digit-sized stretch of the line (a long strip has many)
    room = max(MAX_PIECES, math.ceil(PIECES_PER_LINE * ink.intensity.shape[1] / line))
    return [{label} for label in labels[:room]], line


def _line_height(ink: Ink, labels: list[int]) -> float:
    """The height of a digit in the line, in working pixels, from its components (`labels`, largest first): the
    STACK_LIMIT largest are joined into stacks, two joining where they share STACKED of the narrower one's columns and
    stand at most STACK_GAP times the shorter one's height apart, one above the other (the arcs of a digit written
    with a pen that skips); the line is the height of the stack of most ink, or the upper quartile of the heights of
    stacks holding a fifth as much ink or more, if taller. Measured on single components, such a digit made a line
    as tall as its largest arc, and its arcs were read as digits."""
    labels = np.asarray(labels[:STACK_LIMIT])
    boxes = np.array([[box[0].start, box[1].start, box[0].stop, box[1].stop]
                      for box in (ink.boxes[label - 1] for label in labels)]).reshape(-1, 4)
    top, left, bottom, right = boxes.T
    shared = np.minimum(right[:, None], right[None]) - np.maximum(left[:, None], left[None])
    apart = np.maximum(top[:, None], top[None]) - np.minimum(bottom[:, None], bottom[None])
    height = bottom - top
    joined = ((shared >= STACKED * np.minimum.outer(right - left, right - left))
              & (apart <= STACK_GAP * np.minimum.outer(height, height)))
    stack = _joined_groups(joined)
    index = np.arange(stack.max() + 1)
    inked = np.bincount(stack, ink.areas[labels], index.size)
    heights = np.asarray(ndimage.maximum(bottom, stack, index)) - np.asarray(ndimage.minimum(top, stack, index))
    return float(max(heights[inked.argmax()], np.percentile(heights[inked >= 0.2 * inked.max()], 75)))


def _joined_groups(joined: np.ndarray) -> np.ndarray:
    """The connected groups of a symmetric boolean (N, N) matrix of pairs: each item's group, numbered 0.. in the
    order of each group's first item (union-find; scipy.sparse.csgraph would add its import to every reading)."""
    parent = np.arange(len(joined))

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for first, second in zip(*np.nonzero(np.triu(joined, 1))):
        first, second = root(first), root(second)
        parent[max(first, second)] = min(first, second)
    return np.unique([root(item) for item in range(len(parent))], return_inverse=True)[1].reshape(-1)


def _merge(groups: list[set[int]], boxes, needed: Callable[[tuple, tuple], float]) -> list[set[int]]:
    """Merge groups whose column overlap reaches `needed(span, span)`, until none does."""
    while True:
        spans = np.array([span_of(group, boxes) for group in groups]).reshape(-1, 4)
        shared = np.minimum(spans[:, None, 3], spans[None, :, 3]) > np.maximum(spans[:, None, 1], spans[None, :, 1])
        for first, second in zip(*np.nonzero(np.triu(shared, 1))):  # only groups sharing columns can merge
            if _overlap(spans[first], spans[second]) >= needed(spans[first], spans[second]):
                groups[first] |= groups.pop(second)
                break
        else:
            return groups


def _groups(ink: Ink) -> tuple[list[set[int]], float]:
    """Components -> one set of labels per digit (touching digits not yet split), and the line height."""
    boxes = ink.boxes
    groups, line = _pieces(ink)

    def needed(first, second):  # pieces stacked in one column are one digit: halves of an 8, a 4 in two strokes
        full = first[2] - first[0] >= 0.6 * line, second[2] - second[0] >= 0.6 * line
        return 0.7 if all(full) else 0.5 if not any(full) else 2.0

    groups = _merge(groups, boxes, needed)
    spans = [span_of(group, boxes) for group in groups]
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
        if distance.flat[closest] <= 0.25 * line or _overlap(span, span_of(seeds[index - 1], boxes)) > 0:
            seeds[index - 1] |= group
        elif span[2] - span[0] >= 0.35 * line:
            seeds.append(group)
    return seeds, line


def curved_cuts(intensity: np.ndarray, columns, reach: int, bend: float = BEND,
                limits: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest cut from the top of (H, W) ink `intensity` to its bottom near each of `columns`: (K, H), per
    row, the column where the cut's right side starts (at most `reach` from its own column, and within `limits`,
    both inclusive, if given), and (K,) their costs.

    A cut costs the ink it separates: each pair of neighbouring pixels it puts on opposite sides costs their
    mean intensity (a stroke's core costs most, the gap between two digits nothing), plus `bend` per column it
    moves sideways from its own column down. Seam carving's dynamic programme, one row at a time, in a band
    around each column; a cut moves at most one column a row.
    """
    height, width = intensity.shape
    padded = np.pad(intensity.astype(np.float32), ((0, 0), (1, 1)))
    across = (padded[:, :-1] + padded[:, 1:]) / 2  # (H, W + 1): a cut at x separates columns x - 1 and x
    down = (padded[:-1, 1:] + padded[1:, 1:]) / 2  # (H - 1, W + 1): moving past column x separates two rows
    offsets = np.arange(-reach, reach + 1)
    positions = np.asarray(columns, int)[:, None] + offsets  # (K, 2 reach + 1)
    low, high = limits or (0, width)
    place = positions.clip(max(low, 0), min(high, width))
    here = across[:, place] + np.where((positions >= max(low, 0)) & (positions <= min(high, width)), 0, np.inf)
    from_left, from_right = down[:, place[:, 1:] - 1] + bend, down[:, place[:, :-1]] + bend  # (H - 1, K, 2 reach)
    total = here[0] + bend * np.abs(offsets)
    moves = np.zeros((height, *place.shape), np.int8)  # how each row was reached: 0 straight down, 1 from the
    options = np.full((3, *place.shape), np.inf, np.float32)  # left, 2 from the right
    for row in range(1, height):
        options[0] = total
        options[1, :, 1:] = total[:, :-1] + from_left[row - 1]
        options[2, :, :-1] = total[:, 1:] + from_right[row - 1]
        moves[row] = options.argmin(0)
        total = options.min(0) + here[row]
    step, cuts = total.argmin(1), np.arange(len(place))
    costs, paths = total[cuts, step], np.empty((len(place), height), int)
    for row in range(height - 1, -1, -1):
        paths[:, row] = place[cuts, step]
        step = step - (moves[row, cuts, step] == 1) + (moves[row, cuts, step] == 2)
    return paths, costs


def _crossed(core: np.ndarray, path: np.ndarray, thickness: float) -> float:
    """Strokes of a boolean core that a cut (a path of `curved_cuts`) crosses: the pieces of core it separates
    from core on its other side (at least 1; a straight cut counts the runs of such pixels in its column), or, if
    more, the pixels it separates over the strokes' `thickness`: a cut running along a stroke (shaving the side
    off a 0 or a 6) costs as many strokes as it runs thicknesses."""
    height, width = core.shape
    rows, marked = np.arange(height), np.zeros_like(core)
    inner = (path >= 1) & (path < width)
    rows, cuts = rows[inner], path[inner]
    severed = core[rows, cuts - 1] & core[rows, cuts]
    marked[rows[severed], cuts[severed] - 1] = True
    for row in np.flatnonzero(path[1:] != path[:-1]) + 1:  # the cut moved a column between row - 1 and row
        column = min(path[row - 1], path[row])
        if column < width and core[row - 1, column] and core[row, column]:
            marked[row if path[row] > path[row - 1] else row - 1, column] = True
    return max(1.0, float(ndimage.label(marked, np.ones((3, 3), bool))[1]), marked.sum() / thickness)


def _holes(core: np.ndarray, line: float) -> np.ndarray:
    """The holes of a boolean core (background it encloses: the loop of a 0, 6, 8 or 9), labelled 1, 2, ...;
    holes under HOLE_SIZE lines across (a blot's pinhole, two strokes meeting) are left out (0)."""
    holes = ndimage.binary_fill_holes(core) & ~core
    labels, count = ndimage.label(holes)
    large = np.bincount(labels.ravel(), minlength=count + 1) >= (HOLE_SIZE * line) ** 2
    large[0] = False
    return np.cumsum(large)[labels] * large[labels]


def _through(holes: np.ndarray, path: np.ndarray) -> int:
    """How many of the labelled `holes` (`_holes`) a cut (a path of `curved_cuts`) passes through."""
    inside = path < holes.shape[1]
    found = holes[np.flatnonzero(inside), path[inside]]
    return len(np.unique(found[found > 0]))


def _thickness(core: np.ndarray) -> float:
    """The mean width of the strokes of a boolean core: twice its area over its outline (a stroke L long and t
    wide has area L t and an outline about 2 L long)."""
    outline = core & ~ndimage.binary_erosion(core)
    return 2.0 * core.sum() / max(1, outline.sum())


def _side(piece, keep: np.ndarray):
    """The part of a cropped piece where `keep` (in its window) holds, cropped again; None if it has no pixels."""
    (rows, cols), mask = piece
    mask = mask & keep
    if not mask.any():
        return None
    top, left, bottom, right = bounds(mask)
    return ((slice(rows.start + top, rows.start + bottom), slice(cols.start + left, cols.start + right)),
            mask[top:bottom, left:right])


def _inked(piece, ink: Ink, line: float):
    """(core, left, right) of a cropped group: its ink cores (in its window) and the columns its ink spans; None
    without ink, or when it is far wider than any number (a long rule or a frame)."""
    window, mask = piece
    core = mask & (ink.intensity[window] >= 0.5)
    inked = np.flatnonzero(core.any(0))
    if not inked.size or inked[-1] + 1 - inked[0] > MAX_DIGITS * line:
        return None
    return core, int(inked[0]), int(inked[-1]) + 1


def _split(piece, ink: Ink, line: float) -> list[tuple]:
    """The digits in one cropped group, without a classifier: a group wider than WIDE lines is cut in two,
    straight down the column whose ink spans the fewest rows in the middle 60% of its ink, then each part again."""
    found = _inked(piece, ink, line)
    if found is None:
        return []
    core, left, right = found
    width = right - left
    if width <= WIDE * line:
        return [piece]
    middle = np.arange(left + int(0.2 * width), left + int(math.ceil(0.8 * width)))
    inked = core[:, middle]  # where two digits touch, the ink in a column spans the fewest rows
    extent = np.where(inked.any(0), len(core) - inked[::-1].argmax(0) - inked.argmax(0), 0)
    cut = int(middle[np.lexsort((np.abs(middle - left - width / 2), inked.sum(0), extent))[0]])
    right_side = np.arange(piece[1].shape[1]) >= cut
    return [part for side in (_side(piece, ~right_side), _side(piece, right_side)) if side is not None
            for part in _split(side, ink, line)]


def _slices(piece, ink: Ink, line: float) -> list[tuple[tuple, float]]:
    """One cropped group cut into more slices than it holds digits, left to right, each with the price (in
    strokes) of the cut on its left (0 for the first), for `_recognise` to join back into digits.

    A group at most OVERCUT lines wide is one slice. A wider one is cut near every STEP lines of its ink, at
    least EDGE lines in from its ends (a sliver off the edge reads as a confident "1"): along the cheapest
    curved cut there (`curved_cuts`: it follows the gap where two digits merely touch) and, in a group wider
    than SEVERAL lines (several digits, not one wide one), also straight down (where digits overlap there is no
    gap; a curved cut would rather run through the loop of a 0 beside them than along their shared stroke).
    Slices never overlap: curved cuts are ordered by their mean column, each kept right of the one before it,
    and a straight cut is kept only if it crosses no curved one (pushed into line, a curved cut would be bent
    straight). A cut is priced by the strokes it crosses (`_crossed`) plus HOLE_COST for each hole it runs
    through (a cut through a 0 leaves two arcs that read as a sure "1" and "7"; touching digits rarely enclose
    one).
    """
    found = _inked(piece, ink, line)
    if found is None:
        return []
    (window, mask), (core, left, right) = piece, found
    if right - left <= OVERCUT * line:
        return [(piece, 0.0)]
    low, high = left + round(EDGE * line), right - round(EDGE * line)
    columns = np.arange(low, high + 1, max(1, round(STEP * line)))
    paths = curved_cuts(np.where(mask, ink.intensity[window], 0), columns, max(1, round(BAND * line)),
                        limits=(low, high))[0]
    paths = np.unique(np.maximum.accumulate(paths[np.argsort(paths.mean(1))], axis=0), axis=0)
    if right - left > SEVERAL * line:  # the straight cuts that cross no curved one
        clear = [column for column in columns if ((paths.min(1) >= column) | (paths.max(1) <= column)).all()]
        paths = np.unique(np.concatenate([paths, np.repeat(np.reshape(clear, (-1, 1)), mask.shape[0], 1)]), axis=0)
    across, thickness, holes = np.arange(mask.shape[1]), _thickness(core), _holes(core, line)
    slices, price = [], 0.0
    for before, after in zip([None, *paths], [*paths, None]):
        keep = np.ones(mask.shape, bool)
        if before is not None:
            keep &= across >= before[:, None]
            price = max(price, _crossed(core, before, thickness) + HOLE_COST * _through(holes, before))
        if after is not None:
            keep &= across < after[:, None]
        if (core & keep).any():  # two cuts may leave only faint edges between them: the next slice pays
            slices.append((_side(piece, keep), price))
            price = 0.0
    return slices


def _log_odds(chance: float) -> float:
    """log(p / (1 - p)), p kept within 1e-9 of 0 and 1."""
    chance = min(max(float(chance), 1e-9), 1 - 1e-9)
    return math.log(chance / (1 - chance))


def _reading(confidence: float, box: tuple[int, int, int, int], line: float) -> float:
    """How well a piece in `box` reads as a digit: READ_WEIGHT times the classifier's log-odds for its answer (up
    to SURE: calibrated probabilities stop near 0.9994), less a price if much shorter than the line (a piece of
    a digit, the loop of a 9 say, may still read confidently) and if its larger side is well under it."""
    odds = READ_WEIGHT * min(SURE, _log_odds(confidence))
    height, width = (box[2] - box[0]) / line, (box[3] - box[1]) / line
    short = 1.0 + 6.0 * (0.5 - height) if height < 0.5 else 0.0
    return odds - short - SIZE_COST * max(0.0, SIZE_OK - max(height, width))


def _crop(mask: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray]:
    """A piece kept as its window in the picture and its pixels there (a long strip has hundreds of pieces)."""
    top, left, bottom, right = bounds(mask)
    window = (slice(top, bottom), slice(left, right))
    return window, mask[window].copy()  # a copy: a view would keep the whole picture's mask alive


def _whole(piece, shape: tuple[int, int]) -> np.ndarray:
    """A cropped piece's mask over the whole picture."""
    window, mask = piece
    whole = np.zeros(shape, bool)
    whole[window] = mask
    return whole


def _core(piece, core: np.ndarray) -> np.ndarray:
    """A cropped piece's ink cores, in its window."""
    window, mask = piece
    return mask & core[window]


def _span(piece, core: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a cropped piece's ink cores, in the picture."""
    (rows, cols), _ = piece
    top, left, bottom, right = bounds(_core(piece, core))
    return top + rows.start, left + cols.start, bottom + rows.start, right + cols.start


def _recognise(ink: Ink, predict_proba, predict_scores=None, sequence=None, threshold: float | None = None,
               soft_above: float | None = None) -> tuple[list[Prepared], np.ndarray, np.ndarray | None]:
    """Cut the ink into more pieces than digits, then choose how consecutive pieces join into digits so
    that the reading scores best (dynamic programming over the pieces, left to right). Groups wider than
    OVERCUT lines (a 1 touching its neighbour makes a group under one line wide) are cut into slices at
    many candidate cuts (`_slices`); the programme, not a cut chosen first, settles which cuts are kept.

    A reading's score adds, per digit, READ_WEIGHT times the classifier's log-odds for its answer: a
    sure digit earns about 1.9, a doubtful one (under 0.5) costs. Log-odds, not log-confidence: two
    touching 9s read as one 9 at 0.99 (log-confidence -0.01) would beat two 9s read at 0.999 each
    once their cut is paid for; their log-odds tell the two apart (4.6 against 6.9). Then it takes
    off, per cut through connected ink, CUT_BASE plus CUT_COST per stroke it crosses (`_slices`: a cut
    along a stroke or through a loop counts more), a price for joining pieces that stand apart (none
    when one sits above the other, as the bar of a 5; more the wider the gap), and a price for a digit
    whose size does not fit the line: wider than WIDTH_OK lines (two touching digits read as one) or
    with its larger side under SIZE_OK lines (a stem cut off a 7, read as a 1). A sure "1" beside a
    cut pays ONE_CUT more: the stem of a 6 or an arc of a 0 cut off reads as one at 0.99 (a real 1
    touching its neighbour may read doubtfully and is not made to pay).

    The weights were tuned on rendered strips of MNIST training digits (benchmarks/real_images.py's
    renderer, 300 strips whose neighbours all touch and 300 mixed ones, seeds [7000, 3 | 1, index];
    checked on seeds [7001, ...]): the classifier's answers for every candidate were recorded once and
    the programme rerun over a grid of weights (READ_WEIGHT 0.2, 0.25; CUT_BASE 0 to 0.6; CUT_COST 0.6 to
    0.9; WIDTH_COST 3, 4; then ONE_CUT 0 to 1 and ONE_SURE 0 to 0.99 with 400 more mixed strips, seeds
    [7002, 1, index]: 0.6 and 0 to 0.7 read alike, mixed strips 95.5% -> 95.9% of 1,000), keeping
    the best touching rate with mixed strips read at least as well as before. A cut's
    fixed price CUT_BASE is what keeps a wide 0 or 6 whole once every cut through it is a candidate.

    With `predict_scores` ((N, 28, 28) -> (probabilities, digit scores)) each candidate also earns
    DIGIT_WEIGHT times the log-odds that it is a digit at all, up to DIGIT_CAP: the stem of a 6 or half a 0
    cut off reads as a sure "1" but not as surely a digit. Chosen on the same rendered training strips, the
    classifier's answers and digit scores recorded once (scripts/seg_eval.py cache), the shipped model of
    2026-12-03 (energy digit scores): weight 0.05 to 0.2 by 0.05, cap 2, 3, 4, 6, 8; 0.1 and 4 read touching
    strips of seed 7000 whole 89.7% (87.3% without), checked on seed 7001: 88.0% (86.3%); mixed strips of
    both seeds read exactly as without (96.0%, 96.7%). Refitted for the model shipped on 2026-12-05
    (`scripts/seg_eval.py tune`, these four weights over a grid, seeds 7000/7100 to choose, 7001/7101 to
    check): the best setting read touching strips 0.5 point better on both, under the 1 point asked, so the
    weights stayed. Digit scores (N,) come back for the chosen digits (None without `predict_scores`).

    With `sequence` (a `digits.sequence.SequenceReader`: ink -> a sequences.Reading), a reading of two digits or
    more may give way to another the sequence model finds likelier (`_settled`); `threshold` is the not-a-digit
    threshold on the digit scores (or on the top probabilities without them). `soft_above`: the model's (its
    `Predictor.soft_above`): a candidate whose ink is blurred by more than this is taken as it is (`images.to_mnist`).
    """
    lattice = _lattice(ink, predict_proba, predict_scores=predict_scores, soft_above=soft_above)
    if lattice is None:
        return [], np.zeros((0, 0), np.float32), None if predict_scores is None else np.zeros(0, np.float32)
    scores = _hand_scores(lattice)
    chosen = _choose(lattice, scores)
    if sequence is not None and len(chosen) >= 2:
        chosen = _settled(lattice, scores, chosen, ink, sequence, threshold)
    rows = {key: index for index, key in enumerate(lattice["keys"])}
    row = [rows[key] for key in chosen]
    scores, owners = lattice.get("digit_scores"), lattice["owners"]
    shapes = {owner: index for index, owner in enumerate(dict.fromkeys(owners[first] for first, _ in chosen))}
    digits = [dataclasses.replace(lattice["candidates"][key], shape=shapes[owners[key[0]]]) for key in chosen]
    return digits, lattice["probabilities"][row], None if scores is None else scores[row]


def _lattice(ink: Ink, predict_proba, keep_masks: bool = False, predict_scores=None,
             soft_above: float | None = None) -> dict | None:
    """The pieces of `_recognise` and every candidate digit (first, last) its programme weighs: the candidates
    (Prepared), their boxes, the classifier's answers (and digit scores, read by `predict_scores` instead of
    `predict_proba` where given), and the cut and join prices their scores take; None when there is nothing to
    read. `keep_masks` also keeps each candidate's pixels (for scripts/seg_eval.py)."""
    groups, line = _pieces(ink)
    groups = _merge(groups, ink.boxes, lambda first, second: 0.8)
    core = ink.intensity >= 0.5

    pieces, owners, crossed = [], [], []
    for index, group in enumerate(groups):
        for piece, strokes in _slices(_crop(ink_mask(ink, group)), ink, line):
            pieces.append(piece)
            owners.append(index)
            crossed.append(strokes)
    if not pieces:
        return None
    spans = [_span(piece, core) for piece in pieces]
    order = np.argsort([(span[1] + span[3]) / 2 for span in spans])
    pieces, owners, spans, crossed = ([items[i] for i in order] for items in (pieces, owners, spans, crossed))

    # boundary k lies before piece k: the price of cutting there (the strokes its cut crossed), and of joining
    cut = [0.0] + [CUT_BASE + CUT_COST * max(1.0, crossed[k]) if owners[k - 1] == owners[k] else 0.0
                   for k in range(1, len(pieces))] + [0.0]
    short = [span[2] - span[0] < 0.6 * line for span in spans]
    join_cost = [0.0] + [0.0 if cut[k] or (_overlap(spans[k - 1], spans[k]) >= 0.3 and (short[k - 1] or short[k]))
                         else 0.3 + 3.0 * max(0, spans[k][1] - spans[k - 1][3]) / line for k in range(1, len(pieces))]
    candidates, masks = {}, {}
    for first in range(len(pieces)):
        union = np.zeros_like(core)
        for last in range(first, min(first + MAX_JOIN, len(pieces))):
            union[pieces[last][0]] |= pieces[last][1]
            top, left, bottom, right = bounds(union & core)
            if right - left > 1.6 * line or len(set(owners[first:last + 1])) > MAX_SHAPES:
                break
            # unmasked: see images.SHARPEN_AMOUNT; a soft candidate as it is, as a single digit (images.to_mnist)
            candidates[first, last + 1] = cut_digit(ink, union, unsharp=False, soft_above=soft_above)
            if keep_masks:
                masks[first, last + 1] = union.copy()
    keys = list(candidates)
    if not keys:  # every piece is far wider than a digit: a rule or a frame, no number
        return None
    pictures, digit_scores = np.stack([candidates[key].image for key in keys]), None
    if predict_scores is None:
        probabilities = np.asarray(predict_proba(pictures))
    else:
        probabilities, digit_scores = (np.asarray(values) for values in predict_scores(pictures))
    largest = ink.areas[1:].max()
    small = [_core(piece, core).sum() < 0.15 * largest and short[k] for k, piece in enumerate(pieces)]
    lattice = {"count": len(pieces), "owners": owners, "cut": cut, "join_cost": join_cost, "small": small, "keys": keys,
               "candidates": candidates, "probabilities": probabilities,
               "line": line * ink.factor, "boxes": {key: candidates[key].box for key in keys},
               "digit_scores": digit_scores}
    if keep_masks:
        lattice["masks"] = [masks[key] for key in keys]
    return lattice


def _hand_scores(lattice: dict) -> dict:
    """Each candidate's score, hand-weighted (see `_recognise`)."""
    cut, join_cost, line, scores = lattice["cut"], lattice["join_cost"], lattice["line"], {}
    digit_scores = lattice.get("digit_scores")
    for row, (key, probability) in enumerate(zip(lattice["keys"], lattice["probabilities"])):
        first, stop = key
        box = lattice["boxes"][key]
        scores[key] = (-sum(join_cost[first + 1:stop]) - cut[first] + _reading(probability.max(), box, line)
                       - WIDTH_COST * max(0.0, (box[3] - box[1]) / line - WIDTH_OK))
        if probability.argmax() == 1 and probability.max() >= ONE_SURE and (cut[first] or cut[stop]):
            scores[key] -= ONE_CUT  # a sure "1" beside a cut: a stroke cut off a 0, 4 or 6 reads as one
        if digit_scores is not None:  # how surely it is a digit at all
            scores[key] += DIGIT_WEIGHT * min(DIGIT_CAP, _log_odds(digit_scores[row]))
    return scores


def _choose(lattice: dict, scores: dict) -> list[tuple[int, int]]:
    """The candidates (first, last) that read best together: dynamic programming over the pieces, left to
    right; a speck may be left out at a price, and a piece no candidate holds is left out."""
    count, small = lattice["count"], lattice["small"]
    best, back = [0.0] + [-math.inf] * count, [None] * (count + 1)
    for stop in range(1, count + 1):
        for start in range(max(0, stop - MAX_JOIN), stop):
            if (start, stop) in scores and best[start] + scores[start, stop] > best[stop]:
                best[stop], back[stop] = best[start] + scores[start, stop], (start, True)
        if small[stop - 1] and best[stop - 1] - 0.5 > best[stop]:  # a speck may be left out, at a price
            best[stop], back[stop] = best[stop - 1] - 0.5, (stop - 1, False)
        if back[stop] is None:  # a piece no reading can hold (far wider than a digit) is left out
            best[stop], back[stop] = best[stop - 1] - 5.0, (stop - 1, False)
    chosen, stop = [], count
    while stop > 0:
        start, kept = back[stop]
        if kept:
            chosen.append((start, stop))
        stop = start
    return chosen[::-1]


def _answers(lattice: dict) -> dict[tuple[int, int], str]:
    """Each candidate's digit as the classifier reads it (its top class), as text."""
    return {key: str(int(row.argmax())) for key, row in zip(lattice["keys"], lattice["probabilities"])}


def _best_cuts(lattice: dict, scores: dict, text: str | None = None,
               length: int | None = None) -> tuple[float, list[tuple[int, int]]] | None:
    """(total score, candidates) of the best-scoring cuts (as `_choose`) whose classifier answers spell `text`, left
    to right, or (without `text`) that hold `length` digits; None when no cuts of the lattice do. A speck may be left
    out at the same price, and a piece that no candidate holds at all; no other piece is left out (a digit cannot be
    dropped to fit a shorter text)."""
    count, small = lattice["count"], lattice["small"]
    length = len(text) if text is not None else length
    answers = _answers(lattice)
    held = {stop for _, stop in scores}
    best = np.full((count + 1, length + 1), -math.inf)
    best[0, 0] = 0.0
    back: dict = {}
    for stop in range(1, count + 1):
        for start in range(max(0, stop - MAX_JOIN), stop):
            if (start, stop) not in scores:
                continue
            for read in range(length):
                total = best[start, read] + scores[start, stop]
                if (text is None or answers[start, stop] == text[read]) and total > best[stop, read + 1]:
                    best[stop, read + 1], back[stop, read + 1] = total, (start, read, True)
        for read in range(length + 1):
            skip = -0.5 if small[stop - 1] else -5.0 if stop not in held else None
            if skip is not None and best[stop - 1, read] + skip > best[stop, read]:
                best[stop, read], back[stop, read] = best[stop - 1, read] + skip, (stop - 1, read, False)
    if best[count, length] == -math.inf:
        return None
    chosen, state = [], (count, length)
    while state[0] > 0:
        start, read, kept = back[state]
        if kept:
            chosen.append((start, state[0]))
        state = (start, read)
    return float(best[count, length]), chosen[::-1]


def _choose_text(lattice: dict, scores: dict, text: str) -> list[tuple[int, int]] | None:
    """The best-scoring candidates whose classifier answers spell `text` (`_best_cuts`); None when none do."""
    found = _best_cuts(lattice, scores, text)
    return None if found is None else found[1]


@dataclasses.dataclass(frozen=True)
class Rival:
    """One reading `_settled` weighs: its text (the classifier's answers), cuts, lattice score (`_best_cuts`), the
    log of the sequence model's chance for the text, whether a digit of it is refused as not a digit, and where it
    came from ("lattice": the lattice's own reading; "sequence": the sequence model's text; "fewer"/"more": the
    lattice's best cuts with one digit fewer or more)."""

    text: str
    cuts: list
    score: float
    likelihood: float
    refused: bool
    source: str

    def weighed(self) -> float:
        """The lattice score plus sequences.WEIGHT times the log-likelihood, and MARGIN for the lattice's own."""
        return (self.score + sequences.WEIGHT * self.likelihood
                + (sequences.MARGIN if self.source == "lattice" else 0.0))


def _refused(lattice: dict, keys: list[tuple[int, int]], threshold: float | None) -> bool:
    """Whether a digit of the candidates `keys` is refused as not a digit: its digit score (the top probability
    without digit scores) under `threshold`."""
    rows, digit_scores = {key: row for row, key in enumerate(lattice["keys"])}, lattice.get("digit_scores")
    return any(calibration.refused(float(digit_scores[rows[key]] if digit_scores is not None
                                         else lattice["probabilities"][rows[key]].max()), threshold) for key in keys)


def _rivals(lattice: dict, scores: dict, chosen: list[tuple[int, int]], found, threshold: float | None) -> list[Rival]:
    """The readings `_settled` weighs (`Rival`), the lattice's own first, each text once, none of fewer than two
    digits: the lattice's; the sequence model's text (`found`, a sequences.Reading), read with the best cuts that
    spell it; the lattice's best cuts of one digit fewer and one more (a touching pair read as one, or one digit
    cut in two, that the sequence model's likelihood may tell)."""
    answers = _answers(lattice)
    own = "".join(answers[key] for key in chosen)
    options = [("lattice", _best_cuts(lattice, scores, own))]
    if len(found.text) >= 2:
        options.append(("sequence", _best_cuts(lattice, scores, found.text)))
    options += [(source, _best_cuts(lattice, scores, length=len(chosen) + change))
                for source, change in (("fewer", -1), ("more", 1)) if len(chosen) + change >= 2]
    rivals: dict[str, Rival] = {}
    for source, cuts in options:
        if cuts is None:
            continue
        text = own if source == "lattice" else "".join(answers[key] for key in cuts[1])
        if text not in rivals:
            keys = chosen if source == "lattice" else cuts[1]  # the lattice's own cuts, as _choose found them
            rivals[text] = Rival(text, keys, cuts[0], found.likelihood(text), _refused(lattice, keys, threshold),
                                 source)
    return list(rivals.values())


def _settled(lattice: dict, scores: dict, chosen: list[tuple[int, int]], ink: Ink, sequence,
             threshold: float | None) -> list[tuple[int, int]]:
    """The lattice's reading `chosen`, or a rival reading (`_rivals`) that weighs more (`Rival.weighed`: lattice
    score, the sequence model's log-likelihood, the lattice's own reading favoured by MARGIN); neither may hold a
    digit refused as not a digit (the sequence model has never seen a letter: it would read one in a number as some
    digit, and a reading that drops or merges the refused piece would hide it). See digits.sequence."""
    if lattice["probabilities"].shape[-1] != 10:  # the sequence model reads the ten digits
        return chosen
    if _refused(lattice, chosen, threshold):  # before the sequence model runs: a reading with a refused digit stands
        return chosen
    found = sequence(ink)
    if found is None:
        return chosen
    rivals = [rival for rival in _rivals(lattice, scores, chosen, found, threshold) if not rival.refused]
    return max(rivals, key=Rival.weighed).cuts if rivals else chosen


def read(gray: np.ndarray | None, predict_proba: Callable[[np.ndarray], np.ndarray], sequence=None,
         threshold: float | None = None, ink: Ink | None = None,
         soft_above: float | None = None) -> tuple[list[Prepared], np.ndarray]:
    """The digits in (H, W) gray 0..1, left to right, and the classifier's (D, classes) probabilities for
    them: segmentation and classification in one pass (the chosen digits are not classified again). With
    `sequence` (a `digits.sequence.SequenceReader`) the sequence model may settle the cuts (`_settled`), with
    `threshold` the not-a-digit threshold on the top probabilities. `ink`: gray's `images.analyse`, if taken
    already (reading leaves it as it is; gray is then not needed). `soft_above`: the model's, for its candidates
    (`_recognise`)."""
    ink = analyse(gray) if ink is None else ink
    if ink.labels is None:
        return [], np.zeros((0, 0), np.float32)
    return _recognise(ink, predict_proba, sequence=sequence, threshold=threshold, soft_above=soft_above)[:2]


def read_scored(gray: np.ndarray | None, predict_scores: Callable[[np.ndarray], tuple], sequence=None,
                threshold: float | None = None, ink: Ink | None = None, soft_above: float | None = None
                ) -> tuple[list[Prepared], np.ndarray, np.ndarray]:
    """`read` with a model that also gives digit scores (`predict_scores`: (N, 28, 28) -> ((N, classes)
    probabilities, (N,) chances of being a digit at all), e.g. `Predictor(run).predict_scores`), which help
    choose the cuts (`_recognise`): the chosen digits, their probabilities and their digit scores. `sequence`,
    `threshold` (on the digit scores), `ink` and `soft_above` as for `read`."""
    ink = analyse(gray) if ink is None else ink
    if ink.labels is None:
        return [], np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    return _recognise(ink, None, predict_scores, sequence, threshold, soft_above)


def segment(gray: np.ndarray, predict_proba: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Prepared]:
    """Every digit in (H, W) gray 0..1, left to right, each through the single-digit path; [] if no ink.

    Without `predict_proba` the split follows the shapes alone; with it, the classifier settles
    the doubtful joins and cuts (a loose bar of a 5, touching digits, a digit in two pieces).
    """
    if predict_proba is not None:
        return read(gray, predict_proba)[0]
    ink = analyse(gray)
    if ink.labels is None:
        return []
    groups, line = _groups(ink)
    pieces = [piece for group in groups for piece in _split(_crop(ink_mask(ink, group)), ink, line)]
    return [cut_digit(ink, _whole(piece, ink.intensity.shape), unsharp=False)
            for piece in sorted(pieces, key=lambda piece: piece[0][1].start)]
