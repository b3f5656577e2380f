"""The digest of real sweeps: the evidence each trial keeps, its card, the overview and the verdict on the sweep,
the best pointers, the logged models named after their trials, and a sweep that writes only under its home."""

from __future__ import annotations

import json
import os

import _scripted
import numpy as np
import pytest
from _scripted import RidgeClassifier
from _units import next_minute_unit
from mlflow.tracking import MlflowClient

from atlas.config import Settings
from atlas.data import MarketSimulator, MarketStore, MetricPipeline, SimulatorConfig
from atlas.infra import Digest, ModelSpec, WorkSpec, harvest, ship_by_value, train
from atlas.runs import (
    CARD_ARTIFACT,
    OVERVIEW_ARTIFACT,
    PREDICTIONS_ARTIFACT,
    SIGNIFICANCE_ARTIFACT,
    Level,
    Tag,
)
from atlas.stats import Predictions

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray_b")]  # a second group: two local Rays at once
ship_by_value(_scripted)  # the workers get the test's model class itself


@pytest.fixture(scope="session")
def noise_market(tmp_path_factory) -> str:
    """The same market as ``sweep_market`` but with no planted signal: nothing for any model to find."""
    folder = tmp_path_factory.mktemp("noise_market")
    url = f"sqlite:///{folder / 'market.db'}"
    with MarketStore(url) as store:
        MarketSimulator(SimulatorConfig(days=1, exchanges="bitstamp,itbit", seed=5, signal=0.0,
                                        snapshot_interval="30s", levels=10)).simulate_into(store)
        MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    return url


def fifty_linear_models() -> WorkSpec:
    """50 cheap trials: a grid of 50 penalties of a linear classifier fitted in closed form (tests/infra/_scripted)."""
    spec = ModelSpec("ridge", RidgeClassifier, {"l2": [round(float(v), 6) for v in np.geomspace(1e-4, 1.0, 50)]})
    return WorkSpec("fifty", [next_minute_unit("itbit", spec)], seed=3, log_models=0, digest=Digest(cards=0))


def test_fifty_trials_on_noise_are_luck_and_on_a_planted_signal_a_discovery(sweep_settings, noise_market, tmp_path):
    """End to end on the simulator: the verdict over 50 trials calls noise luck and the planted signal real."""
    noise = Settings.from_env({"ATLAS_HOME": str(tmp_path / "noise"), "ATLAS_STORE_URL": noise_market})
    on_noise = train(fifty_linear_models(), settings=noise, progress=False)
    on_signal = train(fifty_linear_models(), settings=sweep_settings, progress=False)
    assert on_noise.count("finished") == on_signal.count("finished") == 50
    assert not on_noise.verdict.significant
    assert str(on_noise.verdict).startswith("not distinguishable from luck after 50 trials")
    assert on_signal.verdict.significant and str(on_signal.verdict).startswith("significant after 50 trials")
    execution = MlflowClient(sweep_settings.tracking.mlflow_uri).get_run(on_signal.execution_run_id)
    assert execution.data.tags[Tag.VERDICT].startswith("significant after 50 trials")
    assert execution.data.metrics["sweep_significant"] == 1.0


def test_a_sweep_keeps_its_evidence_cards_overview_verdict_and_best_pointers_under_its_home(
        sweep_settings, tmp_path, monkeypatch):
    working = tmp_path / "working_folder"
    working.mkdir()
    monkeypatch.chdir(working)  # a sweep must write nothing here, only under its settings' home
    checkout_atlas = {p: p.stat().st_mtime for p in _files(os.path.join(os.path.dirname(__file__), "..", "..",
                                                                         ".atlas"))}
    spec = WorkSpec("digested", [next_minute_unit("itbit")], seed=5, replicates=2)
    report = train(spec, settings=sweep_settings, progress=False)
    assert report.count("finished") == 4  # two grid points, two seeds each
    assert os.listdir(working) == []
    assert {p: p.stat().st_mtime for p in _files(os.path.join(os.path.dirname(__file__), "..", "..", ".atlas"))
            } == checkout_atlas
    client = MlflowClient(sweep_settings.tracking.mlflow_uri)
    results = harvest("digested", settings=sweep_settings)
    assert sorted(results["replicate"]) == [0, 0, 1, 1]
    assert sorted(results["param.seed"]) == ["5", "5", "6", "6"]  # the grid points share their seeds
    for _, row in results.iterrows():
        artifacts = {a.path for a in client.list_artifacts(row["run_id"])}
        assert {PREDICTIONS_ARTIFACT, CARD_ARTIFACT} <= artifacts
        run = client.get_run(row["run_id"])
        assert {"test_accuracy", "test_pv_up", "test_lr_down", "test_mcc", "test_sharpe", "test_p_value",
                "test_lift_ci_low", "test_baseline_log_loss"} <= set(run.data.metrics)
        assert run.data.tags[Tag.RUN_NAME].startswith("learning_rate=")  # what differs between trials leads
        started = float(run.data.tags[Tag.STARTED])
        assert abs(run.info.start_time / 1000 - started) < 2.0  # the run's duration is its trial's
        model = client.get_logged_model(row["model_id"])
        assert model.name.startswith("itbit-learning_rate") and model.params["learning_rate"] == \
            row["param.learning_rate"]
        assert {m.key for m in model.metrics} >= {"test_accuracy", "test_p_value"}
    predictions = results.predictions(results["run_id"][0])
    assert isinstance(predictions, Predictions) and predictions.parts == ("test", "validation")
    assert predictions.class_names == ("down", "up") and np.isfinite(predictions.forward_return).all()
    execution = client.get_run(report.execution_run_id)
    assert {OVERVIEW_ARTIFACT, SIGNIFICANCE_ARTIFACT, "work_spec.json"} <= {
        a.path for a in client.list_artifacts(report.execution_run_id)}
    (tmp_path / "download").mkdir()
    with open(client.download_artifacts(report.execution_run_id, SIGNIFICANCE_ARTIFACT,
                                        str(tmp_path / "download"))) as handle:
        verdict = json.load(handle)
    assert len(verdict["table"]) == 4 and verdict["message"] == str(report.verdict)
    best = results.loc[results["best_val_loss"].idxmin()]
    assert execution.data.tags[Tag.BEST_RUN] == best["run_id"]
    unit = client.get_run(best["work_unit_run_id"])
    assert unit.data.tags[Tag.BEST_RUN] == best["run_id"] and unit.data.tags[Tag.LEVEL] == Level.WORK_UNIT
    assert unit.data.metrics["best_val_loss"] == pytest.approx(best["best_val_loss"])
    assert execution.info.run_name.startswith("digested ") and execution.data.tags["mlflow.user"]
    assert len({d.dataset.name for d in client.get_run(best["run_id"]).inputs.dataset_inputs}) == 2  # train, test


def _files(folder: str) -> list:
    from pathlib import Path

    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
