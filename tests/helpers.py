"""Helpers the tests share (imported as `from helpers import ...`): the repository root and the CLI run
as a user runs it. Fixtures live in conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
