"""Which not-a-digit score, compared on validation data only (never the test set, never a held-out family of
benchmarks/rejection.py).

Every score is read off the run's ONNX copy: its calibrated probabilities and the logits under its final softmax
(the same graph with that input as a second output). Scores, higher meaning "a digit":
  top probability   the calibrated top probability: what every reader refuses by today
  energy            T log sum exp(z / T) over the logits z at the run's temperature T (Liu et al. 2020)
  top logit         max z
  negative entropy  sum p log p of the calibrated probabilities
  margin            the top probability less the second
  mahalanobis       minus the smallest squared Mahalanobis distance from the features under the final dense layer
                    to a class mean, one covariance shared by the classes, fitted on the run's training split
                    (Lee et al. 2018)
  energy + mahalanobis  the two added, each first standardised by its mean and spread on the training split
  nearest mean      minus the smallest squared Euclidean distance from the features to a class mean (the
                    Mahalanobis distance with the identity for covariance: no direction weighed more)
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

--run takes a run directory or the shipped model (src/digits/shipped/model.onnx: the card's recipe rebuilds its split).

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


def _skip_casts(node, produced: dict):
    while node is not None and node.op_type in ("Identity", "Cast"):
        node = produced.get(node.input[0])
    return node


def logits_model(path: Path, features: bool = False) -> bytes:
    """The ONNX model at `path` with the input of its final Softmax as a second output (the logits) and, with
    `features`, the input of the dense layer that makes them (MatMul and Add, or Gemm) as a third."""
    import onnx

    model = onnx.load(str(path))
    produced = {output: node for node in model.graph.node for output in node.output}
    node = _skip_casts(produced.get(model.graph.output[0].name), produced)
    if node is None or node.op_type != "Softmax":
        raise ValueError(f"{path}: its output is not a softmax, so it has no logits to read; pass a trained run")
    outputs = [node.input[0]]
    if features:
        dense = _skip_casts(produced.get(node.input[0]), produced)
        if dense is not None and dense.op_type == "Add":  # a MatMul and its bias
            inputs = [_skip_casts(produced.get(name), produced) for name in dense.input]
            dense = next((node for node in inputs if node is not None and node.op_type == "MatMul"), None)
        if dense is None or dense.op_type not in ("MatMul", "Gemm"):
            raise ValueError(f"{path}: its logits do not come from a dense layer, so it has no features to read")
        outputs.append(dense.input[0])
    del model.graph.output[1:]  # a "logits" output the file may carry already is the first of these
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in outputs)
    return model.SerializeToString()


def logits_session(path: Path, features: bool = False):
    """An ONNX Runtime session on `logits_model(path, features)`, made once per run and passed to `read`."""
    import onnxruntime

    return onnxruntime.InferenceSession(logits_model(path, features), providers=["CPUExecutionProvider"])


def read(session, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, ...]:
    """(probabilities, logits[, features]) of a `logits_session` for (N, 28, 28) images, uncalibrated."""
    from digits.images import to_model_input

    signature = session.get_inputs()[0]
    inputs = to_model_input(images)
    inputs = inputs.reshape((len(inputs), *[side if isinstance(side, int) else -1 for side in signature.shape[1:]]))
    outputs = [session.run(None, {signature.name: inputs[start:start + batch]})
               for start in range(0, len(inputs), batch)]
    return tuple(np.concatenate([output[index] for output in outputs]).reshape(len(inputs), -1).astype(np.float64)
                 for index in range(len(outputs[0]))) if outputs else ()


def fit_gaussian(features: np.ndarray, labels: np.ndarray, logits: np.ndarray, temperature: float) -> dict:
    """Class means and the whitening of their shared covariance, fitted on (N, F) training features, and the mean
    and spread of the energy and of `mahalanobis` on them (to add the two in `scores`)."""
    labels = np.asarray(labels)
    means = np.stack([features[labels == label].mean(0) for label in range(logits.shape[1])])
    centred = features - means[labels]
    values, vectors = np.linalg.eigh(centred.T @ centred / len(features))
    whiten = vectors / np.sqrt(np.maximum(values, values.max() * 1e-9))  # (f - m) @ whiten: unit covariance
    gaussian = {"means": means @ whiten, "whiten": whiten, "plain_means": means}
    found = scores(logits, temperature)["energy"], mahalanobis(features, gaussian)
    return {**gaussian, "spread": [(float(values.mean()), float(values.std())) for values in found]}


def mahalanobis(features: np.ndarray, gaussian: dict) -> np.ndarray:
    """Minus the smallest squared Mahalanobis distance from each feature row to a class mean."""
    return _nearest(features @ gaussian["whiten"], gaussian["means"])


def _nearest(points: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Minus the smallest squared Euclidean distance from each row of `points` to a row of `means`."""
    squared = (points ** 2).sum(1, keepdims=True) - 2 * points @ means.T + (means ** 2).sum(1)
    return -np.maximum(squared, 0.0).min(1)


def scores(logits: np.ndarray, temperature: float, features: np.ndarray | None = None,
           gaussian: dict | None = None) -> dict[str, np.ndarray]:
    """Each score of (N, C) logits at `temperature` (and of their features, with a `fit_gaussian`), higher
    meaning more like a digit."""
    from digits import calibration

    scaled = logits / temperature
    top = scaled.max(1, keepdims=True)
    total = np.exp(scaled - top).sum(1, keepdims=True)
    probabilities = np.exp(scaled - top) / total
    ordered = np.sort(probabilities, 1)
    found = {"top probability": ordered[:, -1],
             "energy": calibration.energy(logits, temperature),
             "top logit": logits.max(1),
             "negative entropy": (probabilities * np.log(np.maximum(probabilities, 1e-30))).sum(1),
             "margin": ordered[:, -1] - ordered[:, -2]}
    return found if gaussian is None else {**found, **_feature_scores(found["energy"], features, gaussian)}


def _feature_scores(energy: np.ndarray, features: np.ndarray, gaussian: dict) -> dict[str, np.ndarray]:
    distance = mahalanobis(features, gaussian)
    (energy_mean, energy_spread), (distance_mean, distance_spread) = gaussian["spread"]
    return {"mahalanobis": distance, "energy + mahalanobis": (energy - energy_mean) / energy_spread
            + (distance - distance_mean) / distance_spread,
            "nearest mean": _nearest(features, gaussian["plain_means"])}


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
                 thresholds: dict[str, float], gaussian: dict | None = None) -> dict[str, dict[str, float]]:
    """Per score, the share of `count` touching and of `count` mixed strips of `digits` read whole, a piece under
    the score's threshold refused (see the module doc); pieces cut and read by `multidigit` as the reading path
    cuts them with `predictor` (`reading`'s cut: with its digit scores if it refuses by the energy),
    scored from the logits of `session` (`logits_session`)."""
    from real_images import strip_photos
    from tqdm import tqdm

    from digits import images, multidigit, reading

    reader = reading._model(predictor)
    whole = {name: dict.fromkeys(STRIP_SEEDS, 0) for name in thresholds}
    for kind, seed in STRIP_SEEDS.items():
        drawn = strip_photos(digits, labels, count, [seed], 1.0 if kind == "touching" else None)
        for truth, photo in tqdm(drawn, total=count, desc=f"{kind} strips", file=sys.stderr):
            ink = images.analyse(images.to_gray(photo))
            if len(multidigit.lines(ink)) > 1:
                continue  # read as lines of writing: its text breaks, not whole
            _, pieces, _, cut, _ = reading._cut_line(ink, reader, reader.stored)  # as reading cuts it, a point apart
            if "".join(digit.mark + str(digit.digit) for digit in cut) != truth:
                continue  # misread, a point read where none is written, or no digits: not whole, whatever the score
            _, logits, features = read(session, np.stack([piece.image for piece in pieces]))
            found = scores(logits, temperature, features, gaussian)
            for name, threshold in thresholds.items():
                whole[name][kind] += bool((found[name] >= threshold).all())
    return {name: {kind: value / count for kind, value in counts.items()} for name, counts in whole.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True,
                        help="a trained run directory (its model.onnx is read) or the shipped model file")
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
        if runs.is_shipped(args.run):  # its card holds the recipe, so its validation split is known
            model = Path(args.run)
        else:
            runs.check_run(args.run)  # a run directory: its own validation split is known
            model = Path(args.run) / "model.onnx"
        if not model.is_file():
            raise ValueError(f"{args.run} has no model.onnx; pass a run that finished training")
        session = logits_session(model, features=True)
    except ValueError as error:
        sys.exit(f"rejection_scores: error: {error}")
    recipe = config.from_run(info.config)
    fitted = info.metrics.get("calibration") or {}
    temperature, rate = float(fitted.get("temperature", 1.0)), float(recipe.reject_rate)
    _, x_train, y_train, x_val, y_val = data.training_arrays(recipe)  # the run's own split
    _, train_logits, train_features = read(session, x_train[..., 0])
    gaussian = fit_gaussian(train_features, y_train, train_logits, temperature)
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
        _, logits, features = read(session, images)
        found = scores(logits, temperature, features, gaussian)
        if label == "validation_photos":  # a photo without ink is refused whatever the score
            found = {name: np.where(photo_ink, values, -np.inf) for name, values in found.items()}
        by_set[label] = found
    result = compare(by_set, rate)
    if args.strips:
        from digits.predictor import Predictor

        read_whole = strips_whole(Predictor(args.run), session, digits, np.asarray(y_val), args.strips, temperature,
                                  {name: row["threshold"] for name, row in result.items()}, gaussian)
        for name, row in result.items():
            row["strips_read_whole"] = read_whole[name]
    for name, row in result.items():
        strips = row.get("strips_read_whole", {})
        print(f"{name:>20}: " + ", ".join(f"{label} {row[label]['refused']:.2%}" for label in sets)
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
