"""Helpers the tests share (imported as `from helpers import ...`): the repository root, the CLI run
as a user runs it, and pictures that are not digits (letters, scribbles). Fixtures live in conftest.py."""

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


def dejavu_sans():
    """The path of DejaVu Sans, matplotlib's bundled font (`synthetic.training_fonts()`): on every machine."""
    from digits import synthetic

    return next(path for path in synthetic.training_fonts() if path.name == "DejaVuSans.ttf")


def drawn_text(text: str, size: tuple[int, int] = (160, 160), font_size: int = 112):
    """`text` in DejaVu Sans (matplotlib's bundled font, `synthetic.training_fonts()`), dark ink on white paper,
    centred: a PIL picture of letters or symbols, as a phone would photograph them."""
    from PIL import Image, ImageDraw, ImageFont

    font = dejavu_sans()
    picture = Image.new("L", size, 255)
    ImageDraw.Draw(picture).text((size[0] / 2, size[1] / 2), text, fill=0, anchor="mm",
                                 font=ImageFont.truetype(str(font), font_size))
    return picture


def scribble(seed: int, size: int = 160, strokes: int = 6, width: int = 8):
    """Random crossing strokes, dark on white, each through the middle of the picture (so they stay one tangle,
    not several pieces): nothing anyone would read as a digit."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    picture = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(picture)
    for _ in range(strokes):
        start, middle, end = (tuple(rng.uniform(*span, 2) * size) for span in ((0.1, 0.9), (0.4, 0.6), (0.1, 0.9)))
        pen.line([start, middle, end], fill=0, width=width, joint="curve")
    return picture


# ---------------------------------------------------------------- digits tune workers (test_tune*.py)

TUNE_TRIAL = ["--model", "mlp", "--epochs", "2", "--limit", "1500"]  # a trial takes a few seconds


def tune_worker(storage, study, trials, cwd, trial=TUNE_TRIAL, heartbeat=1):
    command = [sys.executable, "-m", "digits.cli", "tune", *trial, "--trials", str(trials), "--storage", storage,
               "--study", study, "--heartbeat", str(heartbeat)]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def worker_failures(workers, outputs) -> str:
    """Each worker's exit status and the end of its stderr, whole (a list would be cut to 240 characters)."""
    return "\n".join(f"worker {i} exited {worker.returncode}:\n{errors[-1500:]}"
                     for i, (worker, (_, errors)) in enumerate(zip(workers, outputs)))


def study_trials(storage, study):
    import optuna

    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def kill_a_worker_mid_trial(storage, study, trials, cwd, ready, **options) -> tuple:
    """A tune worker killed (SIGKILL) inside a trial, once `ready(trial)` holds for its RUNNING trial, and a second
    worker started with the same `options` to finish the study: (the killed trial, {number: trial} at the end)."""
    import signal
    import time

    victim, survivor = tune_worker(storage, study, trials, cwd, **options), None
    try:
        deadline, running = time.time() + 300, None
        while time.time() < deadline and running is None:  # wait until the victim is inside a trial
            time.sleep(0.3)
            try:
                running = next((trial for trial in study_trials(storage, study) if trial.state.name == "RUNNING"
                                and trial.user_attrs.get("worker", "").endswith(f":{victim.pid}")
                                and ready(trial)), None)
            except KeyError:  # the study is not created yet
                pass
        assert running is not None, "the first worker never started a trial"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        survivor = tune_worker(storage, study, trials, cwd, **options)
        _, errors = survivor.communicate(timeout=600)
        assert survivor.returncode == 0, errors[-2000:]
    finally:
        for process in (victim, survivor):
            if process and process.poll() is None:
                process.kill()
    return running, {trial.number: trial for trial in study_trials(storage, study)}


def without_logits(path):
    """Rewrite an ONNX file as runs wrote it before the energy score: its probabilities as the only output."""
    import onnx

    model = onnx.load(str(path))
    kept = [output for output in model.graph.output if output.name != "logits"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    model.graph.node.remove(next(node for node in model.graph.node if "logits" in node.output))
    onnx.save(model, str(path))


def fixed_machine(monkeypatch) -> None:
    """benchmarks/common.machine() answered without TensorFlow (it imports it for the versions: not needed in a
    test); benchmarks/ must be on sys.path."""
    import common

    monkeypatch.setattr(common, "machine", lambda: {"cpu": "a CPU", "cores": 2, "memory_gib": 8.0, "tensorflow": "-",
                                                    "keras": "-", "python": "3", "measured": "2026-01-01T00:00"})


def save_heic(picture, path: Path, exif: bytes | None = None) -> Path:
    """`picture` (a PIL image) written as an iPhone writes its photos: HEIC, through pillow-heif's encoder."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    picture.convert("RGB").save(path, format="HEIF", quality=95, **({"exif": exif} if exif else {}))
    return path
