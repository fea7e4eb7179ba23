"""Whole numbers: a picture of several digits (a handwritten "2024", a house number, a meter) -> the
digits, left to right, each prepared exactly as `digits.images` prepares one digit.

    segment(gray, predict_proba=None) -> list[Prepared]: connected components, specks dropped,
        pieces stacked in one column (a broken 5) merged, over-wide ones cut where two digits
        touch; given a classifier, the doubtful joins and cuts are settled by how surely the
        classifier reads the result and by how well each digit's size fits the line.
    read(gray, predict_proba) -> (digits, probabilities): the same, classifier-guided, with the
        classifier's answer for each chosen digit (`predict_proba`: (N, 28, 28) -> (N, classes),
        e.g. `Predictor(run).predict_proba`). `digits.reading` turns them into a Reading.

Pictures with nothing as tall as a digit (a rule, specks, a dot grid) hold no number.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import ndimage

from .images import Ink, Prepared, analyse, bounds, cut_digit, ink_mask, span_of

DIGIT_BONUS, CUT_COST, OVERCUT = 0.7, 0.8, 0.9  # whole numbers: see _recognise
WIDTH_OK, WIDTH_COST = 1.0, 4.0  # a digit's width rarely passes the line height (MNIST: larger side 20 px)
SIZE_OK, SIZE_COST = 0.85, 6.0  # nor is its larger side much under it (a stray stroke, a cut-off stem)
WIDE = 1.3  # a digit group wider than this times the line height holds touching digits
MIN_HEIGHT = 4  # working pixels: ink no taller than this (a rule, specks, dots) holds no number
MAX_DIGITS = 40  # a group is cut into at most this many digits (a long rule is not 400 ones)
MAX_PIECES, PIECES_PER_LINE = 60, 3  # the pieces read: the largest 60, or 3 per line height of the picture's
# width if more (a strip of 200 digits has 200 pieces; a page of specks is not read speck by speck)


def _overlap(first, second) -> float:
    """Shared columns of two spans (top, left, bottom, right), as a fraction of the narrower one."""
    shared = min(first[3], second[3]) - max(first[1], second[1])
    return shared / max(1, min(first[3] - first[1], second[3] - second[1]))


def _pieces(ink: Ink) -> tuple[list[set[int]], float]:
    """The components worth reading (specks dropped), one set each, and the line height (digit height)."""
    areas, boxes = ink.areas, ink.boxes
    largest = areas[1:].max()
    labels = sorted((label for label in range(1, areas.size) if areas[label] >= 0.02 * largest),
                    key=lambda label: -areas[label])
    heights = {label: boxes[label - 1][0].stop - boxes[label - 1][0].start for label in labels}
    # the largest piece is a whole digit (or several touching), however many broken ones there are
    line = float(max(heights[labels[0]], np.percentile([heights[label] for label in labels
                                                        if areas[label] >= 0.2 * largest], 75)))
    if line < MIN_HEIGHT:  # rules, specks and dots: nothing as tall as a digit
        return [], line
    # a number has few pieces for its length: a few per digit-sized stretch of the line (a long strip has many)
    room = max(MAX_PIECES, math.ceil(PIECES_PER_LINE * ink.intensity.shape[1] / line))
    return [{label} for label in labels[:room]], line


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


def _crop(mask: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray]:
    """A piece kept as its window in the picture and its pixels there (a long strip has hundreds of pieces)."""
    top, left, bottom, right = bounds(mask)
    window = (slice(top, bottom), slice(left, right))
    return window, mask[window].copy()  # a copy: a view would keep the whole picture's mask alive


def _core(piece, core: np.ndarray) -> np.ndarray:
    """A cropped piece's ink cores, in its window."""
    window, mask = piece
    return mask & core[window]


def _span(piece, core: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a cropped piece's ink cores, in the picture."""
    (rows, cols), _ = piece
    top, left, bottom, right = bounds(_core(piece, core))
    return top + rows.start, left + cols.start, bottom + rows.start, right + cols.start


def _recognise(ink: Ink, predict_proba) -> tuple[list[Prepared], np.ndarray]:
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
        _, left, _, right = span_of(group, ink.boxes)
        inside = np.isin(ink.labels, list(group))

        def choose(start, stop, columns):  # the cut whose two sides read best as digits, less its price
            sides = [ink_mask(ink, group, side) for cut in columns for side in ((start, cut), (cut, stop))]
            inked = [bool((side & core).any()) for side in sides]  # a cut may leave only faint edges on a side
            halves = [cut_digit(ink, side) for side, has_ink in zip(sides, inked) if has_ink]
            sure = iter(np.asarray(predict_proba(np.stack([half.image for half in halves]))).max(1)) if halves else None
            read, kept = [], iter(halves)
            for has_ink in inked:
                half = next(kept) if has_ink else None
                read.append(_reading(next(sure), half.box[2] - half.box[0], line * ink.factor) if has_ink else -50.0)
            crossed = [CUT_COST * _strokes(inside[:, cut]) for cut in columns]  # as the DP below prices it
            return int(columns[np.argmax(np.add(read[0::2], read[1::2]) - crossed)])

        for columns in _split(inside, left, right, line, OVERCUT, choose):
            piece = ink_mask(ink, group, columns)
            if (piece & core).any():
                pieces.append(_crop(piece))
                owners.append(index)
    if not pieces:
        return [], np.zeros((0, 0), np.float32)
    spans = [_span(piece, core) for piece in pieces]
    order = np.argsort([(span[1] + span[3]) / 2 for span in spans])
    pieces, owners, spans = [pieces[i] for i in order], [owners[i] for i in order], [spans[i] for i in order]

    # boundary k lies before piece k: the price of cutting there, and of joining across it
    cut = [0.0] + [CUT_COST * _strokes(_core(pieces[k], core)[:, spans[k][1] - pieces[k][0][1].start])
                   if owners[k - 1] == owners[k] else 0.0
                   for k in range(1, len(pieces))]
    short = [span[2] - span[0] < 0.6 * line for span in spans]
    join_cost = [0.0] + [0.0 if cut[k] or (_overlap(spans[k - 1], spans[k]) >= 0.3 and (short[k - 1] or short[k]))
                         else 0.3 + 3.0 * max(0, spans[k][1] - spans[k - 1][3]) / line for k in range(1, len(pieces))]
    candidates, scores = {}, {}
    for first in range(len(pieces)):
        union = np.zeros_like(core)
        for last in range(first, min(first + 3, len(pieces))):
            union[pieces[last][0]] |= pieces[last][1]
            top, left, bottom, right = bounds(union & core)
            if right - left > 1.6 * line:
                break
            candidates[first, last + 1] = cut_digit(ink, union)
            scores[first, last + 1] = DIGIT_BONUS - sum(join_cost[first + 1:last + 1]) - cut[first]
    keys = list(candidates)
    if not keys:  # every piece is far wider than a digit: a rule or a frame, no number
        return [], np.zeros((0, 0), np.float32)
    probabilities = np.asarray(predict_proba(np.stack([candidates[key].image for key in keys])))
    read = dict(zip(keys, probabilities))
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
        small = _core(pieces[stop - 1], core).sum() < 0.15 * largest and short[stop - 1]
        if small and best[stop - 1] - 0.5 > best[stop]:  # a speck may be left out, at a price
            best[stop], back[stop] = best[stop - 1] - 0.5, (stop - 1, False)
        if back[stop] is None:  # a piece no reading can hold (far wider than a digit) is left out
            best[stop], back[stop] = best[stop - 1] - 5.0, (stop - 1, False)
    chosen, stop = [], len(pieces)
    while stop > 0:
        start, kept = back[stop]
        if kept:
            chosen.append((start, stop))
        stop = start
    chosen = chosen[::-1]
    return ([candidates[key] for key in chosen],
            np.stack([read[key] for key in chosen]) if chosen else np.zeros((0, probabilities.shape[1]), np.float32))


def read(gray: np.ndarray, predict_proba: Callable[[np.ndarray], np.ndarray]) -> tuple[list[Prepared], np.ndarray]:
    """The digits in (H, W) gray 0..1, left to right, and the classifier's (D, classes) probabilities for
    them: segmentation and classification in one pass (the chosen digits are not classified again)."""
    ink = analyse(gray)
    if ink.labels is None:
        return [], np.zeros((0, 0), np.float32)
    return _recognise(ink, predict_proba)


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
    pieces = []
    for group in groups:
        _, left, _, right = span_of(group, ink.boxes)
        inside = np.isin(ink.labels, list(group))
        pieces += [(columns, group) for columns in _split(inside, left, right, line)]
    return [cut_digit(ink, ink_mask(ink, group, columns)) for columns, group in sorted(pieces, key=lambda piece: piece[0])]
