"""Tuning on real storage: a SQLite study end to end and shared by workers (one of them killed and restarted).
PostgreSQL's workers are in test_tune_postgres.py."""

import json
import socket

import pytest

from helpers import TUNE_TRIAL as TRIAL
from helpers import assert_clean_error, kill_a_worker_mid_trial, run_cli, study_trials, tune_worker, worker_failures

pytestmark = pytest.mark.slow


def test_sqlite_study_resumes_and_its_best_config_trains(tmp_path):
    recipe = tmp_path / "recipe.json"  # the full budget the best config keeps; trials train TRIAL's shorter one
    recipe.write_text(json.dumps({"model": "mlp", "epochs": 3, "limit": 4000}))
    first = run_cli("tune", *TRIAL, "--config", str(recipe), "--trials", "3", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "runs" / "tune-mlp-mnist"
    assert (tmp_path / "runs" / "tune.db").is_file()  # the default storage: a SQLite file
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials) == 3 and {trial["state"] for trial in trials} <= {"COMPLETE", "PRUNED"}
    assert "Best trial" in first.stdout and (out / "optimization_history.png").is_file()
    assert (out / "param_importances.png").is_file()

    assert first.stderr.count("3/3") == 1, first.stderr  # the finished progress bar is drawn once
    again = run_cli("tune", *TRIAL, "--config", str(recipe), "--trials", "4", cwd=tmp_path)  # resumes the study
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(json.loads((out / "trials.json").read_text())) == 4

    best = json.loads((out / "best.json").read_text())
    assert best["model"] == "mlp" and "hidden_units" in best["model_args"]
    assert (best["epochs"], best["limit"]) == (3, 4000)  # the recipe's budget, not the trials' (2 on 1500)
    search = json.loads((out / "search.json").read_text())
    assert search["trial_budget"] == {"epochs": 2, "limit": 1500} and search["params"] == trials_params(out, search)
    assert "full budget (3 epoch(s) on 4000" in again.stdout
    finished = [row for row in json.loads((out / "trials.json").read_text()) if row["state"] == "COMPLETE"]
    assert finished and all(list((tmp_path / row["run"] / "tensorboard" / "train").glob("events.out.tfevents.*"))
                            for row in finished)  # every finished trial wrote its TensorBoard logs
    trained = run_cli("train", "--config", str(out / "best.json"), "--out", str(tmp_path / "best-run"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "Test accuracy: 0." in trained.stdout


def trials_params(out, search) -> dict:
    """The parameters trials.json records for the best trial."""
    rows = json.loads((out / "trials.json").read_text())
    return next(row["params"] for row in rows if row["number"] == search["best_trial"])


def test_unreachable_storage_is_one_line(tmp_path):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("tune", *TRIAL, "--trials", "2", "--storage", f"postgresql+psycopg://digits@127.0.0.1:{port}/x",
                     cwd=tmp_path)
    assert_clean_error(result, "cannot open the study storage", "Connection refused")
    assert_clean_error(run_cli("tune", *TRIAL, "--trials", "0", cwd=tmp_path), "--trials must be at least 1")


FAST = ["--model", "mlp", "--epochs", "1", "--limit", "1000"]  # the smallest real trial


def _key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


# digits tune runs its trials with Study.optimize; this test asks and tells by hand on purpose, so Optuna warns
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_the_sampler_draws_by_trial_number_so_workers_differ_and_one_worker_repeats_itself(tmp_path):
    """Two workers (two Study objects, each with its own sampler, same seed) asking in turn from one SQLite study
    never draw the same parameters; a second study with the same seed draws the same sequence again."""
    from digits import tune

    space = tune.TRAINING_SPACE

    def draw(study):
        trial = study.ask()
        params = {name: tune._suggest(trial, name, spec) for name, spec in space.items()}
        study.tell(trial, 0.5)
        return _key(params)

    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    first, second = tune.open_study(storage, "shared", seed=7), tune.open_study(storage, "shared", seed=7)
    shared = [draw(worker) for _ in range(3) for worker in (first, second)]
    assert len(set(shared)) == len(shared)
    alone = tune.open_study(storage, "alone", seed=7)
    assert [draw(alone) for _ in range(6)] == shared  # trial k draws the same, whichever worker runs it


def _open(path) -> str:
    from digits import tune

    try:
        tune.open_study(f"sqlite:///{path}", "race", seed=0, heartbeat=1)
        return "ok"
    except ValueError as error:
        return str(error)


def test_workers_opening_a_fresh_sqlite_study_together_all_open_it(tmp_path):
    """Processes that open a new SQLite study at the same moment race to create Optuna's tables; SQLite tells the
    losers "table ... already exists" as an OperationalError (PostgreSQL as a ProgrammingError): they retry.
    Before the fix, 3 of 15 such rounds had a loser fail (and this test failed)."""
    import multiprocessing

    rounds = [tmp_path / f"race-{k}.db" for k in range(12)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(int, range(8))  # the processes are up and warm, so each round's four opens start together
        results = [pool.map(_open, [path] * 4) for path in rounds]
    assert all(result == "ok" for round_ in results for result in round_), results


def test_two_workers_on_a_sqlite_study_never_repeat_a_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    workers = [tune_worker(storage, "pair", 4, tmp_path, FAST) for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), worker_failures(workers, outputs)
    finished = [trial for trial in study_trials(storage, "pair") if trial.state.name in ("COMPLETE", "PRUNED")]
    assert 4 <= len(finished) <= 5  # both may start the last trial together: at most one extra
    assert len({_key(trial.params) for trial in finished}) == len(finished)  # no parameter set twice


def test_a_worker_killed_and_restarted_within_the_grace_period_loses_no_trial(tmp_path):
    """The restarted worker finds the dead trial still RUNNING (its heartbeat is not stale yet): it runs what is
    missing, then waits for the grace period to end, retries the dead trial and removes its partial directory."""
    storage, trials_dir = f"sqlite:///{tmp_path / 'tune.db'}", tmp_path / "runs" / "tune-restart" / "trials"
    # the second worker starts well within 3 heartbeats of the kill
    started = lambda _: list(trials_dir.glob(".partial-*"))  # noqa: E731 - its work in progress is on disk
    running, trials = kill_a_worker_mid_trial(storage, "restart", 4, tmp_path, started, trial=FAST, heartbeat=10)
    assert trials[running.number].state.name == "FAIL"
    retries = [trial for trial in trials.values() if trial.system_attrs.get("failed_trial") == running.number]
    assert len(retries) == 1 and retries[0].state.name in ("COMPLETE", "PRUNED")
    assert retries[0].params.items() >= trials[running.number].params.items()
    finished = [trial for trial in trials.values() if trial.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4  # no trial lost, none counted twice
    assert len({_key(trial.params) for trial in finished}) == 4
    assert not [trial for trial in trials.values() if trial.state.name in ("RUNNING", "WAITING")]
    assert not list(trials_dir.glob(".partial-*"))  # the dead trial's work in progress is gone
