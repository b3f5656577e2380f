"""Regression statistics against scikit-learn, SciPy and a pandas reference for the ICIR."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as stats_module
from sklearn import metrics

from atlas.exceptions import ConfigError
from atlas.stats import regression_statistics


def random_case(seed: int, n: int = 3000, *, ties: bool = False):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(0, 1e-3, n)
    y_pred = 0.3 * y_true + rng.normal(0, 1e-3, n)
    if ties:
        y_true, y_pred = np.round(y_true, 3), np.round(y_pred, 3)
    buckets = pd.date_range("2024-01-01 00:17", periods=n, freq="7min", tz="UTC")
    return y_true, y_pred, buckets


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ties", [False, True])
def test_random_inputs_match_the_references(seed, ties):
    y_true, y_pred, buckets = random_case(seed, ties=ties)
    stats = regression_statistics(y_true, y_pred, train_mean=float(y_true.mean()), buckets=buckets)
    assert stats.rmse == pytest.approx(np.sqrt(metrics.mean_squared_error(y_true, y_pred)))
    assert stats.mae == pytest.approx(metrics.mean_absolute_error(y_true, y_pred))
    # with the test mean as the "training" mean, the out-of-sample R² is scikit-learn's R²
    assert stats.r2_oos == pytest.approx(metrics.r2_score(y_true, y_pred))
    assert stats.ic == pytest.approx(stats_module.pearsonr(y_pred, y_true).statistic)
    assert stats.rank_ic == pytest.approx(stats_module.spearmanr(y_pred, y_true).statistic)
    moving = y_true != 0
    same_sign = np.sign(y_pred[moving]) == np.sign(y_true[moving])
    assert stats.directional_accuracy == pytest.approx(np.mean(same_sign))
    # the ICIR against a pandas groupby over days; the bucket stamped midnight closes the day before
    day = (buckets - pd.Timedelta(1, "ns")).floor("1D")
    frame = pd.DataFrame({"p": y_pred, "t": y_true, "day": day})
    daily = frame.groupby("day").apply(lambda g: g["p"].corr(g["t"]) if len(g) >= 3 else np.nan,
                                       include_groups=False)
    np.testing.assert_allclose(stats.interval_ic.to_numpy(), daily.to_numpy())
    assert list(stats.interval_ic.index) == list(daily.index)
    assert stats.icir == pytest.approx(daily.mean() / daily.std(ddof=1))


def test_out_of_sample_r2_uses_the_training_mean():
    y_true = np.array([1.0, 2.0, 3.0])
    y_pred = np.array([2.0, 2.0, 2.0])  # the test mean: R² 0 against it, but not against the training mean
    assert regression_statistics(y_true, y_pred, train_mean=2.0).r2_oos == 0.0
    assert regression_statistics(y_true, y_pred, train_mean=0.0).r2_oos == pytest.approx(1 - 2 / 14)
    assert regression_statistics(y_true, y_pred, train_mean=5.0).r2_oos == pytest.approx(1 - 2 / 29)


def test_degenerate_cases_give_defined_nan():
    constant = regression_statistics([0.1, -0.2, 0.3], [0.05, 0.05, 0.05], train_mean=0.0)
    assert np.isnan(constant.ic) and np.isnan(constant.rank_ic) and constant.directional_accuracy == 2 / 3
    assert np.isnan(constant.icir) and constant.interval_ic.empty  # no timestamps
    flat = regression_statistics([0.0, 0.0], [0.1, -0.1], train_mean=0.0)
    assert np.isnan(flat.r2_oos) and np.isnan(flat.directional_accuracy)
    one_day = regression_statistics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], train_mean=0.0,
                                    buckets=pd.date_range("2024-01-01 01:00", periods=3, freq="1h", tz="UTC"))
    assert one_day.interval_ic.tolist() == [pytest.approx(0.5)] and np.isnan(one_day.icir)
    assert set(one_day.headline()) == {"rmse", "mae", "r2_oos", "directional_accuracy", "ic", "rank_ic", "icir"}


@pytest.mark.parametrize(("y_pred", "message"), [
    ([0.1, np.nan, 0.2], "y_pred has 1 of 3 rows that are NaN .*row 1"),
    ([0.1, 0.2], "2 values for 3 samples"),
    ([[0.1, 0.2, 0.3]], "one-dimensional"),
])
def test_invalid_predictions_raise_a_clear_config_error(y_pred, message):
    with pytest.raises(ConfigError, match=message):
        regression_statistics([0.1, 0.2, 0.3], y_pred, train_mean=0.0)


def test_naive_timestamps_are_refused():
    with pytest.raises(ConfigError, match="tz-aware DatetimeIndex"):
        regression_statistics([0.1, 0.2, 0.3], [0.1, 0.2, 0.0], train_mean=0.0,
                              buckets=pd.date_range("2024-01-01", periods=3, freq="1h"))
