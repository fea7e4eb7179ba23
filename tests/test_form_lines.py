"""benchmarks/form_lines.py: each kind of picture holds the printed lines its name says, seeded; the command's JSON,
contact sheet and report section (with the shipped model, a few pictures)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from digits import data, images
from helpers import assert_clean_error, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import form_lines  # noqa: E402
import report  # noqa: E402


@pytest.fixture(scope="module")
def mnist():
    dataset = data.load_dataset("mnist")
    return dataset.x_test, dataset.y_test


def twins(name: str, mnist, index: int, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    """(gray photo of picture `index`, the same photo with its printed lines left out): the same draws both times."""
    x, y = mnist
    lined = images.load_gray(form_lines.picture(name, x, y, index, 0)[1])
    with monkeypatch.context() as patch:
        patch.setattr(form_lines, "line_coverage", lambda shape, *_: np.zeros(shape, np.float32))
        bare = images.load_gray(form_lines.picture(name, x, y, index, 0)[1])
    return lined, bare


def lines_and_ink(lined: np.ndarray, bare: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Where the printed lines darken the photo, and the pen's ink box."""
    ink, _, found = images.clean(bare)
    assert found
    return bare - lined > 0.08, images.bounds(ink >= 0.5)


def test_pictures_are_seeded_and_the_plain_one_is_real_images_photo(mnist):
    x, y = mnist
    for name in form_lines.SINGLE + form_lines.NUMBER:
        assert form_lines.picture(name, x, y, 3, 0) == form_lines.picture(name, x, y, 3, 0), name
        assert form_lines.picture(name, x, y, 3, 0) != form_lines.picture(name, x, y, 3, 1), name
    truth, photo = form_lines.picture("plain", x, y, 3, 0)
    import real_images

    assert truth == str(int(y[3])) and photo == real_images.render(x[3].astype(np.float32) / 255,
                                                                   np.random.default_rng([0, 3]))
    truth, _ = form_lines.picture("boxes", x, y, 3, 0)
    assert 2 <= len(truth) <= 6


def test_a_box_surrounds_the_ink_and_a_line_lies_under_it(mnist, monkeypatch):
    for index in range(4):
        for name in ("box", "boxes"):
            lines, (top, left, bottom, right) = lines_and_ink(*twins(name, mnist, index, monkeypatch))
            line_top, line_left, line_bottom, line_right = images.bounds(lines)
            assert line_top < top and line_left < left and line_bottom > bottom and line_right > right, (name, index)
            height = bottom - top  # inside the box, around the ink's middle, nothing is printed but walls
            middle = lines[top + height // 3:bottom - height // 3, left:right]
            assert middle.mean() < 0.1, (name, index)
            if name == "boxes":  # a row of boxes: inner walls run down between the digits
                walls = lines[top + height // 3:bottom - height // 3].mean(0) > 0.9
                assert walls.any(), index
        for name in ("underline", "line"):
            lines, (top, left, bottom, right) = lines_and_ink(*twins(name, mnist, index, monkeypatch))
            rows = np.flatnonzero(lines.any(1))
            assert rows.mean() > bottom - 0.2 * (bottom - top), (name, index)  # under the ink, or through its foot
            assert rows[-1] - rows[0] < 0.3 * (bottom - top), (name, index)  # one thin, nearly level line


def test_the_command_writes_its_json_sheet_and_report_section(tmp_path):
    out, sheet = tmp_path / "form_lines.json", tmp_path / "sheet.png"
    result = run_cli("--samples", "2", "--numbers", "1", "--out", str(out), "--sheet", str(sheet),
                     script="benchmarks/form_lines.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert list(saved["conditions"]) == list(form_lines.SINGLE + form_lines.NUMBER)
    assert saved["runs"] == {"shipped": "src/digits/shipped/model.onnx"} and saved["machine"]["cpu"]
    for row in saved["conditions"].values():
        assert set(row["right"]["shipped"]) == {"erased", "kept"}
        assert all(0 <= value <= 1 for value in row["right"]["shipped"].values())
    assert sheet.read_bytes().startswith(b"\x89PNG")
    section = report.form_lines(saved)
    assert sum(line.startswith("| one digit") or line.startswith("| a number") for line in section) == 5
    assert_clean_error(run_cli("--samples", "0", "--out", str(out), script="benchmarks/form_lines.py"), "--samples")


def test_the_check_counts_pictures_without_lines_that_the_eraser_changes(tmp_path):
    out = tmp_path / "untouched.json"
    result = run_cli("--digits", "4", "--stress", "1", "--strips", "1", "--non-digits", "1", "--out", str(out),
                     script="scripts/form_lines_check.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert saved["sets"]["plain"] == {"count": 4, "changed": [], "readings": []}  # plain photos: nothing to erase
    assert {"stress broken", "strips touching", "non-digits scripts"} <= set(saved["sets"])
    assert saved["pictures"] == sum(row["count"] for row in saved["sets"].values())
    timing = saved["analyse_ms"]
    assert timing["pictures"] == 4 and timing["with"] > 0 and timing["without"] > 0 and saved["machine"]["cpu"]


def test_the_check_reads_what_the_eraser_changed_both_ways(mnist):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import form_lines_check

    from digits.predictor import Predictor
    from digits.runs import shipped_model
    from test_images import boxed, picture

    x, y = mnist
    plain = picture(x[0], size=(140, 120), digit_height=90)
    found = form_lines_check.changed_by_eraser([plain, boxed(plain, (8, 6, 134, 114), width=3)],
                                               Predictor(shipped_model()))
    assert found["count"] == 2 and found["changed"] == [1]
    assert found["readings"] == [{"with": str(int(y[0])), "without": "not_a_digit"}]
