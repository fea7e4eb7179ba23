"""Where a served prediction's time goes: the per-request costs behind benchmarks/serve.py's ratios.

In one process, without HTTP (32 concurrent client tasks calling the ASGI apps directly, as
uvicorn would after parsing): (b) the bare FastAPI constant endpoint, our service with its model
replaced by an instant stand-in (framework + our request handling), and our service with the
model. Then the unavoidable work of one single-image JSON `pixels` request, each part timed
alone: decoding the JSON body, turning 784 numbers into an array, and the model's share of a
batch of 16. From those, the most our service could reach of the ceiling's rate if everything
else it does cost nothing: ceiling / (ceiling + body + model), per request; in process, and
over HTTP with the ceiling from benchmarks/results/serve.json when there is one.
Writes benchmarks/results/serve_costs.json and prints a table.
Usage: python benchmarks/serve_costs.py [--run RUN] [--seconds 5]
       (default run: trains configs/cnn-fast.json)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, save  # noqa: E402
from serve import constant_app  # noqa: E402


def scope(body: bytes) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}


async def load(app, body: bytes, seconds: float, clients: int = 32) -> float:
    """Microseconds per request with `clients` concurrent callers for `seconds`."""
    template, count, stop = scope(body), 0, time.perf_counter() + seconds

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def client():
        nonlocal count
        while time.perf_counter() < stop:
            statuses = []

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(dict(template, headers=list(template["headers"])), receive, send)
            if statuses != [200]:
                raise RuntimeError(f"the app answered {statuses}")
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return (time.perf_counter() - started) / count * 1e6


async def measure_app(app, body: bytes, seconds: float, stub=None) -> float:
    async with app.router.lifespan_context(app):
        if stub is not None:
            app.state.service.batcher._predict = stub
        await load(app, body, 1.0)  # warm-up
        return await load(app, body, seconds)


def per_call_us(function, seconds: float = 1.0) -> float:
    calls, total = timeit.Timer(function).autorange()
    repeats = max(1, int(seconds / max(total, 1e-9)))
    return min(timeit.Timer(function).repeat(3, calls * repeats)) / (calls * repeats) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory to serve (default: train configs/cnn-fast.json)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load per app (default: 5)")
    args = parser.parse_args()

    import orjson

    from digits import data
    from digits.api import inputs
    from digits.api.app import create_app
    from digits.api.service import SERVING_BATCH
    from digits.api.settings import Settings

    with tempfile.TemporaryDirectory() as scratch:
        run = Path(args.run).resolve() if args.run else Path(scratch) / "run"
        if not args.run:  # in a child process: training leaves threads and garbage that would slow this one
            subprocess.run([sys.executable, "-m", "digits", "train", "--config", str(ROOT / "configs" / "cnn-fast.json"),
                            "--out", str(run)], check=True, stdout=subprocess.DEVNULL)
        images = data.load_dataset("mnist").x_test
        body = json.dumps({"pixels": images[0].tolist()}).encode()
        settings = Settings(run=str(run))
        answer = np.full((1, 10), 0.1, np.float32)
        apps = {"bare FastAPI constant": asyncio.run(measure_app(constant_app(), body, args.seconds)),
                "ours, model replaced by an instant stand-in": asyncio.run(measure_app(
                    create_app(settings), body, args.seconds, lambda batch: np.repeat(answer, len(batch), 0))),
                "ours, with the model": asyncio.run(measure_app(create_app(settings), body, args.seconds))}
        from digits.api.service import load_predictor

        predictor = load_predictor(settings)
        rows = orjson.loads(body)["pixels"]
        batch = images[:SERVING_BATCH].astype(np.float32) / 255.0
        parts = {"decode the JSON body (orjson)": per_call_us(lambda: orjson.loads(body)),
                 "784 numbers -> array, checked": per_call_us(
                     lambda: inputs.to_batch(inputs.uint8_image(rows), "pixels", 256)),
                 f"model, per image in a batch of {SERVING_BATCH} ({predictor.backend})": per_call_us(
                     lambda: predictor.predict_proba(batch)) / SERVING_BATCH}
    ceiling, unavoidable = apps["bare FastAPI constant"], sum(parts.values())
    # over HTTP (serve.py's wrk run, if there is one) the ceiling also pays uvicorn's parsing: a looser bound
    served = ROOT / "benchmarks" / "results" / "serve.json"
    http_ceiling = None
    if served.is_file():
        result = json.loads(served.read_text())
        http_ceiling = 1e6 / result["servers"][result["best"]["ceiling"]]["requests_per_s"]
    summary = {"benchmark": "serve_costs", "in_process_us_per_request": apps, "unavoidable_us": parts,
               "ours_over_ceiling_us": apps["ours, with the model"] - ceiling,
               "handling_over_ceiling_us": apps["ours, model replaced by an instant stand-in"] - ceiling,
               "share_in_process": ceiling / apps["ours, with the model"],
               "share_bound_in_process": ceiling / (ceiling + unavoidable),
               "http_ceiling_us": http_ceiling,
               "share_bound_http": http_ceiling / (http_ceiling + unavoidable) if http_ceiling else None,
               "machine": machine()}
    path = save("serve_costs", summary)
    print(f"{'in process, no HTTP (32 concurrent callers)':<52} {'us/request':>10}")
    for name, value in apps.items():
        print(f"{name:<52} {value:10.1f}")
    print(f"\n{'unavoidable work of one pixels request':<52} {'us':>10}")
    for name, value in parts.items():
        print(f"{name:<52} {value:10.1f}")
    print(f"\nin process ours reaches {summary['share_in_process']:.0%} of the ceiling's rate; were all but the "
          f"unavoidable work free, at most {summary['share_bound_in_process']:.0%}"
          + (f" (over HTTP, with serve.json's ceiling of {http_ceiling:.0f} us a request: at most "
             f"{summary['share_bound_http']:.0%})" if http_ceiling else "") + f"; wrote {path}")


if __name__ == "__main__":
    main()
