"""`digits predict [RUN] FILE...`: digits and numbers from real image files, and every bad file."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from digits import data

pytestmark = pytest.mark.slow


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
    expected = {"first.png": str(y[0]), "second.jpg": str(y[1]), "number.png": "".join(str(y[i]) for i in (3, 2, 1))}
    return folder, expected


def test_files_are_read_and_bad_ones_reported_without_stopping(cnn_fast_run, pictures, tmp_path):
    folder, expected = pictures
    names = ["first.png", "second.jpg", "number.png", "blank.png", "notes.png", "empty.jpg"]
    plot = tmp_path / "files.png"
    result = run_cli("predict", str(cnn_fast_run), *[str(folder / name) for name in names], "--json",
                     "--plot", str(plot))
    assert result.returncode == 1  # some files failed...
    report = {entry["file"].rsplit("/", 1)[-1]: entry for entry in json.loads(result.stdout)["results"]}
    assert set(report) == set(names)  # ...but every file was processed
    assert report["first.png"]["digit"] == expected["first.png"] and report["first.png"]["inverted"] is True
    assert report["second.jpg"]["digit"] == expected["second.jpg"]
    assert report["first.png"]["top3"][0]["class"] == report["first.png"]["digit"]
    assert report["number.png"]["kind"] == "number" and report["number.png"]["number"] == expected["number.png"]
    assert len(report["number.png"]["digits"]) == 3
    assert report["blank.png"]["ok"] and report["blank.png"]["ink_found"] is False
    for bad in ("notes.png", "empty.jpg"):
        assert not report[bad]["ok"] and bad in report[bad]["error"]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2 and "Traceback" not in result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_output_marks_uncertain_and_no_digit(cnn_fast_run, pictures):
    folder, expected = pictures
    result = run_cli("predict", str(cnn_fast_run), str(folder / "first.png"), str(folder / "blank.png"),
                     "--uncertain-below", "0.999")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{folder / 'first.png'}: {expected['first.png']} (") and "(uncertain)" in lines[0]
    assert lines[1].endswith("blank.png: no digit found")


def test_mode_digit_reads_one_digit_and_directories_are_refused(cnn_fast_run, pictures):
    folder, _ = pictures
    result = run_cli("predict", str(cnn_fast_run), str(folder / "first.png"), str(folder), "--mode", "digit")
    assert result.returncode == 1
    assert "is a directory" in result.stderr and "Traceback" not in result.stderr


def test_bad_threshold_is_one_line(cnn_fast_run, pictures):
    folder, _ = pictures
    result = run_cli("predict", str(cnn_fast_run), str(folder / "first.png"), "--uncertain-below", "2")
    assert result.returncode == 1 and "--uncertain-below must be between 0 and 1" in result.stderr
