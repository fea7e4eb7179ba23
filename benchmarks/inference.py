"""Inference speed by backend, side by side in one run: latency, throughput, size, accuracy.

Baselines are Keras's own `model.predict`: on one image (latency) and on the 10,000 test
images at its default batch size and at 1,024 (throughput; the better of the two is the bar).
Every backend is measured through the same code the Predictor and `digits export` use.
Writes benchmarks/results/inference.json and prints a table.
Usage: python benchmarks/inference.py [--run RUN]   (default: trains configs/cnn-fast.json)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def keras_baselines(model, images: np.ndarray, labels: np.ndarray, calls: int = 200) -> dict:
    for _ in range(5):
        model.predict(images[:1], verbose=0)
    times = []
    for index in range(calls):
        started = time.perf_counter()
        model.predict(images[index % len(images)][None], verbose=0)
        times.append(time.perf_counter() - started)
    throughput = {}
    for batch_size in (32, 1024):
        model.predict(images[:batch_size], batch_size=batch_size, verbose=0)
        started = time.perf_counter()
        probabilities = model.predict(images, batch_size=batch_size, verbose=0)
        throughput[batch_size] = len(images) / (time.perf_counter() - started)
    return {"latency_p50_us": float(np.percentile(times, 50) * 1e6),
            "latency_p99_us": float(np.percentile(times, 99) * 1e6),
            "throughput_per_s": max(throughput.values()), "throughput_by_batch_size": throughput,
            "test_accuracy": float((probabilities.argmax(1) == labels).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory to measure (default: train configs/cnn-fast.json)")
    args = parser.parse_args()

    from digits import backends, config, data, export, runs, train
    from digits.images import to_model_input
    from digits.predictor import Predictor

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        run = Path(args.run) if args.run else train.train(
            config.load(ROOT / "configs" / "cnn-fast.json"), out=scratch / "run", verbose=0).run_dir
        info = runs.load_info(run)
        dataset = data.load_dataset(info.metrics["dataset"]["name"])
        images, labels = to_model_input(dataset.x_test), dataset.y_test
        model = backends.load("keras", run / "model.keras").model
        rows = {"keras model.predict": {**keras_baselines(model, images, labels),
                                        "size_bytes": (run / "model.keras").stat().st_size}}
        for name, format_, int8, file in [("onnx", "onnx", False, "model.onnx"),
                                          ("litert float32", "litert", False, "model.tflite"),
                                          ("litert int8", "litert", True, "int8.tflite"),
                                          ("savedmodel", "savedmodel", False, "savedmodel")]:
            report = export.export(run, format_, scratch / file, int8=int8)
            rows[name] = {key: report[key] for key in ("latency_p50_us", "latency_p99_us", "throughput_per_s",
                                                       "size_bytes", "test_accuracy")}
        default = Predictor(run)
        model_name = info.config.get("model", "?")

    baseline = rows["keras model.predict"]
    for row in rows.values():
        row["latency_speedup"] = baseline["latency_p50_us"] / row["latency_p50_us"]
        row["throughput_ratio"] = row["throughput_per_s"] / baseline["throughput_per_s"]
    summary = {"benchmark": "inference", "model": model_name, "backends": rows,
               "default_backend": default.backend,
               "default_latencies_us": {key: value * 1e6 for key, value in default.latencies.items()},
               "machine": machine()}
    path = save("inference", summary)
    print(f"{'backend':<22} {'p50 us':>9} {'p99 us':>9} {'vs predict':>10} {'images/s':>9} {'x Keras':>8} "
          f"{'KiB':>7} {'accuracy':>8}")
    for name, row in rows.items():
        print(f"{name:<22} {row['latency_p50_us']:9.0f} {row['latency_p99_us']:9.0f} {row['latency_speedup']:9.0f}x "
              f"{row['throughput_per_s']:9.0f} {row['throughput_ratio']:7.2f}x {row['size_bytes'] / 1024:7.0f} "
              f"{row['test_accuracy']:8.4f}")
    print(f"default backend (measured at load): {default.backend}; wrote {path}")


if __name__ == "__main__":
    main()
