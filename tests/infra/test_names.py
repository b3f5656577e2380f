"""Names that reach MLflow filters and file paths: refused when a spec is made unless they are safe, and the
filters Atlas builds quote every value, so a quote in a stored name or a run id cannot break or widen a search."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from atlas.config import Settings
from atlas.data import FeatureLabelSet, LogReturns
from atlas.exceptions import ConfigError
from atlas.infra import ModelSpec, WorkSpec, WorkUnit, harvest
from atlas.runs import RunWriter, Tag

EXECUTION, LEVEL, STATE, TRIAL, WORK_SPEC = Tag.EXECUTION, Tag.LEVEL, Tag.STATE, Tag.TRIAL, Tag.WORK_SPEC

FLS = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)], labels=[LogReturns().bitstamp().lookforward(1)])
WINDOWS = {"train": ("2024-01-01", "2024-01-05"), "test": ("2024-01-05 01:00", "2024-01-06")}
BAD = ["it's", 'say"hi"', "../../x", "a/b", "a\\b", "a..b", "tab\there", "new\nline", "nul\x00", "", "x" * 65,
       ".hidden", "-option", "with space", 7]


def model_spec(name="m") -> ModelSpec:
    return ModelSpec(name, "linear_regressor")


def unit(name="u") -> WorkUnit:
    return WorkUnit(name, FLS, model_specs=[model_spec()], **WINDOWS)


@pytest.mark.parametrize("name", BAD, ids=repr)
@pytest.mark.parametrize(("kind", "make"), [("ModelSpec", model_spec), ("WorkUnit", unit),
                                            ("WorkSpec", lambda name: WorkSpec(name, [unit()]))])
def test_a_name_that_a_filter_or_a_path_cannot_carry_is_refused_naming_the_field_and_the_alphabet(kind, make, name):
    with pytest.raises(ConfigError, match=rf"^{kind}: name must be 1 to 64 letters, digits, '_', '-' and '\.'.*"
                                          r"without '\.\.'.*got "):
        make(name)


def test_safe_names_are_accepted():
    for name in ("june_2017", "itbit_next_minute", "dnn.v2-small", "_private", "x" * 64):
        assert WorkSpec(name, [unit(name)]).work_units[0].model_specs[0].name == "m"


def test_an_experiment_name_never_puts_artifacts_outside_the_artifact_root(tmp_path):
    settings = Settings.from_env({"ATLAS_HOME": str(tmp_path / "home")})
    tracker = RunWriter(settings.tracking.mlflow_uri, settings.tracking.artifact_root)
    with pytest.raises(ConfigError, match="WorkSpec: name must be"):
        tracker.experiment("../../escaped")
    assert MlflowClient(settings.tracking.mlflow_uri).get_experiment_by_name("../../escaped") is None
    location = MlflowClient(settings.tracking.mlflow_uri).get_experiment(tracker.experiment("fine")).artifact_location
    assert location == (settings.home / "artifacts" / "fine").as_uri()


def test_filters_quote_names_and_run_ids_so_a_quote_neither_breaks_nor_widens_a_search(tmp_path):
    settings = Settings.from_env({"ATLAS_HOME": str(tmp_path / "home")})
    client = MlflowClient(settings.tracking.mlflow_uri)
    tracker = RunWriter(settings.tracking.mlflow_uri, settings.tracking.artifact_root)
    name = "it's"  # an experiment made by hand, or by an Atlas that accepted any name
    experiment_id = client.create_experiment(name, artifact_location=(tmp_path / "artifacts").as_uri())
    execution = tracker.start(experiment_id, name, {LEVEL: "execution", WORK_SPEC: name})
    unit_run = tracker.start(experiment_id, "u", {LEVEL: "work_unit", WORK_SPEC: name, EXECUTION: execution},
                             parent=execution)
    trial = tracker.start(experiment_id, "u.m.0", {LEVEL: "trial", WORK_SPEC: name, EXECUTION: execution,
                                                    TRIAL: "0"}, parent=unit_run)
    tracker.log(trial, tags={STATE: "finished"})
    tracker.end(trial, "finished", tagged=True)

    assert tracker.latest_execution(experiment_id, name) == execution
    assert tracker.children(experiment_id, execution) == {"u": unit_run}
    assert tracker.unfinished(experiment_id, execution) == [unit_run, execution]
    assert list(harvest(name, settings=settings)["run_id"]) == [trial]
    widened = "x' or tags.`atlas.level` = 'trial"
    with pytest.raises(ConfigError, match="is not an execution run of work spec"):
        harvest(name, settings=settings, execution=widened)
    with pytest.raises(ConfigError, match="is not an execution run of work spec"):
        harvest(name, settings=settings, execution="both ' and \" quotes")
