"""Shared by the benchmark scripts: the machine description and atomic JSON results."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def best_runs_arguments(description: str):
    """--config, --seeds and --runs-dir, shared by best_model.py and ensemble.py: RUNS/<recipe>-seed<N>/
    (configs/best.json -> runs/best-seed1/ ...). `args.stem` names the recipe; `args.config` is its path."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="configs/best.json", help="recipe (default: configs/best.json)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="(default: 1 2 3)")
    parser.add_argument("--runs-dir", default=str(ROOT / "runs"), help="(default: runs)")
    args = parser.parse_args()
    config = Path(args.config)
    args.config = config if config.is_file() else ROOT / config
    args.stem = args.config.stem
    return args, [Path(args.runs_dir) / f"{args.stem}-seed{seed}" for seed in args.seeds]


def predictors(parser, paths):
    """{path: digits.predictor.Predictor} for each model path given (a run directory or a model file), loaded before the
    long part; a path that holds no model ends the script with the parser's one-line error naming it and the fix."""
    from digits.predictor import Predictor

    loaded = {}
    for path in paths:
        try:
            loaded[path] = Predictor(path)
        except ValueError as error:
            parser.error(str(error))
    return loaded


def results_name(kind: str, stem: str) -> str:
    """best_model.json for configs/best.json, best_model_<recipe>.json for another recipe."""
    return kind if stem == "best" else f"{kind}_{stem}"


def machine() -> dict:
    """What the figures were measured on: CPU model, cores, memory, OS, library versions."""
    from digits import distribute
    from digits.workers import cores

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {"cpu": cpu, "cores": cores(), "memory_gib": memory_gib, **distribute.environment(),
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def repo_relative(value):
    """`value` with every path inside the repository written relative to it (no machine's paths in results)."""
    if isinstance(value, dict):
        return {key: repo_relative(item) for key, item in value.items()}
    if isinstance(value, list):
        return [repo_relative(item) for item in value]
    if isinstance(value, str) and value.startswith(str(ROOT) + os.sep):
        return value[len(str(ROOT)) + 1:]
    return value


def save(name: str, result: dict, out: str | Path | None = None) -> Path:
    """Write `result` to `out`, or to benchmarks/results/NAME.json."""
    from digits import files

    return files.write_json(Path(out) if out else RESULTS / f"{name}.json", repo_relative(result))
