"""Hyperparameter tuning: an Optuna study whose trials are ordinary `digits.train` runs.

A trial samples the shared training settings (learning rate, batch size, schedule, label
smoothing, augmentation strength) and the model's own `models.SEARCH_SPACES` entry (width,
depth, dropout) into a `Config`, trains it, and reports validation accuracy after every
epoch so the median pruner can stop bad trials early. The objective is the best validation
accuracy: the test set is never used for selection.

Storage is any SQLAlchemy URL: a SQLite file by default, PostgreSQL for many workers on
many machines. Heartbeats mark a killed worker's trial FAILED once its grace period is over,
and `RetryHeartbeatStaleTrialCallback` re-queues its parameters, so nothing is lost; `--trials N`
counts finished (complete or pruned) trials across all workers, so counts add up: a worker
starts a trial only while finished plus running ones are fewer than N, and otherwise waits
for the running ones to finish, or to go stale and be retried (by it). The sampler's random
draws for trial k come from (seed, k): workers sharing a study never repeat each other, and
one worker alone is reproducible. A dead trial's work-in-progress directory is removed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import time
import warnings
from pathlib import Path
from typing import Callable

from . import config as config_module
from . import files, models, train

TRAINING_SPACE = {  # shared by every model; augmentation strength scales all three transforms
    "learning_rate": ("float", 3e-4, 3e-2, True),
    "batch_size": ("categorical", (32, 64, 128, 256)),
    "schedule": ("categorical", ("constant", "one_cycle")),
    "label_smoothing": ("float", 0.0, 0.2),
    "augment_strength": ("float", 0.0, 1.0),
}
HEARTBEAT_SECONDS = 10  # a running trial's worker writes a heartbeat this often; 3 missed ones = dead


def _suggest(trial, name: str, spec: tuple):
    kind = spec[0]
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec[1]))
    low, high = spec[1], spec[2]
    log = len(spec) > 3 and bool(spec[3])
    if kind == "int":
        step = spec[4] if len(spec) > 4 else 1
        return trial.suggest_int(name, low, high, log=log, step=step)
    return trial.suggest_float(name, low, high, log=log)


def config_for(params: dict, base: config_module.Config) -> config_module.Config:
    """The Config a set of trial parameters stands for (also how the best config is written)."""
    values = {key: value for key, value in params.items() if key in TRAINING_SPACE and key != "augment_strength"}
    strength = params.get("augment_strength", 0.0)
    values.update(augment_shift=3.0 * strength, augment_rotation=12.0 * strength, augment_zoom=0.12 * strength)
    model_args = {**base.model_args, **{key[len("model."):]: value for key, value in params.items()
                                        if key.startswith("model.")}}
    return config_module.from_dict({**values, "model_args": model_args}, base)


def open_study(storage: str, study_name: str, seed: int = 0, heartbeat: int = HEARTBEAT_SECONDS):
    """Create or load a study; an unreachable or invalid storage is a one-line ValueError."""
    import optuna
    import sqlalchemy.exc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
    for attempt in range(6):
        try:
            backend = optuna.storages.RDBStorage(
                storage, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                engine_kwargs={"pool_pre_ping": True, **_connect_args(storage)})
            return optuna.create_study(storage=backend, study_name=study_name, direction="maximize",
                                       load_if_exists=True, sampler=_sampler(seed),
                                       pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError) as error:
            # Workers that start together on a fresh database race to create Optuna's tables (or the
            # study): the loser sees "duplicate key" / "already exists" (SQLite says so with an
            # OperationalError, or finds the file locked by the winner). The winner's work stands: retry.
            if attempt == 5 or not any(text in str(error) for text in RACE_MESSAGES):
                raise _storage_error(storage, error) from None
            time.sleep(0.2 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as error:
            raise _storage_error(storage, error) from None


RACE_MESSAGES = ("duplicate key", "already exists", "UNIQUE", "database is locked")


def _connect_args(storage: str) -> dict:
    """SQLite makes a writer wait at most 5 s for another's lock by default; workers that start together (or a
    busy machine) can hold it longer, so they wait up to a minute before calling the database locked."""
    return {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}


def _sampler(seed: int):
    """TPE whose random draws for trial k are seeded with (seed, k): each trial number belongs to one worker, so
    workers sharing a study draw different parameters, and a single worker draws the same ones every time."""
    import numpy as np
    import optuna

    class PerTrialSeed(optuna.samplers.TPESampler):
        def before_trial(self, study, trial):
            state = int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0])
            for rng in (getattr(self, "_rng", None), getattr(getattr(self, "_random_sampler", None), "_rng", None)):
                if rng is not None:  # TPE's own draws and those of its random start-up trials
                    rng.rng.seed(state)
            super().before_trial(study, trial)

    return PerTrialSeed(seed=seed)


def _storage_error(storage: str, error: Exception) -> ValueError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:240]
    return ValueError(f"cannot open the study storage {storage}: {reason}; check the URL, that the "
                      "database server is running and reachable, and its driver is installed")


def _pruning_callback(trial):
    import keras
    import optuna

    class ReportValidation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            trial.report(float((logs or {}).get("val_accuracy", 0.0)), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

    return ReportValidation()


def objective_for(base: config_module.Config, trials_dir: Path, data_dir=None) -> Callable:
    space = {**TRAINING_SPACE, **{f"model.{key}": spec for key, spec in models.SEARCH_SPACES.get(base.model, {}).items()}}

    def objective(trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # who runs it, for humans and tests
        params = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        settings = config_for(params, base)
        out = trials_dir / f"trial-{trial.number:04d}"
        shutil.rmtree(out, ignore_errors=True)  # a retried trial number never reuses a half-written dir
        trial.set_user_attr("partial", train.partial_dir_for(settings, trials_dir, out).name)  # removed if it dies
        try:
            result = train.train(settings, out=out, data_dir=data_dir, verbose=0, callbacks=(_pruning_callback(trial),))
        finally:  # a pruned trial leaves its work in progress behind; other workers' stay untouched
            shutil.rmtree(train.partial_dir_for(settings, trials_dir, out), ignore_errors=True)
        trial.set_user_attr("run", str(result.run_dir))
        return max(result.history["val_accuracy"])

    return objective


def tune(base: config_module.Config, trials: int, storage: str, study_name: str, out_dir: Path,
         timeout: float | None = None, data_dir=None, on_trial: Callable | None = None,
         heartbeat: int = HEARTBEAT_SECONDS):
    """Run trials until the study holds `trials` finished ones (or `timeout`); returns the study."""
    import optuna
    from optuna.trial import TrialState

    if trials < 1:
        raise ValueError(f"--trials must be at least 1, got {trials}")
    if base.model not in models.MODELS:
        models.create_model(base.model)
    if heartbeat < 1:
        raise ValueError(f"--heartbeat must be at least 1 second, got {heartbeat}")
    study = open_study(storage, study_name, seed=base.seed, heartbeat=heartbeat)
    trials_dir = out_dir / "trials"
    objective = objective_for(base, trials_dir, data_dir)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, and its parameters queued again
        remove_dead_partials(study, trials_dir)
        done, running = finished(study), len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if done >= trials or (deadline is not None and time.monotonic() >= deadline):
            return study
        if done + running < trials:  # a queued retry is taken first
            study.optimize(objective, n_trials=1, callbacks=[on_trial] if on_trial else None, catch=(ValueError,))
        else:  # the rest are running elsewhere: wait for them to finish, or for their heartbeats to stop
            time.sleep(heartbeat)


def remove_dead_partials(study, trials_dir: Path) -> None:
    """Delete the work-in-progress directories of failed trials (a killed worker cannot)."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        name = trial.user_attrs.get("partial")
        if isinstance(name, str) and name.startswith(".partial-") and "/" not in name:
            shutil.rmtree(trials_dir / name, ignore_errors=True)


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def write_results(study, base: config_module.Config, out_dir: Path,
                  recipe: config_module.Config | None = None) -> dict[str, Path]:
    """The best config (a file `digits train --config` takes as is), trials table, and plots.

    `base` is what each trial trained (often a short budget: --epochs, --limit); `recipe` the
    recipe it came from with its full budget (default: `base`). best.json holds the best trial's
    hyperparameters with the recipe's full budget, so training it trains a real model; the
    trials' own budget is recorded beside it, in search.json."""
    recipe = recipe or base
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    import optuna.visualization.matplotlib as optuna_plots

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # their plots are "experimental"

    from . import plots

    best = config_for(study.best_trial.params, recipe)
    paths = {"best_config": files.write_json(out_dir / "best.json",
                                             {key: value for key, value in dataclasses.asdict(best).items()})}
    paths["search"] = files.write_json(out_dir / "search.json", {
        "best_trial": study.best_trial.number, "best_validation_accuracy": study.best_value,
        "params": study.best_trial.params, "trial_budget": {"epochs": base.epochs, "limit": base.limit},
        "best_config_budget": {"epochs": best.epochs, "limit": best.limit}})
    rows = [{"number": trial.number, "state": trial.state.name, "value": trial.value, "params": trial.params,
             "run": trial.user_attrs.get("run")} for trial in study.trials]
    paths["trials"] = files.write_json(out_dir / "trials.json", rows)
    history = optuna_plots.plot_optimization_history(study).get_figure()
    paths["history_png"] = plots.save_figure(history, out_dir / "optimization_history.png")
    if len([trial for trial in study.trials if trial.value is not None]) >= 2:
        importances = optuna_plots.plot_param_importances(study).get_figure()
        paths["importances_png"] = plots.save_figure(importances, out_dir / "param_importances.png")
    return paths
