"""A sweep's lifecycle at every moment, as a user drives it: `atlas train` processes stopped by SIGTERM, SIGKILL and
Ctrl-C at chosen points (``_hooks``: the driver pauses there and says so), resumed, and resumed twice at once.

Whatever stops a driver, no MLflow run stays RUNNING once a driver is back on the execution; one driver at a time
drives it; and one resume finishes the grid, each point once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from atlas.infra import harvest
from atlas.runs import Tag

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray_b")]  # a second group: two local Rays at once


@pytest.fixture
def spec_file(tmp_path) -> Path:
    """A grid of three quick scripted trials, one at a time; HOOK in the environment picks a pause point."""
    path = tmp_path / "lifecycle.py"
    path.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(HERE)!r})
        import _hooks, _scripted
        from _units import next_minute_unit
        from atlas.infra import Digest, ModelSpec, WorkSpec, ship_by_value
        ship_by_value(_scripted)
        SPEC = WorkSpec("lifecycle", [next_minute_unit("u", ModelSpec("s", _scripted.ScriptedClassifier,
                        {{"loss": [1.0, 2.0, 3.0], "epochs": 2}}))], max_concurrent=1, log_models=0,
                        digest=Digest(cards=0))
        _hooks.install(os.environ.get("HOOK"))
    """))
    return path


@pytest.fixture
def environment(sweep_settings) -> dict:
    return {**os.environ, "ATLAS_HOME": str(sweep_settings.home), "ATLAS_STORE_URL": sweep_settings.store.url,
            "PYTHONUNBUFFERED": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def start(spec_file: Path, environment: dict, hook: str | None, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "atlas"), "train", str(spec_file), *args],
                            env={**environment, "HOOK": hook or ""}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def paused(process: subprocess.Popen) -> str:
    """Reads the driver's output until it says it paused; returns what it printed."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("PAUSED"):
            return "".join(lines)
    process.wait()
    pytest.fail(f"the driver ended (status {process.returncode}) without pausing:\n{''.join(lines)}")


def ended(process: subprocess.Popen, before: str = "") -> str:
    return before + process.communicate(timeout=300)[0]


def runs(settings) -> list:
    client = MlflowClient(settings.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name("lifecycle")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def statuses(settings) -> dict[str, list[str]]:
    """Each level's run statuses."""
    found = {}
    for run in runs(settings):
        found.setdefault(run.data.tags[Tag.LEVEL], []).append(run.info.status)
    return {level: sorted(states) for level, states in found.items()}


def assert_interrupted_once(output: str, status: int) -> None:
    assert status == 130, output
    assert len([line for line in output.splitlines() if "nterrupted" in line]) == 1, output
    assert "Aborted!" not in output and "Traceback" not in output, output


def test_a_sweep_stopped_at_any_moment_leaves_no_running_run_and_one_driver_at_a_time_resumes_it(
        spec_file, environment, sweep_settings):
    # SIGTERM once the execution's and the work unit's runs are open, before any trial
    first = start(spec_file, environment, "unit_opened")
    before = paused(first)
    first.send_signal(signal.SIGTERM)
    output = ended(first, before)
    assert_interrupted_once(output, first.returncode)
    assert "marked KILLED. Finish the sweep with: atlas train" in output and "--resume" in output
    assert statuses(sweep_settings) == {"execution": ["KILLED"], "work_unit": ["KILLED"]}

    # a resumed driver killed with SIGKILL while its first trial runs: its runs stay RUNNING ...
    second = start(spec_file, environment, "trial_sent", "--resume")
    paused(second)
    second.kill()
    second.wait()
    assert statuses(sweep_settings) == {"execution": ["RUNNING"], "work_unit": ["RUNNING"], "trial": ["RUNNING"]}
    orphan = next(r for r in runs(sweep_settings) if r.data.tags[Tag.LEVEL] == "trial")

    # ... until the next resume takes the execution over: it marks them KILLED before it starts Ray; Ctrl-C then
    third = start(spec_file, environment, "ray_init", "--resume")
    before = paused(third)
    assert statuses(sweep_settings) == {"execution": ["KILLED"], "work_unit": ["KILLED"], "trial": ["KILLED"]}
    killed = MlflowClient(sweep_settings.tracking.mlflow_uri).get_run(orphan.info.run_id)
    assert killed.data.tags[Tag.STATE] == "killed"
    assert f"pid {second.pid}" in killed.data.tags[Tag.ERROR]
    third.send_signal(signal.SIGINT)
    output = ended(third, before)
    assert_interrupted_once(output, third.returncode)
    assert "--resume" in output and "RUNNING" not in str(statuses(sweep_settings))

    # two resumes at once: the second is refused, naming the driver that holds the execution
    fourth = start(spec_file, environment, "loop", "--resume")
    before = paused(fourth)
    fifth = start(spec_file, environment, None, "--resume")
    refused = ended(fifth)
    assert fifth.returncode == 2, refused
    assert (f"is being driven by another `atlas train` (pid {fourth.pid} on host" in refused
            and "then run --resume again" in refused), refused
    fourth.stdin.write("\n")
    fourth.stdin.flush()
    output = ended(fourth, before)
    assert fourth.returncode == 0, output

    results = harvest("lifecycle", settings=sweep_settings)
    assert sorted(results["state"]) == ["finished", "finished", "finished", "killed"]  # nothing "unfinished"
    finished = results[results["state"] == "finished"]
    assert sorted(finished["param.loss"].astype(float)) == [1.0, 2.0, 3.0]
    assert statuses(sweep_settings) == {"execution": ["FINISHED"], "work_unit": ["FINISHED"],
                                        "trial": ["FINISHED", "FINISHED", "FINISHED", "KILLED"]}
    storage = sweep_settings.tracking.optuna_storage
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["loss"] for t in complete) == [1.0, 2.0, 3.0]
    with sa.create_engine(storage).connect() as connection:  # every driver gave its lease back
        assert connection.execute(sa.text("select count(*) from atlas_execution_leases")).scalar() == 0


def test_ctrl_c_before_anything_is_recorded_says_so_and_exits_130(spec_file, environment, sweep_settings):
    process = start(spec_file, environment, "ray_init")
    before = paused(process)
    process.send_signal(signal.SIGINT)
    output = ended(process, before)
    assert_interrupted_once(output, process.returncode)
    assert "Interrupted before the sweep recorded anything; run it again with: atlas train" in output
    assert runs(sweep_settings) == []
