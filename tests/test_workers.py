"""digits.workers: spawned worker processes end with the process that started them."""

import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import REPO

PARENT = """
import sys, time
sys.path.insert(0, {tests!r})
from digits import workers
import worker_tasks

if __name__ == "__main__":
    pool = workers.pool(1, worker_tasks.remember, ("started",))
    print(pool.submit(worker_tasks.pid_after_start).result(), flush=True)
    pool.submit(time.sleep, 600)  # busy for ten minutes
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running, not gone or a zombie (an ended process whose new parent has not reaped it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_worker_ends_when_its_parent_is_killed_outright(tmp_path):
    """SIGKILL leaves a pool no chance to shut down: its worker, busy with a long task, must still end by itself
    (it checks its parent every `WATCH_SECONDS`), not be left orphaned. The initializer ran first."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(tests=str(REPO / "tests")))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
    deadline = time.monotonic() + 60  # a generous bound, not a timing: the watch looks once a second
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), f"worker {worker} outlived its parent"
