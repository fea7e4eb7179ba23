"""The app factory: `create_app(settings, predictor)` -> a FastAPI app serving one model.

The FastAPI template's shape: settings from the environment (settings.py), one router
module per protocol (routes/), shared dependencies and the error mapping (deps.py), pydantic
schemas for every request and response (schemas.py), telemetry (telemetry.py), and the model
loaded once per worker at start-up (the lifespan; service.py), warmed through the same
batching path requests take, and only then reported ready (with `Settings.grpc_port`, the gRPC
server starts then too, on the same event loop and Service: grpc_service.py). `serve(settings)` runs the
factory under uvicorn with the settings handed to every worker through `DIGITS_*` variables
(what `digits serve` does), with the connection limits of connections.py and a shutdown grace
(`Settings.shutdown_grace_seconds`) longer than any accepted request may take; a SIGTERM is a
clean stop: every accepted request is answered and the process exits 0, with one worker or many.
Tests pass a loaded `Predictor` to skip reloading.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import socket
import tempfile
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .. import __version__
from . import service as service_module
from .deps import install_errors
from .routes import health, pages, predict, tfserving, v2
from .settings import Settings, load_settings
from .telemetry import Guard, Metrics

DESCRIPTION = """Handwritten digit recognition. Draw at [/](/), or call:

* `POST /predict`: image files, base64 images or 28x28 `pixels`; digits or whole numbers.
* The Open Inference Protocol (KServe V2 / Triton, JSON and binary tensors) under `/v2`.
* The same protocol over gRPC (`inference.GRPCInferenceService`) when started with `--grpc-port`.
* The TensorFlow Serving REST API under `/v1/models`.
* Health at `/health/*` and `/v2/health/*`, Prometheus metrics at `/metrics`.
"""


# /metrics (Prometheus) is this service's telemetry; FastAPI's OpenTelemetry hooks, which check for a
# configured SDK on every request, are on only with DIGITS_OPENTELEMETRY=true
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings | None = None, predictor=None) -> FastAPI:
    """A FastAPI app for `settings` (default: from DIGITS_* variables); `predictor` skips loading."""
    settings = settings or load_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loaded = predictor or await asyncio.to_thread(service_module.load_predictor, settings)
        service = service_module.Service(loaded, settings, service_module.model_name(loaded.info, settings.model_name))
        await service.predict(np.zeros((1, 28, 28), np.float32))  # warm the prediction thread (and its interpreter)
        metrics.class_names = service.class_names
        service.batcher.on_batch = lambda rows: metrics.observe_batch(rows[:, :-1])  # less the digit scores
        service.metrics = metrics
        metrics.model_info.labels(service.name, service.version, loaded.backend).set(1)
        gc.collect()
        gc.freeze()  # TensorFlow's millions of start-up objects leave the collector's view: no 100 ms pauses
        service.ready = True
        app.state.service = service
        grpc_server = None
        try:
            if settings.grpc_port is not None:  # the Open Inference Protocol over gRPC, on this event loop
                from . import grpc_service  # grpcio is imported only when asked for

                grpc_server = await grpc_service.start(service, settings, metrics)
            yield
        finally:
            if grpc_server is not None:
                await grpc_service.stop(grpc_server)
            service.close()

    cdn_docs = not pages.OFFLINE_DOCS  # FastAPI's own /docs and /redoc load their scripts from a CDN
    app = FastAPI(title="digits", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs" if cdn_docs else None, redoc_url="/redoc" if cdn_docs else None,
                  telemetry=None if settings.opentelemetry else NO_TELEMETRY)
    app.state.settings, app.state.metrics, app.state.service = settings, metrics, None
    install_errors(app)
    for router in (predict.router, v2.inference, tfserving.inference,  # hot routes first: tried in order
                   v2.router, tfserving.router, health.router, pages.router):
        app.include_router(router)
    pages.install_docs(app)  # after the hot routes: FastAPI tries routes in order
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, timeout_seconds=settings.timeout_seconds,
                       metrics=metrics)
    app.openapi = lambda: _openapi_with_examples(app)
    return app


def _openapi_with_examples(app: FastAPI) -> dict:
    """FastAPI's document, with the served model's name and version as the path parameters' examples
    (so /docs' "Try it out" and schema-driven fuzzers reach the model, not only 404s)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = FastAPI.openapi(app)
    service = app.state.service
    if service is None:  # not loaded yet: don't cache a document without examples
        app.openapi_schema = None
        return schema
    examples = {"name": service.name, "version": service.version}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in examples:
                    parameter["example"] = examples[parameter["name"]]
    return schema


def _export(settings: Settings) -> None:
    """Hand the settings to the workers (fresh processes) through DIGITS_* variables."""
    for key, value in settings.model_dump().items():
        variable = f"DIGITS_{key.upper()}"
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = str(value).lower() if isinstance(value, bool) else str(value)


def check_ports(settings: Settings) -> None:
    """One clear error now (not a traceback from every worker) if the gRPC port is the HTTP port, or taken,
    or not an address of this machine: ValueError / OSError naming it."""
    if settings.grpc_port is None:
        return
    if settings.grpc_port == settings.port:
        raise ValueError(f"--grpc-port {settings.grpc_port} is also the HTTP --port; choose another")
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
        try:
            probe.bind((settings.host, settings.grpc_port))
        except OSError as error:
            raise OSError(f"cannot serve gRPC on {settings.host}:{settings.grpc_port} ({error.strerror or error}); "
                          "choose another --grpc-port") from None


def serve(settings: Settings) -> None:
    """Run the app under uvicorn with `settings` until stopped (SIGINT / SIGTERM)."""
    import uvicorn

    from .connections import protocol

    check_ports(settings)
    _export(settings)
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics merges all workers
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="digits-metrics-")
    # uvicorn stops gracefully on SIGTERM and then raises it again, to die of it (status 143) with one worker;
    # its supervisor of several workers returns (status 0). Here a stop that was asked for is a clean exit,
    # either way: the raised-again SIGTERM ends the process with status 0.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run("digits.api.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, log_level=settings.log_level, access_log=settings.access_log,
                    http=protocol(settings), timeout_graceful_shutdown=settings.shutdown_grace_seconds,
                    server_header=False)
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


class _Stopped(Exception):
    """SIGTERM outside uvicorn's own handling (before it starts, or raised again after its graceful stop)."""


def _stopped(signum, frame) -> None:
    raise _Stopped()
