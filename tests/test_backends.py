"""Backends: each runtime loads its file of a run and agrees with the others; the one batch loop;
missing runtimes, unknown names and foreign files are one-line ValueErrors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from digits import backends, data, images


@pytest.fixture(scope="module")
def batch():
    return images.to_model_input(data.load_dataset("mnist").x_test[:40])


@pytest.fixture(scope="module")
def keras_output(tiny_run, batch):
    return backends.load("keras", tiny_run / "model.keras")(batch)


@pytest.mark.parametrize("name, file", [("keras", "model.keras"), ("onnx", "model.onnx"), ("litert", "model.tflite")])
def test_each_backend_loads_its_file_and_agrees_with_keras(tiny_run, batch, keras_output, name, file):
    backend = backends.load(name, tiny_run / file)
    assert isinstance(backend, backends.CLASSES[name])
    assert tuple(backend.input_shape) == (28, 28, 1) and backend.num_classes == 10
    output = np.asarray(backend(batch))
    assert output.shape == (40, 10) and output.dtype == np.float32
    np.testing.assert_allclose(output.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(output, keras_output, atol=1e-5)
    np.testing.assert_allclose(backend(batch[:1]), keras_output[:1], atol=1e-5)  # batch size changes are fine
    np.testing.assert_allclose(backend(batch[:7]), keras_output[:7], atol=1e-5)


def test_threads_are_passed_to_the_runtimes(tiny_run, batch, keras_output):
    onnx = backends.load("onnx", tiny_run / "model.onnx", threads=1)
    assert onnx.session.get_session_options().intra_op_num_threads == 1
    litert = backends.load("litert", tiny_run / "model.tflite", threads=1)
    for backend in (onnx, litert):
        np.testing.assert_allclose(backend(batch), keras_output, atol=1e-5)


@pytest.mark.parametrize("name, suffix, fragment", [("onnx", ".onnx", "not a readable ONNX model"),
                                                    ("litert", ".tflite", "not a readable LiteRT model"),
                                                    ("keras", ".keras", "not a readable Keras model")])
def test_foreign_files_are_one_line_value_errors(tmp_path, name, suffix, fragment):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(b"definitely not a model")
    with pytest.raises(ValueError) as caught:
        backends.load(name, path)
    assert fragment in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_installed_and_require(monkeypatch):
    assert backends.BACKENDS == ("onnx", "litert", "keras")
    assert all(backends.installed(name) for name in backends.BACKENDS)  # the test environment has all three
    backends.require("onnx")
    with pytest.raises(ValueError, match="unknown backend 'tpu'; known backends: onnx, litert, keras"):
        backends.require("tpu")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        backends.load("tpu", "model.tpu")
    monkeypatch.setattr(backends, "installed", lambda name: False)
    for name, (module, extra) in {"onnx": ("onnxruntime", "onnxruntime"), "litert": ("ai_edge_litert", "digits[litert]"),
                                  "keras": ("tensorflow", "digits[cpu]")}.items():
        with pytest.raises(ValueError) as caught:
            backends.require(name)
        assert str(caught.value) == f"backend '{name}' needs the {module} package: pip install '{extra}'"
        with pytest.raises(ValueError, match=f"needs the {module} package"):
            backends.load(name, "anything")  # refused before any file is read


def test_installed_imports_nothing_and_importing_backends_costs_nothing():
    code = ("import sys\n"
            "from digits import backends\n"
            "print([backends.installed(name) for name in backends.BACKENDS])\n"
            "print(sorted(name for name in ('tensorflow', 'keras', 'onnxruntime', 'ai_edge_litert')"
            " if name in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[True, True, True]", "[]"]


def test_in_batches_feeds_slices_and_joins_them():
    seen = []

    def model(chunk):
        seen.append(len(chunk))
        return np.repeat(chunk.reshape(len(chunk), -1).sum(1, keepdims=True), 3, axis=1).astype(np.float64)

    batch = np.arange(10 * 4, dtype=np.float32).reshape(10, 2, 2, 1)
    output = backends.in_batches(model, batch, batch_size=4, num_classes=3)
    assert seen == [4, 4, 2]
    assert output.shape == (10, 3) and output.dtype == np.float32
    np.testing.assert_allclose(output[:, 0], batch.reshape(10, -1).sum(1))
    seen.clear()
    assert backends.in_batches(model, batch, batch_size=1024).shape == (10, 3) and seen == [10]
    seen.clear()
    empty = backends.in_batches(model, batch[:0], batch_size=4, num_classes=7)
    assert empty.shape == (0, 7) and empty.dtype == np.float32 and seen == []  # never called on nothing


def test_latency_is_the_median_of_real_calls():
    calls = []
    assert backends.latency(lambda batch: calls.append(len(batch)), np.zeros((3, 28, 28, 1), np.float32), calls=5) >= 0
    assert calls == [3] * 5
