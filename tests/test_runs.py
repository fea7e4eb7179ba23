"""The run directory: what a finished run holds, finding the latest, refusing incomplete or damaged ones,
turning a name into a run or model file, reading an exported file's sidecar, and committing atomically."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from digits import runs


def test_a_finished_run_holds_its_portable_copies(tiny_run):
    names = {path.name for path in tiny_run.iterdir()}
    assert {*runs.RUN_FILES, "model.onnx", "model.tflite"} <= names
    assert not names & {*runs.LEFTOVERS, "backup", "exports"}
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["model_files"] == ["keras", "litert", "onnx"]
    for backend, name in runs.PORTABLE.items():
        assert backend in metrics["model_files"] and (tiny_run / name).stat().st_size > 0
    assert runs.model_files(tiny_run) == {"onnx": tiny_run / "model.onnx", "litert": tiny_run / "model.tflite",
                                          "keras": tiny_run / "model.keras"}


def test_latest_run_and_incomplete_runs(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="no trained model found"):
        runs.latest_run(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (tmp_path / ".partial-123").mkdir()  # work in progress is never "latest"
    assert runs.latest_run(tmp_path) == copy
    (copy / "metrics.json").unlink()
    with pytest.raises(ValueError, match=r"incomplete \(missing metrics.json\)"):
        runs.check_run(copy)
    with pytest.raises(ValueError, match="does not exist"):
        runs.check_run(tmp_path / "nowhere")


def test_the_shipped_models_directory_is_named_as_such_not_as_an_unfinished_run():
    """`digits evaluate src/digits/shipped` (or export, calibrate...): not "its training did not finish"."""
    with pytest.raises(ValueError, match="holds the shipped model, not a run directory; pass its model.onnx") as error:
        runs.check_run(runs.SHIPPED_DIR)
    assert "did not finish" not in str(error.value) and "scripts/ship_model.py" in str(error.value)


def test_latest_is_the_most_recently_finished(tiny_run, tmp_path, monkeypatch):
    older, newer = tmp_path / "older", tmp_path / "newer"
    shutil.copytree(tiny_run, older)
    shutil.copytree(tiny_run, newer)
    os.utime(older / "metrics.json", (1_000_000_000, 1_000_000_000))
    os.utime(newer / "metrics.json", (2_000_000_000, 2_000_000_000))
    hidden = tmp_path / ".partial-abc"
    shutil.copytree(tiny_run, hidden)  # even a complete-looking work-in-progress directory is skipped
    os.utime(hidden / "metrics.json", (3_000_000_000, 3_000_000_000))
    assert runs.latest_run(tmp_path) == newer
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(tmp_path))
    assert runs.runs_root() == tmp_path and runs.latest_run() == newer
    assert runs.resolve() == newer
    monkeypatch.delenv("DIGITS_RUNS_DIR")
    assert str(runs.runs_root()) == "runs"


def test_check_run_names_what_is_wrong(tiny_run, tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("hello")
    with pytest.raises(ValueError, match="is a file, not a run directory"):
        runs.check_run(afile)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError) as caught:
        runs.check_run(empty)
    assert "missing model.keras, config.json, metrics.json, history.json" in str(caught.value)
    assert "run the same `digits train` command again to resume it" in str(caught.value)
    assert runs.check_run(tiny_run) == tiny_run


def test_resolve_and_resolve_run(tiny_run, tmp_path, no_shipped_model):
    root = tmp_path / "runs"
    copy = root / "only"
    shutil.copytree(tiny_run, copy)
    assert runs.resolve(None, root) == copy  # nothing named: the latest run
    assert runs.resolve(str(copy)) == copy
    assert runs.resolve_run(None, root) == copy and runs.resolve_run(copy) == copy
    exported = tmp_path / "model.onnx"
    shutil.copy(tiny_run / "model.onnx", exported)
    assert runs.resolve(exported) == exported  # an exported model file is a model too...
    with pytest.raises(ValueError, match="is a model file; this command needs the run directory it was exported"):
        runs.resolve_run(exported)  # ...but not a run directory
    picture = tmp_path / "digit.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"is not a model file digits can load; pass a run directory or a "
                                         r"\.keras, \.onnx, \.tflite file"):
        runs.resolve(picture)
    with pytest.raises(ValueError, match="does not exist"):
        runs.resolve(tmp_path / "missing")
    with pytest.raises(ValueError, match="no trained model found"):
        runs.resolve(None, tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="does not exist; pass a run directory or an exported model file"):
        runs.check_model_file(tmp_path / "gone.onnx")


def test_is_model(tiny_run, tmp_path):
    assert runs.is_model(tiny_run)
    for name in ("model.keras", "model.onnx", "model.tflite", "not-written-yet.onnx"):
        assert runs.is_model(tmp_path / name), name  # by suffix: `digits predict m.onnx` means a model
    (tmp_path / "pictures").mkdir()
    for path in (tmp_path / "digit.png", tmp_path / "scan.jpg", tmp_path / "pictures", tmp_path / "notes.json"):
        assert not runs.is_model(path), path


def test_load_info_of_a_run(tiny_run):
    info = runs.load_info(tiny_run)
    assert info.run_dir == tiny_run
    assert info.config == json.loads((tiny_run / "config.json").read_text())
    assert info.metrics == json.loads((tiny_run / "metrics.json").read_text())
    assert info.files == runs.model_files(tiny_run)
    assert info.class_names == [str(digit) for digit in range(10)]


def test_load_info_of_a_runs_own_model_file_is_the_runs(tiny_run):
    """RUN/model.onnx (a run's own portable copy) carries the run's recipe, metrics and calibration."""
    run = runs.load_info(tiny_run)
    assert 0 < run.metrics["calibration"]["reject_below"] < 1 and run.metrics["calibration"]["temperature"] > 0
    for name, backend in (("model.onnx", "onnx"), ("model.tflite", "litert"), ("model.keras", "keras")):
        info = runs.load_info(tiny_run / name)
        assert info.run_dir == tiny_run / name and info.files == {backend: tiny_run / name}
        assert info.config == run.config and info.metrics == run.metrics
        assert info.class_names == run.class_names


def test_load_info_of_an_exported_file_and_its_sidecar(tiny_run, tmp_path):
    exported = tmp_path / "letters.onnx"
    shutil.copy(tiny_run / "model.onnx", exported)
    bare = runs.load_info(exported)  # no sidecar: an MNIST model with digit names
    assert bare.run_dir == exported and bare.config == {} and bare.metrics == {"dataset": {"name": "mnist"}}
    assert bare.files == {"onnx": exported}
    assert bare.class_names == [str(digit) for digit in range(10)]
    names = list("abcdefghij")
    sidecar = {"format": "onnx", "test_accuracy": 0.91, "config": {"model": "mlp", "epochs": 1},
               "dataset": {"name": "letters", "class_names": names}}
    (tmp_path / "letters.onnx.json").write_text(json.dumps(sidecar))
    info = runs.load_info(exported)
    assert info.config == {"model": "mlp", "epochs": 1}
    assert info.metrics["dataset"] == sidecar["dataset"] and info.metrics["test_accuracy"] == 0.91
    assert info.class_names == names and info.files == {"onnx": exported}
    tflite = tmp_path / "copy.tflite"
    shutil.copy(tiny_run / "model.tflite", tflite)
    assert runs.load_info(tflite).files == {"litert": tflite}
    (tmp_path / "letters.onnx.json").write_text("{broken")
    with pytest.raises(ValueError, match="letters.onnx.json is unreadable or not valid JSON"):
        runs.load_info(exported)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    with pytest.raises(ValueError, match="not a model file digits can load"):
        runs.load_info(notes)


def test_class_names_fall_back_to_digits():
    assert runs.RunInfo(None, {}, {}).class_names == [str(digit) for digit in range(10)]
    assert runs.RunInfo(None, {}, {"dataset": {"name": "mnist"}}).class_names == [str(digit) for digit in range(10)]
    assert runs.RunInfo(None, {}, {"dataset": {"class_names": ["no", "yes"]}}).class_names == ["no", "yes"]


@pytest.mark.parametrize("content, fragment", [
    (b"{not json", "is unreadable or not valid JSON"),
    (b"", "is unreadable or not valid JSON"),
    (b"\xff\xfe\x00garbage", "is unreadable or not valid JSON"),
    (b"[1, 2, 3]", "holds list, not a JSON object"),
    (b'"text"', "holds str, not a JSON object"),
    (b"null", "holds NoneType, not a JSON object"),
])
def test_read_json_refuses_damaged_and_non_object_json(tmp_path, content, fragment):
    path = tmp_path / "metrics.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        runs.read_json(path)
    message = str(caught.value)
    assert fragment in message and str(path) in message and "the run is damaged: re-train it" in message
    assert "\n" not in message


def test_a_run_with_damaged_json_is_refused_by_load_info(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (copy / "metrics.json").write_text("[]")
    with pytest.raises(ValueError, match="metrics.json holds list, not a JSON object"):
        runs.load_info(copy)
    with pytest.raises(ValueError, match="is unreadable or not valid JSON"):
        runs.read_json(tmp_path / "missing.json")


def test_partial_dir_is_hidden_and_keyed():
    first = runs.partial_dir("runs", "config|out")
    assert first == runs.partial_dir("runs", "config|out")  # the same command finds the same one
    assert first.parent.name == "runs" and first.name.startswith(".partial-") and len(first.name) == 21
    assert runs.partial_dir("runs", "config|other") != first


def _partial(root):
    partial = root / ".partial-0123456789ab"
    (partial / "backup").mkdir(parents=True)
    (partial / "backup" / "checkpoint").write_text("state")
    (partial / "model.keras").write_bytes(b"weights")
    (partial / "model.onnx").write_bytes(b"graph")
    (partial / "config.json").write_text('{"model": "mlp"}')
    for leftover in runs.LEFTOVERS:
        (partial / leftover).write_text("scratch")
    return partial


def test_commit_finishes_and_renames_in_one_step(tmp_path):
    partial = _partial(tmp_path)
    run_dir = tmp_path / "nested" / "run"
    history, metrics = {"loss": [0.5, 0.4]}, {"test_accuracy": 0.9, "model_files": ["keras", "onnx"]}
    result = runs.commit(partial, run_dir, history, metrics, resumed_from_epoch=1)
    assert isinstance(result, runs.Run)
    assert (result.run_dir, result.history, result.metrics, result.resumed_from_epoch) == (run_dir, history, metrics, 1)
    assert not partial.exists()
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.json", "history.json", "metrics.json",
                                                                "model.keras", "model.onnx"]
    assert json.loads((run_dir / "history.json").read_text()) == history
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert runs.check_run(run_dir) == run_dir and runs.latest_run(tmp_path / "nested") == run_dir
    assert runs.model_files(run_dir) == {"onnx": run_dir / "model.onnx", "keras": run_dir / "model.keras"}


@pytest.mark.parametrize("missing", ["model.keras", "config.json"])
def test_commit_needs_the_model_saved_first(tmp_path, missing):
    partial = _partial(tmp_path)
    (partial / missing).unlink()
    before = sorted(path.name for path in partial.iterdir())
    with pytest.raises(ValueError, match=f"lacks {missing}; save the model before committing the run"):
        runs.commit(partial, tmp_path / "run", {}, {})
    assert not (tmp_path / "run").exists()
    assert sorted(path.name for path in partial.iterdir()) == before  # nothing written, nothing removed


def test_train_result_is_a_run():
    from digits import train

    assert train.TrainResult is runs.Run


def test_runs_imports_no_framework():
    code = ("import sys\n"
            "from digits import runs\n"
            "print(sorted(name for name in ('tensorflow', 'keras', 'onnxruntime', 'ai_edge_litert')"
            " if name in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("change, fragment", [
    ({"dataset": {"name": "mnist", "class_names": 5}}, "dataset.class_names should be a list"),
    ({"dataset": "mnist"}, "dataset.class_names should be a list"),
    ({"calibration": {"temperature": "hot"}}, "positive temperature"),
    ({"calibration": {"temperature": 0}}, "positive temperature"),
    ({"calibration": {"temperature": 1.5, "reject_below": "high"}}, "numeric reject_below"),
    ({"calibration": []}, "calibration should hold"),
    ({"calibration": {"temperature": 1.5, "reject_below": 0.5, "score": "entropy"}}, "neither 'energy' nor"),
    ({"calibration": {"temperature": 1.5, "reject_below": 0.5, "score": "energy"}}, "numeric energy_below"),
    ({"calibration": {"temperature": 1.5, "reject_below": 0.5, "score": "energy", "energy_below": 2.0,
                      "max_probability_below": None}}, "max_probability_below"),
])
def test_load_info_refuses_metrics_that_reading_would_trip_on(tiny_run, tmp_path, change, fragment):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text(json.dumps({**metrics, **change}))
    with pytest.raises(ValueError) as caught:
        runs.load_info(copy)
    assert fragment in str(caught.value) and str(copy / "metrics.json") in str(caught.value)
    assert "\n" not in str(caught.value)
