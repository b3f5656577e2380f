"""The feature DSL: a contract suite that runs every feature class against a plain-pandas reference on
simulated data, and the DSL's rules: immutability, hashes, names, round trips, footprints, leakage, errors."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from atlas.data import MarketSimulator, MarketStore, MetricPipeline, SimulatorConfig
from atlas.data.features import (
    FEATURES,
    VWAP,
    ArbRevenue,
    Arithmetic,
    Ask,
    AskStrength,
    AskStrengthValue,
    Bid,
    BidStrength,
    BidStrengthValue,
    Close,
    DayOfWeek,
    FairValue,
    Footprint,
    InterExchangeSpread,
    LeakageError,
    LogReturns,
    Midpoint,
    MidpointDiff,
    OrderbookImbalance,
    Pipe,
    SimpleReturns,
    Spread,
    TimeOfDay,
    TradeFlow,
    Transform,
    Volatility,
    Volume,
    check_inputs,
    check_labels,
    feature,
    feature_from_dict,
)
from atlas.exceptions import AtlasError, ConfigError, MissingDataError, UnknownExchangeError

BS, IT, KR = "bitstamp_btc_usd.1min.", "itbit_btc_usd.1min.", "kraken_btc_usd.30min."


def double(series: pd.Series) -> pd.Series:
    """A module-level step for .pipe (importable by name)."""
    return 2 * series


def peek_ahead(series: pd.Series) -> pd.Series:
    return series.shift(-1)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """One simulated day on two exchanges with one-minute metrics, and 30-minute bars for kraken only."""
    path = tmp_path_factory.mktemp("features") / "market.db"
    with MarketStore(f"sqlite:///{path}") as store:
        config = SimulatorConfig(days=1, exchanges="bitstamp,itbit", seed=5, signal=0.3,
                                 snapshot_interval="20s", levels=10)
        MarketSimulator(config).simulate_into(store)
        MetricPipeline(store, bucket="1min", depths=(0, 1), slippages=(0, 10)).run()
        rng = np.random.default_rng(3)
        index = pd.date_range("2024-01-01 00:30", periods=48, freq="30min", tz="UTC")
        close = pd.Series(10_000 * np.exp(np.cumsum(rng.normal(0, 0.01, 48))), index=index)
        open_ = close.shift(1).fillna(10_000)
        bars = {"open": open_, "close": close, "volume": pd.Series(rng.uniform(1, 9, 48), index=index),
                "high": np.maximum(open_, close) + 5, "low": np.minimum(open_, close) - 5}
        # one bar missing: a gap
        store.write_series({KR + metric: values.drop(index[20]) for metric, values in bars.items()})
        yield store


def _load(store: MarketStore, width: str) -> dict[str, pd.Series]:
    registry = store.series_registry()
    raw = {name: store.read_series(name) for name in registry.loc[registry["bucket_width"] == width, "name"]}
    first = min(s.index.min() for s in raw.values())
    last = max(s.index.max() for s in raw.values())
    grid = pd.date_range(first, last, freq=width, tz="UTC")
    return {name: s.reindex(grid) for name, s in raw.items()}


@pytest.fixture(scope="module")
def minutes(market) -> dict[str, pd.Series]:
    return _load(market, "1min")


@pytest.fixture(scope="module")
def bars(market) -> dict[str, pd.Series]:
    return _load(market, "30min")


# plain-pandas references -----------------------------------------------------------------------------------


def log_returns(p: pd.Series, n: int = 1) -> pd.Series:
    return pd.Series(np.log(p.to_numpy() / p.shift(n).to_numpy()), index=p.index)


def vwap_from_trades(store: MarketStore, exchange: str, grid: pd.DatetimeIndex, window: int) -> pd.Series:
    """VWAP over the last ``window`` minutes straight from the stored trades, not from the metric series."""
    trades = store.read_trades(exchange)
    bucket = trades["timestamp"].dt.ceil("1min")
    sums = pd.DataFrame({"notional": trades["price"] * trades["volume"], "volume": trades["volume"]}).groupby(
        bucket.to_numpy()).sum()
    sums.index = pd.DatetimeIndex(sums.index).tz_convert("UTC") if sums.index.tz else pd.DatetimeIndex(
        sums.index).tz_localize("UTC")
    sums = sums.reindex(grid, fill_value=0.0).rolling(window).sum()
    return sums["notional"] / sums["volume"]


def fair_value_by_volume(d, window):
    vb = d[BS + "volume"].rolling(window).sum()
    vi = d[IT + "volume"].rolling(window).sum()
    mb, mi = d[BS + "midpoint"], d[IT + "midpoint"]
    return ((vb * mb + vi * mi) / (vb + vi)).where(vb + vi > 0, (mb + mi) / 2)


def zscore(x, n):
    return (x - x.rolling(n).mean()) / x.rolling(n).std()


def arb_revenue(d):
    sell_bitstamp = d[BS + "bid"] - d[IT + "ask"]
    sell_itbit = d[IT + "bid"] - d[BS + "ask"]
    return sell_bitstamp.clip(lower=0) - sell_itbit.clip(lower=0)  # at most one crossing pays at a time


def hours(index):
    return pd.Series(index.hour + index.minute / 60, index=index, dtype=float)


def weekdays(index):
    return pd.Series([t.weekday() for t in index], index=index, dtype=float)


M, M1 = BS + "midpoint", BS + "midpoint_d1"
# (feature, the data it reads: "minutes" or "bars", reference)
CASES = [
    (Midpoint().bitstamp(), "minutes", lambda d: d[M]),
    (Midpoint().itbit().depth(1), "minutes", lambda d: d[IT + "midpoint_d1"]),
    (Midpoint().bitstamp().lookforward(3), "minutes", lambda d: d[M].shift(-3)),
    (MidpointDiff().bitstamp().lookback(2), "minutes", lambda d: d[M] - d[M].shift(2)),
    (MidpointDiff().bitstamp().lookforward(2), "minutes", lambda d: d[M].shift(-2) - d[M]),
    (SimpleReturns().itbit().lookback(5), "minutes",
     lambda d: d[IT + "midpoint"] / d[IT + "midpoint"].shift(5) - 1),
    (SimpleReturns().itbit().lookforward(1), "minutes",
     lambda d: d[IT + "midpoint"].shift(-1) / d[IT + "midpoint"] - 1),
    (LogReturns().bitstamp(), "minutes", lambda d: log_returns(d[M])),
    (LogReturns().bitstamp().depth(1).lookforward(4), "minutes", lambda d: log_returns(d[M1], 4).shift(-4)),
    (LogReturns().itbit().price("vwap").lookback(3), "minutes", lambda d: log_returns(d[IT + "vwap"], 3)),
    (Volatility().bitstamp().window(15), "minutes", lambda d: log_returns(d[M]).rolling(15).std()),
    (Volatility().bitstamp().lookforward(5), "minutes",
     lambda d: log_returns(d[M]).rolling(5).std().shift(-5)),
    (Bid().bitstamp(), "minutes", lambda d: d[BS + "bid"]),
    (Bid().bitstamp().depth(1), "minutes", lambda d: d[BS + "bid_d1"]),
    (Ask().itbit().depth(1), "minutes", lambda d: d[IT + "ask_d1"]),
    (Spread().bitstamp(), "minutes", lambda d: d[BS + "ask"] - d[BS + "bid"]),
    (Spread().bitstamp().depth(1), "minutes", lambda d: d[BS + "ask_d1"] - d[BS + "bid_d1"]),
    (BidStrength().bitstamp().slippage(10), "minutes", lambda d: d[BS + "bid_strength_s10"]),
    (AskStrength().itbit(), "minutes", lambda d: d[IT + "ask_strength_s0"]),
    (BidStrengthValue().bitstamp().slippage(10), "minutes", lambda d: d[BS + "bid_strength_value_s10"]),
    (AskStrengthValue().bitstamp().slippage(10), "minutes", lambda d: d[BS + "ask_strength_value_s10"]),
    (OrderbookImbalance().bitstamp().slippage(10), "minutes",
     lambda d: (d[BS + "bid_strength_s10"] - d[BS + "ask_strength_s10"]) / (
         d[BS + "bid_strength_s10"] + d[BS + "ask_strength_s10"])),
    (Volume().bitstamp(), "minutes", lambda d: d[BS + "volume"]),
    (Volume().bitstamp().window(5), "minutes", lambda d: d[BS + "volume"].rolling(5).sum()),
    (Volume().itbit().lookforward(3), "minutes",
     lambda d: d[IT + "volume"].shift(-1) + d[IT + "volume"].shift(-2) + d[IT + "volume"].shift(-3)),
    (VWAP().itbit(), "minutes", lambda d: d[IT + "vwap"]),
    (VWAP().itbit().window(3), "minutes", "vwap_from_trades"),
    (TradeFlow().bitstamp().window(4), "minutes",
     lambda d: (d[BS + "buy_volume"] - d[BS + "sell_volume"]).rolling(4).sum()),
    (InterExchangeSpread("bitstamp", "itbit"), "minutes", lambda d: d[M] - d[IT + "midpoint"]),
    (InterExchangeSpread().exchanges("itbit", "bitstamp").depth(1), "minutes",
     lambda d: d[IT + "midpoint_d1"] - d[M1]),
    (FairValue("bitstamp", "itbit"), "minutes", lambda d: fair_value_by_volume(d, 1)),
    (FairValue("bitstamp", "itbit").window(3), "minutes", lambda d: fair_value_by_volume(d, 3)),
    (FairValue("bitstamp", "itbit").weights("equal"), "minutes", lambda d: (d[M] + d[IT + "midpoint"]) / 2),
    (FairValue("bitstamp", "itbit").weights([3, 1]), "minutes",
     lambda d: 0.75 * d[M] + 0.25 * d[IT + "midpoint"]),
    (ArbRevenue("bitstamp", "itbit"), "minutes", arb_revenue),
    (Close().kraken().bucket("30min"), "bars", lambda d: d[KR + "close"]),
    (LogReturns().kraken().bucket("30min").price("close").lookback(2), "bars",
     lambda d: log_returns(d[KR + "close"], 2)),
    (Volume().kraken().bucket("30min").window(2), "bars", lambda d: d[KR + "volume"].rolling(2).sum()),
    (TimeOfDay(), "minutes", lambda d: hours(d[M].index)),
    (TimeOfDay().cyclic("sin"), "minutes", lambda d: np.sin(2 * np.pi * hours(d[M].index) / 24)),
    (DayOfWeek().cyclic("cos"), "minutes", lambda d: np.cos(2 * np.pi * weekdays(d[M].index) / 7)),
    (LogReturns().bitstamp() - LogReturns().itbit(), "minutes",
     lambda d: log_returns(d[M]) - log_returns(d[IT + "midpoint"])),
    (2 * Midpoint().bitstamp() + 1, "minutes", lambda d: d[M] * 2 + 1),
    (1 / Volume().itbit(), "minutes", lambda d: (1 / d[IT + "volume"]).where(d[IT + "volume"] != 0)),
    (-LogReturns().bitstamp(), "minutes", lambda d: -log_returns(d[M])),
    (Volume().bitstamp().rolling_mean(5), "minutes", lambda d: d[BS + "volume"].rolling(5).mean()),
    (Volume().bitstamp().rolling_std(5), "minutes", lambda d: d[BS + "volume"].rolling(5).std()),
    (OrderbookImbalance().itbit().zscore(10), "minutes", lambda d: zscore(d[IT + "imbalance_s0"], 10)),
    (Spread().itbit().lag(3), "minutes", lambda d: d[IT + "spread"].shift(3)),
    (Midpoint().itbit().diff(2), "minutes", lambda d: d[IT + "midpoint"] - d[IT + "midpoint"].shift(2)),
    (Midpoint().bitstamp().pipe(np.log), "minutes", lambda d: np.log(d[M])),
    (Volume().bitstamp().pipe(double), "minutes", lambda d: 2 * d[BS + "volume"]),
]
FEATURES_UNDER_TEST = [case[0] for case in CASES]


def _ids(case) -> str:
    return case[0].name


def _case_data(case, minutes, bars):
    return minutes if case[1] == "minutes" else bars


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_every_feature_matches_its_pandas_reference(case, market, minutes, bars):
    feature_, source, reference = case
    data = _case_data(case, minutes, bars)
    got = feature_.compute(data)
    grid = next(iter(data.values())).index
    if reference == "vwap_from_trades":
        expected = vwap_from_trades(market, "itbit", grid, 3)
    else:
        expected = reference(data)
    assert got.name == feature_.name and got.index.equals(grid)
    assert expected.notna().sum() >= 10, "the reference must have values to compare"
    expected = expected.astype(float).rename(feature_.name)
    pd.testing.assert_series_equal(got, expected, check_freq=False, rtol=1e-9)


def test_the_contract_suite_covers_every_feature_class():
    tested = {type(f) for f in FEATURES_UNDER_TEST}
    assert set(FEATURES.values()) <= tested
    assert {Arithmetic, Transform, Pipe} <= tested


def _outside(data, keys, first, last):
    """``data`` with the series in ``keys`` NaN outside positions ``first..last``."""
    out = dict(data)
    for key in keys:
        values = data[key.name].copy()
        values.iloc[:max(first, 0)] = np.nan
        values.iloc[last + 1:] = np.nan
        out[key.name] = values
    return out


@pytest.mark.parametrize("case", [c for c in CASES if c[0].series()], ids=_ids)
def test_every_feature_reads_exactly_its_footprint(case, minutes, bars):
    """Values outside [t - lookback, t + lookforward] leave the value at t alone; its edges change it."""
    feature_ = case[0]
    data = _case_data(case, minutes, bars)
    full = feature_.compute(data)
    back, ahead = feature_.footprint.lookback, feature_.footprint.lookforward
    start = len(full) // 2
    t = next(i for i in range(start, len(full)) if np.isfinite(full.iloc[i]) and full.iloc[i] != 0)
    keys = feature_.series()
    assert feature_.compute(_outside(data, keys, t - back, t + ahead)).iloc[t] == pytest.approx(full.iloc[t])
    narrower = ([(t - back + 1, t + ahead)] if back else []) + ([(t - back, t + ahead - 1)] if ahead else [])
    for first, last in narrower:
        value = feature_.compute(_outside(data, keys, first, last)).iloc[t]
        assert value != pytest.approx(full.iloc[t]), f"{feature_.name} reads less than its footprint"


# lookforward and footprints --------------------------------------------------------------------------------

GRID = pd.date_range("2024-01-01 00:01", periods=10, freq="1min", tz="UTC")
K = np.arange(10)
KNOWN = {BS + "midpoint": pd.Series(np.exp(K**2 / 10), index=GRID),
         BS + "volume": pd.Series(10.0**K, index=GRID)}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_lookforward_reads_exactly_the_next_n_buckets(n):
    ahead = LogReturns().bitstamp().lookforward(n).compute(KNOWN).to_numpy()
    np.testing.assert_allclose(ahead[:-n], ((K[:-n] + n) ** 2 - K[:-n] ** 2) / 10)  # log(mid[t+n] / mid[t])
    assert np.isnan(ahead[-n:]).all()
    back = LogReturns().bitstamp().lookback(n).compute(KNOWN).to_numpy()
    np.testing.assert_allclose(back[n:], (K[n:] ** 2 - (K[n:] - n) ** 2) / 10)  # log(mid[t] / mid[t-n])
    assert np.isnan(back[:n]).all()
    np.testing.assert_allclose(Midpoint().bitstamp().lookforward(n).compute(KNOWN).to_numpy()[:-n],
                               np.exp((K[:-n] + n) ** 2 / 10))
    volume = Volume().bitstamp().lookforward(n).compute(KNOWN).to_numpy()  # buckets t+1 .. t+n, not t
    np.testing.assert_allclose(volume[:-n], [sum(10.0 ** (k + j) for j in range(1, n + 1)) for k in K[:-n]])


def test_footprints_compose():
    r3 = LogReturns().bitstamp().lookback(3)
    assert r3.footprint == Footprint(3, 0) and not r3.is_label
    assert r3.rolling_mean(5).footprint == Footprint(7, 0)
    assert r3.zscore(10).footprint == Footprint(12, 0)
    assert r3.diff(2).footprint == Footprint(5, 0)
    assert r3.lag(2).footprint == Footprint(5, 0)
    assert (r3 + Volume().itbit().window(6)).footprint == Footprint(5, 0)
    assert Volatility().bitstamp().window(20).footprint == Footprint(20, 0)
    assert (r3 * 2).footprint == r3.footprint == (-r3).footprint
    label = LogReturns().bitstamp().lookforward(2)
    assert label.rolling_mean(3).footprint == Footprint(2, 2) and label.rolling_mean(3).is_label
    assert (r3 - label).footprint == Footprint(3, 2)
    assert label.lag(1).footprint == Footprint(1, 1)
    assert label.lag(2).footprint == Footprint(2, 0) and not label.lag(2).is_label  # it ends at t
    assert Volume().bitstamp().pipe(double, lookback=4).footprint == Footprint(4, 0)
    assert FairValue("bitstamp", "itbit").window(3).lookforward(1).footprint == Footprint(1, 1)


def test_a_lagged_label_reads_only_the_past():
    lagged = LogReturns().bitstamp().lookforward(2).lag(2).compute(KNOWN)
    back = LogReturns().bitstamp().lookback(2).compute(KNOWN)
    pd.testing.assert_series_equal(lagged, back, check_names=False)


# leakage ---------------------------------------------------------------------------------------------------


def test_inputs_that_read_the_future_raise_a_leakage_error_naming_them():
    ok = [LogReturns().bitstamp().lookback(5), Volume().itbit().zscore(10), TimeOfDay()]
    check_inputs(ok)
    leaks = [LogReturns().bitstamp().lookforward(1).rolling_mean(3),
             Volume().itbit() + Midpoint().itbit().lookforward(2),
             Volume().bitstamp().pipe(peek_ahead, lookforward=1)]
    with pytest.raises(LeakageError) as caught:
        check_inputs(ok + leaks)
    for leak in leaks:
        assert leak.name in str(caught.value)
    assert ok[0].name not in str(caught.value)
    assert isinstance(caught.value, AtlasError) and isinstance(caught.value, ValueError)
    with pytest.raises(LeakageError, match="lookforward"):
        check_inputs(LogReturns().bitstamp().lookforward(1))


def test_labels_must_read_the_future():
    check_labels([LogReturns().bitstamp().lookforward(1), Volume().itbit().lookforward(5).zscore(10)])
    with pytest.raises(ConfigError, match=r"volume\(itbit_btc_usd, 1min\).*\.lookforward\(n\)"):
        check_labels([LogReturns().bitstamp().lookforward(1), Volume().itbit()])
    with pytest.raises(ConfigError, match="must be features"):
        check_inputs(["log_returns"])


# value objects: immutability, hashing, names, round trips ---------------------------------------------------


def test_fluent_calls_return_new_features_and_leave_the_original_alone():
    base = LogReturns().bitstamp()
    changed = [base.lookback(5), base.itbit(), base.five_min(), base.bucket("30min"), base.depth(1),
               base.price("close"), base.lookforward(2)]
    assert base.name == "log_returns(bitstamp_btc_usd, 1min, lookback=1)"
    assert all(f is not base and f != base for f in changed)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.params = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        (base + 1).op = "-"
    with pytest.raises(TypeError, match="ambiguous.*is_label"):
        bool(base)
    with pytest.raises(TypeError, match="ambiguous"):
        base or Volume()


def test_equal_features_hash_equal_and_serve_as_keys():
    assert LogReturns().bitstamp() == LogReturns("bitstamp") == LogReturns().lookback(1).exchange("bitstamp")
    assert Midpoint().bitstamp().depth(0) == Midpoint().bitstamp()
    assert Midpoint().bitstamp().one_min() == Midpoint().bitstamp().bucket("60s")
    table = {f: i for i, f in enumerate(FEATURES_UNDER_TEST)}
    assert len(table) == len(FEATURES_UNDER_TEST) == len({f.name for f in FEATURES_UNDER_TEST})
    rebuilt = LogReturns().exchange("bitstamp_btc_usd").lookback(1)
    assert table[rebuilt] == FEATURES_UNDER_TEST.index(LogReturns().bitstamp())
    assert hash(2 * Midpoint().bitstamp() + 1) == hash(2 * Midpoint().bitstamp() + 1)
    assert Bid().bitstamp() != Ask().bitstamp()
    assert Volume().bitstamp() != Volume().bitstamp().window(2)


def test_canonical_names():
    assert LogReturns().bitstamp().name == "log_returns(bitstamp_btc_usd, 1min, lookback=1)"
    assert str(LogReturns().itbit().lookforward(3)) == "log_returns(itbit_btc_usd, 1min, lookforward=3)"
    assert BidStrength().kraken().one_hour().slippage(10).name == (
        "bid_strength(kraken_btc_usd, 1h, slippage=10)")
    assert Midpoint().bitstamp().depth(0.5).name == "midpoint(bitstamp_btc_usd, 1min, depth=0.5)"
    assert (Volume().bitstamp() / Volume().bitstamp().rolling_mean(60)).name == (
        "(volume(bitstamp_btc_usd, 1min) / rolling_mean(volume(bitstamp_btc_usd, 1min), 60))")
    assert DayOfWeek().cyclic("sin").name == "day_of_week(1min, cyclic=sin)"
    assert repr(LogReturns().bitstamp().lookback(2)) == (
        "LogReturns(exchange='bitstamp_btc_usd', bucket='1min', lookback=2)")


@pytest.mark.parametrize("feature_", FEATURES_UNDER_TEST + [
    FairValue("bitstamp", "itbit", "coinbase").depth(1).lookforward(2),
    Arithmetic("-", 1.5, Volume().gemini()), Volume().bitstamp().pipe("numpy:log1p", lookback=2)], ids=str)
def test_every_feature_round_trips_through_a_dict_and_pickle(feature_):
    text = json.dumps(feature_.to_dict())
    restored = feature_from_dict(json.loads(text))
    assert restored == feature_ and hash(restored) == hash(feature_) and restored.name == feature_.name
    assert type(feature_).from_dict(json.loads(text)) == feature_
    assert pickle.loads(pickle.dumps(feature_)) == feature_
    assert json.loads(text)["type"] == type(feature_).__name__


def test_a_stored_feature_of_a_venue_added_later_still_loads():
    cme = LogReturns().exchange("cme_es_usd", new_venue=True)
    assert feature_from_dict(cme.to_dict()) == cme and cme.name.startswith("log_returns(cme_es_usd,")
    assert LogReturns().exchange("cme_es_usd") == cme  # the store decides whether a venue is known (test_venues)
    with pytest.raises(UnknownExchangeError, match="venue_base_quote"):
        LogReturns().exchange("cme_es")


# exchanges and buckets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("venue", ["bitstamp", "bitfinex", "kraken", "itbit", "okcoin", "coinbase", "gemini"])
def test_exchange_shortcuts(venue):
    assert getattr(LogReturns(), venue)() == LogReturns().exchange(venue)
    assert getattr(LogReturns(), venue)().series() == {
        next(iter(LogReturns().exchange(f"{venue}_btc_usd").series()))}


def test_pair_shortcuts_and_exchange_by_name():
    assert LogReturns().bitstamp_btc_eur().name == "log_returns(bitstamp_btc_eur, 1min, lookback=1)"
    assert Volume().kraken_eth_usd() == Volume().exchange("kraken", pair="eth_usd")
    assert Volume().poloniex().name == "volume(poloniex_btc_usd, 1min)"
    assert {k.name for k in VWAP().coinbase_btc_gbp().series()} == {"coinbase_btc_gbp.1min.vwap",
                                                                    "coinbase_btc_gbp.1min.volume"}


def test_buckets():
    f = LogReturns().bitstamp()
    assert f.bucket == "1min" and isinstance(f.bucket, str)
    assert [g.bucket for g in (f.one_min(), f.five_min(), f.ten_min(), f.one_hour(), f.bucket("30min"))] == [
        "1min", "5min", "10min", "1h", "30min"]
    pair = (f - LogReturns().itbit()).rolling_mean(3).bucket("5min")
    assert pair.bucket == "5min" and {k.width for k in pair.series()} == {"5min"}
    with pytest.raises(ConfigError, match="different buckets"):
        f.five_min() + Volume().bitstamp()
    with pytest.raises(ConfigError, match="bucket width"):
        f.bucket("1ME")


# did you mean ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "error", "hint"), [
    (lambda: LogReturns().bitsamp, AttributeError, "did you mean bitstamp?"),
    (lambda: LogReturns().bitsamp_btc_usd, AttributeError, "did you mean bitstamp_btc_usd?"),
    (lambda: LogReturns().lookbak, AttributeError, "did you mean lookback?"),
    (lambda: Volume().rolling_meen, AttributeError, "did you mean rolling_mean"),
    (lambda: feature("LogReturn"), ConfigError, "did you mean LogReturns?"),
    (lambda: LogReturns(lookbak=2), ConfigError, "did you mean lookback?"),
    (lambda: feature_from_dict({"type": "Midpont"}), ConfigError, "did you mean Midpoint"),
])
def test_typos_get_did_you_mean(make, error, hint):
    with pytest.raises(error) as caught:
        make()
    assert hint in str(caught.value)


def test_feature_classes_by_name():
    assert feature("LogReturns") is LogReturns and feature("log_returns") is LogReturns
    assert feature("vwap") is VWAP and feature("orderbook_imbalance") is OrderbookImbalance


# missing data ----------------------------------------------------------------------------------------------


def test_order_book_features_on_bar_only_data_say_what_is_missing(bars):
    imbalance = OrderbookImbalance().kraken().bucket("30min").slippage(10)
    with pytest.raises(MissingDataError) as caught:
        imbalance.compute(bars)
    message = str(caught.value)
    assert "kraken_btc_usd.30min.imbalance_s10" in message and "order books" in message
    assert "--slippages 10" in message and "OHLCV bars only" in message and "price('close')" in message
    with pytest.raises(MissingDataError, match=r"bid_d1.*ask_d1|ask_d1.*bid_d1"):
        ArbRevenue("kraken", "bitstamp").bucket("30min").depth(1).compute(bars)
    # returns of the midpoint on bars: every missing series at once, and the feature that reads bars instead
    spread = LogReturns().kraken().bucket("30min") - Spread().kraken().bucket("30min").depth(2)
    with pytest.raises(MissingDataError) as caught:
        spread.compute(bars)
    message = str(caught.value)
    assert message.startswith(f"{spread.name} needs ") and "--depths 0,2" in message
    for metric in ("midpoint", "ask_d2", "bid_d2"):
        assert f"kraken_btc_usd.30min.{metric}" in message
    assert "LogReturns().price('close')" in message


def test_a_depth_the_pipeline_did_not_compute_is_named(minutes):
    with pytest.raises(MissingDataError, match=r"bitstamp_btc_usd\.1min\.midpoint_d5.*--depths 0,5"):
        LogReturns().bitstamp().depth(5).compute(minutes)
    with pytest.raises(MissingDataError, match=r"kraken_btc_usd\.1min\.volume.*import trades"):
        Volume().kraken().compute(minutes)


def test_bars_give_prices_and_returns_with_gaps_as_nan(bars):
    returns = LogReturns().kraken().bucket("30min").price("close").compute(bars)
    gap = bars[KR + "close"].isna().to_numpy().nonzero()[0]
    assert len(gap) == 1 and np.isnan(returns.iloc[gap[0]]) and np.isnan(returns.iloc[gap[0] + 1])
    assert returns.notna().sum() == len(returns) - 3  # the first bucket and the two around the gap


# parameter errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "match"), [
    (lambda: LogReturns().slippage(10),
     r"LogReturns takes exchange, bucket, price, depth, lookback, lookforward; not slippage"),
    (lambda: LogReturns().lookback(0), r"LogReturns\.lookback must be a whole number.*lookback=0"),
    (lambda: LogReturns().lookback(-2), "lookback=-2"),
    (lambda: LogReturns().lookback(1.5), "lookback=1.5"),
    (lambda: LogReturns().lookforward(True), "lookforward=True"),
    (lambda: Midpoint().depth(-1), r"Midpoint\.depth must be a finite number, 0 or more"),
    (lambda: Midpoint().depth(float("nan")), "depth=nan"),
    (lambda: LogReturns().lookback(2).lookforward(1), "lookback or lookforward, not both"),
    (lambda: Volume().window(3).lookforward(2), "window or lookforward, not both"),
    (lambda: Volatility().window(1), "at least 2 returns"),
    (lambda: LogReturns().price("close").depth(1), "depth only for price='midpoint'"),
    (lambda: LogReturns().price("last"), r"price must be one of 'midpoint', 'close', 'vwap'"),
    (lambda: Midpoint().lookback(3), r"not lookback \(for the value n buckets back write \.lag\(n\)\)"),
    (lambda: InterExchangeSpread().bitstamp(), r"\.exchanges\('bitstamp', 'itbit'\)"),
    (lambda: InterExchangeSpread("bitstamp"), "two exchanges"),
    (lambda: ArbRevenue("bitstamp", "itbit", "gemini"), "two exchanges"),
    (lambda: FairValue("bitstamp", "bitstamp"), "different exchanges"),
    (lambda: FairValue("bitstamp", "itbit").weights("equal").window(3), "window only for weights='volume'"),
    (lambda: FairValue("bitstamp", "itbit").weights([1, 2, 3]), "one weight per exchange"),
    (lambda: FairValue("bitstamp", "itbit").weights([1, -2]), "positive numbers"),
    (lambda: TimeOfDay().cyclic("tan"), "'sin', 'cos'"),
    (lambda: TimeOfDay().bitstamp(), "reads no exchange"),
    (lambda: Volume().bitstamp().rolling_std(1), r"rolling_std\(n\).*2 or more"),
    (lambda: Volume().bitstamp().lag(0), r"lag\(n\).*n=0"),
    (lambda: (Volume().bitstamp() + 1).depth(1), "combines other features"),
    (lambda: Volume().bitstamp() + float("inf"), "finite numbers"),
    (lambda: LogReturns().series(), r"LogReturns has no exchange: call \.bitstamp\(\)"),
    (lambda: FairValue().compute({}), "has no exchanges"),
])
def test_parameter_errors_name_the_class_the_parameter_and_the_fix(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_arithmetic_with_something_else_is_a_type_error():
    with pytest.raises(TypeError):
        Volume().bitstamp() + "1"
    with pytest.raises(TypeError):
        Volume().bitstamp() * True


def test_series_off_the_grid_are_refused(minutes):
    holed = {BS + "midpoint": minutes[M].drop(minutes[M].index[5])}
    with pytest.raises(ConfigError, match="complete grid of 1min buckets"):
        Midpoint().bitstamp().compute(holed)
    with pytest.raises(ConfigError, match="reads no series"):
        TimeOfDay().compute({})


# pipe ------------------------------------------------------------------------------------------------------


def test_pipe_takes_only_functions_it_can_import_again():
    def local(series):
        return series

    for function in (lambda s: s, local):
        with pytest.raises(ConfigError, match="name and import again"):
            Volume().bitstamp().pipe(function)
    with pytest.raises(ConfigError, match="cannot be imported"):
        Volume().bitstamp().pipe("numpy:no_such_function")
    piped = Volume().bitstamp().pipe(double)
    assert piped.to_dict()["function"] == f"{double.__module__}:double"
    assert piped.pipe(peek_ahead, lookforward=1).is_label


def test_pipe_must_return_a_series_on_the_same_index():
    with pytest.raises(ConfigError, match="must return a Series on the index"):
        Midpoint().bitstamp().pipe("numpy:asarray").compute(KNOWN)
