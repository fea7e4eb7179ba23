"""`digits serve`: run the API under uvicorn. `add_parser(commands)` and `run(args)` plug into
digits.cli; `main(argv)` is `python -m digits.api` until then.

Flags override `DIGITS_*` environment variables, and every worker reads its settings from
those variables (uvicorn starts workers as fresh processes). The run is resolved and checked
here, before uvicorn starts, so a missing or damaged run is one line on stderr, not a trace.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

FLAGS = ("host", "port", "workers", "backend", "runs_dir", "model_name", "max_body_bytes", "max_batch",
         "uncertain_below", "timeout_seconds", "predict_threads", "model_threads", "image_threads", "log_level")


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "serve", help="serve a model over HTTP: /predict, KServe V2, TF Serving, a drawing page",
        description="Serve RUN with uvicorn. Every flag can also be set as a DIGITS_* environment variable "
                    "(e.g. DIGITS_PORT=9000); flags win.")
    parser.add_argument("run", nargs="?", help="run directory or exported model file (default: $DIGITS_RUN, "
                                               "else the latest run)")
    parser.add_argument("--host", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, help="TCP port (default: 8000)")
    parser.add_argument("--workers", type=int, help="worker processes, each loading the model (default: 1)")
    parser.add_argument("--backend", choices=("keras", "onnx", "litert"),
                        help="inference backend (default: the fastest installed one, measured at load)")
    parser.add_argument("--runs-dir", help="where to look for the latest run (default: runs, or $DIGITS_RUNS_DIR)")
    parser.add_argument("--model-name", help="model name in /v1 and /v2 URLs (default: the run's model, e.g. cnn)")
    parser.add_argument("--max-body-bytes", type=int, help="larger request bodies get 413 (default: 16 MiB)")
    parser.add_argument("--max-batch", type=int, help="most images per request (default: 256)")
    parser.add_argument("--uncertain-below", type=float, help="confidence below this is flagged uncertain "
                                                              "(default: 0.5)")
    parser.add_argument("--timeout-seconds", type=float, help="per body read and per prediction (default: 30)")
    parser.add_argument("--predict-threads", type=int, help="threads running batched model calls (default: 1)")
    parser.add_argument("--model-threads", type=int,
                        help="threads inside one ONNX Runtime / LiteRT call (default: 1, the other cores serve requests)")
    parser.add_argument("--image-threads", type=int, help="threads preparing uploaded images (default: 2)")
    parser.add_argument("--access-log", action="store_true", default=None, help="log every request (default: off)")
    parser.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn log level (default: info)")
    return parser


def _export(settings) -> None:
    """Hand the settings to the workers through DIGITS_* variables."""
    for key, value in settings.model_dump().items():
        variable = f"DIGITS_{key.upper()}"
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = str(value).lower() if isinstance(value, bool) else str(value)


def run(args) -> int:
    from .. import engine

    try:
        import fastapi  # noqa: F401
        import uvicorn

        from .settings import load_settings
    except ImportError as error:
        raise ValueError(f"digits serve needs the {error.name} package: pip install 'digits[api]'") from None

    overrides = {key: getattr(args, key, None) for key in FLAGS}
    settings = load_settings(run=args.run, access_log=args.access_log, **overrides)
    source = Path(settings.run) if settings.run else None
    if source is not None and source.is_file():
        if source.suffix not in engine.SUFFIXES:
            raise ValueError(f"{source} is not a model file digits can load; pass a run directory or a "
                             f"{', '.join(engine.SUFFIXES)} file")
    else:
        source = engine.resolve_run(source, settings.runs_dir)  # a clear error now, not in every worker
    settings = settings.model_copy(update={"run": str(source.resolve())})
    _export(settings)
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics merges all workers
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="digits-metrics-")
    print(f"Serving {source} on http://{settings.host}:{settings.port}/ with {settings.workers} worker(s); "
          "the drawing page is at /, the API docs at /docs", file=sys.stderr)
    try:
        uvicorn.run("digits.api.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, log_level=settings.log_level, access_log=settings.access_log,
                    timeout_graceful_shutdown=10, server_header=False)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m digits.api ARGS` = `digits serve ARGS`; user errors are one line on stderr."""
    parser = argparse.ArgumentParser(prog="digits")
    commands = parser.add_subparsers(dest="command", required=True)
    add_parser(commands)
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except (ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"digits serve: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
