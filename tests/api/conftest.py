"""API fixtures: a real small model (`cnn_fast_run`) behind TestClient apps, MNIST test images, and one live
`digits serve` on loopback. Plain helpers (limits, bodies, the live server) are in bodies.py."""

from __future__ import annotations

import pytest

from bodies import LiveServer, settings


@pytest.fixture(scope="session")
def predictor(cnn_fast_run):
    from digits.predictor import Predictor

    return Predictor(cnn_fast_run)


@pytest.fixture(scope="session")
def mnist():
    from digits import data

    dataset = data.load_dataset("mnist")
    return dataset.x_test[:64], dataset.y_test[:64]


@pytest.fixture(scope="module")
def client(predictor):
    """A TestClient on an app serving `predictor` (one app per test module: its own metrics)."""
    pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    with TestClient(create_app(settings(), predictor=predictor)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live(cnn_fast_run, tmp_path_factory):
    """The URL of one real server for the whole session (test_app.py and the browser tests share it)."""
    pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")
    server = LiveServer(cnn_fast_run, tmp_path_factory.mktemp("live-server")).start()
    try:
        yield server.url
    finally:
        server.stop()
