"""One feature code path: the row a live runner computes from the trailing ``history + 1`` buckets of raw series is
the row ``features_frame`` computes over a long range, for every kind of feature in the DSL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas.data import MarketStore
from atlas.data.features import (
    VWAP,
    ArbRevenue,
    Ask,
    AskStrength,
    AskStrengthValue,
    Bid,
    BidStrength,
    BidStrengthValue,
    Close,
    DayOfWeek,
    FairValue,
    InterExchangeSpread,
    LogReturns,
    Midpoint,
    MidpointDiff,
    OrderbookImbalance,
    SimpleReturns,
    Spread,
    TimeOfDay,
    TradeFlow,
    Volatility,
    Volume,
)
from atlas.data.featureset import FeatureLabelSet
from atlas.exceptions import ConfigError, MissingDataError

START = pd.Timestamp("2024-01-01", tz="UTC")
BUCKETS = 1440
WIDTH = pd.Timedelta("1min")
GAPS = (1, 2, 3, 5)  # missing buckets in a row: within max_interpolate (2) and beyond it

#: Features whose every value is exact from the trailing history (elementwise, shifts, the calendar).
EXACT = [
    LogReturns().bitstamp(), LogReturns().bitstamp().lookback(5), SimpleReturns().itbit().lookback(3),
    MidpointDiff().bitstamp().depth(1), LogReturns().bitstamp().price("vwap").lookback(2),
    LogReturns().kraken().price("close"), Close().kraken(), Midpoint().itbit(), Midpoint().bitstamp().depth(1),
    Bid().bitstamp(), Ask().itbit().depth(1), Spread().bitstamp(), Spread().itbit().depth(1),
    BidStrength().bitstamp().slippage(10), AskStrength().itbit().slippage(10),
    BidStrengthValue().bitstamp().slippage(10), AskStrengthValue().bitstamp().slippage(10),
    OrderbookImbalance().itbit().slippage(10), Volume().bitstamp(), VWAP().itbit(), TradeFlow().bitstamp(),
    InterExchangeSpread("bitstamp", "itbit"), ArbRevenue("bitstamp", "itbit").depth(1),
    FairValue("bitstamp", "itbit"), FairValue("bitstamp", "itbit").weights("equal"),
    FairValue("bitstamp", "itbit").weights([2, 1]), TimeOfDay().cyclic("sin"), DayOfWeek(),
    LogReturns().bitstamp().lag(2), Midpoint().bitstamp().diff(3), -Spread().itbit(),
    (Bid().bitstamp() - Ask().itbit()) / Spread().bitstamp(), 2 * Volume().itbit() - Volume().bitstamp(),
    LogReturns().itbit().lookback(2).lag(3).diff(2), Volume().bitstamp().pipe(np.log1p),
]
#: Features over windows of several buckets: pandas' rolling windows carry a running sum along the series.
ROLLING = [
    Volatility().bitstamp().window(10), Volume().itbit().window(5), VWAP().bitstamp().window(3),
    TradeFlow().itbit().window(4), FairValue("bitstamp", "itbit").window(3), Midpoint().bitstamp().rolling_mean(5),
    LogReturns().itbit().rolling_std(4), OrderbookImbalance().bitstamp().slippage(10).zscore(6),
    (TradeFlow().bitstamp().window(3) / Volume().bitstamp().window(3)).lag(2).rolling_mean(3),
]
LABEL = LogReturns().bitstamp().lookforward(1)


def _walk(rng, n: int, start: float, scale: float) -> np.ndarray:
    return np.round(start + np.cumsum(rng.normal(0, scale, n)), 2)


def _with_gaps(rng, values: np.ndarray) -> np.ndarray:
    values = values.astype(float).copy()
    for first in rng.choice(np.arange(20, len(values) - 10), 40, replace=False):
        values[first:first + GAPS[first % len(GAPS)]] = np.nan
    return values


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A day of synthetic metric series for two exchanges and bars for a third, each with gaps of 1 to 5 buckets."""
    rng = np.random.default_rng(17)
    index = pd.date_range(START, periods=BUCKETS, freq=WIDTH).as_unit("ns")
    series = {}
    for exchange, level in (("bitstamp", 100.0), ("itbit", 100.3)):
        mid = _walk(rng, BUCKETS, level, 0.05)
        half = np.round(rng.uniform(0.01, 0.2, BUCKETS), 2)
        deep = np.round(rng.uniform(0.01, 0.3, BUCKETS), 2)
        volume = np.round(rng.gamma(1.0, 2.0, BUCKETS) * (rng.uniform(size=BUCKETS) > 0.1), 4)
        buy = np.round(volume * rng.uniform(0, 1, BUCKETS), 4)
        values = {
            "bid": mid - half, "ask": mid + half, "midpoint": mid, "spread": 2 * half,
            "bid_d1": mid - half - deep, "ask_d1": mid + half + deep, "midpoint_d1": mid,
            "bid_strength_s10": rng.uniform(1, 9, BUCKETS), "ask_strength_s10": rng.uniform(1, 9, BUCKETS),
            "bid_strength_value_s10": rng.uniform(100, 900, BUCKETS),
            "ask_strength_value_s10": rng.uniform(100, 900, BUCKETS), "imbalance_s10": rng.uniform(-1, 1, BUCKETS),
            "volume": volume, "vwap": np.where(volume > 0, mid + rng.normal(0, 0.02, BUCKETS), np.nan),
            "buy_volume": buy, "sell_volume": volume - buy,
        }
        series |= {f"{exchange}_btc_usd.1min.{metric}": pd.Series(_with_gaps(rng, v), index=index)
                   for metric, v in values.items()}
    series |= {"kraken_btc_usd.1min.close": pd.Series(_with_gaps(rng, _walk(rng, BUCKETS, 99.8, 0.05)), index=index),
               "kraken_btc_usd.1min.volume": pd.Series(rng.uniform(0, 5, BUCKETS), index=index)}
    with MarketStore(f"sqlite:///{tmp_path_factory.mktemp('compute') / 'market.db'}") as market_store:
        market_store.write_series(series)
        yield market_store


def _check_rows(fls: FeatureLabelSet, store: MarketStore, *, exact: bool) -> int:
    """Computes rows from their trailing history alone and compares them with features_frame; returns rows seen."""
    first, last = START + (fls.history + 10) * WIDTH, START + (BUCKETS - 1) * WIDTH
    frame = fls.features_frame(first, last, store=store)
    raw = {key.name: store.read_series(key).reindex(pd.date_range(START, last, freq=WIDTH).as_unit("ns"))
           for key in fls.feature_series()}
    missing = pd.DataFrame(raw).isna().any(axis=1)
    after_gap = missing.index[(~missing & missing.shift(1, fill_value=False)).to_numpy()]
    rows = frame.index[::9].union(after_gap[after_gap >= first]).union(after_gap[after_gap >= first] + WIDTH)
    for t in rows:
        index = pd.date_range(t - fls.history * WIDTH, t, freq=WIDTH).as_unit("ns")
        held = {name: values.loc[index[0]:t].to_numpy() for name, values in raw.items()}  # a runner's deques
        row = fls.compute_features(held, index).iloc[-1].to_numpy()
        expected = frame.loc[t].to_numpy()
        if exact:
            np.testing.assert_array_equal(row, expected, err_msg=str(t))
        else:
            np.testing.assert_array_equal(np.isnan(row), np.isnan(expected), err_msg=str(t))
            np.testing.assert_allclose(row, expected, rtol=1e-12, atol=1e-15, err_msg=str(t))
    return len(rows)


@pytest.mark.parametrize("max_interpolate", [0, 2])
def test_every_feature_row_is_bit_for_bit_the_same_from_its_history_alone(store, max_interpolate):
    fls = FeatureLabelSet(features=EXACT, labels=[LABEL], max_interpolate=max_interpolate)
    assert fls.history == 7 + max_interpolate  # LogReturns().itbit().lookback(2).lag(3).diff(2) reads 7 back
    assert _check_rows(fls, store, exact=True) > 150


def test_rolling_features_agree_from_their_history_to_rounding(store):
    fls = FeatureLabelSet(features=ROLLING, labels=[LABEL], max_interpolate=2)
    assert fls.history == 10 + 2
    assert _check_rows(fls, store, exact=False) > 150


@pytest.mark.xfail(strict=True, reason="pandas' rolling sum and variance add and remove values along the whole "
                   "series, so a long range and a short one round differently (about 1e-16 relative); exact "
                   "needs windows computed from their own values (see the report of issue 12)")
def test_rolling_features_are_bit_for_bit_the_same_from_their_history(store):
    fls = FeatureLabelSet(features=ROLLING, labels=[LABEL], max_interpolate=2)
    _check_rows(fls, store, exact=True)


def test_features_frame_and_build_share_the_feature_computation(store):
    fls = FeatureLabelSet(features=EXACT[:6] + ROLLING[:2], labels=[LABEL], max_interpolate=2)
    first, last = START + pd.Timedelta("2h"), START + pd.Timedelta("5h")
    built = fls.build(first, last, store=store, cache=False)
    served = fls.features_frame(first, last, store=store)
    pd.testing.assert_frame_equal(built[fls.feature_names], served.loc[built.index])
    assert [key.name for key in fls.feature_series()] == sorted(
        {key.name for f in fls.features for key in f.series()})
    assert "bitstamp_btc_usd.1min.midpoint" in {key.name for key in fls.feature_series()}


def test_a_missing_series_is_the_same_error_as_from_the_store(store):
    fls = FeatureLabelSet(features=[LogReturns().okcoin()], labels=[LABEL])
    with pytest.raises(MissingDataError) as from_store:
        fls.features_frame(START + pd.Timedelta("1h"), START + pd.Timedelta("2h"), store=store)
    index = pd.date_range(START, periods=fls.history + 1, freq=WIDTH).as_unit("ns")
    with pytest.raises(MissingDataError) as from_memory:
        fls.compute_features({"bitstamp_btc_usd.1min.midpoint": np.ones(len(index))}, index)
    assert str(from_memory.value) == str(from_store.value)
    assert "okcoin_btc_usd.1min.midpoint" in str(from_memory.value)


def test_series_off_the_grid_are_refused():
    fls = FeatureLabelSet(features=[Midpoint().bitstamp()], labels=[LABEL])
    index = pd.date_range(START, periods=3, freq=WIDTH).as_unit("ns")
    off = pd.Series([1.0, 2.0, 3.0], index=index + pd.Timedelta("30s"))
    with pytest.raises(ConfigError, match="not on the same grid"):
        fls.compute_features({"bitstamp_btc_usd.1min.midpoint": off}, index)
