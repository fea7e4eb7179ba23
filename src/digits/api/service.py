"""The served model: one `Predictor` per worker process, its name and version, and the thread pools.

Model calls never run on the event loop. `Batcher` is dynamic batching: a request's pixels
go to a prediction thread at once when one is free; requests that arrive while every
thread is busy wait and then run together as one batch (one model call, one thread hop),
which is what keeps throughput high and tail latency low under many connections. Image
decoding and preprocessing run on a second, separate pool, so a large photo upload never
delays the small `pixels` requests queued behind it.

Pictures are read on their own pool by `reading.read`, the path every interface shares; the
model calls inside a reading (candidate cuts of a number, then the digits) run on that
thread, unbatched. The model name in /v1 and /v2 URLs is `Settings.model_name` if set, else the run config's
`model` (e.g. "cnn"), else the run directory's (or exported file's) name; the version is "1".
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .. import runs
from ..predictor import Predictor
from .settings import Settings

VERSION = "1"


class Batcher:
    """Run `predict` ((N, 28, 28) -> (N, classes)) on `threads` threads, merging queued requests."""

    def __init__(self, predict, threads: int = 1, max_rows: int = 256, on_batch=None, timeout: float = 30.0):
        self._predict, self._threads, self._max_rows, self._timeout = predict, threads, max_rows, timeout
        self.on_batch = on_batch  # called with each batched model call's output (metrics)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="digits-predict")
        self._pending: list[tuple[np.ndarray, asyncio.Future, float]] = []  # images, future, deadline
        self._running: dict[int, list] = {}  # id -> the items of each batch being predicted
        self._busy = 0
        # one timer sweeps every deadline (a timer per request cost more than the rest of batching);
        # a request fails with TimeoutError between `timeout` and `timeout + tick` seconds after submit
        self._tick, self._sweeper = min(0.5, timeout / 4), None

    def submit(self, images: np.ndarray) -> asyncio.Future:
        """A future of the (N, classes) probabilities, failing with TimeoutError after `timeout` seconds;
        call from the event loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((images, future, loop.time() + self._timeout))
        if self._busy < self._threads:
            self._flush(loop)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._tick, self._sweep, loop)
        return future

    def _sweep(self, loop) -> None:
        self._sweeper = None
        now = loop.time()
        for items in (self._pending, *self._running.values()):
            for _, future, deadline in items:
                if deadline <= now:
                    _expire(future)
        self._pending = [item for item in self._pending if not item[1].done()]
        if self._pending or self._running:
            self._sweeper = loop.call_later(self._tick, self._sweep, loop)

    def _flush(self, loop) -> None:
        while self._pending and self._busy < self._threads:
            taken, rows = 0, 0
            while taken < len(self._pending) and (taken == 0 or rows + len(self._pending[taken][0]) <= self._max_rows):
                rows += len(self._pending[taken][0])
                taken += 1
            items, self._pending = self._pending[:taken], self._pending[taken:]
            items = [item for item in items if not item[1].done()]  # timed out meanwhile
            if not items:
                continue
            batch = items[0][0] if len(items) == 1 else np.concatenate([item[0] for item in items])
            self._busy += 1
            self._running[id(items)] = items
            running = loop.run_in_executor(self._pool, self._predict, batch)
            running.add_done_callback(partial(self._done, loop, items))

    def _done(self, loop, items, running: asyncio.Future) -> None:
        self._busy -= 1
        del self._running[id(items)]
        error = running.exception()
        if error is None and self.on_batch is not None:
            self.on_batch(running.result())
        start = 0
        for images, future, _ in items:
            if not future.done():
                if error is None:
                    future.set_result(running.result()[start:start + len(images)])
                else:
                    future.set_exception(error)
            start += len(images)
        self._flush(loop)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Busy(Exception):
    """The image pool is saturated (answered with 503 and Retry-After)."""


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def model_name(info: runs.RunInfo, override: str | None = None) -> str:
    """URL-safe model name: the override, else the config's model name, else the file or directory name."""
    source = Path(info.run_dir)
    name = override or info.config.get("model") or (source.stem if source.is_file() else source.name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name)).strip("-") or "digits"


SERVING_BATCH = 16  # images per model call under load (dynamic batching): the backend is chosen at this size


def load_predictor(settings: Settings) -> Predictor:
    """The settings' run or model file (or the latest run) loaded and warmed; ValueError if there is none."""
    return Predictor(runs.resolve(settings.run, settings.runs_dir), backend=settings.backend, batch=SERVING_BATCH,
                     threads=settings.model_threads)


@dataclass
class Service:
    """Everything a request handler needs: the model, its identity, the limits, the pools."""

    predictor: Predictor
    settings: Settings
    name: str
    metrics: object = None  # metrics.Metrics once warmed (the warm-up call is not counted)
    version: str = VERSION
    ready: bool = False
    batcher: Batcher = field(init=False)
    image_pool: ThreadPoolExecutor = field(init=False)
    class_names: list[str] = field(init=False)  # one per model output; "0".."9" if the run names none
    reject_below: float | None = field(init=False)  # not-a-digit threshold: the setting, else the model's
    image_jobs: int = 0  # pictures queued or being prepared on the image pool

    def __post_init__(self):
        self.class_names = list(self.predictor.class_names)
        stored = getattr(self.predictor, "reject_below", None)
        self.reject_below = self.settings.reject_below if self.settings.reject_below is not None else stored
        self.batcher = Batcher(self.predictor.predict_proba, self.settings.predict_threads,
                               max(self.settings.max_batch, 64), None, self.settings.timeout_seconds)
        self.image_pool = ThreadPoolExecutor(self.settings.image_threads, thread_name_prefix="digits-images")

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 0..1 -> (N, classes) float32, batched; TimeoutError after the timeout.
        The answers are counted in the metrics per model call (Metrics.observe_batch)."""
        return await self.batcher.submit(images)

    def admit_pictures(self) -> None:
        """Raise Busy when more than 8 pictures per image thread are queued or running (pictures that
        take minutes to prepare must not pile up without bound)."""
        if self.image_jobs >= 8 * self.settings.image_threads:
            raise Busy(f"{self.image_jobs} pictures are being prepared; retry in a few seconds")

    async def run_blocking(self, function, *args):
        """`function(*args)` on the image pool (reading pictures: decoding, cleaning, cutting, classifying)."""
        self.image_jobs += 1
        running = asyncio.get_running_loop().run_in_executor(self.image_pool, function, *args)
        running.add_done_callback(self._image_job_done)  # counts until the thread is free, even after a timeout
        return await asyncio.wait_for(asyncio.shield(running), self.settings.timeout_seconds)

    def _image_job_done(self, _) -> None:
        self.image_jobs -= 1

    def close(self) -> None:
        self.ready = False
        self.batcher.close()
        self.image_pool.shutdown(wait=False, cancel_futures=True)
