"""Tasks for tests/test_workers.py's spawned workers (importable by name, as spawned workers need)."""

import os

STATE = {}


def remember(value: str) -> None:
    STATE["initialized"] = value


def pid_after_start() -> int:
    assert STATE.get("initialized") == "started", "the initializer did not run first"
    return os.getpid()
