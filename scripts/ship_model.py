"""Rebuild the shipped model end to end: train, measure, write its card, copy it into the package.

    python scripts/ship_model.py [--config configs/reader.json] [--seed 1] [--work build/shipped]
                                 [--samples 2000] [--photos 10000] [--strips 1000] [--reuse] [--refit]
                                 [--keep] [--add-member SEED [--member-weight W] [--first DIR]] [--stage-only]

1. Trains the recipe with the exact command the card records (`digits train --config configs/reader.json
   --seed 1 --out build/shipped/run --no-tensorboard`); a killed build resumes where it stopped, a finished run
   is reused.
2. Chooses the model's soft_above (`scripts/tune_soft.py`, --soft-digits validation digits under the stress
   conditions: the blur above which reading takes a digit's ink as it is; a kept or refit model keeps the card's).
   Stages the run's ONNX copy in --work/staged with its card, the sequence model installed now
   (`digits.sequence`) beside it, so a new build never drops it unasked; measures it there through the reading
   half, as the package will read it: the MNIST test set, `benchmarks/real_images.py` (photos and whole-number
   strips) and `benchmarks/rejection.py` (non-digits), side by side, each with `--run` and `--out` beside it.
   A model under FLOOR (99.65%) on MNIST's test set is not installed (issue 12): one line says so.
3. Writes the card, `src/digits/shipped/card.json` (name, recipe, commands, data checksum, calibration,
   figures, size, SHA-256, date, machine), and `MODEL_CARD.md` beside it, generated from the card.
4. Puts `model.onnx` (and its sequence model) and the card into `src/digits/shipped/` together: all are written
   into a new directory that then takes the old one's place, so a build that stops halfway leaves the old model
   whole.

With --refit there is no training: the shipped model.onnx is taken as it is, given its logits as a second
output (`digits.export.add_logits_output`; weights and probabilities unchanged, checked on the test set) and
calibrated again on its recipe's validation split, rebuilt from the card's config (`calibration.fit`: the energy
score). The split is proved the same by reproducing the card's stored temperature and top-probability threshold;
steps 2-4 then run on that file, in --work/refit, and the card keeps its training record and says what was refit.

With --sequence FILE (an ONNX sequence model, `scripts/sequence_experiment.py export`) the model is shipped with
the sequence model that settles a number's cuts (`digits.sequence`): the file goes beside model.onnx as
sequence.onnx, listed in the card with its SHA-256, and everything is measured with it in place. With --keep
there is no training and no refit: the shipped model.onnx and its calibration are taken as they are (to add a
sequence model to it and measure the pair again); the card keeps its training record and says what changed.

With --add-member SEED the shipped model becomes a deep ensemble (Lakshminarayanan et al. 2017): its recipe (or the
one --config names, if it holds out the same validation split) is trained again with SEED (`digits train --config
... --seed SEED --out WORK/run-seedSEED`, or WORK/run-RECIPE-seedSEED for another recipe, resumed or reused like the
first run), the two files are averaged into one (`digits.export.average_onnx`: the mean of their logits, and its
softmax; with --member-weight W weighted, W for the new member and 1 - W for the model shipped now) and calibrated
on the validation split as a trained run is; the card lists every member's recipe and training command.
`python scripts/ship_model.py && python scripts/ship_model.py --add-member 2` rebuilds such a model from nothing.
With --first DIR the first member is the model staged in DIR (`--stage-only`'s WORK/staged, with its card) rather
than the installed one: two seeds of a recipe whose single model is under FLOOR, which is never installed (`python
scripts/ship_model.py --config configs/reader-v11.json --seed 2 --work build/v11s2 --stage-only && python
scripts/ship_model.py --config configs/reader-v11.json --add-member 3 --first build/v11s2/staged --work build/v11pair`).
--stage-only (with any of these, or a build) stops once the model is staged in --work/staged with its card (it
reads as a shipped model there), so it can be compared with the installed one on validation data before it is
measured and installed.

Then `python benchmarks/report.py` regenerates the README's model card section from the card.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

NAME = "digits-reader"  # the card's name; its version is the build date
DEFAULT_CONFIG, DEFAULT_SEED = ROOT / "configs" / "reader.json", 1  # the recipe and seed built when none is named
DEFAULT_DESTINATION = ROOT / "src" / "digits" / "shipped"
FLOOR = 0.9965  # MNIST test accuracy a shipped model reaches at least (issue 12; tests/test_shipped.py checks the card)


def command(args, run: Path) -> list[str]:
    return ["digits", "train", "--config", relative(args.config), "--seed", str(args.seed), "--out", relative(run),
            "--no-tensorboard"]


def rebuild_command(args, *more: str) -> str:
    """The command that builds this model again: `python scripts/ship_model.py`, with --config and --seed where they
    are not the defaults (a recipe other than configs/reader.json, or another seed, is rebuilt as it was built), then
    `more` (--add-member SEED: the seed is the member's)."""
    from digits import runs

    chosen = [] if relative(args.config) == relative(DEFAULT_CONFIG) else ["--config", relative(args.config)]
    chosen += [] if more or args.seed == DEFAULT_SEED else ["--seed", str(args.seed)]
    return " ".join([runs.BUILD_SHIPPED, *map(shlex.quote, [*chosen, *more])])


def relative(path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run_step(argv: list[str]) -> None:
    run_steps([argv])


def run_steps(steps: list[list[str]]) -> None:
    """Run the commands side by side (each benchmark is one process that renders its pictures on one core) and
    wait for all; the first that failed stops the build (the others are stopped too)."""
    running = []
    for argv in steps:
        print("$ " + " ".join(argv), file=sys.stderr, flush=True)
        running.append((argv, subprocess.Popen(argv, cwd=ROOT)))
    while running:
        for argv, process in list(running):
            if process.poll() is None:
                continue
            running.remove((argv, process))
            if process.returncode != 0:
                for _, other in running:
                    other.kill()
                    other.wait()
                sys.exit(f"ship_model: `{' '.join(argv)}` failed with exit status {process.returncode}")
        time.sleep(0.2)


def test_accuracy(model: Path) -> float:
    """MNIST test accuracy of an ONNX file (a run's copy, or a staged shipped model), read through the reading half
    (Predictor)."""
    from digits import data
    from digits.predictor import Predictor

    predictor = Predictor(model)
    dataset = data.load_dataset("mnist")
    return float((predictor.predict_proba(dataset.x_test).argmax(1) == dataset.y_test).mean())


def parameters(model: Path) -> int:
    """How many numbers the ONNX file's weights hold."""
    import numpy as np
    import onnx

    return int(sum(np.prod(tensor.dims, dtype=np.int64) for tensor in onnx.load(str(model)).graph.initializer))


def figures(accuracy: float, real: dict, rejection: dict) -> dict:
    """The card's figures, from the benchmarks' JSON (the shipped run is the only recipe measured)."""
    (measured,) = rejection["recipes"].values()
    digits, non_digits = measured["digits"], measured["non_digits"]
    return {
        "mnist_test_accuracy": accuracy,
        "mnist_test_ece": digits["mnist-test"]["ece"],
        "photos_accuracy": real["rendered_accuracy"],
        "photos_ece": real["rendered_ece"],
        "photos_kept_fraction": real["kept_fraction"],
        "strips_read_whole": real["strip_read_rate"],
        **({"touching_strips_read_whole": real["touching_read_rate"]} if "touching_read_rate" in real else {}),
        **{figure: real[key] for figure, key in (("strips_digits_right", "strip_digits_right_rate"),
                                                 ("touching_strips_digits_right", "touching_digits_right_rate"))
           if real.get(key) is not None},  # refusal aside: comparable with cards measured before it counted
        "single_digits_split_in_auto_mode": real.get("auto_split_rate"),
        "mnist_refused": digits["mnist-test"]["refused"],
        "photos_refused": digits["photos"]["refused"],
        "accuracy_accepted": digits["mnist-test"]["accuracy_accepted"],
        "non_digits_refused": {name: row["refused"] for name, row in non_digits.items()},
        "non_digits_auroc": {name: min(row["auroc_vs_mnist"], row["auroc_vs_photos"]) for name, row in non_digits.items()},
        **({"non_digits_refused_auto": {name: row["refused_auto"] for name, row in non_digits.items()},
            "photos_refused_auto": digits["photos"]["refused_auto"]}
           if "refused_auto" in digits["photos"] else {}),  # read as `digits predict` reads a file (since 2026-12-04)
        "lookalikes_refused": {name: row["refused"] for name, row in measured["lookalikes"].items()},
        "rejection_targets_met": measured["met"],
        "benchmark_samples": {"photos": real["samples"], "strips": real["strips"], "rejection": rejection["samples"],
                              **({"rejection_auto": rejection["auto"]} if "auto" in rejection else {})},
    }


def identity(card: dict) -> str:
    """What tells two shipped models apart: the model file's SHA-256, and its sequence model's where it has one."""
    return card.get("sha256", "") + ("+" + card["sequence"]["sha256"] if card.get("sequence") else "")


def version_name(day: str, destination: Path, same: str) -> str:
    """The card's name: `digits-reader-<build date>`; where the model installed in `destination` is another one
    built the same day (another `identity`, `same` here), the next number after its name (`-<date>.2`, `.3`...),
    so that two models never share one."""
    name, card = f"{NAME}-{day}", destination / "card.json"
    taken = json.loads(card.read_text()) if card.is_file() else {}
    taken_name = taken.get("name", "")
    number = taken_name.removeprefix(name + ".")
    if taken_name != name and not (taken_name.startswith(name + ".") and number.isdigit()):
        return name  # nothing installed today
    if identity(taken) == same:
        return taken_name  # the same files installed again keep their name
    return f"{name}.{2 if taken_name == name else int(number) + 1}"


def sequence_entry(path: Path, args) -> dict:
    """The card's record of the sequence model at `path`: file, SHA-256, size, parameters, input shape, how reading
    weighs it (`weighing`), the commands that made it (--sequence-command, in order) and the file it came from."""
    from digits import runs, sequence

    return {"file": "sequence.onnx", "sha256": runs.sha256(path), "size_bytes": path.stat().st_size,
            "parameters": parameters(path), "input": [sequence.HEIGHT, sequence.WIDTH, 1], **weighing(),
            "commands": args.sequence_commands or [], "source": relative(args.sequence)}


def weighing() -> dict:
    """How reading weighs the sequence model against the lattice (digits.sequence), as the card records it."""
    from digits import sequence

    return {"weight": sequence.WEIGHT, "margin": sequence.MARGIN}


def place(source: Path, target: Path) -> bool:
    """Copy `source` to `target` unless it holds the same bytes already, which then keeps its time (--reuse reads
    a result newer than the file as measured on it); True if it did hold them."""
    from digits import runs

    same = target.is_file() and runs.sha256(target) == runs.sha256(source)
    if not same:
        shutil.copyfile(source, target)
    return same


def member_run(work: Path, config, seed: int, own: bool) -> Path:
    """Where --add-member trains (or finds) a member: work/run-seedSEED for the shipped model's recipe,
    work/run-RECIPE-seedSEED for another (seed 2 of two recipes never share a directory)."""
    return work / (f"run-seed{seed}" if own else f"run-{Path(config).stem}-seed{seed}")


def source(args) -> Path:
    """Where the first member and its card are: --first's staging directory, else --destination (the installed)."""
    return Path(getattr(args, "first", None) or args.destination)


def stage(args, work: Path, model: Path, card: dict) -> tuple[Path, dict]:
    """(the staged model file, its card): `model` copied into work/staged with `card` beside it, so that it reads as
    the shipped model will, with --sequence's file as sequence.onnx, listed in the card; without --sequence, the
    sequence model `card` lists stays (a refit never drops it unasked), its entry saying how reading weighs it now."""
    from digits import files, runs

    staged = work / "staged"
    staged.mkdir(parents=True, exist_ok=True)

    keep = None if args.sequence else runs.shipped_sequence(source(args), card)
    card = {key: value for key, value in card.items() if key != "sequence" or keep is not None}
    place(model, staged / "model.onnx")
    if args.sequence or keep:
        place(Path(args.sequence or keep), staged / "sequence.onnx")
    else:
        (staged / "sequence.onnx").unlink(missing_ok=True)
    if args.sequence:
        card["sequence"] = sequence_entry(staged / "sequence.onnx", args)
    elif keep:  # the same file, read as reading reads it now (a rule written before, e.g. "sure", is dropped)
        card["sequence"] = {**{key: value for key, value in card["sequence"].items() if key != "sure"}, **weighing()}
    written = staged / "card.json"
    if not (written.is_file() and json.loads(written.read_text()) == card):
        files.write_json(written, card)
    return staged / "model.onnx", card


def with_soft_above(args, work: Path, model: Path, card: dict) -> dict:
    """`card` with the soft_above `scripts/tune_soft.py` chooses for `model` (a new build or ensemble: read with
    its own calibration) on --soft-digits validation digits; its results go to work/staged/soft_tune.json, reused
    with --reuse when newer than the model file."""
    out = work / "staged" / "soft_tune.json"
    if args.reuse and out.is_file() and out.stat().st_mtime > model.stat().st_mtime:
        print(f"reusing {relative(out)} (chosen for this model)", file=sys.stderr)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        run_step([sys.executable, "scripts/tune_soft.py", "--model", relative(model), "--digits",
                  str(args.soft_digits), "--out", relative(out)])
    result = json.loads(out.read_text())
    chosen = next(iter(result["models"].values()))["chosen"]
    return {**card, "calibration": {**card["calibration"], "soft_above": None if chosen == "never" else float(chosen),
                                    "soft_above_chosen": {"by": result["command"], "results": "soft_tune.json",
                                                          "measured": result["machine"]["measured"]}}}


def check_floor(accuracy: float, model: Path) -> None:
    """A model under FLOOR on MNIST's test set (issue 12: what a shipped model must reach) is not installed: one line
    that says so, its measurements left beside it."""
    if accuracy < FLOOR:
        sys.exit(f"ship_model: error: {relative(model)} reads MNIST's test set at {accuracy:.2%}, under the "
                 f"{FLOOR:.2%} a shipped model must reach; not installed (its measurements are beside it)")


def install(model: Path, card: dict, destination: Path, previous: Path | None = None) -> None:
    """Put the model (and its sequence model, where the card lists one), card.json and MODEL_CARD.md into
    `destination` together (new directory, then swap). With `previous`, the card of the model it replaces is kept
    there first (the README's card shows its figures beside the new one's); not when the model file stays the same
    (--keep)."""
    from report import model_card

    from digits import files

    old_card = destination / "card.json"
    if previous is not None and old_card.is_file():
        replaced = json.loads(old_card.read_text())
        if replaced.get("sha256") != card["sha256"]:
            files.write_json(previous, replaced)

    staging = destination.with_name(destination.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copyfile(model, staging / "model.onnx")
    if card.get("sequence"):
        shutil.copyfile(model.parent / card["sequence"]["file"], staging / "sequence.onnx")
    files.write_json(staging / "card.json", card)
    (staging / "MODEL_CARD.md").write_text("\n".join(model_card(card)) + "\n")
    old = destination.with_name(destination.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if destination.exists():
        destination.rename(old)
    staging.rename(destination)
    shutil.rmtree(old, ignore_errors=True)


def validation_fit(reader, recipe, x_val, y_val) -> dict:
    """What training stores to read honestly (`calibration.fit`: temperature and the energy threshold), fitted for
    `reader` (an ONNX backend with logits) on its recipe's validation split and, where the recipe has Outlier
    Exposure, the non-digits training would report against."""
    from digits import backends, calibration, train

    _, outliers = train.non_digit_images(recipe, None, x_val)  # None without Outlier Exposure
    raw, logits = ([None if images is None else backends.in_batches(function, images) for images in (x_val, outliers)]
                   for function in (reader, reader.logits))
    return calibration.fit(raw[0], y_val, recipe.reject_rate, raw[1], logits[0], logits[1])


def refit(args, work: Path) -> tuple[Path, dict]:
    """--refit: (the staged model file, its card so far), in work/refit; see the module doc."""
    import numpy as np

    from digits import backends, config, data, export, files, runs, train
    from digits.images import to_model_input

    source = runs.shipped_model(Path(args.destination))
    card = runs.read_card(Path(args.destination))
    staged = work / "refit"
    staged.mkdir(parents=True, exist_ok=True)
    model = staged / "model.onnx"
    shutil.copyfile(source, model)
    added = export.add_logits_output(model)  # False: the shipped file has it already (refit before)
    recipe = config.from_run(card["config"])
    dataset, _, _, x_val, y_val = data.training_arrays(recipe)
    if dataset.checksum != card["dataset"]["checksum"]:
        sys.exit(f"ship_model: error: the {dataset.name} files found differ from those the shipped model was "
                 "trained on")
    before, after = (backends.load("onnx", path) for path in (source, model))
    x_test = to_model_input(dataset.x_test)
    if not np.array_equal(backends.in_batches(before, x_test), backends.in_batches(after, x_test)):
        sys.exit("ship_model: error: the model with its logits output answers differently; report this as a bug")
    fitted = validation_fit(after, recipe, x_val, y_val)
    stored = card["calibration"]  # a card refit before holds the top probability's threshold beside the energy's
    top = stored.get("max_probability_below", stored["reject_below"])
    if abs(fitted["temperature"] - stored["temperature"]) > 1e-3 or abs(fitted["max_probability_below"] - top) > 1e-4:
        sys.exit(f"ship_model: error: the validation split rebuilt from the card gives temperature "
                 f"{fitted['temperature']:.5f} and top-probability threshold {fitted['max_probability_below']:.5f}, "
                 f"not the stored {stored['temperature']:.5f} and {top:.5f}: not the same split")
    refitted = {"from": card["name"], "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "what": ("logits added as a second output (weights unchanged); calibration fitted again (energy)"
                         if added else "the same file, calibration fitted again (energy), measured again by the "
                         "reading half of this version"),
                "command": "python scripts/ship_model.py --refit"}
    fitted.update({key: value for key, value in stored.items() if key in train.KEPT_ON_REFIT})
    card = {**card, "sha256": runs.sha256(model), "size_bytes": model.stat().st_size,
            "calibration": fitted, "refit": refitted}
    files.write_json(staged / "card.json", card)  # the staged file reads as a shipped model (its card beside it)
    return model, card


def add_member(args, work: Path, run: Path | None = None) -> tuple[Path, dict]:
    """--add-member SEED: (the staged model file, its card so far), in work/ensemble: the shipped model and the run
    of --config trained with SEED (work/run-seedSEED for the shipped model's recipe, work/run-RECIPE-seedSEED for
    another; trained here unless finished), averaged into one file (`digits.export.average_onnx`: the mean of their
    logits) and calibrated on the shipped recipe's validation split, as a trained run is (`calibration.fit`, the
    energy score); a member of another recipe must hold out the same split. `run`: the member's run directory, where
    it is not in work (scripts/weigh_members.py). With --first DIR the first member is the model staged there, its
    card's rebuild command then staging it there again. See the module doc."""
    from digits import backends, config, data, export, files, runs

    from report import member_recipes

    first_dir = source(args)
    card = runs.read_card(first_dir)
    if getattr(args, "first", None):  # a staged build has no name yet: its recipe and seed
        card = {**card, "name": card.get("name") or f"{Path(card['recipe']).stem} seed {card['seed']}",
                "rebuild": f"{card['rebuild']} --work {relative(first_dir.parent)} --stage-only"}
    recipe_path = relative(args.config)
    held = list(zip(member_recipes(card), (member["seed"] for member in card.get("members", [card]))))
    if (recipe_path, args.add_member) in held:
        sys.exit(f"ship_model: error: the shipped model already holds seed {args.add_member} of {recipe_path}; "
                 "pick another seed")
    own = recipe_path == card["recipe"]  # a member of the shipped model's recipe, or of another one
    if not own:  # calibrated on the first member's validation split: every member must have been kept off it
        split = config.load(args.config)
        first = config.from_run(card["config"])
        if (split.dataset, split.limit, split.validation_split) != (first.dataset, first.limit, first.validation_split):
            sys.exit(f"ship_model: error: {recipe_path} holds out another validation split than {card['recipe']} "
                     "(dataset, limit or validation_split differ), on which the ensemble is calibrated; "
                     "add a member of a recipe with the same split")
    run = run or member_run(work, args.config, args.add_member, own)
    member_args = argparse.Namespace(**{**vars(args), "seed": args.add_member})
    trained_here = not (run / "metrics.json").is_file()
    if trained_here:
        run_step(command(member_args, run))
    else:
        check_recipe(member_args, run)
    metrics = json.loads((run / "metrics.json").read_text())
    if metrics["dataset"]["checksum"] != card["dataset"]["checksum"]:
        sys.exit(f"ship_model: error: {relative(run)} was trained on other MNIST files than the shipped model")
    staged = work / "ensemble"
    staged.mkdir(parents=True, exist_ok=True)
    model = staged / "model.onnx"
    share = getattr(args, "member_weight", None)  # the new member's share of the logits; None: an equal mean
    averaged = staged / "model.new.onnx"
    export.average_onnx([runs.shipped_model(first_dir), run / "model.onnx"], averaged,
                        None if share is None else [1 - share, share])
    same = place(averaged, model)  # the same file staged again keeps its time (--reuse)
    averaged.unlink()
    before = json.loads((staged / "card.json").read_text()) if same and (staged / "card.json").is_file() else {}
    more = ["--add-member", str(args.add_member), *([] if share is None else ["--member-weight", str(share)]),
            *(["--first", relative(first_dir), "--work", relative(work)] if getattr(args, "first", None) else [])]
    recipe = config.from_run(card["config"])
    _, _, _, x_val, y_val = data.training_arrays(recipe)
    fitted = validation_fit(backends.load("onnx", model), recipe, x_val, y_val)
    first = {"recipe": card["recipe"], **{key: card[key] for key in ("seed", "command", "training_seconds",
                                                                      "training_test_accuracy", "sha256")
                                          if key in card}}
    member = {"recipe": recipe_path, "seed": args.add_member, "command": " ".join(command(member_args, run)),
              "training_seconds": metrics.get("training_seconds"), "training_test_accuracy": metrics["test_accuracy"],
              "sha256": runs.sha256(run / "model.onnx"),
              **({"trained_on": machine_name()} if trained_here else {}),  # a reused run's machine is not known
              **({} if share is None else {"share": share})}
    card = {**card, "sha256": runs.sha256(model), "size_bytes": model.stat().st_size, "parameters": parameters(model),
            "calibration": fitted, "members": card.get("members", [first]) + [member],
            "rebuild": f"{card['rebuild']} && {rebuild_command(args, *more)}",
            "ensemble": {"from": card["name"],  # the same file staged again keeps its date (and its measurements)
                         "created": before.get("ensemble", {}).get("created")
                         or datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "what": f"seed {args.add_member}{'' if own else f' of {recipe_path}'} added: the members' "
                                 + ("logits averaged" if share is None else
                                    f"logits averaged with weights {1 - share:g} and {share:g}")
                                 + ", calibrated again",
                         "command": rebuild_command(args, *more)}}
    for key in ("remeasured", "refit", "figures", "test_accuracy"):  # the single model's: measured again at install
        card.pop(key, None)
    card["name"] = f"{card['name']} + {'' if own else f'{Path(args.config).stem} '}seed {args.add_member} (staged)"
    # the staged name; install names it by its build date
    sequence_file = runs.shipped_sequence(first_dir, card)  # read beside it as the package reads it
    if sequence_file:
        place(sequence_file, staged / "sequence.onnx")
    if card != before:  # the staged file reads as a shipped model (its card beside it)
        files.write_json(staged / "card.json", card)
    return model, card


def machine_name() -> str:
    from common import machine

    found = machine()
    return f"{found['cpu']}, {found['cores']} cores"


def build_card(args, run: Path) -> dict:
    """The card of a model built from `run` (a finished `digits train` run of --config and --seed), before it is
    measured: file, recipe, training record, calibration; the sequence model installed in --destination is kept
    (`stage` copies it beside the new model), so a new build never drops it unasked."""
    from digits import runs

    metrics = json.loads((run / "metrics.json").read_text())
    model = run / "model.onnx"
    installed = runs.read_card(Path(args.destination)) if (Path(args.destination) / "card.json").is_file() else {}
    return {"file": "model.onnx", "format": "onnx", "sha256": runs.sha256(model), "size_bytes": model.stat().st_size,
            "parameters": parameters(model), "recipe": relative(args.config), "seed": args.seed,
            "config": json.loads((run / "config.json").read_text()), "command": " ".join(command(args, run)),
            "rebuild": rebuild_command(args), "dataset": metrics["dataset"],
            "calibration": metrics["calibration"], "training_test_accuracy": metrics["test_accuracy"],
            "training_seconds": metrics.get("training_seconds"),
            "training": {key: metrics.get(key) for key in ("epochs", "train_images", "validation_images", "precision",
                                                            "test_ece", "versions")},
            **({"sequence": installed["sequence"]} if installed.get("sequence") else {})}


def check_recipe(args, run: Path) -> None:
    """A finished run in --work is shipped only if it was trained with the recipe and seed given: otherwise
    the card would name one recipe for a model trained with another."""
    from digits import config

    expected = config.from_dict({"seed": args.seed}, config.load(args.config)).to_dict()  # as `digits train --seed`
    if config.from_run(json.loads((run / "config.json").read_text())).to_dict() != expected:  # a run from before a
        # setting existed was trained with its default
        sys.exit(f"ship_model: error: {relative(run)} was trained with another recipe or seed than {relative(args.config)} "
                 f"--seed {args.seed}; move it away, or pass the --config and --seed it was trained with")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help=f"(default: {relative(DEFAULT_CONFIG)})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"(default: {DEFAULT_SEED})")
    parser.add_argument("--work", default=str(ROOT / "build" / "shipped"), help="(default: build/shipped)")
    parser.add_argument("--samples", type=int, default=2000, help="rejection.py --samples (default: 2000)")
    parser.add_argument("--photos", type=int, default=10_000, help="real_images.py --samples (default: 10000)")
    parser.add_argument("--strips", type=int, default=1000, help="real_images.py --strips (default: 1000)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep benchmark results already beside the staged model (--work/staged) that were "
                             "measured on it")
    parser.add_argument("--refit", action="store_true",
                        help="no training: give the shipped model its logits and calibrate it again (module doc)")
    parser.add_argument("--keep", action="store_true",
                        help="no training, no refit: the shipped model as it is, measured again (module doc)")
    parser.add_argument("--reason", help="--keep: why it is measured again (e.g. what changed in reading), "
                        "recorded in the card")
    parser.add_argument("--add-member", type=int, metavar="SEED",
                        help="ship the average of the shipped model and the recipe trained with SEED (module doc)")
    parser.add_argument("--member-weight", type=float, metavar="W",
                        help="--add-member: the new member's share of the averaged logits, between 0 and 1 (the "
                             "model shipped now has the rest; default: an equal mean)")
    parser.add_argument("--first", metavar="DIR",
                        help="--add-member: the first member is the model staged in DIR (a --stage-only build's "
                             "WORK/staged) rather than the installed one (module doc)")
    parser.add_argument("--soft-digits", type=int, default=1600,
                        help="validation digits scripts/tune_soft.py chooses a new model's soft_above on (default: "
                             "1600)")
    parser.add_argument("--stage-only", action="store_true",
                        help="stop once the model is staged with its card in --work/staged, before it is measured "
                             "(to compare it with the shipped one on validation data first)")
    parser.add_argument("--sequence", help="an ONNX sequence model to ship beside the model (module doc)")
    parser.add_argument("--sequence-command", action="append", dest="sequence_commands",
                        help="a command that made the sequence model, recorded in the card (repeat, in order)")
    parser.add_argument("--destination", default=str(DEFAULT_DESTINATION),
                        help="where the package's copy goes (default: src/digits/shipped)")
    args = parser.parse_args()

    from common import machine
    from report import PREVIOUS_CARD, model_card

    from digits import runs

    work, started = Path(args.work), time.perf_counter()
    run = work / "run"
    if sum(map(bool, (args.refit, args.keep, args.add_member is not None))) > 1:
        sys.exit("ship_model: error: --refit, --keep and --add-member exclude each other; pass one")
    if args.member_weight is not None and (args.add_member is None or not 0 < args.member_weight < 1):
        sys.exit("ship_model: error: --member-weight goes with --add-member and lies between 0 and 1 (e.g. 0.6)")
    if args.first and (args.add_member is None or not (Path(args.first) / "card.json").is_file()
                       or Path(args.first).resolve() in {(work / name).resolve() for name in ("staged", "ensemble")}):
        sys.exit(f"ship_model: error: --first {args.first} goes with --add-member and names a staged model with its "
                 "card (a --stage-only build's WORK/staged) outside this --work; e.g. --work build/v11pair")
    if args.reason and not args.keep:
        sys.exit("ship_model: error: --reason goes with --keep (a refit or a build records its own)")
    if args.sequence and not Path(args.sequence).is_file():
        sys.exit(f"ship_model: error: --sequence {args.sequence} is no file; write one with "
                 "`python scripts/sequence_experiment.py export`")
    if args.refit:
        model, staged_card = refit(args, work)
    elif args.add_member is not None:
        model, staged_card = add_member(args, work)
    elif args.keep:
        card = runs.read_card(Path(args.destination))
        changed = {"from": card["name"], "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "what": "the same model and calibration, measured again" +
                           (", with a sequence model settling a number's cuts" if args.sequence else "") +
                           (f": {args.reason}" if args.reason else ""),
                   "command": " ".join(["python scripts/ship_model.py --keep"] +
                                       ([f"--sequence {relative(args.sequence)}"] if args.sequence else []) +
                                       ([f"--reason {shlex.quote(args.reason)}"] if args.reason else []))}
        model, staged_card = runs.shipped_model(Path(args.destination)), {**card, "remeasured": changed}
    else:
        if (run / "metrics.json").is_file():
            check_recipe(args, run)
        else:
            run_step(command(args, run))
        model, staged_card = run / "model.onnx", build_card(args, run)
    if not (args.keep or args.refit):  # a new file: its own soft_above (a kept or refit one keeps the card's)
        staged_card = with_soft_above(args, work, model, staged_card)
    model, staged_card = stage(args, work, model, staged_card)
    if args.stage_only:
        print(f"staged {relative(model)} with its card beside it; not measured or installed", file=sys.stderr)
        return
    staged = model.parent
    real_json, rejection_json = staged / "real_images.json", staged / "rejection.json"  # beside the staged model
    measured = max((staged / name).stat().st_mtime for name in ("model.onnx", "card.json"))
    steps = []
    for result, step in ((real_json, ["benchmarks/real_images.py", "--run", relative(model), "--samples",
                                      str(args.photos), "--strips", str(args.strips), "--out", relative(real_json)]),
                         (rejection_json, ["benchmarks/rejection.py", "--run", relative(model), "--samples",
                                           str(args.samples), "--out", relative(rejection_json)])):
        if args.reuse and result.is_file() and result.stat().st_mtime > measured:
            print(f"reusing {relative(result)} (measured on this model)", file=sys.stderr)
            continue
        steps.append([sys.executable, *step])
    run_steps(steps)
    built = machine()
    accuracy = test_accuracy(model)
    check_floor(accuracy, model)
    name = version_name(built["measured"][:10], Path(args.destination), identity(staged_card))
    card = {"name": name} | staged_card | {"name": name, "test_accuracy": accuracy,  # the name first, as before
            "figures": figures(accuracy, json.loads(real_json.read_text()), json.loads(rejection_json.read_text())),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": built}
    package = Path(args.destination).resolve() == DEFAULT_DESTINATION.resolve()  # not a copy elsewhere
    install(model, card, Path(args.destination), PREVIOUS_CARD if package else None)
    print("\n".join(model_card(card)))
    what = ("refit" if args.refit else "kept" if args.keep else f"with seed {args.add_member} added"
            if args.add_member is not None else f"built from {relative(run)}")
    print(f"installed {args.destination}/model.onnx ({card['size_bytes'] / 2**20:.1f} MiB), {what}, and its card "
          f"in {time.perf_counter() - started:.0f} s; now run `python benchmarks/report.py`", file=sys.stderr)


if __name__ == "__main__":
    main()
