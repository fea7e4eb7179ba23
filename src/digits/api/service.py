"""The served model: one `Predictor` per worker process, its name and version, and the thread pools.

Model calls never run on the event loop. `Batcher` is dynamic batching: a request's pixels
go to a prediction thread at once when one is free; requests that arrive while every
thread is busy wait and then run together as one batch (one model call, one thread hop),
which is what keeps throughput high and tail latency low under many connections. Image
decoding and preprocessing run on a second, separate pool, so a large photo upload never
delays the small `pixels` requests queued behind it.

Pictures are read on their own pool by `reading.read`, the path every interface shares; the
model calls inside a reading (candidate cuts of a number, then the digits) run on that
thread, unbatched. Work on pictures is bounded by pixels, not by count (`PixelBudget`): a
request's declared pixels above `max_request_pixels` are refused before anything is decoded,
and requests wait in arrival order until their pixels fit in `max_pending_pixels` (503 if
their deadline passes first). Admitted requests share the image threads fairly: each keeps at
most `image_threads` pictures on the pool and queues its next one behind everyone else's
(`Service.read_all`), so an upload of one picture waits for one picture of a 256-picture
request, not all of them; and a request stops reading once its deadline has passed or its
client has gone. Every request has one deadline, `timeout_seconds` after its header
(`DEADLINE`, set by telemetry.Guard; gRPC calls start theirs on submission). The model name in /v1 and /v2 URLs is `Settings.model_name` if set, else the run config's
`model` (e.g. "cnn"), else the run directory's (or exported file's) name; the version is "1".
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .. import runs
from ..predictor import Predictor
from .settings import Settings

VERSION = "1"
# the current request's deadline on the event loop's clock (telemetry.Guard sets it from the header's arrival)
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("digits_deadline", default=None)


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

    def submit(self, images: np.ndarray, deadline: float | None = None) -> asyncio.Future:
        """A future of the (N, classes) probabilities, failing with TimeoutError after `deadline` (the loop's
        clock; default: `timeout` seconds from now); call from the event loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((images, future, loop.time() + self._timeout if deadline is None else deadline))
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


class ClientGone(Exception):
    """The client hung up while its pictures were being read (nothing to answer)."""


class PixelBudget:
    """At most `limit` pixels of pictures admitted at once; requests wait in arrival order (first come, first
    served: a large request is not overtaken for ever by small ones) until theirs fit, or their deadline."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    async def acquire(self, pixels: int, deadline: float) -> None:
        """Admit `pixels` (at most `limit`); Busy if they do not fit before `deadline` (the loop's clock)."""
        pixels = min(pixels, self.limit)
        if not self._waiting and self.used + pixels <= self.limit:
            self.used += pixels
            return
        loop = asyncio.get_running_loop()
        admitted = loop.create_future()
        self._waiting.append((pixels, admitted))
        timer = loop.call_at(deadline, lambda: admitted.done() or admitted.set_exception(TimeoutError()))
        try:
            await admitted
        except BaseException as error:  # the deadline, or the request cancelled
            if admitted.done() and not admitted.cancelled() and admitted.exception() is None:
                self.release(pixels)  # admitted in the same instant: hand the pixels on
            else:
                self._waiting = deque(item for item in self._waiting if item[1] is not admitted)
                self._wake()
            if isinstance(error, TimeoutError):
                raise Busy(f"pictures of {self.used:,} pixels are being read (the limit is {self.limit:,}, "
                           "DIGITS_MAX_PENDING_PIXELS); retry in a few seconds") from None
            raise
        finally:
            timer.cancel()

    def release(self, pixels: int) -> None:
        self.used -= min(pixels, self.limit)
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.limit:
            pixels, admitted = self._waiting.popleft()
            if not admitted.done():
                self.used += pixels
                admitted.set_result(None)


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def scored(predictor, images: np.ndarray) -> np.ndarray:
    """One batched model call: (N, classes + 1) float64, the calibrated probabilities then the digit score (one
    array, so the batcher slices every request's rows out of it alike)."""
    probabilities, scores = predictor.predict_scores(images)
    return np.column_stack([np.asarray(probabilities, np.float64), scores])


def model_name(info: runs.RunInfo, override: str | None = None) -> str:
    """URL-safe model name: the override, else the config's model name, else the file or directory name."""
    source = Path(info.run_dir)
    name = override or info.config.get("model") or (source.stem if source.is_file() else source.name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name)).strip("-") or "digits"


SERVING_BATCH = 16  # images per model call under load (dynamic batching): the backend is chosen at this size


def load_predictor(settings: Settings) -> Predictor:
    """The settings' run or model file (or the latest run) loaded and warmed, with its sequence model (if it has
    one) loaded too, before the first request; ValueError if there is none."""
    predictor = Predictor(runs.resolve(settings.run, settings.runs_dir), backend=settings.backend,
                          batch=SERVING_BATCH, threads=settings.model_threads)
    if predictor.sequence is not None:
        predictor.sequence.load()
    return predictor


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
    budget: PixelBudget = field(init=False)  # pixels of pictures admitted (max_pending_pixels)

    def __post_init__(self):
        self.class_names = list(self.predictor.class_names)
        stored = getattr(self.predictor, "reject_below", None)
        self.reject_below = self.settings.reject_below if self.settings.reject_below is not None else stored
        self.batcher = Batcher(partial(scored, self.predictor), self.settings.predict_threads,
                               max(self.settings.max_batch, 64), None, self.settings.timeout_seconds)
        self.image_pool = ThreadPoolExecutor(self.settings.image_threads, thread_name_prefix="digits-images")
        self.budget = PixelBudget(self.settings.max_pending_pixels)

    def deadline(self) -> float:
        """The current request's deadline on the loop's clock (`DEADLINE`), else `timeout_seconds` from now."""
        deadline = DEADLINE.get()
        return asyncio.get_running_loop().time() + self.settings.timeout_seconds if deadline is None else deadline

    async def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 28, 28) float32 0..1 -> ((N, classes) float32 probabilities, (N,) digit scores), batched;
        TimeoutError past the request's deadline. The answers are counted in the metrics per model call
        (Metrics.observe_batch)."""
        rows = await self.batcher.submit(images, DEADLINE.get())
        return rows[:, :-1].astype(np.float32), rows[:, -1]

    async def read_all(self, function, jobs: list[tuple], pixels: int, gone=None) -> list:
        """`function(*job)` for every job on the image pool, in order; the request's `pixels` (already checked
        against max_request_pixels) are admitted by the budget first (Busy if they do not fit in time). At most
        `image_threads` of this request's jobs are on the pool at once, each next one queued behind other
        requests' (fair sharing); no job starts after the deadline (TimeoutError) or once `await gone()` says
        the client has hung up (ClientGone)."""
        deadline = self.deadline()
        await self.budget.acquire(pixels, deadline)
        loop, results, started = asyncio.get_running_loop(), [None] * len(jobs), []
        state = {"next": 0, "stop": False}

        async def lane() -> None:
            while state["next"] < len(jobs) and not state["stop"]:
                index = state["next"]
                state["next"] += 1
                try:
                    if loop.time() >= deadline:
                        raise TimeoutError()
                    if gone is not None and await gone():
                        raise ClientGone()
                    started.append(self._submit(function, *jobs[index]))
                    results[index] = await asyncio.wait_for(asyncio.shield(started[-1]),
                                                            max(deadline - loop.time(), 0.0))
                except BaseException:
                    state["stop"] = True  # the other lanes start nothing more
                    raise

        try:
            await asyncio.gather(*(lane() for _ in range(min(len(jobs), self.settings.image_threads))))
            return results
        finally:  # the pixels stay counted until the last picture this request started is done
            running = [future for future in started if not future.done()]
            left = [len(running)]

            def finished(_) -> None:
                left[0] -= 1
                if left[0] == 0:
                    self.budget.release(pixels)

            for future in running:
                future.add_done_callback(finished)
            if not running:
                self.budget.release(pixels)

    def _submit(self, function, *args) -> asyncio.Future:
        """`function(*args)` on the image pool, counted in image_jobs until its thread is free."""
        self.image_jobs += 1
        running = asyncio.get_running_loop().run_in_executor(self.image_pool, function, *args)
        running.add_done_callback(self._image_job_done)
        return running

    def _image_job_done(self, _) -> None:
        self.image_jobs -= 1
        if self.metrics is not None:
            self.metrics.pictures.inc()

    def close(self) -> None:
        self.ready = False
        self.batcher.close()
        self.image_pool.shutdown(wait=False, cancel_futures=True)
