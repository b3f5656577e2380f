"""A password in a URL is never recorded or printed: every command that takes a URL is run with one planted
(``s3cretPW123``), and the planted password is looked for in what the command printed and in every file under
ATLAS_HOME (the SQLite MLflow store, the Optuna storage, the artifacts) after it.

The PostgreSQL server of the tests trusts local connections, so a URL with any password reaches it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from _services import free_port
from mlflow.tracking import MlflowClient

from atlas.data import MarketSimulator, MarketStore, MetricPipeline, SimulatorConfig
from atlas.exceptions import ConfigError
from atlas.infra._search import check_storage

SECRET = "s3cretPW123"
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray_b")]  # a second group: two local Rays at once


def with_password(url: str) -> str:
    return url.replace("://atlas@", f"://atlas:{SECRET}@")


@pytest.fixture(scope="session")
def market_with_password(postgres_server) -> str:
    """The simulated day of the sweep tests, in PostgreSQL, by a URL that carries a password."""
    url = with_password(postgres_server.create_database("atlas_market_with_password"))
    with MarketStore(url) as store:
        MarketSimulator(SimulatorConfig(days=1, exchanges="bitstamp,itbit", seed=5, signal=0.3,
                                        snapshot_interval="30s", levels=10)).simulate_into(store)
        MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    return url


@pytest.fixture
def spec_file(tmp_path) -> Path:
    path = tmp_path / "secret.py"
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import _scripted
        from _units import next_minute_unit
        from atlas.infra import Digest, ModelSpec, WorkSpec, ship_by_value
        ship_by_value(_scripted)
        SPEC = WorkSpec("secret", [next_minute_unit("u", ModelSpec("s", _scripted.ScriptedClassifier,
                                                                   {{"loss": [1.0, 2.0]}}))], log_models=1)
    """))
    return path


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def run(*command: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, cwd=cwd)


def assert_not_recorded(home: Path, done: subprocess.CompletedProcess) -> None:
    """The password is neither in the command's output nor in any file under ``home``."""
    assert SECRET not in done.stdout and SECRET not in done.stderr, done.stdout + done.stderr
    files = [path for path in home.rglob("*") if path.is_file()]
    assert [path for path in files if SECRET.encode() in path.read_bytes()] == []


def test_a_sweep_on_a_store_url_with_a_password_records_and_prints_it_nowhere(spec_file, home,
                                                                              market_with_password):
    env = {"ATLAS_HOME": str(home), "ATLAS_STORE_URL": market_with_password}
    for command in (("train", "--dry-run"), ("train",), ("harvest",)):
        done = run(str(BIN / "atlas"), command[0], str(spec_file), *command[1:], env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert_not_recorded(home, done)
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (trial, *_) = client.search_runs([client.get_experiment_by_name("secret").experiment_id],
                                     "tags.`atlas.level` = 'trial'")
    source = trial.inputs.dataset_inputs[0].dataset.source  # the store is recorded, masked
    assert "atlas:***@127.0.0.1" in source and "atlas_market_with_password" in source
    assert (home / "mlflow.db").exists() and any((home / "artifacts").rglob("MLmodel"))  # what was searched


def test_unreachable_or_wrong_stores_are_named_without_their_password(spec_file, home, sweep_market,
                                                                      postgres_server):
    closed = free_port()
    cases = [
        ({"ATLAS_OPTUNA_STORAGE": f"postgresql+psycopg://atlas:{SECRET}@127.0.0.1:{closed}/optuna"},
         f"Error: cannot reach the Optuna storage postgresql+psycopg://atlas:***@127.0.0.1:{closed}/optuna "
         "(ATLAS_OPTUNA_STORAGE)"),
        ({"ATLAS_OPTUNA_STORAGE": with_password(postgres_server.url("no_such_database"))},
         "Error: cannot open the Optuna storage postgresql+psycopg://atlas:***@127.0.0.1:"),
        ({"MLFLOW_TRACKING_URI": f"http://atlas:{SECRET}@127.0.0.1:{closed}"},
         f"Error: cannot reach the MLflow tracking store http://atlas:***@127.0.0.1:{closed} (MLFLOW_TRACKING_URI)"),
    ]
    for settings, message in cases:
        env = {"ATLAS_HOME": str(home), "ATLAS_STORE_URL": sweep_market, **settings}
        done = run(str(BIN / "atlas"), "train", str(spec_file), env=env)
        assert done.returncode == 2 and message in done.stderr, done.stdout + done.stderr
        assert len([line for line in done.stderr.splitlines() if line.startswith("Error:")]) == 1, done.stderr
        assert_not_recorded(home, done)
    harvested = run(str(BIN / "atlas"), "harvest", "secret", env={"ATLAS_HOME": str(home), **cases[2][0]})
    assert harvested.returncode == 2 and cases[2][1] in harvested.stderr, harvested.stderr
    assert_not_recorded(home, harvested)
    with pytest.raises(ConfigError) as raised:
        check_storage(cases[1][0]["ATLAS_OPTUNA_STORAGE"])
    assert "no_such_database" in str(raised.value) and SECRET not in str(raised.value)


def test_a_gds_import_takes_its_url_from_the_environment_and_mlflow_run_records_no_password(home, tmp_path):
    gds = f"postgresql+psycopg://atlas:{SECRET}@127.0.0.1:{free_port()}/gds"
    env = {"ATLAS_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    by_option = run(str(BIN / "atlas"), "data", "import", "gds", "--url", gds, env=env)
    by_environment = run(str(BIN / "atlas"), "data", "import", "gds", env={**env, "ATLAS_GDS_IMPORT_URL": gds})
    for done in (by_option, by_environment):
        assert done.returncode == 2 and "cannot open the GDS database" in done.stderr, done.stderr
        assert_not_recorded(home, done)

    project = yaml.safe_load((ROOT / "MLproject").read_text())
    assert "url" not in project["entry_points"]["import_gds"]["parameters"]
    done = run(str(BIN / "mlflow"), "run", str(ROOT), "-e", "import_gds", "--env-manager", "local",
               "--experiment-name", "imports", env={**env, "ATLAS_GDS_IMPORT_URL": gds}, cwd=tmp_path)
    assert done.returncode != 0 and "cannot open the GDS database" in done.stdout + done.stderr
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (imported,) = client.search_runs([client.get_experiment_by_name("imports").experiment_id])
    assert imported.data.tags["mlflow.project.entryPoint"] == "import_gds" and "url" not in imported.data.params
    assert_not_recorded(home, done)


def test_a_tracking_server_that_refuses_is_named_without_its_password(tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from atlas.runs import RunWriter

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(403)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://atlas:{SECRET}@127.0.0.1:{server.server_port}"
        with pytest.raises(ConfigError, match=r"cannot reach the MLflow tracking store http://atlas:\*\*\*@127.0.0.1:"
                                              r"\d+ \(MLFLOW_TRACKING_URI\): .*403") as raised:
            RunWriter(uri, str(tmp_path / "artifacts")).experiment("secret")
    finally:
        server.shutdown()
    assert SECRET not in str(raised.value)
