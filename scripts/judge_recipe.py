"""A candidate reader against a baseline, clause by clause, by the rule recipes are judged by (docs/reader.md).

Reads the JSON the judging commands wrote on validation data (never the test set), one or more runs per file,
each run found by its label:

    python benchmarks/stress.py --split validation --seed S --samples 1000 --run LABEL=MODEL ... --out A.json
    python benchmarks/validation_strips.py --run LABEL=MODEL --strips 1000 --singles 600 --non-digits 2000 \\
        --auto 300 --marked 600 --decimals 120 --signs 120 --plus 120 --colons 120 --percent 120 --parens 120 \\
        --dates 120 --seed-base B --out B.json
    python benchmarks/printed.py --run LABEL=MODEL --numbers 300 --seed P --out C.json     (with --gains printed)

    python scripts/judge_recipe.py --baseline shipped --candidate reader-v10 A.json B.json C.json ... \\
        [--control seed2] [--gains printed] [--out verdict.json]

The rule (written for reader-v10 on 2026-12-07, the clauses of reader-v8's and v9's with the marks added): the
candidate reads touching and mixed strips whole each at most 0.5 point worse; splits no more single digits; refuses
generated non-digits at most 0.5 point less often; marks numbers holding a non-digit at most 2 points less often;
reads its validation split at most 0.1 point worse; loses no stress condition by more than 0.5 point; refuses auto
mode's six families at most 1 point less on average; reads the seven shares of numbers with a mark exactly at most 2
points worse on average. With --gains printed, the gain a print recipe is for: printed numbers (printed.py's
choosing fonts) read exactly at least 5 points more often, and the ten digits alone at least 2 points more often.
With --gains marked (reader-v12's): numbers holding a non-digit marked at least 5 points more often.
With --control, a clause the control (the baseline's recipe trained again with another seed, read by the same
commands) fails against the baseline is judged against the control instead: there the baseline is a lucky draw, and
the control is its recipe's other one (reader-v11's rule). Labels joined by commas (--baseline shipped,seed2
--candidate v11,v11s2) judge each recipe by the mean of its seeds' figures (reader-v11's two-seed rule). Prints
each clause and the verdict (for touching and mixed strips of two single runs also the strips only one of the two
read whole, and the 95% interval of the difference: `validation_strips.paired_strips`); --out writes them as JSON.
Exit status 0 either way (2: bad input).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from validation_strips import paired_strips  # noqa: E402

from digits import files  # noqa: E402

FAMILIES = ("letters", "symbols", "shapes", "scribbles", "silhouettes", "scripts")  # auto mode's refusal shares
MARKS = ("decimals", "signs", "plus", "colons", "percent", "parens", "dates")  # numbers with a mark, read exactly
STRIPS = (  # validation_strips.py's figure, how the candidate may differ (its value minus the baseline's), what it is
    ("touching_read_whole", -0.005, "touching strips read whole"),
    ("mixed_read_whole", -0.005, "mixed strips read whole"),
    ("singles_split", 0.0, "single digits split (no more)"),
    ("non_digits_refused", -0.005, "generated non-digits refused"),
    ("marked_numbers", -0.02, "numbers holding a non-digit marked"),
    ("validation_accuracy", -0.001, "validation split read"),
)
STRESS_ALLOWED, FAMILIES_ALLOWED, MARKS_ALLOWED = -0.005, -0.01, -0.02
WRITERS = {"stress": "stress.py", "strips": "validation_strips.py", "printed": "printed.py"}
GAINS = {  # what a recipe is for: (kind of figures, figure, gain asked, what it is)
    "printed": (("printed", "numbers", 0.05, "printed numbers read exactly"),
                ("printed", "singles", 0.02, "the ten printed digits alone read")),
    "marked": (("strips", "marked_numbers", 0.05, "numbers holding a non-digit marked"),),
}


class JudgeError(ValueError):
    """Bad input: its message names the problem and the fix."""


def load(files: list[Path]) -> list[dict]:
    """Each judging file's JSON, read once for every label looked up in it."""
    loaded = []
    for path in files:
        try:
            loaded.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            raise JudgeError(f"{path}: cannot read it as JSON ({error}); pass a file a judging command wrote") from None
    return loaded


def averaged(runs: list[dict]) -> dict:
    """The mean of several runs' figures, key by key (nested alike); what is not a number, or is missing from a
    run, is left out (a strip-by-strip record pairs two runs, not their means)."""
    out = {}
    for key, value in runs[0].items():
        values = [run[key] for run in runs if key in run]
        if len(values) < len(runs):
            continue
        if isinstance(value, dict):
            out[key] = averaged(values)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = sum(values) / len(values)
    return out


def figures(loaded: list[dict], label: str) -> dict:
    """The label's run in each kind of file (`load`): {"stress": {condition: accuracy}, "strips": {...},
    "printed": {...}}. Labels joined by commas ("shipped,seed2": one recipe's seeds) give the mean of their
    figures, each kind found for every one of them."""
    if "," in label:
        each = [figures(loaded, one) for one in label.split(",")]
        return {kind: averaged([got[kind] for got in each]) for kind in each[0] if all(kind in got for got in each)}
    found = {}
    for data in loaded:
        if "conditions" in data:
            rows = {name: row["accuracy"][label] for name, row in data["conditions"].items()
                    if label in row.get("accuracy", {})}
            if rows:
                found["stress"] = rows
        elif label in data.get("runs", {}) and "sets" in data:
            found["printed"] = data["sets"]["choosing"]["models"][label]
        elif label in data.get("runs", {}):
            found["strips"] = data["runs"][label]
    return found


def clause(name: str, candidate: float, baseline: float, allowed: float, text: str) -> dict:
    """One clause: passed when the candidate's figure minus the baseline's is at least `allowed` (for a share
    that must not grow, the figures are passed negated)."""
    return {"clause": name, "what": text, "candidate": candidate, "baseline": baseline, "allowed": allowed,
            "passed": bool(candidate - baseline >= allowed - 1e-12)}


def judge(base: dict, cand: dict, gains: list[str]) -> list[dict]:
    """Every clause of the rule, from the figures of the baseline and the candidate."""
    needed = ["stress", "strips"] + (["printed"] if "printed" in gains else [])
    for kind in needed:
        for who, got in (("baseline", base), ("candidate", cand)):
            if kind not in got:
                raise JudgeError(f"no {kind} figures for the {who} in the files given; pass the JSON that "
                                 f"benchmarks/{WRITERS[kind]} wrote with its label")
    out = []
    a, b = base["strips"], cand["strips"]
    same = "touching_strips" in a and len(a["touching_strips"]) == len(b.get("touching_strips", ""))
    both = paired_strips(a, b) if same else {}
    for key, allowed, text in STRIPS:
        sign = -1.0 if key == "singles_split" else 1.0
        out.append(clause(key, sign * b[key], sign * a[key], allowed, text))
        kind = key.split("_")[0]
        if kind in both:  # the same strips read by both: which each read whole alone, and the interval
            out[-1]["paired"] = both[kind]
    for name in base["stress"]:
        out.append(clause(f"stress {name}", cand["stress"][name], base["stress"][name], STRESS_ALLOWED,
                          f"validation digits under the stress condition {name}"))
    mean = lambda run, keys, pattern: sum(run[pattern.format(key)] for key in keys) / len(keys)  # noqa: E731
    out.append(clause("auto families", mean(b, FAMILIES, "auto_refused_{}"), mean(a, FAMILIES, "auto_refused_{}"),
                      FAMILIES_ALLOWED, "auto mode's six families refused, on average"))
    out.append(clause("marks", mean(b, MARKS, "{}_exact"), mean(a, MARKS, "{}_exact"), MARKS_ALLOWED,
                      "the seven shares of numbers with a mark read exactly, on average"))
    read = {"printed": lambda run, part: run["printed"][part]["read_exactly"],
            "strips": lambda run, part: run["strips"][part]}
    for gain in gains:
        for kind, part, needed_gain, text in GAINS[gain]:
            out.append(clause(f"{gain} {part} (gain)", read[kind](cand, part), read[kind](base, part), needed_gain,
                              text))
    return out


def with_control(base: dict, control: dict, cand: dict, gains: list[str]) -> list[dict]:
    """judge(), but a clause the control (the baseline's recipe trained with another seed) fails against the
    baseline is judged against the control instead: there the baseline is a lucky draw. Such a clause says so
    (`against`: "control")."""
    lucky = {row["clause"] for row in judge(base, control, []) if not row["passed"]}
    again = {row["clause"]: row for row in judge(control, cand, gains)}
    return [{**again[row["clause"]], "against": "control"} if row["clause"] in lucky else {**row, "against": "baseline"}
            for row in judge(base, cand, gains)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="JSON written by the judging commands")
    parser.add_argument("--baseline", required=True, help="the baseline's label in those files (labels joined by "
                        "commas: the mean of those runs, one recipe's seeds)")
    parser.add_argument("--candidate", required=True, help="the candidate's label in those files (commas as for "
                        "--baseline)")
    parser.add_argument("--control", help="the label of the baseline's recipe trained with another seed: a clause it "
                        "fails against the baseline is judged against it instead")
    parser.add_argument("--gains", nargs="*", choices=list(GAINS), default=[], help="the gains the recipe is for")
    parser.add_argument("--out", type=Path, help="write the clauses and the verdict here as JSON")
    args = parser.parse_args(argv)
    try:
        loaded = load(args.files)
        base, cand = figures(loaded, args.baseline), figures(loaded, args.candidate)
        clauses = (with_control(base, figures(loaded, args.control), cand, args.gains) if args.control
                   else judge(base, cand, args.gains))
    except JudgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for row in clauses:
        pair = row.get("paired")
        told = "" if pair is None else (f"; {pair['better']} strips won, {pair['worse']} lost, 95% interval "
                                        f"{pair['ci95'][0] * 100:+.1f} to {pair['ci95'][1] * 100:+.1f} points")
        whom = f" ({args.control}'s, the control's)" if row.get("against") == "control" else ""
        print(f"{'pass' if row['passed'] else 'FAIL'}  {row['what']}: {abs(row['candidate']):.2%} against "
              f"{abs(row['baseline']):.2%}{whom} (at least {row['allowed'] * 100:+.1f} points{told})")
    met = all(row["passed"] for row in clauses)
    print(f"verdict: {args.candidate} against {args.baseline}: {'met' if met else 'failed'} "
          f"({sum(not row['passed'] for row in clauses)} of {len(clauses)} clauses failed)")
    if args.out:
        result = {"baseline": args.baseline, "candidate": args.candidate, "control": args.control,
                  "gains": args.gains, "met": met,
                  "clauses": clauses, "files": [path.name for path in args.files]}
        files.write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
