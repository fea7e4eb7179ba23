"""Worker processes that end with the process that started them.

Drawing synthetic data (`digits.synthetic`) and reading a folder (`digits predict --workers N`) hand their work to
spawned processes: spawned, not forked, so that no thread or ONNX Runtime session of the parent is copied into a
child half-alive. A pool's workers wait on a queue whose both ends they hold, so a parent killed outright (SIGKILL,
or SIGTERM before it can shut its pool down) would leave them waiting, orphaned, for ever; each worker here runs a
daemon thread that ends it once its parent is gone.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable

WATCH_SECONDS = 1.0  # how often a worker checks that its parent still runs


def cores() -> int:
    """The cores this process may run on (its affinity, where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _exit_with(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def pool(processes: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """`processes` spawned workers, each ended once this process is gone; `initializer(*initargs)` runs in each
    first (a module-level function: it is pickled)."""
    return ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_exit_with,
                               initargs=(os.getpid(), initializer, initargs))
