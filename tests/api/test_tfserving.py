"""The TensorFlow Serving REST API (digits.api.routes.tfserving): status, metadata, :predict in the row
and columnar formats, and every bad request as TF Serving's `{"error": ...}`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")


def test_tf_serving_status_metadata_and_predict(client, predictor, mnist):
    x, _ = mnist
    expected = predictor.predict_proba(x[:3])
    status = client.get("/v1/models/cnn").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert client.get("/v1/models/cnn/versions/1").json() == status
    signature = client.get("/v1/models/cnn/metadata").json()["metadata"]["signature_def"]["signature_def"]
    assert set(signature["serving_default"]["inputs"]) == {"images"}
    assert client.get("/v1/models/cnn/versions/1/metadata").status_code == 200
    for body, key in (({"instances": x[:3].tolist()}, "predictions"),
                      ({"instances": [{"images": image.tolist()} for image in x[:3]]}, "predictions"),
                      ({"signature_name": "serving_default", "inputs": (x[:3] / 255.0).tolist()}, "outputs"),
                      ({"inputs": {"images": x[:3, :, :, None].tolist()}}, "outputs")):
        response = client.post("/v1/models/cnn:predict", json=body)
        assert response.status_code == 200, response.text
        assert list(response.json()) == [key]
        np.testing.assert_allclose(response.json()[key], expected, atol=1e-5)
    versioned = client.post("/v1/models/cnn/versions/1:predict", json={"instances": x[:1].tolist()})
    np.testing.assert_allclose(versioned.json()["predictions"], expected[:1], atol=1e-5)


@pytest.mark.parametrize("path, body, status, fragment", [
    ("/v1/models/resnet:predict", {"instances": []}, 404, "Servable not found"),
    ("/v1/models/cnn/versions/3:predict", {"instances": []}, 404, "Specific(cnn, 3)"),
    ("/v1/models/cnn:predict", {"instances": [[[0] * 28] * 28], "signature_name": "other"}, 400, "other"),
    ("/v1/models/cnn:predict", {"instances": [], "inputs": []}, 400, "exactly one"),
    ("/v1/models/cnn:predict", {}, 400, "exactly one"),
    ("/v1/models/cnn:predict", {"instances": []}, 400, "non-empty"),
    ("/v1/models/cnn:predict", {"instances": [[[0] * 28] * 27]}, 400, "shape (1, 27, 28)"),
    ("/v1/models/cnn:predict", {"instances": [{"x": [[0] * 28] * 28}]}, 400, "'images'"),
    ("/v1/models/cnn:predict", {"inputs": {"x": 1}}, 400, "'images'"),
    ("/v1/models/cnn:predict", {"inputs": [[0] * 28] * 28}, 400, "(N, 28, 28)"),
    ("/v1/models/cnn:predict", {"instances": [[["x"] * 28] * 28]}, 400, "only numbers"),
    ("/v1/models/cnn:predict", {"instances": [[[0] * 28] * 28], "extra": 1}, 400, "unknown field"),
    ("/v1/models/cnn:predict", {"instances": [[[0] * 28] * 28] * 9}, 413, "limit of 8"),
    ("/v1/models/cnn:classify", {"instances": [[[0] * 28] * 28]}, 400, ":predict"),
    ("/v1/models/cnn:predict", [1], 400, "JSON object"),
])
def test_tf_serving_errors(client, path, body, status, fragment):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and fragment in response.json()["error"]


def test_tf_serving_malformed_bodies(client):
    for content, headers, status in ((b"{", {"Content-Type": "application/json"}, 400), (b"", {}, 400),
                                     (b"<xml/>", {"Content-Type": "application/xml"}, 415)):
        response = client.post("/v1/models/cnn:predict", content=content, headers=headers)
        assert response.status_code == status and "error" in response.json()
    assert client.get("/v1/models/resnet").status_code == 404
