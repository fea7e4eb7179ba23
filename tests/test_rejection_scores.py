"""benchmarks/rejection_scores.py: each not-a-digit score is what its name says, the logits read from a run's ONNX
copy are the ones under its softmax, each threshold refuses the stored rate of validation digits, and the command
end to end on a tiny run writes its JSON (its top-probability threshold is the one training stored)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, assert_clean_error, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import rejection_scores  # noqa: E402


def test_each_score_is_what_its_name_says():
    logits = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 1.0], [9.0, 8.0, -2.0]])
    found = rejection_scores.scores(logits, temperature=0.5)
    probabilities = np.exp(logits / 0.5) / np.exp(logits / 0.5).sum(1, keepdims=True)
    assert found["top probability"] == pytest.approx(probabilities.max(1))
    assert found["energy"] == pytest.approx(0.5 * np.log(np.exp(logits / 0.5).sum(1)))
    assert found["top logit"] == pytest.approx([4.0, 1.0, 9.0])
    assert found["negative entropy"] == pytest.approx((probabilities * np.log(probabilities)).sum(1))
    assert found["negative entropy"][1] == pytest.approx(-np.log(3))  # even odds: the most uncertain
    ordered = np.sort(probabilities, 1)
    assert found["margin"] == pytest.approx(ordered[:, -1] - ordered[:, -2])
    assert found["margin"][1] == 0.0
    # large logits do not overflow: the same answer as the logits less their maximum, plus that maximum
    shifted = rejection_scores.scores(logits + 1000.0, temperature=0.5)
    assert shifted["energy"] == pytest.approx(found["energy"] + 1000.0)
    assert shifted["top probability"] == pytest.approx(found["top probability"])


def test_each_threshold_refuses_the_rate_of_validation_digits():
    validation = {"energy": np.arange(1, 201, dtype=float), "margin": np.linspace(0, 1, 200)}
    others = {"energy": np.r_[np.zeros(50), np.full(50, 500.0)], "margin": np.r_[np.zeros(90), np.ones(10)]}
    result = rejection_scores.compare({"validation": validation, "letters": others}, rate=0.01)
    for name in validation:
        assert result[name]["validation"]["refused"] == pytest.approx(0.01)  # the two lowest of 200
        assert "auroc" not in result[name]["validation"]
    assert result["energy"]["threshold"] == 3.0
    assert result["energy"]["letters"] == {"refused": 0.5, "auroc": pytest.approx(0.5)}
    assert result["margin"]["letters"]["refused"] == 0.9


def test_logits_are_the_input_of_the_final_softmax(tiny_run):
    import onnxruntime

    from digits import images

    pictures = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    probabilities, logits = rejection_scores.read(rejection_scores.logits_session(tiny_run / "model.onnx"), pictures)
    plain = onnxruntime.InferenceSession(str(tiny_run / "model.onnx"), providers=["CPUExecutionProvider"])
    signature = plain.get_inputs()[0]
    inputs = images.to_model_input(pictures).reshape(5, *signature.shape[1:])
    assert probabilities == pytest.approx(plain.run(None, {signature.name: inputs})[0], abs=1e-6)
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    assert probabilities == pytest.approx(softmax / softmax.sum(1, keepdims=True), abs=1e-5)
    assert np.ptp(logits, 1).min() > 0 and not np.allclose(logits.sum(1), 1.0)  # logits, not probabilities again


def test_mahalanobis_is_minus_the_distance_to_the_nearest_class_mean():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 400)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 9.0]])
    mixing = np.array([[2.0, 0.0], [1.0, 0.5]])  # one covariance shared by the classes, not the identity
    features = centres[labels] + rng.normal(size=(len(labels), 2)) @ mixing
    logits = rng.normal(size=(len(labels), 3))
    gaussian = rejection_scores.fit_gaussian(features, labels, logits, temperature=1.0)
    means = np.stack([features[labels == label].mean(0) for label in range(3)])
    centred = features - means[labels]
    precision = np.linalg.inv(centred.T @ centred / len(features))
    probes = np.array([[0.0, 0.0], [6.0, 0.5], [3.0, 4.0], [30.0, -20.0]])
    expected = [-min((probe - mean) @ precision @ (probe - mean) for mean in means) for probe in probes]
    found = rejection_scores.scores(np.zeros((4, 3)), 1.0, probes, gaussian)
    assert found["mahalanobis"] == pytest.approx(expected, rel=1e-6)
    assert found["mahalanobis"][3] < found["mahalanobis"][2] < found["mahalanobis"][0]  # farther, lower
    plain = [-min(((probe - mean) ** 2).sum() for mean in means) for probe in probes]
    assert found["nearest mean"] == pytest.approx(plain, rel=1e-9)
    assert found["nearest mean"][1] == pytest.approx(-0.25, abs=0.2)  # 0.5 from the class mean (6, 0)
    # the sum is the energy and the distance, each standardised by its mean and spread on the fitted features
    fitted = rejection_scores.scores(logits, 1.0, features, gaussian)
    for name in ("energy", "mahalanobis"):
        assert fitted[name].std() > 0
    standard = sum((fitted[name] - fitted[name].mean()) / fitted[name].std() for name in ("energy", "mahalanobis"))
    assert fitted["energy + mahalanobis"] == pytest.approx(standard)


def test_features_are_the_input_of_the_dense_layer_that_makes_the_logits(tiny_run):
    pictures = np.random.default_rng(1).integers(0, 256, (40, 28, 28)).astype(np.uint8)
    probabilities, logits, features = rejection_scores.read(
        rejection_scores.logits_session(tiny_run / "model.onnx", features=True), pictures)
    assert features.shape[0] == 40 and features.shape[1] > logits.shape[1]
    # the logits are an affine map of the features: exactly, by least squares on the pictures themselves
    design = np.c_[features, np.ones(len(features))]
    weights = np.linalg.lstsq(design, logits, rcond=None)[0]
    assert np.abs(design @ weights - logits).max() < 1e-3 * np.abs(logits).max()
    assert np.ptp(features, 0).max() > 0  # features that vary, not a constant


def test_the_shipped_model_is_measured_from_its_card(tmp_path):
    from digits import runs

    out = tmp_path / "shipped.json"
    shipped = runs.shipped_model()
    result = run_cli("--run", str(shipped), "--photos", "20", "--non-digits", "20", "--out", str(out),
                     script="benchmarks/rejection_scores.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    card = runs.read_card()
    assert saved["temperature"] == card["calibration"]["temperature"]
    # the card's split rebuilt: its stored energy threshold is the one fitted again here
    assert saved["scores"]["energy"]["threshold"] == pytest.approx(card["calibration"]["energy_below"], abs=1e-4)
    assert saved["families_trained"]["letters"] is True and saved["families_trained"]["scripts"] is False
    assert saved["scores"]["mahalanobis"]["letters"]["auroc"] > 0.5


def test_a_model_without_a_softmax_output_is_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "no-softmax",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="not a softmax"):
        rejection_scores.logits_model(path)


def test_the_command_writes_its_json(tiny_run, tmp_path):
    out = tmp_path / "scores.json"
    result = run_cli("--run", str(tiny_run), "--photos", "30", "--non-digits", "30", "--out", str(out),
                     script="benchmarks/rejection_scores.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    stored = json.loads((tiny_run / "metrics.json").read_text())["calibration"]
    assert saved["temperature"] == stored["temperature"] and saved["reject_rate"] == stored["reject_rate"]
    assert set(saved["scores"]) == {"top probability", "energy", "top logit", "negative entropy", "margin",
                                    "mahalanobis", "energy + mahalanobis", "nearest mean"}
    # the thresholds fitted here from the run's ONNX logits are the ones training stored
    assert saved["scores"]["top probability"]["threshold"] == pytest.approx(stored["max_probability_below"], abs=1e-5)
    assert saved["scores"]["energy"]["threshold"] == pytest.approx(stored["energy_below"], abs=1e-4)
    assert saved["stored_score"] == "energy" and saved["stored_threshold"] == stored["max_probability_below"]
    for row in saved["scores"].values():
        assert row["validation"]["refused"] <= stored["reject_rate"]
        assert {"validation_photos", "letters", "scripts"} <= set(row)
        assert 0.0 <= row["scripts"]["auroc"] <= 1.0
    assert saved["families_trained"]["letters"] is False  # the tiny run trains no Outlier Exposure
    assert saved["photos"] == 30 and saved["non_digits_per_family"] == 30 and saved["machine"]["cpu"]
    assert str(REPO) not in out.read_text()


def test_a_missing_run_is_one_line(tmp_path):
    result = run_cli("--run", str(tmp_path / "nowhere"), script="benchmarks/rejection_scores.py")
    assert_clean_error(result, "does not exist")


def test_strips_refused_by_the_stored_score_read_as_the_reading_path_reads_them(cnn_fast_run, tmp_path):
    """--strips: with the stored score's threshold (the energy's), the strips read whole are the ones
    reading.read reads whole with the run's Predictor, for the same strips (benchmarks/validation_strips.py's
    seeds), cut the same way (with the digit scores); every score reads at most the strips whose digits are all
    right."""
    import real_images

    from digits import config, data, runs
    from digits.predictor import Predictor

    out = tmp_path / "scores.json"
    result = run_cli("--run", str(cnn_fast_run), "--photos", "10", "--non-digits", "10", "--strips", "12",
                     "--out", str(out), script="benchmarks/rejection_scores.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    _, _, _, x_val, y_val = data.training_arrays(config.from_run(runs.load_info(cnn_fast_run).config))
    digits = np.round(x_val[..., 0] * 255).astype(np.uint8)
    predictor = Predictor(cnn_fast_run)
    expected = {kind: float(np.mean(real_images._strips_read(predictor, digits, np.asarray(y_val), 12, [seed],
                                                             touching=1.0 if kind == "touching" else None)[0]))
                for kind, seed in rejection_scores.STRIP_SEEDS.items()}
    assert saved["stored_score"] == "energy" and predictor.score == "energy"
    assert saved["scores"]["energy"]["strips_read_whole"] == expected
    assert expected["mixed"] >= 0.5  # a 99% model reads most mixed strips: the comparison is not of zeros
    assert saved["strips"] == 12
    for row in saved["scores"].values():
        assert set(row["strips_read_whole"]) == {"touching", "mixed"}


@pytest.mark.parametrize("flag, value", [("--photos", "0"), ("--non-digits", "-3"), ("--strips", "-1")])
def test_a_count_out_of_range_is_one_line(tmp_path, flag, value):
    result = run_cli("--run", str(tmp_path), flag, value, script="benchmarks/rejection_scores.py")
    assert_clean_error(result, flag, "must be at least")
