"""Trading the predictions: positions, costs, the calendar, and annualization with overlapping labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from atlas.exceptions import ConfigError
from atlas.stats import CRYPTO, Calendar, class_positions, positions, trade_returns, trading_statistics


@pytest.mark.parametrize(("names", "expected"), [
    (("down", "up"), [-1, 1]),
    (("down", "flat", "up"), [-1, 0, 1]),
    (("up", "down"), [1, -1]),  # by name, whatever the order
    (("Up", "Flat", "Down"), [1, 0, -1]),
    (("sell", "buy"), [-1, 1]),  # by order: lowest short, highest long
    (("c0", "c1", "c2", "c3"), [-1, 0, 0, 1]),
    (("down", "up", "sideways"), [-1, 0, 1]),  # a name outside the vocabulary: by order
])
def test_class_positions(names, expected):
    assert class_positions(names).tolist() == expected


def test_positions_from_a_regressor_and_a_classifier():
    assert positions([0.2, -0.0001, 0.0]).tolist() == [1, -1, 0]
    assert positions([0, 2, 1, 2], class_names=("down", "flat", "up")).tolist() == [-1, 1, 0, 1]
    with pytest.raises(ConfigError, match="y_pred must be class ids 0..1"):
        positions([0, 2], class_names=("down", "up"))


def test_the_calendar_is_never_a_hard_coded_year():
    assert CRYPTO == Calendar(365, 24)
    assert CRYPTO.periods_per_year("1min") == 365 * 24 * 60
    assert Calendar(252, 24).periods_per_year("1h") == 252 * 24
    assert Calendar(252, 6.5).periods_per_year("5min") == 252 * 6.5 * 12
    assert Calendar.from_dict(Calendar(252, 6.5).to_dict()) == Calendar(252, 6.5)
    with pytest.raises(ConfigError, match="hours_per_day must be a number in"):
        Calendar(252, 25)
    with pytest.raises(ConfigError, match="positive days and hours"):
        Calendar(0, 24)


def test_trade_returns_charge_the_change_of_each_book():
    held = np.array([1.0, 1.0, -1.0, 0.0, -1.0])
    forward = np.array([0.01, 0.02, -0.01, 0.03, np.nan])
    # horizon 1: change against the bucket before (flat before the first)
    np.testing.assert_allclose(trade_returns(held, forward, cost_bps=10),
                               [0.01 - 0.001, 0.02, 0.01 - 0.002, 0.0 - 0.001, np.nan])
    # horizon 2: two staggered books, each changing against its own previous trade
    np.testing.assert_allclose(trade_returns(held, forward, horizon=2, cost_bps=10),
                               [0.01 - 0.001, 0.02 - 0.001, -0.01 * -1 - 0.002, 0.0 - 0.001, np.nan])


def test_trading_statistics_by_hand():
    stats = trading_statistics([1, 1, -1, -1, 1], [0.01, -0.02, 0.005, 0.01, 0.02], bucket_width="1h",
                               cost_bps=0)
    returns = np.array([0.01, -0.02, -0.005, -0.01, 0.02])
    np.testing.assert_allclose(stats.equity, np.cumsum(returns))
    assert stats.cumulative_return == pytest.approx(returns.sum())
    assert stats.max_drawdown == pytest.approx(0.01 - (-0.025))
    assert stats.hit_rate == pytest.approx(2 / 5)
    assert stats.turnover == pytest.approx((1 + 0 + 2 + 0 + 2) / 5)
    assert stats.sharpe_per_trade == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert stats.sharpe == pytest.approx(stats.sharpe_per_trade * math.sqrt(365 * 24))
    assert set(stats.headline()) == {"cumulative_return", "sharpe", "max_drawdown", "hit_rate", "turnover"}


def test_costs_lower_the_returns_by_the_turnover():
    rng = np.random.default_rng(0)
    held = rng.choice([-1.0, 0.0, 1.0], 1000)
    forward = rng.normal(0, 1e-3, 1000)
    free = trading_statistics(held, forward, bucket_width="1min", cost_bps=0)
    costly = trading_statistics(held, forward, bucket_width="1min", cost_bps=2)
    assert free.cumulative_return - costly.cumulative_return == pytest.approx(2e-4 * free.turnover * 1000)


def test_a_flat_model_has_no_sharpe_and_no_hits():
    stats = trading_statistics(np.zeros(100), np.full(100, 0.001), bucket_width="1min")
    assert stats.cumulative_return == 0 and stats.turnover == 0 and stats.max_drawdown == 0
    assert np.isnan(stats.sharpe) and np.isnan(stats.hit_rate)


def test_unknown_forward_returns_are_left_out():
    stats = trading_statistics([1, 1, 1, 1], [0.01, np.nan, 0.03, np.nan], bucket_width="1D", cost_bps=0)
    assert stats.trades == 2 and stats.hit_rate == 1.0
    assert stats.cumulative_return == pytest.approx(0.04)
    assert stats.sharpe_per_trade == pytest.approx(np.mean([0.01, 0.03]) / np.std([0.01, 0.03], ddof=1))


@pytest.mark.parametrize("horizon", [1, 5, 20])
def test_overlapping_labels_are_annualized_without_double_counting(horizon):
    """A market whose per-bucket Sharpe is S, held long: every horizon must give S * sqrt(buckets per year)."""
    rng = np.random.default_rng(horizon)
    n, per_bucket = 400_000, 0.05
    steps = rng.normal(per_bucket * 1e-3, 1e-3, n + horizon)
    total = np.r_[0.0, np.cumsum(steps)]
    forward = total[1 + horizon:n + 1 + horizon] - total[1:n + 1]  # bucket t: steps t+1 .. t+horizon
    stats = trading_statistics(np.ones(n), forward, bucket_width="1min", horizon=horizon, cost_bps=0)
    expected = per_bucket * math.sqrt(CRYPTO.periods_per_year("1min"))
    assert stats.sharpe == pytest.approx(expected, rel=0.12)
    # the naive reading, each overlapping forward return as one bucket's return, is sqrt(h) times too large
    naive = forward.mean() / forward.std(ddof=1) * math.sqrt(CRYPTO.periods_per_year("1min"))
    assert naive == pytest.approx(expected * math.sqrt(horizon), rel=0.12)
    # the staggered books together earn the market's return once, not h times
    assert stats.cumulative_return == pytest.approx(steps[1:n + 1].sum(), rel=0.02)
    assert stats.turnover == pytest.approx(1 / n)  # one entry per book, spread over the window


def test_invalid_arguments_are_refused():
    with pytest.raises(ConfigError, match="2 values for 3 samples"):
        trade_returns([1, 1, 1], [0.1, 0.2])
    with pytest.raises(ConfigError, match="cost_bps must be a number"):
        trade_returns([1], [0.1], cost_bps=-1)
    with pytest.raises(ConfigError, match="positions has 1 of 2 rows that are NaN"):
        trade_returns([1, np.nan], [0.1, 0.1])
