"""Serving load, side by side in one run: our service vs the framework's ceiling vs a tutorial server.

(a) `digits serve` (python -m digits.api), (b) a bare FastAPI endpoint returning a constant
(what FastAPI + uvicorn can do at all on this machine), (c) a tutorial-style FastAPI server: a
pydantic body model and `model.predict` per request. (a) and (b) run at each worker count
given (1 and 2 by default), (c) with one. Each runs as a subprocess on a loopback port; wrk
(one thread, 32 connections by default, a Lua script POSTing one MNIST test digit as JSON
`pixels`) runs a warm-up and then a bounded measurement against each, one at a time.
Targets: the best (a) >= 3,000 requests/s, >= 70% of the best (b), p99 <= 15 ms, no errors,
>= 30x (c). Then (d), batched requests side by side: one `digits serve --grpc-port` (1 worker)
answers requests of --batch-images (64) FP32 images from --batched-connections (4) concurrent
clients, each transport in turn for --duration seconds: HTTP JSON (`data` numbers), HTTP binary
tensors (Triton's binary extension) and gRPC (raw_input_contents); images per second, requests
per second and latency per transport. The clients send prepared bodies and only read the answers,
so the numbers are the server's (and the transport's), not a client library's.
(e) `--mixed`: one `digits serve` (1 worker) under a mixed load from --mixed-connections (64) clients,
each request drawn at random: 60% JSON `pixels`, 30% picture uploads (one 112x112 PNG digit), 10%
number strips (a PNG of five digits, mode=number); per kind the answers by status (503s show
whether uploads are locked out), requests per second and latency. It replaces only the "mixed"
part of serve.json.
Writes benchmarks/results/serve.json (the batched rows under "batched") and prints tables.
Usage: python benchmarks/serve.py [--run RUN] [--duration 10] [--connections 32] [--workers 1 2]
       [--batch-images 64] [--batched-connections 4] [--skip-batched | --batched-only | --mixed]
       (default run: trains configs/cnn-fast.json; needs wrk (not for --batched-only): apt-get install -y wrk;
       --batched-only measures (d) alone and replaces only the "batched" part of serve.json)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, save  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"requests_per_s": 3000, "share_of_ceiling": 0.70, "p99_ms": 15.0, "errors": 0, "speedup_vs_tutorial": 30}
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("%(body)s", "rb")
wrk.body = file:read("*a")
file:close()
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, '
    .. '"status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "p999_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


# ------------------------------------------------------------ the two baseline servers (run as subprocesses)


class Item(BaseModel):  # the tutorial server's request body (module level: FastAPI resolves annotations here)
    pixels: list[list[float]]


def constant_app():
    from fastapi import FastAPI

    # FastAPI's OpenTelemetry hooks off, as `digits serve` runs by default: the ceiling is the framework
    # in the configuration ours runs in, so the share measures our code, not a setting
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})

    @app.post("/predict")
    async def predict():
        return {"digit": 7, "confidence": 0.99}

    return app


def tutorial_app(run: str):
    """What a typical FastAPI + Keras tutorial serves: a pydantic body and model.predict per request."""
    import keras
    import numpy as np
    from fastapi import FastAPI

    model = keras.models.load_model(Path(run) / "model.keras", compile=False)
    app = FastAPI()

    @app.post("/predict")
    def predict(item: Item):
        image = np.array(item.pixels, dtype=np.float32).reshape(1, 28, 28, 1) / 255.0
        probabilities = model.predict(image, verbose=0)[0]
        return {"digit": int(probabilities.argmax()), "confidence": float(probabilities.max())}

    return app


def stop(process: subprocess.Popen) -> None:
    """SIGTERM a server, then SIGKILL it if it has not gone after 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def serve_baseline(kind: str, port: int, workers: int, run: str | None) -> None:
    import uvicorn

    from digits import runtime

    runtime.load()  # quiet TensorFlow

    options = {"host": "127.0.0.1", "port": port, "log_level": "warning", "access_log": False}
    if kind == "constant" and workers > 1:  # uvicorn needs an import string to start worker processes
        uvicorn.run("serve:constant_app", factory=True, workers=workers, app_dir=str(Path(__file__).parent),
                    **options)
    else:
        uvicorn.run(constant_app() if kind == "constant" else tutorial_app(run), **options)


# ------------------------------------------------------------ driver


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, body: bytes, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before it was ready")
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server on port {port} not ready after {timeout} s")


def wrk(port: int, script: Path, connections: int, seconds: float) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "2s", "-s", str(script),
               f"http://127.0.0.1:{port}/predict"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line[len("RESULT "):])
    errors = sum(raw[key] for key in ("connect", "read", "write", "status", "timeout"))
    return {"requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6), "requests": raw["requests"],
            "errors": errors, "error_kinds": {key: raw[key] for key in ("connect", "read", "write", "status", "timeout")},
            **{key.replace("_us", "_ms"): raw[key] / 1000 for key in ("p50_us", "p90_us", "p99_us", "p999_us",
                                                                         "max_us")}}


def measure(name: str, command: list[str], body: bytes, script: Path, args, env: dict) -> dict:
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    log = script.with_name(f"server-{port}.log")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        started = time.time()
        try:
            wait_ready(port, body, process)
        except RuntimeError as error:
            raise RuntimeError(f"{name}: {error}; its log ends:\n{log.read_text()[-2000:]}") from None
        load_seconds = time.time() - started
        wrk(port, script, args.connections, min(3.0, args.duration))  # warm-up, not recorded
        result = wrk(port, script, args.connections, args.duration)
        result["start_seconds"] = load_seconds
        try:  # which backend `digits serve` chose (the baselines have no /info)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=5) as response:
                result["backend"] = json.loads(response.read())["backend"]
        except OSError:
            pass
        print(f"  {name}: {result['requests_per_s']:.0f} requests/s, p99 {result['p99_ms']:.1f} ms, "
              f"{result['errors']} errors" + (f" (backend {result['backend']})" if "backend" in result else ""),
              file=sys.stderr)
        return result
    finally:
        stop(process)


# ------------------------------------------------------------ (d) batched requests: HTTP JSON, HTTP binary, gRPC


def _http_sender(port: int, path: str, body: bytes, headers: dict):
    """A function sending one prepared request on its own keep-alive connection; True when answered 200."""
    connection = HTTPConnection("127.0.0.1", port, timeout=30)

    def send() -> bool:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        return response.status == 200

    return send


def _grpc_sender(port: int, request: bytes):
    """A function sending one prepared ModelInfer request (already serialized) on its own channel."""
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
    infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")  # bytes in, bytes out

    def send() -> bool:
        infer(request, timeout=30)
        return True

    return send


def _load(make_sender, connections: int, seconds: float) -> dict:
    """`connections` threads, each with its own sender, sending back to back for `seconds`."""
    latencies, errors, lock = [], [0], threading.Lock()
    senders = [make_sender() for _ in range(connections)]
    start = time.perf_counter()
    deadline = start + seconds

    def loop(send) -> None:
        mine, failed = [], 0
        while (now := time.perf_counter()) < deadline:
            try:
                ok = send()
            except Exception:  # noqa: BLE001  (counted; the run goes on)
                ok = False
            mine.append(time.perf_counter() - now)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=loop, args=(send,)) for send in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [0.0]
    return {"requests": len(latencies), "seconds": elapsed, "errors": errors[0],
            "p50_ms": 1000 * ordered[len(ordered) // 2], "p99_ms": 1000 * ordered[int(len(ordered) * 0.99)]}


def batched_bodies(images, model: str) -> dict:
    """The same FP32 batch three ways: (path or RPC, body, headers) per transport."""
    import numpy as np

    from digits.api.protos import open_inference_grpc_pb2 as pb2  # never with tritonclient.grpc in one process

    tensor = (images / 255.0).astype("<f4")
    shape = list(tensor.shape)
    path = f"/v2/models/{model}/infer"
    as_json = json.dumps({"inputs": [{"name": "images", "shape": shape, "datatype": "FP32",
                                      "data": np.round(tensor.astype(np.float64), 6).ravel().tolist()}]}).encode()
    header = json.dumps({"inputs": [{"name": "images", "shape": shape, "datatype": "FP32",
                                     "parameters": {"binary_data_size": tensor.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    grpc_request = pb2.ModelInferRequest(model_name=model, raw_input_contents=[tensor.tobytes()], inputs=[
        pb2.ModelInferRequest.InferInputTensor(name="images", datatype="FP32", shape=shape)]).SerializeToString()
    return {"HTTP JSON": (path, as_json, {"Content-Type": "application/json"}),
            "HTTP binary tensors": (path, header + tensor.tobytes(),
                                    {"Content-Type": "application/octet-stream",
                                     "Inference-Header-Content-Length": str(len(header))}),
            "gRPC": (None, grpc_request, {})}


def measure_batched(run: Path, single_body: bytes, args, env: dict, scratch: Path) -> dict:
    """(d): one `digits serve --grpc-port`, each transport loaded in turn with the same batch."""
    from digits import data
    from digits.api.service import model_name
    from digits.runs import load_info

    images = data.load_dataset("mnist").x_test[:args.batch_images]
    bodies = batched_bodies(images, model_name(load_info(run)))
    port, grpc_port = free_port(), free_port()
    log = scratch / f"server-batched-{port}.log"
    command = [sys.executable, "-m", "digits.api", str(run), "--port", str(port), "--grpc-port", str(grpc_port),
               "--max-batch", str(max(256, args.batch_images)), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    rows = {}
    try:
        try:
            wait_ready(port, single_body, process)
        except RuntimeError as error:
            raise RuntimeError(f"batched: {error}; its log ends:\n{log.read_text()[-2000:]}") from None
        for name, (path, body, headers) in bodies.items():
            def make_sender(path=path, body=body, headers=headers):
                return _grpc_sender(grpc_port, body) if path is None else _http_sender(port, path, body, headers)

            if not make_sender()():  # one good answer first: a broken body is not a benchmark
                raise RuntimeError(f"batched: {name} request was refused; see {log}")
            _load(make_sender, args.batched_connections, min(2.0, args.duration))  # warm-up, not recorded
            result = _load(make_sender, args.batched_connections, args.duration)
            rows[name] = {"images_per_s": result["requests"] * args.batch_images / result["seconds"],
                          "requests_per_s": result["requests"] / result["seconds"], "request_bytes": len(body),
                          **{key: result[key] for key in ("requests", "errors", "p50_ms", "p99_ms")}}
            print(f"  batched, {name}: {rows[name]['images_per_s']:.0f} images/s, p99 {rows[name]['p99_ms']:.1f} ms, "
                  f"{rows[name]['errors']} errors", file=sys.stderr)
    finally:
        stop(process)
    return {"images_per_request": args.batch_images, "datatype": "FP32", "connections": args.batched_connections,
            "duration_s": args.duration, "workers": 1, "transports": rows, "machine": machine()}


def print_batched(batched: dict) -> None:
    print(f"batched requests ({batched['images_per_request']} {batched['datatype']} images each, "
          f"{batched['connections']} connections, 1 worker):")
    print(f"{'transport':<22} {'images/s':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'KiB/req':>8} {'errors':>7}")
    for name, row in batched["transports"].items():
        print(f"{name:<22} {row['images_per_s']:9.0f} {row['requests_per_s']:7.1f} {row['p50_ms']:7.1f} "
              f"{row['p99_ms']:7.1f} {row['request_bytes'] / 1024:8.0f} {row['errors']:7d}")


MIX = {"pixels": 0.6, "upload": 0.3, "strip": 0.1}  # (e): shares of the requests


def mixed_bodies() -> dict:
    """(e): kind -> (path, body, headers): one MNIST digit as JSON pixels, as an uploaded PNG, five as a strip."""
    import io

    import numpy as np
    from PIL import Image

    from digits import data

    digits = data.load_dataset("mnist").x_test[:5]

    def png(array, scale: int) -> bytes:
        picture = Image.fromarray(255 - array).resize((array.shape[1] * scale, array.shape[0] * scale))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        return buffer.getvalue()

    strip = np.hstack([np.pad(digit, 6) for digit in digits])
    image = {"Content-Type": "image/png"}
    return {"pixels": ("/predict", json.dumps({"pixels": digits[0].tolist()}).encode(),
                       {"Content-Type": "application/json"}),
            "upload": ("/predict", png(digits[0], 4), image),
            "strip": ("/predict?mode=number", png(strip, 2), image)}


def measure_mixed(run: Path, single_body: bytes, args, env: dict, scratch: Path) -> dict:
    """(e): one `digits serve` (1 worker), --mixed-connections clients drawing each request's kind from MIX."""
    import random

    bodies = mixed_bodies()
    port = free_port()
    log = scratch / f"server-mixed-{port}.log"
    command = [sys.executable, "-m", "digits.api", str(run), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    kinds, weights = list(MIX), list(MIX.values())
    answers = {kind: [] for kind in kinds}  # (status, seconds) per request
    lock = threading.Lock()
    try:
        try:
            wait_ready(port, single_body, process)
        except RuntimeError as error:
            raise RuntimeError(f"mixed: {error}; its log ends:\n{log.read_text()[-2000:]}") from None

        def client(seed: int, seconds: float, record: bool) -> None:
            draw, connection, mine = random.Random(seed), None, []
            deadline = time.perf_counter() + seconds
            while (started := time.perf_counter()) < deadline:
                kind = draw.choices(kinds, weights)[0]
                path, body, headers = bodies[kind]
                try:
                    connection = connection or HTTPConnection("127.0.0.1", port, timeout=60)
                    connection.request("POST", path, body, headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    if response.getheader("connection", "").lower() == "close":
                        connection.close()
                        connection = None
                except OSError:
                    status, connection = 0, None  # no answer (counted apart)
                mine.append((kind, status, time.perf_counter() - started))
            if record:
                with lock:
                    for kind, status, seconds_taken in mine:
                        answers[kind].append((status, seconds_taken))

        for seconds, record in ((min(2.0, args.duration), False), (args.duration, True)):  # warm-up, then measured
            threads = [threading.Thread(target=client, args=(seed, seconds, record))
                       for seed in range(args.mixed_connections)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        stop(process)
    rows = {}
    for kind, items in answers.items():
        statuses: dict[str, int] = {}
        for status, _ in items:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        ok = sorted(seconds for status, seconds in items if status == 200) or [0.0]
        rows[kind] = {"requests": len(items), "requests_per_s": len(items) / args.duration, "statuses": statuses,
                      "ok_share": statuses.get("200", 0) / max(len(items), 1),
                      "p50_ms": 1000 * ok[len(ok) // 2], "p99_ms": 1000 * ok[int(len(ok) * 0.99)]}
        print(f"  mixed, {kind}: {rows[kind]['requests_per_s']:.0f} requests/s, {rows[kind]['ok_share']:.1%} answered "
              f"200 ({statuses}), p99 {rows[kind]['p99_ms']:.0f} ms", file=sys.stderr)
    return {"connections": args.mixed_connections, "duration_s": args.duration, "mix": MIX, "workers": 1,
            "kinds": rows, "machine": machine()}


def print_mixed(mixed: dict) -> None:
    print(f"mixed load ({mixed['connections']} connections, 1 worker, {mixed['duration_s']:g} s):")
    print(f"{'kind':<8} {'share':>6} {'req/s':>7} {'200':>7} {'503':>6} {'504':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for kind, row in mixed["kinds"].items():
        print(f"{kind:<8} {mixed['mix'][kind]:6.0%} {row['requests_per_s']:7.1f} {row['ok_share']:7.1%} "
              f"{row['statuses'].get('503', 0):6d} {row['statuses'].get('504', 0):6d} {row['p50_ms']:7.1f} "
              f"{row['p99_ms']:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory to serve (default: train configs/cnn-fast.json)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per server (default: 10)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default: 32)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="uvicorn worker counts to measure (a) and (b) at (default: 1 2); (c) runs one")
    parser.add_argument("--skip-tutorial", action="store_true", help="leave out (c), the slow baseline")
    parser.add_argument("--batch-images", type=int, default=64, help="images per batched request in (d) (default: 64)")
    parser.add_argument("--batched-connections", type=int, default=4,
                        help="concurrent clients in (d) (default: 4)")
    batched_choice = parser.add_mutually_exclusive_group()
    batched_choice.add_argument("--skip-batched", action="store_true", help="leave out (d), the batched requests")
    batched_choice.add_argument("--batched-only", action="store_true",
                                help="measure only (d) (no wrk needed); replaces the \"batched\" part of serve.json")
    batched_choice.add_argument("--mixed", action="store_true",
                                help="measure only (e), the mixed load (no wrk needed); replaces the \"mixed\" part "
                                     "of serve.json")
    parser.add_argument("--mixed-connections", type=int, default=64, help="concurrent clients in (e) (default: 64)")
    parser.add_argument("--serve", choices=("constant", "tutorial"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_baseline(args.serve, args.port, args.workers[0], args.run)
    if shutil.which("wrk") is None and not (args.batched_only or args.mixed):
        sys.exit("serve.py needs wrk: apt-get install -y wrk (or measure only the batched requests: --batched-only)")

    from digits import config, data, train

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        run = Path(args.run).resolve() if args.run else train.train(
            config.load(ROOT / "configs" / "cnn-fast.json"), out=scratch / "run", verbose=0).run_dir
        image = data.load_dataset("mnist").x_test[0]
        body = json.dumps({"pixels": image.tolist()}).encode()
        (scratch / "body.json").write_bytes(body)
        script = scratch / "post.lua"
        script.write_text(LUA % {"body": scratch / "body.json"})
        env = {key: value for key, value in os.environ.items() if not key.startswith("DIGITS_")}
        env["PYTHONUNBUFFERED"] = "1"
        if args.batched_only or args.mixed:
            part, measured = ("mixed", measure_mixed(run, body, args, env, scratch)) if args.mixed else (
                "batched", measure_batched(run, body, args, env, scratch))
            previous = RESULTS / "serve.json"
            summary = json.loads(previous.read_text()) if previous.is_file() else {"benchmark": "serve"}
            path = save("serve", {**summary, part: measured})
            (print_mixed if args.mixed else print_batched)(measured)
            print(f"wrote the {part} rows into {path} (the rest of it is unchanged)")
            return
        this = [sys.executable, str(Path(__file__).resolve())]
        servers = {}
        for workers in args.workers:
            servers[f"digits serve, {workers} worker(s)"] = [
                sys.executable, "-m", "digits.api", str(run), "--port", "{port}", "--workers", str(workers),
                "--log-level", "warning"]
            servers[f"bare FastAPI constant, {workers} worker(s)"] = [
                *this, "--serve", "constant", "--port", "{port}", "--workers", str(workers)]
        if not args.skip_tutorial:
            servers["tutorial model.predict, 1 worker"] = [*this, "--serve", "tutorial", "--port", "{port}",
                                                           "--run", str(run)]
        load_before = os.getloadavg()
        rows = {name: measure(name, command, body, script, args, env) for name, command in servers.items()}
        batched = None if args.skip_batched else measure_batched(run, body, args, env, scratch)

    def best(prefix: str) -> tuple[str, dict]:
        return max(((name, row) for name, row in rows.items() if name.startswith(prefix)),
                   key=lambda item: item[1]["requests_per_s"])

    ours_name, ours = best("digits serve")
    ceiling_name, ceiling = best("bare FastAPI")
    tutorial = rows.get("tutorial model.predict, 1 worker")
    share = ours["requests_per_s"] / ceiling["requests_per_s"]
    same_workers = {workers: rows[f"digits serve, {workers} worker(s)"]["requests_per_s"]
                    / rows[f"bare FastAPI constant, {workers} worker(s)"]["requests_per_s"] for workers in args.workers}
    checks = {"requests_per_s": ours["requests_per_s"] >= TARGETS["requests_per_s"],
              "share_of_ceiling": share >= TARGETS["share_of_ceiling"],
              "p99_ms": ours["p99_ms"] <= TARGETS["p99_ms"], "errors": ours["errors"] == 0}
    if tutorial:
        checks["speedup_vs_tutorial"] = ours["requests_per_s"] / max(tutorial["requests_per_s"], 1e-9) >= \
            TARGETS["speedup_vs_tutorial"]
    summary = {"benchmark": "serve", "connections": args.connections, "duration_s": args.duration,
               "servers": rows, "best": {"ours": ours_name, "ceiling": ceiling_name},
               "share_of_ceiling": share, "share_at_same_workers": same_workers,
               "speedup_vs_tutorial": ours["requests_per_s"] / tutorial["requests_per_s"] if tutorial else None,
               "targets": TARGETS, "met": checks, "load_average_before": load_before, "machine": machine()}
    if batched is not None:
        summary["batched"] = batched
    previous = RESULTS / "serve.json"  # (e), measured apart (--mixed), is kept
    if previous.is_file() and "mixed" in (earlier := json.loads(previous.read_text())):
        summary["mixed"] = earlier["mixed"]
    path = save("serve", summary)
    print(f"{'server':<36} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>7}")
    for name, row in rows.items():
        print(f"{name:<36} {row['requests_per_s']:8.0f} {row['p50_ms']:7.2f} {row['p90_ms']:7.2f} {row['p99_ms']:7.2f} "
              f"{row['max_ms']:7.1f} {row['errors']:7d}")
    print(f"best digits serve ({ours_name}): {share:.0%} of the best FastAPI ceiling ({ceiling_name}); at equal "
          "workers: " + ", ".join(f"{workers}: {value:.0%}" for workers, value in same_workers.items())
          + (f"; {summary['speedup_vs_tutorial']:.0f}x the tutorial server" if tutorial else ""))
    if batched is not None:
        print_batched(batched)
    print(f"targets met: {', '.join(key for key, ok in checks.items() if ok) or 'none'}"
          + (f"; missed: {', '.join(key for key, ok in checks.items() if not ok)}" if not all(checks.values()) else ""))
    print(f"load average before: {load_before[0]:.2f} on {os.cpu_count()} cores (other work on the machine lowers "
          f"every row); wrote {path}")


if __name__ == "__main__":
    main()
