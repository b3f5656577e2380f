"""An s3:// artifact root is checked before a sweep starts, against a real S3 endpoint (moto's server, checking
signatures as AWS does): one try each, so a missing bucket, a dead endpoint or a wrong key is one clear error naming
the setting, not minutes of retries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import stack
from _s3 import checking_endpoint

from atlas.exceptions import ConfigError
from atlas.infra._stores import probe_artifacts

KEYS: dict = {}  # the only key the endpoint accepts
LOG = {}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    LOG["path"] = tmp_path_factory.mktemp("s3") / "requests.log"  # one line per request the endpoint answered
    with checking_endpoint(LOG["path"], "desk") as (url, keys):
        KEYS.update(keys)
        yield url


@pytest.fixture
def keys(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


def test_a_writable_bucket_passes_and_leaves_nothing_behind(endpoint, keys):
    probe_artifacts("s3://desk/mlflow", endpoint)
    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    assert client.list_objects_v2(Bucket="desk").get("KeyCount", 0) == 0  # the probe object is deleted


def test_a_missing_bucket_and_a_dead_endpoint_are_one_clear_error(endpoint, keys):
    with pytest.raises(ConfigError, match=r"s3://nosuch/mlflow \(ATLAS_ARTIFACT_ROOT\) cannot be written: no "
                                          r"bucket 'nosuch'"):
        probe_artifacts("s3://nosuch/mlflow", endpoint)
    dead = f"http://127.0.0.1:{stack.free_port()}"
    with pytest.raises(ConfigError, match=r"the S3 endpoint http://127.0.0.1:\d+ is unreachable .*MLFLOW_S3_"
                                          r"ENDPOINT_URL"):
        probe_artifacts("s3://desk/mlflow", dead)
    probe_artifacts(None, dead)  # artifacts kept by the tracking server: nothing to probe here
    probe_artifacts("/tmp/artifacts", dead)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == KEYS["AWS_SECRET_ACCESS_KEY"]


def _refused() -> int:
    return sum(" 403 " in line and ".atlas-doctor-" in line for line in LOG["path"].read_text().splitlines())


def test_wrong_credentials_are_one_clear_error_and_one_request(endpoint, keys, monkeypatch):
    before = _refused()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(ConfigError, match=r"s3://desk/mlflow \(ATLAS_ARTIFACT_ROOT\) cannot be written: the secret key "
                                          r"is wrong"):
        probe_artifacts("s3://desk/mlflow", endpoint)
    assert _refused() == before + 1  # refused at the first request, never retried
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOBODYHASTHIS")
    with pytest.raises(ConfigError, match=r"cannot be written: the access key is not known"):
        probe_artifacts("s3://desk/mlflow", endpoint)
    assert _refused() == before + 2


SPEC = """
import sys
sys.path.insert(0, {units!r})
from _units import next_minute_unit
from atlas.infra import ModelSpec, WorkSpec

SPEC = WorkSpec("wrong_keys", [next_minute_unit("itbit", ModelSpec("logistic", "logistic_classifier", {{}}))])
"""


def test_a_tracking_server_with_wrong_s3_keys_stops_a_sweep_before_it_starts(endpoint, tmp_path):
    """An MLflow server keeping artifacts in the bucket through its proxy, holding a wrong secret key: the sweep
    fails at once naming the server's side (one request to its proxy, where MLflow's client would retry the first
    artifact for minutes), having recorded nothing; `atlas doctor` says the same."""
    from mlflow import MlflowClient

    port = stack.free_port()
    log = tmp_path / "server.log"
    wrong = {**KEYS, "AWS_SECRET_ACCESS_KEY": "not-the-secret-key"}
    server = stack.mlflow_server(f"sqlite:///{tmp_path / 'mlflow.db'}", endpoint, wrong, port, log)
    try:
        bin_dir = Path(sys.executable).parent
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "ATLAS_HOME": str(tmp_path / "home"),
               "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
        (tmp_path / "spec.py").write_text(SPEC.format(units=str(Path(__file__).resolve().parents[1] / "infra")))
        done = subprocess.run([str(bin_dir / "atlas"), "train", "spec.py"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "the tracking server cannot store artifacts (HTTP 500" in done.stderr, done.stderr
        assert ("(MLFLOW_TRACKING_URI); fix the tracking server's artifact store (its AWS_* credentials, its "
                "--artifacts-destination), or ATLAS_ARTIFACT_ROOT") in done.stderr, done.stderr
        puts = [line for line in log.read_text().splitlines() if "PUT /api/2.0/mlflow-artifacts/" in line]
        assert len(puts) == 1 and " 500 " in puts[0]  # one try
        assert MlflowClient(env["MLFLOW_TRACKING_URI"]).get_experiment_by_name("wrong_keys") is None
        doctor = subprocess.run([str(bin_dir / "atlas"), "doctor"], env=env, cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        line = next(x for x in doctor.stdout.splitlines() if x.split()[1:2] == ["artifacts"])
        assert doctor.returncode == 1 and line.startswith("FAIL") and "cannot store artifacts" in line, line
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
