"""Ensembles: one Keras model that averages its members' probabilities, optionally over shifted views.

`digits ensemble RUN RUN ... --out DIR` loads finished runs, refuses members trained on
another dataset (checksum) or with another input shape or class count, and saves the
averaged model as an ordinary run directory, so `digits evaluate`, `digits predict` and
the Predictor use it like any other. Test-time augmentation (`tta=True`) adds four
one-pixel shifts of every image, built from stock Keras layers so the model file loads
anywhere without custom code.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from . import runtime

runtime.load()  # TensorFlow quietly, before Keras imports it

import keras  # noqa: E402
from keras import layers  # noqa: E402

from . import backends, calibration, data, distribute, evaluate, export, files, models, runs  # noqa: E402
from . import config as config_module  # noqa: E402
from .images import to_model_input  # noqa: E402
from .predictor import check_shape  # noqa: E402

SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (rows, columns) for test-time augmentation


def shifted_views(inputs, input_shape) -> list:
    """The input and its four one-pixel shifts (zero pad by one, crop back at an offset)."""
    padded = layers.ZeroPadding2D(1, name="tta_pad")(inputs)
    views = [inputs]
    for index, (rows, columns) in enumerate(SHIFTS):
        crop = ((1 + rows, 1 - rows), (1 + columns, 1 - columns))
        views.append(layers.Cropping2D(crop, name=f"tta_shift_{index}")(padded))
    return views


def build(members: list[keras.Model], tta: bool = False) -> keras.Model:
    """A functional model: every member on every view, probabilities averaged."""
    input_shape = tuple(members[0].input_shape[1:])
    inputs = keras.Input(shape=input_shape, name="image")
    views = shifted_views(inputs, input_shape) if tta else [inputs]
    outputs = []
    for index, member in enumerate(members):
        member.name = f"member_{index}"  # layer names must be unique inside the ensemble
        outputs += [member(view) for view in views]
    averaged = layers.Average(name="average")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs, averaged, name="ensemble")


def check_members(infos: list[runs.RunInfo], loaded: list[keras.Model]) -> None:
    """Members must share dataset (by checksum), input shape and classes; else a ValueError."""
    first, first_model = infos[0], loaded[0]
    for info, model in zip(infos[1:], loaded[1:]):
        ours, theirs = first.metrics.get("dataset", {}), info.metrics.get("dataset", {})
        if (ours.get("name"), ours.get("checksum")) != (theirs.get("name"), theirs.get("checksum")):
            raise ValueError(f"{info.run_dir} was trained on {theirs.get('name')} ({str(theirs.get('checksum'))[:12]}), "
                             f"but {first.run_dir} on {ours.get('name')} ({str(ours.get('checksum'))[:12]}); "
                             "ensemble only runs trained on the same dataset")
        if model.input_shape[1:] != first_model.input_shape[1:] or model.output_shape != first_model.output_shape:
            raise ValueError(f"{info.run_dir} takes {model.input_shape[1:]} -> {model.output_shape[1:]}, but "
                             f"{first.run_dir} takes {first_model.input_shape[1:]} -> {first_model.output_shape[1:]}; "
                             "ensemble only models with the same input shape and classes")


def make_ensemble(members: list[str | Path], out: str | Path, tta: bool = False, data_dir=None) -> runs.Run:
    """Build, evaluate on the test set and save the ensemble of `members` (run directories) as the run `out`."""
    if not members:
        raise ValueError("name at least one run directory to ensemble")
    out = Path(out)
    if out.exists():
        raise ValueError(f"run directory {out} already exists; choose another --out or remove it first")
    infos = [runs.load_info(runs.resolve_run(member)) for member in members]
    loaded = []
    for info in infos:
        backend = backends.load("keras", info.run_dir / "model.keras")
        check_shape(backend, info.run_dir / "model.keras")
        loaded.append(backend.model)
    check_members(infos, loaded)
    dataset = data.load_dataset(infos[0].metrics["dataset"]["name"], data_dir=data_dir)
    if dataset.checksum != infos[0].metrics["dataset"]["checksum"]:
        raise ValueError(f"the {dataset.name} files found ({dataset.source}) differ from those the members were "
                         "trained on; point --data-dir at the original files")
    x_test = to_model_input(dataset.x_test)
    member_accuracy = [float((models.predict_batches(model, x_test).argmax(1) == dataset.y_test).mean())
                       for model in loaded]
    model = build(loaded, tta=tta)
    recipe = config_module.from_run(infos[0].config)
    _, _, _, x_val, y_val = data.training_arrays(recipe, data_dir)  # the first member's validation split
    fitted = calibration.fit(models.predict_batches(model, x_val, batch_size=512), y_val, recipe.reject_rate)
    test = evaluate.evaluate(calibration.apply_temperature(models.predict_batches(model, x_test, batch_size=512),
                                                           fitted["temperature"]), dataset.y_test, dataset.class_names)
    key = "|".join(str(info.run_dir.resolve()) for info in infos) + f"|{tta}|{out.resolve()}"
    partial = runs.partial_dir(out.parent, key)
    partial.mkdir(parents=True, exist_ok=True)
    files.write_json(partial / "config.json", {"model": "ensemble", "dataset": dataset.name, "tta": tta,
                                               "members": [str(info.run_dir) for info in infos]})
    metrics = {
        "test_loss": test["loss"], "test_accuracy": test["accuracy"], "test_ece": test.get("ece"), "tta": tta,
        "calibration": fitted,
        "members": [{"run": str(info.run_dir), "test_accuracy": accuracy}
                    for info, accuracy in zip(infos, member_accuracy)],
        "best_member_accuracy": max(member_accuracy), "test_images": len(x_test),
        "input_shape": list(x_test.shape[1:]), "dataset": infos[0].metrics["dataset"],
        "versions": distribute.environment(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    metrics["model_files"] = sorted(export.save_model(model, partial))
    return runs.commit(partial, out, {}, metrics)
