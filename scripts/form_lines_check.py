"""Where `images.erase_form_lines` changes pictures that hold no printed lines: it should not.

Validation pictures only, drawn as the benchmarks draw them, each cleaned by the reading path (`images.analyse`),
counting those whose ink the form-line eraser changes:
    plain      validation digits as benchmarks/real_images.py renders photos (seed 0, as stress.py's clean twins)
    stress     the same digits under each of benchmarks/stress.py's conditions (its seed 1 for --split validation)
    strips     touching and mixed strips of validation digits (benchmarks/validation_strips.py's seeds)
    non-digits generated pictures of every family `digits.synthetic` draws (validation_strips.py's seed 903)
A picture the eraser leaves alone is read exactly as before it; the figures say how often that holds, and what the
shipped model reads (auto mode) with the eraser and without it where it does not. It also times
`images.analyse` with the eraser and without it on the first 200 plain photos, side by side.
Writes benchmarks/results/form_lines_untouched.json.
Usage: python scripts/form_lines_check.py [--digits 1000] [--stress 300] [--strips 300] [--non-digits 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_images  # noqa: E402
import stress  # noqa: E402
import validation_strips  # noqa: E402
from common import machine, save  # noqa: E402
from form_lines import eraser_replaced  # noqa: E402


def answer(reading) -> str:
    """A reading in a few characters: the digit, the number, or its kind."""
    return {"digit": str(reading.digit), "number": reading.number}.get(reading.kind, reading.kind)


def changed_by_eraser(pictures, model) -> dict:
    """{count, changed: indices of the pictures (gray arrays or encoded photos) whose ink the eraser changed,
    readings: for each of those, what `model` reads in auto mode with the eraser and without it}."""
    from digits import images, reading

    erase, changed, count, readings, seen = images.erase_form_lines, [], 0, [], []

    def spy(intensity):
        out = erase(intensity)
        seen.append(not np.array_equal(out, intensity))
        return out

    with eraser_replaced(spy):
        for index, picture in enumerate(pictures):
            seen.clear()
            images.analyse(images.to_gray(picture))
            count += 1
            if any(seen):
                changed.append(index)
                with_eraser = answer(reading.read(picture, "auto", model))  # the spy erases as the eraser does
                with eraser_replaced():
                    readings.append({"with": with_eraser, "without": answer(reading.read(picture, "auto", model))})
    return {"count": count, "changed": changed, "readings": readings}


def cost(pictures: list) -> dict:
    """Milliseconds `images.analyse` takes a picture with the eraser and without it, each picture read both ways in
    turn (the order alternating), three rounds: the median of each way."""
    from digits import images

    grays = [images.to_gray(picture) for picture in pictures]
    times = {"with": [], "without": []}
    for round_ in range(3):
        for index, gray in enumerate(grays):
            for way in ("with", "without") if (index + round_) % 2 == 0 else ("without", "with"):
                with eraser_replaced(images.erase_form_lines if way == "with" else None):
                    started = time.perf_counter()
                    images.analyse(gray)
                    times[way].append(time.perf_counter() - started)
    medians = {way: round(float(np.median(values)) * 1000, 2) for way, values in times.items()}
    return {**medians, "ratio": round(medians["with"] / medians["without"], 3), "pictures": len(grays)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=1000, help="plain validation photos (default: 1000)")
    parser.add_argument("--stress", type=int, default=300, help="validation digits per stress condition (default: 300)")
    parser.add_argument("--strips", type=int, default=300, help="touching and mixed strips each (default: 300)")
    parser.add_argument("--non-digits", type=int, default=200, help="pictures per generated family (default: 200)")
    parser.add_argument("--out", help="(default: benchmarks/results/form_lines_untouched.json)")
    args = parser.parse_args()
    from digits import data, synthetic
    from digits.predictor import Predictor
    from digits.runs import shipped_model

    started = time.perf_counter()
    x_val, _ = stress.digits_of("validation", max(args.digits, args.stress))
    mnist = data.load_dataset("mnist")
    _, _, x_all, y_all = data.split_validation(mnist.x_train, mnist.y_train, stress.VALIDATION_SPLIT)
    sets = {"plain": (real_images.render_digit(x_val[index], np.random.default_rng([0, index]))
                      for index in range(args.digits))}
    for name in stress.CONDITIONS:
        sets[f"stress {name}"] = map(partial(stress.render_condition, name), x_val[:args.stress], [1] * args.stress,
                                     range(args.stress))
    for kind, touching in (("touching", 1.0), ("mixed", None)):
        seed = validation_strips.SEEDS[kind]
        sets[f"strips {kind}"] = (photo for _, photo in real_images.strip_photos(x_all, y_all, args.strips, [seed],
                                                                                 touching=touching))
    for family in synthetic.FAMILIES:
        sets[f"non-digits {family}"] = iter(synthetic.pictures(family, args.non_digits,
                                                               validation_strips.SEEDS["non_digits"]))
    timing = cost([real_images.render_digit(x_val[index], np.random.default_rng([0, index]))
                   for index in range(min(args.digits, 200))])
    print(f"analyse: {timing['with']} ms a picture with the eraser, {timing['without']} ms without")
    model, results = Predictor(shipped_model()), {}
    for name, pictures in tqdm(sets.items(), desc="sets", unit="set"):
        results[name] = changed_by_eraser(pictures, model)
        tqdm.write(f"{name}: {len(results[name]['changed'])} of {results[name]['count']} changed")
    path = save("form_lines_untouched", {"benchmark": "form_lines_untouched", "sets": results,
                                         "changed": sum(len(row["changed"]) for row in results.values()),
                                         "pictures": sum(row["count"] for row in results.values()), "analyse_ms": timing,
                                         "seconds": round(time.perf_counter() - started, 1), "machine": machine()},
                args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
