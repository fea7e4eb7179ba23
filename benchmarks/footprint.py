"""Reading right after install: one-shot reads and a folder against Tesseract, and how fast and small the service is.

All with the shipped model (no run named, an empty runs directory), as whole processes, side by side in one run:

  one photo    `digits predict photo.jpg` against `tesseract photo.jpg - --psm 10` (Debian's tesseract-ocr):
               median wall time and peak memory (the process's maximum resident set) over --repeats runs,
               alternating the two; targets: at most 5x Tesseract's wall time and at most 200 MiB.
  a folder     --photos rendered photos of MNIST test digits (benchmarks/real_images.py's renderer) read in one
               process each way (`digits predict --mode digit` with every file, `tesseract LIST.txt` over a file
               list): images per second, and the share each reads right; and `digits predict` in its default
               auto mode (a digit or a whole number, whichever the picture holds), which cuts and weighs first;
               and auto mode with `--workers` one per usable core (where there are several).
  the service  `digits serve` with no run: seconds from start until `/v2/health/ready` answers 200, and the
               worker's memory when ready and after --requests single-image requests (peak); targets: ready
               within 3 s, at most 250 MiB.

The package is byte-compiled first (its modules' `.pyc` files, as `pip install` writes them for a wheel), so
no timed process compiles Python sources: where PYTHONDONTWRITEBYTECODE is set, an editable install would
otherwise compile every module of `digits` in every run, which no copy installed from a wheel does.
Peak memory comes from GNU time (`/usr/bin/time`, Debian's `time`). Nothing is installed here: a missing
`tesseract` or API extra is reported and that part left out.
Writes benchmarks/results/footprint.json.
Usage: python benchmarks/footprint.py [--repeats 7] [--photos 1000] [--requests 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGETS = {"one_shot_wall_ratio": 5.0, "one_shot_peak_mib": 200.0, "ready_seconds": 3.0, "worker_mib": 250.0}
SEED = 30_000
JPEG = bytes([0xFF, 0xD8])  # how a JPEG file starts
GNU_TIME = "/usr/bin/time"  # Debian's time package: a process's peak memory


def run_measured(argv: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak resident MiB, stdout) of one whole process. The peak comes from GNU time (`%M`):
    a child forked from this process would inherit this process's own high-water mark."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        started = time.perf_counter()
        status = subprocess.run([GNU_TIME, "-f", "%M", "-o", peak.name, *argv], stdout=out, stderr=err, env=env,
                                cwd=cwd).returncode
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        if status != 0:
            raise RuntimeError(f"`{' '.join(argv[:3])} ...` failed ({status}): {err.read().decode()[-500:]}")
        return wall, int(peak.read().split()[-1]) / 1024, out.read().decode()


def photos(count: int, folder: Path) -> tuple[list[Path], list[int]]:
    """`count` rendered photos of MNIST test digits (seeded), written as files; and their labels."""
    from real_images import render_digit

    from digits import data

    mnist = data.load_dataset("mnist")
    paths, labels = [], []
    for index in range(count):
        encoded = render_digit(mnist.x_test[index], np.random.default_rng([SEED, index]))
        suffix = "jpg" if encoded.startswith(JPEG) else "png"
        path = folder / f"{index:05d}.{suffix}"
        path.write_bytes(encoded)
        paths.append(path)
        labels.append(int(mnist.y_test[index]))
    return paths, labels


def byte_compile() -> dict:
    """Write the bytecode of every module of the installed `digits` package, as pip does when it installs a wheel."""
    import compileall

    import digits

    folder = Path(digits.__file__).parent
    written = compileall.compile_dir(folder, quiet=1)  # skips modules whose bytecode is up to date
    return {"compiled": bool(written), "dont_write_bytecode_set": bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))}


def tesseract_text(text: str) -> str:
    return "".join(character for character in text if not character.isspace())


def one_shot(digits: list[str], tesseract: str | None, photo: Path, repeats: int, env: dict, cwd: Path) -> dict:
    rows = {"digits": [], "tesseract": []}
    answers = {}
    for _ in range(repeats):  # alternate, so both see the same machine
        wall, peak, out = run_measured([*digits, "predict", str(photo), "--json"], env, cwd)
        rows["digits"].append((wall, peak))
        answers["digits"] = json.loads(out)["results"][0].get("label")
        if tesseract:
            wall, peak, out = run_measured([tesseract, str(photo), "-", "--psm", "10"], env, cwd)
            rows["tesseract"].append((wall, peak))
            answers["tesseract"] = tesseract_text(out)
    result = {name: {"wall_seconds": statistics.median(w for w, _ in runs), "peak_mib": max(p for _, p in runs),
                     "walls": [w for w, _ in runs], "answer": answers.get(name)}
              for name, runs in rows.items() if runs}
    if "tesseract" in result:
        result["wall_ratio"] = result["digits"]["wall_seconds"] / result["tesseract"]["wall_seconds"]
    return result


def folder(digits: list[str], tesseract: str | None, paths: list[Path], labels: list[int], env: dict,
           cwd: Path, workers: int = 1) -> dict:
    result = {"photos": len(paths), "workers": workers}
    runs_ = [("digits", ["--mode", "digit"]), ("digits_auto", [])]  # told it is one digit; and as is
    if workers > 1:  # and as is, in a process per core
        runs_.append(("digits_auto_workers", ["--workers", str(workers)]))
    for key, mode in runs_:
        wall, peak, out = run_measured([*digits, "predict", *map(str, paths), "--json", *mode], env, cwd)
        read = [item.get("label") for item in json.loads(out)["results"]]
        result[key] = {"seconds": wall, "images_per_second": len(paths) / wall, "peak_mib": peak,
                       "accuracy": float(np.mean([answer == str(label) for answer, label in zip(read, labels)]))}
    if tesseract:
        listing = cwd / "photos.txt"
        listing.write_text("".join(f"{path}\n" for path in paths))
        wall, peak, out = run_measured([tesseract, str(listing), "-", "--psm", "10"], env, cwd)
        pages = out.split("\f")  # one page of text per picture, form feeds between them
        answers = [tesseract_text(page) for page in pages[:len(paths)]]
        result["tesseract"] = {"seconds": wall, "images_per_second": len(paths) / wall, "peak_mib": peak,
                               "pages": len(answers),
                               "accuracy": float(np.mean([answer == str(label) for answer, label
                                                          in zip(answers, labels)]))}
        result["speed_ratio"] = result["digits"]["images_per_second"] / result["tesseract"]["images_per_second"]
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mib(pid: int) -> dict:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "peak_mib": int(fields["VmHWM"].split()[0]) / 1024}


def service(digits: list[str], requests: int, env: dict, cwd: Path) -> dict:
    """Start `digits serve` (one worker), time it to ready, load it, read its memory; stopped after."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([*digits, "serve", "--port", str(port), "--log-level", "warning"], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = None
        while time.perf_counter() - started < 120:
            if process.poll() is not None:
                raise RuntimeError(f"digits serve exited ({process.returncode}): {process.stderr.read().decode()[-500:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        ready = time.perf_counter() - started
                        break
            except OSError:
                time.sleep(0.02)
        if ready is None:
            raise RuntimeError("digits serve was not ready after 120 s")
        at_ready = memory_mib(process.pid)
        rng = np.random.default_rng(SEED)
        for _ in range(requests):
            body = json.dumps({"pixels": rng.integers(0, 256, (28, 28)).tolist()}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                answer.read()
        loaded = memory_mib(process.pid)
        return {"ready_seconds": ready, "rss_at_ready_mib": at_ready["rss_mib"], "requests": requests,
                "rss_after_mib": loaded["rss_mib"], "peak_mib": loaded["peak_mib"]}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="one-shot reads of each tool (default: 7)")
    parser.add_argument("--photos", type=int, default=1000, help="photos in the folder (default: 1000)")
    parser.add_argument("--requests", type=int, default=2000, help="requests to the service (default: 2000)")
    args = parser.parse_args()

    from common import machine, save

    from digits import runs
    from digits.workers import cores

    runs.shipped_model()  # a missing or damaged shipped model: say so now
    if not Path(GNU_TIME).is_file():
        sys.exit("footprint: needs GNU time for peak memory: apt-get install time")
    bin_dir = Path(sys.executable).parent
    digits = [str(bin_dir / "digits")] if (bin_dir / "digits").is_file() else [sys.executable, "-m", "digits"]
    tesseract = shutil.which("tesseract")
    missing = [] if tesseract else ["tesseract (apt-get install tesseract-ocr): the comparisons are left out"]
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
        has_api = True
    except ImportError:
        has_api = False
        missing.append("the api extra (pip install '.[api]'): the service is left out")
    bytecode = byte_compile()
    if not bytecode["compiled"]:
        missing.append("the package's bytecode could not be written: every process compiles its sources")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "runs").mkdir()
        (scratch / "photos").mkdir()
        env = {**os.environ, "DIGITS_RUNS_DIR": str(scratch / "runs")}
        paths, labels = photos(args.photos, scratch / "photos")
        print("one photo ...", file=sys.stderr)
        single = one_shot(digits, tesseract, paths[0], args.repeats, env, scratch)
        print(f"a folder of {len(paths)} photos ...", file=sys.stderr)
        many = folder(digits, tesseract, paths, labels, env, scratch, cores())
        print("the service ...", file=sys.stderr)
        served = service(digits, args.requests, env, scratch) if has_api else None
    met = {"one_shot_wall_ratio": single.get("wall_ratio", float("inf")) <= TARGETS["one_shot_wall_ratio"],
           "one_shot_peak_mib": single["digits"]["peak_mib"] <= TARGETS["one_shot_peak_mib"]}
    if served:
        met |= {"ready_seconds": served["ready_seconds"] <= TARGETS["ready_seconds"],
                "worker_mib": served["peak_mib"] <= TARGETS["worker_mib"]}
    card = runs.read_card()
    summary = {"benchmark": "footprint", "model": card["name"], "one_shot": single, "folder": many,
               "service": served, "bytecode": bytecode, "targets": TARGETS, "met": met, "missing": missing,
               "machine": machine()}
    path = save("footprint", summary)
    print(json.dumps({key: summary[key] for key in ("one_shot", "folder", "service", "met")}, indent=1))
    for line in missing:
        print(f"missing: {line}", file=sys.stderr)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
