"""End to end on the real MNIST files: the original commands, the 0.970 bar, and resuming a killed run."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def original_run(tmp_path_factory):
    """`python train.py` with no arguments, in a fresh directory, exactly as the README says."""
    workdir = tmp_path_factory.mktemp("original")
    result = run_cli(script="train.py", cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    return workdir, result


def test_train_py_reaches_the_original_accuracy(original_run):
    workdir, result = original_run
    match = re.search(r"^Test accuracy: (0\.\d{4})$", result.stdout, re.MULTILINE)
    assert match, result.stdout
    accuracy = float(match.group(1))
    assert accuracy >= 0.970, f"the MLP reached only {accuracy} on the 10,000 official test images"
    runs = list((workdir / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("mlp-mnist-")
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert metrics["epochs"] == 5 and metrics["train_images"] == 54000 and metrics["test_images"] == 10000
    assert "Epoch 5/5" in result.stdout  # Keras's per-epoch progress reached the last epoch
    assert "oneDNN" not in result.stderr and "absl::InitializeLog" not in result.stderr  # TF noise kept away


def test_predict_py_headless_saves_the_grid(original_run):
    workdir, _ = original_run
    result = run_cli(script="predict.py", cwd=workdir)
    assert result.returncode == 0, result.stderr
    saved = re.search(r"Saved the figure to (\S+)", result.stdout)
    assert saved, result.stdout
    assert (workdir / saved.group(1)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    correct = re.search(r"^(\d+) of 24 correct$", result.stdout, re.MULTILINE)
    assert correct and int(correct.group(1)) >= 21  # a 97% model gets nearly all of 24 right


def _train_command(out):
    return [sys.executable, "-m", "digits.cli", "train", "--limit", "12000", "--epochs", "4", "--out", str(out)]


def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    environment = {**__import__("os").environ, "PYTHONUNBUFFERED": "1"}
    reference = subprocess.run(_train_command(tmp_path / "reference"), capture_output=True, text=True,
                               env=environment, timeout=600)
    assert reference.returncode == 0, reference.stderr

    log = tmp_path / "killed.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(_train_command(tmp_path / "resumed"), stdout=stream, stderr=subprocess.STDOUT,
                                   env=environment)
        deadline = time.time() + 300
        while "Epoch 3/4" not in log.read_text() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # no chance to clean up: a real crash
        process.wait()
    assert "Epoch 3/4" in log.read_text(), log.read_text()
    assert not (tmp_path / "resumed").exists()  # a killed run never looks finished
    assert list(tmp_path.glob(".partial-*"))  # ...but its progress is kept aside

    resumed = subprocess.run(_train_command(tmp_path / "resumed"), capture_output=True, text=True,
                             env=environment, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed from epoch 2" in resumed.stderr
    assert "Epoch 1/4" not in resumed.stdout and "Epoch 3/4" in resumed.stdout
    assert not list(tmp_path.glob(".partial-*"))

    first = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    second = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert len(history["loss"]) == 4 and second["epochs"] == 4
    # Resuming restores weights and optimizer state but not the shuffle order: equal within noise.
    assert abs(first["test_accuracy"] - second["test_accuracy"]) < 0.01
    assert second["test_accuracy"] > 0.93  # 12,000 images, 4 epochs: about 0.94-0.95
