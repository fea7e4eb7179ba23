"""The `digits` command as a user runs it: subprocesses, real files, one-line errors; `digits predict [RUN]
FILE...` reading digits and numbers from real image files, and every bad file."""

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import assert_clean_error, run_cli, save_heic
from digits import data

PNG = b"\x89PNG\r\n\x1a\n"


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict"):
        assert command in result.stdout
    assert "(default: 32)" in run_cli("train", "--help").stdout


def test_train_with_config_file_and_overrides_then_retrain_from_the_run_config(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"epochs": 3, "limit": 1000, "seed": 5, "model_args": {"hidden_units": 64}}))
    result = run_cli("train", "--config", str(recipe), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "Test accuracy: 0." in result.stdout
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["epochs"], saved["limit"], saved["seed"], saved["model_args"]) == (1, 1000, 5, {"hidden_units": 64})
    again = run_cli("train", "--config", str(tmp_path / "run" / "config.json"), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    first = json.loads((tmp_path / "run" / "metrics.json").read_text())
    second = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert first["test_accuracy"] == second["test_accuracy"]  # same config, same seed, same model


def test_predict_json_and_plot(tiny_run, tmp_path):
    plot = tmp_path / "grid.png"
    result = run_cli("predict", str(tiny_run), "--samples", "5", "--json", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["predictions"]) == 5 and report["plot"] == str(plot)
    assert report["model"] == str(tiny_run) and "run" not in report
    for row in report["predictions"]:
        assert row["predicted"] == row["top3"][0]["label"] == str(row["top3"][0]["digit"])
        assert all(set(entry) == {"digit", "label", "probability"} for entry in row["top3"])
        assert row["correct"] == (row["predicted"] == row["true"])
        assert 0 < row["confidence"] <= 1
    assert plot.read_bytes()[:8] == PNG


def test_predict_headless_saves_into_the_run_and_says_where(tiny_run, tmp_path):
    copy = tmp_path / "runs" / "only"
    shutil.copytree(tiny_run, copy)
    result = run_cli("predict", "--samples", "4", cwd=tmp_path)  # latest run under ./runs
    assert result.returncode == 0, result.stderr
    assert f"Saved the figure to {copy.relative_to(tmp_path)}/predictions.png" in result.stdout
    assert (copy / "predictions.png").read_bytes()[:8] == PNG


def test_evaluate_writes_the_report(tiny_run, tmp_path):
    out = tmp_path / "report"
    result = run_cli("evaluate", str(tiny_run), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert f"Test accuracy: {metrics['test_accuracy']:.4f}" in result.stdout
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-4)
    matrix = json.loads((out / "confusion_matrix.json").read_text())["matrix"]
    assert sum(map(sum, matrix)) == 10000
    assert (out / "confusion_matrix.png").read_bytes()[:8] == PNG
    assert (out / "mistakes.png").read_bytes()[:8] == PNG
    assert f"Expected calibration error (15 bins): {evaluation['ece']:.4f}" in result.stdout
    assert (out / "reliability.png").read_bytes()[:8] == PNG and f"Wrote reliability png: {out}" in result.stdout


@pytest.mark.parametrize("args, fragments", [
    (["train", "--model", "transformer"], ["unknown model 'transformer'", "mlp"]),
    (["train", "--dataset", "cifar10"], ["unknown dataset 'cifar10'", "fashion-mnist"]),
    (["train", "--epochs", "0"], ["epochs must be at least 1"]),
    (["train", "--epochs", "-2"], ["epochs must be at least 1"]),
    (["train", "--batch-size", "0"], ["batch_size must be at least 1"]),
    (["predict", "does-not-exist"], ["does-not-exist does not exist"]),
    (["export", "--format", "onnx", "--out", "x.onnx"], ["no trained model found"]),
    (["predict", "--samples", "0"], ["--samples must be at least 1"]),
])
def test_bad_input_gets_one_clear_line(tmp_path, args, fragments):
    assert_clean_error(run_cli(*args, cwd=tmp_path), *fragments)


@pytest.mark.parametrize("text, fragments", [
    ('{"epochs": 2, "dropout": 0.5}', ["unknown config key(s) 'dropout'"]),
    ('{"epochs": "2"}', ["'epochs' must be int, got str"]),
    ('{"epochs": 2', ["is not valid JSON"]),
])
def test_bad_config_files(tmp_path, text, fragments):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert_clean_error(run_cli("train", "--config", str(path), cwd=tmp_path), "bad.json", *fragments)


def test_half_written_run_directory(tiny_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "metrics.json").unlink()
    assert_clean_error(run_cli("predict", str(broken)), "incomplete", "missing metrics.json")


def test_corrupt_data_file_is_refused_and_nothing_is_written(tmp_path):
    from digits import data

    shipped = data.SHIPPED_DIR / "mnist"
    bad = tmp_path / "data"
    shutil.copytree(shipped, bad)
    raw = (bad / "train-labels-idx1-ubyte.gz").read_bytes()
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    result = run_cli("train", "--data-dir", str(bad), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert_clean_error(result, "train-labels-idx1-ubyte.gz", "damaged gzip")
    assert not (tmp_path / "run").exists()


def test_existing_out_is_refused_and_kept(tiny_run):
    before = (tiny_run / "metrics.json").read_bytes()
    assert_clean_error(run_cli("train", "--out", str(tiny_run), "--epochs", "1"), "already exists")
    assert (tiny_run / "metrics.json").read_bytes() == before


# ---------------------------------------------------------------- digits predict FILE...


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Test digits as people hand them in: dark ink on white, enlarged, as PNG and JPEG; a number; bad files."""
    folder = tmp_path_factory.mktemp("pictures")
    test = data.load_dataset("mnist")
    x, y = test.x_test, test.y_test

    def paper(array, size):
        return Image.fromarray(255 - array).resize(size, Image.BICUBIC)

    paper(x[0], (220, 220)).save(folder / "first.png")
    paper(x[1], (300, 300)).convert("RGB").save(folder / "second.jpg", quality=80)
    paper(np.concatenate([x[i] for i in (3, 2, 1)], axis=1), (420, 140)).save(folder / "number.png")
    Image.new("L", (120, 90), 255).save(folder / "blank.png")
    (folder / "notes.png").write_text("not a picture")
    (folder / "empty.jpg").write_bytes(b"")
    expected = {"first.png": int(y[0]), "second.jpg": int(y[1]), "number.png": "".join(str(y[i]) for i in (3, 2, 1))}
    return folder, expected


@pytest.mark.slow
def test_files_are_read_and_bad_ones_reported_without_stopping(cnn_fast_run, pictures, tmp_path):
    folder, expected = pictures
    names = ["first.png", "second.jpg", "number.png", "blank.png", "notes.png", "empty.jpg"]
    plot = tmp_path / "files.png"
    result = run_cli("predict", str(cnn_fast_run), *[str(folder / name) for name in names], "--json",
                     "--plot", str(plot))
    assert result.returncode == 1  # some files failed...
    output = json.loads(result.stdout)
    assert output["model"] == str(cnn_fast_run) and "run" not in output
    assert output["backend"] in ("onnx", "litert")  # a portable copy, never Keras unless asked for
    report = {entry["file"].rsplit("/", 1)[-1]: entry for entry in output["results"]}
    assert set(report) == set(names)  # ...but every file was processed
    first = report["first.png"]
    assert first["digit"] == expected["first.png"] and first["inverted"] is True
    assert first["label"] == str(expected["first.png"]) and first["kind"] == "digit"
    assert report["second.jpg"]["digit"] == expected["second.jpg"]
    assert report["second.jpg"]["label"] == str(expected["second.jpg"])
    assert first["top3"][0]["label"] == first["label"] and first["top3"][0]["digit"] == first["digit"]
    assert all(set(entry) == {"digit", "label", "probability"} for entry in first["top3"])
    assert len(first["digits"]) == 1 and first["digits"][0]["digit"] == first["digit"]
    assert report["number.png"]["kind"] == "number" and report["number.png"]["number"] == expected["number.png"]
    assert len(report["number.png"]["digits"]) == 3 and report["number.png"]["digit"] is None
    assert [digit["label"] for digit in report["number.png"]["digits"]] == list(expected["number.png"])
    assert all(digit["not_a_digit"] is False for name in ("first.png", "second.jpg", "number.png")
               for digit in report[name]["digits"])
    blank = report["blank.png"]
    assert blank["ok"] and blank["kind"] == "no_ink" and blank["ink_found"] is False and blank["number"] is None
    assert blank["digit"] is None and blank["uncertain"] is False and blank["digits"] == []
    for bad in ("notes.png", "empty.jpg"):
        assert not report[bad]["ok"] and bad in report[bad]["error"]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2 and "Traceback" not in result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_text_output_marks_uncertain_and_no_digit(cnn_fast_run, pictures):
    folder, expected = pictures
    result = run_cli("predict", str(cnn_fast_run), str(folder / "first.png"), str(folder / "blank.png"),
                     "--uncertain-below", "1.0")  # any confidence short of 1: however sure the model is
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{folder / 'first.png'}: {expected['first.png']} (") and "(uncertain)" in lines[0]
    assert lines[1].endswith("blank.png: no digit found")


@pytest.mark.slow
def test_numbers_on_two_lines_print_on_one_line_of_output(cnn_fast_run, tmp_path):
    """Two numbers written one under the other: one line of output naming both and how many lines, JSON whose
    number breaks between them; a folder's other pictures are still one line each."""
    test = data.load_dataset("mnist")
    x, y = test.x_test, test.y_test
    top, bottom = np.concatenate([x[i] for i in (3, 2, 1)], axis=1), np.concatenate([x[0], x[4]], axis=1)
    page = np.zeros((84, 84), np.uint8)
    page[:28], page[56:, :56] = top, bottom
    Image.fromarray(255 - page).resize((336, 336), Image.BICUBIC).save(tmp_path / "lines.png")
    truth = ["".join(str(y[i]) for i in (3, 2, 1)), "".join(str(y[i]) for i in (0, 4))]
    result = run_cli("predict", str(cnn_fast_run), str(tmp_path / "lines.png"))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{tmp_path / 'lines.png'}: number {truth[0]} | {truth[1]} (2 lines; "), line
    as_json = run_cli("predict", str(cnn_fast_run), str(tmp_path / "lines.png"), "--json")
    (found,) = json.loads(as_json.stdout)["results"]
    assert found["number"] == "\n".join(truth) and [digit["line"] for digit in found["digits"]] == [0, 0, 0, 1, 1]


@pytest.mark.slow
def test_every_page_of_a_multi_page_file_is_read(cnn_fast_run, tmp_path):
    """A multi-page TIFF (a scanner's) and an animated GIF were read as their first page, the others dropped
    silently. Each page is read and answered on a line of its own naming it, and in JSON with its page and how many
    pages; a file of one page is answered as before; the figure draws each page."""
    test = data.load_dataset("mnist")
    x, y = test.x_test, test.y_test
    pages = [Image.fromarray(255 - x[index]).resize((140, 140), Image.BICUBIC) for index in range(3)]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    pages[0].save(tmp_path / "drawn.gif", save_all=True, append_images=pages[1:2], duration=200)
    pages[2].save(tmp_path / "one.png")
    files = [str(tmp_path / name) for name in ("scan.tif", "drawn.gif", "one.png")]
    result = run_cli("predict", str(cnn_fast_run), *files, "--plot", str(tmp_path / "figure.png"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()[:6]
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{files[0]} (page 1 of 3)", f"{files[0]} (page 2 of 3)", f"{files[0]} (page 3 of 3)",
        f"{files[1]} (page 1 of 2)", f"{files[1]} (page 2 of 2)", files[2]]
    assert [line.split(": ", 1)[1].split(" ")[0] for line in lines] == [str(y[i]) for i in (0, 1, 2, 0, 1, 2)]
    assert "Read 6 pictures" in result.stderr and (tmp_path / "figure.png").exists()
    found = json.loads(run_cli("predict", str(cnn_fast_run), *files, "--json").stdout)["results"]
    assert [(entry.get("page"), entry.get("pages"), entry["digit"]) for entry in found] == [
        (1, 3, y[0]), (2, 3, y[1]), (3, 3, y[2]), (1, 2, y[0]), (2, 2, y[1]), (None, None, y[2])]


@pytest.mark.slow
def test_reject_below_answers_not_a_digit_in_text_and_json(cnn_fast_run, pictures):
    """--reject-below 1.0 refuses any picture whose confidence is below 100% (so this does not depend on the
    model's quality); 0 turns refusal off; the stored threshold is the default."""
    folder, expected = pictures
    files = [str(folder / name) for name in ("first.png", "number.png", "blank.png")]
    text = run_cli("predict", str(cnn_fast_run), *files, "--reject-below", "1.0")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"{files[0]}: not a digit (closest: {expected['first.png']} at ") and "%)" in lines[0]
    assert lines[1] == f"{files[1]}: not a digit"  # auto mode: no piece of it is a digit
    assert lines[2] == f"{files[2]}: no digit found"
    as_json = run_cli("predict", str(cnn_fast_run), *files, "--reject-below", "1", "--json")
    assert as_json.returncode == 0, as_json.stderr
    first, number, blank = json.loads(as_json.stdout)["results"]
    assert first["ok"] and first["kind"] == "not_a_digit" and first["ink_found"] is True
    assert first["digit"] is None and first["label"] is None and first["uncertain"] is False
    assert [digit["not_a_digit"] for digit in first["digits"]] == [True]
    assert first["digits"][0]["digit"] == expected["first.png"] and first["confidence"] < 1.0
    assert first["top3"][0]["digit"] == expected["first.png"] and len(first["probabilities"]) == 10
    assert number["kind"] == "not_a_digit" and number["number"] is None
    assert [digit["not_a_digit"] for digit in number["digits"]] == [True] * 3
    assert blank["kind"] == "no_ink"
    forced = json.loads(run_cli("predict", str(cnn_fast_run), files[1], "--reject-below", "1", "--mode", "number",
                                "--json").stdout)["results"][0]
    assert forced["kind"] == "number" and forced["number"] == "???" and forced["uncertain"] is True
    off = json.loads(run_cli("predict", str(cnn_fast_run), *files[:2], "--reject-below", "0", "--json").stdout)
    assert [row["kind"] for row in off["results"]] == ["digit", "number"]
    assert off["results"][0]["digit"] == expected["first.png"] and off["results"][1]["number"] == expected["number.png"]
    assert_clean_error(run_cli("predict", str(cnn_fast_run), files[0], "--reject-below", "1.5"),
                       "--reject-below must be between 0 and 1")


@pytest.mark.slow
def test_a_folder_is_read_as_its_pictures_and_a_folder_without_any_is_one_line(cnn_fast_run, pictures, tmp_path):
    folder, expected = pictures
    scans = tmp_path / "scans"
    (scans / "older").mkdir(parents=True)
    shutil.copy(folder / "second.jpg", scans / "b.JPG")
    shutil.copy(folder / "first.png", scans / "a.png")
    shutil.copy(folder / "first.png", scans / "older" / "c.png")  # a subfolder: left out
    shutil.copy(folder / "first.png", scans / ".hidden.png")  # a hidden file: left out
    save_heic(Image.open(folder / "first.png"), scans / "c.heic")  # an iPhone's photo
    (scans / "notes.txt").write_text("not a picture's name")  # left out
    (tmp_path / "empty").mkdir()
    named = [str(folder / "first.png"), str(scans), str(tmp_path / "empty"), str(cnn_fast_run)]
    result = run_cli("predict", str(cnn_fast_run), *named, "--mode", "digit", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    read = json.loads(result.stdout)["results"]
    assert [row["file"] for row in read] == [named[0], *(str(scans / name) for name in ("a.png", "b.JPG", "c.heic")),
                                             *named[2:]]
    assert [row.get("digit") for row in read[:4]] == [expected["first.png"], expected["first.png"],
                                                      expected["second.jpg"], expected["first.png"]]
    assert not read[4]["ok"] and "no pictures in it" in read[4]["error"]
    assert not read[5]["ok"] and "is a model, not a picture; name the model first" in read[5]["error"]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2 and "empty is a folder with no pictures" in errors[0], result.stderr
    assert "Read 6 pictures: 4 digits, 2 unreadable" in result.stderr
    as_text = run_cli("predict", str(cnn_fast_run), str(scans), "--mode", "digit")
    assert as_text.returncode == 0, as_text.stderr
    lines = as_text.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"{scans / 'a.png'}: {expected['first.png']} (")
    assert lines[1].startswith(f"{scans / 'b.JPG'}: {expected['second.jpg']} (")
    assert lines[2].startswith(f"{scans / 'c.heic'}: {expected['first.png']} (")


@pytest.mark.slow
def test_bad_threshold_is_one_line(cnn_fast_run, pictures):
    folder, _ = pictures
    result = run_cli("predict", str(cnn_fast_run), str(folder / "first.png"), "--uncertain-below", "2")
    assert result.returncode == 1 and "--uncertain-below must be between 0 and 1" in result.stderr


@pytest.mark.parametrize("hidden, command, extra", [
    ("tensorflow", ["train", "--epochs", "1", "--limit", "500"], "cpu"),
    ("onnx", ["export", "RUN", "--format", "onnx", "--out", "OUT/model.onnx"], "onnx"),
    ("tf2onnx", ["export", "RUN", "--format", "onnx", "--out", "OUT/model.onnx"], "onnx"),
    ("optuna", ["tune", "--trials", "1", "--epochs", "1", "--limit", "500"], "tune"),
    ("fastapi", ["serve", "RUN"], "api"),
    ("uvicorn", ["serve", "RUN"], "api"),
    ("onnxruntime", ["predict", "RUN", "--backend", "onnx", "--samples", "2", "--plot", "OUT/grid.png"], None),
    ("ai_edge_litert", ["predict", "RUN", "--backend", "litert", "--samples", "2", "--plot", "OUT/grid.png"], "litert"),
])
def test_a_missing_extra_is_one_line_naming_it(tiny_run, tmp_path, hidden, command, extra):
    """Each optional dependency hidden in turn (None in sys.modules makes its import fail as if absent)."""
    command = [str(tiny_run) if part == "RUN" else part.replace("OUT", str(tmp_path)) for part in command]
    script = (f"import sys; sys.modules[{hidden!r}] = None\n"
              f"from digits.cli import main\nsys.exit(main({command!r}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path)
    line = assert_clean_error(result, f"pip install 'digits[{extra}]'" if extra else f"pip install '{hidden}'")
    assert "is not installed" in line or f"needs the {hidden} package" in line, line
    assert "it/s" not in result.stderr and "trial/s" not in result.stderr  # no progress bar before the error


def test_the_plot_shows_a_colour_photo_in_colour(tiny_run, tmp_path):
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (120, 120), (250, 250, 245))
    ImageDraw.Draw(photo).line([(30, 20), (90, 20), (50, 100)], fill=(220, 20, 20), width=9)  # red ink
    photo.save(tmp_path / "red.png")
    figure = tmp_path / "figure.png"
    result = run_cli("predict", str(tiny_run), str(tmp_path / "red.png"), "--plot", str(figure), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    drawn = np.asarray(Image.open(figure).convert("RGB"), np.int32)
    red = (drawn[..., 0] > 180) & (drawn[..., 1] < 80) & (drawn[..., 2] < 80)
    assert red.sum() > 100  # the red strokes of the original, not a gray rendering of them


def test_a_picture_whose_reading_fails_costs_only_its_own_answer(tiny_run, tmp_path, monkeypatch, capsys):
    """Issue 15: one picture crashed the reading path and `digits predict` answered for none of the files. A file
    whose reading fails unexpectedly gets its own one-line error naming the failure and that it is a bug; the
    other files are read; exit status 1. No real picture fails any more, so the failure is injected."""
    from digits import cli, reading

    files = []
    for name in ("first.png", "bug.png", "last.png"):
        Image.fromarray(np.full((40, 40), 255, np.uint8)).save(tmp_path / name)
        files.append(str(tmp_path / name))
    real_read = reading.read

    def failing_read(source, *args, name=None, **kwargs):
        if name and name.endswith("bug.png"):
            raise IndexError("index 0 is out of bounds for axis 0 with size 0")
        return real_read(source, *args, name=name, **kwargs)

    monkeypatch.setattr(reading, "read", failing_read)
    assert cli.main(["predict", str(tiny_run), *files, "--json"]) == 1
    out, err = capsys.readouterr()
    results = {Path(entry["file"]).name: entry for entry in json.loads(out)["results"]}
    assert results["first.png"]["ok"] and results["last.png"]["ok"] and results["last.png"]["kind"] == "no_ink"
    assert set(results["bug.png"]) == {"file", "ok", "error"} and results["bug.png"]["ok"] is False
    for text in (results["bug.png"]["error"], err):
        assert "bug.png" in text and "IndexError: index 0 is out of bounds" in text and "bug" in text
    assert len([line for line in err.splitlines() if "error:" in line]) == 1 and "Traceback" not in err
    assert cli.main(["predict", str(tiny_run), *files]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()[-3:]
    assert lines[0].endswith("first.png: no digit found") and lines[2].endswith("last.png: no digit found")
    assert "bug.png: error: reading" in lines[1] and "please report it" in lines[1]


def _keras_only(run):
    for name in ("model.onnx", "model.tflite"):  # a run read with Keras alone (trained before portable copies)
        (run / name).unlink(missing_ok=True)


def _set_class_names(run, value):
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["dataset"]["class_names"] = value
    (run / "metrics.json").write_text(json.dumps(metrics))


DAMAGES = {  # what a disk, an editor or a half-finished copy can do to a run, and the words of its one line
    "truncated model.keras": (lambda run: (_keras_only(run), (run / "model.keras").write_bytes(
        (run / "model.keras").read_bytes()[:5000])), "model.keras is not a readable Keras model"),
    "empty model.keras": (lambda run: (_keras_only(run), (run / "model.keras").write_bytes(b"")),
                          "model.keras is not a readable Keras model"),
    "garbage config.json": (lambda run: (run / "config.json").write_bytes(b"\x00garbage{"), "config.json"),
    "garbage metrics.json": (lambda run: (run / "metrics.json").write_text("{\"dataset\": "), "metrics.json"),
    "metrics.json is []": (lambda run: (run / "metrics.json").write_text("[]"), "metrics.json"),
    "class_names is 5": (lambda run: _set_class_names(run, 5), "class_names"),
    "config.json is [1,2,3]": (lambda run: (run / "config.json").write_text("[1, 2, 3]"), "config.json"),
}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_run_is_one_line_for_every_command(tiny_run, tmp_path, damage):
    run = tmp_path / "damaged"
    shutil.copytree(tiny_run, run)
    spoil, fragment = DAMAGES[damage]
    spoil(run)
    picture = tmp_path / "blank.png"
    Image.new("L", (28, 28), 0).save(picture)
    assert_clean_error(run_cli("predict", str(run), str(picture), cwd=tmp_path), str(run), fragment)
    assert_clean_error(run_cli("evaluate", str(run), cwd=tmp_path), str(run), fragment)
    for workers in ("1", "2"):  # checked before any worker starts: exit 1 at once, never a traceback or 0
        served = run_cli("serve", str(run), "--port", str(_free_port()), "--workers", workers, cwd=tmp_path,
                         timeout=120)
        assert_clean_error(served, str(run), fragment)


def test_a_damaged_portable_copy_is_skipped_when_another_backend_reads_the_run(tiny_run, tmp_path):
    run = tmp_path / "damaged-onnx"
    shutil.copytree(tiny_run, run)
    (run / "model.onnx").write_bytes(b"garbage" * 10)
    picture = tmp_path / "blank.png"
    Image.new("L", (28, 28), 0).save(picture)
    read = run_cli("predict", str(run), str(picture), "--json", cwd=tmp_path)
    assert read.returncode == 0 and "Traceback" not in read.stderr, read.stderr
    [warning] = [line for line in read.stderr.splitlines() if "warning:" in line]
    assert "model.onnx is not a readable ONNX model" in warning and "reading with litert" in warning
    assert json.loads(read.stdout)


def test_output_cut_short_by_its_reader_stops_quietly(tmp_path):
    """`digits predict ... | head`: the reader closes the pipe after a few bytes; digits stops without a traceback
    or a broken-pipe error, with the shell's code for a tool stopped by SIGPIPE. The JSON of 100 pictures (about
    200 KB) is more than a pipe holds, so digits is still writing when the pipe closes."""

    picture = tmp_path / "one.png"
    ink = np.zeros((28, 28), np.uint8)
    ink[4:24, 13:15] = 255
    Image.fromarray(ink).save(picture)
    process = subprocess.Popen([sys.executable, "-m", "digits.cli", "predict", "--json", *[str(picture)] * 100],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout.read(100).startswith(b"{")
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141, errors
    assert "Traceback" not in errors and "Broken pipe" not in errors and "error" not in errors, errors


def test_a_picture_piped_in_is_read_as_dash_and_a_terminal_is_one_line(tmp_path):
    """`cat photo.png | digits predict -`, beside a file; bytes that are no picture, a terminal on standard input
    (nothing piped: reading would wait for the keyboard) and a closed one each get one line and exit 1. The shipped
    model reads."""

    test = data.load_dataset("mnist")
    buffer = tmp_path / "seven.png"
    Image.fromarray(255 - test.x_test[0]).resize((140, 140), Image.BICUBIC).save(buffer)
    command = [sys.executable, "-m", "digits.cli", "predict", "-", str(buffer), "--json"]
    piped = subprocess.run(command, input=buffer.read_bytes(), capture_output=True, cwd=tmp_path, timeout=300)
    assert piped.returncode == 0, piped.stderr.decode()
    first, second = json.loads(piped.stdout)["results"]
    assert first["file"] == "-" and first["digit"] == second["digit"] == int(test.y_test[0])
    junk = subprocess.run(command[:-2], input="hello", capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert_clean_error(junk, "standard input is not an image")
    controller, terminal = pty.openpty()
    try:
        typed = subprocess.run(command[:-2], stdin=terminal, capture_output=True, text=True, cwd=tmp_path,
                               timeout=300)
    finally:
        os.close(terminal)
        os.close(controller)
    assert_clean_error(typed, "standard input, which is a terminal here; pipe one in")
    closed = subprocess.run(command[:-2], preexec_fn=lambda: os.close(0), capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert_clean_error(closed, "standard input, which is closed here; pipe one in")


def test_workers_read_a_folder_as_one_process_does(tmp_path):
    """`--workers 2`: the same readings, in the same order, as in one process, a bad file and a picture piped in
    among them (standard input is read by the parent); `--workers 0` is one line. The shipped model reads."""

    test = data.load_dataset("mnist")
    folder = tmp_path / "scans"
    folder.mkdir()
    for index in range(5):
        Image.fromarray(255 - test.x_test[index]).resize((112, 112), Image.BICUBIC).save(folder / f"{index}.png")
    (folder / "5.png").write_text("not a picture")
    Image.fromarray(255 - np.concatenate([test.x_test[i] for i in (7, 8)], 1)).save(folder / "6.png")
    piped = (folder / "0.png").read_bytes()

    def read(*workers: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "digits.cli", "predict", str(folder), "-", "--json", *workers],
                              input=piped, capture_output=True, cwd=tmp_path, timeout=600)

    alone, shared = read(), read("--workers", "2")
    assert alone.returncode == shared.returncode == 1, shared.stderr.decode()
    assert json.loads(alone.stdout)["results"] == json.loads(shared.stdout)["results"]
    results = json.loads(shared.stdout)["results"]
    assert [row["file"] for row in results] == [str(folder / f"{index}.png") for index in range(7)] + ["-"]
    assert [row.get("digit") for row in results[:5]] == [int(label) for label in test.y_test[:5]]
    assert not results[5]["ok"] and results[6]["number"] == "".join(str(test.y_test[i]) for i in (7, 8))
    assert results[7]["digit"] == int(test.y_test[0])
    assert_clean_error(run_cli("predict", str(folder), "--workers", "0", cwd=tmp_path), "--workers must be at least 1")


def test_a_figure_of_many_pictures_draws_the_first_ones_and_says_so(tmp_path, monkeypatch, capsys):
    """`--plot` over a big folder draws the first `PLOT_ROWS` pictures (a figure of thousands would be too tall to
    open) and says how many of how many; every picture is still read. The shipped model reads, in this process."""
    from digits import cli, plots

    test = data.load_dataset("mnist")
    for index in range(5):
        Image.fromarray(255 - test.x_test[index]).resize((56, 56)).save(tmp_path / f"{index}.png")
    drawn = []
    figure = plots.file_predictions_figure
    monkeypatch.setattr(plots, "file_predictions_figure", lambda rows: drawn.append(len(rows)) or figure(rows))
    monkeypatch.setattr(cli, "PLOT_ROWS", 3)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["predict", str(tmp_path), "--plot", str(tmp_path / "figure.png")]) == 0
    out = capsys.readouterr().out
    assert drawn == [3] and (tmp_path / "figure.png").read_bytes()[:8] == PNG
    assert "Saved the figure to" in out and "(the first 3 of 5 pictures)" in out
    assert len([line for line in out.splitlines() if ".png: " in line]) == 5
