"""harvest and write_results on MLflow stores written as a sweep writes them (``RunWriter``), without Ray.

One SQLite store per module holds the work spec "grid" twice: an older execution of 4 trials and the latest of
150, three work units x two model specs, written in a shuffled order, with pruned and failed trials and one
trial left RUNNING as a driver that died leaves it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from atlas.config import Settings
from atlas.exceptions import ConfigError
from atlas.infra import harvest
from atlas.runs import COLUMNS, RunWriter, Tag, _harvest, write_results

EXECUTION, LEVEL, MODEL_SPEC, STATE, TRIAL, WORK_SPEC, WORK_UNIT = (
    Tag.EXECUTION, Tag.LEVEL, Tag.MODEL_SPEC, Tag.STATE, Tag.TRIAL, Tag.WORK_SPEC, Tag.WORK_UNIT)

UNITS = ("unit_a", "unit_b", "unit_c")
SPECS = (("dnn", "dnn_classifier"), ("lstm", "lstm_classifier"))


def record_sweep(tracker: RunWriter, name: str, trials: int, *, seed: int, running: int | None = None) -> dict:
    """One execution of ``trials`` trial runs over UNITS x SPECS, in a shuffled order; trial ``running`` (an
    index) is started and never ended. Returns the execution's run id and each trial's expected row by run
    id."""
    rng = np.random.default_rng(seed)
    experiment_id = tracker.experiment(name)
    execution = tracker.start(experiment_id, name, {LEVEL: "execution", WORK_SPEC: name})
    unit_runs = {unit: tracker.start(experiment_id, unit, {LEVEL: "work_unit", WORK_SPEC: name,
                                                            EXECUTION: execution, WORK_UNIT: unit},
                                     parent=execution) for unit in UNITS}
    cells = [(unit, spec) for unit in UNITS for spec in SPECS]
    expected = {}
    for index in rng.permutation(trials):
        unit, (spec, kind) = cells[index % len(cells)]
        number = int(index) // len(cells)
        tags = {LEVEL: "trial", WORK_SPEC: name, EXECUTION: execution, WORK_UNIT: unit, MODEL_SPEC: spec,
                TRIAL: str(number), Tag.MODEL: kind}
        run_id = tracker.start(experiment_id, f"{unit}.{spec}.{number}", tags, parent=unit_runs[unit])
        row = {"work_unit": unit, "model_spec": spec, "trial": number, "model": kind,
               "work_unit_run_id": unit_runs[unit], "execution_run_id": execution}
        if index == running:
            expected[run_id] = {**row, "state": "unfinished"}
            continue
        state = {1: "pruned", 2: "failed"}.get(int(index) % 7, "finished")
        losses = [round(float(v), 4) for v in np.sort(rng.uniform(0.3, 0.7, 3))[::-1]]
        end = {Tag.HOST: "host-1", Tag.NODE: "10.0.0.1", Tag.ATTEMPTS: str(1 + index % 2),
               STATE: state}
        if state == "failed":
            end[Tag.ERROR] = "ValueError: the loss is NaN"
        metrics = {"test_accuracy": round(float(rng.uniform(0.4, 0.7)), 4), "best_val_loss": min(losses),
                   "epochs": len(losses)}
        learning_rate = float(rng.choice([0.001, 0.01]))
        tracker.log(run_id, params={"model": kind, "learning_rate": learning_rate, "fit.epochs": 3},
                    metrics=metrics, series={"loss": losses, "val_loss": losses}, tags=end)
        tracker.end(run_id, state, tagged=True)
        expected[run_id] = {**row, **metrics, "state": state, "attempts": 1 + index % 2, "loss": losses[-1],
                            "param.learning_rate": str(learning_rate), "error": end.get(Tag.ERROR)}
    for run_id in unit_runs.values():
        tracker.end(run_id, "finished")
    tracker.end(execution, "finished")
    return {"execution": execution, "trials": expected}


def no_fsync(connection, _record) -> None:
    """SQLite commits without waiting for the disk: the same file, built in a third of the time."""
    connection.execute("PRAGMA synchronous = OFF")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """The module's store: "grid" run twice (4 trials, then 150 with one left RUNNING)."""
    settings = Settings.from_env({"ATLAS_HOME": str(tmp_path_factory.mktemp("harvest") / "home")})
    event.listen(Engine, "connect", no_fsync)
    try:
        tracker = RunWriter(settings.tracking.mlflow_uri, settings.tracking.artifact_root)
        older = record_sweep(tracker, "grid", 4, seed=1)
        latest = record_sweep(tracker, "grid", 150, seed=2, running=17)
    finally:
        event.remove(Engine, "connect", no_fsync)
    return {"settings": settings, "older": older, "latest": latest}


@pytest.fixture(scope="module")
def results(store) -> pd.DataFrame:
    return harvest("grid", settings=store["settings"])


def test_harvest_reads_every_trial_over_pages_as_a_sorted_results_frame(store, monkeypatch):
    pages = []
    search_runs = MlflowClient.search_runs

    def counted(self, *args, **kwargs):
        page = search_runs(self, *args, **kwargs)
        pages.append(len(page))
        return page

    monkeypatch.setattr(_harvest, "_PAGE", 50)
    monkeypatch.setattr(MlflowClient, "search_runs", counted)
    frame = harvest("grid", settings=store["settings"])

    expected = store["latest"]["trials"]
    assert pages[1:] == [50, 50, 50]  # after the search for the latest execution: three pages of trials
    assert len(frame) == 150 and set(frame["run_id"]) == set(expected)
    assert list(frame.columns[:len(COLUMNS)]) == COLUMNS
    assert {"param.model", "param.learning_rate", "param.fit.epochs"} <= set(frame.columns)
    assert {"test_accuracy", "epochs", "loss", "val_loss"} <= set(frame.columns)
    assert pd.api.types.is_integer_dtype(frame["trial"]) and pd.api.types.is_integer_dtype(frame["attempts"])
    order = list(zip(frame["work_unit"], frame["model_spec"], frame["trial"], strict=True))
    assert order == sorted(order) and order[:2] == [("unit_a", "dnn", 0), ("unit_a", "dnn", 1)]
    assert list(frame.loc[frame["model_spec"] == "lstm", "trial"][:13]) == list(range(13))  # 2 before 10
    for row in frame.to_dict("records"):
        want = expected[row["run_id"]]
        for column, value in want.items():
            if isinstance(value, float):
                assert row[column] == pytest.approx(value), (row["run_id"], column)
            elif value is None:
                assert pd.isna(row[column]), (row["run_id"], column)
            else:
                assert row[column] == value, (row["run_id"], column)
    assert frame["start_time"].dt.tz is not None and (frame["work_spec"] == "grid").all()
    counts = frame["state"].value_counts().to_dict()
    assert counts == {"finished": 105, "pruned": 22, "failed": 22, "unfinished": 1}


def test_execution_selects_the_latest_all_or_one_execution(store):
    settings, older, latest = store["settings"], store["older"], store["latest"]

    assert set(harvest("grid", settings=settings)["run_id"]) == set(latest["trials"])
    everything = harvest("grid", settings=settings, execution="all")
    assert len(everything) == 154
    assert set(everything["run_id"]) == set(older["trials"]) | set(latest["trials"])
    chosen = harvest("grid", settings=settings, execution=older["execution"])
    assert set(chosen["run_id"]) == set(older["trials"])
    assert (chosen["execution_run_id"] == older["execution"]).all()


def test_a_trial_left_running_by_a_dead_driver_is_unfinished(store, results):
    (run_id,) = [r for r, row in store["latest"]["trials"].items() if row["state"] == "unfinished"]
    row = results.set_index("run_id").loc[run_id]

    assert MlflowClient(store["settings"].tracking.mlflow_uri).get_run(run_id).info.status == "RUNNING"
    assert row["state"] == "unfinished" and pd.isna(row["end_time"]) and pd.isna(row["best_val_loss"])
    assert results.loc[results["run_id"] != run_id, "end_time"].notna().all()


def test_a_sweep_with_no_trial_recorded_yet_is_harvested(store):
    tracker = RunWriter(store["settings"].tracking.mlflow_uri, store["settings"].tracking.artifact_root)
    stalled = record_sweep(tracker, "stalled", 1, seed=3, running=0)

    frame = harvest("stalled", settings=store["settings"])
    assert list(frame["run_id"]) == list(stalled["trials"]) and list(frame["state"]) == ["unfinished"]


def test_an_unknown_work_spec_or_an_unknown_format_is_a_config_error(store, results, tmp_path):
    with pytest.raises(ConfigError, match="has no experiment 'no_such_spec'"):
        harvest("no_such_spec", settings=store["settings"])
    with pytest.raises(ConfigError, match="'0123' is not an execution run of work spec 'grid'"):
        harvest("grid", settings=store["settings"], execution="0123")
    with pytest.raises(ConfigError, match=r"\.parquet or \.csv, got 'results\.xlsx'"):
        write_results(results, tmp_path / "out" / "results.xlsx")
    assert not (tmp_path / "out").exists()


def test_write_results_round_trips_through_parquet_and_csv(results, tmp_path):
    parquet = write_results(results, tmp_path / "nested" / "results.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), pd.DataFrame(results), check_frame_type=False)

    csv = write_results(results, tmp_path / "results.csv")
    back = pd.read_csv(csv, parse_dates=["start_time", "end_time"])
    assert csv.suffix == ".csv" and list(back.columns) == list(results.columns)
    assert list(back["run_id"]) == list(results["run_id"]) and list(back["trial"]) == list(results["trial"])
    assert list(back["state"]) == list(results["state"])
    pd.testing.assert_series_equal(back["test_accuracy"], results["test_accuracy"])
    pd.testing.assert_series_equal(back["start_time"], results["start_time"], check_dtype=False)
