"""The Open Inference Protocol over gRPC (digits.api.grpc_service): a real `digits serve --grpc-port` on
loopback driven by tritonclient.grpc (raw binary tensors, no JSON anywhere), its answers matched against
the same server's HTTP /v2 and the Predictor, typed tensor contents, every bad request answered with a
gRPC status code while the server keeps serving, the timeout, and the shipped stubs against the .proto.

This process never imports digits.api.grpc_service or its stubs: they and tritonclient.grpc both register
the `inference.*` messages in protobuf's default pool, so a check that needs our stubs runs in a
subprocess."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

from bodies import LiveServer, clean_environment, free_port
from helpers import REPO

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")
pytest.importorskip("grpc", reason="gRPC serving needs grpcio: pip install 'digits[api]'")

PROTOS = REPO / "src" / "digits" / "api" / "protos"
MAX_BODY = 65536  # the live server's --max-body-bytes: 16 FP64 images (100 KB) are over it, 17 UINT8 ones not


@pytest.fixture(scope="module")
def server(cnn_fast_run, tmp_path_factory):
    """One `digits serve` with HTTP and gRPC (max batch 16, 3 s timeout, 64 KiB messages) for this module."""
    pytest.importorskip("tritonclient.grpc", reason="the gRPC tests need tritonclient[grpc]: pip install '.[test]'")
    live = LiveServer(cnn_fast_run, tmp_path_factory.mktemp("grpc-server"), "--max-body-bytes", str(MAX_BODY),
                      grpc=True).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server):
    import tritonclient.grpc as triton

    grpc_client = triton.InferenceServerClient(server.grpc_url)
    yield grpc_client
    grpc_client.close()


def _input(batch: np.ndarray, datatype: str, name: str = "images"):
    import tritonclient.grpc as triton

    tensor = triton.InferInput(name, list(batch.shape), datatype)
    tensor.set_data_from_numpy(batch)
    return tensor


def _code(call) -> tuple[str, str]:
    """The gRPC status code's name and the message `call` fails with (tritonclient's InferenceServerException)."""
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as raised:
        call()
    return raised.value.status().removeprefix("StatusCode."), raised.value.message()


def test_grpc_health_and_metadata_match_http(server, client):
    import httpx2 as httpx

    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cnn") and client.is_model_ready("cnn", "1")
    assert not client.is_model_ready("resnet") and not client.is_model_ready("cnn", "2")
    metadata = client.get_server_metadata(as_json=True)
    assert metadata["name"] == "digits" and metadata["extensions"] == ["classification"]
    model = client.get_model_metadata("cnn", as_json=True)
    over_http = httpx.get(f"{server.url}/v2/models/cnn", timeout=10).json()
    assert model["name"] == over_http["name"] == "cnn" and model["versions"] == over_http["versions"] == ["1"]
    assert model["platform"] == over_http["platform"]
    for key in ("inputs", "outputs"):  # protobuf's JSON writes int64 shapes as strings
        assert [{**tensor, "shape": [int(size) for size in tensor["shape"]]} for tensor in model[key]] == over_http[key]
    assert client.get_model_metadata("cnn", "1", as_json=True) == model
    code, message = _code(lambda: client.get_model_metadata("resnet"))
    assert code == "NOT_FOUND" and "this server serves 'cnn'" in message


def test_grpc_infer_matches_http_and_the_predictor(server, client, predictor, mnist):
    import tritonclient.http as triton_http

    x, y = mnist
    expected = predictor.predict_proba(x[:5])
    over_http = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    http_input = triton_http.InferInput("images", [5, 28, 28], "FP32")
    http_input.set_data_from_numpy((x[:5] / 255.0).astype(np.float32))
    http_probabilities = over_http.infer("cnn", [http_input]).as_numpy("probabilities")
    over_http.close()
    for datatype, batch in (("FP32", (x[:5] / 255.0).astype(np.float32)), ("UINT8", x[:5]),
                            ("UINT8", x[:5, :, :, None]), ("FP64", x[:5] / 255.0),
                            ("FP16", (x[:5] / 255.0).astype(np.float16)), ("FP32", x[:5].astype(np.float32))):
        result = client.infer("cnn", [_input(batch, datatype)], request_id=f"{datatype}-{batch.ndim}")
        response = result.get_response()
        assert (response.model_name, response.model_version, response.id) == ("cnn", "1", f"{datatype}-{batch.ndim}")
        assert [(output.name, output.datatype, list(output.shape)) for output in response.outputs] == [
            ("probabilities", "FP32", [5, 10])]
        assert len(response.raw_output_contents) == 1 and len(response.raw_output_contents[0]) == 200
        probabilities = result.as_numpy("probabilities")
        atol = 2e-3 if datatype == "FP16" else 1e-5  # FP16 pixels are rounded before the model sees them
        np.testing.assert_allclose(probabilities, http_probabilities, atol=atol)
        np.testing.assert_allclose(probabilities, expected, atol=atol)
    versioned = client.infer("cnn", [_input(x[:5], "UINT8")], model_version="1").as_numpy("probabilities")
    np.testing.assert_allclose(versioned, expected, atol=1e-5)
    import tritonclient.grpc as triton

    top = client.infer("cnn", [_input(x[:5], "UINT8")],
                       outputs=[triton.InferRequestedOutput("probabilities", class_count=2)])
    entries = top.as_numpy("probabilities")
    assert entries.shape == (5, 2) and top.get_response().outputs[0].datatype == "BYTES"
    assert [int(row[0].split(b":")[1]) for row in entries] == list(expected.argmax(1)) == list(y[:5])
    assert [float(row[0].split(b":")[0]) for row in entries] == pytest.approx(expected.max(1), abs=1e-5)


def test_grpc_typed_contents(server, predictor, mnist):
    """The protocol's other form: numbers in InferTensorContents (fp32_contents, uint_contents) instead of raw
    bytes; FP16 has no such field and must come raw."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    x, _ = mnist
    expected = predictor.predict_proba(x[:3])

    def request(datatype: str, **contents):
        tensor = service_pb2.ModelInferRequest.InferInputTensor(
            name="images", datatype=datatype, shape=[3, 28, 28], contents=service_pb2.InferTensorContents(**contents))
        return service_pb2.ModelInferRequest(model_name="cnn", inputs=[tensor])

    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        for sent in (request("FP32", fp32_contents=(x[:3] / 255.0).ravel()),
                     request("FP64", fp64_contents=(x[:3] / 255.0).ravel()),
                     request("UINT8", uint_contents=x[:3].ravel().astype(int))):
            answer = stub.ModelInfer(sent, timeout=30)
            probabilities = np.frombuffer(answer.raw_output_contents[0], "<f4").reshape(3, 10)
            np.testing.assert_allclose(probabilities, expected, atol=1e-5)
        bad = {"FP16 has no contents field": (request("FP16", fp32_contents=[0.0] * 2352), "raw_input_contents"),
               "too few values": (request("FP32", fp32_contents=[0.0] * 100), "holds 100 values"),
               "UINT8 above 255": (request("UINT8", uint_contents=[300] * 2352), "0..255"),
               "NaN": (request("FP32", fp32_contents=[float("nan")] * 2352), "NaN")}
        both = request("FP32", fp32_contents=[0.0] * 2352)
        both.raw_input_contents.append(bytes(2352 * 4))
        bad["raw and contents"] = (both, "both")
        short = service_pb2.ModelInferRequest(model_name="cnn", inputs=[service_pb2.ModelInferRequest.InferInputTensor(
            name="images", datatype="FP32", shape=[1, 28, 28])], raw_input_contents=[bytes(100)])
        bad["raw too short"] = (short, "needs 3136")
        two = service_pb2.ModelInferRequest(model_name="cnn", inputs=[short.inputs[0], short.inputs[0]])
        bad["two inputs"] = (two, "exactly one")
        for case, (sent, fragment) in bad.items():
            with pytest.raises(grpc.RpcError) as raised:
                stub.ModelInfer(sent, timeout=30)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
            assert fragment in raised.value.details(), (case, raised.value.details())


def test_grpc_bad_requests_get_status_codes_and_the_server_keeps_serving(server, client, predictor, mnist):
    import httpx2 as httpx
    import tritonclient.grpc as triton

    x, _ = mnist
    good = [_input(x[:2], "UINT8")]
    cases = {
        "wrong shape": (lambda: client.infer("cnn", [_input(np.zeros((2, 28, 27), np.float32), "FP32")]),
                        "INVALID_ARGUMENT", "(2, 28, 27)"),
        "flat shape": (lambda: client.infer("cnn", [_input(np.zeros((2, 784), np.float32), "FP32")]),
                       "INVALID_ARGUMENT", "[N, 28, 28]"),
        "wrong datatype": (lambda: client.infer("cnn", [_input(np.zeros((1, 28, 28), np.int32), "INT32")]),
                           "INVALID_ARGUMENT", "'INT32' is not supported"),
        "strings": (lambda: client.infer("cnn", [_input(np.array([[[b"x"] * 28] * 28], object), "BYTES")]),
                    "INVALID_ARGUMENT", "'BYTES' is not supported"),
        "unknown input": (lambda: client.infer("cnn", [_input(x[:1], "UINT8", "pixels")]),
                          "INVALID_ARGUMENT", "unknown input 'pixels'"),
        "unknown output": (lambda: client.infer("cnn", good, outputs=[triton.InferRequestedOutput("logits")]),
                           "INVALID_ARGUMENT", "unknown output 'logits'"),
        "repeated output": (lambda: client.infer("cnn", good, outputs=[triton.InferRequestedOutput("probabilities")] * 3),
                            "INVALID_ARGUMENT", "requested 3 times"),  # each repeat repeated the whole answer
        "no images": (lambda: client.infer("cnn", [_input(np.zeros((0, 28, 28), np.float32), "FP32")]),
                      "INVALID_ARGUMENT", "no images"),
        "out of range": (lambda: client.infer("cnn", [_input(np.full((1, 28, 28), -3, np.float32), "FP32")]),
                         "INVALID_ARGUMENT", "0..1 or 0..255"),
        "unknown model": (lambda: client.infer("resnet", good), "NOT_FOUND", "unknown model 'resnet'"),
        "unknown version": (lambda: client.infer("cnn", good, model_version="2"), "NOT_FOUND", "unknown version '2'"),
        "too many images": (lambda: client.infer("cnn", [_input(np.zeros((17, 28, 28), np.uint8), "UINT8")]),
                            "RESOURCE_EXHAUSTED", "more than the limit of 16"),
        "message too large": (lambda: client.infer("cnn", [_input(np.zeros((16, 28, 28)), "FP64")]),
                              "RESOURCE_EXHAUSTED", str(MAX_BODY)),
    }
    for case, (call, expected_code, fragment) in cases.items():
        code, message = _code(call)
        assert code == expected_code, (case, code, message)
        assert fragment in message, (case, message)
    answers = [client.infer("cnn", good).as_numpy("probabilities") for _ in range(3)]  # still serving
    for answer in answers:
        np.testing.assert_allclose(answer, predictor.predict_proba(x[:2]), atol=1e-5)
    assert client.is_server_ready()
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    for code in ("OK", "INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED"):
        assert re.search(rf'digits_grpc_requests_total\{{code="{code}",method="ModelInfer"\}} [1-9]', metrics), code
    assert "Traceback" not in server.log.read_text()  # nothing unexpected happened on the server


SLOW_SERVER = """
import sys, time
import grpc
from fastapi.testclient import TestClient
from digits.api.app import create_app
from digits.api.protos import open_inference_grpc_pb2 as pb2, open_inference_grpc_pb2_grpc as pb2_grpc
from digits.api.settings import Settings
from digits.predictor import Predictor

class Slow:  # the real predictor, but every call after the warm-up takes a second
    def __init__(self, real):
        self.real, self.calls = real, 0
    def __getattr__(self, name):
        return getattr(self.real, name)
    def predict_scores(self, batch):
        self.calls += 1
        if self.calls > 1:
            time.sleep(1.0)
        return self.real.predict_scores(batch)

run, port = sys.argv[1], int(sys.argv[2])
request = pb2.ModelInferRequest(model_name="cnn", raw_input_contents=[bytes(784)], inputs=[
    pb2.ModelInferRequest.InferInputTensor(name="images", datatype="UINT8", shape=[1, 28, 28])])
app = create_app(Settings(grpc_port=port, timeout_seconds=0.2), predictor=Slow(Predictor(run)))
with TestClient(app), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    stub = pb2_grpc.GRPCInferenceServiceStub(channel)
    try:
        stub.ModelInfer(request, timeout=30)
        print("answered")
    except grpc.RpcError as error:
        print(error.code().name, error.details())
    print("ready", stub.ServerReady(pb2.ServerReadyRequest(), timeout=10).ready)
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # the app has shut down: so has gRPC
    try:
        pb2_grpc.GRPCInferenceServiceStub(channel).ServerLive(pb2.ServerLiveRequest(), timeout=5)
        print("after shutdown: live")
    except grpc.RpcError as error:
        print("after shutdown:", error.code().name)
"""


def test_grpc_prediction_timeout_is_deadline_exceeded_and_shutdown_stops_grpc(cnn_fast_run):
    """In a subprocess (see the module docstring): an app built with create_app, as the tests build them, serves
    gRPC from its lifespan; a prediction over the timeout is DEADLINE_EXCEEDED; shutdown closes the port."""
    result = subprocess.run([sys.executable, "-c", SLOW_SERVER, str(cnn_fast_run), str(free_port())],
                            capture_output=True, text=True, timeout=300, env=clean_environment())
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("DEADLINE_EXCEEDED inference took longer than 0.2 s"), result.stdout
    assert lines[1:] == ["ready True", "after shutdown: UNAVAILABLE"], result.stdout


def _descriptor(stub: str) -> bytes:
    """The serialized FileDescriptorProto a generated _pb2.py registers: what the messages are."""
    literal = re.search(r"AddSerializedFile\((b'.*?')\)\n", stub, re.DOTALL)
    return ast.literal_eval(literal.group(1))


def test_shipped_stubs_match_the_proto(tmp_path):
    """The committed _pb2.py / _pb2_grpc.py are what protoc makes of the committed .proto (the command in
    digits/api/protos/__init__.py). With the grpcio-tools version that wrote them the files are identical;
    with another version the message descriptors and the service's methods must still be."""
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("regenerating the stubs needs grpcio-tools (pip install grpcio-tools==1.73.1), a build tool "
                    "that digits does not depend on")
    proto = PROTOS / "open_inference_grpc.proto"
    assert proto.read_text().startswith("// Copyright 2023 The KServe Authors.")  # KServe's file, license kept
    result = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'src'}", f"--python_out={tmp_path}",
                             f"--grpc_python_out={tmp_path}", str(proto)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = ("open_inference_grpc_pb2.py", "open_inference_grpc_pb2_grpc.py")
    fresh = {name: (tmp_path / "digits" / "api" / "protos" / name).read_text() for name in names}
    shipped = {name: (PROTOS / name).read_text() for name in names}
    assert _descriptor(fresh[names[0]]) == _descriptor(shipped[names[0]])
    methods = [re.findall(r"'(/inference\.GRPCInferenceService/\w+)'", text) for text in
               (fresh[names[1]], shipped[names[1]])]
    assert set(methods[0]) == set(methods[1]) == {f"/inference.GRPCInferenceService/{method}" for method in (
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")}
    shipped_tools = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", shipped[names[1]]).group(1)
    if shipped_tools == re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", fresh[names[1]]).group(1):
        assert fresh == shipped
