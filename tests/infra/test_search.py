"""Optuna studies per model spec, without Ray: grids queued once, resumed without duplicates, ranges sampled."""

from __future__ import annotations

import json

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from atlas.exceptions import ConfigError
from atlas.infra import ModelSpec, Search
from atlas.infra._search import ModelStudy
from atlas.infra._trial import split_validation

GRID = ModelSpec("dnn", "dnn_classifier", {"hidden_units": [[8], [16, 8]], "learning_rate": [0.001, 0.01, 0.1]})


def open_study(tmp_path, spec=GRID, search=None, *, resume=False) -> ModelStudy:
    search = search or Search("grid")
    return ModelStudy.open(f"sqlite:///{tmp_path / 'optuna.db'}", "sweep.u.dnn", "u", spec, search, seed=1,
                           resume=resume)


def test_a_grid_is_asked_point_by_point_with_list_values_decoded(tmp_path):
    study = open_study(tmp_path)
    asked = []
    while study.remaining:
        number, params = study.ask()
        asked.append(params)
        study.tell(number, "finished", [0.7, 0.6], 0.6)
    assert len(asked) == 6 and study.done == 6
    assert sorted(json.dumps(p, sort_keys=True) for p in asked) == sorted(
        json.dumps(p, sort_keys=True) for p in GRID.grid_points())
    assert all(isinstance(p["hidden_units"], list) for p in asked)  # [16, 8], not its JSON
    assert study.history() == [[0.7, 0.6]] * 6


def test_resume_runs_only_the_points_not_finished_and_reruns_killed_and_orphaned_ones(tmp_path):
    study = open_study(tmp_path)
    finished = [study.ask() for _ in range(3)]
    study.tell(finished[0][0], "finished", [0.5], 0.5)
    study.tell(finished[1][0], "pruned", [0.9], None)
    study.tell(finished[2][0], "killed", [], None)  # Ctrl-C
    study.ask()  # left RUNNING: its driver "died"

    again = open_study(tmp_path, resume=True)
    assert again.done == 2 and again.remaining == 4
    points = []
    while again.remaining:
        number, params = again.ask()
        points.append(json.dumps(params, sort_keys=True))
        again.tell(number, "finished", [0.4], 0.4)
    done_before = {json.dumps(p, sort_keys=True) for _, p in finished[:2]}
    assert len(points) == 4 and len(set(points)) == 4 and not done_before & set(points)
    states = [t.state for t in again.study.trials]
    assert states.count(TrialState.COMPLETE) == 5 and states.count(TrialState.PRUNED) == 1
    assert states.count(TrialState.FAIL) == 2  # the killed trial and the orphan, both run again


def test_resuming_a_changed_model_spec_is_refused(tmp_path):
    open_study(tmp_path).ask()
    changed = ModelSpec("dnn", "dnn_classifier", {"hidden_units": [[8]], "learning_rate": [0.001, 0.01]})
    with pytest.raises(ConfigError, match="its model spec changed since the sweep started"):
        open_study(tmp_path, changed, resume=True)


def test_a_study_name_cannot_be_reused_without_resume(tmp_path):
    open_study(tmp_path)
    with pytest.raises(Exception, match="already exists"):
        open_study(tmp_path)


def test_random_search_samples_ranges_within_the_budget_and_reproduces_with_a_seed(tmp_path):
    spec = ModelSpec("dnn", "dnn_classifier", {"learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
                                               "dropout": [0.0, 0.2]})

    def sample(folder):
        folder.mkdir()
        study = open_study(folder, spec, Search("random", n_trials=4))
        values = []
        while study.remaining:
            number, params = study.ask()
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
