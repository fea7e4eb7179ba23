"""The original MLP recipe (`python train.py`), over several seeds: test accuracy and training time.

Writes benchmarks/results/original_mlp.json; `python benchmarks/report.py` puts it in the README.
Usage: python benchmarks/original_mlp.py [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="(default: 1 2 3)")
    args = parser.parse_args()

    from digits import config, train

    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in tqdm(args.seeds, desc="seeds", unit="run"):
            result = train.train(config.Config(seed=seed), out=Path(scratch) / f"seed-{seed}", verbose=0)
            runs.append({"seed": seed, "test_accuracy": result.metrics["test_accuracy"],
                         "training_seconds": result.metrics["training_seconds"]})
    accuracies = [run["test_accuracy"] for run in runs]
    summary = {
        "benchmark": "original_mlp", "recipe": config.Config().to_dict(), "runs": runs,
        "mean_test_accuracy": statistics.mean(accuracies), "min_test_accuracy": min(accuracies),
        "max_test_accuracy": max(accuracies),
        "mean_training_seconds": statistics.mean(run["training_seconds"] for run in runs),
        "machine": machine(),
    }
    path = save("original_mlp", summary)
    for run in runs:
        print(f"seed {run['seed']}: test accuracy {run['test_accuracy']:.4f} in {run['training_seconds']:.1f} s")
    print(f"mean {summary['mean_test_accuracy']:.4f} (min {summary['min_test_accuracy']:.4f}); wrote {path}")


if __name__ == "__main__":
    main()
