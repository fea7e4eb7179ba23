"""Tests for digits.calibration: temperature scaling on synthetic models whose miscalibration is known,
ECE by hand, AUROC and operating points against brute force, and the errors a user can make."""

import ast
import json

import numpy as np
import pytest

from digits import calibration
from digits.calibration import (apply_temperature, auroc, expected_calibration_error, fit_temperature, reliability,
                                threshold_for)
from helpers import REPO


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sample_labels(probabilities, rng):
    """One label per row, drawn from that row's distribution: the row is then calibrated by construction."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random((len(probabilities), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative < draws).sum(axis=1), probabilities.shape[1] - 1)


def _synthetic(true_temperature, count=6000, classes=10, seed=0):
    """(what the model says, labels): labels follow softmax(z / true_temperature), the model says softmax(z).

    true_temperature > 1: the model is over-confident; < 1: under-confident; 1: calibrated.
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=4.0, size=(count, classes))
    labels = _sample_labels(_softmax(logits / true_temperature), rng)
    return _softmax(logits).astype(np.float32), labels


def _nll(probabilities, labels):
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1))))


# apply_temperature

def test_apply_temperature_by_hand():
    # softmax(log p / 2) = sqrt(p), renormalised: sqrt(0.8) : sqrt(0.2) = 2 : 1.
    np.testing.assert_allclose(apply_temperature([[0.8, 0.2]], 2.0), [[2 / 3, 1 / 3]], rtol=1e-6)
    # T = 0.5 squares: 0.64 : 0.04.
    np.testing.assert_allclose(apply_temperature([[0.8, 0.2]], 0.5), [[0.64 / 0.68, 0.04 / 0.68]], rtol=1e-6)


def test_apply_temperature_keeps_the_argmax_and_normalises():
    probabilities, _ = _synthetic(2.0, count=500)
    for temperature in (0.1, 0.5, 2.0, 15.0):
        scaled = apply_temperature(probabilities, temperature)
        assert scaled.dtype == np.float32 and scaled.shape == probabilities.shape
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(scaled.argmax(axis=1), probabilities.argmax(axis=1))
    top = probabilities.max(axis=1)
    assert np.all(apply_temperature(probabilities, 2.0).max(axis=1) <= top + 1e-6)  # softer
    assert np.all(apply_temperature(probabilities, 0.5).max(axis=1) >= top - 1e-6)  # sharper


def test_apply_temperature_one_returns_the_input():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]], np.float32)
    assert apply_temperature(probabilities, 1.0) is probabilities  # float32 in: no copy
    converted = apply_temperature(probabilities.astype(np.float64), 1)
    assert converted.dtype == np.float32
    np.testing.assert_array_equal(converted, probabilities)


def test_apply_temperature_is_safe_for_zero_probabilities():
    probabilities = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], np.float32)
    for temperature in (0.05, 0.5, 3.0, 20.0):
        scaled = apply_temperature(probabilities, temperature)
        assert np.all(np.isfinite(scaled))
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(scaled.argmax(axis=1), [0, 0, 2])
    # A zero stays (nearly) zero even when softened: it was the floor, ~1e-38, not a real chance.
    assert apply_temperature(probabilities, 3.0)[0, 1] < 1e-10
    np.testing.assert_allclose(apply_temperature(probabilities, 3.0)[1], [0.5, 0.5, 0.0], atol=1e-10)


# fit_temperature

@pytest.mark.parametrize("true_temperature", [2.0, 1.0, 0.5])
def test_fit_temperature_recovers_a_known_temperature(true_temperature):
    probabilities, labels = _synthetic(true_temperature)
    fitted = fit_temperature(probabilities, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.15)


def test_fitting_lowers_ece_and_nll_of_an_over_confident_model():
    probabilities, labels = _synthetic(2.5)
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    assert probabilities.max(axis=1).mean() > accuracy + 0.1  # says more than it knows
    scaled = apply_temperature(probabilities, fit_temperature(probabilities, labels))
    before, after = expected_calibration_error(probabilities, labels), expected_calibration_error(scaled, labels)
    assert before > 0.1 and after < 0.03 and after < before / 4
    assert _nll(scaled, labels) < _nll(probabilities, labels)
    assert float((scaled.argmax(axis=1) == labels).mean()) == accuracy  # scaling never changes a prediction


def test_fit_temperature_is_the_nll_minimum():
    probabilities, labels = _synthetic(1.7, count=2000, seed=3)
    fitted = fit_temperature(probabilities, labels)
    best = _nll(apply_temperature(probabilities, fitted).astype(np.float64), labels)
    for nearby in (fitted * 0.9, fitted * 1.1, 1.0):
        assert best <= _nll(apply_temperature(probabilities, nearby).astype(np.float64), labels) + 1e-6


def test_fit_temperature_stays_within_its_range():
    labels = np.array([0, 1, 2, 0])
    always_right = np.eye(3)[labels] * 0.3 + 0.7 / 3  # 0.53 on the right class: sharper is always better
    assert 0.05 <= fit_temperature(always_right, labels) < 0.06
    confidently_wrong = np.full((4, 3), 0.05)
    confidently_wrong[np.arange(4), (labels + 1) % 3] = 0.9  # flatter is always better
    assert 19 < fit_temperature(confidently_wrong, labels) <= 20


# the energy score and the digit probability


def test_energy_by_hand():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert calibration.energy(logits) == pytest.approx([np.log(np.e ** 2 + 2), np.log(3)])
    # at T: T log sum exp(z / T); a shift of every logit by c shifts the energy by c (the softmax ignores it)
    assert calibration.energy(logits, 0.5) == pytest.approx(0.5 * np.log(np.exp(logits / 0.5).sum(1)))
    assert calibration.energy(logits + 7.0, 0.5) == pytest.approx(calibration.energy(logits, 0.5) + 7.0)
    assert np.allclose(calibration.softmax(logits + 7.0, 0.5), calibration.softmax(logits, 0.5))


def test_energy_is_stable_for_large_logits():
    huge = np.array([[1000.0, 999.0, -1000.0]])
    assert calibration.energy(huge)[0] == pytest.approx(1000.0 + np.log(1 + np.exp(-1.0)))
    assert np.isfinite(calibration.softmax(huge, 0.05)).all()


def test_digit_probability_is_the_chance_of_the_digit_classes_beside_a_not_a_digit_class():
    """softmax over the logits and one more, fixed logit b: its digit classes add up to sigmoid((E - b) / T)."""
    rng = np.random.default_rng(4)
    logits, temperature, below = rng.normal(scale=3.0, size=(50, 10)), 0.7, 2.5
    extended = np.column_stack([logits, np.full(50, below)]) / temperature
    by_hand = _softmax(extended)[:, :10].sum(1)
    assert calibration.digit_probability(logits, temperature, below) == pytest.approx(by_hand, rel=1e-9)
    at = np.log(np.full((1, 10), np.exp(below / temperature) / 10)) * temperature  # energy exactly b
    assert calibration.energy(at, temperature)[0] == pytest.approx(below)
    assert calibration.digit_probability(at, temperature, below)[0] == pytest.approx(0.5)


def test_refused_below_the_threshold_and_everything_at_one():
    sure = float(calibration.digit_probability(np.array([[60.0] + [0.0] * 9]), 0.5, 1.0)[0])
    assert sure == 1.0  # a chance is never 1, but this one rounds to it
    assert calibration.refused(sure, 1.0) and calibration.refused(0.2, 1.0)  # 1 refuses everything
    assert calibration.refused(0.49, 0.5) and not calibration.refused(0.5, 0.5)  # strictly below
    assert not calibration.refused(0.0, 0.0) and not calibration.refused(0.0, None)  # 0 and None: refusal off


def test_fit_with_logits_stores_the_energy_operating_point():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2000, 10))
    logits[np.arange(2000), rng.integers(0, 10, 2000)] += 10.0  # digits: strong logits ...
    logits[:200, 0] += 10.0  # ... a tenth of them torn between two classes (a top probability near 0.5)
    labels = _sample_labels(_softmax(logits), rng)  # calibrated at T = 1
    others = rng.normal(scale=0.3, size=(500, 10))  # non-digits: weak logits, half with a clear winner
    others[:250, 0] += 4.0
    fitted = calibration.fit(_softmax(logits), labels, 0.01, _softmax(others), logits, others)
    assert fitted["score"] == "energy" and fitted["reject_below"] == 0.5
    energies = calibration.energy(logits, fitted["temperature"])
    assert fitted["energy_below"] == calibration.threshold_for(energies, 0.01)
    assert fitted["validation_digits_refused"] == pytest.approx(0.01, abs=1 / 2000)
    digit = calibration.digit_probability(logits, fitted["temperature"], fitted["energy_below"])
    assert float((digit < 0.5).mean()) == fitted["validation_digits_refused"]  # the same refusals, as probabilities
    top = apply_temperature(_softmax(logits), fitted["temperature"]).max(1)
    assert fitted["max_probability_below"] == calibration.threshold_for(top, 0.01)
    assert fitted["validation_non_digits"]["refused"] > 0.99 and fitted["validation_non_digits"]["auroc"] > 0.99
    plain = calibration.fit(_softmax(logits), labels, 0.01, _softmax(others))  # no logits (an ensemble)
    assert plain["score"] == "max_probability" and plain["reject_below"] == fitted["max_probability_below"]
    assert "energy_below" not in plain
    # the weak logits with a clear winner look sure to a softmax; their energy gives them away
    assert plain["validation_non_digits"]["refused"] < 0.75 < fitted["validation_non_digits"]["refused"]


# expected_calibration_error and reliability

def test_ece_by_hand():
    # Confidence 0.85 twice, one right: |0.5 - 0.85| * 2/4; confidence 0.65 twice, both right: |1 - 0.65| * 2/4.
    probabilities = np.array([[0.85, 0.15], [0.85, 0.15], [0.35, 0.65], [0.35, 0.65]])
    labels = np.array([0, 1, 1, 1])
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0.35)
    # One bin: |accuracy - mean confidence| over everything = |0.75 - 0.75|.
    assert expected_calibration_error(probabilities, labels, bins=1) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_calibrated_model_is_near_zero():
    probabilities, labels = _synthetic(1.0, count=20000, seed=1)
    assert expected_calibration_error(probabilities, labels) < 0.02


def test_reliability_bins_by_hand_and_as_json():
    probabilities = np.array([[0.85, 0.15], [0.85, 0.15], [0.35, 0.65], [0.35, 0.65]])
    labels = np.array([0, 1, 1, 1])
    curve = reliability(probabilities, labels, bins=10)
    assert json.loads(json.dumps(curve)) == curve
    assert len(curve["bins"]) == 10 and curve["ece"] == pytest.approx(0.35)
    assert [set(row) for row in curve["bins"]] == [{"low", "high", "count", "confidence", "accuracy"}] * 10
    assert [row["count"] for row in curve["bins"]] == [0, 0, 0, 0, 0, 0, 2, 0, 2, 0]
    assert curve["bins"][6]["low"] == pytest.approx(0.6) and curve["bins"][6]["high"] == pytest.approx(0.7)
    assert curve["bins"][6]["confidence"] == pytest.approx(0.65) and curve["bins"][6]["accuracy"] == 1.0
    assert curve["bins"][8]["confidence"] == pytest.approx(0.85) and curve["bins"][8]["accuracy"] == 0.5
    assert curve["bins"][0] == {"low": 0.0, "high": pytest.approx(0.1), "count": 0, "confidence": None,
                                "accuracy": None}
    assert curve["bins"][-1]["high"] == 1.0
    assert reliability(probabilities, labels)["ece"] == expected_calibration_error(probabilities, labels)
    assert len(reliability(probabilities, labels)["bins"]) == 15  # Guo et al.'s default


def test_reliability_puts_a_confidence_of_one_in_the_last_bin():
    curve = reliability(np.eye(3), np.arange(3), bins=5)
    assert [row["count"] for row in curve["bins"]] == [0, 0, 0, 0, 3]
    assert curve["ece"] == 0.0


# auroc

@pytest.mark.parametrize("positives, negatives, expected", [
    ([2, 3, 4], [0, 1], 1.0),
    ([0, 1], [2, 3, 4], 0.0),
    ([1, 1, 1], [1, 1], 0.5),  # all ties
    ([0, 2], [1, 3], 0.25),  # one pair of four ordered right
    ([1, 1], [1, 0], 0.75),  # (tie 0.5 + win 1) twice, over 4 pairs
    ([0.9], [0.1], 1.0),
])
def test_auroc_by_hand(positives, negatives, expected):
    assert auroc(positives, negatives) == pytest.approx(expected)


def test_auroc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(2)
    positives = rng.integers(0, 20, 300) + 3  # integers, so many ties
    negatives = rng.integers(0, 20, 200)
    pairs = positives[:, None] - negatives[None, :]
    expected = ((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size
    assert auroc(positives, negatives) == pytest.approx(expected, abs=1e-12)
    assert auroc(negatives, positives) == pytest.approx(1 - expected, abs=1e-12)
    assert auroc(positives.astype(np.float32) / 7, negatives.astype(np.float32) / 7) == pytest.approx(expected)


def test_auroc_of_a_million_scores():
    rng = np.random.default_rng(4)
    assert auroc(rng.normal(1, 1, 600_000), rng.normal(0, 1, 400_000)) == pytest.approx(0.760, abs=0.005)


# threshold_for

@pytest.mark.parametrize("rate, expected", [(0.0, 0), (0.05, 5), (0.29, 29), (0.07, 7), (0.5, 50), (0.999, 99)])
def test_threshold_for_distinct_scores(rate, expected):
    scores = np.random.default_rng(5).permutation(100).astype(float)
    threshold = threshold_for(scores, rate)
    assert threshold == expected
    assert (scores < threshold).mean() <= rate


@pytest.mark.parametrize("rate, expected", [(0.0, 1), (0.5, 1), (0.66, 1), (0.67, 2), (0.8, 2), (0.9, 3)])
def test_threshold_for_never_splits_a_tie(rate, expected):
    # Achievable shares below t: 0 (t <= 1), 4/6 (1 < t <= 2), 5/6 (2 < t <= 3), 1 (t > 3).
    assert threshold_for([1, 3, 1, 2, 1, 1], rate) == expected


def test_threshold_for_is_the_closest_achievable_share():
    rng = np.random.default_rng(6)
    for _ in range(50):
        scores = rng.integers(0, 30, rng.integers(1, 60)).astype(np.float32) / 30
        rate = float(rng.random() * 0.99)
        threshold = threshold_for(scores, rate)
        share = (scores < threshold).mean()
        assert share <= rate and threshold in scores
        candidates = [(scores < candidate).mean() for candidate in np.append(scores, np.inf)]
        assert share == max(candidate for candidate in candidates if candidate <= rate)


# errors

@pytest.mark.parametrize("call, expected", [
    (lambda: fit_temperature(np.full((4, 3), 1 / 3), [0, 1, 2]), r"\(N,\) = \(4,\)"),
    (lambda: expected_calibration_error(np.full((4, 3), 1 / 3), [0, 1, 2, 0, 1]), r"\(N,\) = \(4,\)"),
    (lambda: reliability(np.zeros((0, 3)), []), "at least one"),
    (lambda: fit_temperature(np.zeros((0, 3)), []), "at least one"),
    (lambda: expected_calibration_error(np.full((2, 2), 3.0), [0, 1]), "softmax"),
    (lambda: fit_temperature(np.full((2, 2), 0.5), [0, 2]), r"\[0, 1\]"),
    (lambda: expected_calibration_error(np.full((2, 2), 0.5), [0, 1], bins=0), "bins"),
    (lambda: apply_temperature(np.full((2, 2), 0.5), 0.0), "temperature"),
    (lambda: apply_temperature(np.full((2, 2), 0.5), -1.0), "temperature"),
    (lambda: apply_temperature(np.full((2, 2), 0.5), float("nan")), "temperature"),
    (lambda: apply_temperature(np.full(4, 0.25), 2.0), r"\(N, C\)"),
    (lambda: apply_temperature(np.full((2, 2), np.nan), 2.0), "NaN"),
    (lambda: auroc([], [0.5]), "positives is empty"),
    (lambda: auroc([0.5], []), "negatives is empty"),
    (lambda: auroc([[0.5]], [0.5]), r"positives must have shape \(N,\)"),
    (lambda: auroc([0.5, np.nan], [0.5]), "NaN"),
    (lambda: threshold_for([], 0.1), "scores is empty"),
    (lambda: threshold_for([0.5], 1.0), r"rate must be a number in \[0, 1\)"),
    (lambda: threshold_for([0.5], -0.1), r"rate must be a number in \[0, 1\)"),
    (lambda: threshold_for([0.5], float("nan")), r"rate must be a number in \[0, 1\)"),
    (lambda: threshold_for([0.5], True), r"rate must be a number in \[0, 1\)"),
])
def test_user_errors_are_value_errors_that_name_the_fix(call, expected):
    with pytest.raises(ValueError, match=expected) as raised:
        call()
    assert ";" in str(raised.value) or "check" in str(raised.value)  # the problem, then what to do


def test_imports_only_numpy_and_scipy():
    """The reading half: a serving process applies a temperature without TensorFlow, Keras or matplotlib."""
    tree = ast.parse((REPO / "src" / "digits" / "calibration.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "math", "typing", "numpy", "scipy"}, imported
    assert calibration.TEMPERATURE_RANGE == (0.05, 20.0) and calibration.LOG_FLOOR == np.finfo(np.float32).tiny
