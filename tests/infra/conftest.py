"""A small simulated market for sweeps, and the settings that put MLflow and Optuna in a test's own folder."""

from __future__ import annotations

import pytest

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
from atlas.infra import ModelSpec, WorkUnit

TRAIN = ("2024-01-01 00:30", "2024-01-01 16:00")
TEST = ("2024-01-01 16:10", "2024-01-01 23:50")


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


def next_minute_unit(name: str = "itbit", *specs: ModelSpec, **options) -> WorkUnit:
    """A work unit predicting itbit's next one-minute return (down/up) from both exchanges' last returns."""
    featureset = FeatureLabelSet(features=[LogReturns().bitstamp().one_min().lookback(1),
                                           LogReturns().itbit().one_min().lookback(1)],
                                 labels=[LogReturns().itbit().one_min().lookforward(1)], title="itbit_next_minute")
    specs = specs or (ModelSpec("dnn", "dnn_classifier", {"hidden_units": [8], "learning_rate": [0.001, 0.01]},
                                fit={"epochs": 2, "patience": None}),)
    return WorkUnit(name, featureset, TRAIN, TEST, specs, classes=ClassLabels("sign"), **options)
