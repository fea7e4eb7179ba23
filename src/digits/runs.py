"""The run directory: what it holds, how it is written, how a name becomes a model to load.

A run directory is what `digits train` (and `digits ensemble`) leave behind:

    RUN/model.keras      the Keras model (training half: evaluate, export, ensemble)
    RUN/model.onnx       its portable copy, written when training finishes (reading half)
    RUN/model.tflite     a LiteRT copy, where the converter ran
    RUN/config.json      the recipe that built it
    RUN/history.json     per-epoch figures
    RUN/metrics.json     test metrics, the data checksum, versions; written last: a complete run

It is built in a hidden `.partial-<key>` directory beside the target and renamed into place
in one step (`commit`), so a reader never sees half a run. `resolve(name)` turns what a user
typed into a path, checked, or a `ValueError` that names the problem and the fix: a run
directory or exported model file when one is named, else the latest run under `runs/`, else
the shipped model (`digits/shipped/model.onnx`, the pretrained reader the package carries,
checked against the SHA-256 in its card `digits/shipped/card.json`). `describe(source)` says
in words which one that is. This module imports no framework: the reading half uses it to
find models, the training half to write them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import files

RUN_FILES = ("model.keras", "config.json", "metrics.json", "history.json")  # what a complete run holds
PORTABLE = {"onnx": "model.onnx", "litert": "model.tflite"}  # backend -> the run's portable copy
EXPORT_FORMATS = ("savedmodel", "onnx", "litert")  # what `digits export` writes (export.py)
MODEL_SUFFIXES = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert"}  # exported file -> backend
LEFTOVERS = ("history.csv", "best.weights.h5", "best.json")  # training's working files, removed on commit
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"  # the pretrained reader the package carries
SHIPPED_MODEL, SHIPPED_CARD = "model.onnx", "card.json"
BUILD_SHIPPED = "python scripts/ship_model.py"  # rebuilds it from a source checkout (train, measure, card, copy)


@dataclass
class Run:
    """A finished run: where it is, its history and metrics (what `train` and `ensemble` return)."""

    run_dir: Path
    history: dict[str, list[float]]
    metrics: dict
    resumed_from_epoch: int = 0  # 0 for a fresh run


@dataclass
class RunInfo:
    """What a model carries: its source (run directory or file), recipe and metrics."""

    run_dir: Path
    config: dict
    metrics: dict
    files: dict[str, Path] = field(default_factory=dict)  # backend -> model file
    sequence: Path | None = None  # the sequence model that settles a number's cuts (digits.sequence), if any

    @property
    def class_names(self) -> list[str]:
        names = self.metrics.get("dataset", {}).get("class_names") if isinstance(self.metrics, dict) else None
        return list(names) if names else [str(digit) for digit in range(10)]


def runs_root(runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or os.environ.get("DIGITS_RUNS_DIR") or "runs")


def finished_runs(runs_dir: str | Path | None = None) -> list[Path]:
    """Every finished run under `runs_dir` (work-in-progress directories excluded)."""
    root = runs_root(runs_dir)
    return [path.parent for path in root.glob("*/metrics.json") if not path.parent.name.startswith(".")]


def latest_run(runs_dir: str | Path | None = None) -> Path:
    """The most recently finished run under `runs_dir`."""
    finished = finished_runs(runs_dir)
    if not finished:
        raise ValueError(f"no trained model found in {runs_root(runs_dir)}/; train one first with `python train.py` "
                         "or `digits train`, or name a run directory")
    return max(finished, key=lambda run: (run / "metrics.json").stat().st_mtime)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(directory: Path | None = None) -> dict:
    """The shipped model's card (recipe, calibration, figures, SHA-256), or a one-line ValueError."""
    card = Path(directory or SHIPPED_DIR) / SHIPPED_CARD
    try:
        value = json.loads(card.read_text())
    except FileNotFoundError:
        raise ValueError(f"no trained model found: this source tree has no shipped model ({card} is missing); "
                         f"build it with `{BUILD_SHIPPED}`, or train one with `python train.py`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the shipped model card {card} is unreadable ({error}): the install is damaged; "
                         "reinstall digits (pip install --force-reinstall digits)") from None
    if not isinstance(value, dict) or not isinstance(value.get("sha256"), str):
        raise ValueError(f"the shipped model card {card} holds no SHA-256: the install is damaged; "
                         "reinstall digits (pip install --force-reinstall digits)")
    return value


def shipped_model(directory: Path | None = None) -> Path:
    """The shipped model file, checked against its card's SHA-256; a one-line ValueError otherwise."""
    return _checked_shipped(directory)[0]


def _checked_shipped(directory: Path | None = None) -> tuple[Path, dict]:
    """(the shipped model file, its card), the file checked against the card's SHA-256."""
    directory = Path(directory or SHIPPED_DIR)
    model = directory / SHIPPED_MODEL
    card = read_card(directory)
    if not model.is_file():
        raise ValueError(f"no trained model found: this source tree has no shipped model ({model} is missing); "
                         f"build it with `{BUILD_SHIPPED}`, or train one with `python train.py`")
    if sha256(model) != card["sha256"]:
        raise ValueError(f"the shipped model {model} fails its SHA-256 check (a damaged install); "
                         "reinstall digits (pip install --force-reinstall digits)")
    return model, card


def shipped_sequence(directory: Path | None = None, card: dict | None = None) -> Path | None:
    """The shipped sequence model (`digits.sequence`) where the card lists one, checked against its SHA-256; None
    where it lists none; a one-line ValueError where the file is missing or damaged."""
    directory = Path(directory or SHIPPED_DIR)
    entry = (card if card is not None else read_card(directory)).get("sequence")
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("sha256"), str):
        raise ValueError(f"the shipped model card {directory / SHIPPED_CARD} lists a sequence model without its file "
                         "and SHA-256: the install is damaged; reinstall digits (pip install --force-reinstall digits)")
    path = directory / entry["file"]
    if not path.is_file() or sha256(path) != entry["sha256"]:
        state = "is missing" if not path.is_file() else "fails its SHA-256 check"
        raise ValueError(f"the shipped sequence model {path} {state} (a damaged install); "
                         "reinstall digits (pip install --force-reinstall digits)")
    return path


def is_shipped(path: str | Path) -> bool:
    """Is `path` a shipped model file (a model.onnx with a card beside it)?"""
    path = Path(path)
    return path.name == SHIPPED_MODEL and (path.parent / SHIPPED_CARD).is_file()


def check_run(run_dir: str | Path) -> Path:
    """Return `run_dir` if it is a complete run directory, else raise a one-line ValueError."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ValueError(f"run directory {run_dir} does not exist; pass a directory that `digits train` wrote")
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file, not a run directory; pass the directory that holds model.keras")
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing and (run_dir / SHIPPED_CARD).is_file():
        raise ValueError(f"{run_dir} holds the shipped model, not a run directory; pass its {SHIPPED_MODEL} to "
                         "read with it, or a run that `digits train` wrote (the shipped model is rebuilt by "
                         f"`{BUILD_SHIPPED}`)")
    if missing:
        raise ValueError(f"run directory {run_dir} is incomplete (missing {', '.join(missing)}); "
                         "its training did not finish: run the same `digits train` command again to resume it")
    return run_dir


def check_model_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist; pass a run directory or an exported model file")
    if path.suffix not in MODEL_SUFFIXES:
        raise ValueError(f"{path} is not a model file digits can load; "
                         f"pass a run directory or a {', '.join(MODEL_SUFFIXES)} file")
    return path


def is_model(path: str | Path) -> bool:
    """Does `path` name a model (a run directory or an exported file) rather than, say, a picture?"""
    path = Path(path)
    return (path.is_dir() and (path / "config.json").is_file()) or path.suffix in MODEL_SUFFIXES


def resolve(name: str | Path | None = None, runs_dir: str | Path | None = None) -> Path:
    """A run directory or model file, checked: `name` if given, else the latest run under `runs_dir`, else
    the shipped model."""
    if name is None:
        return latest_run(runs_dir) if finished_runs(runs_dir) else shipped_model()
    path = Path(name)
    return check_model_file(path) if path.is_file() else check_run(path)


def resolve_run(name: str | Path | None = None, runs_dir: str | Path | None = None) -> Path:
    """Like `resolve`, but only a run directory will do (evaluate on the training stack, export, ensemble)."""
    if name is not None and Path(name).is_file():
        raise ValueError(f"{name} is a model file; this command needs the run directory it was exported from")
    return resolve(name, runs_dir) if name is not None else latest_run(runs_dir)


def describe(source: str | Path, named: bool = True) -> str:
    """Which model `source` is, in words: "the shipped model ...", "the latest run ...", "run ..." or "model ...".
    A model file with a card beside it elsewhere than in the package (a build staged by scripts/ship_model.py) is
    named by its path, with its card's name and figure."""
    source = Path(source)
    if is_shipped(source):
        card = read_card(source.parent)
        accuracy = card.get("figures", {}).get("mnist_test_accuracy")
        figure = f", {accuracy:.2%} on the MNIST test set" if isinstance(accuracy, float) else ""
        if source.parent.resolve() != Path(SHIPPED_DIR).resolve():
            return f"model {source} ({card.get('name', 'a card')} beside it{figure or ', not measured yet'})"
        return (f"the shipped model {card.get('name', 'digits reader')}{figure} "
                "(train your own with `python train.py`; it is then used instead)")
    kind = "run" if source.is_dir() else "model"
    return f"{kind} {source}" if named else f"the latest run {source}"


def read_json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is unreadable or not valid JSON ({error}); the run is damaged: re-train it") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds {type(value).__name__}, not a JSON object; the run is damaged: re-train it")
    return value


def model_files(run_dir: Path) -> dict[str, Path]:
    """backend -> file for every model file the run holds (keras always; portable copies where written)."""
    held = {backend: run_dir / name for backend, name in PORTABLE.items() if (run_dir / name).is_file()}
    return {**held, "keras": run_dir / "model.keras"}


def load_info(source: str | Path) -> RunInfo:
    """A run directory's recipe, metrics and model files; or an exported file's, from its sidecar."""
    source = Path(source)
    if is_shipped(source):
        _, card = _checked_shipped(source.parent)  # its checksum, before anything trusts it
        return RunInfo(source, card.get("config", {}), {"dataset": card.get("dataset", {"name": "mnist"}), **card},
                       {"onnx": source}, shipped_sequence(source.parent, card))
    if source.is_file() and source.name in (*PORTABLE.values(), "model.keras") and (source.parent / "metrics.json").is_file():
        run = load_info(source.parent)  # a run's own model file: it carries the run's recipe and calibration
        return RunInfo(source, run.config, run.metrics, {MODEL_SUFFIXES[source.suffix]: source})
    if source.is_file():
        check_model_file(source)
        sidecar = source.with_name(source.name + ".json")
        details = check_metrics(sidecar) if sidecar.is_file() else {}
        return RunInfo(source, details.get("config", {}), {"dataset": details.get("dataset", {"name": "mnist"}),
                                                            **details},
                       {MODEL_SUFFIXES[source.suffix]: source})
    run_dir = check_run(source)
    return RunInfo(run_dir, read_json(run_dir / "config.json"), check_metrics(run_dir / "metrics.json"),
                   model_files(run_dir))


def check_metrics(path: Path) -> dict:
    """metrics.json, with what reading relies on checked: class names, calibration; a one-line ValueError."""
    metrics = read_json(path)
    damaged = f"{path} is damaged"
    names = (metrics.get("dataset") or {}).get("class_names") if isinstance(metrics.get("dataset"), dict) else None
    if not isinstance(metrics.get("dataset", {}), dict) or not (
            names is None or isinstance(names, list) and all(isinstance(name, (str, int)) for name in names)):
        raise ValueError(f"{damaged}: dataset.class_names should be a list of names; re-train the run")
    fitted = metrics.get("calibration")
    if fitted is not None and not (isinstance(fitted, dict) and _number(fitted.get("temperature", 1.0), positive=True)
                                   and (fitted.get("reject_below") is None or _number(fitted["reject_below"]))):
        raise ValueError(f"{damaged}: calibration should hold a positive temperature and a numeric reject_below; "
                         "re-train the run")
    if fitted is not None and not (fitted.get("soft_above") is None or _number(fitted["soft_above"])):
        raise ValueError(f"{damaged}: calibration.soft_above should be a number (MNIST pixels of blur) or absent; "
                         "choose it again with `python scripts/tune_soft.py`")
    if fitted is not None and fitted.get("score", "max_probability") not in ("energy", "max_probability"):
        raise ValueError(f"{damaged}: calibration.score is {fitted.get('score')!r}, neither 'energy' nor "
                         "'max_probability'; re-train the run, or upgrade digits")
    if fitted is not None and fitted.get("score") == "energy" and not all(
            _number(fitted.get(key)) for key in ("energy_below", "max_probability_below")):
        raise ValueError(f"{damaged}: an energy calibration should hold a numeric energy_below and "
                         "max_probability_below; recalibrate it with `digits calibrate RUN --reject-rate R`")
    return metrics


def _number(value, positive: bool = False) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
            and (value > 0 if positive else True))


def partial_dir(parent: Path, key: str) -> Path:
    """The work-in-progress directory for `key`: the same command finds the same one to resume."""
    return Path(parent) / f".partial-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def commit(partial: Path, run_dir: Path, history: dict, metrics: dict, resumed_from_epoch: int = 0) -> Run:
    """Finish `partial` (its model files already saved): history, metrics last, then rename to `run_dir`."""
    missing = [name for name in ("model.keras", "config.json") if not (partial / name).is_file()]
    if missing:
        raise ValueError(f"{partial} lacks {', '.join(missing)}; save the model before committing the run")
    files.write_json(partial / "history.json", history)
    files.write_json(partial / "metrics.json", metrics)  # last: its presence marks a complete run
    shutil.rmtree(partial / "backup", ignore_errors=True)
    for leftover in LEFTOVERS:
        (partial / leftover).unlink(missing_ok=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(partial, run_dir)
    return Run(run_dir=run_dir, history=history, metrics=metrics, resumed_from_epoch=resumed_from_epoch)
