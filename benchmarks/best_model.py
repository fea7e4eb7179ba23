"""The best single model (configs/best.json, or --config) over several seeds: mean test accuracy.

Each seed trains into runs/<recipe>-seed<N>/ (kept for `digits ensemble`); an interrupted run
resumes where it stopped when this script is run again, and finished seeds are reused.
Writes benchmarks/results/best_model.json (best_model_<recipe>.json for another recipe).
Usage: python benchmarks/best_model.py [--config configs/best.json] [--seeds 1 2 3] [--runs-dir runs]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_runs_arguments, machine, results_name, save  # noqa: E402


def main() -> None:
    args, outs = best_runs_arguments(__doc__.splitlines()[0])

    from digits import config, train

    runs = []
    for seed, out in zip(args.seeds, outs):
        if not (out / "metrics.json").is_file():
            print(f"training seed {seed} into {out}", flush=True)
            settings = config.load(args.config, config.Config(seed=seed))
            train.train(settings, out=out, verbose=2)
        metrics = json.loads((out / "metrics.json").read_text())
        runs.append({"seed": seed, "run": str(out), "test_accuracy": metrics["test_accuracy"],
                     "kept_epoch": metrics.get("kept_epoch"), "training_seconds": metrics["training_seconds"]})
        print(f"seed {seed}: test accuracy {metrics['test_accuracy']:.4f}", flush=True)
    accuracies = [run["test_accuracy"] for run in runs]
    summary = {"benchmark": "best_model", "config_file": str(args.config),
               "config": json.loads(args.config.read_text()),
               "runs": runs, "mean_test_accuracy": statistics.mean(accuracies),
               "min_test_accuracy": min(accuracies), "max_test_accuracy": max(accuracies),
               "device": "CPU", "machine": machine()}
    print(f"mean {summary['mean_test_accuracy']:.4%}; wrote {save(results_name('best_model', args.stem), summary)}")


if __name__ == "__main__":
    main()
