"""The app (digits.api.app): the limits every protocol shares (body size, timeouts), `digits serve`
(built in digits.cli, running app.serve), and a real uvicorn process on loopback driven by
tritonclient, raw sockets and schemathesis."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bodies import MAX_BODY, LiveServer, clean_environment, detail, settings, v2_request
from helpers import assert_clean_error, run_cli

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")
from fastapi.testclient import TestClient  # noqa: E402

from digits import cli  # noqa: E402
from digits.api.app import create_app  # noqa: E402


# ------------------------------------------------------------------ limits shared by every protocol


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
        self._real, self._seconds, self.calls, self.finished = real, seconds, 0, 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def predict_scores(self, batch):  # what the service's batcher calls
        self.calls += 1
        try:
            if self.calls > 1:
                time.sleep(self._seconds)
            return self._real.predict_scores(batch)
        finally:
            self.finished += 1


def test_slow_predictions_time_out_with_504(predictor, mnist):
    slow = SlowPredictor(predictor, 1.0)
    with TestClient(create_app(settings(timeout_seconds=0.2), predictor=slow)) as test_client:
        for path, body in (("/predict", {"pixels": mnist[0][0].tolist()}),
                           ("/v1/models/cnn:predict", {"instances": [mnist[0][0].tolist()]}),
                           ("/v2/models/cnn/infer", v2_request(mnist[0][:1], "UINT8"))):
            response = test_client.post(path, json=body)
            assert response.status_code == 504, response.text
            assert "longer than 0.2 s" in detail(response)
        for _ in range(600):  # the service keeps going: once the slow call drains, the next call answers
            if slow.finished == slow.calls:
                break
            time.sleep(0.05)
        slow._seconds = 0
        assert test_client.post("/predict", json={"pixels": mnist[0][0].tolist()}).status_code == 200


# ------------------------------------------------------------------ digits serve


def _recording_where(calls: list, name: str, function):
    """`function`, noting in `calls` whether each call ran on the event loop or on a worker thread."""
    import asyncio

    def recorded(*args):
        try:
            asyncio.get_running_loop()
            calls.append((name, "event loop"))
        except RuntimeError:  # no loop runs in this thread
            calls.append((name, "worker thread"))
        return function(*args)

    return recorded


def test_large_bodies_are_parsed_and_large_answers_serialised_off_the_event_loop(predictor, monkeypatch):
    """Six 16 MB JSON bodies parsed on the event loop held every other client for half a second (issue 15):
    a body over deps.LARGE_BODY_BYTES is parsed and checked on a worker thread, an answer for more than
    deps.LARGE_ANSWER_ROWS images serialised on one; small ones stay on the loop (a thread hop costs more)."""
    import json

    from digits.api import deps
    from digits.api.routes import predict, tfserving, v2

    calls = []
    for module, name in ((predict, "_json_request"), (v2, "_decode"), (tfserving, "_decode"), (v2, "_answer"),
                         (deps, "dump_json")):
        monkeypatch.setattr(module, name, _recording_where(calls, f"{module.__name__.split('.')[-1]}.{name}",
                                                           getattr(module, name)))
    rows = deps.LARGE_ANSWER_ROWS + 1
    image = np.zeros((28, 28), np.uint8)
    requests = {"/predict": (lambda n: {"pixels": [image.tolist()] * n}, "predict._json_request", "deps.dump_json"),
                "/v2/models/cnn/infer": (lambda n: v2_request(np.zeros((n, 28, 28), np.uint8), "UINT8"), "v2._decode",
                                         "v2._answer"),
                "/v1/models/cnn:predict": (lambda n: {"instances": [image.tolist()] * n}, "tfserving._decode",
                                           "deps.dump_json")}
    padding = b" " * deps.LARGE_BODY_BYTES  # JSON allows whitespace: the same request, over the threshold
    with TestClient(create_app(settings(max_batch=rows), predictor=predictor)) as client:
        for path, (payload, decode, answer) in requests.items():
            for images, pad, decoded_on, answered_on in ((1, b"", "event loop", "event loop"),
                                                         (1, padding, "worker thread", "event loop"),
                                                         (rows, b"", "event loop", "worker thread")):
                calls.clear()
                body = json.dumps(payload(images)).encode() + pad
                response = client.post(path, content=body, headers={"Content-Type": "application/json"})
                assert response.status_code == 200, response.text
                assert calls == [(decode, decoded_on), (answer, answered_on)], (path, images, len(body))


def test_a_json_body_with_more_values_than_a_batch_is_refused_before_it_is_parsed(predictor, monkeypatch):
    """Parsing 8 million numbers held the GIL for 0.2 s, on whichever thread, and every other client waited
    (issue 15): a body with more commas than max_batch images of raw pixels need is a 413 naming the limit,
    and the parser never sees it; a full batch in the most verbose form allowed, (N, 28, 28, 1), still reads."""
    from digits.api import deps

    import orjson

    parsed, loads = [], orjson.loads
    monkeypatch.setattr(orjson, "loads", lambda body: (parsed.append(len(body)), loads(body))[1])
    max_batch = 3
    limit = max_batch * deps.VALUES_PER_IMAGE + deps.FEW_VALUES
    too_many = b"[" + b"0," * (limit + 1) + b"0]"  # one comma over the limit
    full = np.zeros((max_batch, 28, 28, 1), np.uint8).tolist()
    routes = {"/predict": (b'{"pixels": ' + too_many + b"}", {"pixels": full}),
              "/v1/models/cnn:predict": (b'{"instances": ' + too_many + b"}", {"instances": full}),
              "/v2/models/cnn/infer": (b'{"inputs": [{"name": "images", "datatype": "FP32", "shape": [3, 28, 28], '
                                       b'"data": ' + too_many + b"}]}",
                                       v2_request(np.zeros((max_batch, 28, 28), np.uint8), "UINT8"))}
    with TestClient(create_app(settings(max_batch=max_batch), predictor=predictor)) as client:
        for path, (heavy, fine) in routes.items():
            parsed.clear()
            response = client.post(path, content=heavy, headers={"Content-Type": "application/json"})
            assert response.status_code == 413, (path, response.text)
            message = response.json().get("error") or response.json().get("detail")
            assert f"more than {limit:,} values" in message and "split the batch" in message, message
            assert parsed == [], path
            response = client.post(path, content=json.dumps(fine).encode(), headers={"Content-Type": "application/json"})
            assert response.status_code == 200, (path, response.text)
            assert parsed, path
            assert client.get("/health/ready").status_code == 200


def test_large_jobs_off_the_loop_run_a_few_at_a_time():
    """Parsing holds the GIL and a large body takes many times its size while parsed: deps.off_loop runs at most
    deps.LARGE_AT_ONCE large jobs at once (the thread pool's 40 threads would hold 40 parses in memory)."""
    import asyncio
    import threading

    from digits.api import deps

    running, most, lock = [0], [0], threading.Lock()

    def job(index):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.05)  # long enough for the others to start, were they allowed to
        with lock:
            running[0] -= 1
        return index

    async def many():
        return await asyncio.gather(*(deps.off_loop(True, job, index) for index in range(8)))

    assert asyncio.run(many()) == list(range(8))
    assert 1 <= most[0] <= deps.LARGE_AT_ONCE
    assert asyncio.run(many()) == list(range(8))  # a second event loop gets its own slots


def test_serve_checks_the_run_without_importing_a_framework(tiny_run):
    """`digits serve --workers 2` checks the run in the supervisor, which serves nothing: a fresh interpreter
    that runs cmd_serve up to uvicorn imports no TensorFlow, Keras or matplotlib (it loads the run's ONNX copy
    with ONNX Runtime, so a damaged run is refused with one line before any worker starts)."""
    script = ("import json, sys\n"
              "from digits import cli\n"
              "from digits.api import app\n"
              "app.serve = lambda settings: print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0]"
              " in ('tensorflow', 'keras', 'matplotlib', 'torch', 'jax'))))\n"
              f"sys.exit(cli.main(['serve', {str(tiny_run)!r}, '--workers', '2']))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=clean_environment())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
    assert "with 2 worker(s)" in result.stderr


def test_serve_parser_plugs_into_digits_and_refuses_bad_runs(tmp_path, no_shipped_model):
    parser = cli.build_parser()
    args = parser.parse_args(["serve", "runs/x", "--port", "9001", "--workers", "2", "--backend", "onnx"])
    assert (args.command, args.run, args.port, args.workers, args.backend) == ("serve", "runs/x", 9001, 2, "onnx")
    assert set(cli.SERVE_FLAGS) <= set(vars(args))  # every flag cmd_serve hands to the settings exists
    unset = parser.parse_args(["serve"])  # unset flags stay None: the DIGITS_* variables and defaults apply
    assert unset.run is None and all(getattr(unset, flag) is None for flag in cli.SERVE_FLAGS)
    with pytest.raises(ValueError, match="does not exist"):
        cli.cmd_serve(parser.parse_args(["serve", str(tmp_path / "missing")]))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a model file"):
        cli.cmd_serve(parser.parse_args(["serve", str(tmp_path / "notes.txt")]))
    with pytest.raises(ValueError, match="no trained model found"):
        cli.cmd_serve(parser.parse_args(["serve", "--runs-dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="--port=70000 is invalid"):
        cli.cmd_serve(parser.parse_args(["serve", str(tmp_path), "--port", "70000"]))
    result = subprocess.run([sys.executable, "-m", "digits.api", str(tmp_path / "missing")], capture_output=True,
                            text=True, timeout=120, env=clean_environment())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("digits serve: error: run directory") and len(
        result.stderr.strip().splitlines()) == 1
    assert_clean_error(run_cli("serve", str(tmp_path / "missing")),
                       "digits serve: error: run directory", "does not exist")


# ------------------------------------------------------------------ a real server on loopback


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
        answer = client.post("/predict", json=good)
        assert answer.status_code == 200 and answer.json()["predictions"][0]["digit"] == 7
        garbage = _raw(live, b"\x16\x03\x01 not http at all\r\n\r\n")
        assert garbage == b"" or garbage.startswith(b"HTTP/1.1 400")
        huge = _raw(live, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 99999999999\r\n\r\n")
        assert huge.startswith(b"HTTP/1.1 413")
        started = time.time()  # a body that never finishes: 408 once the 3 s timeout passes, not a hung worker
        stalled = _raw(live, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100\r\n\r\n{\"pix", wait=15)
        assert stalled.startswith(b"HTTP/1.1 408") and time.time() - started >= 2.5  # not before the timeout
        assert b"did not arrive within 3 s" in stalled
        bad = client.post("/predict", content=b"{\"pixels\": [[1e400]]}", headers={"Content-Type": "application/json"})
        assert bad.status_code in (400, 422)
        answers = [client.post("/predict", json=good) for _ in range(5)]
        assert all(answer.status_code == 200 for answer in answers)
        assert client.get("/v2/health/ready").status_code == 200
        metrics = client.get("/metrics").text
        assert 'status="408"' in metrics and 'status="413"' in metrics


def _half_open(url: str, count: int) -> list[socket.socket]:
    """`count` connections that each send half a request header and go quiet (slowloris)."""
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for _ in range(count):
        connection = socket.create_connection((host, int(port)), timeout=30)
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        sockets.append(connection)
    return sockets


def _closed_by_server(connection: socket.socket) -> bool:
    """True once the server has closed `connection` (waits up to its timeout); False if it is still held."""
    try:
        while connection.recv(4096):  # an answer (the cap's 503) may come before the close
            pass
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        pass
    return True


def _sockets_of(pid: int) -> int:
    """How many sockets process `pid` has open (Linux)."""
    count = 0
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(descriptor).startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return count


def _dribble(url: str, head: bytes, limit: int = 2000) -> tuple[int, bytes]:
    """Send `head`, then a body one byte at a time (every 50 ms) until the server closes; (bytes sent, answer)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head)
        connection.settimeout(0.05)
        sent, answer = 0, b""
        try:
            while sent < limit:
                connection.sendall(b" ")
                sent += 1
                try:
                    chunk = connection.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        return sent, answer


def test_slowloris_is_bounded_and_a_normal_client_gets_its_answer(cnn_fast_run, tmp_path, mnist):
    """Idle half-open connections: a connection cap (the oldest idle one makes room), a header deadline,
    and a whole-body deadline that does not restart with every byte."""
    import httpx2 as httpx

    server = LiveServer(cnn_fast_run, tmp_path, "--max-connections", "50", "--header-timeout-seconds", "2").start()
    try:
        good = {"pixels": mnist[0][0].tolist()}
        idle = _half_open(server.url, 1000)  # twenty times the cap, and they never finish their headers
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(3):
                answer = client.post("/predict", json=good)
                assert answer.status_code == 200 and answer.json()["predictions"][0]["digit"] == 7
        if Path(f"/proc/{server.process.pid}/fd").is_dir():  # the server holds at most the cap (and its listener)
            assert _sockets_of(server.process.pid) <= 50 + 5
        assert all(_closed_by_server(connection) for connection in idle)  # evicted, or closed at the deadline
        for connection in idle:
            connection.close()
        few = _half_open(server.url, 5)  # below the cap: only the header deadline (2 s) closes these
        assert all(_closed_by_server(connection) for connection in few)
        for connection in few:
            connection.close()
        host, port = server.url.removeprefix("http://").split(":")
        busy = []  # the cap's worth of requests in progress (their bodies still to come)
        for _ in range(50):
            busy.append(socket.create_connection((host, int(port)), timeout=30))
            busy[-1].sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 10\r\n\r\n")
        refused = b""
        for _ in range(30):  # once the server has seen them all, a newcomer is refused: nothing idle to close
            with socket.create_connection((host, int(port)), timeout=1) as newcomer:
                try:
                    refused = newcomer.recv(4096)
                except socket.timeout:
                    continue
            if refused.startswith(b"HTTP/1.1 503"):
                break
        assert refused.startswith(b"HTTP/1.1 503") and b"every connection of this server is busy" in refused
        for connection in busy:  # each of them gets its 408 at its deadline
            assert connection.recv(4096).startswith(b"HTTP/1.1 408")
            connection.close()
        sent, answer = _dribble(server.url, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                            b"\r\nContent-Length: 2000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 3 s" in answer
        assert sent < 2000  # cut at the whole-body deadline (3 s), although a byte arrived every 50 ms
        sent, answer = _dribble(server.url, b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 404") and sent < 2000  # answered without reading: closed all the same
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/predict", json=good).status_code == 200
    finally:
        server.stop()
    assert server.process.returncode == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_the_request_in_flight_and_exits_0(cnn_fast_run, tmp_path, mnist, workers):
    """A request accepted before SIGTERM (here: its body still arriving) is answered, then the server exits 0."""
    server = LiveServer(cnn_fast_run, tmp_path, "--workers", str(workers)).start()
    try:
        body = json.dumps({"pixels": mnist[0][0].tolist()}).encode()
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(body) + body[:100])
            time.sleep(0.5)  # the request has been accepted
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # the server is stopping: it accepts nothing new, but this request goes on
            connection.sendall(body[100:])
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["predictions"][0]["digit"] == 7
        assert b"connection: close" in answer.lower()
        assert server.process.wait(timeout=60) == 0, server.log.read_text()[-2000:]
    finally:
        server.stop()


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
