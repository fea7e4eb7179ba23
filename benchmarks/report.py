"""Regenerate the README's results section from benchmarks/results/*.json (never typed by hand).

Usage: python benchmarks/report.py   (rewrites the block between the results markers in README.md)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine_line(machine: dict) -> str:
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
            f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, Python {machine['python']}, "
            f"measured {machine['measured'][:10]}")


def original_mlp(result: dict) -> list[str]:
    seeds = ", ".join(f"{run['test_accuracy']:.4f}" for run in result["runs"])
    return [
        "| model | recipe | test accuracy (mean of seeds) | per seed | training time | command |",
        "|---|---|---|---|---|---|",
        f"| `mlp` | original: 5 epochs, batch 32, Adam 1e-3 | {result['mean_test_accuracy']:.2%} | {seeds} "
        f"| {result['mean_training_seconds']:.0f} s | `python benchmarks/original_mlp.py` |",
        "",
        f"Machine: {machine_line(result['machine'])}.",
    ]


SECTIONS = {"original_mlp": original_mlp}


def render() -> str:
    lines = []
    for name, section in SECTIONS.items():
        path = RESULTS / f"{name}.json"
        if path.is_file():
            lines += section(json.loads(path.read_text())) + [""]
    return "\n".join(lines).strip() or "No results yet: run the scripts in benchmarks/."


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{START}\n{render()}\n{END}"
    updated, count = re.subn(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.DOTALL)
    if count != 1:
        raise SystemExit(f"README.md needs exactly one {START} ... {END} block, found {count}")
    readme.write_text(updated)
    print(f"updated the results in {readme}")


if __name__ == "__main__":
    main()
