"""A real MLflow server on loopback (SQLite backend, local artifacts) and one real sweep recorded in it: strong,
weaker, contrarian and degenerate classifiers of itbit's next minute, and one that reads trade volume."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import _models
import pytest
from _models import ConstantClassifier, SignClassifier
from _services import free_port

from atlas.config import Settings
from atlas.data import (
    FeatureLabelSet,
    LogReturns,
    MarketSimulator,
    MarketStore,
    MetricPipeline,
    SimulatorConfig,
)
from atlas.data.dataset import ClassLabels
from atlas.data.features import Volume

TRAIN = ("2024-01-01 00:30", "2024-01-01 16:00")
TEST = ("2024-01-01 16:10", "2024-01-01 23:50")
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """``mlflow server`` on a free loopback port; its URL once it answers ``/health``."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    log = open(folder / "server.log", "wb")
    process = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                                "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1",
                                "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def market(tmp_path_factory) -> str:
    """One simulated day on bitstamp (the leader) and itbit, signal 0.3, with one-minute metrics."""
    url = f"sqlite:///{tmp_path_factory.mktemp('registry_market') / 'market.db'}"
    with MarketStore(url) as store:
        MarketSimulator(SimulatorConfig(days=1, exchanges="bitstamp,itbit", seed=5, signal=0.3,
                                        snapshot_interval="30s", levels=10)).simulate_into(store)
        MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    return url


@pytest.fixture(scope="session")
def environment(mlflow_server, market, tmp_path_factory) -> dict[str, str]:
    """The variables that point Atlas at the server and the market (for the CLI, in or out of process)."""
    return {"ATLAS_HOME": str(tmp_path_factory.mktemp("registry_home")), "ATLAS_STORE_URL": market,
            "MLFLOW_TRACKING_URI": mlflow_server}


@pytest.fixture(scope="session")
def settings(environment) -> Settings:
    return Settings.from_env(environment)


@pytest.fixture(scope="session")
def sweep(settings) -> dict[str, str]:
    """Trains the sweep ``promotions`` once; returns each trial's run id by ``work_unit/run_name``, and the
    execution's as ``execution``."""
    from atlas.infra import Digest, ModelSpec, WorkSpec, WorkUnit, harvest, ship_by_value, train

    ship_by_value(_models)
    returns = [LogReturns().bitstamp().one_min().lookback(1), LogReturns().itbit().one_min().lookback(1)]
    label = [LogReturns().itbit().one_min().lookforward(1)]
    both = FeatureLabelSet(features=returns, labels=label, title="itbit_next_minute")
    volume = FeatureLabelSet(features=[returns[0], Volume().bitstamp().one_min()], labels=label, title="itbit_volume")
    specs = [ModelSpec("sign", SignClassifier, {"use": [0, 1]}),
             ModelSpec("contrarian", SignClassifier, {"sign": -1.0}),
             ModelSpec("constant", ConstantClassifier, {"up": 0.6})]
    units = [WorkUnit("itbit", both, TRAIN, TEST, specs, classes=ClassLabels("sign")),
             WorkUnit("volume", volume, TRAIN, TEST, [ModelSpec("sign", SignClassifier, {"use": 0})],
                      classes=ClassLabels("sign"))]
    report = train(WorkSpec("promotions", units, seed=3, digest=Digest(cards=0)), settings=settings,
                   progress=False, max_concurrent=2)
    assert report.count("finished") == 5, report
    results = harvest("promotions", settings=settings)
    runs = {f"{row.work_unit}/{row.run_name}": row.run_id for row in results.itertuples()}
    runs["execution"] = report.execution_run_id
    return runs


@pytest.fixture(scope="session")
def cli_env(environment) -> dict[str, str]:
    """The environment of an ``atlas`` subprocess: the test's settings, and this folder importable (the models)."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **environment, "PYTHONPATH": path}
