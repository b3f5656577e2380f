"""A small simulated market for sweeps, and the settings that put MLflow and Optuna in a test's own folder."""

from __future__ import annotations

import pytest
from _units import TEST, TRAIN, next_minute_unit  # noqa: F401 (re-exported for the tests that import it here)

from atlas.config import Settings
from atlas.data import (
    MarketSimulator,
    MarketStore,
    MetricPipeline,
    SimulatorConfig,
)


@pytest.fixture(scope="session")
def sweep_market(tmp_path_factory) -> str:
    """One simulated day on bitstamp (the leader) and itbit, with one-minute metrics; returns the store URL."""
    folder = tmp_path_factory.mktemp("sweep_market")
    url = f"sqlite:///{folder / 'market.db'}"
    with MarketStore(url) as store:
        MarketSimulator(SimulatorConfig(days=1, exchanges="bitstamp,itbit", seed=5, signal=0.3,
                                        snapshot_interval="30s", levels=10)).simulate_into(store)
        MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    return url


@pytest.fixture
def sweep_settings(sweep_market, tmp_path) -> Settings:
    """Settings for one test: the shared market, and MLflow, Optuna and artifacts under the test's folder."""
    return Settings.from_env({"ATLAS_HOME": str(tmp_path / "home"), "ATLAS_STORE_URL": sweep_market})


