"""The whole workflow against a desk's shared stack, by settings alone: PostgreSQL for the market store and Optuna,
an MLflow server on PostgreSQL with its artifacts in S3 (moto's server, through the server's proxy), Redis, and a
two-node Ray cluster started with `ray start` (scripts/stack.py, as `make stack` starts it). A sweep, its report,
a promotion and the runner serving into Redis; every artifact lands in the bucket, and no password or key is
written anywhere a user or a tracking server would show it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))
import stack  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("stack")]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    settings = stack.start(folder)
    work = tmp_path_factory.mktemp("market")
    for args in (("data", "simulate", "--days", "1", "--exchanges", "bitstamp,itbit", "--seed", "3", "--signal", "0.3"),
                 ("data", "metrics", "--bucket", "1min")):
        done = atlas(*args, settings=settings, cwd=work)
        assert done.returncode == 0, done.stderr
    yield folder, settings
    stack.stop(folder)


def atlas(*args: str, settings: dict, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(cwd), **settings}
    return subprocess.run([str(BIN / "atlas"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


class Steps:
    """Runs atlas commands that must succeed, keeping every output (to search for secrets)."""

    def __init__(self, settings: dict, cwd: Path) -> None:
        self.settings, self.cwd, self.outputs = settings, cwd, []

    def __call__(self, *args: str) -> str:
        done = atlas(*args, settings=self.settings, cwd=self.cwd)
        self.outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"atlas {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout


SPEC = """
import sys
sys.path.insert(0, {units!r})
from _units import next_minute_unit
from atlas.infra import Digest, ModelSpec, WorkSpec

SPEC = WorkSpec("stack", [next_minute_unit("itbit", ModelSpec("logistic", "logistic_classifier",
                                                           {{"l2": [0.0, 0.001]}}, fit={{"epochs": 2}}))],
                log_models=1, digest=Digest(cards=1))
"""


def test_the_workflow_runs_on_the_shared_stack_by_settings_alone(running, tmp_path):
    folder, settings = running
    (tmp_path / "spec.py").write_text(textwrap.dedent(SPEC.format(units=str(ROOT / "tests" / "infra"))))
    step = Steps(settings, tmp_path)

    doctor = step("doctor")
    assert doctor.count("\nok ") + doctor.startswith("ok ") >= 7 and "FAIL" not in doctor
    trained = step("train", "spec.py", "--quiet")
    assert "2 trials" in trained and "2 finished" in trained and "on 2 slots" in trained
    assert f"MLflow UI: {settings['MLFLOW_TRACKING_URI']}/#/experiments/" in trained
    assert "View run" not in trained  # MLflow's own links are not the command's output
    step("report", "spec.py", "--top", "1", "--output", str(tmp_path / "report.html"))
    step("promote", "spec.py", "--name", "stack_itbit")
    step("promote", "stack_itbit", "--to", "production", "--force", "--reason", "the stack test")
    served = step("serve", "stack_itbit", "--buckets", "30")
    assert "30 published" in served

    import redis
    from mlflow import MlflowClient

    client = MlflowClient(settings["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("stack")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server's proxy, S3 behind it
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) >= 4  # the execution, the work unit, two trials
    s3 = _s3(settings)
    keys = _keys(settings, "")
    names = {Path(k).name for k in keys}
    for artifact in ("predictions.parquet", "report.html", "MLmodel", "significance.json", "overview.png"):
        assert artifact in names, (artifact, sorted(names)[:40])
    assert any(k.endswith(".png") and "overview" not in k for k in keys)  # a card
    with redis.Redis.from_url(settings["REDIS_URL"]) as r:
        assert r.exists("atlas:v1:prediction:stack_itbit")

    # no secret anywhere: params, tags, S3 objects of text, the commands' output, the stack's public files
    secrets = [settings["AWS_SECRET_ACCESS_KEY"], settings["ATLAS_STORE_URL"].split(":")[2].split("@")[0]]
    recorded = json.dumps([(r.data.params, r.data.tags) for r in runs])
    texts = [s3.get_object(Bucket=stack.BUCKET, Key=k)["Body"].read().decode(errors="replace")
             for k in keys if k.endswith((".json", ".yaml", ".txt", ".html", "MLmodel"))]
    for secret in secrets:
        assert len(secret) > 10
        assert secret not in recorded
        assert not any(secret in t for t in texts)
        assert not any(secret in o for o in step.outputs)
        assert secret not in (folder / "atlas.toml").read_text()


def test_several_users_sweep_at_once_against_one_server_and_one_optuna_storage(running, tmp_path):
    """Three sweeps started together (two users, one running the same spec twice) on one tracking server and one
    PostgreSQL Optuna storage: every trial recorded once, each execution's grid whole, no lock error."""
    _, settings = running
    spec = SPEC.replace('WorkSpec("stack"', 'WorkSpec(NAME').replace("log_models=1", "log_models=0")
    runs = []
    for user, name in (("ana", "desk_a"), ("ben", "desk_b"), ("ben", "desk_b")):
        folder = tmp_path / f"{user}-{len(runs)}"
        folder.mkdir()
        (folder / "spec.py").write_text(textwrap.dedent(spec.format(units=str(ROOT / "tests" / "infra")))
                                        .replace("NAME", repr(name)))
        env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(folder), "USER": user, **settings}
        runs.append(subprocess.Popen([str(BIN / "atlas"), "train", "spec.py", "--quiet"], env=env, cwd=folder,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=900) for p in runs]
    for process, (out, err) in zip(runs, outputs):
        assert process.returncode == 0, out + err
        assert "2 finished, 0 pruned, 0 failed" in out
        text = (out + err).lower()
        assert not any(e in text for e in ("database is locked", "deadlock", "lock timeout", "could not obtain lock"))
    from mlflow import MlflowClient

    from atlas.runs import Level, Tag

    client = MlflowClient(settings["MLFLOW_TRACKING_URI"])
    for name, executions in (("desk_a", 1), ("desk_b", 2)):
        experiment = client.get_experiment_by_name(name)
        trials = client.search_runs([experiment.experiment_id], f"tags.`{Tag.LEVEL}` = '{Level.TRIAL}'",
                                    max_results=100)
        assert len(trials) == 2 * executions and {t.info.status for t in trials} == {"FINISHED"}
        grids = {}
        for t in trials:
            grids.setdefault(t.data.tags[Tag.EXECUTION], []).append(t.data.params["l2"])
        assert len(grids) == executions and all(sorted(g) == ["0.0", "0.001"] for g in grids.values())


def _write_spec(folder: Path, name: str, *, grid: str = "[0.0, 0.001]", epochs: int = 2, models: str = "1",
                cards: str = "1") -> None:
    text = (SPEC.replace('WorkSpec("stack"', f"WorkSpec({name!r}").replace('[0.0, 0.001]', grid)
            .replace('{{"epochs": 2}}', f'{{{{"epochs": {epochs}}}}}').replace("log_models=1", f"log_models={models}")
            .replace("Digest(cards=1)", f"Digest(cards={cards})"))
    (folder / "spec.py").write_text(textwrap.dedent(text.format(units=str(ROOT / "tests" / "infra"))))


def _s3(settings: dict):
    import boto3

    return boto3.session.Session().client(
        "s3", endpoint_url=settings["MLFLOW_S3_ENDPOINT_URL"], aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")


def _keys(settings: dict, prefix: str) -> list[str]:
    pages = _s3(settings).get_paginator("list_objects_v2").paginate(Bucket=stack.BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_the_tracking_server_killed_mid_sweep_loses_nothing_and_records_nothing_twice(running, tmp_path):
    """SIGKILL of the MLflow server while trials run (requests in flight cut), back 30 s later: the driver's
    requests are retried, the sweep finishes, and every trial is one run with its metrics, predictions, card and
    one READY model."""
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus

    from atlas.runs import Level, Tag

    folder, settings = running
    _write_spec(tmp_path, "restart", grid="[0.0, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]", epochs=20,
                models='"all"', cards='"all"')
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), **settings}
    sweep = subprocess.Popen([str(BIN / "atlas"), "train", "spec.py", "--quiet"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(settings["MLFLOW_TRACKING_URI"])
    trials = f"tags.`{Tag.LEVEL}` = '{Level.TRIAL}' and attributes.status = 'FINISHED'"
    done_at_kill = 0
    while sweep.poll() is None:  # until two trials are recorded, and six are still to come
        experiment = client.get_experiment_by_name("restart")
        if experiment is not None:
            done_at_kill = len(client.search_runs([experiment.experiment_id], trials))
            if done_at_kill >= 2:
                break
        time.sleep(0.5)
    assert sweep.poll() is None and done_at_kill < 8, "the sweep ended before the server could be killed"
    stack.restart_mlflow(folder, down_seconds=5)
    out, err = sweep.communicate(timeout=900)
    assert sweep.returncode == 0, out + err
    assert "8 trials" in out and "8 finished, 0 pruned, 0 failed" in out

    experiment = client.get_experiment_by_name("restart").experiment_id
    runs = client.search_runs([experiment], max_results=1000)
    by_level = {}
    for run in runs:
        by_level.setdefault(run.data.tags[Tag.LEVEL], []).append(run)
    assert len(by_level[Level.EXECUTION]) == 1 and len(by_level[Level.WORK_UNIT]) == 1
    trial_runs = by_level[Level.TRIAL]
    assert sorted(int(r.data.tags[Tag.TRIAL]) for r in trial_runs) == list(range(8))  # each once
    assert {r.info.status for r in runs} == {"FINISHED"}
    keys = _keys(settings, f"mlflow/{experiment}/")
    for run in trial_runs:
        assert "test_accuracy" in run.data.metrics and run.data.params["l2"]
        mine = [k for k in keys if f"/{run.info.run_id}/" in k]
        assert any(k.endswith("predictions.parquet") for k in mine) and any(k.endswith(".png") for k in mine)
    models = list(client.search_logged_models([experiment]))
    assert len(models) == 8 and {m.status for m in models} == {LoggedModelStatus.READY}
    assert sorted(m.source_run_id for m in models) == sorted(r.info.run_id for r in trial_runs)


def test_artifacts_go_straight_to_s3_when_the_config_file_says_so(running, tmp_path):
    """ATLAS_ARTIFACT_ROOT=s3://... and the endpoint in atlas.toml, the keys in the environment: the sweep, the
    report, the promotion and the runner read and write the bucket themselves, not through the server."""
    _, settings = running
    env = {k: v for k, v in settings.items() if k != "MLFLOW_S3_ENDPOINT_URL"}
    (tmp_path / "atlas.toml").write_text(f'[tracking]\nartifact_root = "s3://{stack.BUCKET}/direct"\n'
                                         f's3_endpoint_url = "{settings["MLFLOW_S3_ENDPOINT_URL"]}"\n')
    _write_spec(tmp_path, "direct")
    step = Steps(env, tmp_path)

    doctor = step("doctor")
    assert f"bucket {stack.BUCKET} at {settings['MLFLOW_S3_ENDPOINT_URL']}, writable" in doctor
    assert "2 finished" in step("train", "spec.py", "--quiet")
    step("report", "spec.py", "--top", "1", "--output", str(tmp_path / "report.html"))
    step("promote", "spec.py", "--name", "stack_direct")
    step("promote", "stack_direct", "--to", "production", "--force", "--reason", "straight to S3")
    assert "10 published" in step("serve", "stack_direct", "--buckets", "10")

    from mlflow import MlflowClient

    from atlas.runs import OVERVIEW_ARTIFACT

    experiment = MlflowClient(settings["MLFLOW_TRACKING_URI"]).get_experiment_by_name("direct")
    assert experiment.artifact_location == f"s3://{stack.BUCKET}/direct/direct"
    names = {Path(k).name for k in _keys(settings, "direct/")}
    for artifact in ("predictions.parquet", "report.html", "MLmodel", "significance.json", OVERVIEW_ARTIFACT):
        assert artifact in names, (artifact, sorted(names)[:40])
    assert not [k for k in _keys(settings, "mlflow/") if "/direct/" in k]  # nothing through the proxy
    runs = MlflowClient(settings["MLFLOW_TRACKING_URI"]).search_runs([experiment.experiment_id])
    recorded = json.dumps([(r.data.params, r.data.tags) for r in runs])
    assert settings["AWS_SECRET_ACCESS_KEY"] not in recorded + "".join(step.outputs)


def test_a_driver_outside_the_cluster_sweeps_through_ray_client(running, tmp_path):
    """ATLAS_RAY_ADDRESS=ray://head:port (Ray Client, with the cluster's token): the driver runs no Ray node of its
    own, the work unit's data goes up through the client into the cluster's object store, and the trials run on
    both nodes."""
    from mlflow import MlflowClient

    from atlas.runs import Level, Tag

    folder, settings = running
    state = json.loads((folder / "state.json").read_text())
    client_address = f"ray://127.0.0.1:{state['ray']['client_port']}"
    _write_spec(tmp_path, "outside", grid="[0.0, 0.001, 0.01, 0.1]", models="0", cards="0")
    done = atlas("doctor", settings={**settings, "ATLAS_RAY_ADDRESS": client_address}, cwd=tmp_path)
    assert done.returncode == 0 and f"ray        {client_address}: answers" in done.stdout, done.stdout
    done = atlas("train", "spec.py", "--quiet", settings={**settings, "ATLAS_RAY_ADDRESS": client_address},
                 cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 trials" in done.stdout and "on 2 slots: 4 finished" in done.stdout
    client = MlflowClient(settings["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("outside").experiment_id
    trials = client.search_runs([experiment], f"tags.`{Tag.LEVEL}` = '{Level.TRIAL}'")
    assert len(trials) == 4 and len({t.data.tags[Tag.NODE] for t in trials}) == 2  # both nodes worked


def test_stop_stops_exactly_what_the_stack_started(tmp_path):
    import time

    folder = tmp_path / "one"
    settings = stack.start(folder)
    other = subprocess.Popen(["sleep", "600"])  # something else that runs meanwhile
    try:
        state = json.loads((folder / "state.json").read_text())
        pids = list(state["pids"].values())
        ray_temp = state["ray"]["temp"]
        assert all(Path(f"/proc/{p}").exists() for p in pids)
        assert subprocess.run(["pgrep", "-f", ray_temp], capture_output=True).stdout.split()
        ray = stack.ray_processes(ray_temp, str(folder / "ray_token"))
        names = [Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace") for p in ray]
        # the ones a search by session folder misses: agents that renamed themselves, the Ray Client server
        assert any(n.startswith("ray::DashboardAgent") for n in names), names
        assert any("ray.util.client.server" in n for n in names), names
        stopped = stack.stop(folder)
        assert set(stopped) == {"ray", "s3", "mlflow", "redis", "postgres"}
        time.sleep(1)
        assert not any(Path(f"/proc/{p}").exists() and "zombie" not in _state(p) for p in pids + ray)
        assert not subprocess.run(["pgrep", "-f", ray_temp], capture_output=True).stdout.split()
        assert other.poll() is None  # not ours: still running
        assert not (folder / "state.json").exists() and stack.stop(folder) == []
        assert not (folder / "stack.env").exists() and not (folder / "ray_token").exists()  # no stale settings
        assert settings["RAY_AUTH_MODE"] == "token"
    finally:
        other.kill()
        stack.stop(folder)


def _state(pid: int) -> str:
    try:
        return "zombie" if ") Z " in Path(f"/proc/{pid}/stat").read_text() else "running"
    except OSError:
        return "gone"
