"""An s3:// artifact root is checked before a sweep starts, against a real S3 endpoint (moto's server): one try
each, so a missing bucket or a dead endpoint is one clear error naming the setting, not minutes of retries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import stack

from atlas.exceptions import ConfigError
from atlas.infra._stores import probe_artifacts

KEYS = {"AWS_ACCESS_KEY_ID": "atlas-test", "AWS_SECRET_ACCESS_KEY": "atlas-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def endpoint():
    port = stack.free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack.wait_for(port, "moto_server", process=server)
        url = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a",
                     aws_secret_access_key="b").create_bucket(Bucket="desk")
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def keys(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


def test_a_writable_bucket_passes_and_leaves_nothing_behind(endpoint, keys):
    probe_artifacts("s3://desk/mlflow", endpoint)
    client = boto3.client("s3", endpoint_url=endpoint)
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
