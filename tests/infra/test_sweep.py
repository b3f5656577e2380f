"""Sweeps on a real local Ray cluster, recorded in a real MLflow store (SQLite) and Optuna storage.

Each test runs ``train`` (which starts and stops its own local Ray) on one simulated day, and reads the outcome
back from MLflow, Optuna and the harvested Results frame.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import _scripted
import mlflow
import optuna
import pandas as pd
import pytest
from _scripted import ScriptedClassifier
from _units import next_minute_unit
from mlflow.tracking import MlflowClient

from atlas.data import MarketStore
from atlas.infra import Digest, ModelSpec, Search, WorkSpec, harvest, load_spec, ship_by_value, train
from atlas.runs import Tag, write_results

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]
ship_by_value(_scripted)
NO_CARDS = Digest(cards=0)  # these trials' cards are not under test here (tests/infra/test_digest.py draws them)


def scripted(name: str, **params) -> ModelSpec:
    return ModelSpec(name, ScriptedClassifier, params)


def trial_runs(settings, spec_name: str) -> list:
    client = MlflowClient(settings.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec_name)
    return client.search_runs([experiment.experiment_id], "tags.`atlas.level` = 'trial'", max_results=1000)


def studies(settings) -> dict[str, optuna.Study]:
    storage = settings.tracking.optuna_storage
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
            for s in optuna.get_all_study_summaries(storage)}


def test_a_sweep_records_every_trial_nested_under_its_work_unit_and_execution(sweep_settings, monkeypatch):
    import atlas.infra._driver

    built = []
    build = atlas.infra._driver.build_data
    monkeypatch.setattr(atlas.infra._driver, "build_data", lambda unit, *a: built.append(unit.name) or build(unit, *a))
    dnn = ModelSpec("dnn", "dnn_classifier", {"hidden_units": [8], "learning_rate": [0.001, 0.01]},
                    fit={"epochs": 2, "patience": None})
    logistic = ModelSpec("logistic", "logistic_classifier", {"l2": 0.0}, fit={"epochs": 2})
    spec = WorkSpec("nested", [next_minute_unit("first", dnn, logistic), next_minute_unit("second", dnn, logistic)],
                    seed=3)
    report = train(spec, settings=sweep_settings, progress=False)

    assert report.count("finished") == 6 and report.slots == 2 and not report.interrupted
    assert built == ["first", "second"]  # each unit's data built once, in the driver; trials read the object store
    assert len({r.pid for r in report.results}) == 2  # two long-lived workers ran all six trials
    client = MlflowClient(sweep_settings.tracking.mlflow_uri)
    runs = client.search_runs([report.experiment_id], max_results=100)
    by_level = {level: [r for r in runs if r.data.tags.get(Tag.LEVEL) == level]
                for level in ("execution", "work_unit", "trial")}
    assert [len(by_level[level]) for level in ("execution", "work_unit", "trial")] == [1, 2, 6]
    execution = by_level["execution"][0]
    assert execution.info.run_id == report.execution_run_id and execution.info.status == "FINISHED"
    units = {r.data.tags[Tag.WORK_UNIT]: r for r in by_level["work_unit"]}
    assert all(u.data.tags[Tag.PARENT] == execution.info.run_id for u in units.values())
    with MarketStore(sweep_settings.store.url) as store:
        expected_hash = spec.work_units[0].featureset.dataset(*(spec.work_units[0].train, spec.work_units[0].test),
                                                             store=store, classes=spec.work_units[0].classes,
                                                             seed=3).content_hash
    for run in by_level["trial"]:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags[Tag.PARENT] == units[tags[Tag.WORK_UNIT]].info.run_id
        assert tags[Tag.WORK_SPEC] == "nested" and tags[Tag.MODEL_SPEC] in ("dnn", "logistic")
        assert tags[Tag.DATA_HASH] == expected_hash and tags[Tag.CODE_VERSION]
        assert params["fit.epochs"] == "2" and params["model"] in ("dnn_classifier", "logistic_classifier")
        assert 0 <= metrics["test_accuracy"] <= 1 and metrics["best_val_loss"] > 0 and metrics["fit_seconds"] > 0
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == [0, 1]
        assert run.inputs.dataset_inputs[0].dataset.digest == expected_hash[:36]
        assert len(run.outputs.model_outputs) == 1  # log_models="all"
    learning_rates = sorted(r.data.params["learning_rate"] for r in by_level["trial"]
                            if r.data.tags[Tag.MODEL_SPEC] == "dnn" and r.data.tags[Tag.WORK_UNIT] == "first")
    assert learning_rates == ["0.001", "0.01"]

    model_id = by_level["trial"][0].outputs.model_outputs[0].model_id
    mlflow.set_tracking_uri(sweep_settings.tracking.mlflow_uri)
    try:
        served = mlflow.pyfunc.load_model(f"models:/{model_id}")
    finally:
        mlflow.set_tracking_uri(None)
    names = spec.work_units[0].featureset.feature_names
    prediction = served.predict(pd.DataFrame([[1e-4, -2e-4], [0.0, 3e-4]], columns=names))
    assert list(prediction.columns) == ["class", "p_down", "p_up"] and len(prediction) == 2

    for study in studies(sweep_settings).values():
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == len(study.trials)

    results = harvest("nested", settings=sweep_settings)
    assert len(results) == 6 and set(results["state"]) == {"finished"}
    assert set(results["run_id"]) == {r.info.run_id for r in by_level["trial"]}
    assert results["model_id"].notna().all() and (results["execution_run_id"] == report.execution_run_id).all()
    assert {"param.learning_rate", "test_accuracy", "best_val_loss", "fit_seconds"} <= set(results.columns)
    for suffix in (".parquet", ".csv"):
        path = write_results(results, sweep_settings.home / f"results{suffix}")
        back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        assert list(back["run_id"]) == list(results["run_id"])
        assert back["best_val_loss"].tolist() == pytest.approx(results["best_val_loss"].tolist())


def test_seeded_sweeps_reproduce_and_each_grid_point_runs_once(sweep_settings):
    spec = WorkSpec("seeded", [next_minute_unit()], seed=11, log_models=0, digest=NO_CARDS)
    first = train(spec, settings=sweep_settings, progress=False)
    second = train(spec, settings=sweep_settings, progress=False)

    def losses(report):
        return {json.dumps(r.params, sort_keys=True): r.objective for r in report.results}

    assert len(losses(first)) == 2 and losses(first) == losses(second)
    assert first.execution_run_id != second.execution_run_id
    results = harvest("seeded", settings=sweep_settings, execution="all")
    assert len(results) == 4 and results["model_id"].isna().all()  # log_models=0
    assert len(harvest("seeded", settings=sweep_settings)) == 2  # the latest execution


def test_a_trial_that_raises_is_recorded_failed_with_its_traceback_while_the_others_finish(sweep_settings):
    spec = WorkSpec("failing", [next_minute_unit("u", scripted("s", behaviour=["train", "raise"], loss=[1.0, 2.0]))],
                    log_models=0, digest=NO_CARDS)
    report = train(spec, settings=sweep_settings, progress=False)

    assert report.count("finished") == 2 and report.count("failed") == 2
    failed = next(r for r in trial_runs(sweep_settings, "failing") if r.info.status == "FAILED")
    assert failed.data.params["behaviour"] == "raise"
    assert "scripted failure" in failed.data.tags[Tag.ERROR]
    traceback = MlflowClient(sweep_settings.tracking.mlflow_uri).download_artifacts(
        failed.info.run_id, "traceback.txt", str(sweep_settings.home))
    assert "Traceback" in Path(traceback).read_text() and "raises on purpose" in Path(traceback).read_text()
    study = next(iter(studies(sweep_settings).values()))
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    results = harvest("failing", settings=sweep_settings)
    assert sorted(results["state"]) == ["failed", "failed", "finished", "finished"]
    assert results.loc[results["state"] == "failed", "error"].str.contains("scripted failure").all()


def test_a_killed_worker_is_replaced_and_its_trial_retried(sweep_settings, tmp_path):
    marker = tmp_path / "died"
    spec = WorkSpec("dying", [next_minute_unit("u", scripted("s", behaviour=["die_once", "train"],
                                                                marker=str(marker)))], log_models=0, digest=NO_CARDS)
    report = train(spec, settings=sweep_settings, progress=False)

    assert report.count("finished") == 2
    retried = next(r for r in report.results if r.params["behaviour"] == "die_once")
    assert retried.attempts == 2 and marker.exists() and int(marker.read_text()) != retried.pid
    run = next(r for r in trial_runs(sweep_settings, "dying") if r.data.params["behaviour"] == "die_once")
    assert run.info.status == "FINISHED" and run.data.tags[Tag.ATTEMPTS] == "2"


def test_the_median_pruner_stops_trials_whose_validation_loss_is_worse_than_the_median(sweep_settings):
    spec = WorkSpec("pruned", [next_minute_unit("u", scripted("s", loss=[1.0, 1.1, 1.2, 5.0, 6.0], epochs=6))],
                    search=Search("grid", pruner="median"), max_concurrent=1, log_models=0, digest=NO_CARDS)
    report = train(spec, settings=sweep_settings, progress=False)

    states = {r.params["loss"]: (r.state, len(r.history["val_loss"])) for r in report.results}
    assert {loss: state for loss, (state, _) in states.items()} == {
        1.0: "finished", 1.1: "finished", 1.2: "finished", 5.0: "pruned", 6.0: "pruned"}
    assert states[5.0][1] < 6 and states[1.2][1] == 6
    study = next(iter(studies(sweep_settings).values()))
    assert sorted(t.state.name for t in study.trials).count("PRUNED") == 2


def test_tpe_search_samples_ranges_within_the_budget(sweep_settings):
    from optuna.distributions import FloatDistribution

    spec = WorkSpec("searched", [next_minute_unit("u", scripted("s", loss=FloatDistribution(0.5, 2.0),
                                                                  epochs=[2, 3]))],
                    search=Search("tpe", n_trials=5), log_models=0, seed=4)
    report = train(spec, settings=sweep_settings, progress=False)

    assert report.count("finished") == 5
    assert all(0.5 <= r.params["loss"] <= 2.0 and r.params["epochs"] in (2, 3) for r in report.results)
    assert len({r.params["loss"] for r in report.results}) == 5


def test_an_interrupted_sweep_resumes_and_finishes_the_grid_without_duplicates(sweep_settings, tmp_path):
    spec_file = tmp_path / "slow.py"
    spec_file.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import _scripted
        from _units import next_minute_unit
        from atlas.infra import Digest, ModelSpec, WorkSpec, ship_by_value
        ship_by_value(_scripted)
        SPEC = WorkSpec("slow", [next_minute_unit("u", ModelSpec("s", _scripted.ScriptedClassifier,
                        {{"loss": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "epochs": 2, "seconds": 0.75}}))],
                        max_concurrent=1, log_models=0, digest=Digest(cards=0))
    """))
    environment = {**os.environ, "ATLAS_HOME": str(sweep_settings.home), "ATLAS_STORE_URL": sweep_settings.store.url,
                   "PYTHONUNBUFFERED": "1"}
    command = [str(Path(sys.executable).parent / "atlas"), "train", str(spec_file)]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:  # interrupt once two trials have finished
        lines.append(line)
        if line.startswith("[2/6]"):
            process.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "--resume" in output

    runs = trial_runs(sweep_settings, "slow")
    done_before = [r for r in runs if r.info.status == "FINISHED"]
    assert len(done_before) >= 2 and len(done_before) < 6
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert all(r.data.tags[Tag.STATE] == "killed" for r in killed)

    report = train(load_spec(str(spec_file)), settings=sweep_settings, resume=True, progress=False)

    assert report.count("finished") == 6 - len(done_before)
    finished = [r for r in trial_runs(sweep_settings, "slow") if r.info.status == "FINISHED"]
    assert sorted(float(r.data.params["loss"]) for r in finished) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    study = next(iter(studies(sweep_settings).values()))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["loss"] for t in complete) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    client = MlflowClient(sweep_settings.tracking.mlflow_uri)
    assert client.get_run(report.execution_run_id).info.status == "FINISHED"
    assert len(harvest("slow", settings=sweep_settings)) == len(finished) + len(killed)


def test_a_sweep_runs_across_the_nodes_of_a_two_node_cluster(sweep_settings):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        spec = WorkSpec("two_nodes", [next_minute_unit("u", scripted("s", loss=[1.0, 2.0, 3.0, 4.0], seconds=0.5))],
                        log_models=0, digest=NO_CARDS)
        report = train(spec, settings=sweep_settings, address=cluster.address, progress=False)
    finally:
        cluster.shutdown()

    assert report.count("finished") == 4 and report.slots == 2
    assert len({r.node for r in report.results}) == 2
    assert len({r.data.tags[Tag.NODE] for r in trial_runs(sweep_settings, "two_nodes")}) == 2


def test_a_node_killed_mid_sweep_has_its_trials_rerun_on_the_other_and_the_sweep_finishes(sweep_settings, tmp_path):
    import threading

    from ray.cluster_utils import Cluster

    marker = tmp_path / "nodes.txt"  # each trial appends the node it runs on: the test kills the second node
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        second = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        spec = WorkSpec("node_lost", [next_minute_unit("u", scripted(
            "s", loss=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], seconds=0.5, behaviour="mark", marker=str(marker)))],
            log_models=0, digest=NO_CARDS)
        outcome: dict = {}
        sweep = threading.Thread(target=lambda: outcome.update(report=train(
            spec, settings=sweep_settings, address=cluster.address, progress=False)))
        sweep.start()
        while sweep.is_alive() and not (marker.exists() and second.node_id in marker.read_text()):
            sweep.join(0.05)  # until a trial runs on the second node
        cluster.remove_node(second, allow_graceful=False)  # the machine is gone, with its worker and trial
        sweep.join(300)
        assert not sweep.is_alive(), "the sweep waits for a worker that can never be placed"
    finally:
        cluster.shutdown()
    report = outcome["report"]
    assert report.count("finished") == 6
    retried = [r for r in report.results if r.attempts > 1]
    assert retried and all(r.node != second.node_id for r in retried)  # rerun elsewhere
    runs = trial_runs(sweep_settings, "node_lost")
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}  # nothing lost, nothing twice


def test_fractional_gpus_pack_several_trials_onto_one_gpu(sweep_settings):
    from ray.cluster_utils import Cluster

    from atlas.exceptions import ConfigError
    from atlas.infra import Resources

    # Ray schedules the GPU it is told of: four workers at 0.25 share GPU 0 (TensorFlow here finds no device and
    # trains on the CPU; on a GPU machine the same workers share its memory, which grows on demand)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 1, "include_dashboard": False})
    try:
        spec = WorkSpec("gpus", [next_minute_unit("u", scripted("s", loss=[1.0, 2.0, 3.0, 4.0], seconds=0.5))],
                        resources=Resources(cpu=0.5, gpu=0.25), log_models=0, digest=NO_CARDS)
        report = train(spec, settings=sweep_settings, address=cluster.address, progress=False)
        greedy = WorkSpec("greedy", spec.work_units, resources=Resources(cpu=1, gpu=2), log_models=0,
                          digest=NO_CARDS)
        with pytest.raises(ConfigError, match="needs 1 CPU and 2 GPU, but the Ray cluster has 2.0 CPU and 1.0 GPU"):
            train(greedy, settings=sweep_settings, address=cluster.address, progress=False)
    finally:
        cluster.shutdown()
    client = MlflowClient(sweep_settings.tracking.mlflow_uri)  # checked before any run was opened
    assert client.search_runs([client.get_experiment_by_name("greedy").experiment_id]) == []

    assert report.count("finished") == 4 and report.slots == 4
    assert all(r.gpus == ["0"] for r in report.results) and len({r.pid for r in report.results}) == 4
    assert {r.data.tags[Tag.GPUS] for r in trial_runs(sweep_settings, "gpus")} == {"0"}


def test_a_work_spec_asks_for_a_gpu_type_and_gets_a_node_of_it(sweep_settings):
    from ray.cluster_utils import Cluster

    from atlas.exceptions import ConfigError
    from atlas.infra import Resources

    # two nodes with one declared GPU each, of two types: trials asking for an L4 run on the L4 node only
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 1, "resources": {"accelerator_type:H100": 1}, "include_dashboard": False})
    l4 = cluster.add_node(num_cpus=1, num_gpus=1, resources={"accelerator_type:L4": 1}).node_id
    try:
        unit = next_minute_unit("u", scripted("s", loss=[1.0, 2.0, 3.0, 4.0], seconds=0.2))
        spec = WorkSpec("typed", [unit], resources=Resources(cpu=0.5, gpu=0.5, accelerator="L4"), log_models=0,
                        digest=NO_CARDS)
        report = train(spec, settings=sweep_settings, address=cluster.address, progress=False)
        wrong = WorkSpec("untyped", [unit], resources=Resources(cpu=0.5, gpu=0.5, accelerator="A100"),
                         log_models=0, digest=NO_CARDS)
        with pytest.raises(ConfigError, match=r"asks for a A100 GPU .* of types \['H100', 'L4'\]"):
            train(wrong, settings=sweep_settings, address=cluster.address, progress=False)
    finally:
        cluster.shutdown()
    # two at a time fit on the L4 node (0.5 GPU each); the H100 node's GPU would have taken two more
    assert report.count("finished") == 4 and report.slots == 2 and {r.node for r in report.results} == {l4}
    assert Resources(gpu=0.5, accelerator="L4").to_dict() == {"cpu": 1.0, "gpu": 0.5, "accelerator": "L4"}
    with pytest.raises(ConfigError, match="asks for a L4 GPU, but gpu is 0"):
        Resources(accelerator="L4")


def test_many_quick_trials_on_the_sqlite_store_never_hit_a_locked_database(sweep_settings):
    spec = WorkSpec("quick", [next_minute_unit("u", scripted("s", loss=[1.0 + i / 10 for i in range(24)], epochs=2))],
                    log_models=0, digest=NO_CARDS)
    report = train(spec, settings=sweep_settings, progress=False)

    assert report.count("finished") == 24
    runs = trial_runs(sweep_settings, "quick")
    assert len(runs) == 24 and {r.info.status for r in runs} == {"FINISHED"}


def test_a_work_unit_without_data_in_its_windows_is_named_in_the_error(sweep_settings):
    from atlas.exceptions import MissingDataError
    from atlas.infra import WorkUnit, plan

    empty = WorkUnit("june", next_minute_unit().featureset, ("2017-06-01", "2017-06-20"), ("2017-06-21", "2017-06-30"),
                     [scripted("s")], classes=next_minute_unit().classes)
    with pytest.raises(MissingDataError, match="work unit 'june' .*itbit_next_minute: no complete rows between"):
        plan(WorkSpec("empty", [empty]), settings=sweep_settings)


def test_resuming_with_nothing_to_resume_says_so(sweep_settings):
    from atlas.exceptions import ConfigError

    spec = WorkSpec("never_run", [next_minute_unit("u", scripted("s"))], log_models=0, digest=NO_CARDS)
    with pytest.raises(ConfigError, match="nothing to resume.*run without --resume"):
        train(spec, settings=sweep_settings, resume=True, progress=False)
