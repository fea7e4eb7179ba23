"""Runs (or reading code) compared on validation digits only, to choose between them without the test set.

The validation split that every recipe with the same `validation_split` holds out (data.split_validation's
seeded order; 5% for configs/reader.json) is rendered as benchmarks/real_images.py renders test digits:
strips whose neighbours all touch, mixed strips (10% of neighbours touching), both read whole in number mode
(and the share whose every digit's class is right, refused or not: `*_refusal_off`, what refusal costs them),
and single digits read in auto mode (how many come back as several digits). The seeds differ from
real_images.py's. With --non-digits N, also "not a digit" at each run's stored threshold: the share of the
validation digits refused, and of N non-digits generated fresh (their own seed, never a training picture) from
the five default Outlier Exposure families, refused, with their AUROC against the validation digits; the
rejection benchmark's families stay held out for the test. With --auto N, auto mode as `digits predict` reads a
file: N generated non-digits of each of six families refused, and N numbers of 2-3 validation digits (all
touching, and mixed) read right (`auto_mode`; how reading._one_glyph's crowded-shape rule was chosen). With
--marked N, N numbers of touching validation digits, each with one generated non-digit in place of a digit, read in
number mode: the share read with a piece marked "?" rather than as a number of digits (`marked`: what a looser
not-a-digit threshold for touching pieces would cost). With --lines N, N photos of 2-3 numbers of validation digits
written one under the other, read in auto mode: the share read exactly, line by line (`written_lines`). With
--decimals N, N photos of numbers with a decimal point or comma, read in number mode: the share read exactly
(`decimals`). With --signs N, N photos of numbers with a minus sign before them or a hyphen between two digits, read
in auto mode: the share read exactly (`signed`); with --plus N, the same with a plus sign. With --spaced N, N photos
of 2-3 numbers written apart on one line, read in auto mode: the share read exactly, a space between the numbers
(`spaced`). With --colons N, N photos of numbers with a colon between two digits (a time), read in auto mode: the
share read exactly (`colons`). With --squared N, N photos of numbers of 1-4 digits on squared paper, read in auto
mode: the share read exactly (`squared`). With --percent N, N photos of numbers of 1-4 digits with a percent sign
after them, read in auto mode: the share read exactly (`percent`). With --parens N, N photos of numbers of 1-4 digits in
parentheses, every other one followed by a second number ("(555) 123"), read in auto mode: the share read exactly
(`parens`). With --dates N, N photos of dates written with slashes ("12/05/2026"), read in auto mode: the share read
exactly (`dates`); with --datetimes N, N such photos each with a time written after it ("12/05/2026 14:30"): the
share read exactly (`datetimes`). With --uneven N, N photos of numbers of 2-6 digits, one of them written smaller
(0.6-0.8 of the others' height), read in auto mode: the share read exactly (`uneven`).
Each run's accuracy on the validation split itself (its top class of every validation digit, read as the
28x28 array it is) is reported too, as `validation_accuracy`.
Every run reads the same strips, so each run after the first is also compared with the first strip by strip
(`paired`; with --against, each run is compared with a run of an earlier results file instead): the difference
in strips read whole, with a 95% interval from the strips only one of the two read whole (at 1,000 strips one
run's rate alone is uncertain by about 1 point; the paired difference much less when the two mostly agree).
Each run's strips are kept as a string of 1s (read whole) and 0s.
--seed-base N adds N to every seed, a fresh look at the same runs; --pool joins results files of the same runs
read with different seed bases into one (each run's strips joined, its other shares weighted by their counts), so a
choice can rest on every strip it has been judged on.
Writes benchmarks/results/validation_strips.json (or --out).
Usage: python benchmarks/validation_strips.py --run LABEL=RUN [--run LABEL=RUN ...] [--strips 300]
       [--singles 600] [--non-digits 0] [--auto 0] [--marked 0] [--lines 0] [--decimals 0] [--signs 0]
       [--plus 0] [--spaced 0] [--colons 0] [--squared 0] [--percent 0] [--parens 0]
       [--dates 0] [--datetimes 0] [--uneven 0]
       [--validation-split 0.05]
       [--seed-base 0]
       python benchmarks/validation_strips.py --pool RESULTS RESULTS [...] --out POOLED
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_images  # noqa: E402
from common import machine, predictors, save  # noqa: E402
from stress import parse_runs  # noqa: E402

SEEDS = {"touching": 900, "mixed": 901, "singles": 902, "non_digits": 903, "auto_numbers": 905, "marked": 906,
         "lines": 907, "decimals": 908, "signs": 909, "spaced": 910, "plus": 911,
         "colons": 912, "squared": 913, "percent": 914, "parens": 915, "dates": 916, "uneven": 917,
         "datetimes": 918}
AUTO_FAMILIES = ("letters", "symbols", "shapes", "scribbles", "silhouettes", "scripts")  # generated, seed 903


def rejection(predictor, x_val, non_digits) -> dict:
    """The validation digits and generated non-digits refused at the run's stored threshold, and the AUROC."""
    from digits import calibration

    digits, others = (predictor.predict_scores(images)[1] for images in (x_val, non_digits))
    threshold = predictor.reject_below if predictor.reject_below is not None else 0.0
    return {"reject_below": predictor.reject_below, "validation_refused": float((digits < threshold).mean()),
            "non_digits_refused": float((others < threshold).mean()),
            "non_digits_auroc": calibration.auroc(digits, others)}


def auto_mode(predictor, x_val, y_val, count: int, seeds: dict = SEEDS) -> dict:
    """Read as `digits predict` reads a file (auto mode, where one shape may be cut into a number): `count`
    pictures of each generated non-digit family (AUTO_FAMILIES, seed 903), the share answered "not a digit" (or no
    ink); and `count` numbers of 2-3 validation digits, all touching and mixed (seed 905), the share read right."""
    from rejection import refused_in_auto_mode

    from digits import reading, synthetic

    result = {f"auto_refused_{family}": refused_in_auto_mode(
        predictor, synthetic.pictures(family, count, seeds["non_digits"]))["refused_auto"] for family in AUTO_FAMILIES}
    for kind, touching in (("touching", 1.0), ("mixed", None)):
        numbers = real_images.strip_photos(x_val, y_val, count, [seeds["auto_numbers"], int(touching is None)],
                                           touching, longest=3)
        result[f"auto_{kind}_numbers_right"] = float(np.mean([reading.read(photo, "auto", predictor).text == truth
                                                              for truth, photo in numbers]))
    return result


def marked_numbers(x_val, y_val, count: int, seed: int):
    """`count` strips of 2-6 validation digits, all touching, one of them replaced by a generated non-digit of one
    of AUTO_FAMILIES in turn (prepared to 28x28 as a digit is; its own seed): (family, the non-digit's place, the
    true number with "?" there, encoded photo) each."""
    from digits import synthetic

    per_family = -(-count // len(AUTO_FAMILIES))
    others = {family: synthetic._prepared(family, per_family, seed, None) for family in AUTO_FAMILIES}
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        family = AUTO_FAMILIES[index % len(AUTO_FAMILIES)]
        chosen = rng.choice(len(x_val), int(rng.integers(2, 7)), replace=False)
        place = int(rng.integers(len(chosen)))
        pictures = [np.asarray(x_val[i]) for i in chosen]
        pictures[place] = others[family][index // len(AUTO_FAMILIES)]
        truth = "".join("?" if at == place else str(int(y_val[i])) for at, i in enumerate(chosen))
        yield family, place, truth, real_images.render_strip(pictures, rng, 1.0)


def marked(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """Numbers holding a piece that is not a digit, read in number mode (`marked_numbers`): the share read with a
    piece marked "?" (not silently read as a number of digits), per family and in all, and the share read exactly
    (the right digits, "?" in the non-digit's place)."""
    from digits import reading

    flagged, exact = {family: [] for family in AUTO_FAMILIES}, []
    for family, _, truth, photo in marked_numbers(x_val, y_val, count, seed):
        found = reading.read(photo, "number", predictor)
        flagged[family].append(any(digit.not_a_digit for digit in found.digits))
        exact.append(found.number == truth)
    return {"marked_numbers": float(np.mean(sum(flagged.values(), []))), "marked_exact": float(np.mean(exact)),
            "marked_by_family": {family: float(np.mean(found)) for family, found in flagged.items() if found}}


def _read_photos(predictor, count: int, seed: int, mode: str, draw) -> tuple[float, float]:
    """`count` photos, each drawn by `draw(index, rng)` -> (true text, encoded photo, check(Reading) -> bool) with
    rng seeded [seed, index], read in `mode` as `digits predict` reads a file: (the share read exactly, the share
    that passes its check)."""
    from digits import reading

    exact, checked = [], []
    for index in range(count):
        truth, photo, check = draw(index, np.random.default_rng([seed, index]))
        found = reading.read(photo, mode, predictor)
        exact.append(found.text == truth)
        checked.append(check(found))
    return float(np.mean(exact)), float(np.mean(checked))


def written_lines(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of 2-3 numbers of 1-4 validation digits written one under the other (`real_images.render_lines`),
    read in auto mode: the share read exactly (each line's digits, a line break between lines), and the share read
    with the right lines (as many as written)."""
    def draw(index, rng):
        lines = [rng.choice(len(x_val), int(rng.integers(1, 5)), replace=False) for _ in range(rng.integers(2, 4))]
        truth = "\n".join("".join(str(int(y_val[i])) for i in line) for line in lines)
        photo = real_images.render_lines([[x_val[i] for i in line] for line in lines], rng)
        return truth, photo, lambda found: found.text.count("\n") == truth.count("\n")

    exact, counted = _read_photos(predictor, count, seed, "auto", draw)
    return {"lines_exact": exact, "lines_counted": counted}


def _with_mark(predictor, x_val, y_val, count: int, seed: int, mode: str, render, char_of, sign: bool = False):
    """`count` photos of numbers of 2-6 validation digits with a mark (`char_of(index)`) between two of them, each
    drawn by `render(digits, place, rng, char)` and read in `mode` (`_read_photos`): the share read exactly (the
    digits and the mark in its place), and the share whose mark was read, in its place or not. With `sign`, every
    other number (of 1-6 digits) has it before its first digit instead."""
    def draw(index, rng):
        before = sign and index % 2 == 0
        chosen = rng.choice(len(x_val), int(rng.integers(1 if before else 2, 7)), replace=False)
        place, char = 0 if before else int(rng.integers(1, len(chosen))), char_of(index)
        digits = [str(int(y_val[i])) for i in chosen]
        truth = "".join(digits[:place]) + char + "".join(digits[place:])
        return truth, render([x_val[i] for i in chosen], place, rng, char), lambda found: char in found.text

    return _read_photos(predictor, count, seed, mode, draw)


def decimals(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of numbers of 2-6 validation digits with a decimal point (a comma in every third) between two
    of them (`real_images.render_decimal`), read in number mode (`_with_mark`)."""
    exact, marked = _with_mark(predictor, x_val, y_val, count, seed, "number",
                               lambda digits, place, rng, char: real_images.render_decimal(digits, place, rng,
                                                                                           char == ","),
                               lambda index: "," if index % 3 == 2 else ".")
    return {"decimals_exact": exact, "decimals_marked": marked}


def signed(predictor, x_val, y_val, count: int, seed: int, char: str = "-") -> dict:
    """`count` photos of numbers of 1-6 validation digits with a dash (`real_images.render_signed`): a minus sign
    before every other one, a hyphen between two digits in the rest (numbers of 2 digits or more), read in auto mode
    (`_with_mark`). With `char` "+", a plus sign in its place (keys plus_*)."""
    exact, marked = _with_mark(predictor, x_val, y_val, count, seed, "auto", real_images.render_signed,
                               lambda index: char, sign=True)
    name = "signs" if char == "-" else "plus"
    return {f"{name}_exact": exact, f"{name}_marked": marked}


def colons(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of numbers of 2-6 validation digits with a colon between two of them, as a time is written
    (`real_images.render_colon`), read in auto mode (`_with_mark`)."""
    exact, marked = _with_mark(predictor, x_val, y_val, count, seed, "auto",
                               lambda digits, place, rng, char: real_images.render_colon(digits, place, rng),
                               lambda index: ":")
    return {"colons_exact": exact, "colons_marked": marked}


def squared(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of numbers of 1-4 validation digits on squared paper (`real_images.render_squared`), read in
    auto mode: the share read exactly, and the share read as as many digits as written."""
    def draw(index, rng):
        chosen = rng.choice(len(x_val), int(rng.integers(1, 5)), replace=False)
        truth = "".join(str(int(y_val[i])) for i in chosen)
        photo = real_images.render_squared([x_val[i] for i in chosen], rng)
        return truth, photo, lambda found: len(found.digits) == len(truth)

    exact, counted = _read_photos(predictor, count, seed, "auto", draw)
    return {"squared_exact": exact, "squared_counted": counted}


def percent(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of numbers of 1-4 validation digits with a percent sign after them (`real_images.render_percent`),
    read in auto mode: the share read exactly ("42%"), and the share whose percent sign was read."""
    def draw(index, rng):
        chosen = rng.choice(len(x_val), int(rng.integers(1, 5)), replace=False)
        truth = "".join(str(int(y_val[i])) for i in chosen) + "%"
        return truth, real_images.render_percent([x_val[i] for i in chosen], rng), lambda found: "%" in found.text

    exact, marked = _read_photos(predictor, count, seed, "auto", draw)
    return {"percent_exact": exact, "percent_marked": marked}


def parens(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of numbers of 1-4 validation digits in parentheses, every other one followed by a second number
    of 1-4 digits written apart (`real_images.render_parens`: "(42)", "(555) 123"), read in auto mode: the share read
    exactly, and the share whose two parentheses were read."""
    def draw(index, rng):
        inside = rng.choice(len(x_val), int(rng.integers(1, 5)), replace=False)
        after = rng.choice(len(x_val), int(rng.integers(1, 5)), replace=False) if index % 2 else []
        truth = "(" + "".join(str(int(y_val[i])) for i in inside) + ")"
        truth += (" " + "".join(str(int(y_val[i])) for i in after)) if len(after) else ""
        photo = real_images.render_parens([x_val[i] for i in inside], [x_val[i] for i in after], rng)
        return truth, photo, lambda found: "(" in found.text and ")" in found.text

    exact, marked = _read_photos(predictor, count, seed, "auto", draw)
    return {"parens_exact": exact, "parens_marked": marked}


def dates(predictor, x_val, y_val, count: int, seed: int, time: bool = False) -> dict:
    """`count` photos of dates written with slashes (`real_images.render_date`: a day and a month of 1-2 validation
    digits each, a year of 2 or 4), read in auto mode: the share read exactly ("12/05/2026"), and the share whose two
    slashes were read. With `time`, a time of four validation digits written after each ("12/05/2026 14:30", shares
    named `datetimes_...`)."""
    def draw(index, rng):
        parts = [rng.choice(len(x_val), int(size), replace=False)
                 for size in (rng.integers(1, 3), rng.integers(1, 3), 2 * rng.integers(1, 3))]
        truth = "/".join("".join(str(int(y_val[i])) for i in part) for part in parts)
        clock = None
        if time:  # hours and minutes, four digits written after the date
            chosen = rng.choice(len(x_val), 4, replace=False)
            written = "".join(str(int(y_val[i])) for i in chosen)
            truth += f" {written[:2]}:{written[2:]}"
            clock = [x_val[i] for i in chosen]
        photo = real_images.render_date([[x_val[i] for i in part] for part in parts], rng, time=clock)
        return truth, photo, lambda found: found.text.count("/") == 2

    exact, marked = _read_photos(predictor, count, seed, "auto", draw)
    name = "datetimes" if time else "dates"
    return {f"{name}_exact": exact, f"{name}_marked": marked}


def uneven(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of numbers of 2-6 validation digits, one of them written smaller (0.6-0.8 times the others'
    height, on their baseline: `real_images.render_uneven`), read in auto mode: the share read exactly, and the share
    read as as many digits as written, nothing else."""
    def draw(index, rng):
        chosen = rng.choice(len(x_val), int(rng.integers(2, 7)), replace=False)
        truth = "".join(str(int(y_val[i])) for i in chosen)
        photo = real_images.render_uneven([x_val[i] for i in chosen], int(rng.integers(0, len(chosen))), rng)
        return truth, photo, lambda found: len(found.digits) == len(truth) and found.text.isdigit()

    exact, counted = _read_photos(predictor, count, seed, "auto", draw)
    return {"uneven_exact": exact, "uneven_counted": counted}


def spaced(predictor, x_val, y_val, count: int, seed: int) -> dict:
    """`count` photos of 2-3 numbers of 1-4 validation digits written apart on one line (`real_images.render_spaced`),
    read in auto mode: the share read exactly (the numbers parted by a space), and the share parted into as many
    numbers as written."""
    def draw(index, rng):
        numbers = [rng.choice(len(x_val), int(rng.integers(1, 5)), replace=False) for _ in range(rng.integers(2, 4))]
        truth = " ".join("".join(str(int(y_val[i])) for i in number) for number in numbers)
        photo = real_images.render_spaced([[x_val[i] for i in number] for number in numbers], rng)
        return truth, photo, lambda found: len(found.text.split(" ")) == len(numbers)

    exact, parted = _read_photos(predictor, count, seed, "auto", draw)
    return {"spaced_exact": exact, "spaced_parted": parted}


# the photos of numbers each option reads: --NAME N -> (measure(predictor, x_val, y_val, N, seed), its keys, its help)
PHOTOS = {
    "lines": (written_lines, ("lines_exact", "lines_counted"), "photos of 2-3 numbers written one under the other, "
              "read in auto mode: how many read exactly, line by line"),
    "decimals": (decimals, ("decimals_exact", "decimals_marked"), "photos of numbers with a decimal point or comma, "
                 "read in number mode: how many read exactly, mark and all"),
    "signs": (signed, ("signs_exact", "signs_marked"), "photos of numbers with a minus sign or a hyphen, read in auto "
              "mode: how many read exactly, dash and all"),
    "plus": (lambda *args: signed(*args, char="+"), ("plus_exact", "plus_marked"), "photos of numbers with a plus "
             "sign before them or between two digits, read in auto mode: how many read exactly, sign and all"),
    "spaced": (spaced, ("spaced_exact", "spaced_parted"), "photos of 2-3 numbers written apart on one line, read in "
               "auto mode: how many read exactly, a space between them"),
    "colons": (colons, ("colons_exact", "colons_marked"), "photos of numbers with a colon between two digits (a "
               "time), read in auto mode: how many read exactly, colon and all"),
    "squared": (squared, ("squared_exact", "squared_counted"), "photos of numbers of 1-4 digits on squared paper, "
                "read in auto mode: how many read exactly"),
    "percent": (percent, ("percent_exact", "percent_marked"), "photos of numbers of 1-4 digits with a percent sign "
                "after them, read in auto mode: how many read exactly, sign and all"),
    "parens": (parens, ("parens_exact", "parens_marked"), "photos of numbers of 1-4 digits in parentheses, every "
               "other one followed by a second number, read in auto mode: how many read exactly, parentheses and all"),
    "dates": (dates, ("dates_exact", "dates_marked"), "photos of dates written with slashes (12/05/2026), read in auto "
              "mode: how many read exactly, slashes and all"),
    "datetimes": (lambda *args: dates(*args, time=True), ("datetimes_exact", "datetimes_marked"), "photos of dates "
                  "with a time written after them (12/05/2026 14:30), read in auto mode: how many read exactly"),
    "uneven": (uneven, ("uneven_exact", "uneven_counted"), "photos of numbers with one digit written smaller (0.6-0.8 "
               "of the others' height), read in auto mode: how many read exactly"),
}


def paired(first: list[bool], second: list[bool]) -> dict:
    """`second`'s share read whole less `first`'s, over the same strips, with a 95% interval (Wald, for paired
    proportions: only the strips one of the two read whole tell them apart)."""
    if len(first) != len(second) or not first:
        raise ValueError(f"paired needs the same strips read by both runs, got {len(first)} and {len(second)}")
    count = len(first)
    better = sum(b and not a for a, b in zip(first, second))
    worse = sum(a and not b for a, b in zip(first, second))
    difference = (better - worse) / count
    error = 1.96 * float(np.sqrt(max(0.0, better + worse - (better - worse) ** 2 / count))) / count
    return {"difference": difference, "ci95": [difference - error, difference + error], "better": better,
            "worse": worse, "strips": count}


def paired_strips(first: dict, second: dict) -> dict:
    """`paired` for touching and mixed strips: two runs' results, each strip kept as "1" (read whole) or "0"."""
    return {kind: paired(*([read == "1" for read in run[f"{kind}_strips"]] for run in (first, second)))
            for kind in ("touching", "mixed")}


def validation_accuracy(predictor, x_val, y_val) -> float:
    """The share of the validation digits whose top class is their label."""
    return float((predictor.predict_proba(x_val).argmax(1) == np.asarray(y_val)).mean())


def measure(predictor, x_val, y_val, strips: int, singles: int, seeds: dict = SEEDS) -> dict:
    """Strips read whole (their share, and each strip as "1" or "0") and singles split (none measured when
    their count is 0)."""
    started, result = time.perf_counter(), {}
    if strips:
        for kind, touching, seed in (("touching", 1.0, seeds["touching"]), ("mixed", None, seeds["mixed"])):
            whole, _, right = real_images._strips_read(predictor, x_val, y_val, strips, [seed], touching=touching)
            result[f"{kind}_read_whole"] = float(np.mean(whole))
            result[f"{kind}_refusal_off"] = float(np.mean(right))  # every digit's class right, refused or not
            result[f"{kind}_strips"] = "".join("1" if read else "0" for read in whole)
    if singles:
        split = sum(real_images._auto_split(predictor, real_images.render_digit(x_val[index], np.random.default_rng(
            [seeds["singles"], index])), index) is not None for index in range(singles))
        result["singles_split"] = split / singles
    return {**result, "seconds": round(time.perf_counter() - started, 1)}


def stored_run(against: str, strips: int, split: float, seeds: dict) -> tuple[str, dict] | str:
    """("LABEL from FILE", the run's results) for --against FILE:LABEL, or what is wrong with it."""
    path, _, label = against.rpartition(":")
    try:
        earlier = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        return f"--against {against}: cannot read {path} ({error}); give RESULTS:LABEL"
    if label not in earlier.get("runs", {}):
        return f"--against {against}: {path} has no run {label!r} (it has {', '.join(earlier.get('runs', {}))})"
    known = {name: seed for name, seed in seeds.items() if name in earlier.get("seeds", {})}  # older files lack some
    if (earlier.get("strips"), earlier.get("validation_split"), earlier.get("seeds")) != (strips, split, known):
        return (f"--against {against}: {path} read {earlier.get('strips')} strips of split "
                f"{earlier.get('validation_split')} with seeds {earlier.get('seeds')}; run it with the same --strips "
                "and --seed-base")
    return f"{label} ({path})", earlier["runs"][label]


def pool(results: list[dict], names: list[str]) -> dict:
    """Results files of the same runs, read on different strips (--seed-base), as one: each run's strips joined
    (its shares read whole and the paired comparisons taken over all of them), its singles split, auto-mode and
    marked-number shares weighted by how many each file read. Files of other runs, splits or baselines are refused."""
    first = results[0]
    if len(results) < 2:
        raise ValueError("give two results files or more")
    for result, name in zip(results, names):
        if set(result["runs"]) != set(first["runs"]) or result["validation_split"] != first["validation_split"] \
                or result["paired"]["against"] != first["paired"]["against"]:
            raise ValueError(f"{name} holds other runs, split or baseline than {names[0]}")
        if [result["runs"][label]["run"] for label in first["runs"]] != [run["run"] for run in first["runs"].values()]:
            raise ValueError(f"{name} read other model files under the same labels as {names[0]}")
    if len({json.dumps(result["seeds"], sort_keys=True) for result in results}) < len(results):
        raise ValueError("two files read the same seeds: pooling them would count the same strips twice")
    runs = {}
    for label in first["runs"]:
        rows = [result["runs"][label] for result in results]
        row = {"run": rows[0]["run"], "validation_accuracy": rows[0]["validation_accuracy"],
               "seconds": round(sum(found["seconds"] for found in rows), 1)}
        for kind in ("touching", "mixed"):
            row[f"{kind}_strips"] = "".join(found[f"{kind}_strips"] for found in rows)
            row[f"{kind}_read_whole"] = row[f"{kind}_strips"].count("1") / len(row[f"{kind}_strips"])
            if all(f"{kind}_refusal_off" in found for found in rows):  # (files written before it lack it)
                row[f"{kind}_refusal_off"] = sum(found[f"{kind}_refusal_off"] * len(found[f"{kind}_strips"])
                                                 for found in rows) / len(row[f"{kind}_strips"])
        shares = [("singles_split", "singles")] + [(key, "auto") for key in rows[0] if key.startswith("auto_")]
        if all(result.get("marked") for result in results):
            shares += [("marked_numbers", "marked"), ("marked_exact", "marked")]
        for count, (_, keys, _) in PHOTOS.items():
            if all(result.get(count) for result in results):
                shares += [(key, count) for key in keys]
        for key, count in shares:
            row[key] = sum(found[key] * result[count] for found, result in zip(rows, results)) / sum(
                result[count] for result in results)
        runs[label] = row
    (_, base), *others = runs.items()
    comparisons = {label: paired_strips(base, row) for label, row in others}
    return {"runs": runs, "paired": {"against": first["paired"]["against"], "runs": comparisons},
            "strips": sum(result["strips"] for result in results),
            "singles": sum(result["singles"] for result in results), "auto": sum(result["auto"] for result in results),
            "marked": sum(result.get("marked", 0) for result in results),
            **{count: sum(result[count] for result in results) if all(result.get(count) for result in results) else 0
               for count in PHOTOS},  # pooled only where every file read them
            "validation_split": first["validation_split"], "pooled": [
                {"file": name, "seeds": result["seeds"], "strips": result["strips"], "command": result["command"]}
                for name, result in zip(names, results)],
            "command": " ".join(["python", "benchmarks/validation_strips.py", *sys.argv[1:]]), "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", help="LABEL=RUN (repeat to compare)")
    parser.add_argument("--strips", type=int, default=300, help="touching and mixed strips each (default: 300)")
    parser.add_argument("--singles", type=int, default=600, help="single digits read in auto mode (default: 600)")
    parser.add_argument("--non-digits", type=int, default=0, help="generated non-digits to refuse (default: 0)")
    parser.add_argument("--auto", type=int, default=0, help="non-digits per family and numbers of 2-3 digits read "
                                                             "in auto mode (default: 0)")
    parser.add_argument("--marked", type=int, default=0, help="numbers of touching validation digits holding one "
                        "generated non-digit, read in number mode: how many mark it (default: 0)")
    for name, (_, _, explained) in PHOTOS.items():
        parser.add_argument(f"--{name}", type=int, default=0, help=f"{explained} (default: 0)")
    parser.add_argument("--validation-split", type=float, default=0.05, help="(default: 0.05, configs/reader.json's)")
    parser.add_argument("--against", metavar="RESULTS:LABEL", help="compare strip by strip with run LABEL of an "
                        "earlier results file instead of the first run (the same strips, seeds and split; e.g. to "
                        "weigh a change of reading code, which a run label cannot hold)")
    parser.add_argument("--seed-base", type=int, default=0, help="added to every seed: other strips, singles, "
                        "non-digits and numbers, for a fresh look at the same runs (default: 0)")
    parser.add_argument("--pool", nargs="+", metavar="RESULTS", help="instead of reading: pool results files of the "
                        "same runs read with different --seed-base (strips joined, rates weighted by their counts)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/validation_strips.json)")
    args = parser.parse_args()
    if args.pool:
        try:
            pooled = pool([json.loads(Path(path).read_text()) for path in args.pool], args.pool)
        except (OSError, ValueError, KeyError) as error:
            parser.error(f"--pool: {error}")
        print(f"wrote {save('validation_strips', pooled, args.out)}")
        return
    if not args.run:
        parser.error("give --run LABEL=RUN (or --pool RESULTS ...)")
    seeds = {name: seed + args.seed_base for name, seed in SEEDS.items()}
    from digits import data

    try:
        runs = parse_runs(args.run)
    except ValueError as error:
        parser.error(str(error))
    loaded = predictors(parser, runs.values())
    dataset = data.load_dataset("mnist", allow_download=False)
    _, _, x_val, y_val = data.split_validation(dataset.x_train, dataset.y_train, args.validation_split)
    non_digits = None
    if args.non_digits:
        from digits import synthetic
        from digits.config import OUTLIER_FAMILIES

        non_digits = synthetic.non_digits(args.non_digits, seeds["non_digits"], families=OUTLIER_FAMILIES[:5])
    earlier = None
    if args.against:
        earlier = stored_run(args.against, args.strips, args.validation_split, seeds)
        if isinstance(earlier, str):
            parser.error(earlier)
    results = {}
    for label, path in runs.items():
        predictor = loaded[path]
        results[label] = {"run": path, "validation_accuracy": validation_accuracy(predictor, x_val, y_val),
                          **measure(predictor, x_val, y_val, args.strips, args.singles, seeds)}
        if non_digits is not None:
            results[label].update(rejection(predictor, x_val, non_digits))
        if args.auto:
            results[label].update(auto_mode(predictor, x_val, y_val, args.auto, seeds))
        if args.marked:
            results[label].update(marked(predictor, x_val, y_val, args.marked, seeds["marked"]))
        for name, (measure_photos, _, _) in PHOTOS.items():
            if getattr(args, name):
                results[label].update(measure_photos(predictor, x_val, y_val, getattr(args, name), seeds[name]))
        shown = {key: value for key, value in results[label].items() if not key.endswith("_strips")}
        print(label, shown, flush=True)
    comparisons = {}
    (baseline, first), *others = ([earlier] if earlier else []) + list(results.items())
    if args.strips:
        for label, row in others:
            comparisons[label] = paired_strips(first, row)
            print(f"{label} against {baseline}, read whole:", ", ".join(
                f"{kind} {100 * found['difference']:+.1f} points (95%: {100 * found['ci95'][0]:+.1f} to "
                f"{100 * found['ci95'][1]:+.1f})" for kind, found in comparisons[label].items()), flush=True)
    saved = save("validation_strips", {"runs": results, "paired": {"against": baseline, "runs": comparisons},
                                       "strips": args.strips, "singles": args.singles,
                                       "non_digits": args.non_digits, "auto": args.auto, "marked": args.marked,
                                       **{name: getattr(args, name) for name in PHOTOS},
                                       "validation_split": args.validation_split, "seeds": seeds,
                                       "command": " ".join(["python", "benchmarks/validation_strips.py", *sys.argv[1:]]),
                                       "machine": machine()}, args.out)
    print(f"wrote {saved}")


if __name__ == "__main__":
    main()
