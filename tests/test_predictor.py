"""Predictor: loads a run once from its portable copies, agrees with Keras, writes nothing, and refuses
bad runs and bad batches clearly."""

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from digits import backends, calibration, data, images
from digits.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(tiny_run):
    return Predictor(tiny_run)


def snapshot(directory):
    """Every path under `directory` with its size and modification time (nanoseconds)."""
    return {str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(directory.rglob("*"))}


def test_predictions_match_keras(predictor):
    """The Predictor's answers are the Keras model's, calibrated with the temperature the run stored."""
    import keras

    images_ = data.load_dataset("mnist").x_test[:500]
    raw = keras.models.load_model(predictor.info.run_dir / "model.keras").predict(
        images.to_model_input(images_), verbose=0)
    fitted = predictor.info.metrics["calibration"]
    assert predictor.temperature == fitted["temperature"] > 0 and predictor.reject_below == fitted["reject_below"]
    expected = calibration.apply_temperature(raw, predictor.temperature)
    np.testing.assert_array_equal(expected.argmax(1), raw.argmax(1))  # calibration never changes an answer
    probabilities = predictor.predict_proba(images_)
    assert probabilities.shape == (500, 10)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    # uint8 0..255, float 0..1, with or without the channel axis: the same answer
    np.testing.assert_allclose(predictor.predict_proba(images_.astype(np.float32) / 255.0), probabilities, atol=1e-6)
    np.testing.assert_allclose(predictor.predict_proba(images_[..., None]), probabilities, atol=1e-6)


def test_single_image_and_threads(predictor):
    image = data.load_dataset("mnist").x_test[0]
    single = predictor.predict_proba(image)
    assert single.shape == (1, 10)
    results = [None] * 8

    def work(index):
        results[index] = predictor.predict_proba(image)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_allclose(result, single, atol=1e-6)


@pytest.mark.parametrize("batch, fragment", [
    (np.zeros((2, 28, 27), np.float32), "expected a batch of shape (N, 28, 28)"),
    (np.zeros((2, 784), np.float32), "expected a batch of shape"),
    (np.full((1, 28, 28), np.nan, np.float32), "NaN"),
    (np.full((1, 28, 28), np.inf, np.float32), "infinite"),
    (np.full((1, 28, 28), 300, np.int32), "pixels must be in 0..1 or 0..255"),
    (np.full((1, 28, 28), -1.0, np.float32), "pixels must be in 0..1 or 0..255"),
    (np.zeros((1, 28, 28), bool), "dtype bool"),
])
def test_bad_batches_are_value_errors(predictor, batch, fragment):
    with pytest.raises(ValueError) as caught:
        predictor.predict_proba(batch)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_int32_batches_are_scaled_like_other_numbers(predictor):
    """Deliberate change: int32 (any integer) pixels are accepted, 0..255 or 0..1, as floats are."""
    images_ = data.load_dataset("mnist").x_test[:32]
    expected = predictor.predict_proba(images_)
    np.testing.assert_allclose(predictor.predict_proba(images_.astype(np.int32)), expected, atol=1e-6)
    np.testing.assert_allclose(predictor.predict_proba(images_.astype(np.int64)[..., None]), expected, atol=1e-6)
    binary = (images_ > 127).astype(np.int32)  # 0..1 integers: 1 is full ink, as a float 1.0 is
    np.testing.assert_allclose(predictor.predict_proba(binary), predictor.predict_proba(binary.astype(np.float32)),
                               atol=1e-6)
    np.testing.assert_allclose(predictor.predict_proba(binary), predictor.predict_proba(binary.astype(np.uint8) * 255),
                               atol=1e-6)


def test_class_names_come_from_the_run(predictor):
    assert predictor.info.class_names == [str(digit) for digit in range(10)]
    assert predictor.class_names == [str(digit) for digit in range(10)]


def test_a_damaged_model_file_is_refused(tiny_run, tmp_path):
    copy = tmp_path / "damaged"
    shutil.copytree(tiny_run, copy)
    (copy / "model.keras").write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="is not a readable Keras model"):
        Predictor(copy, backend="keras")
    (copy / "model.onnx").write_bytes(b"this is not an ONNX graph")
    served = Predictor(copy)  # a damaged portable copy is skipped (with a warning) when another one reads the run
    assert served.backend == "litert" and "is not a readable ONNX model" in served.skipped["onnx"]
    assert set(served.latencies) <= {"litert"}
    (copy / "model.tflite").write_bytes(b"this is not a LiteRT model")
    with pytest.raises(ValueError, match="is not a readable ONNX model"):
        Predictor(copy)  # no backend can read it (model.keras is damaged too): the first reason, one line


def test_keras_reads_a_run_whose_portable_copies_are_all_damaged(tiny_run, tmp_path):
    copy = tmp_path / "damaged"
    shutil.copytree(tiny_run, copy)
    (copy / "model.onnx").write_bytes(b"this is not an ONNX graph")
    (copy / "model.tflite").write_bytes(b"this is not a LiteRT model")
    served = Predictor(copy)
    assert served.backend == "keras" and set(served.skipped) == {"onnx", "litert"}


def test_the_fastest_portable_copy_is_measured_at_the_callers_batch_size(tiny_run, predictor):
    """With no backend named, every portable copy whose runtime is installed is timed (at `batch` images
    per call) and the fastest of those giving the logits the stored energy score needs is kept (the LiteRT
    copy gives none): never Keras. Every backend, Keras included, gives the same answers."""
    portable = [name for name in ("onnx", "litert") if backends.installed(name)]
    batched = Predictor(tiny_run, batch=16)
    assert set(batched.latencies) == set(portable) and len(portable) > 1
    assert "keras" not in batched.latencies and batched.model is None
    assert batched.backend == "onnx" and batched.score == "energy"
    images_ = data.load_dataset("mnist").x_test[:64]
    np.testing.assert_allclose(batched.predict_proba(images_), predictor.predict_proba(images_), atol=1e-5)
    for name in [*portable, "keras"]:
        chosen = Predictor(tiny_run, backend=name)
        assert chosen.backend == name and chosen.latencies == {}
        np.testing.assert_allclose(chosen.predict_proba(images_), predictor.predict_proba(images_), atol=1e-5)
    assert Predictor(tiny_run, backend="keras").model is not None  # the keras.Model, only when asked for


def test_threads_inside_one_call_can_be_capped(tiny_run, predictor):
    images_ = data.load_dataset("mnist").x_test[:32]
    onnx = Predictor(tiny_run, backend="onnx", threads=1)
    assert onnx._run.session.get_session_options().intra_op_num_threads == 1
    litert = Predictor(tiny_run, backend="litert", threads=1)
    for capped in (onnx, litert):
        np.testing.assert_allclose(capped.predict_proba(images_), predictor.predict_proba(images_), atol=1e-5)


@pytest.mark.parametrize("backend", [None, "onnx", "litert", "keras"])
def test_loading_a_run_writes_nothing_into_it(tiny_run, tmp_path, backend):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    before = snapshot(copy)
    loaded = Predictor(copy, backend=backend)
    loaded.predict_proba(data.load_dataset("mnist").x_test[:8])
    assert snapshot(copy) == before  # no file added, removed or touched
    assert not (copy / "exports").exists()


def test_a_run_without_portable_copies_loads_with_keras(tiny_run, tmp_path, predictor):
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    (old / "model.onnx").unlink()
    (old / "model.tflite").unlink()
    loaded = Predictor(old)
    assert loaded.backend == "keras" and loaded.latencies == {} and loaded.model is not None
    images_ = data.load_dataset("mnist").x_test[:64]
    np.testing.assert_allclose(loaded.predict_proba(images_), predictor.predict_proba(images_), atol=1e-5)
    assert sorted(path.name for path in old.iterdir()) == sorted(
        name for name in (path.name for path in tiny_run.iterdir()) if name not in ("model.onnx", "model.tflite"))


@pytest.mark.parametrize("backend, name", [("onnx", "model.onnx"), ("litert", "model.tflite")])
def test_a_backend_the_run_has_no_copy_for_names_the_export_command(tiny_run, tmp_path, backend, name):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    (copy / name).unlink()
    with pytest.raises(ValueError) as caught:
        Predictor(copy, backend=backend)
    message = str(caught.value)
    assert "\n" not in message
    assert f"holds no {backend} copy ({name})" in message
    assert f"digits export {copy} --format {backend} --out {copy / name}" in message
    other = {"onnx": "litert", "litert": "onnx"}[backend]
    assert Predictor(copy).backend == other  # the default uses the copy that is there
    assert not (copy / name).exists()


def test_calibration_comes_with_the_run_and_its_own_copies(tiny_run, tmp_path, predictor):
    """A run's temperature and not-a-digit threshold reach every Predictor on it (the run, RUN/model.onnx,
    RUN/model.tflite: a copy without logits refuses by the top probability's threshold, fitted at the same rate);
    a bare model file, moved away from its run without a sidecar, reads uncalibrated."""
    fitted = json.loads((tiny_run / "metrics.json").read_text())["calibration"]
    images_ = data.load_dataset("mnist").x_test[:64]
    energy = ("energy", fitted["reject_below"], fitted["energy_below"])
    top = ("max_probability", fitted["max_probability_below"], None)
    for source, expected in ((tiny_run, energy), (tiny_run / "model.onnx", energy), (tiny_run / "model.tflite", top)):
        loaded = Predictor(source)
        assert loaded.temperature == fitted["temperature"], source
        assert (loaded.score, loaded.reject_below, loaded.energy_below) == expected, source
        np.testing.assert_allclose(loaded.predict_proba(images_), predictor.predict_proba(images_), atol=1e-5)
        probabilities, scores = loaded.predict_scores(images_)
        np.testing.assert_allclose(probabilities, predictor.predict_proba(images_), atol=1e-5)
        if expected == top:
            np.testing.assert_allclose(scores, probabilities.max(1), atol=1e-7)
    bare = tmp_path / "model.onnx"
    shutil.copy(tiny_run / "model.onnx", bare)
    uncalibrated = Predictor(bare)
    assert (uncalibrated.temperature, uncalibrated.reject_below) == (1.0, None)
    np.testing.assert_allclose(calibration.apply_temperature(uncalibrated.predict_proba(images_), fitted["temperature"]),
                               predictor.predict_proba(images_), atol=1e-5)


def test_digit_scores_are_the_chance_of_a_digit_from_the_energy(tiny_run, predictor):
    """predict_scores: the calibrated probabilities and, per image, sigmoid((E - b) / T) of the energy E of the
    logits (the same from ONNX and Keras); a picture of nothing scores lower than real digits."""
    fitted = json.loads((tiny_run / "metrics.json").read_text())["calibration"]
    digits_ = data.load_dataset("mnist").x_test[:200]
    probabilities, scores = predictor.predict_scores(digits_)
    logits = backends.load("onnx", tiny_run / "model.onnx").logits(images.to_model_input(digits_))
    energies = calibration.energy(logits, fitted["temperature"])
    by_hand = 1 / (1 + np.exp((fitted["energy_below"] - energies) / fitted["temperature"]))
    np.testing.assert_allclose(scores, by_hand, rtol=1e-6)
    np.testing.assert_allclose(probabilities, calibration.softmax(logits, fitted["temperature"]), atol=1e-6)
    keras_scores = Predictor(tiny_run, backend="keras").predict_scores(digits_)[1]
    np.testing.assert_allclose(keras_scores, scores, atol=1e-5)
    assert scores.shape == (200,) and np.median(scores) > 0.5
    blank = np.zeros((1, 28, 28), np.uint8)  # no ink: the logits answer weakly, whichever class wins
    assert predictor.predict_scores(blank)[1][0] < np.median(scores)


def test_an_exported_file_runs_only_on_its_own_backend(tiny_run, tmp_path):
    exported = tmp_path / "model.onnx"
    shutil.copy(tiny_run / "model.onnx", exported)
    assert Predictor(exported).backend == "onnx"
    with pytest.raises(ValueError, match="is a onnx model; it cannot run on the litert backend"):
        Predictor(exported, backend="litert")


def test_portable_copies_without_their_runtimes(tiny_run, tmp_path, monkeypatch):
    """No ONNX Runtime and no LiteRT: the run falls back to Keras; without TensorFlow too, the error
    names the package to install."""
    monkeypatch.setattr(backends, "installed", lambda name: name == "keras")
    assert Predictor(tiny_run).backend == "keras"
    monkeypatch.setattr(backends, "installed", lambda name: False)
    with pytest.raises(ValueError, match=r"holds only litert, onnx copies, and no runtime for them is installed: "
                                         r"pip install 'digits\[litert\]'"):
        Predictor(tiny_run)
    with pytest.raises(ValueError, match=r"backend 'onnx' needs the onnxruntime package: pip install 'onnxruntime'"):
        Predictor(tiny_run, backend="onnx")
    old = tmp_path / "old"  # a run without portable copies, and no TensorFlow to read model.keras
    shutil.copytree(tiny_run, old)
    (old / "model.onnx").unlink()
    (old / "model.tflite").unlink()
    with pytest.raises(ValueError, match=r"backend 'keras' needs the tensorflow package: pip install 'digits\[cpu\]'"):
        Predictor(old)


def test_unknown_backend_is_refused(tiny_run):
    with pytest.raises(ValueError, match="unknown backend 'tpu'; known backends: onnx, litert, keras"):
        Predictor(tiny_run, backend="tpu")


def test_reading_a_run_imports_no_tensorflow(tiny_run):
    """The reading half: a Predictor on a run's portable copies never imports TensorFlow or Keras."""
    code = ("import sys, numpy as np\n"
            "from digits.predictor import Predictor\n"
            f"predictor = Predictor({str(tiny_run)!r})\n"
            "assert predictor.predict_proba(np.zeros((2, 28, 28), np.uint8)).shape == (2, 10)\n"
            "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
