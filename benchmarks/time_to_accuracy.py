"""Time-to-accuracy on this machine: the keras-io `mnist_convnet` example vs our `cnn` recipes.

All runs train on the same data (54,000 training images, 6,000 for validation) through
`digits.train`. After every epoch the official 10,000 test images are scored; that scoring
is excluded from the clock, which runs from the start of `fit` (graph tracing included).
The reference is the keras-io example as published (float32, Adam 1e-3, batch 128, up to
15 epochs; stopped once it reaches 99.0%). Ours are configs/cnn-fast.json (target 99.0%)
and configs/cnn-995.json (target 99.5%), each trained for its full recipe, plus cnn-fast
forced to float32 (what a CPU without native bfloat16 runs).

Writes benchmarks/results/time_to_accuracy.json and prints a table.
Usage: python benchmarks/time_to_accuracy.py [--seed 42] [--reference-epochs 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def time_to_accuracy(settings, x_test, y_test, out: Path, stop_at: float | None = None) -> dict:
    """Train `settings`; return per-epoch (training seconds, test accuracy) and first-hit times."""
    from digits import models, train  # first: digits imports TensorFlow quietly

    import keras

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.excluded, self.curve = time.perf_counter(), 0.0, []

        def on_epoch_end(self, epoch, logs=None):
            paused = time.perf_counter()
            accuracy = float((models.predict_batches(self.model, x_test).argmax(1) == y_test).mean())
            self.curve.append({"epoch": epoch + 1, "seconds": round(paused - self.start - self.excluded, 3),
                               "test_accuracy": accuracy})
            self.excluded += time.perf_counter() - paused
            if stop_at is not None and accuracy >= stop_at:
                self.model.stop_training = True

    clock = Clock()
    train.train(settings, out=out, verbose=0, callbacks=(clock,))

    def first(target):
        return next((point["seconds"] for point in clock.curve if point["test_accuracy"] >= target), None)

    return {"config": settings.to_dict(), "curve": clock.curve,
            "seconds_to_99.0": first(0.990), "seconds_to_99.5": first(0.995),
            "final_test_accuracy": clock.curve[-1]["test_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="seed for every run (default: 42)")
    parser.add_argument("--reference-epochs", type=int, default=15, help="(default: 15, as keras-io)")
    args = parser.parse_args()

    from tqdm import tqdm

    from digits import config, data
    from digits.images import to_model_input

    dataset = data.load_dataset("mnist")
    x_test, y_test = to_model_input(dataset.x_test), dataset.y_test
    runs = {
        "reference": config.Config(model="convnet", epochs=args.reference_epochs, batch_size=128,
                                   learning_rate=0.001, seed=args.seed),
        "cnn-fast": config.load(ROOT / "configs" / "cnn-fast.json", config.Config(seed=args.seed)),
        "cnn-995": config.load(ROOT / "configs" / "cnn-995.json", config.Config(seed=args.seed)),
    }
    # The same fast recipe without bfloat16, for CPUs that lack AMX / AVX512-BF16.
    runs["cnn-fast-float32"] = config.from_dict({"precision": "float32"}, runs["cnn-fast"])
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, settings in tqdm(runs.items(), desc="runs", unit="run"):
            stop = 0.990 if name == "reference" else None
            results[name] = time_to_accuracy(settings, x_test, y_test, Path(scratch) / name, stop_at=stop)

    reference, fast = results["reference"]["seconds_to_99.0"], results["cnn-fast"]["seconds_to_99.0"]
    summary = {"benchmark": "time_to_accuracy", "seed": args.seed, "runs": results,
               "speedup_to_99.0": (reference / fast) if reference and fast else None, "machine": machine()}
    path = save("time_to_accuracy", summary)

    def show(value):
        return f"{value:7.1f} s" if value is not None else "  not reached"

    print(f"{'run':<16} {'to 99.0%':>12} {'to 99.5%':>12} {'final':>8} {'epochs':>6}")
    for name, result in results.items():
        print(f"{name:<16} {show(result['seconds_to_99.0']):>12} {show(result['seconds_to_99.5']):>12} "
              f"{result['final_test_accuracy']:8.4f} {len(result['curve']):6d}")
    if summary["speedup_to_99.0"]:
        print(f"cnn-fast reaches 99.0% {summary['speedup_to_99.0']:.1f}x faster than the keras-io example")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
