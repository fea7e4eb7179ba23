"""The full battery of bad HTTP inputs (issue 15) against a real `digits serve` on loopback.

Starts `python -m digits.api RUN` with its default limits (max_batch 256, 16 MiB bodies, 30 s timeout), sends
every case of tests/api/battery.py with `full=True` (every route and protocol, broken framing, odd headers,
hang-ups, and the issue's inputs at full size: 256 images with 100,000 repeated outputs, 16 MB JSON bodies,
a 49-megapixel picture and 256 of them in one upload), one at a time over raw sockets, then checks that the
server still answers a normal request. Targets: no answer >= 500, no traceback in the server's log, no
answer showing a path of the server, the server alive after. Records answers by status, the largest answer,
the server's RSS before and after (and its peak, with the cases that raised it), and its log's size.
Then how long a small request waits while HEAVY_CLIENTS clients each send a 16 MB JSON body at once (8 million
numbers, refused; and the largest body a full batch can be, 256 images of long decimals, answered), against
the same small request alone: parsing holds Python's GIL, so this is what other clients feel.
Writes benchmarks/results/battery.json.
Usage: python benchmarks/battery.py [--run RUN]
       (default run: the latest under runs/, else the shipped model, else a 20-second MLP trained for it)
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "api"))  # the cases live beside the reduced battery's test
from battery import Case, cases, http, problem, run, send, summary  # noqa: E402
from bodies import LiveServer  # noqa: E402
from common import machine, save  # noqa: E402


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MiB (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(round(int(fields[key].split()[0]) / 1024, 1) for key in ("VmRSS", "VmHWM"))


HEAVY_CLIENTS = 6  # the six concurrent 16 MB bodies
PROBE_GAP = 0.01  # seconds between the small requests of the probing client


def heavy_bodies(max_batch: int, max_body: int) -> dict[str, bytes]:
    """16 MB JSON bodies: 8 million zeros (too many values for any batch), and max_batch images of decimals
    written with as many digits as fill the body (the heaviest body that is answered)."""
    zeros = b'{"pixels": [' + b"0," * ((max_body - 20) // 2) + b"0]}"
    digits = max(1, (max_body - 64) // (max_batch * 28 * 28) - 4)
    value = b"0." + b"1" * digits
    row = b"[" + b",".join([value] * 28) + b"]"
    image = b"[" + b",".join([row] * 28) + b"]"
    return {"8 million numbers": zeros[:max_body - 16] + b"0]}",
            f"{max_batch} images of {digits + 2}-digit decimals": b'{"pixels": [' + b",".join([image] * max_batch) + b"]}"}


def latencies(url: str, until) -> list[float]:
    """Seconds each small /predict request took, sent one after another (PROBE_GAP apart) until `until()`."""
    small = Case("probe", "one 28x28 image", http("POST", "/predict", b'{"pixels": ' + str([[0] * 28] * 28).encode() + b"}"))
    taken = []
    while not until():
        result = send(url, small, timeout=60)
        taken.append(result["seconds"] if result["status"] == 200 else float("inf"))
        time.sleep(PROBE_GAP)
    return taken


def heavy_json(url: str, max_batch: int, max_body: int) -> dict:
    """A small request's latency (ms: p50, p99, max) alone, and while HEAVY_CLIENTS clients send each heavy body."""
    def figures(taken):
        taken = sorted(taken)
        return {"requests": len(taken), "p50_ms": round(1000 * statistics.median(taken), 1),
                "p99_ms": round(1000 * taken[min(len(taken) - 1, int(0.99 * len(taken)))], 1),
                "max_ms": round(1000 * taken[-1], 1)}

    stop = time.perf_counter() + 2
    result = {"alone": figures(latencies(url, lambda: time.perf_counter() > stop))}
    for name, body in heavy_bodies(max_batch, max_body).items():
        statuses = []
        senders = [threading.Thread(target=lambda: statuses.append(send(url, Case("heavy", name, http(
            "POST", "/predict", body)), timeout=120)["status"])) for _ in range(HEAVY_CLIENTS)]
        started = time.perf_counter()
        for sender in senders:
            sender.start()
        taken = latencies(url, lambda: not any(sender.is_alive() for sender in senders))
        result[name] = {**figures(taken), "body_bytes": len(body), "statuses": sorted(statuses, key=str),
                        "seconds": round(time.perf_counter() - started, 2)}
    return result


def model(run_arg: str | None, scratch: Path) -> Path:
    from digits import runs

    try:
        return runs.resolve(run_arg)
    except ValueError:
        if run_arg is not None:
            raise
    from digits import config, train

    print("no run or shipped model: training a 20-second MLP for the battery", file=sys.stderr)
    return train.train(config.Config(epochs=1, limit=2000), out=scratch / "mlp", verbose=0).run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory or model file (default: latest run, else the shipped model)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/battery.json)")
    args = parser.parse_args()
    import httpx2 as httpx

    with tempfile.TemporaryDirectory(prefix="digits-battery-") as scratch:
        source = model(args.run, Path(scratch))
        server = LiveServer(source, Path(scratch))
        server.command = [sys.executable, "-m", "digits.api", str(source), "--port", str(server.port),
                          "--log-level", "warning"]  # the defaults a user serves with
        server.start()
        try:
            info = httpx.get(f"{server.url}/info", timeout=10).json()
            battery = cases(info["name"], info["max_batch"], info["max_body_bytes"], full=True)
            before = rss_mib(server.process.pid)
            started = time.perf_counter()
            results = []
            for case in battery:  # one at a time, noting which case raised the server's peak memory
                peak = rss_mib(server.process.pid)[1]
                results += run(server.url, [case], timeout=120,
                               forbidden=("Traceback", str(Path(source).resolve().parent), str(ROOT)))
                results[-1]["peak_rise_mib"] = round(rss_mib(server.process.pid)[1] - peak, 1)
            seconds = time.perf_counter() - started
            after = rss_mib(server.process.pid)
            heavy = heavy_json(server.url, info["max_batch"], info["max_body_bytes"])
            normal = httpx.post(f"{server.url}/predict", json={"pixels": [[0] * 28] * 28}, timeout=30)
            ready = httpx.get(f"{server.url}/health/ready", timeout=10).status_code
            metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        finally:
            server.stop()
        log = server.log.read_text(errors="replace")
    counted = {status: sum(float(value) for value in re.findall(
        rf'^digits_http_requests_total{{.*status="{status}"}} (\S+)$', metrics, re.M)) for status in (r"5\d\d", "499")}
    figures = summary(results)
    result = {
        **figures,
        "groups": {group: sum(1 for case in battery if case.group == group) for group in dict.fromkeys(
            case.group for case in battery)},
        "alive_after": normal.status_code == 200 and ready == 200,
        "metrics": {"server_errors": int(counted[r"5\d\d"]), "client_closed_499": int(counted["499"])},
        "log": {"lines": len(log.splitlines()), "tracebacks": log.count("Traceback"),
                "hang_up_lines": log.count("the client disconnected before sending the whole request body")},
        "rss_mib": {"before": before[0], "after": after[0], "peak": after[1]},
        "seconds": round(seconds, 1),
        "heavy_json": {"clients": HEAVY_CLIENTS, **heavy},
        "server": {"model": info["name"], "backend": info["backend"], "max_batch": info["max_batch"],
                   "max_body_bytes": info["max_body_bytes"]},
        "peak_raised_by": sorted(({"case": f"{r['group']}: {r['name']}", "mib": r["peak_rise_mib"]} for r in results
                                   if r["peak_rise_mib"] >= 10), key=lambda row: -row["mib"]),
        "slowest": sorted(({"case": f"{r['group']}: {r['name']}", "status": r["status"], "seconds": r["seconds"]}
                           for r in results), key=lambda row: -row["seconds"])[:5],
        "results": [{"group": r["group"], "case": r["name"], "status": r["status"], "answer_bytes": r["answer_bytes"],
                     **({"problem": problem(r)} if problem(r) else {})} for r in results],
        "command": "python benchmarks/battery.py",
        "machine": machine(),
    }
    path = save("battery", result, args.out)
    print(f"{figures['cases']} cases: {figures['by_status']}; answers >= 500: {figures['server_errors']}; "
          f"tracebacks in the log: {result['log']['tracebacks']}; largest answer {figures['max_answer_bytes']:,} bytes; "
          f"RSS {before[0]:.0f} -> {after[0]:.0f} MiB (peak {after[1]:.0f}); alive after: {result['alive_after']}")
    for name, row in heavy.items():
        print(f"small request, {name if name == 'alone' else f'{HEAVY_CLIENTS} clients sending {name}'}: "
              f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, max {row['max_ms']} ms")
    for line in figures["problems"]:
        print("problem:", line)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
