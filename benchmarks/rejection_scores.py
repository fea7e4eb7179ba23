"""Which not-a-digit score, compared on validation data only (never the test set, never a held-out family of
benchmarks/rejection.py).

Every score is read off the run's ONNX copy: its calibrated probabilities and the logits under its final softmax
(the same graph with that input as a second output). Scores, higher meaning "a digit":
  top probability   the calibrated top probability: what every reader refuses by today
  energy            T log sum exp(z / T) over the logits z at the run's temperature T (Liu et al. 2020)
  top logit         max z
  negative entropy  sum p log p of the calibrated probabilities
  margin            the top probability less the second
Each score's threshold refuses the run's stored `reject_rate` of its validation digits (as training fits the
stored one, `calibration.threshold_for`); then, for each set, the share refused and the AUROC against the
validation digits: the same digits rendered as photos (benchmarks/operating_point.py's renderer and seeds), and
non-digits generated fresh by `digits.synthetic` (seed 903, as benchmarks/validation_strips.py draws them), one
set per family, each marked whether the run's Outlier Exposure trained on that family: a family it never saw
(`scripts` for configs/reader.json) shows how a score carries to non-digits no training step imitated.

Usage: python benchmarks/rejection_scores.py --run RUN [--photos 3000] [--non-digits 2000] [--out FILE]
Writes benchmarks/results/rejection_scores.json (or --out), with the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, repo_relative, save  # noqa: E402

NON_DIGIT_SEED = 903  # benchmarks/validation_strips.py's SEEDS["non_digits"]: never a training picture


def logits_model(path: Path) -> bytes:
    """The ONNX model at `path` with the input of its final Softmax as a second output (the logits)."""
    import onnx

    model = onnx.load(str(path))
    produced = {output: node for node in model.graph.node for output in node.output}
    node = produced.get(model.graph.output[0].name)
    while node is not None and node.op_type in ("Identity", "Cast"):
        node = produced.get(node.input[0])
    if node is None or node.op_type != "Softmax":
        raise ValueError(f"{path}: its output is not a softmax, so it has no logits to read; pass a trained run")
    model.graph.output.append(onnx.helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None))
    return model.SerializeToString()


def read(path: Path, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, logits) of the ONNX model at `path` for (N, 28, 28) images, uncalibrated."""
    import onnxruntime

    from digits.images import to_model_input

    session = onnxruntime.InferenceSession(logits_model(path), providers=["CPUExecutionProvider"])
    signature = session.get_inputs()[0]
    inputs = to_model_input(images)
    inputs = inputs.reshape((len(inputs), *[side if isinstance(side, int) else -1 for side in signature.shape[1:]]))
    outputs = [session.run(None, {signature.name: inputs[start:start + batch]})
               for start in range(0, len(inputs), batch)]
    return (np.concatenate([output[0] for output in outputs]).astype(np.float64),
            np.concatenate([output[1] for output in outputs]).astype(np.float64))


def scores(logits: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    """Each score of (N, C) logits at `temperature`, higher meaning more like a digit."""
    scaled = logits / temperature
    top = scaled.max(1, keepdims=True)
    total = np.exp(scaled - top).sum(1, keepdims=True)
    probabilities = np.exp(scaled - top) / total
    ordered = np.sort(probabilities, 1)
    return {"top probability": ordered[:, -1],
            "energy": temperature * (top[:, 0] + np.log(total[:, 0])),
            "top logit": logits.max(1),
            "negative entropy": (probabilities * np.log(np.maximum(probabilities, 1e-30))).sum(1),
            "margin": ordered[:, -1] - ordered[:, -2]}


def compare(by_set: dict[str, dict[str, np.ndarray]], rate: float) -> dict[str, dict]:
    """Per score: the threshold refusing `rate` of by_set["validation"], and each set's share refused and AUROC."""
    from digits import calibration

    result = {}
    for name, digits in by_set["validation"].items():
        threshold = calibration.threshold_for(digits, rate)
        result[name] = {"threshold": float(threshold), **{
            label: {"refused": float((values[name] < threshold).mean()),
                    **({} if label == "validation" else {"auroc": calibration.auroc(digits, values[name])})}
            for label, values in by_set.items()}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run directory (its model.onnx is read)")
    parser.add_argument("--photos", type=int, default=3000, help="validation digits rendered as photos (3000)")
    parser.add_argument("--non-digits", type=int, default=2000, help="generated non-digits per family (2000)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/rejection_scores.json)")
    args = parser.parse_args()

    from operating_point import PHOTO_SEED
    from real_images import render_digit
    from rejection import prepared
    from tqdm import tqdm

    from digits import config, data, runs, synthetic

    started = time.perf_counter()
    try:  # a run that is missing, damaged or not a run: one line
        info = runs.load_info(args.run)
        runs.check_run(args.run)  # a run directory: its own validation split is known
        model = Path(args.run) / "model.onnx"
        if not model.is_file():
            raise ValueError(f"{args.run} has no model.onnx; pass a run that finished training")
        logits_model(model)
    except ValueError as error:
        sys.exit(f"rejection_scores: error: {error}")
    recipe = config.from_run(info.config)
    fitted = info.metrics.get("calibration") or {}
    temperature, rate = float(fitted.get("temperature", 1.0)), float(recipe.reject_rate)
    _, _, _, x_val, _ = data.training_arrays(recipe)  # the run's own validation split
    digits = np.round(x_val[..., 0] * 255).astype(np.uint8)
    count = min(args.photos, len(digits))
    photos = [render_digit(digits[index], np.random.default_rng([PHOTO_SEED, index]))
              for index in tqdm(range(count), desc="validation photos", file=sys.stderr)]
    photo_inputs, photo_ink = prepared(photos)
    trained = set(recipe.outlier_families) if recipe.outlier_exposure > 0 else set()
    sets = {"validation": x_val[..., 0], "validation_photos": photo_inputs}
    for family in tqdm(synthetic.FAMILIES, desc="non-digits", file=sys.stderr):
        sets[family] = synthetic.non_digits(args.non_digits, NON_DIGIT_SEED, families=(family,))
    by_set = {}
    for label, images in sets.items():
        found = scores(read(model, images)[1], temperature)
        if label == "validation_photos":  # a photo without ink is refused whatever the score
            found = {name: np.where(photo_ink, values, -np.inf) for name, values in found.items()}
        by_set[label] = found
    result = compare(by_set, rate)
    for name, row in result.items():
        print(f"{name:>16}: " + ", ".join(f"{label} {row[label]['refused']:.2%}" for label in sets))
    saved = save("rejection_scores", {
        "benchmark": "rejection_scores", "run": repo_relative(str(Path(args.run).resolve())),
        "temperature": temperature, "reject_rate": rate, "stored_threshold": fitted.get("reject_below"),
        "validation_images": len(digits), "photos": count,
        "photo_seed": PHOTO_SEED, "non_digits_per_family": args.non_digits, "non_digit_seed": NON_DIGIT_SEED,
        "families_trained": {family: family in trained for family in synthetic.FAMILIES}, "scores": result,
        "command": " ".join(["python", "benchmarks/rejection_scores.py", *sys.argv[1:]]),
        "seconds": round(time.perf_counter() - started, 1), "machine": machine()}, args.out)
    print(f"wrote {saved}")


if __name__ == "__main__":
    main()
