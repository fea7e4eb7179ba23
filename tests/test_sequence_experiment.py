"""scripts/sequence_experiment.py: the sequence model's input and its training numbers (decoding: test_sequence.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import sequence_experiment as se  # noqa: E402

from digits import data  # noqa: E402


@pytest.fixture(scope="module")
def mnist():
    dataset = data.load_dataset("mnist")
    return dataset.x_test, dataset.y_test


def test_encode_pads_targets_and_keeps_lengths():
    targets, lengths = se.encode(["7", "123456", "90"])
    assert lengths.tolist() == [1, 6, 2]
    assert targets.tolist() == [[7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [9, 0, 0, 0, 0, 0]]


def test_strip_input_scales_the_ink_to_the_model_height(mnist):
    x_test, _ = mnist
    ink = np.concatenate([x_test[0], x_test[1]], 1).astype(np.float32) / 255.0
    big = np.kron(1.0 - 0.7 * ink, np.ones((4, 4), np.float32))  # dark ink on light paper, 4x larger
    found = se.strip_input((big * 255).astype(np.uint8))
    assert found.shape == (se.HEIGHT, se.WIDTH) and found.dtype == np.float32
    rows, cols = np.nonzero(found > 0.2)
    assert rows.min() >= 2 and rows.max() <= 29 and rows.max() - rows.min() >= 24  # 28 rows of ink, margins kept
    assert cols.min() >= 2 and 30 <= cols.max() <= 60  # two digits side by side, left-aligned
    assert np.percentile(found[found >= 0.2], 90) > 0.95  # faint ink stretched to full strength
    assert se.strip_input(np.full((40, 80), 200, np.uint8)) is None  # a blank page has no ink


def test_training_numbers_are_seeded_and_labelled(mnist):
    x_test, y_test = mnist
    digits = x_test[:50].astype(np.float32) / 255.0
    first = se.number(digits, y_test[:50], np.random.default_rng([4, 2]))
    again = se.number(digits, y_test[:50], np.random.default_rng([4, 2]))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1] and 1 <= len(first[1]) <= 6 and first[1].isdigit()
    texts = {se.number(digits, y_test[:50], np.random.default_rng([4, index]))[1] for index in range(40)}
    assert {len(text) for text in texts} == set(range(1, 7))
    one = se.number(digits[:1], y_test[:1], np.random.default_rng(0))  # only one digit to draw from
    assert set(one[1]) == {str(int(y_test[0]))}
    assert one[0].max() > 0.5 and one[0].shape[0] == 40


def test_combine_replaces_the_lattice_only_where_the_sequence_model_is_sure(tmp_path):
    def strip(truth, lattice, sequence, sure):
        return {"truth": truth, "lattice": lattice, "sequence": sequence, "sequence_sure": sure}

    # even strips choose SURE: sure sequence readings fix two misreadings (0.99, 0.97) and a refused piece
    touching = [strip("12", "1", "12", 0.99), strip("90", "9", "90", 0.999), strip("34", "3", "34", 0.97),
                strip("4", "4", "44", 0.5), strip("77", "7?", "77", 0.99), strip("8", "8", "8", 1.0),
                strip("5", "5", "5", 0.9), strip("0", "0", "0", 1.0)]
    mixed = [strip("1", "1", "1", 1.0)] * 8
    results = tmp_path / "eval.json"
    results.write_text(se.json.dumps({"touching_strips": touching, "mixed_strips": mixed}))
    out = tmp_path / "combined.json"
    se.combine(se.argparse.Namespace(results=str(results), out=str(out)))
    found = se.json.loads(out.read_text())
    assert found["sure"] == 0.95  # the highest of the grid that still takes both sure fixes (0.99, 0.97)
    assert found["touching_choose"] == {"lattice": 0.25, "sequence": 1.0, "combined": 1.0,
                                        "combined_keeping_refusals": 0.75, "strips": 4}  # "7?" stays refused
    # odd strips: the 0.999 fix is taken, the 0.5 misreading is not
    assert found["touching_check"] == {"lattice": 0.75, "sequence": 0.75, "combined": 1.0,
                                       "combined_keeping_refusals": 1.0, "strips": 4}
    assert found["mixed_check"]["combined"] == 1.0


def test_training_resumes_with_the_optimizer_state(tmp_path):
    import argparse
    import json
    import warnings

    rng = np.random.default_rng(0)
    data_file = tmp_path / "train.npz"
    np.savez(data_file, pictures=rng.integers(0, 255, (8, se.HEIGHT, se.WIDTH), dtype=np.uint8),
             texts=np.array(["1", "23", "456", "7", "89", "0", "12", "345"]))
    out = tmp_path / "run"

    def train(epochs):
        se.train(argparse.Namespace(data=str(data_file), out=str(out), epochs=epochs, batch=4, lr=1e-3))

    train(1)  # a run stopped after its first epoch: its checkpoint and state stay
    (out / "model.keras").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(2)
    skipped = [str(warning.message) for warning in caught if "Skipping variable loading" in str(warning.message)]
    assert not skipped  # Adam's moments were loaded, not dropped
    assert json.loads((out / "state.json").read_text())["epoch"] == 2
    assert (out / "model.keras").exists()


def test_a_large_model_builds_and_a_run_resumes_only_at_its_own_size(tmp_path):
    """--size large: a wider model with the same input and output; a run keeps its size (size.json), and resuming it
    at another size is one line naming both, its checkpoint left as it was."""
    import argparse
    import json

    small, large = se.build_model("small"), se.build_model("large")
    assert small.output_shape == large.output_shape == (None, se.WIDTH // 4, se.BLANK + 1)
    assert large.count_params() > 4 * small.count_params()
    rng = np.random.default_rng(0)
    data_file = tmp_path / "train.npz"
    np.savez(data_file, pictures=rng.integers(0, 255, (4, se.HEIGHT, se.WIDTH), dtype=np.uint8),
             texts=np.array(["1", "23", "456", "7"]))
    out = tmp_path / "run"
    se.train(argparse.Namespace(data=str(data_file), out=str(out), epochs=1, batch=4, lr=1e-3, size="large"))
    assert json.loads((out / "size.json").read_text()) == {"size": "large"} and se.run_size(out) == "large"
    weights = (out / "checkpoint.weights.h5").read_bytes()
    with pytest.raises(SystemExit, match="trained at --size large, not small"):
        se.train(argparse.Namespace(data=str(data_file), out=str(out), epochs=2, batch=4, lr=1e-3, size="small"))
    assert (out / "checkpoint.weights.h5").read_bytes() == weights
    assert se.run_size(tmp_path) == "small"  # a run from before sizes


@pytest.mark.parametrize("args, fragments", [
    (["train", "--data", "missing.npz", "--out", "run"], ["--data missing.npz: no such file", "data --out FILE"]),
    (["train", "--out", "run"], ["train needs --data"]),
    (["eval", "--model", "nowhere"], ["--model nowhere: no trained model there", "train --data FILE"]),
    (["export", "--model", "nowhere", "--out", "x.onnx"], ["--model nowhere: no trained model there"]),
    (["combine", "--results", "none.json"], ["--results none.json: no such file", "eval --lattice --out FILE"]),
    (["data"], ["data needs --out"]),
])
def test_a_missing_input_is_one_line_naming_it_and_the_fix(tmp_path, args, fragments):
    """Each action checks what it cannot do without before it starts: one line on stderr, no traceback."""
    from helpers import assert_clean_error, run_cli

    assert_clean_error(run_cli(*args, cwd=tmp_path, script="scripts/sequence_experiment.py"), *fragments)
