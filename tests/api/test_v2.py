"""The Open Inference Protocol (KServe V2 / Triton) routes (digits.api.routes.v2): health, metadata,
JSON and binary tensors, classification, compressed bodies, and every bad request as `{"error": ...}`."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from bodies import MAX_BATCH, MAX_BODY, binary_body, settings, v2_request

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")


def test_v2_health_and_metadata(client):
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    server = client.get("/v2").json()
    assert server["name"] == "digits" and "binary_tensor_data" in server["extensions"]
    metadata = client.get("/v2/models/cnn").json()
    assert metadata["versions"] == ["1"] and metadata["platform"].startswith("digits_")
    assert metadata["platform"] == f"digits_{client.app.state.service.predictor.backend}"
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


def test_v2_refuses_by_the_models_digit_score(client, predictor, mnist):
    """At the stored threshold, the rows answered "not_a_digit" are exactly those whose digit score (the energy's
    chance of a digit, Predictor.predict_scores) is under it: digits and generated letters and scribbles sent
    together in one request, through the batcher."""
    from digits import synthetic
    from digits.images import prepare

    x, _ = mnist
    others = [prepare(picture).image for family in ("letters", "scribbles")
              for picture in synthetic.pictures(family, 2, 11)]
    batch = np.concatenate([x[:4] / 255.0, np.stack(others)]).astype(np.float32)  # the test server's max batch: 8
    probabilities, scores = predictor.predict_scores(batch)
    assert predictor.score == "energy" and predictor.reject_below == 0.5
    refused = scores < predictor.reject_below
    assert not refused[:4].any() and refused[4:].any()  # the digits read, some of the others refused
    request = v2_request(batch, "FP32", outputs=[{"name": "probabilities", "parameters": {"classification": 1}}])
    response = client.post("/v2/models/cnn/infer", json=request)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    answered = [entry.split(":")[1] == "-1" for entry in output["data"]]
    assert answered == refused.tolist()
    top = [float(entry.split(":")[0]) for entry in output["data"]]
    assert top == pytest.approx(probabilities.max(1).tolist(), abs=1e-6)  # the top probability is still shown


def test_v2_classification_answers_not_a_digit_first_for_a_refused_row(predictor, mnist):
    """With reject_below 1.0 (digits serve --reject-below 1) every row is refused: its first classification
    entry is "probability:-1:not_a_digit" (the top probability), then its top k-1 classes; the probabilities
    output itself is unchanged."""
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    x, y = mnist
    expected = predictor.predict_proba(x[:3])
    with TestClient(create_app(settings(reject_below=1.0), predictor=predictor)) as test_client:
        for count in (1, 3):
            request = v2_request(x[:3], "UINT8", outputs=[{"name": "probabilities",
                                                           "parameters": {"classification": count}}])
            output = test_client.post("/v2/models/cnn/infer", json=request).json()["outputs"][0]
            assert output["datatype"] == "BYTES" and output["shape"] == [3, count]
            rows = [output["data"][row * count:(row + 1) * count] for row in range(3)]
            for row, probabilities, label in zip(rows, expected, y[:3]):
                probability, index, name = row[0].split(":")
                assert (index, name) == ("-1", "not_a_digit")
                assert float(probability) == pytest.approx(probabilities.max(), abs=1e-5) and probabilities.max() < 1
                assert [entry.split(":")[1:] for entry in row[1:]] == [
                    [str(index), str(index)] for index in np.argsort(-probabilities)[:count - 1]]
                if count > 1:
                    assert row[1].split(":")[1] == str(label)  # then what it resembled most
        binary = test_client.post("/v2/models/cnn/infer", json=v2_request(x[:1], "UINT8", outputs=[
            {"name": "probabilities", "parameters": {"classification": 2, "binary_data": True}}]))
        length = int(binary.headers["inference-header-content-length"])
        raw, values = binary.content[length:], []
        while raw:
            size = int.from_bytes(raw[:4], "little")
            values, raw = values + [raw[4:4 + size].decode()], raw[4 + size:]
        assert [value.split(":")[1:] for value in values] == [["-1", "not_a_digit"], [str(y[0]), str(y[0])]]
        plain = test_client.post("/v2/models/cnn/infer", json=v2_request(x[:3], "UINT8")).json()["outputs"][0]
        np.testing.assert_allclose(np.reshape(plain["data"], (3, 10)), expected, atol=1e-5)
    with TestClient(create_app(settings(reject_below=0.0), predictor=predictor)) as test_client:
        request = v2_request(x[:3], "UINT8", outputs=[{"name": "probabilities", "parameters": {"classification": 1}}])
        output = test_client.post("/v2/models/cnn/infer", json=request).json()["outputs"][0]
        assert [entry.split(":")[1] for entry in output["data"]] == [str(label) for label in y[:3]]


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
    (lambda r: {**r, "outputs": [{"name": "probabilities"}] * 5_000}, 400, "requested 5000 times"),  # GBs of answer
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
