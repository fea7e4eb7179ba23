"""Prometheus metrics: requests by route and status, latency by route, predictions by class.

Each app has its own registry (so tests can build many apps in one process). With several
uvicorn workers, `digits serve` sets `PROMETHEUS_MULTIPROC_DIR` and /metrics merges every
worker's numbers (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        self.model_info = Gauge("digits_model_info", "The served model (value 1)", ["name", "version", "backend"],
                                registry=self.registry, multiprocess_mode="livemax")
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
