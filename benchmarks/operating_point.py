"""Where to put a run's not-a-digit threshold, chosen on validation digits only (never the test set, never a
held-out non-digit family).

For each candidate `reject_rate` (the share of validation digits the threshold may refuse), the threshold is
fitted as training and `digits calibrate` fit it (`calibration.threshold_for` on the run's calibrated top
probability over its validation split), and two shares are read off: the validation digits refused, and the
same digits rendered as photos (benchmarks/real_images.py's renderer, seeds of their own) refused after the
reading path's preparation. The rejection targets allow 1% of MNIST test digits and 2% of photo digits refused
(benchmarks/rejection.py's TARGETS); the largest rate whose validation shares stay within them refuses as many
non-digits as those targets allow. (Whole numbers pay too: a piece under the threshold is marked "?", so a
higher rate reads fewer strips whole; benchmarks/validation_strips.py measures that on a recalibrated copy.)

Usage: python benchmarks/operating_point.py --run RUN [--photos 3000] [--rates 0.005 0.01 ...] [--out FILE]
Writes benchmarks/results/operating_point.json (or --out), with the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, repo_relative, save  # noqa: E402

PHOTO_SEED = 31_000  # the validation photos' renderer seeds: [PHOTO_SEED, index], apart from every other benchmark
RATES = (0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02)


def shares(scores: dict, labels: dict, predictions: dict, rate: float) -> dict:
    """The threshold refusing at most `rate` of the validation digits, and what it refuses of each set."""
    from digits import calibration

    threshold = calibration.threshold_for(scores["validation"], rate)
    row = {"reject_rate": rate, "reject_below": threshold}
    for name, score in scores.items():
        accepted = score >= threshold
        right = predictions[name] == labels[name]
        row[name] = {"refused": float((~accepted).mean()),
                     "accuracy_accepted": float(right[accepted].mean()) if accepted.any() else None}
    return row


def choose(rows: list[dict], targets: dict) -> dict | None:
    """The row with the largest rate whose validation shares are within the in-distribution targets."""
    within = [row for row in rows if row["validation"]["refused"] <= targets["mnist_refused"]
              and row["validation_photos"]["refused"] <= targets["photos_refused"]]
    return max(within, key=lambda row: row["reject_rate"]) if within else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run directory")
    parser.add_argument("--photos", type=int, default=3000, help="validation digits rendered as photos (3000)")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES), help="candidate reject rates")
    parser.add_argument("--out", help="results file (default: benchmarks/results/operating_point.json)")
    args = parser.parse_args()

    from real_images import render_digit
    from rejection import TARGETS
    from rejection import prepared_inputs as prepared
    from tqdm import tqdm

    from digits import config, data, runs
    from digits.predictor import Predictor

    started = time.perf_counter()
    recipe = config.from_run(runs.load_info(args.run).config)
    _, _, _, x_val, y_val = data.training_arrays(recipe)  # the run's own validation split, as a model input
    count = min(args.photos, len(x_val))
    digits = np.round(x_val[..., 0] * 255).astype(np.uint8)
    photos = [render_digit(digits[index], np.random.default_rng([PHOTO_SEED, index]))
              for index in tqdm(range(count), desc="validation photos", file=sys.stderr)]
    photo_inputs, photo_ink = prepared(photos)
    predictor = Predictor(args.run)
    probabilities = {"validation": predictor.predict_proba(x_val),
                     "validation_photos": predictor.predict_proba(photo_inputs)}
    scores = {"validation": probabilities["validation"].max(1),
              "validation_photos": np.where(photo_ink, probabilities["validation_photos"].max(1), 0.0)}
    labels = {"validation": y_val, "validation_photos": y_val[:count]}
    predictions = {name: value.argmax(1) for name, value in probabilities.items()}
    rows = [shares(scores, labels, predictions, rate) for rate in sorted(args.rates)]
    chosen = choose(rows, TARGETS)
    for row in rows:
        print(f"reject_rate {row['reject_rate']:.4f}: below {row['reject_below']:.4f}, validation refused "
              f"{row['validation']['refused']:.2%}, validation photos refused "
              f"{row['validation_photos']['refused']:.2%}")
    print(f"largest rate within the targets: {chosen['reject_rate'] if chosen else None}")
    saved = save("operating_point", {
        "benchmark": "operating_point", "run": repo_relative(str(Path(args.run).resolve())),
        "stored": predictor.info.metrics.get("calibration"), "validation_images": len(y_val), "photos": count,
        "photo_seed": PHOTO_SEED, "targets": {key: TARGETS[key] for key in ("mnist_refused", "photos_refused")},
        "rates": rows, "largest_rate_within_targets": chosen["reject_rate"] if chosen else None,
        "command": " ".join(["python", "benchmarks/operating_point.py", *sys.argv[1:]]),
        "seconds": round(time.perf_counter() - started, 1), "machine": machine()}, args.out)
    print(f"wrote {saved}")


if __name__ == "__main__":
    main()
