"""Config: defaults, JSON round-trip, refusal of unknown keys, wrong types and bad values; the shipped
recipes (configs/*.json) load and build their models."""

import hashlib
import json

import pytest

from helpers import REPO
from digits import config


def test_defaults_are_the_original_recipe():
    defaults = config.Config()
    assert (defaults.model, defaults.dataset, defaults.epochs, defaults.batch_size) == ("mlp", "mnist", 5, 32)
    assert defaults.learning_rate == 0.001


def test_json_round_trip(tmp_path):
    original = config.Config(epochs=3, limit=500, model_args={"hidden_units": 64})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(original.to_dict()))
    assert config.load(path) == original


def test_int_is_accepted_for_float_and_none_for_optional():
    loaded = config.from_dict({"learning_rate": 1, "limit": None})
    assert loaded.learning_rate == 1.0 and isinstance(loaded.learning_rate, float)
    assert loaded.limit is None


@pytest.mark.parametrize("values, fragment", [
    ({"epoch": 3}, "unknown config key(s) 'epoch'"),
    ({"epochs": "5"}, "'epochs' must be int, got str"),
    ({"epochs": 2.5}, "'epochs' must be int"),
    ({"epochs": True}, "'epochs' must be int"),
    ({"model_args": []}, "'model_args' must be dict"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"epochs": -3}, "epochs must be at least 1"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"learning_rate": -0.1}, "learning_rate must be positive"),
    ({"validation_split": 1.0}, "validation_split must be between 0 and 1"),
    ({"limit": 1}, "limit must be at least 2"),
])
def test_bad_values_are_refused_with_the_key_named(values, fragment):
    with pytest.raises(ValueError) as caught:
        config.from_dict(values)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_key_message_lists_known_keys():
    with pytest.raises(ValueError, match="known keys: model, dataset, epochs"):
        config.from_dict({"lr": 0.1})


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"epochs": "ten"}', "'epochs' must be int"),
])
def test_bad_files_name_the_file(tmp_path, text, fragment):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        config.load(path)
    assert fragment in str(caught.value) and "bad.json" in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read config file"):
        config.load(tmp_path / "missing.json")


def test_overrides_apply_over_a_base():
    base = config.Config(epochs=7, seed=3)
    merged = config.from_dict({"seed": 9}, base)
    assert (merged.epochs, merged.seed) == (7, 9)


def test_fingerprint_tracks_settings():
    assert config.Config().fingerprint() == config.Config().fingerprint()
    assert config.Config().fingerprint() != config.Config(seed=1).fingerprint()
    # only what differs from the defaults counts: a setting added later, at its default, keeps a run resumable
    assert config.Config(seed=1, digit_photos=0).fingerprint() == hashlib.sha256(b'{"seed": 1}').hexdigest()[:12]


@pytest.mark.parametrize("name", sorted(path.name for path in (REPO / "configs").glob("*.json")))
def test_shipped_recipes_load_and_build(name):
    from digits import models

    loaded = config.load(REPO / "configs" / name)
    assert loaded.model in {"cnn", "cnn_large"}
    assert json.loads((REPO / "configs" / name).read_text())["model"] == loaded.model
    model = models.create_model(loaded.model, **loaded.model_args)  # the recipe's model arguments are real ones
    assert model.output_shape == (None, 10)


def test_outlier_families_are_checked_and_round_trip():
    assert config.Config().outlier_families == list(config.OUTLIER_FAMILIES[:5])
    chosen = config.from_dict({"outlier_families": ["scripts", "pairs"]})
    assert chosen.outlier_families == ["scripts", "pairs"]
    assert config.from_dict(chosen.to_dict()) == chosen
    for bad, message in ((["faces"], "outlier_families must list distinct families"), ([], "distinct families"),
                         (["pairs", "pairs"], "distinct families"), ("pairs", "must be list"),
                         ([1], "must be a list of strings")):
        with pytest.raises(ValueError, match=message):
            config.from_dict({"outlier_families": bad})


def test_a_runs_recipe_is_read_from_its_config_json_without_what_is_not_a_setting():
    written = config.Config(epochs=3, reject_rate=0.01).to_dict()
    assert config.from_run(written) == config.Config(epochs=3, reject_rate=0.01)
    assert config.from_run({**written, "members": ["a", "b"], "tta": True}) == config.from_run(written)
