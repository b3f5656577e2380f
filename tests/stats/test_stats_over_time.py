"""Accuracy per interval against the baseline, and precision and frequency at confidence thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas.exceptions import ConfigError
from atlas.stats import accuracy_over_time, confidence_thresholds, interval_starts


def test_intervals_follow_the_bucket_convention():
    stamps = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:00:01", "2024-01-01 06:00",
                               "2024-01-02 00:00"], tz="UTC")
    assert [str(t) for t in interval_starts(stamps, "1D")] == [
        "2023-12-31 00:00:00+00:00", "2024-01-01 00:00:00+00:00", "2024-01-01 00:00:00+00:00",
        "2024-01-01 00:00:00+00:00"]
    assert [str(t.time()) for t in interval_starts(stamps, "6h")] == ["18:00:00", "00:00:00", "00:00:00",
                                                                       "18:00:00"]


def test_accuracy_over_time_matches_a_pandas_groupby():
    rng = np.random.default_rng(0)
    n = 5000
    buckets = pd.date_range("2024-01-01 00:01", periods=n, freq="1min", tz="UTC")
    y_true = rng.integers(0, 3, n)
    y_pred = np.where(rng.random(n) < 0.4, y_true, rng.integers(0, 3, n))
    result = accuracy_over_time(y_true, y_pred, buckets, baseline_class=1)
    frame = pd.DataFrame({"day": (buckets - pd.Timedelta(1, "ns")).floor("1D"), "hit": y_true == y_pred,
                          "base": y_true == 1})
    expected = frame.groupby("day").agg(samples=("hit", "size"), accuracy=("hit", "mean"),
                                        baseline_accuracy=("base", "mean"))
    np.testing.assert_allclose(result.table[["samples", "accuracy", "baseline_accuracy"]], expected)
    assert list(result.table.index) == list(expected.index)
    wins = expected["accuracy"] > expected["baseline_accuracy"]
    assert result.win_rate == pytest.approx(wins.mean()) and result.headline() == {
        "interval_win_rate": result.win_rate}
    hourly = accuracy_over_time(y_true, y_pred, buckets, baseline_class=1, interval="1h")
    assert len(hourly.table) == pytest.approx(n / 60, abs=1)


def test_a_tie_with_the_baseline_is_not_a_win():
    buckets = pd.DatetimeIndex(["2024-01-01 12:00", "2024-01-01 13:00"], tz="UTC")
    result = accuracy_over_time([1, 0], [1, 1], buckets, baseline_class=1)
    assert result.table["accuracy"].tolist() == [0.5] and result.win_rate == 0.0


def test_accuracy_over_time_refuses_what_does_not_fit():
    buckets = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    with pytest.raises(ConfigError, match="one length"):
        accuracy_over_time([1, 0], [1, 1], buckets, baseline_class=0)
    with pytest.raises(ConfigError, match="tz-aware"):
        accuracy_over_time([1, 0, 1], [1, 1, 1], buckets.tz_localize(None), baseline_class=0)


def test_confidence_thresholds_match_a_loop():
    rng = np.random.default_rng(1)
    n = 2000
    y_true = rng.integers(0, 3, n)
    proba = rng.dirichlet(np.ones(3) * 0.5, size=n)
    proba[:10] = [0.5, 0.3, 0.2]  # exactly on a threshold: it passes
    table = confidence_thresholds(y_true, proba)
    assert list(table.index) == [0.5, 0.6, 0.7, 0.8, 0.9]
    top, correct = proba.max(axis=1), proba.argmax(axis=1) == y_true
    for level, row in table.iterrows():
        passing = top >= level
        assert row["samples"] == passing.sum()
        assert row["frequency"] == pytest.approx(passing.mean())
        assert row["precision"] == pytest.approx(correct[passing].mean())


def test_a_threshold_nobody_reaches_has_nan_precision():
    table = confidence_thresholds([0, 1], np.array([[0.6, 0.4], [0.45, 0.55]]), thresholds=(0.5, 0.95))
    assert table.loc[0.95, "frequency"] == 0 and np.isnan(table.loc[0.95, "precision"])
    assert table.loc[0.5, "precision"] == 1.0
    with pytest.raises(ConfigError, match="NaN"):
        confidence_thresholds([0, 1], np.array([[0.6, 0.4], [np.nan, np.nan]]))
