"""Shared fixtures: an isolated environment for every test, and small real training runs. Plain helpers
(the repository root, the CLI run as a user runs it) are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No test reads the developer's DIGITS_* settings or writes into their cache."""
    monkeypatch.delenv("DIGITS_DATA_DIR", raising=False)
    monkeypatch.delenv("DIGITS_RUNS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def no_shipped_model(monkeypatch, tmp_path) -> Path:
    """A source tree without the shipped model: `runs.SHIPPED_DIR` points at an empty directory."""
    from digits import runs

    empty = tmp_path / "no-shipped-model"
    empty.mkdir()
    monkeypatch.setattr(runs, "SHIPPED_DIR", empty)
    return empty


@pytest.fixture
def shipped_copy(monkeypatch, tmp_path) -> Path:
    """A copy of the shipped model's directory that `runs` uses instead of the package's (safe to damage)."""
    import shutil

    from digits import runs

    copy = tmp_path / "shipped"
    shutil.copytree(runs.SHIPPED_DIR, copy)
    monkeypatch.setattr(runs, "SHIPPED_DIR", copy)
    return copy


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A real (quick) MLP run: 2,000 MNIST training images, 1 epoch, through `train.train`."""
    from digits import config, train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = train.train(config.Config(epochs=1, limit=2000), out=out, verbose=0)
    return result.run_dir


@pytest.fixture(scope="session")
def cnn_fast_run(tmp_path_factory) -> Path:
    """configs/cnn-fast.json trained on the full training set (about 10 s): a real 99% model."""
    from digits import config, train

    out = tmp_path_factory.mktemp("runs") / "cnn-fast"
    return train.train(config.load(REPO / "configs" / "cnn-fast.json"), out=out, verbose=0).run_dir


@pytest.fixture(scope="session")
def oe_run(tmp_path_factory) -> Path:
    """configs/cnn-fast.json with Outlier Exposure: a quarter of every batch generated non-digits (3,000 of them,
    `digits.synthetic`) taught to be unsure, so the model learns a "not a digit" answer (about a minute)."""
    from dataclasses import replace

    from digits import config, train

    recipe = replace(config.load(REPO / "configs" / "cnn-fast.json"), outlier_exposure=0.25, outlier_images=3000)
    out = tmp_path_factory.mktemp("runs") / "cnn-fast-oe"
    with pytest.MonkeyPatch.context() as patch:  # the generated pictures are cached: not in the developer's cache
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        return train.train(recipe, out=out, verbose=0).run_dir
