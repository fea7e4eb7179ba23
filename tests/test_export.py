"""Exports and inference backends: same predictions as Keras, bounds on accuracy, clear refusals."""

import json
import threading

import numpy as np
import pytest

from helpers import assert_clean_error, run_cli
from digits import backends, calibration, data, export, runs
from digits.images import to_model_input
from digits.predictor import Predictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def test_set():
    dataset = data.load_dataset("mnist")
    return to_model_input(dataset.x_test), dataset.y_test


@pytest.fixture(scope="module")
def keras_probabilities(cnn_fast_run, test_set):
    return Predictor(cnn_fast_run, backend="keras").predict_proba(test_set[0])


@pytest.mark.parametrize("backend", ["onnx", "litert"])
def test_backends_agree_with_keras_on_the_whole_test_set(cnn_fast_run, test_set, keras_probabilities, backend):
    predictor = Predictor(cnn_fast_run, backend=backend)
    assert predictor.backend == backend
    probabilities = predictor.predict_proba(test_set[0])
    agreement = np.mean(probabilities.argmax(1) == keras_probabilities.argmax(1))
    assert agreement >= 0.999
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-4)


def test_default_backend_is_the_fastest_portable_copy_giving_logits(cnn_fast_run):
    assert (cnn_fast_run / "model.onnx").is_file() and (cnn_fast_run / "model.tflite").is_file()  # from training
    before = sorted(path.name for path in cnn_fast_run.iterdir())
    predictor = Predictor(cnn_fast_run)
    assert set(predictor.latencies) == {"onnx", "litert"}  # the portable copies; Keras only when asked for
    assert predictor.backend == "onnx" and predictor.score == "energy"  # the only copy that gives the logits
    assert not (cnn_fast_run / "exports").exists()  # nothing converted or cached at load time
    assert sorted(path.name for path in cnn_fast_run.iterdir()) == before


@pytest.mark.parametrize("format_, name", [("onnx", "model.onnx"), ("litert", "model.tflite")])
def test_export_round_trips_and_reports(cnn_fast_run, test_set, keras_probabilities, tmp_path, format_, name):
    out = tmp_path / name
    report = export.export(cnn_fast_run, format_, out)
    sidecar = json.loads(out.with_name(name + ".json").read_text())
    assert sidecar == json.loads(json.dumps(report))
    assert abs(report["accuracy_drop"]) <= 0.001 and report["size_bytes"] == out.stat().st_size
    assert report["latency_p50_us"] > 0 and report["throughput_per_s"] > 0
    loaded = Predictor(out)  # an exported file loads on its own, class names from the sidecar
    assert loaded.info.class_names == [str(digit) for digit in range(10)]
    np.testing.assert_allclose(loaded.predict_proba(test_set[0][:500]), keras_probabilities[:500], atol=1e-4)
    # ...and calibrated, with the not-a-digit threshold the run stored: the sidecar carries them
    fitted = runs.load_info(cnn_fast_run).metrics["calibration"]
    assert sidecar["calibration"] == fitted and fitted["score"] == "energy" and fitted["temperature"] > 0
    # an ONNX file gives the logits (a second output), so it refuses by the energy; a LiteRT file gives none, so it
    # refuses by the top probability's threshold, fitted at the same rate
    expected = (("energy", 0.5, fitted["energy_below"]) if format_ == "onnx"
                else ("max_probability", fitted["max_probability_below"], None))
    assert loaded.temperature == fitted["temperature"]
    assert (loaded.score, loaded.reject_below, loaded.energy_below) == expected
    own = Predictor(cnn_fast_run / name)  # the run's own portable copy of the same format
    assert (own.score, own.reject_below) == (loaded.score, loaded.reject_below)


def test_the_onnx_copy_gives_the_logits_under_its_softmax(cnn_fast_run, test_set, tmp_path):
    """Training and export add the input of the final softmax as a second ONNX output, "logits": the Keras model's
    own logits, whose softmax is the first output. Adding it twice, or to a model without a softmax, changes
    nothing."""
    import keras

    copy = backends.load("onnx", cnn_fast_run / "model.onnx")
    keras_model = backends.load("keras", cnn_fast_run / "model.keras").model
    batch = test_set[0][:256]
    logits = copy.logits(batch)
    np.testing.assert_allclose(logits, backends.keras_logits(keras_model)(batch), atol=1e-3)
    np.testing.assert_allclose(calibration.softmax(logits), copy(batch), atol=1e-5)
    assert not export.add_logits_output(cnn_fast_run / "model.onnx")  # it has one already
    plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    plain(np.zeros((1, 28, 28, 1), np.float32))
    assert backends.keras_logits(plain) is None  # no softmax: no logits to find
    export.convert(plain, "onnx", tmp_path / "plain.onnx")
    before = (tmp_path / "plain.onnx").read_bytes()
    assert not export.add_logits_output(tmp_path / "plain.onnx") and (tmp_path / "plain.onnx").read_bytes() == before
    assert not backends.load("onnx", tmp_path / "plain.onnx").gives_logits


def test_savedmodel_round_trips(cnn_fast_run, test_set, keras_probabilities, tmp_path):
    import tensorflow as tf

    report = export.export(cnn_fast_run, "savedmodel", tmp_path / "savedmodel")
    assert abs(report["accuracy_drop"]) <= 0.001
    loaded = tf.saved_model.load(str(tmp_path / "savedmodel"))  # keep it alive: it owns the variables
    served = loaded.serve(tf.constant(test_set[0][:200])).numpy()
    # the SavedModel is the network as trained; the run's temperature is applied by whoever reads it
    fitted = json.loads((cnn_fast_run / "metrics.json").read_text())["calibration"]
    assert report["calibration"] == fitted
    np.testing.assert_allclose(calibration.apply_temperature(served, fitted["temperature"]), keras_probabilities[:200],
                               atol=1e-5)


def test_int8_keeps_its_accuracy_bound_and_is_smaller(cnn_fast_run, test_set, tmp_path):
    report = export.export(cnn_fast_run, "litert", tmp_path / "int8.tflite", int8=True)
    assert report["accuracy_drop"] <= 0.003
    assert report["size_bytes"] < 0.4 * (cnn_fast_run / "model.tflite").stat().st_size  # the run's float32 copy
    predictor = Predictor(tmp_path / "int8.tflite")
    accuracy = np.mean(predictor.predict_proba(test_set[0]).argmax(1) == test_set[1])
    assert accuracy == pytest.approx(report["test_accuracy"], abs=1e-6)


def test_litert_is_thread_safe(cnn_fast_run, test_set):
    predictor = Predictor(cnn_fast_run, backend="litert")
    expected = predictor.predict_proba(test_set[0][:64])
    results = {}

    def work(index):
        for _ in range(20):
            results[index] = predictor.predict_proba(test_set[0][:64] if index % 2 else test_set[0][:64][:1])

    threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, result in results.items():
        np.testing.assert_allclose(result, expected if index % 2 else expected[:1], atol=1e-6)


def test_an_export_that_loses_accuracy_is_refused_and_removed(cnn_fast_run, tmp_path, monkeypatch):
    monkeypatch.setitem(export.MAX_DROP, False, -1.0)  # no export can pass: the guard must fire
    with pytest.raises(export.ExportError, match="points below the Keras model's.*not kept"):
        export.export(cnn_fast_run, "onnx", tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_backend_names_the_extra(cnn_fast_run, monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda name: name == "keras")
    with pytest.raises(ValueError, match=r"needs the onnxruntime package: pip install 'onnxruntime'"):
        Predictor(cnn_fast_run, backend="onnx")
    assert Predictor(cnn_fast_run).backend == "keras"  # the default uses what is installed


@pytest.mark.parametrize("name, fragment", [("junk.onnx", "not a readable ONNX model"),
                                            ("junk.tflite", "not a readable LiteRT model"),
                                            ("junk.keras", "not a readable Keras model"),
                                            ("notes.txt", "not a model file digits can load")])
def test_files_that_are_not_models(tmp_path, name, fragment):
    (tmp_path / name).write_bytes(b"definitely not a model")
    with pytest.raises(ValueError, match=fragment):
        Predictor(tmp_path / name)


def test_a_model_with_the_wrong_input_shape_is_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model(np.zeros((1, 32, 32, 1), np.float32))
    export.convert(model, "onnx", tmp_path / "wide.onnx")
    with pytest.raises(ValueError, match=r"expects inputs of shape \(32, 32, 1\)"):
        Predictor(tmp_path / "wide.onnx")


def test_cli_export_and_its_errors(cnn_fast_run, tmp_path):
    result = run_cli("export", str(cnn_fast_run), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert result.returncode == 0, result.stderr
    assert "Test accuracy: 0.99" in result.stdout and (tmp_path / "m.onnx.json").is_file()
    assert "XNNPACK" not in result.stderr and "Traceback" not in result.stderr
    assert_clean_error(run_cli("export", str(cnn_fast_run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")),
                       "already exists")
    assert_clean_error(run_cli("export", str(cnn_fast_run), "--format", "litert", "--out", str(tmp_path / "m.bin")),
                       "must be named *.tflite")
    assert_clean_error(run_cli("export", str(cnn_fast_run), "--format", "onnx", "--int8",
                               "--out", str(tmp_path / "q.onnx")), "--int8 applies to the litert format only")
    evaluated = run_cli("evaluate", str(tmp_path / "m.onnx"))  # evaluation of an export goes through the Predictor
    assert evaluated.returncode == 0 and "backend: onnx" in evaluated.stdout


def test_average_onnx_reads_as_the_mean_of_its_members_logits(tiny_run, cnn_fast_run, test_set, tmp_path):
    """A deep ensemble in one file: its logits are the members' mean, its probabilities their softmax; it loads as
    any model file, and a member without logits, a lone member or another input shape is refused in one line."""
    import onnx

    members = [tiny_run / "model.onnx", cnn_fast_run / "model.onnx"]
    export.average_onnx(members, tmp_path / "average.onnx")
    batch = test_set[0][:300]
    expected = np.mean([backends.load("onnx", path).logits(batch) for path in members], axis=0)
    averaged = backends.load("onnx", tmp_path / "average.onnx")
    np.testing.assert_allclose(averaged.logits(batch), expected, atol=1e-5)
    np.testing.assert_allclose(averaged(batch), calibration.softmax(expected), atol=1e-6)
    alone = [backends.load("onnx", path)(batch).argmax(1) for path in members]
    assert not np.array_equal(averaged(batch).argmax(1), alone[0])  # not just the first member
    with pytest.raises(ValueError, match="at least two"):
        export.average_onnx(members[:1], tmp_path / "one.onnx")
    export.average_onnx(members, tmp_path / "weighted.onnx", weights=[0.3, 0.7])  # a weighted mean of the logits
    logits = [backends.load("onnx", path).logits(batch) for path in members]
    weighted = backends.load("onnx", tmp_path / "weighted.onnx")
    np.testing.assert_allclose(weighted.logits(batch), 0.3 * logits[0] + 0.7 * logits[1], atol=1e-5)
    np.testing.assert_allclose(weighted(batch), calibration.softmax(0.3 * logits[0] + 0.7 * logits[1]), atol=1e-6)
    for bad in ([0.5, 0.6], [1.0, 0.0], [1.0]):  # not summing to 1, a member weighing nothing, one for two members
        with pytest.raises(ValueError, match="one positive weight per member, summing to 1"):
            export.average_onnx(members, tmp_path / "bad-weights.onnx", weights=bad)
    assert not (tmp_path / "bad-weights.onnx").exists()
    plain = onnx.load(str(members[0]))
    kept = [output for output in plain.graph.output if output.name != backends.LOGITS]
    del plain.graph.output[:]
    plain.graph.output.extend(kept)
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(ValueError, match="no 'logits' output"):
        export.average_onnx([members[1], tmp_path / "plain.onnx"], tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
