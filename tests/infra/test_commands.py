"""`atlas train`, `atlas harvest` and `mlflow run .`, as a user runs them: subprocesses, real stores."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from atlas.runs import Tag

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


@pytest.fixture
def spec_file(tmp_path) -> Path:
    """A two-trial work spec of scripted models (quick), written where a user keeps experiments."""
    path = tmp_path / "tiny.py"
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import _scripted
        from _units import next_minute_unit
        from atlas.infra import Digest, ModelSpec, WorkSpec, ship_by_value
        ship_by_value(_scripted)
        SPEC = WorkSpec("tiny", [next_minute_unit("u", ModelSpec("s", _scripted.ScriptedClassifier,
                                                                 {{"loss": [1.0, 2.0]}}))], log_models=0,
                       digest=Digest(cards=0))
    """))
    return path


@pytest.fixture
def environment(sweep_settings) -> dict:
    return {**os.environ, "ATLAS_HOME": str(sweep_settings.home), "ATLAS_STORE_URL": sweep_settings.store.url,
            "MLFLOW_TRACKING_URI": sweep_settings.tracking.mlflow_uri,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # as in an activated environment


def atlas(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "atlas"), *args], env=env, capture_output=True, text=True, timeout=300)


def test_dry_run_prints_the_plan_and_trains_nothing(spec_file, environment, sweep_settings):
    done = atlas("train", str(spec_file), "--dry-run", env=environment)

    assert done.returncode == 0, done.stderr
    assert "tiny: 2 trials, search grid" in done.stdout
    assert "u/s" in done.stdout and "scripted_classifier" in done.stdout and "train " in done.stdout
    assert not Path(sweep_settings.home, "mlflow.db").exists()


def test_train_then_harvest_to_parquet_and_csv(spec_file, environment, sweep_settings, tmp_path):
    trained = atlas("train", str(spec_file), "--max-concurrent", "1", env=environment)
    assert trained.returncode == 0, trained.stderr
    assert "tiny: 2 trials" in trained.stdout and "2 finished" in trained.stdout
    assert "mlflow ui --backend-store-uri" in trained.stdout
    progress = trained.stderr.splitlines()  # not a terminal: one line per finished trial
    assert [line.split()[0] for line in progress if line.startswith("[")] == ["[1/2]", "[2/2]"]
    assert "failed 0, pruned 0, best val_loss 0.8500 (u/s#0)" in progress[-1]  # 1.0 falling 5% an epoch

    for suffix in ("parquet", "csv"):
        output = tmp_path / f"results.{suffix}"
        harvested = atlas("harvest", str(spec_file), "--output", str(output), env=environment)
        assert harvested.returncode == 0, harvested.stderr
        frame = pd.read_parquet(output) if suffix == "parquet" else pd.read_csv(output)
        assert sorted(frame["param.loss"].astype(float)) == [1.0, 2.0] and set(frame["state"]) == {"finished"}
    assert "tiny: 2 trials 2 finished" in harvested.stdout


def test_a_sweep_whose_every_trial_fails_exits_non_zero_with_the_reason(spec_file, environment):
    spec_file.write_text(spec_file.read_text().replace('{"loss": [1.0, 2.0]}', '{"behaviour": "raise"}'))
    done = atlas("train", str(spec_file), env=environment)

    assert done.returncode == 1
    assert "Failed: u/s#0: RuntimeError: scripted failure: this trial raises on purpose" in done.stderr
    assert "every trial failed" in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("train", "experiments/missing.py"), "spec file experiments/missing.py does not exist"),
    (("harvest", "no_such_spec"), "nothing has been trained there"),  # a fresh home: no tracking store yet
    (("harvest", "tiny", "--output", "results.xlsx"), None),
])
def test_command_errors_name_the_problem(args, message, environment, spec_file):
    if message is None:  # a harvest to an unknown format: the spec must exist first
        assert atlas("train", str(spec_file), "--quiet", env=environment).returncode == 0
        message = "results are written as .parquet or .csv"
    done = atlas(*args, env=environment)
    assert done.returncode == 2 and message in done.stderr


def test_mlflow_run_trains_a_spec_as_the_project_run(spec_file, environment, sweep_settings, tmp_path):
    command = [str(BIN / "mlflow"), "run", str(ROOT), "--env-manager", "local", "--experiment-name", "tiny",
               "-P", f"spec={spec_file}", "-P", "max_concurrent=1"]
    # from another folder: MLflow gives an experiment it creates artifacts under ./mlruns of the current folder
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    client = MlflowClient(sweep_settings.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    roots = [r for r in runs if Tag.PARENT not in r.data.tags]
    assert len(roots) == 1 and roots[0].data.tags[Tag.LEVEL] == "execution"
    assert roots[0].data.tags.get("mlflow.project.entryPoint") == "main" and roots[0].info.status == "FINISHED"
    unit = next(r for r in runs if r.data.tags.get(Tag.LEVEL) == "work_unit")
    trials = [r for r in runs if r.data.tags.get(Tag.LEVEL) == "trial"]
    assert unit.data.tags[Tag.PARENT] == roots[0].info.run_id
    assert len(trials) == 2 and all(t.data.tags[Tag.PARENT] == unit.info.run_id for t in trials)


def test_every_command_has_an_mlproject_entry_point():
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    commands = {" ".join(point["command"].split("atlas ", 1)[1].split()[:2]).split(" {")[0].split(" --")[0]
                for point in project["entry_points"].values()}
    assert {"train", "harvest", "report", "data simulate", "data metrics", "data info", "data series",
            "data import", "featureset build"} <= commands
    assert project["conda_env"] == "conda.yaml"
