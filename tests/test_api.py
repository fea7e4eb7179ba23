"""The HTTP service: every route and every bad input through TestClient, then a real uvicorn
process on loopback driven by tritonclient, raw sockets and schemathesis.

A real small model (`cnn_fast_run`) serves throughout; images reach it through the one
preprocessing path (digits.images), which the tests check by comparing with it directly.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits import data, engine, images

fastapi = pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")
from fastapi.testclient import TestClient  # noqa: E402

from digits.api import cli as api_cli  # noqa: E402
from digits.api.app import create_app  # noqa: E402
from digits.api import tensors  # noqa: E402
from digits.api.service import Batcher, model_name  # noqa: E402
from digits.api.settings import Settings, load_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MAX_BATCH, MAX_BODY = 8, 2 * 2**20


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture(scope="module")
def predictor(cnn_fast_run):
    return engine.Predictor(cnn_fast_run)


@pytest.fixture(scope="module")
def mnist():
    dataset = data.load_dataset("mnist")
    return dataset.x_test[:64], dataset.y_test[:64]


def settings(**changes) -> Settings:
    return Settings(**{"max_batch": MAX_BATCH, "max_body_bytes": MAX_BODY, "timeout_seconds": 10.0, **changes})


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app(settings(), predictor=predictor)) as test_client:
        yield test_client


def png(array: np.ndarray, scale: int = 4, invert: bool = True) -> bytes:
    """An MNIST-style array as a PNG a person might upload: dark ink on white, enlarged."""
    picture = Image.fromarray(255 - array if invert else array)
    picture = picture.resize((array.shape[1] * scale, array.shape[0] * scale), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def digit_strip(cells: list[np.ndarray], gap: int = 8, border: int = 12) -> np.ndarray:
    width = 2 * border + 28 * len(cells) + gap * (len(cells) - 1)
    canvas = np.zeros((28 + 2 * border, width), np.uint8)
    for position, cell in enumerate(cells):
        left = border + position * (28 + gap)
        canvas[border:border + 28, left:left + 28] = cell
    return canvas


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels in a few bytes (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def detail(response) -> str:
    body = response.json()
    return body["detail"] if "detail" in body else body["error"]


def v2_request(batch: np.ndarray, datatype: str = "FP32", **extra) -> dict:
    return {"inputs": [{"name": "images", "shape": list(batch.shape), "datatype": datatype,
                        "data": batch.ravel().tolist()}], **extra}


def binary_body(header: dict, *tensors: bytes) -> tuple[bytes, dict]:
    json_part = json.dumps(header).encode()
    return json_part + b"".join(tensors), {"Inference-Header-Content-Length": str(len(json_part)),
                                           "Content-Type": "application/octet-stream"}


# ------------------------------------------------------------------ POST /predict


def test_predict_pixels_match_the_model(client, predictor, mnist):
    x, y = mnist
    expected = predictor.predict_proba(x[:4])
    single = client.post("/predict", json={"pixels": x[0].tolist()})
    assert single.status_code == 200, single.text
    body = single.json()
    assert body["model"] == "cnn" and body["version"] == "1"
    (result,) = body["predictions"]
    assert result["kind"] == "digit" and result["digit"] == expected[0].argmax() == y[0]
    assert result["label"] == str(y[0]) and result["uncertain"] is False
    np.testing.assert_allclose(result["probabilities"], expected[0], atol=1e-5)
    assert result["confidence"] == pytest.approx(expected[0].max(), abs=1e-5)
    # a batch, and floats in 0..1 instead of 0..255, give the same answers
    batch = client.post("/predict", json={"pixels": (x[:4] / 255.0).tolist()}).json()["predictions"]
    np.testing.assert_allclose([row["probabilities"] for row in batch], expected, atol=1e-5)
    assert "input" not in batch[0] and "ink_found" not in batch[0]


def test_the_uint8_shortcut_agrees_with_the_general_path(mnist):
    """tensors.uint8_image (the common 28x28 0..255 request) gives what np.asarray + to_batch give,
    and hands everything else (floats, booleans, bad values, other shapes) to the general path."""
    x, _ = mnist
    whole = x[0].tolist()
    fast = tensors.uint8_image(whole)
    assert fast is not None and fast.dtype == np.uint8 and fast.shape == (1, 28, 28)
    np.testing.assert_array_equal(tensors.to_batch(fast, "pixels", 8),
                                  tensors.to_batch(tensors.as_array(whole, "pixels"), "pixels", 8))
    mixed = [list(row) for row in whole]
    mixed[14][14] = True  # a boolean among whole numbers: numpy reads it as 1, and so does the shortcut
    np.testing.assert_array_equal(tensors.uint8_image(mixed)[0], np.asarray(mixed))
    others = {"floats": (x[0] / 255.0).tolist(), "all booleans": [[False] * 28 for _ in range(28)],
              "negative": [[-1] * 28 for _ in range(28)], "above 255": [[256] * 28 for _ in range(28)],
              "null": [[None] * 28 for _ in range(28)], "string": [["7"] * 28 for _ in range(28)],
              "ragged": [[0] * 28 for _ in range(27)] + [[0] * 27], "a batch": [whole], "27 rows": whole[:27]}
    for name, value in others.items():
        assert tensors.uint8_image(value) is None, name


def test_predict_include_input_returns_what_the_model_saw(client, mnist):
    x, _ = mnist
    for query, body in (("?include_input=true", {"pixels": x[0].tolist()}),
                        ("", {"pixels": x[0].tolist(), "include_input": True})):
        result = client.post("/predict" + query, json=body).json()["predictions"][0]
        np.testing.assert_array_equal(np.array(result["input"]), x[0])


def test_uncertain_threshold_is_configurable(predictor, mnist):
    x, _ = mnist
    for threshold, expected in ((1.0, True), (0.0, False)):
        with TestClient(create_app(settings(uncertain_below=threshold), predictor=predictor)) as test_client:
            result = test_client.post("/predict", json={"pixels": x[0].tolist()}).json()["predictions"][0]
            assert result["uncertain"] is expected


def test_uploads_take_the_one_preprocessing_path(client, predictor, mnist):
    x, y = mnist
    files = [("files", (f"digit{index}.png", png(x[index]), "image/png")) for index in range(3)]
    response = client.post("/predict?include_input=true", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["predictions"]
    assert [result["filename"] for result in results] == ["digit0.png", "digit1.png", "digit2.png"]
    for index, result in enumerate(results):
        prepared = images.prepare_file(png(x[index]))  # what the CLI and the page do with the same file
        np.testing.assert_allclose(result["probabilities"], predictor.predict_proba(prepared.image[None])[0],
                                   atol=1e-5)
        np.testing.assert_array_equal(result["input"], np.round(prepared.image * 255).astype(np.uint8))
        assert result["digit"] == y[index] and result["ink_found"] is True and result["inverted"] is True
        assert len(result["box"]) == 4


def test_raw_image_body_and_base64_json(client, mnist):
    x, y = mnist
    picture = png(x[1])
    raw = client.post("/predict", content=picture, headers={"Content-Type": "image/png"}).json()["predictions"][0]
    assert raw["digit"] == y[1]
    encoded = base64.b64encode(picture).decode()
    for body in ({"image": encoded}, {"image": "data:image/png;base64," + encoded},
                 {"image": base64.urlsafe_b64encode(picture).decode()}):
        result = client.post("/predict", json=body).json()["predictions"][0]
        assert result["probabilities"] == raw["probabilities"]
    listed = client.post("/predict", json={"image": [encoded, base64.b64encode(png(x[2])).decode()]}).json()
    assert [row["digit"] for row in listed["predictions"]] == [y[1], y[2]]
    assert [row["filename"] for row in listed["predictions"]] == ["image[0]", "image[1]"]


def test_number_mode_reads_several_digits(client, mnist):
    x, y = mnist
    picture = png(digit_strip([x[1], x[3], x[0]]))  # 2, 0, 7
    files = {"file": ("number.png", picture, "image/png")}
    result = client.post("/predict?mode=number&include_input=true", files=files).json()["predictions"][0]
    assert result["kind"] == "number" and result["number"] == "".join(str(y[i]) for i in (1, 3, 0)) == "207"
    assert result["ink_found"] is True and len(result["digits"]) == 3
    assert result["confidence"] == pytest.approx(np.prod([digit["confidence"] for digit in result["digits"]]))
    assert all(len(digit["probabilities"]) == 10 and np.array(digit["input"]).shape == (28, 28)
               for digit in result["digits"])
    auto = client.post("/predict?mode=auto", files=files).json()["predictions"][0]
    assert auto["kind"] == "number" and auto["number"] == "207"
    single = client.post("/predict?mode=auto", files={"file": ("one.png", png(x[0]), "image/png")}).json()
    assert single["predictions"][0]["kind"] == "digit"
    form_mode = client.post("/predict", files=files, data={"mode": "number"}).json()["predictions"][0]
    assert form_mode["number"] == "207"


def test_blank_picture_has_no_digit(client):
    blank = png(np.zeros((28, 28), np.uint8))
    for mode in ("digit", "number"):
        result = client.post(f"/predict?mode={mode}", content=blank, headers={"Content-Type": "image/png"})
        result = result.json()["predictions"][0]
        assert result["ink_found"] is False and result["uncertain"] is True
        assert (result["digit"] is None) if mode == "digit" else (result["number"] == "")


@pytest.mark.parametrize("body, status, fragment", [
    (b"", 400, "empty"),
    (b"{not json", 400, "not valid JSON"),
    (b'{"pixels": [[NaN]]}', 400, "not valid JSON"),
    (b"[1, 2]", 422, "must be an object"),
    (b'{"pixel": []}', 422, "unknown field"),
    (b'{"pixels": null}', 422, "exactly one"),
    (b'{"pixels": [[0]], "image": "x"}', 422, "exactly one"),
    (b'{"pixels": [[0, 0], [0]]}', 422, "rectangular"),
    (b'{"pixels": [[1, 2], [3, 4]]}', 422, "shape (2, 2)"),
    (json.dumps({"pixels": np.zeros((27, 28)).tolist()}).encode(), 422, "shape (27, 28)"),
    (json.dumps({"pixels": np.zeros((1, 28, 28, 3)).tolist()}).encode(), 422, "shape (1, 28, 28, 3)"),
    (json.dumps({"pixels": [[["a"] * 28] * 28]}).encode(), 422, "only numbers"),
    (json.dumps({"pixels": [[[None] * 28] * 28]}).encode(), 422, "only numbers"),
    (json.dumps({"pixels": [[True] * 28] * 28}).encode(), 422, "true/false"),
    (json.dumps({"pixels": np.full((28, 28), -1).tolist()}).encode(), 422, "0..1 or 0..255"),
    (json.dumps({"pixels": np.full((28, 28), 256).tolist()}).encode(), 422, "0..1 or 0..255"),
    (b'{"pixels": [[1e999]]}', 400, "infinity"),  # JSON cannot carry NaN or infinities; binary tensors can
    (json.dumps({"pixels": []}).encode(), 422, "shape (0,)"),
    (json.dumps({"pixels": np.zeros((28, 28)).tolist(), "mode": "number"}).encode(), 422, "needs a picture"),
    (json.dumps({"pixels": np.zeros((28, 28)).tolist(), "mode": "digits"}).encode(), 422, "mode='digits'"),
    (json.dumps({"pixels": np.zeros((28, 28)).tolist(), "include_input": "maybe"}).encode(), 422, "not a boolean"),
    (json.dumps({"image": "not base64!"}).encode(), 422, "not valid base64"),
    (json.dumps({"image": 42}).encode(), 422, "base64 string"),
    (json.dumps({"image": []}).encode(), 422, "empty list"),
    (json.dumps({"image": "data:image/png,abc"}).encode(), 422, "without ;base64"),
    (json.dumps({"image": base64.b64encode(b"%PDF-1.4 not a picture").decode()}).encode(), 422, "PDF"),
    (json.dumps({"pixels": np.zeros((MAX_BATCH + 1, 28, 28)).tolist()}).encode(), 413, "limit of 8"),
    (json.dumps({"image": ["AAAA"] * (MAX_BATCH + 1)}).encode(), 413, "limit of 8"),
])
def test_predict_json_errors_are_clear_4xx(client, body, status, fragment):
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment in detail(response)


@pytest.mark.parametrize("content, status, fragment", [
    (b"", 400, "empty"),
    (b"hello, not a picture", 422, "not an image"),
    (None, 422, "truncated or damaged"),  # the first half of a real PNG
    (png_header(60_000, 60_000), 422, "decompression bomb"),
    (png_header(9_000, 9_000), 422, "decompression bomb"),  # 81 MP: over digits.images' limit, under Pillow's
])
def test_bad_pictures_are_422_not_500(client, mnist, content, status, fragment):
    content = png(mnist[0][0])[:300] if content is None else content
    for response in (client.post("/predict", content=content, headers={"Content-Type": "image/png"}),
                     client.post("/predict", files={"file": ("bad.png", content, "image/png")})):
        if content == b"" and "multipart" in response.request.headers["content-type"]:
            continue  # an empty file part is a picture problem, covered by the raw case
        assert response.status_code == status, response.text
        assert fragment in detail(response)


def test_odd_pictures_never_cost_a_500(client):
    rng = np.random.default_rng(0)
    odd = {"line": np.pad(np.full((1, 40), 255, np.uint8), 6),  # far wider than tall
           "specks": ((rng.random((120, 120)) > 0.97) * 255).astype(np.uint8),
           "dot": np.pad(np.full((1, 1), 255, np.uint8), 1), "stripes": np.tile(np.uint8([0, 255] * 30), (60, 1)),
           "pixel": np.zeros((1, 1), np.uint8)}
    for name, array in odd.items():
        for mode in ("digit", "number", "auto"):
            response = client.post(f"/predict?mode={mode}", files={"file": (f"{name}.png", png(array, 1, False),
                                                                            "image/png")})
            assert response.status_code in (200, 422), (name, mode, response.text)
    assert client.get("/health/ready").status_code == 200


def test_a_saturated_image_pool_answers_503_and_pixels_still_work(client, mnist):
    service = client.app.state.service
    service.image_jobs += 1000  # as if a thousand slow pictures were being prepared
    try:
        response = client.post("/predict", content=png(mnist[0][0]), headers={"Content-Type": "image/png"})
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert "being prepared" in detail(response)
        assert client.post("/predict", json={"pixels": mnist[0][0].tolist()}).status_code == 200
    finally:
        service.image_jobs -= 1000


def test_predict_content_and_form_errors(client, mnist):
    assert client.post("/predict", content=b"pixels=1", headers={"Content-Type": "text/plain"}).status_code == 415
    assert client.post("/predict", content=b"x=1").status_code == 415  # a bare form post, as curl -d sends
    response = client.post("/predict", data={"mode": "digit"}, files={})
    assert response.status_code in (415, 422)
    no_files = client.post("/predict", files={"note": (None, "just text")})
    assert no_files.status_code == 422 and "no files" in detail(no_files)
    broken = client.post("/predict", content=b"--xyz\r\nnonsense",
                         headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert broken.status_code in (400, 422), broken.text
    too_many = [("files", (f"{index}.png", png(mnist[0][0]), "image/png")) for index in range(MAX_BATCH + 1)]
    response = client.post("/predict", files=too_many)
    assert response.status_code == 413 and "limit of 8" in detail(response)
    assert client.post("/predict?mode=sideways", json={"pixels": mnist[0][0].tolist()}).status_code == 422
    assert client.get("/predict").status_code == 405


def test_body_size_limit_is_413_for_every_protocol(client):
    big = b"0" * (MAX_BODY + 1)
    for path, key in (("/predict", "detail"), ("/v2/models/cnn/infer", "error"), ("/v1/models/cnn:predict", "error")):
        response = client.post(path, content=big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413, response.text
        assert "DIGITS_MAX_BODY_BYTES" in response.json()[key]
    chunks = (b"0" * 65536 for _ in range(MAX_BODY // 65536 + 2))  # chunked: no Content-Length to refuse early
    response = client.post("/predict", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "DIGITS_MAX_BODY_BYTES" in detail(response)


class SlowPredictor:
    """The real predictor, but every call after the first (the warm-up) takes `seconds`."""

    def __init__(self, real, seconds: float):
        self._real, self._seconds, self.calls = real, seconds, 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def predict_proba(self, batch):
        self.calls += 1
        if self.calls > 1:
            time.sleep(self._seconds)
        return self._real.predict_proba(batch)


def test_slow_predictions_time_out_with_504(predictor, mnist):
    slow = SlowPredictor(predictor, 1.0)
    with TestClient(create_app(settings(timeout_seconds=0.2), predictor=slow)) as test_client:
        for path, body in (("/predict", {"pixels": mnist[0][0].tolist()}),
                           ("/v1/models/cnn:predict", {"instances": [mnist[0][0].tolist()]}),
                           ("/v2/models/cnn/infer", v2_request(mnist[0][:1], "UINT8"))):
            response = test_client.post(path, json=body)
            assert response.status_code == 504, response.text
        time.sleep(1.2)  # the service keeps going: the next call (after the slow one drains) answers
        slow._seconds = 0
        assert test_client.post("/predict", json={"pixels": mnist[0][0].tolist()}).status_code == 200


def test_not_ready_until_the_model_is_loaded(predictor):
    app = create_app(settings(), predictor=predictor)
    test_client = TestClient(app)  # no `with`: the lifespan (model loading) has not run
    assert test_client.get("/health/live").json() == {"status": "loading"}
    for path in ("/health/ready", "/v2/health/ready", "/v2/models/cnn/ready", "/info"):
        assert test_client.get(path).status_code == 503
    response = test_client.post("/predict", json={"pixels": [[0] * 28] * 28})
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert test_client.get("/v2/health/live").status_code == 200


# ------------------------------------------------------------------ Open Inference Protocol (KServe V2)


def test_v2_health_and_metadata(client):
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    server = client.get("/v2").json()
    assert server["name"] == "digits" and "binary_tensor_data" in server["extensions"]
    metadata = client.get("/v2/models/cnn").json()
    assert metadata["versions"] == ["1"] and metadata["platform"].startswith("digits_")
    assert metadata["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get("/v2/models/cnn/versions/1").json() == metadata
    assert client.get("/v2/models/cnn/ready").status_code == 200
    assert client.get("/v2/models/cnn/versions/1/ready").status_code == 200
    assert client.get("/v2/models/cnn/config").json()["max_batch_size"] == MAX_BATCH
    assert client.post("/v2/repository/index").json() == [{"name": "cnn", "version": "1", "state": "READY"}]
    for path in ("/v2/models/resnet", "/v2/models/cnn/versions/2", "/v2/models/resnet/ready"):
        response = client.get(path)
        assert response.status_code == 404 and "'cnn'" in response.json()["error"] or "version" in response.text
    assert client.get("/v2/nothing/here").json() == {"error": "Not Found"}


def test_v2_infer_json_tensors(client, predictor, mnist):
    x, _ = mnist
    expected = predictor.predict_proba(x[:3])
    for datatype, batch in (("FP32", x[:3] / 255.0), ("FP64", x[:3] / 255.0), ("UINT8", x[:3]),
                            ("FP32", x[:3, :, :, None] / 255.0), ("FP32", x[:3].astype(float))):
        response = client.post("/v2/models/cnn/infer", json=v2_request(batch, datatype, id="req-1"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_name"] == "cnn" and body["model_version"] == "1" and body["id"] == "req-1"
        (output,) = body["outputs"]
        assert output["name"] == "probabilities" and output["datatype"] == "FP32" and output["shape"] == [3, 10]
        np.testing.assert_allclose(np.reshape(output["data"], (3, 10)), expected, atol=1e-5)
    nested = {"inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "UINT8", "data": x[:1].tolist()}]}
    versioned = client.post("/v2/models/cnn/versions/1/infer", json=nested).json()
    np.testing.assert_allclose(versioned["outputs"][0]["data"], expected[0], atol=1e-5)


def test_v2_infer_binary_tensors_and_classification(client, predictor, mnist):
    x, y = mnist
    expected = predictor.predict_proba(x[:4])
    tensor = (x[:4] / 255.0).astype("<f4").tobytes()
    header = {"inputs": [{"name": "images", "shape": [4, 28, 28], "datatype": "FP32",
                          "parameters": {"binary_data_size": len(tensor)}}],
              "parameters": {"binary_data_output": True}}
    body, headers = binary_body(header, tensor)
    response = client.post("/v2/models/cnn/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    meta = json.loads(response.content[:length])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 160
    np.testing.assert_allclose(np.frombuffer(response.content[length:], "<f4").reshape(4, 10), expected, atol=1e-5)
    # binary input, JSON output (per-output binary_data wins over the request default); gzip-encoded body
    header["outputs"] = [{"name": "probabilities", "parameters": {"binary_data": False}}]
    body, headers = binary_body(header, tensor)
    response = client.post("/v2/models/cnn/infer", content=gzip.compress(body),
                           headers={**headers, "Content-Encoding": "gzip"})
    assert "inference-header-content-length" not in response.headers
    np.testing.assert_allclose(np.reshape(response.json()["outputs"][0]["data"], (4, 10)), expected, atol=1e-5)
    classified = client.post("/v2/models/cnn/infer", json=v2_request(
        x[:4], "UINT8", outputs=[{"name": "probabilities", "parameters": {"classification": 2}}])).json()
    output = classified["outputs"][0]
    assert output["datatype"] == "BYTES" and output["shape"] == [4, 2]
    assert [entry.split(":")[1] for entry in output["data"][::2]] == [str(label) for label in y[:4]]


@pytest.mark.parametrize("change, status, fragment", [
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "name": "pixels"}]}, 400, "unknown input 'pixels'"),
    (lambda r: {**r, "inputs": []}, 400, "exactly one tensor"),
    (lambda r: {**r, "inputs": "images"}, 400, "exactly one tensor"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "datatype": "INT64"}]}, 400, "INT64"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "datatype": "BYTES"}]}, 400, "BYTES"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "shape": [784]}]}, 400, "[N, 28, 28]"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "shape": [1, 28, "28"]}]}, 400, "non-negative integers"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "shape": [2, 28, 28]}]}, 400, "needs 1568"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "shape": [1, 28, 28, 3], "data": [0.0] * 2352}]}, 400, "shape"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "data": [0.0] * 783 + [float("nan")]}]}, 400, "not valid JSON"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "data": [0.0] * 783 + ["x"]}]}, 400, "only numbers"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "data": [-3.0] * 784}]}, 400, "0..1 or 0..255"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "datatype": "UINT8", "data": [0.5] * 784}]}, 400, "fractional"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "datatype": "UINT8", "data": [300] * 784}]}, 400, "0..255"),
    (lambda r: {key: value for key, value in r.items() if key != "inputs"} | {
        "inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32"}]}, 400, "neither 'data'"),
    (lambda r: {**r, "outputs": [{"name": "logits"}]}, 400, "unknown output 'logits'"),
    (lambda r: {**r, "outputs": [{"name": "probabilities", "parameters": {"classification": -1}}]}, 400, "classif"),
    (lambda r: {**r, "parameters": []}, 400, "must be an object"),
    (lambda r: {**r, "inputs": [{**r["inputs"][0], "shape": [9, 28, 28], "data": [0] * 9 * 784}]}, 413, "limit"),
])
def test_v2_bad_requests_are_400_with_an_error_body(client, change, status, fragment):
    good = v2_request(np.zeros((1, 28, 28), np.float32))
    response = client.post("/v2/models/cnn/infer", content=json.dumps(change(good)).encode(),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and fragment in response.json()["error"]


def test_v2_bad_binary_and_envelopes(client):
    tensor = np.zeros((1, 28, 28), "<f4").tobytes()
    header = {"inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32",
                          "parameters": {"binary_data_size": len(tensor)}}]}
    cases = []
    body, headers = binary_body(header, tensor[:-4])
    cases.append((body, headers, 400, "binary_data_size says"))
    body, headers = binary_body({**header, "inputs": [{**header["inputs"][0], "parameters": {"binary_data_size": 7}}]},
                                tensor)
    cases.append((body, headers, 400, "does not match"))
    body, headers = binary_body(header, np.full((1, 28, 28), np.nan, "<f4").tobytes())
    cases.append((body, headers, 400, "NaN"))
    body, headers = binary_body(header, tensor)
    cases.append((body, {**headers, "Inference-Header-Content-Length": "999999"}, 400, "not a length"))
    cases.append((body, {**headers, "Inference-Header-Content-Length": "-5"}, 400, "not a length"))
    cases.append((json.dumps(v2_request(np.zeros((1, 28, 28)))).encode() + b"\0\0", {
        "Inference-Header-Content-Length": str(len(json.dumps(v2_request(np.zeros((1, 28, 28))))))}, 400,
        "no input declares"))
    cases.append((b"", {}, 400, "empty"))
    cases.append((b"{oops", {"Content-Type": "application/json"}, 400, "not valid JSON"))
    cases.append((b"[]", {"Content-Type": "application/json"}, 400, "JSON object"))
    cases.append((b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type"))
    cases.append((b"x" * 40, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 400, "corrupt"))
    cases.append((b"x", {"Content-Type": "application/json", "Content-Encoding": "br"}, 415, "Content-Encoding"))
    bomb = gzip.compress(b" " * (MAX_BODY + 10))  # a few KiB that inflate past the body limit
    cases.append((bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 413, "inflates"))
    for content, headers, status, fragment in cases:
        response = client.post("/v2/models/cnn/infer", content=content, headers=headers)
        assert response.status_code == status, (fragment, response.text)
        assert fragment in response.json()["error"], response.text
    assert client.post("/v2/models/other/infer", json=v2_request(np.zeros((1, 28, 28)))).status_code == 404
    assert client.post("/v2/models/cnn/versions/7/infer", json=v2_request(np.zeros((1, 28, 28)))).status_code == 404


# ------------------------------------------------------------------ TensorFlow Serving REST API


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


# ------------------------------------------------------------------ health, metrics, docs, page


def test_health_info_metrics_and_docs(client, mnist):
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["name"] == "cnn" and info["class_names"] == [str(digit) for digit in range(10)]
    assert info["test_accuracy"] > 0.95 and info["max_batch"] == MAX_BATCH
    client.post("/predict", json={"pixels": mnist[0][:2].tolist()})
    client.post("/predict", content=b"{", headers={"Content-Type": "application/json"})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'digits_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'digits_http_requests_total{method="POST",route="/predict",status="400"}' in text
    assert 'digits_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/predict"}' in text
    assert 'digits_predictions_total{label="7"}' in text and "digits_model_batch_size_count" in text
    assert 'digits_model_info{backend="' in text
    schema = client.get("/openapi.json").json()
    for path in ("/predict", "/v2/models/{name}/infer", "/v1/models/{name}:predict", "/v2/health/ready", "/metrics"):
        assert path in schema["paths"], path
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text  # Swagger UI from the package, not a CDN
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 200


def test_drawing_page_is_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<canvas id="pad"' in html and 'accept="image/*"' in html and "capture" in html
    script, style = client.get("/static/app.js"), client.get("/static/style.css")
    assert script.status_code == 200 and style.status_code == 200
    assert "pointerdown" in script.text and "/predict" in script.text and "toBlob" in script.text
    assert "touch-action: none" in style.text and "pixelated" in style.text
    for text in (html, script.text, style.text):  # works offline: nothing from a CDN
        assert "http://" not in text and "https://" not in text


# ------------------------------------------------------------------ settings, names, batching, CLI


def test_settings_from_environment_and_flags(monkeypatch):
    monkeypatch.setenv("DIGITS_PORT", "9123")
    monkeypatch.setenv("DIGITS_MAX_BATCH", "3")
    monkeypatch.setenv("DIGITS_UNCERTAIN_BELOW", "0.9")
    loaded = load_settings(port=None, workers=2)
    assert (loaded.port, loaded.max_batch, loaded.uncertain_below, loaded.workers) == (9123, 3, 0.9, 2)
    assert load_settings(port=80).port == 80  # flags win
    monkeypatch.setenv("DIGITS_PORT", "eighty")
    with pytest.raises(ValueError, match="DIGITS_PORT='eighty' is invalid"):
        load_settings()
    with pytest.raises(ValueError, match="--uncertain-below=2.0"):
        load_settings(port=1, uncertain_below=2.0)


def test_model_name_comes_from_the_run(cnn_fast_run):
    info = engine.load_info(cnn_fast_run)
    assert model_name(info) == "cnn"
    assert model_name(info, "my model/v2") == "my-model-v2"
    assert model_name(engine.RunInfo(Path("/runs/mlp-2024"), {}, {})) == "mlp-2024"


def test_batcher_merges_queued_requests_and_keeps_order():
    calls = []

    def predict(batch):
        calls.append(len(batch))
        time.sleep(0.02)
        return np.repeat(batch.reshape(len(batch), -1)[:, :1], 10, axis=1)

    async def scenario():
        batcher = Batcher(predict, threads=1, max_rows=64)
        futures = [batcher.submit(np.full((1 + index % 2, 28, 28), index, np.float32)) for index in range(12)]
        results = await asyncio.gather(*futures)
        batcher.close()
        return results

    results = asyncio.run(scenario())
    assert [int(result[0, 0]) for result in results] == list(range(12))
    assert [len(result) for result in results] == [1 + index % 2 for index in range(12)]
    assert calls[0] == 1 and len(calls) == 2 and sum(calls) == 18  # the first alone, the other 11 together


def test_batcher_passes_errors_and_times_out():
    def broken(batch):
        raise RuntimeError("model exploded")

    def slow(batch):
        time.sleep(0.3)
        return np.zeros((len(batch), 10), np.float32)

    async def scenario():
        failing = Batcher(broken)
        with pytest.raises(RuntimeError, match="exploded"):
            await failing.submit(np.zeros((1, 28, 28), np.float32))
        waiting = Batcher(slow, timeout=0.05)
        with pytest.raises(TimeoutError):
            await waiting.submit(np.zeros((1, 28, 28), np.float32))
        # the one thread busy: a running and a queued request both time out, and the queue is left empty
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(waiting.submit(np.zeros((1, 28, 28), np.float32)) for _ in range(2)),
                                        return_exceptions=True)
        assert all(isinstance(outcome, TimeoutError) for outcome in outcomes), outcomes
        assert time.perf_counter() - started < 0.25 and not waiting._pending
        failing.close()
        waiting.close()

    asyncio.run(scenario())


def test_cli_parser_plugs_into_digits_and_refuses_bad_runs(tmp_path):
    parser = argparse.ArgumentParser(prog="digits")
    commands = parser.add_subparsers(dest="command")
    api_cli.add_parser(commands)
    args = parser.parse_args(["serve", "runs/x", "--port", "9001", "--workers", "2", "--backend", "onnx"])
    assert (args.command, args.run, args.port, args.workers, args.backend) == ("serve", "runs/x", 9001, 2, "onnx")
    with pytest.raises(ValueError, match="does not exist"):
        api_cli.run(parser.parse_args(["serve", str(tmp_path / "missing")]))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a model file"):
        api_cli.run(parser.parse_args(["serve", str(tmp_path / "notes.txt")]))
    result = subprocess.run([sys.executable, "-m", "digits.api", str(tmp_path / "missing")], capture_output=True,
                            text=True, timeout=120, env=_clean_environment())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("digits serve: error: run directory") and len(
        result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ a real server on loopback


def _clean_environment() -> dict:
    return {key: value for key, value in os.environ.items() if not key.startswith(("DIGITS_", "PROMETHEUS_"))}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """`python -m digits.api RUN` (= `digits serve RUN`) as a subprocess on a free loopback port."""

    def __init__(self, run: Path, log_dir: Path, *flags: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "digits.api", str(run), "--port", str(self.port), "--max-batch", "16",
                        "--timeout-seconds", "3", "--log-level", "warning", *flags]
        self.log = log_dir / f"digits-api-{self.port}.log"

    def start(self, timeout: float = 180) -> "LiveServer":
        import httpx2 as httpx

        self.process = subprocess.Popen(self.command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                        env=_clean_environment())
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_LIVE: dict[str, LiveServer] = {}


def live_server_url(run: Path, config, tmp_path_factory) -> str:
    """One real server per run for the whole session (test_api_browser.py shares it); stopped at the end."""
    if str(run) not in _LIVE:
        _LIVE[str(run)] = LiveServer(run, tmp_path_factory.mktemp("live-server")).start()
        config.add_cleanup(_LIVE[str(run)].stop)
    return _LIVE[str(run)].url


@pytest.fixture(scope="module")
def live(cnn_fast_run, predictor, pytestconfig, tmp_path_factory) -> str:  # `predictor` first: it converts
    return live_server_url(cnn_fast_run, pytestconfig, tmp_path_factory)  # the ONNX/LiteRT copies the server reuses


def test_live_server_with_tritonclient(live, predictor, mnist):
    import tritonclient.http as triton

    x, _ = mnist
    expected = predictor.predict_proba(x[:5])
    client = triton.InferenceServerClient(live.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("cnn")
    assert client.get_model_metadata("cnn")["inputs"][0]["name"] == "images"
    assert client.get_model_config("cnn")["max_batch_size"] == 16
    binary = triton.InferInput("images", [5, 28, 28], "FP32")  # tritonclient's defaults: binary in and out
    binary.set_data_from_numpy((x[:5] / 255.0).astype(np.float32))
    result = client.infer("cnn", [binary])
    assert result.get_output("probabilities")["parameters"]["binary_data_size"] == 200
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    as_json = triton.InferInput("images", [5, 28, 28, 1], "UINT8")
    as_json.set_data_from_numpy(x[:5, :, :, None], binary_data=False)
    result = client.infer("cnn", [as_json], model_version="1", request_id="r1",
                          outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)])
    assert result.get_response()["id"] == "r1" and "data" in result.get_output("probabilities")
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    compressed = client.infer("cnn", [binary], request_compression_algorithm="gzip")
    np.testing.assert_allclose(compressed.as_numpy("probabilities"), expected, atol=1e-5)
    top = client.infer("cnn", [binary], outputs=[triton.InferRequestedOutput("probabilities", class_count=1)])
    assert [int(entry.split(b":")[1]) for entry in top.as_numpy("probabilities").ravel()] == list(
        expected.argmax(1))
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("resnet", [binary])
    client.close()


def _raw(url: str, payload: bytes, wait: float = 10) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(payload)
        chunks = []
        try:
            while chunk := connection.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b'"}' in chunks[-1]:
                    break
        except socket.timeout:
            pass
        return b"".join(chunks)


def test_live_server_survives_abuse_and_keeps_serving(live, mnist):
    import httpx2 as httpx

    good = {"pixels": mnist[0][0].tolist()}
    with httpx.Client(base_url=live, timeout=30) as client:
        assert client.post("/predict", json=good).status_code == 200
        garbage = _raw(live, b"\x16\x03\x01 not http at all\r\n\r\n")
        assert garbage == b"" or garbage.startswith(b"HTTP/1.1 400")
        huge = _raw(live, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 99999999999\r\n\r\n")
        assert huge.startswith(b"HTTP/1.1 413")
        started = time.time()  # a body that never finishes: 408 after the 3 s read timeout, not a hung worker
        stalled = _raw(live, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100\r\n\r\n{\"pix", wait=15)
        assert stalled.startswith(b"HTTP/1.1 408") and 2.5 < time.time() - started < 12
        assert b"no request body data arrived" in stalled
        bad = client.post("/predict", content=b"{\"pixels\": [[1e400]]}", headers={"Content-Type": "application/json"})
        assert bad.status_code in (400, 422)
        answers = [client.post("/predict", json=good) for _ in range(5)]
        assert all(answer.status_code == 200 for answer in answers)
        assert client.get("/v2/health/ready").status_code == 200
        metrics = client.get("/metrics").text
        assert 'status="408"' in metrics and 'status="413"' in metrics


def test_schemathesis_finds_no_server_errors(live, tmp_path):
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if executable is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    result = subprocess.run([executable, "run", f"{live}/openapi.json", "--checks", "not_a_server_error",
                             "--max-examples", "8", "--seed", "7", "--generation-database", "none", "--no-color",
                             "--request-timeout", "20", "--report-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=240, cwd=tmp_path)
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary.split("Test cases:")[-1], summary
