"""Calibration step (issue 14): the blur above which a model reads a digit's ink as it is (`soft_above`), chosen on
validation digits under the stress conditions, and stored with the model.

    python scripts/tune_soft.py --write                     # the shipped model: benchmarks/results/soft_tune.json
    python scripts/tune_soft.py --model build/cnn-fast --model src/digits/shipped/model.onnx   # several: one pass

`images.to_mnist` sharpens a digit's ink and re-draws its strokes at MNIST's width: a model trained on MNIST alone
needs both. On a soft picture (a digit a few pixels tall enlarged, or out of focus) the threshold that finds the
strokes fills loops and breaks strokes, and a model trained on soft pictures (the reader recipe's `augment_lowres`
and `augment_blur`) reads the ink better as it is. `soft_above` is the ink's blur (`images.ink_blur`, MNIST pixels)
above which it is taken as it is; None: never.

Digits: validation digits FIRST..FIRST+N (data.split_validation, 5%, as configs/reader.json holds out; the first
1,000 were read while the idea was explored, so they are not used), rendered by benchmarks/stress.py's
`render_condition` under `clean` and every stress condition with seed SEED (the stress benchmark renders test digits
with seed 0, its validation check seed 1). Each picture is prepared both ways once, its blur measured, and each
candidate reads the soft way the pictures above it.

The rule, fixed before it was run: of the candidates whose clean accuracy is at least never's and whose accuracy
under no condition is more than DROP_ALLOWED points below never's, the one with the highest mean accuracy over the
conditions other than `clean`; ties to the larger blur (fewer pictures read as they are); never, unless a candidate's
mean is higher than never's. `--write` stores the choice in the model's calibration (a run's metrics.json, or the
shipped card; a model file's sidecar), where every reader finds it (`Predictor.soft_above`).
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

CANDIDATES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # MNIST pixels of blur; sharp photos measure 0.2-0.4
FIRST, DIGITS, SEED = 1000, 1600, 2
DROP_ALLOWED = 0.5  # points


def choose(table: dict[str, dict[str, float]]) -> str:
    """The rule above over `table` (candidate -> condition -> accuracy; "never" among them)."""
    never = table["never"]

    def mean(key):
        return float(np.mean([value for name, value in table[key].items() if name != "clean"]))

    allowed = [key for key in table if key != "never" and table[key]["clean"] >= never["clean"]
               and all(table[key][name] >= never[name] - DROP_ALLOWED / 100 for name in never)]
    best = min(allowed, key=lambda key: (-mean(key), -float(key)), default=None)
    return best if best is not None and mean(best) > mean("never") else "never"


def _prepare(photos: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sharp stack, soft stack, blurs) of `photos` (`stress.prepared_views`)."""
    import stress

    views = [stress.prepared_views(photo, soft=True) for photo in photos]
    return (np.stack([sharp.image for sharp, _, _ in views]), np.stack([soft for _, _, soft in views]),
            np.asarray([blur for _, blur, _ in views], np.float32))


def named(model: str) -> str:
    """A model's path as the results name it: within the repository, relative to it; else its folder and name."""
    path = Path(model).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else f"{path.parent.name}/{path.name}"


def write(model: Path, soft_above: float | None, record: dict) -> Path:
    """Store `soft_above` (and how it was chosen) in the model's calibration; the file written atomically."""
    from digits import files, runs

    if runs.is_shipped(model):
        path = model.parent / runs.SHIPPED_CARD
    elif model.is_dir():
        path = model / "metrics.json"
    elif (model.parent / "metrics.json").is_file():
        path = model.parent / "metrics.json"
    else:
        path = model.with_name(model.name + ".json")
    stored = runs.read_json(path)
    calibration = dict(stored.get("calibration") or {})
    calibration.update(soft_above=soft_above, soft_above_chosen=record)
    files.write_json(path, {**stored, "calibration": calibration})
    return path


def main() -> None:
    import stress
    from common import machine, save
    from tqdm import tqdm

    from digits.predictor import Predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[],
                        help="a run directory or model file (repeat; default: the shipped model)")
    parser.add_argument("--digits", type=int, default=DIGITS,
                        help=f"validation digits from {FIRST} (default: {DIGITS})")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/soft_tune.json"))
    parser.add_argument("--write", action="store_true", help="store the choice in the model's calibration")
    args = parser.parse_args()
    if args.digits < 1:
        sys.exit(f"tune_soft: error: --digits must be at least 1, got {args.digits}")

    started = time.perf_counter()
    models = args.model or [str(ROOT / "src/digits/shipped/model.onnx")]
    try:
        predictors = {model: Predictor(model) for model in models}
    except ValueError as error:
        sys.exit(f"tune_soft: error: {error}")
    digits, truth = stress.digits_of("validation", FIRST + args.digits)
    digits, truth = digits[FIRST:], truth[FIRST:]
    if len(digits) < args.digits:
        sys.exit(f"tune_soft: error: the validation split holds {len(digits) + FIRST} digits; pass --digits "
                 f"{len(digits)} or fewer")
    names = list(stress.CONDITIONS)
    views, blurs = {}, {}
    with Pool(args.workers) as pool:
        for name in tqdm(names, desc="conditions", file=sys.stderr):
            photos = [stress.render_condition(name, digit, SEED, FIRST + index) for index, digit in enumerate(digits)]
            parts = pool.map(_prepare, [photos[start:start + 100] for start in range(0, len(photos), 100)])
            sharp, soft, blur = (np.concatenate(part) for part in zip(*parts))
            views[name] = {model: (predictor.predict_proba(sharp).argmax(1), predictor.predict_proba(soft).argmax(1))
                           for model, predictor in predictors.items()}
            blurs[name] = blur
    results = {}
    for model in models:
        table = {}
        for key, soft_above in [("never", None), *((f"{value:g}", value) for value in CANDIDATES)]:
            table[key] = {name: float((stress.selected(*views[name][model], blurs[name], soft_above) == truth).mean())
                          for name in names}
            print(f"{model}: {key:>5}: " + ", ".join(f"{name} {100 * value:.2f}" for name, value in table[key].items()),
                  file=sys.stderr)
        results[named(model)] = {"accuracy": table, "chosen": choose(table)}
    read_soft = {name: {key: float(np.mean(blurs[name] > value)) for key, value in
                        ((f"{value:g}", value) for value in CANDIDATES)} for name in names}
    record = {"digits": args.digits, "first": FIRST, "seed": SEED, "conditions": names, "models": results,
        "read_as_they_are": read_soft,
        "blur_percentiles": {name: np.nanpercentile(blurs[name], [5, 50, 95]).round(2).tolist() for name in names},
        "rule": (f"highest mean over the conditions but clean, clean not below never's, no condition more than "
                 f"{DROP_ALLOWED} point below never's; ties to the larger blur; never unless a mean beats never's"),
        "command": " ".join(["python", "scripts/tune_soft.py", *(named(arg) if arg in (*models, args.out) else arg
                                                                  for arg in sys.argv[1:])]),
        "seconds": time.perf_counter() - started, "machine": machine()}
    save("soft_tune", record, args.out)
    for model in models:
        chosen = results[named(model)]["chosen"]
        print(f"{named(model)}: chosen soft_above = {chosen}")
        if args.write:
            value = None if chosen == "never" else float(chosen)
            path = write(Path(model), value, {"by": record["command"], "results": Path(args.out).name,
                                              "measured": record["machine"]["measured"]})
            print(f"stored soft_above = {value} in {path}")


if __name__ == "__main__":
    main()
