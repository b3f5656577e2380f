"""`atlas data delete` and the store's range deletes: counts first, a confirmation, one transaction, nothing
outside the range touched, and cached feature frames over the range rebuilt."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.data import MarketSimulator, MarketStore, MetricPipeline, SimulatorConfig
from atlas.data.featureset.presets import example_set
from atlas.data.importers import import_bars
from atlas.exceptions import ConfigError

HOURS = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")


def _bars(store: MarketStore, exchange: str = "bitstamp") -> None:
    frame = pd.DataFrame({"timestamp": HOURS, "open": 100.0, "high": 102.0, "low": 99.0,
                          "close": 100.0 + np.arange(48), "volume": 1.0})
    frame["high"] = frame[["open", "close"]].max(axis=1) + 1
    import_bars(store, frame, exchange=exchange, bucket="1h")


def test_a_series_range_is_deleted_after_a_confirmation_and_nothing_else_is_touched(store_url):
    store = MarketStore(store_url)
    _bars(store)
    _bars(store, "kraken")
    args = ["data", "delete", "bitstamp_btc_usd.1h.close", "--start", "2024-01-01 10:00", "--end",
            "2024-01-01 19:00", "--store", store_url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "pass --yes" in result.output
    assert "Would delete 10 values of bitstamp_btc_usd.1h.close from 2024-01-01 10:00:00+00:00" in result.output
    assert len(store.read_series("bitstamp_btc_usd.1h.close")) == 48  # nothing deleted unconfirmed
    result = CliRunner().invoke(main, [*args, "--yes"])
    assert result.exit_code == 0, result.output
    assert "Deleted 10 values of bitstamp_btc_usd.1h.close from 2024-01-01 10:00:00+00:00 to 2024-01-01 " \
           "19:00:00+00:00" in result.output
    close = store.read_series("bitstamp_btc_usd.1h.close")
    expected = pd.Series(100.0 + np.arange(48), index=HOURS + pd.Timedelta("1h"))
    kept = expected[(expected.index < "2024-01-01 10:00") | (expected.index > "2024-01-01 19:00")]
    np.testing.assert_array_equal(close.to_numpy(), kept.to_numpy())
    assert close.index.equals(kept.index.as_unit("ns").rename("bucket"))
    for other in ("bitstamp_btc_usd.1h.open", "kraken_btc_usd.1h.close"):
        assert len(store.read_series(other)) == 48
    # a pattern takes every bar series of the width; a series left empty is forgotten, freeing its width
    result = CliRunner().invoke(main, ["data", "delete", "bitstamp_btc_usd.1h.*", "--yes", "--store", store_url])
    assert result.exit_code == 0 and "38 values of bitstamp_btc_usd.1h.close" in result.output, result.output
    assert set(store.series_registry()["exchange"]) == {"KRAKEN_BTC_USD"}
    assert store.width_owner("bitstamp", "1h") is None


def test_deleting_an_exchange_takes_its_market_rows_and_series_in_the_range(tmp_path):
    store = MarketStore(f"sqlite:///{tmp_path / 'market.db'}")
    MarketSimulator(SimulatorConfig(days=0.1, exchanges="bitstamp,itbit", seed=3, snapshot_interval="60s",
                                    levels=10)).simulate_into(store)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=(0,)).run()
    start, end = pd.Timestamp("2024-01-01 00:30", tz="UTC"), pd.Timestamp("2024-01-01 01:00", tz="UTC")
    trades, books = store.read_trades("itbit"), store.read_orderbook_times("itbit")[1]
    in_range = ((trades["timestamp"] >= start) & (trades["timestamp"] <= end)).sum()
    plan = store.plan_delete("itbit", start, end)
    assert plan.rows["trade"] == in_range and plan.rows["orderbook"] == ((books >= start) & (books <= end)).sum()
    assert plan.values["itbit_btc_usd.1min.midpoint"] == 31
    done = store.delete("itbit", start, end)
    assert done == plan
    after = store.read_trades("itbit")
    assert len(after) == len(trades) - in_range and not after["timestamp"].between(start, end).any()
    assert not store.read_series("itbit_btc_usd.1min.midpoint").index.to_series().between(start, end).any()
    assert len(store.read_trades("bitstamp")) > 0 and store.read_series("bitstamp_btc_usd.1min.midpoint") \
        .index.to_series().between(start, end).sum() == 31  # the other exchange is untouched
    # the metric pipeline computes the range again: the watermark went back before it
    assert store.watermark("itbit", "1min") < start


def test_deleted_data_is_never_served_from_the_feature_cache(tmp_path):
    url, cache = f"sqlite:///{tmp_path / 'market.db'}", tmp_path / "cache"
    store = MarketStore(url, cache_folder=cache)
    MarketSimulator(SimulatorConfig(days=0.2, exchanges="bitstamp,itbit", seed=1, signal=0.3,
                                    snapshot_interval="60s", levels=10)).simulate_into(store)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=(0, 10)).run()
    fls = example_set()
    first = fls.build("2024-01-01 01:00", "2024-01-01 03:00", store=store)
    before = store.fingerprint()
    store.delete("bitstamp_btc_usd.1min.*", "2024-01-01 02:00", "2024-01-01 02:10")
    assert store.fingerprint() != before
    cached = fls.build("2024-01-01 01:00", "2024-01-01 03:00", store=store)
    uncached = fls.build("2024-01-01 01:00", "2024-01-01 03:00", store=store, cache=False)
    pd.testing.assert_frame_equal(cached, uncached)
    assert len(cached) < len(first)


def test_delete_errors_name_the_target_and_the_range(sqlite_url):
    store = MarketStore(sqlite_url)
    _bars(store)
    with pytest.raises(ConfigError, match="the range is inverted: --start .* is after --end"):
        store.plan_delete("bitstamp", pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-01-01", tz="UTC"))
    with pytest.raises(ConfigError, match="no series 'bitstamp_btc_usd.1h.clsoe'.*did you mean "
                                          "bitstamp_btc_usd.1h.close"):
        store.plan_delete("bitstamp_btc_usd.1h.clsoe")
    with pytest.raises(ConfigError, match="no stored series matches 'kraken_btc_usd.*'"):
        store.plan_delete("kraken_btc_usd.*")
    with pytest.raises(ConfigError, match="neither a stored series nor an exchange with data"):
        store.plan_delete("nasdaq")
    result = CliRunner().invoke(main, ["data", "delete", "bitstamp_btc_usd.1h.close", "--start", "2030-01-01",
                                       "--yes", "--store", sqlite_url])
    assert result.exit_code == 0 and "Nothing to delete" in result.output
    assert len(store.read_series("bitstamp_btc_usd.1h.close")) == 48
