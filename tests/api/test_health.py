"""Health, model info, Prometheus metrics (digits.api.routes.health) and the API docs (/docs, /redoc,
the OpenAPI document), all served without internet."""

from __future__ import annotations

import pytest

from bodies import MAX_BATCH, MAX_BODY

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")


def test_health_and_info(client, cnn_fast_run):
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["name"] == "cnn" and info["class_names"] == [str(digit) for digit in range(10)]
    assert info["test_accuracy"] > 0.95 and info["max_batch"] == MAX_BATCH
    assert info["version"] == "1" and info["backend"] == client.app.state.service.predictor.backend
    assert info["uncertain_below"] == 0.5 and info["max_body_bytes"] == MAX_BODY
    assert info["source"] == cnn_fast_run.name and "/" not in info["source"]  # the run's name, not its path


def test_metrics_count_requests_predictions_and_batches(client, mnist):
    client.post("/predict", json={"pixels": mnist[0][:2].tolist()})  # a 7 and a 2
    client.post("/predict", content=b"{", headers={"Content-Type": "application/json"})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'digits_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'digits_http_requests_total{method="POST",route="/predict",status="400"}' in text
    assert 'digits_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/predict"}' in text
    assert 'digits_predictions_total{label="7"}' in text and "digits_model_batch_size_count" in text
    assert 'digits_model_info{backend="' in text


def test_openapi_and_docs_are_served_offline(client):
    schema = client.get("/openapi.json").json()
    for path in ("/predict", "/v2/models/{name}/infer", "/v1/models/{name}:predict", "/v2/health/ready", "/metrics"):
        assert path in schema["paths"], path
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    mode = next(parameter for parameter in schema["paths"]["/predict"]["post"]["parameters"]
                if parameter["name"] == "mode")
    assert mode["schema"] == {"type": "string", "enum": ["auto", "digit", "number"], "default": "auto"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text  # Swagger UI from the package, not a CDN
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 200
