"""The served model (digits.api.service): dynamic batching, the pixel budget and fair sharing of the image
threads, the model's name, loading the predictor, and the service before the model is loaded (not ready: 503)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bodies import settings

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")

from digits import runs  # noqa: E402
from digits.api.service import (DEADLINE, SERVING_BATCH, Batcher, Busy, PixelBudget, Service, load_predictor,  # noqa: E402
                                model_name)


def test_batcher_merges_queued_requests_and_keeps_order():
    calls, release = [], threading.Event()

    def predict(batch):
        calls.append(len(batch))
        assert release.wait(30), "the first call was never released"  # the first call holds the one thread
        return np.repeat(batch.reshape(len(batch), -1)[:, :1], 10, axis=1)

    async def scenario():
        batcher = Batcher(predict, threads=1, max_rows=64)
        futures = [batcher.submit(np.full((1 + index % 2, 28, 28), index, np.float32)) for index in range(12)]
        release.set()  # every request is queued by now: the 11 behind the first wait for its thread
        results = await asyncio.gather(*futures)
        batcher.close()
        return results

    results = asyncio.run(scenario())
    assert [int(result[0, 0]) for result in results] == list(range(12))
    assert [len(result) for result in results] == [1 + index % 2 for index in range(12)]
    assert calls[0] == 1 and len(calls) == 2 and sum(calls) == 18  # the first alone, the other 11 together


def test_batcher_splits_a_queue_larger_than_max_rows():
    calls, release = [], threading.Event()

    def predict(batch):
        calls.append(len(batch))
        release.wait(30)
        return np.zeros((len(batch), 10), np.float32)

    async def scenario():
        batcher = Batcher(predict, threads=1, max_rows=4)
        futures = [batcher.submit(np.zeros((3, 28, 28), np.float32)) for _ in range(4)]
        release.set()
        results = await asyncio.gather(*futures)
        batcher.close()
        return results

    results = asyncio.run(scenario())
    assert [len(result) for result in results] == [3, 3, 3, 3]
    assert calls == [3, 3, 3, 3]  # two requests (6 rows) would pass max_rows=4: each runs alone


def test_batcher_passes_errors_and_times_out():
    def broken(batch):
        raise RuntimeError("model exploded")

    release, finished = threading.Event(), []

    def slow(batch):
        release.wait(30)  # the model call runs until the test lets it go
        finished.append(len(batch))
        return np.zeros((len(batch), 10), np.float32)

    async def scenario():
        failing = Batcher(broken)
        with pytest.raises(RuntimeError, match="exploded"):
            await failing.submit(np.zeros((1, 28, 28), np.float32))
        waiting = Batcher(slow, timeout=0.05)
        with pytest.raises(TimeoutError):
            await waiting.submit(np.zeros((1, 28, 28), np.float32))
        # the one thread still busy: a running and a queued request both time out while the model call
        # is still running (not when it finishes), and the queue is left empty
        outcomes = await asyncio.gather(*(waiting.submit(np.zeros((1, 28, 28), np.float32)) for _ in range(2)),
                                        return_exceptions=True)
        assert all(isinstance(outcome, TimeoutError) for outcome in outcomes), outcomes
        assert finished == [] and not waiting._pending
        release.set()
        for _ in range(3000):  # let the model call end before the loop closes
            if not waiting._busy:
                break
            await asyncio.sleep(0.01)
        assert finished == [1] and not waiting._busy
        failing.close()
        waiting.close()

    asyncio.run(scenario())


def test_model_name_comes_from_the_run(cnn_fast_run, tmp_path):
    info = runs.load_info(cnn_fast_run)
    assert model_name(info) == "cnn"
    assert model_name(info, "my model/v2") == "my-model-v2"
    assert model_name(runs.RunInfo(Path("/runs/mlp-2024"), {}, {})) == "mlp-2024"
    exported = tmp_path / "digits-v3.onnx"  # an exported model file: its name without the suffix
    exported.write_bytes(b"onnx")
    assert model_name(runs.RunInfo(exported, {}, {})) == "digits-v3"
    assert model_name(runs.RunInfo(Path("/runs/###"), {}, {})) == "digits"  # nothing URL-safe left


def test_load_predictor_reads_the_run_the_settings_name(cnn_fast_run, tmp_path, no_shipped_model):
    from digits.predictor import Predictor

    named = load_predictor(settings(run=str(cnn_fast_run)))
    assert isinstance(named, Predictor) and named.info.run_dir == cnn_fast_run
    assert named.backend in ("onnx", "litert")  # a portable copy, never Keras unless asked for
    latest = load_predictor(settings(runs_dir=str(cnn_fast_run.parent)))  # no run named: the latest
    assert latest.info.run_dir == cnn_fast_run
    pinned = load_predictor(settings(run=str(cnn_fast_run), backend="onnx"))
    assert pinned.backend == "onnx" and set(pinned.latencies) == set()  # one candidate: nothing to time
    probabilities = pinned.predict_proba(np.zeros((SERVING_BATCH, 28, 28), np.uint8))
    assert probabilities.shape == (SERVING_BATCH, 10)
    with pytest.raises(ValueError, match="does not exist"):
        load_predictor(settings(run=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="no trained model found"):
        load_predictor(settings(runs_dir=str(tmp_path)))


def test_not_ready_until_the_model_is_loaded(predictor):
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    app = create_app(settings(), predictor=predictor)
    test_client = TestClient(app)  # no `with`: the lifespan (model loading) has not run
    assert test_client.get("/health/live").json() == {"status": "loading"}
    for path in ("/health/ready", "/v2/health/ready", "/v2/models/cnn/ready", "/info"):
        assert test_client.get(path).status_code == 503
    response = test_client.post("/predict", json={"pixels": [[0] * 28] * 28})
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert test_client.get("/v2/health/live").status_code == 200


def test_pixel_budget_admits_in_arrival_order_and_refuses_at_the_deadline():
    async def scenario():
        loop, budget, admitted = asyncio.get_running_loop(), PixelBudget(100), []
        await budget.acquire(80, loop.time() + 5)

        async def request(name, pixels, seconds=5.0):
            try:
                await budget.acquire(pixels, loop.time() + seconds)
            except Busy as error:
                admitted.append((name, str(error)))
                return
            admitted.append(name)

        big = asyncio.ensure_future(request("big", 90))
        await asyncio.sleep(0)
        small = asyncio.ensure_future(request("small", 10))  # would fit now, but waits behind "big": no starving
        late = asyncio.ensure_future(request("late", 10, seconds=0.05))
        await asyncio.sleep(0.2)
        assert admitted[0][0] == "late" and "DIGITS_MAX_PENDING_PIXELS" in admitted[0][1]  # its deadline passed
        assert budget.used == 80
        budget.release(80)
        await asyncio.gather(big, small, late)
        assert admitted[1:] == ["big", "small"] and budget.used == 100

    asyncio.run(scenario())


def test_requests_share_the_image_threads_fairly_and_stop_at_their_deadline(predictor):
    service = Service(predictor, settings(image_threads=2), "cnn")
    order, both_queued = [], threading.Event()

    def read(request, index):  # stands in for reading one picture
        order.append((request, index))
        if request == "big" and index < 2:
            assert both_queued.wait(30)  # the first two hold both threads until the small request has queued
        return request, index

    async def scenario():
        async def release_when_queued():
            while service.image_jobs < 3:
                await asyncio.sleep(0.001)
            both_queued.set()

        big = service.read_all(read, [("big", index) for index in range(20)], 20)
        small = service.read_all(read, [("small", 0)], 1)
        return await asyncio.gather(big, small, release_when_queued())

    big, small, _ = asyncio.run(scenario())
    assert big == [("big", index) for index in range(20)] and small == [("small", 0)]
    assert order.index(("small", 0)) <= 3  # behind one picture per thread of the big request, not all 20
    assert service.budget.used == 0

    started = []

    async def expired():  # a request past its deadline starts no more pictures
        DEADLINE.set(asyncio.get_running_loop().time() + 0.3)
        with pytest.raises(TimeoutError):
            await service.read_all(lambda index: started.append(index) or time.sleep(0.1),
                                   [(index,) for index in range(50)], 50)
        for _ in range(600):  # the pictures it had started finish, and give their pixels back
            if not service.image_jobs:
                break
            await asyncio.sleep(0.05)

    asyncio.run(expired())
    assert 0 < len(started) < 50 and service.budget.used == 0
    service.close()
