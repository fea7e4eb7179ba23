"""Choose a new ensemble member's weight on printed digits' choosing pictures (docs/reader.md, the pair weighted).

    python scripts/weigh_members.py --config configs/reader-v11.json --seed 2 --weights 0.6 0.7 0.8 \\
        [--run build/shipped/run-reader-v11-seed2] [--work build/weigh] [--soft-above 0.6] [--numbers 300] \\
        [--printed-seed 3] [--singles-margin 0.025] [--numbers-margin 0.06] \\
        [--out benchmarks/results/weigh_members.json]

For each weight W: `ship_model.py --config ... --add-member SEED --member-weight W`'s first step (the shipped model
and the finished run of --config with SEED, --run, averaged with weight W for the member and 1 - W for the shipped
model, calibrated on the validation split) in --work/wW, its soft_above set to --soft-above for every weight, so that
only the weight differs (ship_model chooses the chosen pair's own afterwards). Then one `benchmarks/printed.py` run
reads the shipped model and every weight on the choosing fonts (--printed-seed, never the judging seed), and the
choice is made: the smallest weight whose ten printed digits alone read at least --singles-margin more often than
the shipped model's and whose printed numbers read at least --numbers-margin more often (the smallest: the shipped
model is the one strong on handwriting); none if no weight qualifies. Writes --out: printed.py's results with the
choice added. Exit status 0 either way (2: bad input).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

import ship_model  # noqa: E402

from digits import files, runs  # noqa: E402


def label(weight: float) -> str:
    return f"w{weight:g}"


def choose(models: dict, weights: list[float], singles_margin: float, numbers_margin: float) -> float | None:
    """The smallest weight whose printed singles and numbers each beat the shipped model's by their margins."""
    shipped = models["shipped"]
    for weight in sorted(weights):
        read = models[label(weight)]
        if (read["singles"]["read_exactly"] - shipped["singles"]["read_exactly"] >= singles_margin
                and read["numbers"]["read_exactly"] - shipped["numbers"]["read_exactly"] >= numbers_margin):
            return weight
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the new member's recipe")
    parser.add_argument("--seed", type=int, required=True, help="the new member's seed")
    parser.add_argument("--run", help="its finished run (default: where ship_model.py --add-member puts it, "
                        "build/shipped/run-RECIPE-seedSEED)")
    parser.add_argument("--weights", type=float, nargs="+", required=True, help="the member's shares to try")
    parser.add_argument("--work", default=str(ROOT / "build" / "weigh"), help="(default: build/weigh)")
    parser.add_argument("--soft-above", type=float, default=0.6, help="every pair's soft_above (default: 0.6)")
    parser.add_argument("--numbers", type=int, default=300, help="printed.py --numbers (default: 300)")
    parser.add_argument("--printed-seed", type=int, default=3, help="printed.py --seed (default: 3, choosing)")
    parser.add_argument("--singles-margin", type=float, default=0.025, help="(default: 0.025)")
    parser.add_argument("--numbers-margin", type=float, default=0.06, help="(default: 0.06)")
    parser.add_argument("--destination", default=str(ship_model.DEFAULT_DESTINATION), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "weigh_members.json"))
    args = parser.parse_args()
    if not all(0 < weight < 1 for weight in args.weights):
        parser.error("--weights lie between 0 and 1 (e.g. 0.6 0.7)")
    own = ship_model.relative(args.config) == runs.read_card(Path(args.destination))["recipe"]
    run = Path(args.run or ship_model.member_run(ROOT / "build" / "shipped", args.config, args.seed, own))
    if not (run / "metrics.json").is_file():
        parser.error(f"--run {ship_model.relative(run)} is no finished run; train it first "
                     "(ship_model.py --add-member)")

    labels = [f"shipped={ship_model.relative(Path(args.destination) / 'model.onnx')}"]
    for weight in args.weights:
        member = argparse.Namespace(destination=args.destination, config=args.config, add_member=args.seed,
                                    member_weight=weight, work=args.work)
        model, card = ship_model.add_member(member, Path(args.work) / label(weight), run=run)
        card["calibration"]["soft_above"] = args.soft_above
        files.write_json(model.parent / "card.json", card)
        print(f"{label(weight)}: {ship_model.relative(model)} (temperature {card['calibration']['temperature']:.3f})",
              file=sys.stderr)
        labels.append(f"{label(weight)}={ship_model.relative(model)}")
    out = Path(args.out)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "printed.py"), *(f"--run={item}" for item in labels),
                    "--numbers", str(args.numbers), "--seed", str(args.printed_seed), "--out", str(out)],
                   check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    models = next(iter(result["sets"].values()))["models"]
    chosen = choose(models, args.weights, args.singles_margin, args.numbers_margin)
    for name, read in models.items():
        print(f"{name}: the ten digits alone {read['singles']['read_exactly']:.2%}, numbers "
              f"{read['numbers']['read_exactly']:.2%}")
    print(f"chosen: {'none' if chosen is None else chosen}")
    files.write_json(out, {**result, "command": " ".join(["python scripts/weigh_members.py", *sys.argv[1:]]),
                           "rule": {"singles_margin": args.singles_margin, "numbers_margin": args.numbers_margin,
                                    "soft_above": args.soft_above, "weights": args.weights},
                           "chosen": chosen})


if __name__ == "__main__":
    main()
