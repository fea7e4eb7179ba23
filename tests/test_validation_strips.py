"""benchmarks/validation_strips.py end to end on a tiny run: strips, singles and, with --non-digits, "not a digit"
at the run's stored threshold, all on validation digits and freshly generated non-digits, written as JSON."""

from __future__ import annotations

import json

import pytest

from helpers import REPO, run_cli


def test_the_command_compares_runs_on_validation_data(tiny_run, tmp_path):
    out = tmp_path / "strips.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "3", "--singles", "3", "--non-digits", "40",
                     "--validation-split", "0.1", "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    row = saved["runs"]["tiny"]
    for key in ("touching_read_whole", "mixed_read_whole", "singles_split", "validation_refused",
                "non_digits_refused", "non_digits_auroc"):
        assert 0.0 <= row[key] <= 1.0, (key, row[key])
    stored = json.loads((tiny_run / "metrics.json").read_text())["calibration"]
    assert row["reject_below"] == stored["reject_below"]
    from digits import data
    from digits.predictor import Predictor

    dataset = data.load_dataset("mnist", allow_download=False)
    _, _, x_val, y_val = data.split_validation(dataset.x_train, dataset.y_train, 0.1)
    right = int((Predictor(str(tiny_run)).predict_proba(x_val).argmax(1) == y_val).sum())
    assert row["validation_accuracy"] == right / len(y_val) and len(y_val) == 6000
    assert saved["non_digits"] == 40 and saved["machine"]["cpu"]
    assert str(REPO) not in out.read_text()


def test_strips_and_singles_can_be_left_out(tiny_run, tmp_path):
    out = tmp_path / "rejection.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "0", "--singles", "0", "--non-digits", "20",
                     "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["runs"]["tiny"]
    assert "touching_read_whole" not in row and "singles_split" not in row and 0 <= row["non_digits_refused"] <= 1


def test_auto_mode_reading_of_non_digits_and_numbers(tiny_run, tmp_path):
    out = tmp_path / "auto.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "0", "--singles", "0", "--auto", "3",
                     "--validation-split", "0.1", "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    row = saved["runs"]["tiny"]
    keys = [f"auto_refused_{family}" for family in ("letters", "symbols", "shapes", "scribbles", "silhouettes",
                                                     "scripts")] + ["auto_touching_numbers_right", "auto_mixed_numbers_right"]
    assert all(row[key] in (0.0, 1 / 3, 2 / 3, 1.0) for key in keys), row
    assert saved["auto"] == 3


def test_numbers_holding_a_non_digit_read_in_number_mode(tiny_run, tmp_path, monkeypatch):
    """--marked N: N numbers of touching validation digits, each with one generated non-digit in a digit's place
    (the six families in turn, seeded), and the share read with a piece marked "?"."""
    out = tmp_path / "marked.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "0", "--singles", "0", "--marked", "6",
                     "--validation-split", "0.1", "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    row = saved["runs"]["tiny"]
    assert saved["marked"] == 6 and row["marked_numbers"] in [share / 6 for share in range(7)]
    assert set(row["marked_by_family"]) == {"letters", "symbols", "shapes", "scribbles", "silhouettes", "scripts"}
    assert 0.0 <= row["marked_exact"] <= row["marked_numbers"]
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import numpy as np
    import validation_strips

    digits = np.zeros((10, 28, 28), np.uint8)
    digits[:, 4:24, 12:16] = 255  # ten 1s
    made = list(validation_strips.marked_numbers(digits, np.ones(10, int), 12, 5))
    assert made == list(validation_strips.marked_numbers(digits, np.ones(10, int), 12, 5))  # seeded
    assert [family for family, *_ in made] == list(validation_strips.AUTO_FAMILIES) * 2
    for _, place, truth, photo in made:
        assert 2 <= len(truth) <= 6 and truth.count("?") == 1 and truth[place] == "?" and set(truth) <= {"1", "?"}
        assert photo[:2] in (b"\xff\xd8", b"\x89P")  # an encoded photo


def test_numbers_on_lines_with_decimal_points_signs_and_spaces(tiny_run, tmp_path, monkeypatch):
    """--lines N, --decimals N, --signs N, --plus N, --spaced N, --colons N, --squared N, --percent N, --parens N,
    --dates N, --datetimes N and --uneven N: photos of 2-3 numbers one under the other read in auto mode, of numbers
    with a decimal point or comma read in number mode, with a minus sign or hyphen, a plus sign, of numbers written
    apart on one line, with a colon, on squared paper, with a percent sign, in parentheses, of dates, of dates with a
    time and of numbers with a digit written smaller read in auto mode, each the share read exactly; the photos are
    seeded."""
    out = tmp_path / "lines.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "0", "--singles", "0", "--lines", "3",
                     "--decimals", "3", "--signs", "3", "--plus", "3", "--spaced", "3", "--colons", "3", "--squared", "3",
                     "--percent", "3", "--parens", "3", "--dates", "3", "--datetimes", "3",
                     "--uneven", "3",
                     "--validation-split", "0.1",
                     "--out", str(out),
                     script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    row = saved["runs"]["tiny"]
    assert [saved[name] for name in ("lines", "decimals", "signs", "plus", "spaced", "colons", "squared",
                                     "percent", "parens", "dates", "datetimes", "uneven")] == [3] * 12
    for kind, found in (("lines", "counted"), ("decimals", "marked"), ("signs", "marked"), ("plus", "marked"),
                        ("spaced", "parted"), ("colons", "marked"), ("squared", "counted"), ("percent", "marked"),
                        ("parens", "marked"), ("dates", "marked"), ("datetimes", "marked"),
                        ("uneven", "counted")):
        for key in (f"{kind}_exact", f"{kind}_{found}"):
            assert row[key] in [share / 3 for share in range(4)], key
        assert row[f"{kind}_exact"] <= row[f"{kind}_{found}"], kind
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import numpy as np
    import real_images

    digits = np.zeros((4, 28, 28), np.uint8)
    digits[:, 4:24, 12:16] = 255  # 1s
    for draw in (lambda rng: real_images.render_lines([list(digits[:2]), list(digits[2:])], rng),
                 lambda rng: real_images.render_decimal(list(digits), 2, rng, comma=True),
                 lambda rng: real_images.render_signed(list(digits), 0, rng),
                 lambda rng: real_images.render_signed(list(digits), 2, rng),
                 lambda rng: real_images.render_signed(list(digits), 2, rng, "+"),
                 lambda rng: real_images.render_spaced([list(digits[:2]), list(digits[2:])], rng),
                 lambda rng: real_images.render_colon(list(digits), 2, rng),
                 lambda rng: real_images.render_squared(list(digits), rng),
                 lambda rng: real_images.render_squared(list(digits[:1]), rng),
                 lambda rng: real_images.render_percent(list(digits[:2]), rng),
                 lambda rng: real_images.render_parens(list(digits[:2]), list(digits[2:]), rng),
                 lambda rng: real_images.render_parens(list(digits[:1]), [], rng),
                 lambda rng: real_images.render_date([list(digits[:1]), list(digits[1:2]), list(digits[2:])], rng),
                 lambda rng: real_images.render_date([list(digits[:1]), list(digits[1:2]), list(digits[2:])], rng,
                                                     time=list(digits)),
                 lambda rng: real_images.render_uneven(list(digits), 1, rng)):
        photo = draw(np.random.default_rng(3))
        assert photo == draw(np.random.default_rng(3)) and photo[:2] in (b"\xff\xd8", b"\x89P")


def test_two_runs_are_compared_strip_by_strip(tiny_run, tmp_path):
    """The same run under two labels reads the same strips the same way: every strip kept as 1 or 0, and the paired
    difference 0 with an interval of 0 (no strip read whole by only one of them)."""
    out = tmp_path / "paired.json"
    result = run_cli("--run", f"a={tiny_run}", "--run", f"b={tiny_run}", "--strips", "4", "--singles", "0",
                     "--validation-split", "0.1", "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    first, second = saved["runs"]["a"], saved["runs"]["b"]
    for kind in ("touching", "mixed"):
        assert len(first[f"{kind}_strips"]) == 4 and set(first[f"{kind}_strips"]) <= {"0", "1"}
        assert first[f"{kind}_strips"].count("1") / 4 == first[f"{kind}_read_whole"]
        assert first[f"{kind}_refusal_off"] in (0, 0.25, 0.5, 0.75, 1)  # a share of the 4 strips
        assert first[f"{kind}_refusal_off"] >= first[f"{kind}_read_whole"]  # a strip read whole has every class right
        assert first[f"{kind}_strips"] == second[f"{kind}_strips"]
        assert saved["paired"]["runs"]["b"][kind] == {"difference": 0.0, "ci95": [0.0, 0.0], "better": 0, "worse": 0,
                                                      "strips": 4}
    assert saved["paired"]["against"] == "a" and "b against a, read whole: touching +0.0 points" in result.stdout
    again = run_cli("--run", f"c={tiny_run}", "--strips", "4", "--singles", "0", "--validation-split", "0.1",
                    "--against", f"{out}:a", "--out", str(tmp_path / "again.json"),
                    script="benchmarks/validation_strips.py")  # the same run, compared with the stored one
    assert again.returncode == 0, again.stderr
    compared = json.loads((tmp_path / "again.json").read_text())["paired"]
    assert compared["against"] == f"a ({out})" and compared["runs"]["c"]["touching"]["difference"] == 0.0
    for wrong, says in (([f"{out}:z"], "has no run 'z'"), ([f"{tmp_path}/none.json:a"], "cannot read"),
                        ([f"{out}:a", "--strips", "5"], "read 4 strips")):
        refused = run_cli("--run", f"c={tiny_run}", "--singles", "0", "--validation-split", "0.1", "--strips", "4",
                          "--against", *wrong, script="benchmarks/validation_strips.py")
        assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr


def test_the_paired_difference_and_its_interval(monkeypatch):
    """Of 100 strips, 10 read whole by the second run only and 4 by the first only: +6 points, and the interval
    1.96 * sqrt(14 - 36 / 100) / 100 either side; different strip counts are refused."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import validation_strips

    first = [True] * 50 + [False] * 10 + [True] * 4 + [False] * 36
    second = [True] * 50 + [True] * 10 + [False] * 4 + [False] * 36
    found = validation_strips.paired(first, second)
    error = 1.96 * (14 - 36 / 100) ** 0.5 / 100
    assert (found["better"], found["worse"], found["strips"]) == (10, 4, 100)
    assert found["difference"] == pytest.approx(0.06)
    assert found["ci95"] == pytest.approx([0.06 - error, 0.06 + error])
    with pytest.raises(ValueError, match="same strips"):
        validation_strips.paired(first, second[:-1])


def test_a_fresh_look_with_another_seed_base_pooled_with_the_first(tiny_run, tmp_path):
    """--seed-base shifts every seed (recorded in the results, and --against refuses a file of other seeds); --pool
    joins the two files: strips concatenated in order, shares weighted by their counts; a file pooled with itself
    (the same seeds: the same strips twice) is refused in one line."""
    files = []
    for base in (0, 100):
        files.append(tmp_path / f"base{base}.json")
        result = run_cli("--run", f"tiny={tiny_run}", "--strips", "3", "--singles", "2", "--seed-base", str(base),
                         "--validation-split", "0.1", "--out", str(files[-1]), script="benchmarks/validation_strips.py")
        assert result.returncode == 0, result.stderr
    first, second = (json.loads(path.read_text()) for path in files)
    assert second["seeds"] == {name: seed + 100 for name, seed in first["seeds"].items()}
    refused = run_cli("--run", f"tiny={tiny_run}", "--strips", "3", "--singles", "0", "--validation-split", "0.1",
                      "--against", f"{files[0]}:tiny", "--seed-base", "100", script="benchmarks/validation_strips.py")
    assert refused.returncode == 2 and "with seeds" in refused.stderr
    out = tmp_path / "pooled.json"
    result = run_cli("--pool", *map(str, files), "--out", str(out), script="benchmarks/validation_strips.py")
    assert result.returncode == 0, result.stderr
    pooled = json.loads(out.read_text())
    row = pooled["runs"]["tiny"]
    joined = first["runs"]["tiny"]["touching_strips"] + second["runs"]["tiny"]["touching_strips"]
    assert row["touching_strips"] == joined
    assert row["mixed_read_whole"] == (first["runs"]["tiny"]["mixed_read_whole"]
                                       + second["runs"]["tiny"]["mixed_read_whole"]) / 2
    assert row["touching_refusal_off"] == pytest.approx((first["runs"]["tiny"]["touching_refusal_off"]
                                                         + second["runs"]["tiny"]["touching_refusal_off"]) / 2)
    assert (pooled["strips"], pooled["singles"]) == (6, 4) and [entry["seeds"]["touching"] for entry in
                                                                pooled["pooled"]] == [900, 1000]
    twice = run_cli("--pool", str(files[0]), str(files[0]), script="benchmarks/validation_strips.py")
    assert twice.returncode == 2 and "same seeds" in twice.stderr and "Traceback" not in twice.stderr


def test_pooling_weighs_each_file_by_what_it_read(monkeypatch):
    """300 strips and 100 auto pictures per family in one file, 100 and 300 in the other: the pooled shares are
    weighted by those counts, and the paired comparison is taken over all 400 strips."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import validation_strips

    def results(base, strips, auto, first, second, refused):
        runs = {label: {"run": f"{label}.onnx", "validation_accuracy": 0.99, "seconds": 1.0, "singles_split": 0.0,
                        "touching_strips": whole, "mixed_strips": whole, "auto_refused_letters": share}
                for label, whole, share in (("a", first, refused[0]), ("b", second, refused[1]))}
        return {"runs": runs, "paired": {"against": "a"}, "strips": strips, "singles": 10, "auto": auto,
                "validation_split": 0.05, "seeds": {"touching": base}, "command": "python ..."}

    one = results(900, 300, 100, "1" * 300, "1" * 290 + "0" * 10, (0.9, 1.0))
    two = results(1000, 100, 300, "0" * 100, "1" * 20 + "0" * 80, (0.5, 0.6))
    pooled = validation_strips.pool([one, two], ["one.json", "two.json"])
    a, b = pooled["runs"]["a"], pooled["runs"]["b"]
    assert a["touching_read_whole"] == 300 / 400 and b["touching_read_whole"] == 310 / 400
    assert a["auto_refused_letters"] == pytest.approx((0.9 * 100 + 0.5 * 300) / 400)
    assert b["auto_refused_letters"] == pytest.approx((1.0 * 100 + 0.6 * 300) / 400)
    found = pooled["paired"]["runs"]["b"]["touching"]
    assert (found["better"], found["worse"], found["strips"]) == (20, 10, 400)
    assert (pooled["lines"], pooled["decimals"], pooled["signs"], pooled["spaced"]) == (0, 0, 0, 0)  # neither read
    assert "lines_exact" not in a and "signs_exact" not in a
    for result, lines, share in ((one, 100, 0.8), (two, 300, 0.4)):  # numbers on lines, read by both files
        result["lines"] = lines
        for row in result["runs"].values():
            row.update(lines_exact=share, lines_counted=1.0)
    pooled = validation_strips.pool([one, two], ["one.json", "two.json"])
    assert pooled["lines"] == 400 and pooled["runs"]["a"]["lines_exact"] == pytest.approx((80 + 120) / 400)
    other = results(1100, 100, 300, "1" * 100, "1" * 100, (0.5, 0.6))
    other["runs"]["b"]["run"] = "c.onnx"
    with pytest.raises(ValueError, match="other model files"):
        validation_strips.pool([one, other], ["one.json", "other.json"])
    with pytest.raises(ValueError, match="same seeds"):
        validation_strips.pool([one, one], ["one.json", "one.json"])


@pytest.mark.parametrize("script, args", [
    ("benchmarks/validation_strips.py", ["--run", "a={}", "--strips", "1"]),
    ("benchmarks/real_images.py", ["--run", "{}"]),
    ("benchmarks/rejection.py", ["--run", "{}"]),
])
def test_a_missing_model_is_one_line_before_any_work(tmp_path, script, args):
    """A --run that holds no model ends the benchmark at once (common.predictors, before the long part) with one line
    naming it and the fix, no traceback."""
    from helpers import assert_clean_error

    missing = str(tmp_path / "nowhere")
    result = run_cli(*[arg.format(missing) for arg in args], script=script)
    assert_clean_error(result, f"run directory {missing} does not exist", "pass a directory that `digits train` wrote")


def test_pieces_look_reads_the_same_pictures_at_each_threshold_and_factor(tiny_run, tmp_path):
    """benchmarks/pieces_look.py: one model at its stored threshold, at each --thresholds value and each --pieces
    factor; refusal off (threshold 0) flags no marked number; a value outside 0..1 is one line."""
    out = tmp_path / "look.json"
    result = run_cli("--run", f"tiny={tiny_run}", "--strips", "2", "--marked", "6", "--thresholds", "0",
                     "--pieces", "0", "--validation-split", "0.1", "--out", str(out), script="benchmarks/pieces_look.py")
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert list(saved["rows"]) == ["stored", "threshold 0", "pieces 0"]
    stored = json.loads((tiny_run / "metrics.json").read_text())["calibration"]["reject_below"]
    assert [(row["reject_below"], row["pieces"]) for row in saved["rows"].values()] == [(stored, 1.0), (0.0, 1.0),
                                                                                         (stored, 0.0)]
    off, rows = saved["rows"]["threshold 0"], saved["rows"]
    assert off["marked_numbers"] == 0.0 and off["touching_read_whole"] == off["touching_refusal_off"]  # none refused
    assert rows["pieces 0"]["marked_numbers"] <= rows["stored"]["marked_numbers"]  # (a line read as one piece keeps
    # the stored threshold)
    assert saved["machine"]["cpu"] and str(REPO) not in out.read_text()
    from helpers import assert_clean_error

    assert_clean_error(run_cli("--run", f"tiny={tiny_run}", "--pieces", "1.5", script="benchmarks/pieces_look.py"),
                       "lie between 0 and 1, got 1.5")
