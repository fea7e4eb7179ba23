"""The served model (digits.api.service): dynamic batching, the model's name, loading the predictor,
and the service before the model is loaded (not ready: 503)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from bodies import settings

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")

from digits import runs  # noqa: E402
from digits.api.service import SERVING_BATCH, Batcher, load_predictor, model_name  # noqa: E402


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
