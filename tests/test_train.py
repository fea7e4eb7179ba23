"""Training: the run directory it writes, reproducibility from a seed, and refusal to clobber."""

import json

import numpy as np
import pytest

from digits import config, train


def test_run_directory_holds_the_recipe_and_results(tiny_run):
    names = {path.name for path in tiny_run.iterdir()}
    assert {"model.keras", "config.json", "metrics.json", "history.json", "training_curves.png"} <= names
    assert not any(name.startswith(".") for name in names)  # no temporary files left behind
    assert not list(tiny_run.parent.glob(".partial-*"))  # the work-in-progress dir was renamed away

    saved = config.load(tiny_run / "config.json")
    assert (saved.epochs, saved.limit, saved.model) == (1, 2000, "mlp")

    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert 0.5 < metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    assert metrics["train_images"] + metrics["validation_images"] == 2000
    assert metrics["test_images"] == 10000
    assert metrics["dataset"]["name"] == "mnist" and len(metrics["dataset"]["checksum"]) == 64
    assert {"tensorflow", "keras", "python"} <= set(metrics["versions"])
    assert metrics["training_seconds"] > 0

    history = json.loads((tiny_run / "history.json").read_text())
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    assert all(len(values) == 1 for values in history.values())
    assert (tiny_run / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_gives_the_same_model(tmp_path):
    import keras

    settings = config.Config(epochs=1, limit=600, seed=7)
    first = train.train(settings, out=tmp_path / "a", verbose=0)
    second = train.train(settings, out=tmp_path / "b", verbose=0)
    other = train.train(config.Config(epochs=1, limit=600, seed=8), out=tmp_path / "c", verbose=0)
    weights = [keras.models.load_model(run.run_dir / "model.keras").get_weights() for run in (first, second, other)]
    assert all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1]))
    assert not all(np.array_equal(a, c) for a, c in zip(weights[0], weights[2]))
    assert first.metrics["test_accuracy"] == second.metrics["test_accuracy"]


def test_existing_run_directory_is_never_overwritten(tiny_run):
    before = {path.name: path.read_bytes() for path in tiny_run.iterdir() if path.is_file()}
    with pytest.raises(ValueError, match="already exists"):
        train.train(config.Config(epochs=1, limit=100), out=tiny_run, verbose=0)
    assert {path.name: path.read_bytes() for path in tiny_run.iterdir() if path.is_file()} == before


def test_history_csv_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    csv = tmp_path / "history.csv"
    csv.write_text("epoch,accuracy,loss\n0,0.5,1.0\n1,0.6,0.9\nepoch,accuracy,loss\n1,0.7,0.8\n2,0.8,0.7\n")
    assert train.read_history_csv(csv) == {"accuracy": [0.5, 0.7, 0.8], "loss": [1.0, 0.8, 0.7]}


def test_unknown_names_fail_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train.train(config.Config(model="nope"), out=tmp_path / "x")
    with pytest.raises(ValueError, match="unknown dataset"):
        train.train(config.Config(dataset="cifar"), out=tmp_path / "y")
    assert not list(tmp_path.iterdir())
