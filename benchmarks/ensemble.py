"""Ensemble of the best-model runs (benchmarks/best_model.py), with and without test-time augmentation.

Writes benchmarks/results/ensemble.json (ensemble_<recipe>.json for another --config); the
ensembles are saved as runs/<recipe>-ensemble[-tta]/.
Usage: python benchmarks/ensemble.py [--config configs/best.json] [--seeds 1 2 3] [--runs-dir runs]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_runs_arguments, machine, results_name, save  # noqa: E402


def main() -> None:
    args, members = best_runs_arguments(__doc__.splitlines()[0])

    from digits import ensemble

    runs_dir = Path(args.runs_dir)
    results = {}
    for tta in (False, True):
        out = runs_dir / f"{args.stem}-ensemble{'-tta' if tta else ''}"
        shutil.rmtree(out, ignore_errors=True)  # rebuilt from the members each time
        metrics = ensemble.make_ensemble(members, out, tta=tta).metrics
        results["tta" if tta else "plain"] = {"run": str(out), "test_accuracy": metrics["test_accuracy"],
                                              "test_loss": metrics["test_loss"]}
        print(f"ensemble of {len(members)}{' with TTA' if tta else ''}: {metrics['test_accuracy']:.4f}")
    summary = {"benchmark": "ensemble", "members": metrics["members"],
               "best_member_accuracy": metrics["best_member_accuracy"], "ensembles": results,
               "config_file": str(args.config), "config": json.loads(args.config.read_text()), "device": "CPU",
               "machine": machine()}
    print(f"wrote {save(results_name('ensemble', args.stem), summary)}")


if __name__ == "__main__":
    main()
