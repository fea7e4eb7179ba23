"""Telemetry and the guard on every request: Prometheus metrics, body limits and timing.

`Metrics`: requests by route and status, latency by route (gRPC calls by method and status
code), predictions by class, images per model call. Each app has its own registry (so tests
can build many apps in one process). With several uvicorn workers, `digits serve` sets
`PROMETHEUS_MULTIPROC_DIR` and /metrics merges every worker's numbers (prometheus_client's
multiprocess mode).

`Guard`, one pure-ASGI middleware (not `BaseHTTPMiddleware`: it sits on the hot path of every
request): a declared `Content-Length` over the limit is refused (413) before any body is
read, a chunked body is counted as it arrives, a body that has not arrived `timeout_seconds` after
the header is a 408 (one deadline for the whole body, not per read: a body dribbled a byte at a
time is cut too), the same deadline bounds the answer (service.DEADLINE: 504 past it), and every
request is timed by its route template.
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .deps import ApiError, error_body
from .service import DEADLINE

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("digits_http_requests", "HTTP requests by method, route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("digits_http_request_duration_seconds", "HTTP request latency by route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.predictions = Counter("digits_predictions", "Images classified, by predicted class", ["label"],
                                   registry=self.registry)
        self.batch_size = Histogram("digits_model_batch_size", "Images per model call (after dynamic batching)",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.pictures = Counter("digits_pictures_read", "Pictures read (decoded, cleaned and classified) by "
                                "the reading path", registry=self.registry)
        self.model_info = Gauge("digits_model_info", "The served model (value 1)", ["name", "version", "backend"],
                                registry=self.registry, multiprocess_mode="livemax")
        self.grpc_requests = Counter("digits_grpc_requests", "gRPC calls by method and status code",
                                     ["method", "code"], registry=self.registry)
        self.grpc_latency = Histogram("digits_grpc_request_duration_seconds", "gRPC call latency by method",
                                      ["method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._children: dict = {}  # (method, route, status) -> (counter child, histogram child)
        self._labels: dict = {}  # label -> predictions counter child
        self.class_names: list[str] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children.setdefault(key, (self.requests.labels(method, route, str(status)),
                                                       self.latency.labels(method, route)))
        children[0].inc()
        children[1].observe(seconds)

    def observe_grpc(self, method: str, code: str, seconds: float) -> None:
        key = ("grpc", method, code)
        children = self._children.get(key)
        if children is None:
            children = self._children.setdefault(key, (self.grpc_requests.labels(method, code),
                                                       self.grpc_latency.labels(method)))
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, probabilities: np.ndarray) -> None:
        """Called with every batched model call's (N, classes) output: its size, and the classes answered
        (counted per batch, not per request: one model call often answers dozens of requests)."""
        self.batch_size.observe(len(probabilities))
        counts = np.bincount(probabilities.argmax(1), minlength=probabilities.shape[1])
        for index in np.flatnonzero(counts):
            self.observe_label(self.class_names[index] if index < len(self.class_names) else str(index),
                               int(counts[index]))

    def observe_label(self, label: str, count: int = 1) -> None:
        child = self._labels.get(label)
        if child is None:
            child = self._labels.setdefault(label, self.predictions.labels(label))
        child.inc(count)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than the limit of {limit} bytes; send fewer or smaller "
                              "images, or raise DIGITS_MAX_BODY_BYTES")


class BodyTimeout(ApiError):
    def __init__(self, seconds: float):
        super().__init__(408, f"the request body did not arrive within {seconds:g} s of its header; send the whole "
                              "body promptly (or raise DIGITS_TIMEOUT_SECONDS)")


def _route(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


async def _read_by(receive, deadline: float, seconds: float):
    """The next body message, or BodyTimeout once the loop's clock passes `deadline`."""
    try:
        if hasattr(asyncio, "timeout_at"):  # Python 3.11+: no extra task per read
            async with asyncio.timeout_at(deadline):
                return await receive()
        return await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
    except asyncio.TimeoutError:
        raise BodyTimeout(seconds) from None


class Guard:
    def __init__(self, app, max_body_bytes: int, timeout_seconds: float, metrics: Metrics):
        self.app, self.limit, self.timeout, self.metrics = app, max_body_bytes, timeout_seconds, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        try:
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                await self._refuse(scope, send, BodyTooLarge(self.limit) if declared.isdigit() else
                                   ApiError(400, "Content-Length is not a number; send a valid header"))
                status[0] = 413 if declared.isdigit() else 400
                return
            received = [0, False]  # bytes so far, body complete
            deadline = asyncio.get_running_loop().time() + self.timeout  # the body's, and the answer's
            token = DEADLINE.set(deadline)

            async def guarded_receive():
                if received[1]:
                    return await receive()
                message = await _read_by(receive, deadline, self.timeout)
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > self.limit:
                        raise BodyTooLarge(self.limit)
                    received[1] = not message.get("more_body", False)
                return message

            async def watched_send(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await self.app(scope, guarded_receive, watched_send)
            finally:
                DEADLINE.reset(token)
        finally:
            self.metrics.observe_request(scope["method"], _route(scope), status[0], time.perf_counter() - started)

    @staticmethod
    async def _refuse(scope, send, error: ApiError) -> None:
        body = error_body(scope["path"], error.message)
        await send({"type": "http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
