"""Experiment (issue 14): how a number's rival readings are weighed (`multidigit._settled`), chosen on validation
strips. Every reading the package weighs (`multidigit._rivals`: the lattice's own, the sequence model's text, the
lattice's best with one digit fewer and one more) is recorded once per strip, with its lattice score, the sequence
model's log-likelihood and whether a digit of it is refused; the rules are then replayed over the records.

    python scripts/rescore.py collect --strips 1000 [--model MODEL] --out build/rescore/validation.json
    python scripts/rescore.py choose --records build/rescore/validation.json --out benchmarks/results/rescore.json

Strips: the validation digits (data.split_validation, 5%, as configs/reader.json holds out) in the strips
benchmarks/validation_strips.py reads (same renderer and seeds: all touching, seed 900; mixed, seed 901), and
strips holding one non-digit among 1-4 validation digits (generated Outlier Exposure families, seed 903, never a
training picture; strips seed 906), where the non-digit should be reported ("12?4").

The rule, fixed before it is run (`choose`): each setting of WEIGHT (0.1 to 3), MARGIN (0 to 5), `strict` (a
lattice reading holding a refused digit is never weighed against others, as the SURE rule before) and `lengths`
(the rivals with one digit fewer or more are weighed, or only the sequence model's text) reads the even-numbered
strips; kept are the settings that report the non-digit in at least as many strips holding one as the SURE rule
(sequence.SURE 0.98, shipped 2026-12-05) less 1 of every 100; of them the one reading the most touching and
mixed strips whole, ties to strict, then without lengths, then the larger MARGIN, then the smaller WEIGHT. It is
reported on the odd-numbered strips, which play no part in choosing, beside the SURE rule's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from digits import files

ROOT = Path(__file__).resolve().parent.parent
SEEDS = {"touching": 900, "mixed": 901, "non_digits": 903, "with_non_digit": 906}
WEIGHTS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)
MARGINS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)
OLD_SURE = 0.98  # the rule shipped on 2026-12-05: the sequence model's text where at least this sure


def with_non_digit(x_val, y_val, non_digits, count: int):
    """`count` strips of 1-4 validation digits and one non-digit at a random place, mixed spacing: (truth with "?"
    where the non-digit is, encoded photo) each, seeded SEEDS["with_non_digit"] + [index]."""
    import real_images

    for index in range(count):
        rng = np.random.default_rng([SEEDS["with_non_digit"], index])
        chosen = rng.choice(len(x_val), int(rng.integers(1, 5)), replace=False)
        place = int(rng.integers(0, len(chosen) + 1))
        pictures = [x_val[item] for item in chosen]  # render_strip scales each by its dtype
        pictures.insert(place, non_digits[index])
        truth = [str(int(y_val[item])) for item in chosen]
        truth.insert(place, "?")
        yield "".join(truth), real_images.render_strip(pictures, rng, None)


def collect(args):
    """Each strip read as a number by --model (the shipped model unless told), the rivals `_settled` weighed
    recorded."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import real_images
    from common import machine
    from tqdm import tqdm

    from digits import data, multidigit, reading, synthetic
    from digits.config import OUTLIER_FAMILIES
    from digits.predictor import Predictor

    model = Path(args.model).resolve() if args.model else ROOT / "src/digits/shipped/model.onnx"
    named = str(model.relative_to(ROOT)) if model.is_relative_to(ROOT) else str(model)  # no path of this machine
    try:
        predictor = Predictor(str(model))
    except ValueError as error:  # no such file, or not a model
        sys.exit(f"rescore: error: {error}")
    if predictor.sequence is None:
        sys.exit(f"rescore: error: {named} reads without a sequence model, so there are no rivals to weigh; "
                 "pass a shipped or staged model.onnx with its card and sequence.onnx beside it")
    dataset = data.load_dataset("mnist", allow_download=False)
    _, _, x_val, y_val = data.split_validation(dataset.x_train, dataset.y_train, 0.05)
    seen = {}
    settled = multidigit._settled

    def record(lattice, scores, chosen, ink, sequence, threshold):  # what _settled weighs, kept for the replay
        found = sequence(ink)  # the rivals even where the lattice's reading holds a refused digit (strict or not)
        if found is not None and lattice["probabilities"].shape[-1] == 10:
            answers = multidigit._answers(lattice)
            own = "".join("?" if multidigit._refused(lattice, [key], threshold) else answers[key] for key in chosen)
            seen.update(sure=found.sure, sequence=found.text, own=own, rivals=[
                {"text": rival.text, "score": rival.score, "likelihood": rival.likelihood, "refused": rival.refused,
                 "source": rival.source} for rival in multidigit._rivals(lattice, scores, chosen, found, threshold)])
        return settled(lattice, scores, chosen, ink, sequence, threshold)

    multidigit._settled = record
    non_digits = synthetic.non_digits(args.strips, SEEDS["non_digits"], families=OUTLIER_FAMILIES[:5])
    kinds = {"touching": real_images.strip_photos(x_val, y_val, args.strips, [SEEDS["touching"]], 1.0),
             "mixed": real_images.strip_photos(x_val, y_val, args.strips, [SEEDS["mixed"]], None),
             "with_non_digit": with_non_digit(x_val, y_val, non_digits, args.strips)}
    result = {"strips": args.strips, "seeds": SEEDS, "model": named, "machine": machine(),
              "command": " ".join(["python", "scripts/rescore.py", *sys.argv[1:]])}
    for kind, strips in kinds.items():
        result[kind] = []
        for truth, photo in tqdm(strips, total=args.strips, desc=kind, unit="strip"):
            seen.clear()
            found = reading.read(photo, "number", predictor)
            result[kind].append({"truth": truth, "read": found.number, **seen})
    files.write_json(args.out, result)
    print(f"wrote {args.out}")


def old_rule(row: dict) -> str:
    """What the SURE rule read: the sequence model's text where it differs, is at least OLD_SURE sure, is spelt by
    cuts with no refused digit, and the lattice's reading holds no refused digit."""
    if "rivals" not in row:
        return row["read"]
    own = row["rivals"][0]
    theirs = [rival for rival in row["rivals"] if rival["source"] == "sequence"]
    if (own["refused"] or not theirs or row["sequence"] == own["text"] or row["sure"] < OLD_SURE
            or theirs[0]["refused"] or theirs[0]["text"] != row["sequence"]):
        return row["own"]
    return row["sequence"]


def new_rule(row: dict, weight: float, margin: float, strict: bool, lengths: bool) -> str:
    """What `_settled` reads with these settings: the rival weighing most (lattice score + weight x log-likelihood,
    + margin for the lattice's own), refused ones aside (the lattice's own always stands; strict: alone, if it holds
    a refused digit)."""
    if "rivals" not in row:
        return row["read"]
    own = row["rivals"][0]
    if strict and own["refused"]:
        return row["own"]
    best, weighed = row["own"], own["score"] + weight * own["likelihood"] + margin
    for rival in row["rivals"][1:]:
        if rival["refused"] or (not lengths and rival["source"] != "sequence"):
            continue
        if rival["score"] + weight * rival["likelihood"] > weighed:
            best, weighed = rival["text"], rival["score"] + weight * rival["likelihood"]
    return best


def rates(rows: list[dict], rule) -> dict:
    return {"read_whole": float(np.mean([rule(row) == row["truth"] for row in rows])), "strips": len(rows)}


def reported(rows: list[dict], rule) -> float:
    return float(np.mean(["?" in rule(row) for row in rows]))


def choose(args):
    found = json.loads(Path(args.records).read_text())
    halves = {kind: (found[kind][0::2], found[kind][1::2]) for kind in ("touching", "mixed", "with_non_digit")}
    floor = reported(halves["with_non_digit"][0], old_rule) - 0.01
    settings = []
    for strict in (True, False):
        for lengths in (False, True):
            for margin in MARGINS:
                for weight in WEIGHTS:
                    rule = (lambda row, w=weight, m=margin, s=strict, n=lengths: new_rule(row, w, m, s, n))
                    whole = sum(rule(row) == row["truth"] for kind in ("touching", "mixed") for row in halves[kind][0])
                    settings.append({"weight": weight, "margin": margin, "strict": strict, "lengths": lengths,
                                     "even_read_whole": int(whole),
                                     "even_reported": reported(halves["with_non_digit"][0], rule)})
    kept = [setting for setting in settings if setting["even_reported"] >= floor]
    chosen = max(kept, key=lambda s: (s["even_read_whole"], s["strict"], not s["lengths"], s["margin"], -s["weight"]))
    rule = (lambda row: new_rule(row, chosen["weight"], chosen["margin"], chosen["strict"], chosen["lengths"]))
    model = found.get("model", "src/digits/shipped/model.onnx")  # records from before --model: the shipped model
    result = {"chosen": chosen, "reported_floor": floor, "records": args.records, "model": model, "settings": settings,
              "command": " ".join(["python", "scripts/rescore.py", *sys.argv[1:]]), "machine": found["machine"]}
    for name, index in (("choose", 0), ("check", 1)):
        for kind in ("touching", "mixed"):
            result[f"{kind}_{name}"] = {"sure_rule": rates(halves[kind][index], old_rule),
                                        "chosen_rule": rates(halves[kind][index], rule),
                                        "lattice_alone": rates(halves[kind][index], lambda row: row.get("own", row["read"]))}
        result[f"with_non_digit_{name}"] = {"sure_rule_reported": reported(halves["with_non_digit"][index], old_rule),
                                            "chosen_rule_reported": reported(halves["with_non_digit"][index], rule),
                                            "strips": len(halves["with_non_digit"][index])}
    print({key: value for key, value in result.items() if key != "settings"})
    if args.out:
        files.write_json(args.out, result)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["collect", "choose"])
    parser.add_argument("--strips", type=int, default=1000, help="collect: strips of each kind (default: 1000)")
    parser.add_argument("--model",
                        help="collect: a model.onnx with its card and sequence model beside it, shipped or staged by "
                             "`ship_model.py --stage-only` (default: src/digits/shipped/model.onnx)")
    parser.add_argument("--records", help="choose: the JSON collect wrote")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    {"collect": collect, "choose": choose}[args.action](args)


if __name__ == "__main__":
    main()
