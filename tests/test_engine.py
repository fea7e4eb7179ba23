"""Predictor: loads a run once, agrees with Keras, and refuses bad runs and bad batches clearly."""

import shutil
import threading

import numpy as np
import pytest

from digits import data, engine


@pytest.fixture(scope="module")
def predictor(tiny_run):
    return engine.Predictor(tiny_run)


def test_predictions_match_keras(predictor):
    import keras

    images = data.load_dataset("mnist").x_test[:500]
    expected = keras.models.load_model(predictor.info.run_dir / "model.keras").predict(
        data.to_model_input(images), verbose=0)
    probabilities = predictor.predict_proba(images)
    assert probabilities.shape == (500, 10)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    # uint8 0..255, float 0..1, with or without the channel axis: the same answer
    np.testing.assert_allclose(predictor.predict_proba(images.astype(np.float32) / 255.0), probabilities, atol=1e-6)
    np.testing.assert_allclose(predictor.predict_proba(images[..., None]), probabilities, atol=1e-6)


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
    (np.zeros((2, 28, 28), np.int32), "dtype int32"),
    (np.full((1, 28, 28), np.nan, np.float32), "NaN"),
])
def test_bad_batches_are_value_errors(predictor, batch, fragment):
    with pytest.raises(ValueError) as caught:
        predictor.predict_proba(batch)
    assert fragment in str(caught.value)


def test_class_names_come_from_the_run(predictor):
    assert predictor.info.class_names == [str(digit) for digit in range(10)]


def test_latest_run_and_incomplete_runs(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="no trained model found"):
        engine.latest_run(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (tmp_path / ".partial-123").mkdir()  # work in progress is never "latest"
    assert engine.latest_run(tmp_path) == copy
    (copy / "metrics.json").unlink()
    with pytest.raises(ValueError, match=r"incomplete \(missing metrics.json\)"):
        engine.check_run(copy)
    with pytest.raises(ValueError, match="does not exist"):
        engine.check_run(tmp_path / "nowhere")


def test_a_damaged_model_file_is_refused(tiny_run, tmp_path):
    copy = tmp_path / "damaged"
    shutil.copytree(tiny_run, copy)
    (copy / "model.keras").write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="is not a readable Keras model"):
        engine.Predictor(copy)


def test_the_fastest_backend_is_measured_at_the_callers_batch_size(tiny_run, predictor):
    """With no backend named, every installed one is timed (at `batch` images per call) and the fastest
    kept; they all give the same answers."""
    installed = [name for name in engine.BACKENDS if engine.backend_installed(name)]
    batched = engine.Predictor(tiny_run, batch=16)
    assert set(batched.latencies) == set(installed) and len(installed) > 1
    assert batched.backend == min(batched.latencies, key=batched.latencies.get)
    images = data.load_dataset("mnist").x_test[:64]
    np.testing.assert_allclose(batched.predict_proba(images), predictor.predict_proba(images), atol=1e-5)
    for name in installed:
        np.testing.assert_allclose(engine.Predictor(tiny_run, backend=name).predict_proba(images),
                                   predictor.predict_proba(images), atol=1e-5)


def test_threads_inside_one_call_can_be_capped(tiny_run, predictor):
    images = data.load_dataset("mnist").x_test[:32]
    onnx = engine.Predictor(tiny_run, backend="onnx", threads=1)
    assert onnx._run.session.get_session_options().intra_op_num_threads == 1
    litert = engine.Predictor(tiny_run, backend="litert", threads=1)
    for capped in (onnx, litert):
        np.testing.assert_allclose(capped.predict_proba(images), predictor.predict_proba(images), atol=1e-5)
