"""A trial's headline metrics from its predictions frame, for a classifier and a regressor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from atlas.stats import (
    Calendar,
    check_predictions,
    classification_statistics,
    headline_metrics,
    positions,
    trading_statistics,
)


def test_a_classifier_s_headline_combines_its_statistics_and_its_trading():
    rng = np.random.default_rng(0)
    n = 600
    proba = rng.dirichlet(np.ones(3), size=n)
    frame = pd.DataFrame({"bucket": pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"),
                          "part": "test", "y_true": rng.integers(0, 3, n),
                          "forward_return": rng.normal(0, 1e-3, n),
                          "y_pred": proba.argmax(axis=1)})
    for k, name in enumerate(("down", "flat", "up")):
        frame[f"proba_{name}"] = proba[:, k]
    predictions = check_predictions(frame, bucket_width="5min", horizon=3, baseline_class=1)
    metrics = headline_metrics(predictions, calendar=Calendar(252, 24), cost_bps=2)
    expected = classification_statistics(frame["y_true"], proba, ("down", "flat", "up")).headline()
    assert {k: metrics[k] for k in expected} == expected
    trading = trading_statistics(positions(frame["y_pred"], class_names=("down", "flat", "up")),
                                 frame["forward_return"], bucket_width="5min", horizon=3, cost_bps=2,
                                 calendar=Calendar(252, 24))
    assert metrics["sharpe"] == trading.sharpe and metrics["turnover"] == trading.turnover
    assert 0 <= metrics["interval_win_rate"] <= 1


def test_a_regressor_without_its_training_mean_has_no_out_of_sample_r2():
    rng = np.random.default_rng(1)
    n = 300
    forward = rng.normal(0, 1e-3, n)
    frame = pd.DataFrame({"bucket": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"), "part": "test",
                          "y_true": forward, "forward_return": forward,
                          "y_pred": forward + rng.normal(0, 1e-3, n)})
    metrics = headline_metrics(check_predictions(frame, bucket_width="1h", horizon=1))
    assert math.isnan(metrics["r2_oos"]) and metrics["ic"] > 0.5 and metrics["hit_rate"] > 0.6
    known = headline_metrics(check_predictions(frame, bucket_width="1h", horizon=1, train_mean=0.0))
    squared_error = np.sum((frame["y_pred"] - forward) ** 2)
    assert known["r2_oos"] == pytest.approx(1 - squared_error / np.sum(forward ** 2))
