"""Calibration: temperature scaling, expected calibration error, AUROC and operating points.

A classifier is calibrated when, of the samples it labels with confidence 0.9, nine in ten are
right. Modern networks tend to be over-confident; temperature scaling (Guo et al. 2017, "On
Calibration of Modern Neural Networks") divides the logits by one scalar T > 1 fitted on held-out
data, which softens every probability without changing any argmax. Everything here starts from
plain arrays, the class probabilities a model predicted (N, C) and the true labels (N,), and uses
NumPy and SciPy only: this module belongs to the reading half, so a serving process can apply a
fitted temperature or a rejection threshold without TensorFlow. `auroc` and `threshold_for` score
any one-number-per-sample score (e.g. the top probability) for telling digits from non-digits.
Nothing here prints.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Clip before the log. float32's smallest normal number: a softmax that underflowed to 0 becomes
# log(p) ~ -87, about where float32 logits lie, instead of -infinity.
LOG_FLOOR = float(np.finfo(np.float32).tiny)
PROBABILITY_TOLERANCE = 1e-4  # float32 softmax may overshoot [0, 1] by rounding
TEMPERATURE_RANGE = (0.05, 20.0)  # fit_temperature's search interval
DEFAULT_BINS = 15  # Guo et al.'s choice for ECE


def check_predictions(probabilities: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (probabilities as float64 (N, C), labels as int64 (N,)) or raise ValueError.

    Shared with digits.evaluate, so every metric agrees on what valid predictions are.
    """
    probabilities = _check_probabilities(probabilities)
    sample_count, class_count = probabilities.shape
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(
            f"labels must have shape (N,) = ({sample_count},), one integer class per sample, "
            f"got shape {labels.shape}; pass integer labels, not one-hot rows"
        )
    if labels.shape[0] != sample_count:
        raise ValueError(
            f"labels must have shape (N,) = ({sample_count},) to match probabilities of shape "
            f"{probabilities.shape}, got {labels.shape}; pass one label per row of probabilities"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.number) and np.all(np.isfinite(labels))
                and np.all(labels == np.round(labels))):
            raise ValueError(
                f"labels must be integer class indices, got dtype {labels.dtype}; "
                f"pass labels as an integer array of shape ({sample_count},)"
            )
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= class_count:
        raise ValueError(
            f"labels must lie in [0, {class_count - 1}] for probabilities of shape (N, C) = "
            f"{probabilities.shape}, got values from {labels.min()} to {labels.max()}; "
            f"check that the labels and the model use the same classes"
        )
    return probabilities, labels


def _check_probabilities(probabilities: Any) -> np.ndarray:
    """Return probabilities as float64 (N, C) with N, C >= 1, finite, in [0, 1], or raise ValueError."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2:
        raise ValueError(
            f"probabilities must have shape (N, C), one row of class probabilities per sample, "
            f"got shape {probabilities.shape}; pass the output of model.predict(images)"
        )
    if probabilities.shape[0] == 0 or probabilities.shape[1] == 0:
        raise ValueError(
            f"probabilities must have shape (N, C) with N >= 1 and C >= 1, got "
            f"{probabilities.shape}; evaluate at least one sample"
        )
    if not np.issubdtype(probabilities.dtype, np.number) or np.issubdtype(probabilities.dtype, np.complexfloating):
        raise ValueError(f"probabilities must be real numbers, got dtype {probabilities.dtype}; "
                         f"pass the output of model.predict(images)")
    probabilities = probabilities.astype(np.float64)
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("probabilities contain NaN or infinity; check the model's output")
    lowest, highest = float(probabilities.min()), float(probabilities.max())
    if lowest < -PROBABILITY_TOLERANCE or highest > 1 + PROBABILITY_TOLERANCE:
        raise ValueError(
            f"probabilities must lie in [0, 1], got values from {lowest:.4g} to {highest:.4g}; "
            f"these look like logits, apply a softmax first"
        )
    return probabilities


def _check_temperature(temperature: Any) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number above 0, got {temperature!r}; "
                         f"use fit_temperature(probabilities, labels), or 1.0 for no change")
    return float(temperature)


def _check_bins(bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}; try bins={DEFAULT_BINS}")
    return int(bins)


def _check_scores(scores: Any, name: str) -> np.ndarray:
    """Return a non-empty, finite (N,) float64 array, or raise ValueError naming the argument."""
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), one score per sample, got shape {scores.shape}; "
                         f"pass e.g. probabilities.max(axis=1)")
    if scores.size == 0:
        raise ValueError(f"{name} is empty; pass at least one score")
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {scores.dtype}; pass one float per sample")
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} contain NaN or infinity; check how the scores were computed")
    return scores


def _log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    # log(p) equals the logits up to a constant per row, which softmax ignores.
    return np.log(np.clip(probabilities, LOG_FLOOR, None))


def apply_temperature(probabilities: Any, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) row by row: (N, C) float32, rows sum to 1; T > 1 softens, T < 1 sharpens.

    T == 1 returns the input unchanged (as float32, copied only if its dtype differs). Zero
    probabilities are clipped to a tiny floor before the log, so they stay (near) zero.
    """
    probabilities = np.asarray(probabilities)
    temperature = _check_temperature(temperature)
    checked = _check_probabilities(probabilities)
    if temperature == 1.0:
        return probabilities.astype(np.float32, copy=False)
    scaled = _log_probabilities(checked) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)  # softmax, computed stably (SciPy stays out of reading)
    weights = np.exp(scaled)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _negative_log_likelihood(log_probabilities: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean -log softmax(log p / T)[label], computed stably with logsumexp."""
    from scipy import special

    scaled = log_probabilities / temperature
    true = scaled[np.arange(len(labels)), labels]
    return float(np.mean(special.logsumexp(scaled, axis=1) - true))


def fit_temperature(probabilities: Any, labels: Any) -> float:
    """The temperature T in [0.05, 20] minimising the negative log-likelihood of labels (Guo et al. 2017).

    Fit it on held-out data (the validation split, never the test set), then pass it to
    apply_temperature. The NLL is unimodal in log T, so a bounded scalar search on log T finds it.
    """
    from scipy import optimize  # fitting only: reading never imports it

    probabilities, labels = check_predictions(probabilities, labels)
    log_probabilities = _log_probabilities(probabilities)
    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    result = optimize.minimize_scalar(
        lambda log_temperature: _negative_log_likelihood(log_probabilities, labels, math.exp(log_temperature)),
        bounds=(low, high), method="bounded", options={"xatol": 1e-5})
    return float(math.exp(result.x))


def _bin_statistics(probabilities: Any, labels: Any, bins: Any) -> tuple[list[dict], float]:
    """(one dict per equal-width confidence bin, ECE) for the top-class confidence."""
    bins = _check_bins(bins)
    probabilities, labels = check_predictions(probabilities, labels)
    confidence = np.clip(probabilities.max(axis=1), 0.0, 1.0)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i + 1]], as in Guo et al.; a confidence of exactly 0 joins bin 0.
    index = np.digitize(confidence, edges[1:-1], right=True)
    counts = np.bincount(index, minlength=bins)
    confidence_sums = np.bincount(index, weights=confidence, minlength=bins)
    correct_sums = np.bincount(index, weights=correct, minlength=bins)
    rows, error = [], 0.0
    for position in range(bins):
        count = int(counts[position])
        row = {"low": float(edges[position]), "high": float(edges[position + 1]), "count": count,
               "confidence": None, "accuracy": None}  # None: no sample fell in this bin
        if count:
            row["confidence"] = float(confidence_sums[position] / count)
            row["accuracy"] = float(correct_sums[position] / count)
            error += abs(row["accuracy"] - row["confidence"]) * count / len(labels)
        rows.append(row)
    return rows, float(error)


def expected_calibration_error(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS) -> float:
    """ECE (Guo et al. 2017): sum over equal-width confidence bins of |accuracy - confidence| * share.

    0 is perfectly calibrated; 0.05 means the stated confidence is off by five points on average.
    """
    return _bin_statistics(probabilities, labels, bins)[1]


def reliability(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS) -> dict:
    """The numbers behind a reliability diagram, as plain JSON values.

    {"bins": [{"low", "high", "count", "confidence", "accuracy"}, ...], "ece": float}: one entry per
    bin in increasing confidence; confidence and accuracy are the bin's means, None when it is empty.
    """
    rows, error = _bin_statistics(probabilities, labels, bins)
    return {"bins": rows, "ece": error}


def auroc(positives: Any, negatives: Any) -> float:
    """Area under the ROC curve of a score that should rank positives above negatives.

    P(positive > negative) + 0.5 P(tie) over all pairs (the Mann-Whitney U statistic, divided by
    the number of pairs), from average ranks in O(n log n): 1.0 separates perfectly, 0.5 is chance.
    """
    from scipy import stats

    positives = _check_scores(positives, "positives")
    negatives = _check_scores(negatives, "negatives")
    ranks = stats.rankdata(np.concatenate([positives, negatives]))  # ties share their average rank
    positive_count, negative_count = len(positives), len(negatives)
    wins = ranks[:positive_count].sum() - positive_count * (positive_count + 1) / 2
    return float(wins / (positive_count * negative_count))


def threshold_for(scores: Any, rate: float) -> float:
    """The operating point t: the share of scores strictly below t is at most rate, as close as the data allow.

    With the scores of real digits, rejecting everything below t turns away at most `rate` of
    them (e.g. rate=0.01 keeps 99%). t is one of the scores; rate=0 gives the lowest score.
    """
    scores = _check_scores(scores, "scores")
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not (0.0 <= rate < 1.0):
        raise ValueError(f"rate must be a number in [0, 1), the share of scores to fall below the threshold, "
                         f"got {rate!r}; try rate=0.01")
    ordered = np.sort(scores)
    count = len(ordered)
    below = math.floor(rate * count)  # the most scores that may fall below t
    if (below + 1) / count <= rate:  # rate * count rounded down one too far (0.29 * 100 = 28.999...)
        below += 1
    while below and below / count > rate:  # ... or rounded up one too far
        below -= 1
    # t = ordered[below] has fewer than `below` scores under it only where it ties with lower ones:
    # no threshold splits a tie, so that is as close as the data allow.
    return float(ordered[min(below, count - 1)])


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """softmax(z / T) row by row: the calibrated probabilities of (N, C) logits, float32."""
    scaled = np.asarray(logits, np.float64) / _check_temperature(temperature)
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def energy(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """The energy score T log sum exp(z / T) of (N, C) logits (Liu et al. 2020), float64 (N,): higher is more
    like the training digits. Unlike the top probability it keeps how strongly the logits answer at all, which a
    softmax divides away: a picture that excites no class has a low energy even where one class wins."""
    temperature = _check_temperature(temperature)
    scaled = np.asarray(logits, np.float64) / temperature
    top = scaled.max(axis=1)
    return temperature * (top + np.log(np.exp(scaled - top[:, None]).sum(axis=1)))


def digit_probability(logits: Any, temperature: float, energy_below: float) -> np.ndarray:
    """The calibrated chance that each row is a digit at all, float64 (N,): the softmax of z / T with one more
    class, "not a digit", whose logit is the fitted `energy_below` (b). It adds up the digit classes, which is
    sigmoid((E - b) / T) for the energy E: 0.5 exactly at the threshold, so refusing below 0.5 is refusing an
    energy below b, and any other threshold in 0..1 is a threshold on the same score."""
    return 1.0 / (1.0 + np.exp((energy_below - energy(logits, temperature)) / _check_temperature(temperature)))


def refused(score: float, threshold: float | None) -> bool:
    """Is a digit score under the not-a-digit threshold (None: refusal off)? A threshold of 1 refuses everything:
    a chance is never 1, though a very sure one rounds to 1.0 in floating point."""
    return threshold is not None and (float(score) < threshold or threshold >= 1.0)


SCORES = ("energy", "max_probability")  # what `fit` can refuse by; runs fitted before the energy store the latter


def fit(probabilities, labels, reject_rate: float, non_digits=None, logits=None, non_digit_logits=None) -> dict:
    """Everything a model stores to read honestly, fitted on its validation split: the temperature and the
    not-a-digit operating point, which refuses at most `reject_rate` of the validation digits.

    `probabilities` are the raw (N, classes) outputs on the validation digits. With their `logits` (the input of
    the final softmax) the score is the energy (`digit_probability`, chosen by benchmarks/rejection_scores.py on
    validation data): `energy_below` is the energy threshold and `reject_below` 0.5 on the digit probability;
    `max_probability_below` is the top probability's threshold at the same rate, for a copy of the model that
    gives no logits (an int8 LiteRT file). Without logits the score is the calibrated top probability (an
    ensemble's averaged probabilities have none). `non_digits` (raw outputs, and `non_digit_logits`) on held-out
    non-digits are only reported: share refused and AUROC."""
    temperature = fit_temperature(probabilities, labels)
    calibrated = apply_temperature(probabilities, temperature)
    top = calibrated.max(1)
    top_below = threshold_for(top, reject_rate)
    fitted = {"score": "max_probability", "temperature": float(temperature), "reject_below": float(top_below),
              "reject_rate": float(reject_rate), "fitted_on": "validation split", "validation_images": int(len(top)),
              "validation_ece_before": expected_calibration_error(probabilities, labels),
              "validation_ece_after": expected_calibration_error(calibrated, labels)}
    scores, threshold = top, top_below
    if logits is not None:
        energies = energy(logits, temperature)
        fitted.update(score="energy", energy_below=float(threshold_for(energies, reject_rate)), reject_below=0.5,
                      max_probability_below=float(top_below))
        scores, threshold = energies, fitted["energy_below"]
    fitted["validation_digits_refused"] = float((scores < threshold).mean())
    if non_digits is not None and len(non_digits):
        other = (energy(non_digit_logits, temperature) if logits is not None
                 else apply_temperature(non_digits, temperature).max(1))
        fitted["validation_non_digits"] = {"images": int(len(other)), "refused": float((other < threshold).mean()),
                                           "auroc": auroc(scores, other)}
    return fitted
