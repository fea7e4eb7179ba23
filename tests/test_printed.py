"""benchmarks/printed.py: printed digits and numbers in the fonts of a set, read in auto mode by a model, as JSON."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers import REPO, assert_clean_error, dejavu_sans, run_cli


def test_a_set_is_found_by_its_packages_folders_and_a_missing_set_names_the_packages(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import printed

    with pytest.raises(ValueError, match="apt-get install fonts-croscore fonts-hack"):
        printed.fonts_of("held-out", tmp_path)
    (tmp_path / "truetype/roboto/unhinted").mkdir(parents=True)
    shutil.copy(dejavu_sans(), tmp_path / "truetype/roboto/unhinted/Sans.ttf")
    (tmp_path / "truetype/crosextra").mkdir(parents=True)
    for name in ("Carlito-Regular.ttf", "Caladea-Regular.ttf", "notes.txt"):
        shutil.copy(dejavu_sans(), tmp_path / "truetype/crosextra" / name)
    found = printed.fonts_of("choosing", tmp_path)
    assert {package: [path.name for path in files] for package, files in found.items()} == {
        "fonts-roboto": ["Sans.ttf"], "fonts-crosextra-carlito": ["Carlito-Regular.ttf"],
        "fonts-crosextra-caladea": ["Caladea-Regular.ttf"]}
    plain = printed.printed("1917", dejavu_sans(), 40)
    assert plain.dtype == np.uint8 and plain.max() == 255 and plain.min() == 0  # black on white
    ink = plain < 128
    assert ink.any(1).sum() > 20 and ink.any(0).sum() > 60  # four digits side by side
    photo = printed.printed("1917", dejavu_sans(), 40, np.random.default_rng(0))
    assert photo.dtype == np.uint8 and np.median(photo) >= 190 and photo.min() < 100  # dark ink on light paper
    again = printed.printed("1917", dejavu_sans(), 40, np.random.default_rng(0))
    assert np.array_equal(photo, again)


def test_the_command_reads_printed_digits_and_numbers_with_each_model(tmp_path):
    root = tmp_path / "fonts"
    (root / "truetype/lato").mkdir(parents=True)
    shutil.copy(dejavu_sans(), root / "truetype/lato/Sans.ttf")
    out = tmp_path / "printed.json"
    result = run_cli("--run", "shipped=src/digits/shipped/model.onnx", "--numbers", "4", "--font-root", str(root),
                     "--out", str(out), script="benchmarks/printed.py", cwd=REPO)
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    entry = saved["sets"]["choosing"]
    assert entry["packages"] == {"fonts-lato": ["Sans.ttf"]} and "fonts-roboto" in entry["missing"]
    figures = entry["models"]["shipped"]
    assert figures["singles"]["pictures"] == 20 and figures["numbers"]["pictures"] == 4
    assert figures["singles"]["read_exactly"] >= 0.9  # DejaVu Sans's digits: training prints no digit in them
    assert set(figures["singles"]["per_digit"]) == set("0123456789")
    assert saved["machine"]["cpu"] and str(REPO) not in out.read_text() and str(tmp_path) not in out.read_text()
    missing = run_cli("--run", "shipped=src/digits/shipped/model.onnx", "--set", "held-out", "--font-root",
                      str(root), "--out", str(out), script="benchmarks/printed.py", cwd=REPO)
    assert_clean_error(missing, "no font of the held-out set is installed", "apt-get install fonts-croscore")
