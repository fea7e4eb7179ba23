"""What a looser not-a-digit threshold for the pieces of a number buys and costs, on validation digits only.

One model reads the same choosing pictures (benchmarks/validation_strips.py's, with --seed-base) at its stored
threshold, then once per --thresholds value with the threshold of the whole read set to it (in number mode every
digit of these strips is a piece of a number: cuts settled and pieces marked at that threshold), and once per
--pieces factor with reading.PIECES set to it (cuts settled at the stored threshold, a number's pieces marked at
PIECES times it). Each row: touching and mixed strips read whole (and with refusal off), and numbers of touching
digits holding one generated non-digit read with a piece marked "?" (`validation_strips.marked`), what a looser
threshold costs. How docs/reader.md's rules for reading.PIECES were applied.
Writes benchmarks/results/pieces_look.json (or --out).
Usage: python benchmarks/pieces_look.py --run LABEL=MODEL [--strips 300] [--marked 300] [--seed-base 4600]
       [--thresholds 0.35 0.2] [--pieces 0.7 0.4 0.2 0.1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import validation_strips  # noqa: E402
from common import machine, predictors, save  # noqa: E402
from stress import parse_runs  # noqa: E402


def look(predictor, x_val, y_val, strips: int, marked: int, seeds: dict) -> dict:
    """Strips read whole and marked numbers flagged, as `predictor` and reading stand now."""
    found = validation_strips.measure(predictor, x_val, y_val, strips, 0, seeds)
    found.update(validation_strips.marked(predictor, x_val, y_val, marked, seeds["marked"]))
    return {key: value for key, value in found.items() if not key.endswith("_strips")}


def rows(predictor, x_val, y_val, args, seeds: dict):
    """(name, row) for the stored threshold, each --thresholds value and each --pieces factor, in that order."""
    from digits import reading

    stored, factor = predictor.reject_below, reading.PIECES
    try:
        reading.PIECES = 1.0
        yield "stored", {"reject_below": stored, "pieces": 1.0, **look(predictor, x_val, y_val, args.strips,
                                                                        args.marked, seeds)}
        for threshold in args.thresholds:
            predictor.reject_below = threshold
            yield f"threshold {threshold:g}", {"reject_below": threshold, "pieces": 1.0,
                                                **look(predictor, x_val, y_val, args.strips, args.marked, seeds)}
        predictor.reject_below = stored
        for pieces in args.pieces:
            reading.PIECES = pieces
            yield f"pieces {pieces:g}", {"reject_below": stored, "pieces": pieces,
                                         **look(predictor, x_val, y_val, args.strips, args.marked, seeds)}
    finally:
        predictor.reject_below, reading.PIECES = stored, factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="LABEL=MODEL (one model)")
    parser.add_argument("--strips", type=int, default=300, help="touching and mixed strips each (default: 300)")
    parser.add_argument("--marked", type=int, default=300, help="numbers holding a non-digit (default: 300)")
    parser.add_argument("--seed-base", type=int, default=4600, help="added to validation_strips' seeds (default: "
                        "4600, choosing pictures no rule is judged on)")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.35, 0.2],
                        help="thresholds the whole read is set to (default: 0.35 0.2)")
    parser.add_argument("--pieces", type=float, nargs="*", default=[0.7, 0.4, 0.2, 0.1],
                        help="reading.PIECES factors (default: 0.7 0.4 0.2 0.1)")
    parser.add_argument("--validation-split", type=float, default=0.05, help="(default: 0.05, configs/reader.json's)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/pieces_look.json)")
    args = parser.parse_args()
    for value in [*args.thresholds, *args.pieces]:
        if not 0.0 <= value <= 1.0:
            parser.error(f"--thresholds and --pieces lie between 0 and 1, got {value}")
    try:
        (label, path), = parse_runs([args.run]).items()
    except ValueError as error:
        parser.error(str(error))
    predictor = predictors(parser, [path])[path]
    from digits import data

    dataset = data.load_dataset("mnist", allow_download=False)
    _, _, x_val, y_val = data.split_validation(dataset.x_train, dataset.y_train, args.validation_split)
    seeds = {name: seed + args.seed_base for name, seed in validation_strips.SEEDS.items()}
    found = {}
    for name, row in rows(predictor, x_val, y_val, args, seeds):
        found[name] = row
        print(name, {key: value for key, value in row.items() if key != "marked_by_family"}, flush=True)
    saved = save("pieces_look", {"run": {label: path}, "rows": found, "strips": args.strips, "marked": args.marked,
                                 "validation_split": args.validation_split, "seeds": seeds,
                                 "command": " ".join(["python", "benchmarks/pieces_look.py", *sys.argv[1:]]),
                                 "machine": machine()}, args.out)
    print(f"wrote {saved}")


if __name__ == "__main__":
    main()
