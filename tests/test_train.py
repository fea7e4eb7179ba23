"""Training: the run directory it writes, reproducibility from a seed, refusal to clobber; the recipes'
parts (one-cycle schedule, keep-best, mixed precision); the calibration every run stores and Outlier
Exposure's "not a digit" answer; and end to end on the real MNIST files: `python train.py` / `predict.py`
as the README says, the 0.970 bar, resuming a killed run."""

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import assert_clean_error, drawn_text, run_cli, scribble, without_logits
from digits import config, runs, train


def test_run_directory_holds_the_recipe_and_results(tiny_run):
    names = {path.name for path in tiny_run.iterdir()}
    assert {"model.keras", "config.json", "metrics.json", "history.json", "training_curves.png"} <= names
    assert {"model.onnx", "model.tflite"} <= names  # the portable copies, written when training ends
    assert not names & {"exports", "backup", "history.csv", "best.weights.h5", "best.json"}
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
    assert metrics["model_files"] == ["keras", "litert", "onnx"]

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


def test_train_returns_a_run(tiny_run):
    assert train.TrainResult is runs.Run
    assert runs.check_run(tiny_run) == tiny_run


# ---------------------------------------------------------------- calibration and not-a-digit


@pytest.mark.parametrize("run_name", ["tiny_run", "cnn_fast_run"])
def test_a_run_stores_its_calibration_fitted_on_its_validation_split(request, run_name):
    """Every run fits a temperature and a not-a-digit threshold on its validation split (never the test set)
    and stores them in metrics["calibration"], with the test set's calibration error: the energy of the logits,
    read off the run's ONNX copy exactly as from Keras, with the top probability's threshold beside it."""
    from digits import backends, calibration, data
    from digits.images import to_model_input
    from digits.predictor import Predictor

    run = request.getfixturevalue(run_name)
    metrics = json.loads((run / "metrics.json").read_text())
    fitted = metrics["calibration"]
    assert fitted["score"] == "energy" and fitted["fitted_on"] == "validation split"
    assert fitted["temperature"] > 0 and fitted["reject_below"] == 0.5 and 0 < fitted["max_probability_below"] < 1
    assert fitted["reject_rate"] == config.Config().reject_rate == 0.005
    assert fitted["validation_images"] == metrics["validation_images"]
    assert fitted["validation_digits_refused"] <= fitted["reject_rate"] + 1 / fitted["validation_images"]
    assert fitted["validation_ece_after"] <= fitted["validation_ece_before"] + 1e-9  # never worse calibrated
    assert "validation_non_digits" not in fitted  # no Outlier Exposure: no generated non-digits held out
    # the same numbers again from the run's own copy on the same validation split
    recipe = config.load(run / "config.json")
    _, _, _, x_val, y_val = data.training_arrays(recipe)
    copy = backends.load("onnx", run / "model.onnx")
    assert copy.gives_logits
    raw, logits = (backends.in_batches(function, to_model_input(x_val)) for function in (copy, copy.logits))
    again = calibration.fit(raw, y_val, recipe.reject_rate, logits=logits)
    assert again["temperature"] == pytest.approx(fitted["temperature"], rel=1e-3)
    assert again["energy_below"] == pytest.approx(fitted["energy_below"], abs=1e-3)
    assert again["max_probability_below"] == pytest.approx(fitted["max_probability_below"], abs=1e-3)
    scores = Predictor(run).predict_scores(x_val)[1]  # the reader refuses what the fit refused
    assert float((scores < 0.5).mean()) == pytest.approx(fitted["validation_digits_refused"], abs=2 / len(y_val))
    # test_ece: the calibrated test-set predictions' expected calibration error
    dataset = data.load_dataset("mnist")
    test_ece = calibration.expected_calibration_error(Predictor(run).predict_proba(dataset.x_test), dataset.y_test)
    assert 0 <= metrics["test_ece"] < 0.1 and metrics["test_ece"] == pytest.approx(test_ece, abs=1e-3)


@pytest.mark.slow
def test_outlier_exposure_teaches_a_not_a_digit_answer(oe_run):
    """cnn-fast with Outlier Exposure (a quarter of each batch generated non-digits with uniform targets):
    letters and scribbles it never saw are refused as not digits, real MNIST digits are still read."""
    from PIL import Image

    from digits import data, reading
    from digits.predictor import Predictor

    metrics = json.loads((oe_run / "metrics.json").read_text())
    saved = config.load(oe_run / "config.json")
    assert (saved.outlier_exposure, saved.outlier_images) == (0.25, 3000)
    assert metrics["test_accuracy"] >= 0.985, metrics["test_accuracy"]  # refusing costs the digits nothing
    fitted = metrics["calibration"]
    held_out = fitted["validation_non_digits"]  # generated non-digits kept out of training: refused, told apart
    assert held_out["images"] == train.VALIDATION_NON_DIGITS and held_out["refused"] >= 0.85, held_out
    assert held_out["auroc"] >= 0.98, held_out
    assert fitted["validation_digits_refused"] <= fitted["reject_rate"] + 1 / fitted["validation_images"]

    predictor = Predictor(oe_run)
    assert (predictor.score, predictor.reject_below, predictor.energy_below) == (
        "energy", fitted["reject_below"], fitted["energy_below"])
    for letter in "AKMW":  # mode digit: the whole picture is one piece (auto mode may cut a wide letter in two)
        found = reading.read(drawn_text(letter), mode="digit", model=predictor)
        assert found.kind == "not_a_digit", (letter, found.digits[0].label, found.digits[0].confidence)
        assert found.digit is None and found.digits[0].not_a_digit and not found.uncertain
    tangles = [reading.read(scribble(seed), mode="digit", model=predictor) for seed in range(8)]
    refused = [found.kind == "not_a_digit" for found in tangles]
    assert sum(refused) >= 7, [(found.kind, round(found.digits[0].confidence, 3)) for found in tangles]

    dataset = data.load_dataset("mnist")
    read = [reading.read(Image.fromarray(255 - image).resize((112, 112), Image.Resampling.BICUBIC), mode="digit",
                         model=predictor) for image in dataset.x_test[:100]]  # dark on light, enlarged
    accepted = [found.kind == "digit" for found in read]
    assert sum(accepted) >= 97, [index for index, ok in enumerate(accepted) if not ok]
    right = [found.kind == "digit" and found.digit == label for found, label in zip(read, dataset.y_test[:100])]
    assert sum(right) >= 97


def test_calibrate_stores_what_training_with_that_reject_rate_stores(tiny_run, tmp_path):
    """`digits calibrate RUN --reject-rate R` moves a trained run's operating point without training again: the
    run then holds the calibration (and config) that training the same recipe with reject_rate R writes, and keeps
    the soft_above chosen for it (scripts/tune_soft.py). A run whose ONNX copy predates the logits output (and the
    energy score) gets one."""
    import shutil

    from digits import backends
    from digits.predictor import Predictor

    copy = tmp_path / "tiny"
    shutil.copytree(tiny_run, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["calibration"].update(soft_above=0.7, soft_above_chosen={"by": "a test"})
    (copy / "metrics.json").write_text(json.dumps(metrics))
    before = metrics["calibration"]
    without_logits(copy / "model.onnx")
    assert not backends.load("onnx", copy / "model.onnx").gives_logits
    result = run_cli("calibrate", str(copy), "--reject-rate", "0.05")
    assert result.returncode == 0, result.stderr
    assert f"not a digit below energy {0:.4f}"[:25] in result.stdout
    assert f"was energy {before['energy_below']:.4f}" in result.stdout
    assert backends.load("onnx", copy / "model.onnx").gives_logits
    assert "Traceback" not in result.stderr

    recipe = config.from_dict({"reject_rate": 0.05}, config.Config(epochs=1, limit=2000))
    trained = train.train(recipe, out=tmp_path / "trained", verbose=0).run_dir  # same seed: the same model
    moved, expected = (json.loads((run / "metrics.json").read_text()) for run in (copy, trained))
    assert json.loads((copy / "config.json").read_text()) == json.loads((trained / "config.json").read_text())
    assert moved["calibration"].keys() == expected["calibration"].keys() | set(train.KEPT_ON_REFIT)
    assert (moved["calibration"]["soft_above"], Predictor(copy).soft_above) == (0.7, 0.7)
    for key, value in expected["calibration"].items():
        assert moved["calibration"][key] == (pytest.approx(value, rel=1e-5) if isinstance(value, float) else value), key
    assert moved["test_ece"] == pytest.approx(expected["test_ece"], rel=1e-5)
    assert moved["recalibrated"]["from_reject_rate"] == before["reject_rate"] == 0.005
    # a higher rate refuses more of the validation digits: a higher threshold, which every reader now uses
    after = moved["calibration"]
    assert after["energy_below"] > before["energy_below"]
    assert after["max_probability_below"] > before["max_probability_below"]
    assert before["validation_digits_refused"] < after["validation_digits_refused"] <= 0.05
    predictor = Predictor(copy)
    assert (predictor.score, predictor.energy_below) == ("energy", after["energy_below"])



@pytest.mark.slow
def test_calibrate_draws_the_same_held_out_non_digits_as_training(oe_run, tmp_path):
    """Recalibrating a run trained with Outlier Exposure at its own rate changes nothing: the generated non-digits
    held out for validation are drawn again exactly as training drew them (without the training ones)."""
    import shutil

    copy = tmp_path / "oe"
    shutil.copytree(oe_run, copy)
    before = json.loads((copy / "metrics.json").read_text())
    result = train.recalibrate(copy, before["calibration"]["reject_rate"])
    assert result["before"] == before["calibration"]
    after = result["after"]
    assert after["validation_non_digits"]["images"] == train.VALIDATION_NON_DIGITS
    for key, value in before["calibration"].items():
        if key == "validation_non_digits":
            assert after[key]["refused"] == pytest.approx(value["refused"], abs=1e-9)
            assert after[key]["auroc"] == pytest.approx(value["auroc"], rel=1e-5)
        else:
            assert after[key] == (pytest.approx(value, rel=1e-5) if isinstance(value, float) else value), key
    assert json.loads((copy / "config.json").read_text()) == json.loads((oe_run / "config.json").read_text())


def test_calibrate_bad_input_is_one_line_and_leaves_the_run_as_it_was(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "tiny"
    shutil.copytree(tiny_run, copy)
    stored = {name: (copy / name).read_bytes() for name in ("metrics.json", "config.json")}
    assert_clean_error(run_cli("calibrate", str(copy), "--reject-rate", "0.7"), "reject_rate must be in [0, 0.5)")
    assert_clean_error(run_cli("calibrate", str(tmp_path / "missing"), "--reject-rate", "0.01"), "missing")
    ensemble = tmp_path / "ensemble"
    shutil.copytree(tiny_run, ensemble)
    (ensemble / "config.json").write_text(json.dumps({"model": "ensemble", "dataset": "mnist", "members": []}))
    assert_clean_error(run_cli("calibrate", str(ensemble), "--reject-rate", "0.01"), "ensemble",
                       "digits ensemble")
    assert {name: (copy / name).read_bytes() for name in stored} == stored


# ---------------------------------------------------------------- recipes: schedule, keep-best


def test_one_cycle_schedule_shape():
    schedule = train.OneCycle(peak=0.01, total_steps=100, warmup_steps=20)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == pytest.approx(0.0004)
    assert rates.argmax() == 20 and rates[20] == pytest.approx(0.01)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) <= 1e-9)
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)
    assert train.OneCycle(**schedule.get_config()).get_config() == schedule.get_config()


def test_keep_best_mixed_precision_and_schedule_in_one_small_run(tmp_path):
    import keras

    settings = config.Config(model="cnn", epochs=3, limit=1500, batch_size=64, learning_rate=0.01,
                             schedule="one_cycle", label_smoothing=0.1, augment_shift=1.0, keep_best=True,
                             precision="mixed_bfloat16", model_args={"filters": 8, "dense_units": 32})
    result = train.train(settings, out=tmp_path / "run", verbose=0)
    history = result.history
    assert result.metrics["kept_epoch"] == int(np.argmax(history["val_accuracy"])) + 1
    assert result.metrics["precision"] == "mixed_bfloat16"
    assert not (result.run_dir / "best.weights.h5").exists()  # scratch files do not reach the run
    model = keras.models.load_model(result.run_dir / "model.keras", compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}  # saved to run anywhere
    assert result.metrics["test_accuracy"] > 0.5
    assert result.metrics["model_files"] == ["keras", "litert", "onnx"]  # the float32 copy converts too


@pytest.mark.slow
def test_cnn_fast_recipe_reaches_985_on_the_real_test_set(cnn_fast_run):
    metrics = json.loads((cnn_fast_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.985, metrics["test_accuracy"]
    assert metrics["test_images"] == 10000 and metrics["epochs"] == 2


# ---------------------------------------------------------------- end to end on the real MNIST files


@pytest.fixture(scope="module")
def original_run(tmp_path_factory):
    """`python train.py` with no arguments, in a fresh directory, exactly as the README says."""
    workdir = tmp_path_factory.mktemp("original")
    result = run_cli(script="train.py", cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    return workdir, result


@pytest.mark.slow
def test_train_py_reaches_the_original_accuracy(original_run):
    workdir, result = original_run
    match = re.search(r"^Test accuracy: (0\.\d{4})$", result.stdout, re.MULTILINE)
    assert match, result.stdout
    accuracy = float(match.group(1))
    assert accuracy >= 0.970, f"the MLP reached only {accuracy} on the 10,000 official test images"
    runs_ = list((workdir / "runs").iterdir())
    assert len(runs_) == 1 and runs_[0].name.startswith("mlp-mnist-")
    metrics = json.loads((runs_[0] / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert metrics["epochs"] == 5 and metrics["train_images"] == 54000 and metrics["test_images"] == 10000
    assert "Epoch 5/5" in result.stdout  # Keras's per-epoch progress reached the last epoch
    assert "oneDNN" not in result.stderr and "absl::InitializeLog" not in result.stderr  # TF noise kept away


@pytest.mark.slow
def test_predict_py_headless_saves_the_grid(original_run):
    workdir, _ = original_run
    result = run_cli(script="predict.py", cwd=workdir)
    assert result.returncode == 0, result.stderr
    saved = re.search(r"Saved the figure to (\S+)", result.stdout)
    assert saved, result.stdout
    assert (workdir / saved.group(1)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    correct = re.search(r"^(\d+) of 24 correct$", result.stdout, re.MULTILINE)
    assert correct and int(correct.group(1)) >= 21  # a 97% model gets nearly all of 24 right


def _train_command(out):
    return [sys.executable, "-m", "digits.cli", "train", "--limit", "12000", "--epochs", "4", "--out", str(out)]


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = subprocess.run(_train_command(tmp_path / "reference"), capture_output=True, text=True,
                               env=environment, timeout=600)
    assert reference.returncode == 0, reference.stderr

    log = tmp_path / "killed.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(_train_command(tmp_path / "resumed"), stdout=stream, stderr=subprocess.STDOUT,
                                   env=environment)
        deadline = time.time() + 300
        while "Epoch 3/4" not in log.read_text() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # no chance to clean up: a real crash
        process.wait()
    assert "Epoch 3/4" in log.read_text(), log.read_text()
    assert not (tmp_path / "resumed").exists()  # a killed run never looks finished
    assert list(tmp_path.glob(".partial-*"))  # ...but its progress is kept aside

    resumed = subprocess.run(_train_command(tmp_path / "resumed"), capture_output=True, text=True,
                             env=environment, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed from epoch 2" in resumed.stderr
    assert "Epoch 1/4" not in resumed.stdout and "Epoch 3/4" in resumed.stdout
    assert not list(tmp_path.glob(".partial-*"))

    first = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    second = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert len(history["loss"]) == 4 and second["epochs"] == 4
    # Resuming restores weights and optimizer state but not the shuffle order: equal within noise.
    assert abs(first["test_accuracy"] - second["test_accuracy"]) < 0.01
    assert second["test_accuracy"] > 0.93  # 12,000 images, 4 epochs: about 0.94-0.95
    names = {path.name for path in (tmp_path / "resumed").iterdir()}
    assert {"model.onnx", "model.tflite"} <= names and second["model_files"] == ["keras", "litert", "onnx"]


def _scalars(directory) -> dict[str, list[int]]:
    """tag -> the steps (epochs) it was written at, from the TensorBoard event files under `directory`."""
    from digits import runtime

    tf = runtime.load()
    from tensorboard.compat.proto import event_pb2

    found: dict[str, list[int]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(event.step)
    return found


def test_a_run_writes_tensorboard_logs_and_can_skip_them(tiny_run, tmp_path):
    train_tags = _scalars(tiny_run / "tensorboard" / "train")
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert train_tags.get(tag) == [0], train_tags  # one epoch: one scalar each, the learning rate included
    assert _scalars(tiny_run / "tensorboard" / "validation").get("epoch_accuracy") == [0]
    result = run_cli("train", "--epochs", "1", "--limit", "500", "--out", str(tmp_path / "quiet"), "--no-tensorboard",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "quiet" / "tensorboard").exists()


# A `digits train` that a SIGKILL stops in the middle of writing model.keras (the final save): the temporary file
# is created, then the process dies with no chance to clean up, exactly as a kill at that moment leaves things.
KILLED_AT_FINAL_SAVE = """
import os, signal, sys
from digits import cli, export, files

def save_model(model, directory):
    with files.atomic_path(directory / "model.keras") as temporary:
        temporary.write_bytes(b"")
        os.kill(os.getpid(), signal.SIGKILL)

export.save_model = save_model
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_run_killed_during_its_final_save_resumes_without_retraining(tmp_path):
    arguments = ["train", "--epochs", "2", "--limit", "1500", "--no-tensorboard", "--out", str(tmp_path / "run")]
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_FINAL_SAVE, *arguments], capture_output=True, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert "Epoch 2/2" in killed.stdout and not (tmp_path / "run").exists()

    again = run_cli(*arguments, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resumed from epoch 2" in again.stderr  # both epochs were finished and kept: none is trained again
    assert "Epoch 1/2" not in again.stdout and "Epoch 2/2" not in again.stdout, again.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs"] == 2
    assert not [path.name for path in (tmp_path / "run").iterdir() if path.name.startswith(".")]  # no temporary file
    assert not list(tmp_path.glob(".partial-*"))


def test_a_backup_killed_while_written_resumes_from_the_previous_epoch(tmp_path):
    """A kill while Keras wrote the backup's training_metadata.json leaves half of it: the previous state is used."""
    arguments = ["train", "--epochs", "2", "--limit", "1500", "--no-tensorboard", "--out", str(tmp_path / "run")]
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_FINAL_SAVE, *arguments], capture_output=True, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [backup] = tmp_path.glob(".partial-*/backup")
    assert json.loads((backup / "training_metadata.json.bkp").read_text())["epoch"] == 1
    (backup / "training_metadata.json").write_text('{"epo')
    again = run_cli(*arguments, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resumed from epoch 1" in again.stderr and "Epoch 2/2" in again.stdout and "Epoch 1/2" not in again.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["resumed_from_epoch"] == 1


def test_a_second_train_into_the_same_out_is_refused_at_once(tmp_path):
    arguments = ["train", "--epochs", "30", "--limit", "3000", "--no-tensorboard", "--out", str(tmp_path / "run")]
    log = tmp_path / "first.log"
    with open(log, "w") as stream:
        first = subprocess.Popen([sys.executable, "-m", "digits.cli", *arguments], stdout=stream,
                                 stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)
        try:
            deadline = time.time() + 300
            while "Epoch 1/30" not in log.read_text() and first.poll() is None and time.time() < deadline:
                time.sleep(0.1)
            assert "Epoch 1/30" in log.read_text(), log.read_text()[-2000:]
            second = run_cli(*arguments, cwd=tmp_path)
            assert first.poll() is None  # the first run trains on, untouched
        finally:
            first.kill()
            first.wait()
    line = assert_clean_error(second, "already training", f"pid {first.pid}", "--out")
    assert "Epoch" not in second.stdout, line  # refused before any work
    [partial] = tmp_path.glob(".partial-*")
    with open(partial / train.LOCK_FILE, "a") as stream:  # the lock died with the first run: the next one may go on
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
