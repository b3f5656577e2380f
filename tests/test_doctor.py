"""`atlas doctor` against real parts on loopback: a PostgreSQL store, Redis, a Ray address; and every part down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _services import RedisServer, free_port

SECRET = "planted-doctor-secret"


def _doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ATLAS_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "atlas.cli", "doctor"], capture_output=True, text=True,
                          env={**base, **env}, cwd=tmp_path, timeout=120)


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer.start()
    yield server
    server.stop()


def _lines(done: subprocess.CompletedProcess) -> dict[str, str]:
    return {line.split()[1]: line for line in done.stdout.splitlines()[1:] if line.split()}


def test_a_fresh_home_with_redis_is_healthy_and_names_what_it_will_make(tmp_path, redis_server, postgres_url):
    done = _doctor(tmp_path, REDIS_URL=redis_server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _lines(done)
    assert set(lines) == {"store", "gds", "tracking", "artifacts", "optuna", "redis", "ray", "versions"}
    assert lines["store"].startswith("warn") and "not created yet: `atlas data simulate` makes it" in lines["store"]
    assert lines["redis"].startswith("ok") and "writable" in lines["redis"]
    assert "mlflow " in lines["versions"] and "ray " in lines["versions"]
    # a PostgreSQL store named in atlas.toml: its version, writable, and the file named as the setting's origin
    (tmp_path / "atlas.toml").write_text(f'[store]\nurl = "{postgres_url}"\n')
    done = _doctor(tmp_path, REDIS_URL=redis_server.url)
    lines = _lines(done)
    assert done.returncode == 0 and f"config file {tmp_path / 'atlas.toml'}" in done.stdout
    assert lines["store"].startswith("ok") and "postgresql 15" in lines["store"] and "writable" in lines["store"]
    assert f"[ATLAS_STORE_URL in {tmp_path / 'atlas.toml'}]" in lines["store"]


def test_every_part_down_fails_fast_naming_its_setting_and_masking_passwords(tmp_path):
    port = free_port()  # nothing listens there
    done = _doctor(tmp_path, ATLAS_STORE_URL=f"postgresql+psycopg://atlas:{SECRET}@127.0.0.1:{port}/market",
                   MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}", ATLAS_OPTUNA_STORAGE=f"postgresql+psycopg://"
                   f"atlas:{SECRET}@127.0.0.1:{port}/optuna", REDIS_URL=f"redis://:{SECRET}@127.0.0.1:{port}/0",
                   ATLAS_RAY_ADDRESS=f"127.0.0.1:{port}", ATLAS_GDS_URL=f"postgresql+psycopg://gds@127.0.0.1:{port}/g")
    assert done.returncode == 1
    lines = _lines(done)
    for part, setting in [("store", "ATLAS_STORE_URL"), ("gds", "ATLAS_GDS_URL"), ("tracking", "MLFLOW_TRACKING_URI"),
                          ("optuna", "ATLAS_OPTUNA_STORAGE"), ("redis", "REDIS_URL"), ("ray", "ATLAS_RAY_ADDRESS")]:
        assert lines[part].startswith("FAIL") and "unreachable" in lines[part], lines[part]
        assert lines[part].endswith(f"; set {setting}"), lines[part]
    # artifacts left to the tracking server (ATLAS_ARTIFACT_ROOT unset) fail with it
    assert lines["artifacts"].startswith("FAIL") and "the tracking server is unreachable" in lines["artifacts"]
    assert SECRET not in done.stdout + done.stderr
    assert "7 of 8 parts fail" in done.stderr
