"""Whole numbers under benchmarks/stress.py's conditions: strips of 2-6 digits read whole, per model (issue 14).

stress.py reads single digits; a far-off or out-of-focus photo of a number is read through its pieces
(`digits.multidigit`), which are prepared apart. Here each strip is written as benchmarks/real_images.py writes its
strips (2-6 digits side by side, a share of neighbours touching), then photographed under each of stress.py's
conditions, with stress.py's own parameters: fewer pixels (the digits 6 px tall), thicker and thinner strokes, pencil
on ruled paper, blur; and each digit slanted or rotated (one way for the whole strip, as one writer slants; a digit
rotated within its 28x28 square, so that it stands in the line) or cut 3-4 times. The photo's draws (digits,
spacing, size, lighting, JPEG) come from the seed and the strip's index, so a condition's photo differs from its
clean twin by the condition; the condition's own draws (filter, direction, cuts) from the seed, its name and the
index. Every model reads the same photos in
number mode, as `digits predict --mode number` does: a strip counts as read whole when the number comes back
exactly, a piece refused as not a digit counting against it. Loss: points of strips read whole lost against
`clean`. A model that reads soft pictures as they are (`Predictor.soft_above`) takes a piece as it is above its
soft_above plus `multidigit.SOFT_MARGIN`. With --also-sharp, each such model is read a second time with its pieces
prepared as every picture was before that (sharpened, strokes re-drawn): a side-by-side measure of what reading soft
pieces as they are does; with --piece-margins M ..., once more for each M, its pieces taken as they are above its
soft_above plus M (how SOFT_MARGIN was chosen).
With --split validation the digits are the validation split's (stress.py's), to choose without the test set.
--workers N reads in N processes side by side (default: one per core); every figure is the same with any N.
Writes benchmarks/results/stress_numbers.json (or --out).
Usage: python benchmarks/stress_numbers.py --run LABEL=PATH [--run ...] [--strips 500] [--seed 0]
       [--split test|validation] [--conditions lowres blur ...] [--also-sharp] [--piece-margins M ...]
       [--workers N]
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
import time
import zlib
from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_images  # noqa: E402
import stress  # noqa: E402
from common import save  # noqa: E402

CONDITIONS = tuple(stress.CONDITIONS)
SHARP = " (pieces sharpened)"  # the label of a model read again with its pieces prepared as before soft_above


def margin_label(label: str, margin: float) -> str:
    return f"{label} (pieces above +{margin:g})"


def render_strip(name: str, x: np.ndarray, y: np.ndarray, seed: int, index: int) -> tuple[str, bytes]:
    """Strip `index`: (its number, a photo of it under condition `name`), from the digits `x` (28x28) and labels."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}")
    parameters = stress.CONDITIONS[name]
    photo = np.random.default_rng([seed, index])  # the strip and its photo: the clean twin's draws
    own = np.random.default_rng([seed, zlib.crc32(name.encode()), index])
    chosen = photo.choice(len(x), int(photo.integers(2, 7)), replace=False)
    truth = "".join(str(int(label)) for label in y[chosen])
    digits = [real_images.as_ink(digit) for digit in x[chosen]]
    stroke_change = photo.uniform(*real_images.STROKE_CHANGE)
    if name in ("thick", "thin"):
        stroke_change = parameters["stroke_change"]
    elif name == "slant":
        shear = parameters["shear"] * own.choice((-1, 1))
        digits = [stress.slanted(digit, shear) for digit in digits]
    elif name == "rotation":
        angle = parameters["degrees"] * own.choice((-1, 1))
        digits = [np.clip(ndimage.rotate(digit, angle, reshape=False, order=1), 0, 1) for digit in digits]
    elif name == "broken":  # the pen widens the strokes by stroke_change, closing the gaps by as much (stress.py)
        width = max(parameters["gap_width"] + stroke_change, 0.5)
        digits = [stress.broken(digit, own, int(own.integers(parameters["gaps"][0], parameters["gaps"][1] + 1)),
                                width) for digit in digits]
    ink = real_images.strip_ink(digits, photo, stroke_change)  # gaps left open by the pen's width, as real_images
    options = {}
    if name == "lowres":
        resample = stress.FILTERS[parameters["filters"][int(own.integers(len(parameters["filters"])))]]
        options["low_resolution"] = (parameters["digit_height"], resample)
    elif name == "paper":
        options["surface"] = partial(stress.pencil_on_ruled_paper, **parameters)
    elif name == "blur":
        options["blur"] = parameters["sigma"]
    return truth, real_images.render(ink, photo, min_height=16.0, stroke_change=stroke_change, **options)


def readers(predictors: dict, also_sharp: bool, margins: tuple[float, ...] = ()) -> dict:
    """label -> model to read with; with `also_sharp`, a copy of each model with a soft_above that prepares every
    piece sharpened (number mode prepares nothing else, so the copy reads numbers exactly as before soft_above); for
    each of `margins`, a copy whose pieces are taken as they are above its soft_above plus that margin."""
    from digits import multidigit

    found = dict(predictors)
    for label, predictor in predictors.items():
        soft_above = getattr(predictor, "soft_above", None)
        if soft_above is None:
            continue
        for margin in margins:  # reading adds SOFT_MARGIN to the copy's soft_above
            found[margin_label(label, margin)] = copied = copy.copy(predictor)
            copied.soft_above = soft_above + margin - multidigit.SOFT_MARGIN
        if also_sharp:
            found[label + SHARP] = sharp = copy.copy(predictor)
            sharp.soft_above = None
    return found


CHUNK = 50  # strips of one condition per task (--workers): every model reads them in one worker


@functools.lru_cache(maxsize=2)
def _loaded(runs: tuple, also_sharp: bool, margins: tuple) -> dict:
    """label -> model to read with (`readers`), for (label, path) `runs`: loaded once per process."""
    from digits.predictor import Predictor

    return readers({label: Predictor(path) for label, path in runs}, also_sharp, margins)


@functools.lru_cache(maxsize=2)
def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The digits the strips are written with: the test set, or the validation split (stress.py's)."""
    return stress.digits_of(split, 10_000 if split == "test" else round(60_000 * stress.VALIDATION_SPLIT))


def _read(runs: tuple, also_sharp: bool, margins: tuple, split: str, seed: int, name: str, start: int,
          stop: int) -> dict:
    """Strips start..stop-1 under condition `name`, each read by every model: label -> [(read whole, right count)]."""
    from digits import reading

    models, (x, y) = _loaded(runs, also_sharp, margins), _digits(split)
    found = {label: [] for label in models}
    for index in range(start, stop):
        truth, photo = render_strip(name, x, y, seed, index)
        for label, model in models.items():
            number = reading.read(photo, "number", model)
            found[label].append((number.number == truth, len(number.digits) == len(truth)))
    return found


def measure(runs: dict, strips: int, seed: int, names: list[str], split: str = "test", also_sharp: bool = False,
            margins: tuple[float, ...] = (), workers: int = 1) -> dict:
    """Every model (label -> run directory or model file) on `strips` strips of the `split`'s digits under `clean`
    and each condition, read in `workers` processes (CHUNK strips of a condition a task; the figures do not depend
    on it)."""
    from digits import multidigit, synthetic

    from common import machine  # at call time: tests stand in for it

    started = time.perf_counter()
    runs, margins = tuple(runs.items()), tuple(margins)
    models = _loaded(runs, also_sharp, margins)
    names = ["clean", *[name for name in names if name != "clean"]]
    tasks = [(runs, also_sharp, margins, split, seed, name, start, min(start + CHUNK, strips))
             for name in names for start in range(0, strips, CHUNK)]
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(names) * strips, file=sys.stderr, unit="strip", mininterval=2.0)
    except ImportError:
        bar = None

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    read = synthetic._run(_read, tasks, [task[-1] - task[-2] for task in tasks], max(1, min(workers, len(tasks))),
                          progress)
    if bar is not None:
        bar.close()
    whole = {label: {name: [] for name in names} for label in models}
    counted = {label: {name: [] for name in names} for label in models}
    for task, found in zip(tasks, read):  # in order: each condition's chunks follow one another
        for label, answers in found.items():
            whole[label][task[5]] += [right for right, _ in answers]
            counted[label][task[5]] += [count for _, count in answers]
    conditions = {}
    for name in names:
        rates = {label: float(np.mean(whole[label][name])) for label in models}
        conditions[name] = {
            "parameters": stress.CONDITIONS[name], "read_whole": rates,
            "right_count": {label: float(np.mean(counted[label][name])) for label in models},
            "loss_points": {label: round(100 * (float(np.mean(whole[label]["clean"])) - rates[label]), 6)
                            for label in models},
            "strips": {label: "".join("1" if item else "0" for item in whole[label][name]) for label in models}}
    described = {}
    for label, model in models.items():
        info = getattr(model, "info", None)
        settings = info.config if info is not None else {}
        soft_above = getattr(model, "soft_above", None)
        described[label] = {"model": settings.get("model"), "recipe": stress.recipe_of(settings) if settings else None,
                            "soft_above": soft_above, "pieces_sharpened": label.endswith(SHARP),
                            "pieces_soft_above": multidigit.pieces_soft_above(soft_above)}
    return {"benchmark": "stress_numbers", "split": split, "strips": strips, "seed": seed, "models": described,
            "conditions": conditions, "seconds": time.perf_counter() - started, "workers": workers,
            "machine": machine()}


def table(summary: dict) -> list[str]:
    labels = list(summary["models"])
    lines = [f"{'condition':10} " + " ".join(f"{label[:30]:>30}" for label in labels)]
    for name, row in summary["conditions"].items():
        lines.append(f"{name:10} " + " ".join(f"{row['read_whole'][label]:>21.2%} {row['loss_points'][label]:>+7.2f} "
                                              for label in labels))
    return lines


def main() -> None:
    from digits.workers import cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=PATH",
                        help="a model to measure: a run directory or model file, under a label (repeat)")
    parser.add_argument("--strips", type=int, default=500, help="strips per condition (default: 500)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="whose digits: the test set, or the validation split (use another --seed; default: test)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS),
                        help="a subset (clean is always added; default: all)")
    parser.add_argument("--also-sharp", action="store_true",
                        help="also read with each model's pieces sharpened, as before soft_above")
    parser.add_argument("--piece-margins", nargs="+", type=float, default=[], metavar="M",
                        help="also read with each soft model's pieces taken as they are above its soft_above plus M")
    parser.add_argument("--workers", type=int, default=cores(),
                        help="processes reading strips side by side (default: one per core; the figures do not "
                             "depend on it)")
    parser.add_argument("--out", help="where to write the JSON (default: benchmarks/results/stress_numbers.json)")
    args = parser.parse_args()

    try:
        runs = stress.parse_runs(args.run)
        if not runs:
            raise ValueError("name the models to measure: python benchmarks/stress_numbers.py --run reader=MODEL")
        if args.strips < 1:
            raise ValueError(f"--strips {args.strips} reads nothing; pick 1 or more")
        if args.workers < 1:
            raise ValueError(f"--workers {args.workers} reads nothing; pick 1 or more")
        _loaded(tuple(runs.items()), args.also_sharp, tuple(args.piece_margins))  # before the long part
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    summary = measure(runs, args.strips, args.seed, args.conditions, args.split, args.also_sharp,
                      tuple(args.piece_margins), args.workers)
    path = save("stress_numbers", summary, args.out)
    print("\n".join(table(summary)))
    print(f"{args.strips} strips x {len(summary['conditions'])} conditions in {summary['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
