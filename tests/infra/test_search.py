"""Optuna studies per model spec, without Ray: grids queued once, resumed without duplicates, ranges sampled."""

from __future__ import annotations

import json

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from atlas.exceptions import ConfigError
from atlas.infra import ModelSpec, Search
from atlas.infra._search import ModelStudy, check_resumable, study_name
from atlas.infra._trial import split_validation

GRID = ModelSpec("dnn", "dnn_classifier", {"hidden_units": [[8], [16, 8]], "learning_rate": [0.001, 0.01, 0.1]})


def open_study(tmp_path, spec=GRID, search=None, *, execution="run-1", resume=False, replicates=1) -> ModelStudy:
    search = search or Search("grid")
    return ModelStudy.open(f"sqlite:///{tmp_path / 'optuna.db'}", study_name("sweep", "u", spec), "u", spec, search,
                           seed=1, execution=execution, resume=resume, replicates=replicates)


def run_all(study: ModelStudy, loss: float = 0.6) -> list[tuple[dict, int]]:
    asked = []
    while study.remaining:
        number, params, replicate = study.ask()
        asked.append((params, replicate))
        study.tell(number, "finished", [loss + 0.1, loss], loss)
    return asked


def test_a_grid_is_asked_point_by_point_with_list_values_decoded_and_the_objective_named(tmp_path):
    study = open_study(tmp_path)
    asked = [params for params, _ in run_all(study)]
    assert len(asked) == 6 and study.done == 6
    assert sorted(json.dumps(p, sort_keys=True) for p in asked) == sorted(
        json.dumps(p, sort_keys=True) for p in GRID.grid_points())
    assert all(isinstance(p["hidden_units"], list) for p in asked)  # [16, 8], not its JSON
    assert study.history() == [[0.7, 0.6]] * 6
    assert study.study.metric_names == ["val_loss"]


def test_resume_runs_only_the_points_not_finished_and_reruns_killed_and_orphaned_ones(tmp_path):
    study = open_study(tmp_path)
    finished = [study.ask() for _ in range(3)]
    study.tell(finished[0][0], "finished", [0.5], 0.5)
    study.tell(finished[1][0], "pruned", [0.9], None)
    study.tell(finished[2][0], "killed", [], None)  # Ctrl-C
    study.ask()  # left RUNNING: its driver "died"

    again = open_study(tmp_path, resume=True)
    assert again.done == 2 and again.remaining == 4
    points = [json.dumps(p, sort_keys=True) for p, _ in run_all(again, 0.4)]
    done_before = {json.dumps(p, sort_keys=True) for _, p, _ in finished[:2]}
    assert len(points) == 4 and len(set(points)) == 4 and not done_before & set(points)
    states = [t.state for t in again.study.trials]
    assert states.count(TrialState.COMPLETE) == 5 and states.count(TrialState.PRUNED) == 1
    assert states.count(TrialState.FAIL) == 2  # the killed trial and the orphan, both run again


def test_a_study_is_kept_per_model_spec_across_executions_and_each_runs_its_own_grid(tmp_path):
    first = open_study(tmp_path, execution="run-1")
    run_all(first)
    second = open_study(tmp_path, execution="run-2")
    assert second.study.study_name == first.study.study_name  # the same study, kept
    assert second.done == 0 and second.remaining == 6       # the new execution's own grid
    run_all(second, 0.5)
    assert len(second.study.trials) == 12
    assert {t.user_attrs["execution"] for t in second.study.trials} == {"run-1", "run-2"}
    # an execution left running elsewhere never has its trials failed by another's start
    third = open_study(tmp_path, execution="run-3")
    third.ask()
    open_study(tmp_path, execution="run-4", resume=True)
    assert [t.state for t in third.study.trials if t.user_attrs["execution"] == "run-3"] == [TrialState.RUNNING]


def test_a_changed_model_spec_gets_a_study_of_its_own(tmp_path):
    changed = ModelSpec("dnn", "dnn_classifier", {"hidden_units": [[8]], "learning_rate": [0.001, 0.01]})
    assert study_name("sweep", "u", changed) != study_name("sweep", "u", GRID)
    assert study_name("sweep", "u", GRID).startswith("sweep.u.dnn.")


def test_resuming_an_execution_whose_model_spec_changed_is_refused():
    from atlas.data import FeatureLabelSet, LogReturns
    from atlas.infra import WorkSpec, WorkUnit

    fls = FeatureLabelSet([LogReturns().bitstamp().lookback(1)], [LogReturns().bitstamp().lookforward(1)])
    windows = (("2024-01-01", "2024-01-05"), ("2024-01-05 01:00", "2024-01-06"))
    regressor = ModelSpec("linear", "linear_regressor", {"l2": [0.0, 0.001]})
    recorded = json.loads(json.dumps(WorkSpec("w", [WorkUnit("u", fls, *windows, [regressor])]).to_dict()))
    check_resumable(recorded, WorkSpec("w", [WorkUnit("u", fls, *windows, [regressor])]))
    changed = ModelSpec("linear", "linear_regressor", {"l2": [0.0, 0.01]})
    with pytest.raises(ConfigError, match="its model spec changed since the sweep started"):
        check_resumable(recorded, WorkSpec("w", [WorkUnit("u", fls, *windows, [changed])]))


def test_grid_points_share_their_seed_and_replicates_train_each_point_with_each_seed(tmp_path):
    study = open_study(tmp_path, replicates=3)
    asked = run_all(study)
    assert study.planned == 18 and len(asked) == 18
    by_point: dict[str, list[int]] = {}
    for params, replicate in asked:
        by_point.setdefault(json.dumps(params, sort_keys=True), []).append(replicate)
    assert len(by_point) == 6 and all(sorted(r) == [0, 1, 2] for r in by_point.values())
    resumed = open_study(tmp_path, replicates=3, resume=True)
    assert resumed.remaining == 0


def test_random_search_samples_ranges_within_the_budget_and_reproduces_with_a_seed(tmp_path):
    spec = ModelSpec("dnn", "dnn_classifier", {"learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
                                               "dropout": [0.0, 0.2]})

    def sample(folder):
        folder.mkdir()
        study = open_study(folder, spec, Search("random", n_trials=4))
        values = []
        while study.remaining:
            number, params, _ = study.ask()
            values.append((params["learning_rate"], params["dropout"]))
            study.tell(number, "finished", [0.6], 0.6)
        return values

    first, second = sample(tmp_path / "a"), sample(tmp_path / "b")
    assert len(first) == 4 and first == second
    assert all(1e-4 <= lr <= 1e-1 and dropout in (0.0, 0.2) for lr, dropout in first)


def test_the_validation_block_is_the_latest_samples_after_a_purge():
    train, validation = split_validation(1000, 0.2, 5)
    assert (train.stop, validation.start, validation.stop) == (795, 800, 1000)
    with pytest.raises(ConfigError, match="too few to hold out"):
        split_validation(4, 0.5, 3)
