"""A tracking server that dies after writing a run and before answering makes MLflow's client retry the request, and
the retry writes the run a second time. The sweep's writer finds such twins by their request key when the sweep
finishes and deletes them, leaving every other run alone (another sweep's, a run of the same name)."""

from __future__ import annotations

from mlflow.models import Model
from mlflow.tracking import MlflowClient

from atlas.runs import Level, RunWriter, Tag, pack_model


def _retry(client: MlflowClient, experiment_id: str, run_id: str) -> str:
    """What a retried create-run request writes: a second run with the very same name and tags."""
    run = client.get_run(run_id)
    return client.create_run(experiment_id, tags=dict(run.data.tags), run_name=run.info.run_name).info.run_id


def test_runs_and_models_a_retried_request_wrote_twice_are_deleted_and_nothing_else(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    writer = RunWriter(uri, str(tmp_path / "artifacts"))
    client = writer.client
    experiment = writer.experiment("desk")
    execution = writer.start(experiment, "execution", {Tag.LEVEL: Level.EXECUTION})
    unit = writer.start(experiment, "unit", {Tag.LEVEL: Level.WORK_UNIT, Tag.EXECUTION: execution}, parent=execution)
    trial = writer.start(experiment, "dnn #0", {Tag.LEVEL: Level.TRIAL, Tag.EXECUTION: execution}, parent=unit)
    folder = tmp_path / "model"
    folder.mkdir()
    Model(artifact_path="model").save(folder / "MLmodel")
    model_id = writer.log_model(trial, experiment, pack_model(folder), name="dnn #0")

    twins = [_retry(client, experiment, run_id) for run_id in (execution, unit, trial)]
    twin_model = client.create_logged_model(experiment, name="dnn #0", source_run_id=trial).model_id  # left PENDING
    # not twins: another sweep's trial of the same name, and a run started by hand under the same execution
    other = RunWriter(uri, str(tmp_path / "artifacts"))
    foreign = other.start(experiment, "dnn #0", {Tag.LEVEL: Level.TRIAL, Tag.EXECUTION: execution}, parent=unit)
    by_hand = client.create_run(experiment, tags={Tag.EXECUTION: execution}, run_name="unit").info.run_id
    writer.end(trial, "finished")

    assert writer.remove_duplicates(experiment, execution) == 4
    for run_id in twins:
        assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    for run_id in (execution, unit, trial, foreign, by_hand):
        assert client.get_run(run_id).info.lifecycle_stage == "active"
    models = {m.model_id for m in client.search_logged_models([experiment])}
    assert model_id in models and twin_model not in models
    assert writer.remove_duplicates(experiment, execution) == 0  # nothing left to remove
