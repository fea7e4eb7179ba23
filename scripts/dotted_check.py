"""Check the rule "a stroke with a dot apart from it is not a digit" (`reading.dotted`) on validation data only.

docs/reader.md ("A stroke with a dot apart from it") fixed the rule's constants and its three checks before this
script was written; it measures them, each with the rule on and off (`reading.DOTTED`, off as reading stands: the
rule failed check (a)), on the same pictures:

  (a) digits: the validation digits of the stress judging command (`benchmarks/stress.py --split validation
      --seed 10 --samples 1000`, nine conditions), each the image the model reads (its soft_above applied): how
      many the rule refuses that the model's score accepts (at most 3 of 9,000);
  (b) strips: the choosing strips (`benchmarks/validation_strips.py`'s, --seed-base 4600; 300 touching, 300
      mixed) read whole with the rule and without (at most one strip fewer of each kind);
  (c) i, j and "!": generated i and j (`synthetic.pictures("letters", N, 4700, letters="ij")`, the training fonts)
      and "!" (the same fonts that draw punctuation faithfully, photographed as those are), read as
      `digits predict` reads a file (auto mode): the share refused with the rule and without (at least 80% in
      all, and more than without).

Writes benchmarks/results/dotted_check.json (or --out), with "kept": whether all three checks hold (false as soon
as one run with --checks fails; null when only some were run and all of those hold).
Usage: python scripts/dotted_check.py [--run MODEL] [--samples 1000] [--strips 300] [--letters 600] [--bangs 300]
       [--cache DIR] [--checks digits strips dotted]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import stress  # noqa: E402
import validation_strips  # noqa: E402
from common import machine, predictors, repo_relative, save  # noqa: E402
from rejection import refused_in_auto_mode  # noqa: E402

STRESS_SEED, SEED_BASE, LETTER_SEED = 10, 4600, 4700  # the rule's pictures (docs/reader.md)
CHECKS = ("digits", "strips", "dotted")
MOST_DIGITS, FEWEST_REFUSED = 3, 0.8  # check (a): digits the rule may refuse; check (c): the share refused


@contextlib.contextmanager
def rule(on: bool):
    """reading with the dotted-stroke rule on or off (`reading.DOTTED`), whatever it is set to."""
    from digits import reading

    kept = reading.DOTTED
    reading.DOTTED = on
    try:
        yield
    finally:
        reading.DOTTED = kept


def digits_refused(predictor, samples: int, cache: str | None) -> dict:
    """Check (a): per condition, the pictures the rule refuses and the model's score accepts."""
    from digits import calibration, reading

    digits, _ = stress.digits_of("validation", samples)
    names = list(stress.CONDITIONS)
    soft_above = getattr(predictor, "soft_above", None)
    prepared = stress.prepare_conditions(digits, names, STRESS_SEED, cache and Path(cache) / "validation",
                                         soft=soft_above is not None)
    found = {}
    for name, item in prepared.items():
        images = stress.selected(item["stack"], item.get("soft_stack"), item["blur"], soft_above)
        scores = predictor.predict_scores(images)[1]
        accepted = ~np.array([calibration.refused(score, predictor.reject_below) for score in scores])
        dotted = np.array([reading.dotted(image) for image in images])
        found[name] = {"dotted": int(dotted.sum()), "refused_by_rule_only": int((dotted & accepted).sum()),
                       "indices": [int(index) for index in np.flatnonzero(dotted & accepted)]}
    total = sum(row["refused_by_rule_only"] for row in found.values())
    return {"pictures": samples * len(prepared), "conditions": found, "refused_by_rule_only": total,
            "met": total <= MOST_DIGITS}


def strips_read(predictor, strips: int, split: float) -> dict:
    """Check (b): touching and mixed choosing strips read whole with the rule and without."""
    from digits import data

    dataset = data.load_dataset("mnist", allow_download=False)
    _, _, x_val, y_val = data.split_validation(dataset.x_train, dataset.y_train, split)
    seeds = {name: seed + SEED_BASE for name, seed in validation_strips.SEEDS.items()}
    found = {}
    for on in (False, True):
        with rule(on):
            found["with" if on else "without"] = validation_strips.measure(predictor, x_val, y_val, strips, 0, seeds)
    met = all(round(found["with"][f"{kind}_read_whole"] * strips) >= round(found["without"][f"{kind}_read_whole"]
                                                                            * strips) - 1
              for kind in ("touching", "mixed"))
    return {"strips": strips, "seed_base": SEED_BASE, **found, "met": met}


def bangs(count: int, seed: int) -> list[np.ndarray]:
    """`count` photographed "!" drawn as `synthetic.pictures` draws its symbols (fonts that draw punctuation
    faithfully), seeded."""
    from digits import synthetic

    having = tuple(str(font) for font in synthetic.training_fonts() if synthetic._faithful(font))
    table = synthetic._glyphs("!", having)
    out = []
    for index in range(count):
        rng = np.random.default_rng([seed, zlib.crc32(b"!"), index])
        height = synthetic._side(rng)
        width = int(np.clip(round(height * rng.uniform(0.8, 1.25)), *synthetic.SIDE))
        out.append(synthetic._photograph(synthetic._glyph(rng, table, height, width), rng))
    return out


def dotted_refused(predictor, letters: int, marks: int) -> dict:
    """Check (c): generated i, j and "!" refused in auto mode, with the rule and without."""
    from digits import synthetic

    pictures = {"ij": synthetic.pictures("letters", letters, LETTER_SEED, letters="ij"),
                "!": bangs(marks, LETTER_SEED)}
    found = {}
    for on in (False, True):
        with rule(on):
            shares = {name: refused_in_auto_mode(predictor, items)["refused_auto"] for name, items in pictures.items()}
        total = sum(shares[name] * len(items) for name, items in pictures.items()) / (letters + marks)
        found["with" if on else "without"] = {**shares, "all": total}
    met = found["with"]["all"] >= FEWEST_REFUSED and found["with"]["all"] > found["without"]["all"]
    return {"letters": letters, "bangs": marks, "seed": LETTER_SEED, **found, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "src" / "digits" / "shipped" / "model.onnx"),
                        help="the model (default: the shipped one)")
    parser.add_argument("--samples", type=int, default=1000, help="validation digits per condition (default: 1000)")
    parser.add_argument("--strips", type=int, default=300, help="touching and mixed strips each (default: 300)")
    parser.add_argument("--letters", type=int, default=600, help="generated i and j (default: 600)")
    parser.add_argument("--bangs", type=int, default=300, help='generated "!" (default: 300)')
    parser.add_argument("--validation-split", type=float, default=0.05, help="(default: 0.05, configs/reader.json's)")
    parser.add_argument("--cache", help="stress.py's --cache: keep the stress pictures prepared here")
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=list(CHECKS),
                        help="which checks to run (default: all three; the rule is kept only if all three hold)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/dotted_check.json)")
    args = parser.parse_args()
    for flag in ("samples", "strips", "letters", "bangs"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    predictor = predictors(parser, [args.run])[args.run]
    found = {"run": repo_relative(args.run)}
    if "digits" in args.checks:
        found["digits"] = digits_refused(predictor, args.samples, args.cache)
        print("digits", {key: value for key, value in found["digits"].items() if key != "conditions"}, flush=True)
    if "strips" in args.checks:
        found["strips"] = strips_read(predictor, args.strips, args.validation_split)
        print("strips", {key: found["strips"][key] for key in ("met",)},
              {side: {key: value for key, value in found["strips"][side].items() if key.endswith("whole")}
               for side in ("without", "with")}, flush=True)
    if "dotted" in args.checks:
        found["dotted"] = dotted_refused(predictor, args.letters, args.bangs)
        print("dotted", found["dotted"], flush=True)
    failed = [check for check in args.checks if not found[check]["met"]]
    found["kept"] = False if failed else (True if len(args.checks) == len(CHECKS) else None)  # None: not all run
    saved = save("dotted_check", {**found, "command": " ".join(["python", "scripts/dotted_check.py", *sys.argv[1:]]),
                                  "machine": machine()}, args.out)
    print(f"kept: {found['kept']}; wrote {saved}")


if __name__ == "__main__":
    main()
