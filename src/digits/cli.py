"""The `digits` command: train, evaluate, predict, export, calibrate, ensemble, tune, serve. The only module that
prints.

Every user error (a bad flag value, an unknown model, a damaged file, an incomplete run)
arrives here as a `ValueError` or `OSError` and leaves as one line on stderr with a non-zero
exit status, never a traceback. Options shared by several commands are defined once, in
parent parsers; choices come from the registries they name. TensorFlow is imported only by
the commands that train or export, so `--help`, `predict` and `serve` never load it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .backends import BACKENDS, INSTALLS, install_hint
from .config import DISTRIBUTIONS
from .reading import MODES
from .runs import EXPORT_FORMATS




def _parents() -> dict[str, argparse.ArgumentParser]:
    """Options shared by several commands, each defined once (argparse parent parsers)."""
    runs_dir = argparse.ArgumentParser(add_help=False)
    runs_dir.add_argument("--runs-dir", help="where runs are written and the latest one is found "
                                             "(default: runs, or $DIGITS_RUNS_DIR)")
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument("--data-dir", help="directory holding the dataset files (default: $DIGITS_DATA_DIR, "
                                             "the shipped copy, /usr/share/datasets, the cache)")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", choices=BACKENDS,
                         help="inference backend (default: the fastest portable copy the model has)")
    recipe = argparse.ArgumentParser(add_help=False)
    recipe.add_argument("--config", metavar="FILE.json", help="settings file (a run's config.json works as is)")
    recipe.add_argument("--model", help="model registry name (default: mlp)")
    recipe.add_argument("--dataset", help="dataset registry name: mnist or fashion-mnist (default: mnist)")
    recipe.add_argument("--epochs", type=int, help="passes over the training split (default: 5)")
    recipe.add_argument("--limit", type=int, help="use only the first N training images (default: all)")
    return {"runs_dir": runs_dir, "data_dir": data_dir, "backend": backend, "recipe": recipe}


def _add_serve(commands, parents) -> None:
    parser = commands.add_parser(
        "serve", parents=[parents["runs_dir"], parents["backend"]],
        help="serve a model over HTTP (and gRPC): /predict, KServe V2, TF Serving, a drawing page",
        description="Serve RUN with uvicorn (pip install 'digits[api]'). Every flag can also be set as a "
                    "DIGITS_* environment variable (e.g. DIGITS_PORT=9000); flags win.")
    parser.add_argument("run", nargs="?", help="run directory or exported model file (default: $DIGITS_RUN, "
                                               "else the latest run)")
    parser.add_argument("--host", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, help="TCP port (default: 8000)")
    parser.add_argument("--grpc-port", type=int, help="also serve the Open Inference Protocol over gRPC on this port "
                                                      "(Triton uses 8001; default: off)")
    parser.add_argument("--workers", type=int, help="worker processes, each loading the model (default: 1)")
    parser.add_argument("--model-name", help="model name in /v1 and /v2 URLs (default: the run's model, e.g. cnn)")
    parser.add_argument("--max-body-bytes", type=int, help="larger request bodies get 413 (default: 16 MiB)")
    parser.add_argument("--max-batch", type=int, help="most images per request (default: 256)")
    parser.add_argument("--uncertain-below", type=float, help="confidence below this is flagged uncertain "
                                                              "(default: 0.5)")
    parser.add_argument("--reject-below", type=float, help="answer 'not a digit' below this digit score (the "
                        "calibrated chance of a digit; the top probability for older models); 0 turns it off "
                        "(default: the model's stored threshold)")
    parser.add_argument("--timeout-seconds", type=float, help="each request, from its header: the whole body (408) "
                                                              "and the answer (504) (default: 30)")
    parser.add_argument("--header-timeout-seconds", type=float, help="a connection's request header must be complete "
                                                                     "this soon, else it is closed (default: 10)")
    parser.add_argument("--max-connections", type=int, help="open connections per worker; the oldest idle one makes "
                                                            "room (default: 1000)")
    parser.add_argument("--shutdown-grace-seconds", type=float, help="on SIGTERM, time to answer accepted requests; "
                                                                     "at least timeout + 1 (default: timeout + 5)")
    parser.add_argument("--max-request-pixels", type=int, help="pixels of pictures in one request; more get 413 "
                                                               "(default: 100000000)")
    parser.add_argument("--max-pending-pixels", type=int, help="pixels of pictures read at once; later requests queue "
                                                               "(default: 400000000)")
    parser.add_argument("--predict-threads", type=int, help="threads running batched model calls (default: 1)")
    parser.add_argument("--model-threads", type=int,
                        help="threads inside one ONNX Runtime / LiteRT call (default: 1, the other cores serve requests)")
    parser.add_argument("--image-threads", type=int, help="threads preparing uploaded images (default: 2)")
    parser.add_argument("--access-log", action="store_true", default=None, help="log every request (default: off)")
    parser.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn log level (default: info)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digits", description="Handwritten digit recognition with Keras.")
    parser.add_argument("--version", action="version", version=f"digits {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = _parents()

    train = commands.add_parser("train", parents=[parents["recipe"], parents["runs_dir"], parents["data_dir"]],
                                help="train a model and write a run directory",
                                description="Train a registered model; flags override --config.")
    train.add_argument("--batch-size", type=int, help="images per step (default: 32)")
    train.add_argument("--learning-rate", type=float, help="Adam learning rate (default: 0.001)")
    train.add_argument("--seed", type=int, help="random seed; same seed, same model on CPU (default: 42)")
    train.add_argument("--validation-split", type=float, help="fraction held out for validation (default: 0.1)")
    train.add_argument("--out", help="run directory to create (default: runs/<model>-<dataset>-<time>)")
    train.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                       help="do not write TensorBoard logs (default: RUN/tensorboard/, see `tensorboard --logdir runs`)")
    train.add_argument("--distribute", choices=DISTRIBUTIONS,
                       help="tf.distribute: all GPUs of this machine, or a cluster from TF_CONFIG (default: none)")

    evaluate = commands.add_parser("evaluate", parents=[parents["backend"], parents["runs_dir"], parents["data_dir"]],
                                   help="test-set metrics, confusion matrix, worst mistakes")
    evaluate.add_argument("run", nargs="?", help="run directory or exported model file (default: the latest run)")
    evaluate.add_argument("--out", help="report directory (default: RUN/evaluation)")

    calibrate = commands.add_parser(
        "calibrate", parents=[parents["runs_dir"], parents["data_dir"]],
        help="move a trained run's not-a-digit threshold: refit it on its validation split",
        description="Fit RUN's temperature and not-a-digit threshold again on its own validation split, refusing "
                    "at most --reject-rate of those digits, and store them in the run (metrics.json, config.json): "
                    "what training with that reject_rate would have stored, without training again.")
    calibrate.add_argument("run", nargs="?", help="run directory (default: the latest run)")
    calibrate.add_argument("--reject-rate", type=float, required=True, metavar="R",
                           help="share of validation digits the threshold may refuse, e.g. 0.01")

    ensemble = commands.add_parser("ensemble", parents=[parents["data_dir"]],
                                   help="average several runs into one model (a run directory)")
    ensemble.add_argument("runs", nargs="+", metavar="RUN", help="run directories trained on the same dataset")
    ensemble.add_argument("--out", required=True, help="run directory to create for the ensemble")
    ensemble.add_argument("--tta", action="store_true", help="also average over four one-pixel shifts of each image")

    _add_serve(commands, parents)

    tune = commands.add_parser("tune", parents=[parents["recipe"], parents["runs_dir"], parents["data_dir"]],
                               help="Optuna study over a model's hyperparameters (SQLite or PostgreSQL)")
    tune.add_argument("--trials", type=int, required=True, help="finished trials the study should hold, all workers together")
    tune.add_argument("--storage", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
                                        "(default: sqlite:///RUNS/tune.db)")
    tune.add_argument("--study", help="study name; workers with the same name share it (default: MODEL-DATASET)")
    tune.add_argument("--timeout", type=float, help="stop starting trials after S seconds (default: none)")
    tune.add_argument("--heartbeat", type=int, default=10, help="seconds between a running trial's heartbeats; "
                                                              "a worker silent for 3 is declared dead and its trial "
                                                              "retried (default: 10)")
    tune.add_argument("--out", help="where trials, plots and best.json go (default: RUNS/tune-STUDY)")

    export = commands.add_parser("export", parents=[parents["runs_dir"], parents["data_dir"]],
                                 help="SavedModel, ONNX or LiteRT (float32 or int8), checked and measured")
    export.add_argument("run", nargs="?", help="run directory (default: the latest under runs/)")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="what to write")
    export.add_argument("--int8", action="store_true", help="litert only: full-integer post-training quantization")
    export.add_argument("--out", required=True, help="file (or directory, for savedmodel) to write")

    predict = commands.add_parser(
        "predict", parents=[parents["backend"], parents["runs_dir"], parents["data_dir"]],
        help="read digits from image files, or predict a grid of test images",
        description="digits predict [RUN] [FILE ...]: with files, read each one (a digit or a whole number); "
                    "without, predict random test images and plot them.")
    predict.add_argument("paths", nargs="*", metavar="[RUN] FILE",
                         help="an optional run directory or exported model, then image files or folders of them "
                              "(each folder's pictures, by name; not its subfolders)")
    predict.add_argument("--mode", choices=MODES, default="auto",
                         help="files: one digit, a whole number, or auto (number when several digits are "
                              "found) (default: auto)")
    predict.add_argument("--uncertain-below", type=float, default=0.5, metavar="P",
                         help="mark readings whose confidence is below P as uncertain; a number's confidence is "
                              "the product of its digits' (default: 0.5)")
    predict.add_argument("--reject-below", type=float, metavar="P",
                         help="answer 'not a digit' when the digit score (the calibrated chance that the picture "
                              "is a digit; the top probability for older models) is below P; 0 turns it off "
                              "(default: the threshold stored with the model, fitted on validation data)")
    predict.add_argument("--samples", type=int, default=24, help="test images, without files (default: 24)")
    predict.add_argument("--seed", type=int, default=0, help="which random test images (default: 0)")
    predict.add_argument("--plot", metavar="FILE", help="save the figure to FILE (default: show it, or save "
                                                        "RUN/predictions.png when there is no display)")
    predict.add_argument("--json", action="store_true", help="print machine-readable results instead of text")
    predict.add_argument("--workers", type=int, default=1, metavar="N",
                         help="files: read them in N processes, each loading the model once (pays off for many "
                              "pictures; at most one per core helps) (default: 1)")
    return parser


def _train_config(args):
    from . import config as config_module

    base = config_module.load(args.config) if args.config else config_module.Config()
    overrides = {key: getattr(args, key) for key in
                 ("model", "dataset", "epochs", "batch_size", "learning_rate", "seed", "limit", "validation_split")
                 if getattr(args, key) is not None}
    return config_module.from_dict(overrides, base)


def _download_bar():
    from tqdm import tqdm

    bars: dict = {}

    def progress(name: str, done: int, total: int) -> None:
        drawing = name.startswith("drawing ")  # generated training pictures, counted one by one
        bar = bars.get(name) or bars.setdefault(
            name, tqdm(total=total or None, unit="picture" if drawing else "B", unit_scale=not drawing,
                       desc=name if drawing else f"downloading {name}", file=sys.stderr))
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    return progress


def cmd_train(args) -> int:
    config = _train_config(args)  # refuse bad settings before importing TensorFlow
    from . import data, models, runs, train

    data.get_spec(config.dataset)
    if config.model not in models.MODELS:
        models.create_model(config.model)  # raises with the list of known models
    print(f"Training {config.model} on {config.dataset} for {config.epochs} epoch(s)", file=sys.stderr)
    # A live bar on a terminal; one line per epoch in logs (Keras always redraws otherwise).
    verbose = 1 if sys.stdout.isatty() else 2
    result = train.train(config, out=args.out, runs_dir=runs.runs_root(args.runs_dir), data_dir=args.data_dir,
                         verbose=verbose, download_progress=_download_bar(), distribute=args.distribute,
                         tensorboard=args.tensorboard)
    if result.resumed_from_epoch:
        print(f"Resumed from epoch {result.resumed_from_epoch}", file=sys.stderr)
    print(f"Run directory: {result.run_dir}")
    print(f"Training time: {result.metrics['training_seconds']:.1f} s")
    print(f"Test accuracy: {result.metrics['test_accuracy']:.4f}")
    return 0


def _load_predictor(run, args):
    """The model the user named (a run directory or model file), else the latest run, else the shipped model;
    loaded once, and said which on stderr."""
    from . import runs
    from .predictor import Predictor

    source = runs.resolve(run, args.runs_dir)
    print(f"Model: {runs.describe(source, named=run is not None)}", file=sys.stderr)
    return Predictor(source, backend=args.backend)


def _test_set(predictor, args):
    from . import data

    return data.load_dataset(predictor.info.metrics.get("dataset", {}).get("name", "mnist"), data_dir=args.data_dir)


def _output_dir(predictor) -> Path:
    """Where a run's (or an exported file's) figures go by default; the shipped model's: the working directory's
    digits-reader-outputs/ (never inside the installed package)."""
    from . import runs

    source = predictor.info.run_dir
    if runs.is_shipped(source):
        return Path("digits-reader-outputs")
    return source if source.is_dir() else source.with_name(source.name + ".outputs")


def cmd_evaluate(args) -> int:
    from . import evaluate

    predictor = _load_predictor(args.run, args)
    dataset = _test_set(predictor, args)
    probabilities = predictor.predict_proba(dataset.x_test)
    metrics = evaluate.evaluate(probabilities, dataset.y_test, dataset.class_names)
    out = Path(args.out) if args.out else _output_dir(predictor) / "evaluation"
    paths = evaluate.write_report(metrics, dataset.x_test, probabilities, dataset.y_test, dataset.class_names, out)
    print(f"Run: {predictor.info.run_dir} (backend: {predictor.backend})")
    print(f"Test loss: {metrics['loss']:.4f}")
    print(f"Test accuracy: {metrics['accuracy']:.4f} ({metrics['errors']} of {metrics['count']} wrong)")
    print(f"Expected calibration error ({len(metrics['reliability']['bins'])} bins): {metrics['ece']:.4f}")
    print(f"{'class':>12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for row in metrics["per_class"]:
        print(f"{row['class']:>12} {row['precision']:9.4f} {row['recall']:9.4f} {row['f1']:9.4f} {row['support']:8d}")
    for name, path in paths.items():
        print(f"Wrote {name.replace('_', ' ')}: {path}")
    return 0


def _has_display() -> bool:
    import matplotlib

    return matplotlib.get_backend().lower() not in {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def _read_file(predictor, path: str, mode: str, threshold: float, reject_below: float | None,
               figure: bool = False) -> list[tuple[dict, dict | None]]:
    """[(result for output, row for the figure, or None without one)] of one image file (or of standard input's
    bytes, for "-"), one for each of its pages (a multi-page TIFF, an animation: each result names its `page` and
    how many `pages`); an unreadable file becomes a result too."""
    from . import images, reading, runs

    stdin = path == STDIN
    label, short = ("standard input",) * 2 if stdin else (path, Path(path).name)

    def failed(error: str, title: str = "unreadable") -> list[tuple[dict, dict | None]]:
        return [({"file": path, "ok": False, "error": error}, {"title": f"{short}: {title}"} if figure else None)]

    if stdin and (sys.stdin is None or sys.stdin.isatty()):  # nothing piped in: reading would wait for the keyboard
        return failed(f"- reads a picture from standard input, which is "
                      f"{'a terminal' if sys.stdin is not None else 'closed'} here; pipe one in "
                      "(cat photo.jpg | digits predict -)")
    if not stdin and Path(path).is_dir():  # what `_image_files` left: a model, or a folder without pictures
        return failed(f"{path} is a model, not a picture; name the model first, before the pictures"
                      if runs.is_model(path) else f"{path} is a folder with no pictures in it (files named "
                      f"{', '.join(SUFFIXES)}); pass image files or a folder of them")
    try:
        source = sys.stdin.buffer.read() if stdin else path  # `... | digits predict -`: the picture's bytes
        pages = images.load_pages(source, name=label)
        found = [reading.read(gray, mode, predictor, threshold, name=label, reject_below=reject_below)
                 for gray in pages]
    except images.ImageError as error:
        return failed(str(error))
    except Exception as error:  # a bug: this file gets the error, the others are still read
        reason = f"{type(error).__name__}: {str(error).splitlines()[0]}" if str(error).strip() else type(error).__name__
        return failed(f"reading {label} failed ({reason}); this is a bug in digits, please report it with the "
                      "picture", "failed")
    paged = len(found) > 1
    results = [{"file": path, **({"page": page, "pages": len(found)} if paged else {}), "ok": True,
                **reading_.to_dict()} for page, reading_ in enumerate(found, 1)]
    if not figure:
        return [(result, None) for result in results]
    rows = []
    for page, reading_ in enumerate(found[:PLOT_ROWS], 1):  # no more pages than the figure draws (each opens the file)
        name = f"{short} page {page}" if paged else short
        if reading_.kind in ("no_ink", "not_a_digit"):
            title = f"{name}: " + ("no digit found" if reading_.kind == "no_ink" else "not a digit")
        else:
            text = reading_.text.replace("\n", " | ")  # lines of writing
            title = f"{name}: {text} ({reading_.confidence:.0%})" + (" uncertain" if reading_.uncertain else "")
        rows.append({"title": title, "original": images.load_rgb(source, page - 1),
                     "inputs": [digit.image for digit in reading_.digits],
                     "probabilities": reading_.digits[0].probabilities if reading_.kind == "digit" and reading_.digits
                     else None})
    return list(zip(results, rows + [None] * (len(results) - len(rows))))


def _describe(result: dict) -> str:
    if not result["ok"]:
        return f"error: {result['error']}"
    if result["kind"] == "no_ink":
        return "no digit found"
    if result["kind"] == "not_a_digit":
        closest = result["digits"][0] if len(result["digits"]) == 1 else None
        return "not a digit" + (f" (closest: {closest['label']} at {closest['confidence']:.1%})" if closest else "")
    flag = "  (uncertain)" if result["uncertain"] else ""
    if result["kind"] == "number":
        digits = ", ".join("? not a digit" if digit["not_a_digit"] else f"{digit['label']} {digit['confidence']:.1%}"
                           for digit in result["digits"])
        lines = result["number"].split("\n")  # a picture of several lines of writing: one line of output still
        several = f"{len(lines)} lines; " if len(lines) > 1 else ""
        return f"number {' | '.join(lines)} ({several}{result['confidence']:.1%}; digits: {digits}){flag}"
    top3 = ", ".join(f"{entry['label']} {entry['probability']:.1%}" for entry in result["top3"])
    return f"{result['label']} ({result['confidence']:.1%}; top 3: {top3}){flag}"


STDIN = "-"  # a file argument that stands for the picture's bytes on standard input
# how a folder's tally names reading.KINDS and the files not read (one, several)
TALLY = {"digit": ("digit", "digits"), "number": ("number", "numbers"), "not_a_digit": ("not a digit",) * 2,
         "no_ink": ("without ink",) * 2, "unreadable": ("unreadable",) * 2}
PLOT_ROWS = 50  # --plot draws the first this many pictures: a figure of thousands is too tall to open
SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".mpo", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif",
            ".avif")  # images.FORMATS' names


def _image_files(paths: list[str]) -> list[str]:
    """The paths, each folder replaced by its picture files (by suffix, sorted by name; hidden files and subfolders
    left out). A folder holding none stays, so that it is answered with an error of its own."""
    from . import runs

    files = []
    for path in paths:
        folder = Path(path)
        found = sorted(str(entry) for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith(".")
                       and entry.suffix.lower() in SUFFIXES) if folder.is_dir() and not runs.is_model(path) else []
        files.extend(found or [path])
    return files


_WORKER = {}  # a reading worker's model, loaded once


def _reading_worker(source: str, backend: str) -> None:
    from .predictor import Predictor

    _WORKER["predictor"] = Predictor(source, backend=backend, threads=1)  # one core each: the workers share them


def _read_in_worker(*job) -> list[tuple[dict, dict | None]]:
    return _read_file(_WORKER["predictor"], *job)


def _readings(predictor, files: list[str], args):
    """[(result, row)] of each file (one for each of its pages), in order, as each is read: here, or by
    `args.workers` spawned processes. Standard input is read here; a file whose worker could not start or died is
    read here too."""
    options = (args.mode, args.uncertain_below, args.reject_below)
    figure = [bool(args.plot) and index < PLOT_ROWS for index in range(len(files))]  # the figure's rows, only
    if args.workers == 1 or len(files) < 2:
        yield from (_read_file(predictor, path, *options, drawn) for path, drawn in zip(files, figure))
        return
    from concurrent.futures.process import BrokenProcessPool

    from .workers import pool as worker_pool

    readers = worker_pool(min(args.workers, len(files)), _reading_worker,
                          (str(predictor.info.run_dir), predictor.backend))
    futures = []
    try:
        futures += [None if path == STDIN else readers.submit(_read_in_worker, path, *options, drawn)
                    for path, drawn in zip(files, figure)]
        for path, drawn, future in zip(files, figure, futures):
            try:
                yield future.result() if future is not None else _read_file(predictor, path, *options, drawn)
            except BrokenProcessPool:
                yield _read_file(predictor, path, *options, drawn)
    finally:  # also when the output is cut short: the pictures not read yet are dropped, not waited for; cancelled
        for future in futures:  # here, as shutdown(cancel_futures=True) cancels nothing once the pool is collected
            if future is not None:
                future.cancel()
        readers.shutdown(wait=False)


def predict_files(args, paths: list[str]) -> int:
    from . import runs

    for flag, value in (("--uncertain-below", args.uncertain_below), ("--reject-below", args.reject_below)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{flag} must be between 0 and 1, got {value}")
    run = paths[0] if paths and runs.is_model(paths[0]) else None
    files_ = paths[1:] if run is not None else paths
    if not files_:
        raise ValueError("name at least one image file after the run")
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    files_ = _image_files(files_)
    predictor = _load_predictor(run, args)
    results, rows = [], []
    readings = _readings(predictor, files_, args)
    if args.json:  # one document at the end: a progress bar meanwhile, where someone watches (a terminal)
        from tqdm import tqdm

        readings = tqdm(readings, total=len(files_), desc="reading", unit="file", file=sys.stderr,
                        disable=None if len(files_) > 1 else True, leave=False)
    for result, row in (found for pages in readings for found in pages):
        results.append(result)
        if row is not None and len(rows) < PLOT_ROWS:  # a file's pages drawn, up to the figure's rows
            rows.append(row)
        if not args.json:  # a line as each picture is read
            page = f" (page {result['page']} of {result['pages']})" if "page" in result else ""
            print(f"{result['file']}{page}: {_describe(result)}", flush=True)
    if args.json:
        print(json.dumps({"model": str(predictor.info.run_dir), "backend": predictor.backend,
                          "results": results}, indent=2))
    if args.plot:
        from . import plots  # matplotlib, only for a figure

        plots.save_figure(plots.file_predictions_figure(rows), Path(args.plot))
        if not args.json:
            print(f"Saved the figure to {args.plot}" + (f" (the first {len(rows)} of {len(results)} pictures)"
                                                        if len(rows) < len(results) else ""))
    failed = [result for result in results if not result["ok"]]
    if len(results) > 1:  # a folder's tally, before its errors (on stderr, like the model's line)
        kinds = [result["kind"] if result["ok"] else "unreadable" for result in results]
        counts = {kind: kinds.count(kind) for kind in TALLY if kind in kinds}
        tally = [f"{count} {TALLY[kind][count > 1]}" for kind, count in counts.items()]
        print(f"Read {len(results)} pictures: {', '.join(tally)}", file=sys.stderr)
    for result in failed:
        print(f"digits predict: error: {result['error']}", file=sys.stderr)
    return 1 if failed else 0


def cmd_predict(args) -> int:
    from . import runs

    if len(args.paths) == 1 and args.paths[0] != STDIN and not Path(args.paths[0]).exists():
        raise ValueError(f"{args.paths[0]} does not exist; pass a run directory, an exported model or image files")
    if args.paths and not (len(args.paths) == 1 and runs.is_model(args.paths[0])):
        return predict_files(args, args.paths)
    if args.samples < 1:
        raise ValueError(f"--samples must be at least 1, got {args.samples}")
    from . import plots

    predictor = _load_predictor(args.paths[0] if args.paths else None, args)
    dataset = _test_set(predictor, args)
    count = min(args.samples, len(dataset.x_test))
    indices = np.sort(np.random.default_rng(args.seed).choice(len(dataset.x_test), count, replace=False))
    images, labels = dataset.x_test[indices], dataset.y_test[indices]
    probabilities = predictor.predict_proba(images)
    predicted, confidence = probabilities.argmax(1), probabilities.max(1)
    names = dataset.class_names
    results = [{"index": int(index), "predicted": names[p], "confidence": round(float(c), 6), "true": names[t],
                "correct": bool(p == t),
                "top3": [{"digit": int(k), "label": names[k], "probability": round(float(row[k]), 6)}
                         for k in np.argsort(-row)[:3]]}
               for index, p, c, t, row in zip(indices, predicted, confidence, labels, probabilities)]
    figure = plots.prediction_grid(images, predicted, confidence, labels, class_names=list(names))
    plot_path = Path(args.plot) if args.plot else None
    if plot_path is None and not _has_display():
        plot_path = _output_dir(predictor) / "predictions.png"
    if plot_path is not None:
        plots.save_figure(figure, plot_path)
    if args.json:
        print(json.dumps({"model": str(predictor.info.run_dir), "accuracy": float(np.mean(predicted == labels)),
                          "plot": str(plot_path) if plot_path else None, "predictions": results}, indent=2))
    else:
        for row in results:
            mark = "" if row["correct"] else "   <-- wrong"
            print(f"test #{row['index']:>5}: predicted {row['predicted']} ({row['confidence']:.1%}), "
                  f"true {row['true']}{mark}")
        print(f"{sum(row['correct'] for row in results)} of {count} correct")
        if plot_path is not None:
            print(f"Saved the figure to {plot_path}" + ("" if args.plot else " (no display to show it on)"))
    if plot_path is None:
        import matplotlib.pyplot as plt

        plt.figure(figure)  # adopt the bare Figure into pyplot (matplotlib >= 3.10)
        plt.show()
    return 0


def cmd_tune(args) -> int:
    from . import config as config_module
    from . import runs, tune

    recipe = config_module.load(args.config) if args.config else config_module.Config()
    recipe = config_module.from_dict({key: getattr(args, key) for key in ("model", "dataset")
                                      if getattr(args, key) is not None}, recipe)  # the full budget
    base = config_module.from_dict({key: getattr(args, key) for key in ("epochs", "limit")
                                    if getattr(args, key) is not None}, recipe)  # what each trial trains
    study_name = args.study or f"{base.model}-{base.dataset}"
    root = runs.runs_root(args.runs_dir)
    out = Path(args.out) if args.out else root / f"tune-{study_name}"
    storage = args.storage or f"sqlite:///{(root / 'tune.db').as_posix()}"
    import optuna  # noqa: F401  (a missing extra is named before any progress bar is drawn)
    if storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    bar = tqdm(total=args.trials, desc=f"study {study_name}", unit="trial", file=sys.stderr)

    def progress(study, trial) -> None:
        bar.n = min(args.trials, tune.finished(study))
        completed = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
        if completed:
            bar.set_postfix(best=f"{max(t.value for t in completed):.4f}", refresh=False)
        if bar.n < args.trials:  # the finished bar is drawn once, by close()
            bar.refresh()

    try:
        study = tune.tune(base, args.trials, storage, study_name, out, timeout=args.timeout,
                          data_dir=args.data_dir, on_trial=progress, heartbeat=args.heartbeat)
        bar.n = min(args.trials, tune.finished(study))  # shown once, by close()
    finally:
        bar.close()
    print(f"{'trial':>5} {'state':<9} {'val acc':>8}  params")
    for trial in study.trials:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        params = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in trial.params.items())
        print(f"{trial.number:>5} {trial.state.name:<9} {value:>8}  {params}")
    if not any(trial.state.name == "COMPLETE" for trial in study.trials):
        raise ValueError("no trial completed, so there is no best configuration; see the states above")
    paths = tune.write_results(study, base, out, recipe)
    print(f"Best trial {study.best_trial.number}: validation accuracy {study.best_value:.4f}")

    def budget(config) -> str:
        return f"{config.epochs} epoch(s) on {'all' if config.limit is None else config.limit} training images"

    print(f"Best config: {paths['best_config']}, with the recipe's full budget ({budget(recipe)}; each trial "
          f"trained {budget(base)}). Train it with: digits train --config {paths['best_config']}")
    for name in ("search", "trials", "history_png", "importances_png"):
        if name in paths:
            print(f"Wrote {paths[name]}")
    return 0


def cmd_export(args) -> int:
    from . import export, runs

    run = runs.resolve_run(args.run, args.runs_dir)
    report = export.export(run, args.format, args.out, int8=args.int8, data_dir=args.data_dir)
    kind = f"{args.format}{' int8' if args.int8 else ''}"
    print(f"Exported {run} as {kind}: {args.out} ({report['size_bytes'] / 1024:.0f} KiB)")
    print(f"Test accuracy: {report['test_accuracy']:.4f} (Keras: {report['keras_test_accuracy']:.4f})")
    print(f"Latency: p50 {report['latency_p50_us']:.0f} us, p99 {report['latency_p99_us']:.0f} us per image; "
          f"throughput {report['throughput_per_s']:.0f} images/s")
    print(f"Wrote {args.out}.json")
    return 0


def cmd_calibrate(args) -> int:
    from . import config, runs

    run = runs.resolve_run(args.run, args.runs_dir)
    config.from_dict({"reject_rate": args.reject_rate})  # a bad rate is named before TensorFlow loads
    from . import train

    result = train.recalibrate(run, args.reject_rate, data_dir=args.data_dir)
    before, after = result["before"] or {}, result["after"]
    print(f"Calibrated {run} on {after['validation_images']} validation digits: temperature "
          f"{after['temperature']:.4f}, not a digit below {_operating_point(after)} (was "
          f"{_operating_point(before)} at reject_rate {before.get('reject_rate')})")
    line = f"Validation digits refused: {after['validation_digits_refused']:.2%}"
    if "validation_non_digits" in after:
        line += f"; generated non-digits refused: {after['validation_non_digits']['refused']:.2%}"
    print(line)
    print(f"Wrote {run / 'metrics.json'} and {run / 'config.json'}")
    return 0


def _operating_point(fitted: dict) -> str:
    """A stored not-a-digit threshold in words: "energy 4.1234" or "top probability 0.7357"."""
    if fitted.get("score") == "energy":
        return f"energy {fitted['energy_below']:.4f}"
    return f"top probability {fitted.get('reject_below', float('nan')):.4f}"


def cmd_ensemble(args) -> int:
    from . import ensemble

    result = ensemble.make_ensemble(args.runs, args.out, tta=args.tta, data_dir=args.data_dir)
    for member in result.metrics["members"]:
        print(f"member {member['run']}: test accuracy {member['test_accuracy']:.4f}")
    print(f"Run directory: {result.run_dir}")
    print(f"Test accuracy: {result.metrics['test_accuracy']:.4f}" + (" (with test-time augmentation)" if args.tta else ""))
    return 0


SERVE_FLAGS = ("host", "port", "grpc_port", "workers", "backend", "runs_dir", "model_name", "max_body_bytes",
               "max_batch", "uncertain_below", "reject_below", "timeout_seconds", "predict_threads", "model_threads",
               "image_threads", "log_level", "header_timeout_seconds", "max_connections", "shutdown_grace_seconds",
               "max_request_pixels", "max_pending_pixels")


def cmd_serve(args) -> int:
    import fastapi  # noqa: F401  (a missing api extra is named at once, by main)
    import uvicorn  # noqa: F401

    from . import predictor, runs
    from .api.settings import load_settings
    from .api import app

    settings = load_settings(run=args.run, access_log=args.access_log,
                             **{key: getattr(args, key, None) for key in SERVE_FLAGS})
    source = runs.resolve(settings.run, settings.runs_dir)  # a clear error now, not in every worker
    predictor.check(source, settings.backend)  # a damaged run too: one line, before any worker starts
    settings = settings.model_copy(update={"run": str(source.resolve())})
    app.check_ports(settings)
    grpc = f" and gRPC on {settings.host}:{settings.grpc_port}" if settings.grpc_port is not None else ""
    print(f"Model: {runs.describe(source, named=args.run is not None)}", file=sys.stderr)
    print(f"Serving {source} on http://{settings.host}:{settings.port}/{grpc} with {settings.workers} worker(s); "
          "the drawing page is at /, the API docs at /docs", file=sys.stderr)
    app.serve(settings)
    return 0


COMMANDS = {"serve": cmd_serve, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "ensemble": cmd_ensemble,
            "export": cmd_export, "tune": cmd_tune, "calibrate": cmd_calibrate}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """One line naming what is missing and the extra that installs it; None for a module no extra provides."""
    top = (error.name or "").split(".")[0]
    if top not in INSTALLS:
        return None
    package, extra = INSTALLS[top]
    if extra is None:  # part of the base install: it was removed
        return f"this needs {package}, which is not installed: pip install {top} (digits depends on it)"
    return f"this needs {package}, which is not installed: pip install '{install_hint(top)}'"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ModuleNotFoundError as error:
        line = missing_extra(error)
        if line is None:
            raise  # not an optional dependency: a real bug, shown in full
        print(f"digits {args.command}: error: {line}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # whoever read the output stopped reading (`digits predict ... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere at exit, not to the closed pipe
        return 141  # as a shell reports a tool stopped by SIGPIPE
    except (ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"digits {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"digits {args.command}: interrupted; run the same command again to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
