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

With --strips N, also what each score costs whole numbers: N strips of validation digits whose neighbours all
touch and N mixed ones, rendered and read as benchmarks/validation_strips.py renders and reads them (same seeds),
read whole only if every digit is right and no piece falls under that score's threshold (a refused piece reads
"?"). Strips are cut as the reading path cuts them with the run (with its digit scores when it refuses by the
energy, since 2026-12-04), so the figures of the run's stored score are the ones validation_strips.py reports.

Usage: python benchmarks/rejection_scores.py --run RUN [--photos 3000] [--non-digits 2000] [--strips 0] [--out FILE]
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
from validation_strips import SEEDS  # noqa: E402

NON_DIGIT_SEED = SEEDS["non_digits"]  # never a training picture
STRIP_SEEDS = {kind: SEEDS[kind] for kind in ("touching", "mixed")}


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


def logits_session(path: Path):
    """An ONNX Runtime session on `logits_model(path)`, made once per run and passed to `read`."""
    import onnxruntime

    return onnxruntime.InferenceSession(logits_model(path), providers=["CPUExecutionProvider"])


def read(session, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, logits) of a `logits_session` for (N, 28, 28) images, uncalibrated."""
    from digits.images import to_model_input

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


def strips_whole(predictor, session, digits: np.ndarray, labels: np.ndarray, count: int, temperature: float,
                 thresholds: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per score, the share of `count` touching and of `count` mixed strips of `digits` read whole, a piece under
    the score's threshold refused (see the module doc); pieces cut and read by `multidigit` as the reading path
    cuts them with `predictor` (`reading`'s cut: with its digit scores if it refuses by the energy),
    scored from the logits of `session` (`logits_session`)."""
    from real_images import strip_photos
    from tqdm import tqdm

    from digits import images, reading

    reader = reading._model(predictor)
    whole = {name: dict.fromkeys(STRIP_SEEDS, 0) for name in thresholds}
    for kind, seed in STRIP_SEEDS.items():
        drawn = strip_photos(digits, labels, count, [seed], 1.0 if kind == "touching" else None)
        for truth, photo in tqdm(drawn, total=count, desc=f"{kind} strips", file=sys.stderr):
            pieces, probabilities, _ = reader.cut(images.to_gray(photo))
            if "".join(str(int(row.argmax())) for row in probabilities) != truth:
                continue  # misread or no digits: not whole, whatever the score
            found = scores(read(session, np.stack([piece.image for piece in pieces]))[1], temperature)
            for name, threshold in thresholds.items():
                whole[name][kind] += bool((found[name] >= threshold).all())
    return {name: {kind: value / count for kind, value in counts.items()} for name, counts in whole.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run directory (its model.onnx is read)")
    parser.add_argument("--photos", type=int, default=3000, help="validation digits rendered as photos (3000)")
    parser.add_argument("--non-digits", type=int, default=2000, help="generated non-digits per family (2000)")
    parser.add_argument("--strips", type=int, default=0, help="touching and mixed strips each (default: 0)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/rejection_scores.json)")
    args = parser.parse_args()
    for flag, value, least in (("--photos", args.photos, 1), ("--non-digits", args.non_digits, 1),
                               ("--strips", args.strips, 0)):
        if value < least:
            parser.error(f"{flag} must be at least {least}, got {value}")

    from operating_point import PHOTO_SEED
    from real_images import render_digit
    from rejection import prepared_inputs as prepared
    from tqdm import tqdm

    from digits import config, data, runs, synthetic

    started = time.perf_counter()
    try:  # a run that is missing, damaged or not a run: one line
        info = runs.load_info(args.run)
        runs.check_run(args.run)  # a run directory: its own validation split is known
        model = Path(args.run) / "model.onnx"
        if not model.is_file():
            raise ValueError(f"{args.run} has no model.onnx; pass a run that finished training")
        session = logits_session(model)
    except ValueError as error:
        sys.exit(f"rejection_scores: error: {error}")
    recipe = config.from_run(info.config)
    fitted = info.metrics.get("calibration") or {}
    temperature, rate = float(fitted.get("temperature", 1.0)), float(recipe.reject_rate)
    _, _, _, x_val, y_val = data.training_arrays(recipe)  # the run's own validation split
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
        found = scores(read(session, images)[1], temperature)
        if label == "validation_photos":  # a photo without ink is refused whatever the score
            found = {name: np.where(photo_ink, values, -np.inf) for name, values in found.items()}
        by_set[label] = found
    result = compare(by_set, rate)
    if args.strips:
        from digits.predictor import Predictor

        read_whole = strips_whole(Predictor(args.run), session, digits, np.asarray(y_val), args.strips, temperature,
                                  {name: row["threshold"] for name, row in result.items()})
        for name, row in result.items():
            row["strips_read_whole"] = read_whole[name]
    for name, row in result.items():
        strips = row.get("strips_read_whole", {})
        print(f"{name:>16}: " + ", ".join(f"{label} {row[label]['refused']:.2%}" for label in sets)
              + "".join(f", {kind} strips whole {share:.1%}" for kind, share in strips.items()))
    saved = save("rejection_scores", {
        "benchmark": "rejection_scores", "run": repo_relative(str(Path(args.run).resolve())),
        "temperature": temperature, "reject_rate": rate, "stored_score": fitted.get("score", "max_probability"),
        "stored_threshold": fitted.get("max_probability_below", fitted.get("reject_below")),
        "stored_energy_threshold": fitted.get("energy_below"),
        "validation_images": len(digits), "photos": count,
        "photo_seed": PHOTO_SEED, "non_digits_per_family": args.non_digits, "non_digit_seed": NON_DIGIT_SEED,
        "strips": args.strips, "strip_seeds": STRIP_SEEDS,
        "families_trained": {family: family in trained for family in synthetic.FAMILIES}, "scores": result,
        "command": " ".join(["python", "benchmarks/rejection_scores.py", *sys.argv[1:]]),
        "seconds": round(time.perf_counter() - started, 1), "machine": machine()}, args.out)
    print(f"wrote {saved}")


if __name__ == "__main__":
    main()
