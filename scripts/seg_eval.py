"""Touching-digit segmentation on strips of MNIST *training* digits: render strips exactly as
benchmarks/real_images.py does, read them with `multidigit`'s candidate lattice, and keep, for every
candidate (first, last) the dynamic programme weighs, its classifier answer, features and a label (does it
match one true digit?), so that scorers can be compared and fitted offline without reading again.

    python scripts/seg_eval.py cache --seed 7000 --kind touching --count 300 --out CACHE/7000t.npy
    python scripts/seg_eval.py read --seed 7000 --kind touching --count 300   # read end to end (reading.read)
    python scripts/seg_eval.py singles --seed 7200 --count 600   # wide single digits read as several
    python scripts/seg_eval.py diagnose --cache CACHE/7000t.npy  # why each misread strip was misread
    python scripts/seg_eval.py tune --cache CACHE --fit 7000t 7100t 7000m 7100m --check 7001t 7101t 7001m 7101m \
        --out benchmarks/results/seg_tune.json  # refit the lattice's weights on cached strips (see tune)

Strips: seeds [seed, 3, index] (touching=1.0) or [seed, 1, index] (mixed), digits drawn from the whole MNIST
training split (never the test set), as real_images._strips_read draws them from whatever array it is given.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_images  # noqa: E402

from digits import images, multidigit  # noqa: E402

KINDS = {"touching": (3, 1.0), "mixed": (1, None)}


def edge_ink(union: np.ndarray, core: np.ndarray, box: tuple[int, int, int, int], line: float) -> tuple:
    """(left, right): the candidate's ink cores that touch ink cores outside it on its left and right halves, in
    line heights (a digit cut from its touching neighbour touches it over a stroke's width; a stroke cut off a
    0 or 6 along its length touches over much more)."""
    top, left, bottom, right = box
    rows, cols = slice(max(0, top - 1), bottom + 1), slice(max(0, left - 1), right + 1)
    inside, ink = union[rows, cols] & core[rows, cols], core[rows, cols]
    outside = ndimage.binary_dilation(ink & ~union[rows, cols], np.ones((3, 3), bool)) & inside
    middle = (left + right) / 2 - cols.start
    across = np.arange(inside.shape[1])
    return (float(outside[:, across < middle].sum()) / line, float(outside[:, across >= middle].sum()) / line)


def render_strip(digits, rng, touching):
    """real_images.render_strip, byte for byte, also giving a function (rows, cols) of the photo -> the true
    digit (0..D-1) nearest that point of the strip's ink."""
    scaled = [np.asarray(digit, np.float32) / (255.0 if digit.dtype == np.uint8 else 1.0) for digit in digits]
    stroke_change = rng.uniform(*real_images.STROKE_CHANGE)
    layers = real_images.strip_layers(scaled, rng, stroke_change, touching)
    ink = layers.max(0)
    placement = {}
    photo = real_images.render(ink, rng, min_height=16.0, stroke_change=stroke_change, placement=placement)
    canvas, size = placement["canvas"], placement["size"]
    inked = ink > 0.1
    _, (near_r, near_c) = ndimage.distance_transform_edt(~inked, return_indices=True)
    owner = layers.argmax(0)[near_r, near_c]

    def truth(photo_rows, photo_cols):
        y = np.asarray(photo_rows, float) * canvas[0] / size[1] - placement["top"] + placement["first_row"]
        x = np.asarray(photo_cols, float) * canvas[1] / size[0] - placement["left"] + placement["first_col"]
        y = np.clip(np.floor(y).astype(int), 0, ink.shape[0] - 1)
        x = np.clip(np.floor(x).astype(int), 0, ink.shape[1] - 1)
        return owner[y, x]
    return photo, truth


def strips(x, y, seed, kind, count):
    """(index, photo, truth string, truth function) for `count` strips, as real_images._strips_read draws them."""
    tag, touching = KINDS[kind]
    for index in range(count):
        rng = np.random.default_rng([seed, tag, index])
        chosen = rng.choice(len(x), int(rng.integers(2, 7)), replace=False)
        text = "".join(str(int(label)) for label in y[chosen])
        photo, truth = render_strip(list(x[chosen]), rng, touching)
        yield index, photo, text, truth


def load_train():
    from digits import data
    dataset = data.load_dataset("mnist", allow_download=False)
    return dataset.x_train, dataset.y_train


def cache(args):
    from digits.predictor import Predictor
    predictor = Predictor(str(ROOT / "src/digits/shipped/model.onnx"))
    x, y = load_train()
    records, started = [], time.process_time()
    for index, photo, text, truth in strips(x, y, args.seed, args.kind, args.count):
        ink = images.analyse(images.to_gray(photo))
        lattice = (multidigit._lattice(ink, None, keep_masks=True, predict_scores=predictor.predict_scores)
                   if ink.labels is not None else None)
        entry = {"index": index, "truth": text, "lattice": lattice}
        if lattice is not None:
            factor = ink.factor
            core = ink.intensity >= 0.5
            r, c = np.nonzero(core)
            who = truth((r + 0.5) * factor, (c + 0.5) * factor)
            owner_map = np.full(core.shape, -1)
            owner_map[r, c] = who
            totals = np.bincount(who, minlength=len(text))
            labels, shares, covers, edges = [], [], [], {}
            for key, mask in zip(lattice["keys"], lattice["masks"]):
                edges[key] = edge_ink(mask, core, images.bounds(mask & core), lattice["line"] / factor)
                counts = np.bincount(owner_map[mask & core], minlength=len(text))
                top = int(counts.argmax())
                share = counts[top] / max(1, counts.sum())
                cover = counts[top] / max(1, totals[top])
                shares.append(share)
                covers.append(cover)
                labels.append(top)
            entry.update(owner=np.array(labels), share=np.array(shares), cover=np.array(covers))
            lattice["edges"] = edges
            del lattice["masks"]
            del lattice["candidates"]
        records.append(entry)
    seconds = time.process_time() - started
    np.save(args.out, np.array(records, dtype=object), allow_pickle=True)
    print(f"{len(records)} strips cached in {seconds:.0f} s CPU -> {args.out}")


def singles(args):
    """Wide single training digits rendered as photos (real_images.render_digit) and read in auto mode with the
    shipped model, as real_images measures splits: how many come back as several digits."""
    from digits import reading
    from digits.predictor import Predictor
    predictor = Predictor(str(ROOT / "src/digits/shipped/model.onnx"))
    x, _ = load_train()
    widths = np.array([np.ptp(np.flatnonzero(digit.max(0) > 25)) + 1 if digit.max() > 25 else 0 for digit in x])
    wide = np.flatnonzero(widths >= args.min_width)
    chosen = np.random.default_rng(args.seed).choice(wide, args.count, replace=False)
    started, split = time.process_time(), []
    for index in chosen:
        photo = real_images.render_digit(x[index], np.random.default_rng([args.seed, int(index)]))
        answer = reading.read(photo, "auto", predictor)
        if answer.kind == "number":
            split.append((int(index), answer.number))
    print(f"{len(split)} of {args.count} wide single digits (ink >= {args.min_width} px wide, of {len(wide)}) "
          f"read as several: {split} ({time.process_time() - started:.0f} s CPU)")


def strips_read(args):
    """The strips read end to end (reading.read in number mode, the shipped model's Predictor: its digit scores
    help choose the cuts, a refused piece reads "?"), as real_images._strips_read reads them: the share read
    whole."""
    from digits import reading
    from digits.predictor import Predictor
    predictor = Predictor(str(ROOT / "src/digits/shipped/model.onnx"))
    x, y = load_train()
    started, right = time.process_time(), []
    for index, photo, text, _ in strips(x, y, args.seed, args.kind, args.count):
        right.append(reading.read(photo, "number", predictor).number == text)
    print(f"{args.kind} seed {args.seed}: {np.mean(right):.4f} of {args.count} read whole "
          f"({(time.process_time() - started) / args.count:.3f} s CPU a strip)")


def right_path(entry: dict, share: float = 0.75) -> list | None:
    """The candidates (first, last) of a cached strip that cut it right, left to right: each holds at least `share`
    of its ink from one true digit and at least `share` of that digit's ink, in the digits' order (specks may be
    left out, as `multidigit._choose` may); None if no such path is in the lattice."""
    lattice, text = entry["lattice"], entry["truth"]
    good = {key: int(entry["owner"][row]) for row, key in enumerate(lattice["keys"])
            if entry["share"][row] >= share and entry["cover"][row] >= share}
    reach = {(0, 0): []}  # (pieces read, digits found) -> the candidates that got there
    for stop in range(1, lattice["count"] + 1):
        for start in range(max(0, stop - multidigit.MAX_JOIN), stop):
            for found in range(len(text)):
                if (start, found) in reach and good.get((start, stop)) == found:
                    reach[stop, found + 1] = reach[start, found] + [(start, stop)]
        for found in range(len(text) + 1):
            if lattice["small"][stop - 1] and (stop - 1, found) in reach and (stop, found) not in reach:
                reach[stop, found] = reach[stop - 1, found]
    return reach.get((lattice["count"], len(text)))


def diagnose(args):
    """Each cached strip the lattice misreads, put in one of three bins: the right cut is not among the candidates
    (`multidigit._slices` must cut elsewhere), it is but the classifier misreads one of its digits, or it is and
    reads right but another reading scores higher (`multidigit._hand_scores` must weigh differently)."""
    bins = {"read right": [], "right cut absent": [], "right cut misread": [], "right cut scored lower": []}
    for entry in np.load(args.cache, allow_pickle=True):
        lattice, text = entry["lattice"], entry["truth"]
        if lattice is None:
            bins["right cut absent"].append((entry["index"], text, ""))
            continue
        scores = multidigit._hand_scores(lattice)
        row = {key: index for index, key in enumerate(lattice["keys"])}
        read = lambda path: "".join(str(lattice["probabilities"][row[key]].argmax()) for key in path)  # noqa: E731
        chosen = multidigit._choose(lattice, scores)
        path = right_path(entry)
        found = (entry["index"], text, read(chosen))
        if found[2] == text:
            bins["read right"].append(found)
        elif path is None:
            bins["right cut absent"].append(found)
        elif read(path) != text:
            bins["right cut misread"].append((*found, read(path)))
        else:
            summed = lambda keys: round(float(sum(scores[key] for key in keys)), 2)  # noqa: E731
            bins["right cut scored lower"].append((*found, summed(path), summed(chosen)))
    total = sum(len(items) for items in bins.values())
    for name, items in bins.items():
        print(f"{name}: {len(items)} of {total}" + ("" if name == "read right" else f": {items}"))


# tune: the weights `multidigit._hand_scores` applies, refitted over these values (the shipped ones among them;
# cut and join prices are part of the cached lattice and stay as they are)
GRID = {"DIGIT_WEIGHT": (0.0, 0.05, 0.1, 0.15, 0.2, 0.3), "DIGIT_CAP": (2.0, 3.0, 4.0, 6.0, 8.0),
        "ONE_CUT": (0.0, 0.3, 0.6, 1.0), "READ_WEIGHT": (0.2, 0.25, 0.3)}


def read_whole(entries, weights: dict) -> np.ndarray:
    """Per cached strip, whether the lattice's best reading under `weights` (multidigit constants) is the truth."""
    saved = {name: getattr(multidigit, name) for name in weights}
    try:
        for name, value in weights.items():
            setattr(multidigit, name, value)
        right = []
        for entry in entries:
            lattice = entry["lattice"]
            if lattice is None:
                right.append(False)
                continue
            row = {key: index for index, key in enumerate(lattice["keys"])}
            chosen = multidigit._choose(lattice, multidigit._hand_scores(lattice))
            right.append("".join(str(lattice["probabilities"][row[key]].argmax()) for key in chosen) == entry["truth"])
        return np.array(right)
    finally:
        for name, value in saved.items():
            setattr(multidigit, name, value)


def tune(args):
    """Every setting of GRID scored on cached strips (read whole by the lattice alone, as diagnose reads them),
    and one chosen by a rule fixed before any figure: the highest share of the --fit touching strips read whole
    among settings that read the --fit mixed strips at least as well as the shipped weights; ties go to the
    setting with fewest weights changed, then the smallest change. The chosen and the shipped weights are then
    read on the --check caches, which played no part in the choice."""
    def rates(names, weights):
        touching = np.concatenate([read_whole(caches[name], weights) for name in names if name.endswith("t")])
        mixed = np.concatenate([read_whole(caches[name], weights) for name in names if name.endswith("m")])
        return {"touching": float(touching.mean()), "mixed": float(mixed.mean()),
                "strips": [int(touching.size), int(mixed.size)]}

    caches = {name: np.load(Path(args.cache) / f"{name}.npy", allow_pickle=True) for name in args.fit + args.check}
    shipped = {name: float(getattr(multidigit, name)) for name in GRID}
    started, table = time.process_time(), []
    for values in itertools.product(*GRID.values()):
        weights = dict(zip(GRID, values))
        table.append({"weights": weights, "fit": rates(args.fit, weights)})
    base = next(row for row in table if row["weights"] == shipped)

    def change(row):
        moved = [name for name in GRID if row["weights"][name] != shipped[name]]
        return len(moved), sum(abs(row["weights"][name] - shipped[name]) / max(GRID[name]) for name in moved)
    allowed = [row for row in table if row["fit"]["mixed"] >= base["fit"]["mixed"]]
    chosen = min(allowed, key=lambda row: (-row["fit"]["touching"], *change(row)))
    result = {"grid": GRID, "fit": args.fit, "check": args.check,
              "shipped": {**base, "check": rates(args.check, shipped)},
              "chosen": {**chosen, "check": rates(args.check, chosen["weights"])}, "table": table,
              "seconds_cpu": time.process_time() - started}
    for name in ("shipped", "chosen"):
        row = result[name]
        print(f"{name}: {row['weights']} fit touching {row['fit']['touching']:.4f} mixed {row['fit']['mixed']:.4f}; "
              f"check touching {row['check']['touching']:.4f} mixed {row['check']['mixed']:.4f}")
    if args.out:
        from digits import files
        files.write_json(args.out, result)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["cache", "singles", "read", "diagnose", "tune"])
    parser.add_argument("--seed", type=int, help="strips' seed (not for diagnose or tune)")
    parser.add_argument("--cache", help="diagnose: a file written by cache; tune: the folder of such files")
    parser.add_argument("--fit", nargs="+", default=[], help="tune: cache names (NAME.npy) to choose on; "
                        "names ending in t are touching strips, in m mixed ones")
    parser.add_argument("--check", nargs="+", default=[], help="tune: cache names to check the choice on")
    parser.add_argument("--kind", choices=list(KINDS), default="touching")
    parser.add_argument("--min-width", type=int, default=18, help="singles: ink columns at least (default: 18)")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.action not in ("diagnose", "tune") and args.seed is None:
        parser.error("--seed is required")
    if args.action == "tune" and (not args.cache or not all(
            {name[-1] for name in names} == {"t", "m"} for names in (args.fit, args.check))):
        parser.error("tune needs --cache FOLDER and --fit and --check names, each with touching (NAMEt) and mixed "
                     "(NAMEm) caches, e.g. --fit 7000t 7000m --check 7001t 7001m")
    {"cache": cache, "singles": singles, "read": strips_read, "diagnose": diagnose, "tune": tune}[args.action](args)


if __name__ == "__main__":
    main()
