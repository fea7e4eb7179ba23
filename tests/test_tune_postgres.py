"""Tuning workers sharing a study on a real PostgreSQL server on loopback (one of them killed mid-trial), and the
skip where PostgreSQL is absent. Its own file, so the suite's second process runs it beside test_tune.py."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import kill_a_worker_mid_trial, study_trials, tune_worker, worker_failures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server on loopback (Debian's postgresql package), torn down afterwards."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql (.ci/run does this)")
    bin_dir = Path(binaries[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="digits-postgres-"))  # outside pytest's root-only tmp tree
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "digits", "--auth=trust"],
                   check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start",
                    "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://digits@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgres_study(postgres, tmp_path):
    workers = [tune_worker(postgres, "shared", 6, tmp_path) for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), worker_failures(workers, outputs)
    trials = study_trials(postgres, "shared")
    finished = [trial for trial in trials if trial.state.name in ("COMPLETE", "PRUNED")]
    assert 6 <= len(finished) <= 7  # two workers may both start the last trial: at most one extra
    assert len({trial.user_attrs["worker"] for trial in trials}) == 2  # both workers did real work
    assert len({trial.number for trial in trials}) == len(trials)


def test_a_worker_killed_mid_trial_is_retried_and_the_study_completes(postgres, tmp_path):
    # killed once training: its parameters are drawn ("partial" is set after them), so the retry must keep them
    running, trials = kill_a_worker_mid_trial(postgres, "killed", 8, tmp_path,
                                              lambda trial: "partial" in trial.user_attrs)
    failed = trials[running.number]
    assert failed.state.name == "FAIL"  # the heartbeat stopped: marked failed...
    retries = [trial for trial in trials.values() if trial.system_attrs.get("failed_trial") == running.number]
    assert len(retries) == 1  # ...and retried once, with the parameters it had drawn (it may draw the rest)
    assert failed.params and retries[0].params.items() >= failed.params.items()
    assert retries[0].state.name in ("COMPLETE", "PRUNED")
    finished = [trial for trial in trials.values() if trial.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 8  # no trial lost, none counted twice
    assert not [trial for trial in trials.values() if trial.state.name in ("RUNNING", "WAITING")]


def test_postgresql_tests_skip_with_the_reason_where_postgresql_is_absent(tmp_path):
    """The README's test command alone (no Debian packages) must not error: hide PostgreSQL's binaries."""
    (tmp_path / "no_postgres.py").write_text(
        "import glob\n_glob = glob.glob\n"
        "glob.glob = lambda pattern, *args, **kwargs: [] if 'postgresql' in pattern else _glob(pattern, *args, **kwargs)\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "pytest", "-p", "no_postgres", "-p", "no:cacheprovider", "-n", "0", "-rs", "-q",
               str(Path(__file__)), "-k", "postgres and not absent"]  # -n 0: in this process, where glob is patched
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout[-3000:]
    assert "skipped" in result.stdout and "PostgreSQL is not installed" in result.stdout, result.stdout[-3000:]
    assert "error" not in result.stdout.lower().split("short test summary")[-1], result.stdout[-3000:]
