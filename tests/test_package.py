"""The package as a whole: the public Python API, the two halves, and an import graph without circles."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import REPO, assert_clean_error, save_heic

SOURCE = REPO / "src" / "digits"
# The training half: TensorFlow, Keras, matplotlib and the modules that use them to fit, evaluate and export.
TRAINING = {"digits.train", "digits.models", "digits.data", "digits.idx", "digits.export", "digits.distribute",
            "digits.tune", "digits.ensemble", "digits.evaluate", "digits.plots"}
FRAMEWORKS = {"tensorflow", "keras", "matplotlib"}
# The reading half, which never imports the training half (not even lazily) nor a framework at module level.
READING = ["runs", "files", "backends", "predictor", "images", "multidigit", "reading", "api", "calibration", "sequence"]


def seven(path: Path, size: int = 120) -> Path:
    picture = Image.new("L", (size, size), 255)
    ImageDraw.Draw(picture).line([(30, 20), (90, 20), (50, 100)], fill=0, width=8)
    picture.save(path)
    return path


def test_reading_a_picture_imports_no_framework_and_no_training_module(tiny_run, tmp_path):
    """A fresh interpreter reads a picture with an ONNX model through the Python API, the CLI's code path
    and the app factory, then checks what was imported."""
    picture = seven(tmp_path / "seven.png")
    model = tiny_run / "model.onnx"
    script = f"""
import json, sys
import digits
from digits import cli
from digits.api.app import create_app
from digits.api.settings import Settings
from fastapi.testclient import TestClient

reading = digits.read({str(picture)!r}, model={str(model)!r})
code = cli.main(["predict", {str(model)!r}, {str(picture)!r}, "--json"])
with TestClient(create_app(Settings(run={str(model)!r}))) as client:
    answer = client.post("/predict", files={{"file": open({str(picture)!r}, "rb")}}).json()["predictions"][0]
loaded = sorted(name for name in sys.modules if name.split(".")[0] in {sorted(FRAMEWORKS)!r} or name in {sorted(TRAINING)!r})
print("RESULT", json.dumps({{"python": reading.to_dict()["label"], "cli": code, "api": answer["label"], "loaded": loaded}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    found = json.loads(line[len("RESULT "):])
    printed = json.loads(result.stdout[:result.stdout.index("RESULT ")])
    assert found["cli"] == 0 and found["python"] == found["api"] == printed["results"][0]["label"]
    assert found["loaded"] == [], f"reading imported {found['loaded']}"


def _imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    """The digits modules `path` imports (relative imports resolved), at module level or anywhere."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            for alias in node.names:  # `from . import runs` names a module; `from .runs import x` does not
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _module_path(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("digits", *FRAMEWORKS)}


def _module_path(name: str) -> Path | None:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    for candidate in (SOURCE / relative.with_suffix(".py"), SOURCE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def test_no_import_circles():
    modules = _modules()
    graph = {name: {target for target in _imports(path, name, top_level_only=True) if target in modules}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if target == name or target == name.rsplit(".", 1)[0]:  # a package and its __init__
                continue
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(target):] + [target]))
            if target not in state:
                visit(target, trail + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("part", READING)
def test_the_reading_half_never_imports_the_training_half(part):
    modules = {name: path for name, path in _modules().items() if name == f"digits.{part}"
               or name.startswith(f"digits.{part}.")}
    assert modules
    for name, path in modules.items():
        anywhere = _imports(path, name, top_level_only=False)
        assert not anywhere & TRAINING, f"{name} imports {sorted(anywhere & TRAINING)}"
        top = {target.split(".")[0] for target in _imports(path, name, top_level_only=True)}
        assert not top & FRAMEWORKS, f"{name} imports {sorted(top & FRAMEWORKS)} at module level"


def test_digits_read_takes_paths_bytes_arrays_and_pil_images(tiny_run, tmp_path):
    import digits

    picture = seven(tmp_path / "seven.png")
    from_path = digits.read(picture, model=tiny_run)
    assert from_path.kind == "digit" and from_path.ink_found and isinstance(from_path.digit, int)
    from_bytes = digits.read(picture.read_bytes(), model=tiny_run)
    with Image.open(picture) as opened:
        from_pil = digits.read(opened, model=tiny_run)
        from_array = digits.read(np.asarray(opened), model=tiny_run)
    for other in (from_bytes, from_pil, from_array):
        assert other.digit == from_path.digit
        np.testing.assert_allclose(other.digits[0].probabilities, from_path.digits[0].probabilities, atol=1e-5)
    assert isinstance(digits.Predictor(tiny_run).predict_proba(np.zeros((1, 28, 28), np.uint8)), np.ndarray)
    with pytest.raises(ValueError, match="not a picture Pillow can read"):
        digits.read(b"plain text, not an image", model=tiny_run)
    with pytest.raises(AttributeError):
        digits.no_such_name  # noqa: B018


def test_the_package_declares_its_license():
    """MIT as an SPDX expression, with the LICENSE file shipped (no setuptools deprecation box on install)."""
    import importlib.metadata

    metadata = importlib.metadata.metadata("digits")
    assert metadata["License-Expression"] == "MIT"
    assert "LICENSE" in (metadata.get_all("License-File") or [])
    assert "MIT License" in (REPO / "LICENSE").read_text()


def test_a_base_install_reads_without_tensorflow(tiny_run, tmp_path):
    """A second virtual environment with `pip install .` only (no extras): no TensorFlow, Keras or matplotlib
    installed; digits.read and `digits predict --json` read a picture with a run's ONNX copy, and with the shipped
    model when no run is named (a PNG, and an iPhone's HEIC photo); a damaged or missing shipped model gets one
    line."""
    import venv

    environment = tmp_path / "base"
    venv.create(environment, with_pip=True)
    python, digits = environment / "bin" / "python", str(environment / "bin" / "digits")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(REPO)], capture_output=True,
                               text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    packages = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                              timeout=120).stdout.lower()
    for heavy in ("tensorflow", "keras", "matplotlib", "optuna", "fastapi"):
        assert f"\n{heavy}" not in "\n" + packages, f"the base install pulled in {heavy}"
    picture = seven(tmp_path / "seven.png")
    model = tiny_run / "model.onnx"
    script = (f"import json, sys, digits\n"
              f"named = digits.read({str(picture)!r}, model={str(model)!r})\n"
              f"shipped = digits.read({str(picture)!r})\n"
              f"print(json.dumps({{'named': named.label, 'kind': named.kind, 'shipped': shipped.label, "
              f"'loaded': sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'matplotlib'))}}))")
    read = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert read.returncode == 0, read.stderr[-3000:]
    found = json.loads(read.stdout.strip().splitlines()[-1])
    assert found["loaded"] == [] and found["kind"] in ("digit", "not_a_digit", "number")
    assert found["shipped"] == "7"
    cli = subprocess.run([digits, "predict", str(model), str(picture), "--json"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert json.loads(cli.stdout)["results"][0]["label"] == found["named"]
    heic = save_heic(Image.open(picture), tmp_path / "seven.heic")  # an iPhone's photo: pi-heif is in the base
    shipped = subprocess.run([digits, "predict", str(picture), str(heic), "--json"], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    assert [row["label"] for row in json.loads(shipped.stdout)["results"]] == ["7", "7"]
    assert "Model: the shipped model digits-reader" in shipped.stderr
    missing = subprocess.run([digits, "train", "--epochs", "1"], capture_output=True,
                             text=True, timeout=300, cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "pip install 'digits[cpu]'" in missing.stderr.strip().splitlines()[-1]

    where = subprocess.run([str(python), "-c", "from digits import runs; print(runs.SHIPPED_DIR)"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    installed_copy = Path(where.stdout.strip()) / "model.onnx"
    assert installed_copy.is_relative_to(environment), "the base install reads its own copy of the shipped model"
    damaged = bytearray(installed_copy.read_bytes())
    damaged[100] ^= 0xFF
    installed_copy.write_bytes(bytes(damaged))
    two = subprocess.run([digits, "predict", str(picture), str(picture)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    line = assert_clean_error(two, f"the shipped model {installed_copy} fails its SHA-256 check")
    assert "reinstall digits" in line
    installed_copy.unlink()
    gone = subprocess.run([digits, "predict", str(picture)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert "build it with `python scripts/ship_model.py`" in assert_clean_error(gone, "no trained model found")

    restored = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps",
                               f"{REPO}[api]"], capture_output=True, text=True, timeout=900)
    assert restored.returncode == 0, restored.stderr[-3000:]
    with_api = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{REPO}[api]"], capture_output=True,
                              text=True, timeout=900)
    assert with_api.returncode == 0, with_api.stderr[-3000:]
    serve_with_the_shipped_model(environment, tmp_path)


def serve_with_the_shipped_model(environment: Path, tmp_path: Path) -> None:
    """`pip install '.[api]'` (no TensorFlow), then `digits serve` with no run: it serves the shipped model."""
    import base64
    import socket
    import time
    import urllib.request

    packages = subprocess.run([str(environment / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                              capture_output=True, text=True, timeout=120).stdout.lower()
    assert "\nfastapi" in "\n" + packages and "\ntensorflow" not in "\n" + packages
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    server = subprocess.Popen([str(environment / "bin" / "digits"), "serve", "--port", str(port)], cwd=tmp_path,
                              stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              env={key: value for key, value in os.environ.items() if not key.startswith("DIGITS_")})
    try:
        deadline = time.time() + 120
        while True:
            assert server.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        picture = base64.b64encode(seven(tmp_path / "served.png").read_bytes()).decode()
        body = json.dumps({"image": picture}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            reading = json.loads(answer.read())["predictions"][0]
        assert reading["label"] == "7", reading
        assert "Model: the shipped model digits-reader" in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
