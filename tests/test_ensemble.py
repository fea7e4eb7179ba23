"""Ensembles: a run directory like any other, at least as good as its best member, members checked."""

import json
import shutil

import numpy as np
import pytest

from helpers import assert_clean_error, run_cli
from digits import backends, calibration, config, data, ensemble, runs, train
from digits.images import to_model_input
from digits.predictor import Predictor


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [train.train(config.Config(epochs=1, limit=3000, seed=seed), out=root / f"m{seed}", verbose=0).run_dir
            for seed in (1, 2, 3)]


def test_ensemble_is_at_least_its_best_member_and_averages_them(members, tmp_path):
    result = ensemble.make_ensemble(members, tmp_path / "ensemble")
    metrics = result.metrics
    assert metrics["test_accuracy"] >= metrics["best_member_accuracy"]
    assert len(metrics["members"]) == 3
    assert metrics["model_files"] == ["keras", "litert", "onnx"]  # its portable copies, as a trained run's
    assert (result.run_dir / "model.onnx").is_file() and (result.run_dir / "model.tflite").is_file()

    images = data.load_dataset("mnist").x_test[:300]
    # the network averages its members' own (uncalibrated) outputs; the ensemble is then calibrated as a whole,
    # with a temperature and not-a-digit threshold fitted on the first member's validation split
    raw = [backends.in_batches(backends.load("onnx", run / "model.onnx"), to_model_input(images)) for run in members]
    fitted = metrics["calibration"]
    assert fitted["temperature"] > 0 and 0 < fitted["reject_below"] < 1 and metrics["test_ece"] >= 0
    assert fitted["validation_images"] == runs.load_info(members[0]).metrics["validation_images"]
    loaded = Predictor(result.run_dir)  # loads like any run directory
    assert (loaded.temperature, loaded.reject_below) == (fitted["temperature"], fitted["reject_below"])
    np.testing.assert_allclose(loaded.predict_proba(images),
                               calibration.apply_temperature(np.mean(raw, axis=0), fitted["temperature"]), atol=1e-5)


def test_tta_ensemble_through_the_cli(members, tmp_path):
    out = tmp_path / "tta"
    result = run_cli("ensemble", *map(str, members[:2]), "--out", str(out), "--tta")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tta"] is True and f"Test accuracy: {metrics['test_accuracy']:.4f}" in result.stdout
    evaluated = run_cli("evaluate", str(out))
    assert evaluated.returncode == 0 and f"Test accuracy: {metrics['test_accuracy']:.4f}" in evaluated.stdout


def test_members_of_another_dataset_are_refused(members, tmp_path):
    other = tmp_path / "fashion"
    shutil.copytree(members[0], other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["dataset"] = {**metrics["dataset"], "name": "fashion-mnist", "checksum": "0" * 64}
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="trained on fashion-mnist.*same dataset"):
        ensemble.make_ensemble([members[1], other], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()


def test_members_with_another_input_shape_are_refused(members, tmp_path):
    import keras

    other = tmp_path / "wide"
    shutil.copytree(members[0], other)
    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(other / "model.keras")
    assert_clean_error(run_cli("ensemble", str(members[0]), str(other), "--out", str(tmp_path / "x")),
                       "expects inputs of shape (32, 32, 1)")


def test_existing_out_is_refused(members):
    with pytest.raises(ValueError, match="already exists"):
        ensemble.make_ensemble(members[:1], members[1])
