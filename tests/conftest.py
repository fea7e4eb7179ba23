"""Shared fixtures: a small real training run, and helpers to run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No test reads the developer's DIGITS_* settings or writes into their cache."""
    monkeypatch.delenv("DIGITS_DATA_DIR", raising=False)
    monkeypatch.delenv("DIGITS_RUNS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def run_cli(*args: str, cwd: Path | None = None, script: str | None = None, timeout: float = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `digits ARGS` (or `python SCRIPT ARGS` from the repo root) in a subprocess."""
    command = [sys.executable, str(REPO / script)] if script else [sys.executable, "-m", "digits.cli"]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=environment)


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error: non-zero exit, no traceback, one line on stderr that contains `fragments`."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if "error:" in line]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]
    return error_lines[0]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A real (quick) MLP run: 2,000 MNIST training images, 1 epoch, through `train.train`."""
    from digits import config, train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = train.train(config.Config(epochs=1, limit=2000), out=out, verbose=0)
    return result.run_dir


@pytest.fixture(scope="session")
def cnn_fast_run(tmp_path_factory) -> Path:
    """configs/cnn-fast.json trained on the full training set (about 10 s): a real 99% model."""
    from digits import config, train

    out = tmp_path_factory.mktemp("runs") / "cnn-fast"
    return train.train(config.load(REPO / "configs" / "cnn-fast.json"), out=out, verbose=0).run_dir
