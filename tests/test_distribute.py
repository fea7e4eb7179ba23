"""digits.distribute: two MultiWorkerMirroredStrategy workers on loopback train one model together; strategies,
precision and the environment a run records."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from helpers import assert_clean_error, run_cli
from digits import distribute

ARGS = ["train", "--limit", "6000", "--epochs", "2", "--seed", "3"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def _causes(stderr: str) -> str:
    """What a failed worker said first about why (the cause is far above the traceback's tail), then the tail."""
    lines = [line.strip() for line in stderr.splitlines() if re.search(r"aborted by|is down|seems down|Error:", line)]
    return " | ".join(dict.fromkeys(lines[:6])) + " ... " + stderr[-1200:]


# Two workers beside the rest of the suite on 2 cores once failed in CI with their collectives aborted ("Collective
# ops is aborted by: ... Restart your program to reset."; the log kept no cause, hence _causes). Only that failure is
# tried once more, on fresh ports; any other one, or the same one twice, fails. The likely cause: TensorFlow's cluster
# health check (CollectiveAllReduceExtended) aborts every worker's collectives when a peer misses three 10 s pings.
@pytest.mark.slow
@pytest.mark.flaky(reruns=1, only_rerun=["Restart your program to reset"])
def test_two_workers_match_one_process(tmp_path):
    single = run_cli(*ARGS, "--out", str(tmp_path / "single"))
    assert single.returncode == 0, single.stderr[-2000:]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        environment = {**os.environ, "PYTHONUNBUFFERED": "1",
                       "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen([sys.executable, "-m", "digits.cli", *ARGS, "--distribute", "multi-worker",
                                         "--out", str(tmp_path / "together")], env=environment, cwd=tmp_path,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [_causes(err) for _, err in outputs]
    together = json.loads((tmp_path / "together" / "metrics.json").read_text())
    alone = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert together["distribute"] == "multi-worker" and together["replicas"] == 2
    assert abs(together["test_accuracy"] - alone["test_accuracy"]) < 0.02  # same recipe, within noise
    assert together["test_accuracy"] > 0.88
    written = sorted(path.name for path in tmp_path.iterdir() if path.name != "cache")  # cache: XDG_CACHE_HOME
    assert written == ["single", "together"]  # only the chief wrote a run; no work-in-progress left


@pytest.mark.slow
def test_mirrored_runs_on_one_machine(tmp_path):
    result = run_cli("train", "--limit", "2000", "--epochs", "1", "--distribute", "mirrored",
                     "--out", str(tmp_path / "mirrored"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "mirrored" / "metrics.json").read_text())["distribute"] == "mirrored"


def test_multi_worker_without_tf_config_is_one_line(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "digits.cli", "train", "--distribute", "multi-worker"],
                            cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert_clean_error(result, "TF_CONFIG")


def test_no_distribution_is_no_strategy_and_bad_ones_are_refused(monkeypatch):
    assert distribute.make_strategy(None) is None
    assert distribute.worker_index(None) == 0  # a single process writes its own run
    assert distribute.DISTRIBUTIONS == ("mirrored", "multi-worker")
    with pytest.raises(ValueError, match="unknown distribution 'ring'; choose one of mirrored, multi-worker"):
        distribute.make_strategy("ring")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ValueError, match="reads the cluster from TF_CONFIG"):
        distribute.make_strategy("multi-worker")


def test_precision_sets_the_global_policy():
    import keras

    try:
        assert distribute.set_precision("mixed_bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert distribute.set_precision("float32") == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
        assert distribute.set_precision("auto") == ("mixed_bfloat16" if distribute.native_bfloat16() else "float32")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_environment_records_versions_and_machine():
    import keras
    import tensorflow as tf

    from digits import __version__

    recorded = distribute.environment()
    assert {"digits", "tensorflow", "keras", "numpy", "python", "machine", "platform", "cpu_count", "gpus"} <= set(
        recorded)
    assert (recorded["digits"], recorded["tensorflow"], recorded["keras"]) == (__version__, tf.__version__,
                                                                               keras.__version__)
    assert recorded["cpu_count"] == os.cpu_count() and isinstance(recorded["gpus"], int)
    assert json.loads(json.dumps(recorded)) == recorded
