"""The metric pipeline against values computed by hand, and its incremental behaviour, on both store backends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas.data import BookBatch, MarketStore
from atlas.data.metrics import MetricPipeline, book_metrics, tick_rule
from atlas.exceptions import ConfigError, MissingDataError

T0 = pd.Timestamp("2024-03-01 00:00:00", tz="UTC")
BIDS = [(100.0, 1.0), (99.0, 3.0), (97.0, 2.0)]
ASKS = [(101.0, 2.0), (103.0, 2.0), (104.0, 5.0)]


def one_book(bids=BIDS, asks=ASKS) -> BookBatch:
    return BookBatch.from_levels(pd.DatetimeIndex([T0]), [bids], [asks])


def test_depth_prices_by_hand():
    m = book_metrics(one_book(), depths=(0, 2, 5, 10))
    assert (m["bid"][0], m["ask"][0], m["midpoint"][0], m["spread"][0]) == (100.0, 101.0, 100.5, 1.0)
    # sell 2 into the bids: 1 @ 100 + 1 @ 99; buy 2 from the asks: 2 @ 101
    assert m["bid_d2"][0] == pytest.approx(99.5)
    assert m["ask_d2"][0] == pytest.approx(101.0)
    assert m["midpoint_d2"][0] == pytest.approx(100.25)
    # 5 units: 1 @ 100 + 3 @ 99 + 1 @ 97 = 494; 2 @ 101 + 2 @ 103 + 1 @ 104 = 512
    assert m["bid_d5"][0] == pytest.approx(98.8)
    assert m["ask_d5"][0] == pytest.approx(102.4)
    # the bids hold only 6 units: a 10-unit order cannot be filled
    assert np.isnan(m["bid_d10"][0]) and np.isnan(m["midpoint_d10"][0])


def test_strength_and_imbalance_by_hand():
    m = book_metrics(one_book(), slippages=(0, 1, 3))
    assert (m["bid_strength_s0"][0], m["ask_strength_s0"][0]) == (1.0, 2.0)
    assert m["imbalance_s0"][0] == pytest.approx(-1 / 3)
    # within 1 USD: bids at 100 and 99 (1 + 3), asks at 101 only (2)
    assert (m["bid_strength_s1"][0], m["ask_strength_s1"][0]) == (4.0, 2.0)
    assert (m["bid_strength_value_s1"][0], m["ask_strength_value_s1"][0]) == (397.0, 202.0)
    assert m["imbalance_s1"][0] == pytest.approx(1 / 3)
    # within 3 USD: every bid level (100, 99, 97) and every ask level (101, 103, 104)
    assert (m["bid_strength_s3"][0], m["ask_strength_s3"][0]) == (6.0, 9.0)
    assert m["bid_strength_value_s3"][0] == pytest.approx(100 + 297 + 194)
    assert m["ask_strength_value_s3"][0] == pytest.approx(202 + 206 + 520)


def test_unsorted_levels_are_sorted_before_depth_is_computed():
    shuffled = book_metrics(one_book(bids=BIDS[::-1], asks=[ASKS[2], ASKS[0], ASKS[1]]), depths=(5,))
    assert shuffled["bid_d5"][0] == pytest.approx(98.8)
    assert shuffled["ask_d5"][0] == pytest.approx(102.4)


def test_metrics_vectorize_over_ragged_snapshots():
    times = pd.DatetimeIndex([T0, T0 + pd.Timedelta("1s"), T0 + pd.Timedelta("2s")])
    books = BookBatch.from_levels(times, [BIDS, [(50.0, 1.0)], BIDS[:1]], [ASKS, [(60.0, 4.0)], ASKS])
    m = book_metrics(books, depths=(0, 2), slippages=(1,))
    assert m["midpoint"].tolist() == [100.5, 55.0, 100.5]
    assert m["bid_d2"][0] == pytest.approx(99.5)
    assert np.isnan(m["bid_d2"][1]) and np.isnan(m["bid_d2"][2])
    assert m["ask_d2"].tolist() == [101.0, 60.0, 101.0]
    assert m["imbalance_s1"].tolist() == pytest.approx([1 / 3, -0.6, -1 / 3])


def test_tick_rule_classifies_by_last_price_change():
    assert tick_rule(np.array([5.0, 5.0, 6.0, 6.0, 5.5, 5.5, 7.0])).tolist() == [0, 0, 1, 1, -1, -1, 1]


def _book(mid: float, half: float = 0.5) -> tuple[list, list]:
    return [(mid - half, 1.0), (mid - half - 1, 2.0)], [(mid + half, 1.5), (mid + half + 1, 2.5)]


def fill(store: MarketStore, seconds: list[float], mids: list[float], *, exchange="bitstamp") -> None:
    times = pd.DatetimeIndex([T0 + pd.Timedelta(seconds=s) for s in seconds])
    sides = [_book(m) for m in mids]
    store.write_orderbooks(exchange, BookBatch.from_levels(times, [b for b, _ in sides], [a for _, a in sides]))


def test_sampling_takes_the_last_snapshot_at_or_before_the_bucket_end(store):
    # buckets (T0, T0+1m], (T0+1m, T0+2m], ...; a snapshot exactly at a bucket end belongs to that bucket
    fill(store, [0, 30, 60, 61, 119, 130, 600], [100, 101, 102, 103, 104, 105, 106])
    [report] = MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    mid = store.read_series("bitstamp_btc_usd.1min.midpoint")
    expected = {T0: 100, T0 + pd.Timedelta("1min"): 102, T0 + pd.Timedelta("2min"): 104,
                T0 + pd.Timedelta("3min"): 105, T0 + pd.Timedelta("4min"): 105, T0 + pd.Timedelta("5min"): 105,
                T0 + pd.Timedelta("6min"): 105, T0 + pd.Timedelta("7min"): 105, T0 + pd.Timedelta("10min"): 106}
    # 130 s is older than 5 minutes (the staleness limit) at the 8- and 9-minute bucket ends: a gap, not a stale value
    assert mid.to_dict() == expected
    assert report.buckets == 11 and report.snapshots_read == 7 and report.snapshots_parsed == 5  # 0, 60, 119, 130, 600 s


def test_crossed_and_malformed_snapshots_are_skipped_and_counted(store):
    fill(store, [10, 50, 70], [100, 101, 102])  # 70 s: the bucket ending at 60 s is complete
    crossed = BookBatch.from_levels(pd.DatetimeIndex([T0 + pd.Timedelta("55s")]), [[(200.0, 1.0)]], [[(150.0, 1.0)]])
    store.write_orderbooks("bitstamp", crossed, on_invalid="skip")  # the store refuses to keep it
    assert len(store.read_orderbooks("bitstamp")) == 3
    # a real GDS database may hold such rows anyway: write them behind the store's back
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO orderbook (unique_id, exchange, timestamp, time_created, bids, asks) VALUES "
            "('x1', 'BITSTAMP_BTC_USD', '2024-03-01 00:00:55.000000', '2024-03-01 00:00:55.000000',"
            " '[[\"200\", 1, \"\"]]', '[[\"150\", 1, \"\"]]'),"
            "('x2', 'BITSTAMP_BTC_USD', '2024-03-01 00:00:58.000000', '2024-03-01 00:00:58.000000',"
            " '[[\"200\", 1, ', '[]')")
    [report] = MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    assert store.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [101.0]
    assert report.skipped == {"orderbook.crossed_book": 1, "orderbook.malformed_json": 1}


def test_trade_metrics_per_bucket(store):
    fill(store, [0, 59, 120], [100, 100, 100])
    trades = pd.DataFrame({
        "timestamp": [T0 + pd.Timedelta(seconds=s) for s in (0, 20, 40, 60, 70, 100)],
        "price": [100.0, 101.0, 100.0, 100.0, 102.0, 102.0],
        "volume": [1.0, 2.0, 3.0, 0.5, 1.0, 0.5],
        "exchange_trade_id": ["1", "2", "3", "4", "5", "6"],
    })
    store.write_trades("bitstamp", trades)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()

    def read(metric):
        return store.read_series(f"bitstamp_btc_usd.1min.{metric}").tolist()

    # bucket T0 holds the trade at 0 s; T0+1m holds 20, 40 and 60 s; T0+2m holds 70 and 100 s
    assert read("volume") == [1.0, 5.5, 1.5]
    assert read("trade_count") == [1.0, 3.0, 2.0]
    assert read("vwap") == pytest.approx([100.0, (202 + 300 + 50) / 5.5, 102.0])
    # tick rule: 100 (unknown), 101 buy, 100 sell, 100 sell, 102 buy, 102 buy
    assert read("buy_volume") == [0.0, 2.0, 1.5]
    assert read("sell_volume") == [0.0, 3.5, 0.0]


def test_exchange_volume_is_sampled(store):
    fill(store, [0, 60, 120], [100, 100, 100])
    store.write_exchange_volume("bitstamp", pd.Series([10.0, 12.0], index=[T0 - pd.Timedelta("1s"),
                                                                           T0 + pd.Timedelta("61s")]))
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    assert store.read_series("bitstamp_btc_usd.1min.exchange_volume").tolist() == [10.0, 10.0, 12.0]


def test_a_second_run_computes_only_new_buckets(store):
    fill(store, [0, 60, 120], [100, 101, 102])
    pipeline = MetricPipeline(store, bucket="1min", depths=(0,), slippages=())
    assert pipeline.run()[0].buckets == 3
    assert pipeline.run()[0].buckets == 0
    fill(store, [150, 180, 240], [103, 104, 105])
    report = pipeline.run()[0]
    assert (report.buckets, report.first) == (2, T0 + pd.Timedelta("3min"))
    assert store.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [100, 101, 102, 104, 105]


def test_late_data_makes_its_buckets_be_computed_again(store):
    fill(store, [0, 60, 120, 180], [100, 101, 102, 103])
    pipeline = MetricPipeline(store, bucket="1min", depths=(0,), slippages=())
    pipeline.run()
    fill(store, [90], [150])  # arrives late, inside the already computed bucket T0+2m
    report = pipeline.run()[0]
    assert report.first == T0 + pd.Timedelta("2min")
    assert store.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [100, 101, 102, 103]
    fill(store, [110], [160])
    pipeline.run()
    assert store.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [100, 101, 102, 103]
    fill(store, [119.5], [170])
    pipeline.run()
    # 120 s is still the last snapshot at or before T0+2m; the snapshot at 119.5 s changes nothing there
    assert store.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [100, 101, 102, 103]


def test_incremental_runs_equal_one_run(tmp_path):
    rng = np.random.default_rng(3)
    seconds = np.sort(rng.uniform(0, 3600, 400)).round(3).tolist()
    mids = (100 + rng.normal(0, 1, 400).cumsum()).tolist()
    once = MarketStore(f"sqlite:///{tmp_path / 'once.db'}")
    fill(once, seconds, mids)
    MetricPipeline(once, bucket="1min").run()
    steps = MarketStore(f"sqlite:///{tmp_path / 'steps.db'}")
    for part in np.array_split(np.arange(400), 7):
        fill(steps, [seconds[i] for i in part], [mids[i] for i in part])
        MetricPipeline(steps, bucket="1min", chunk="7min").run()
    a, b = once.series_summary(), steps.series_summary()
    pd.testing.assert_frame_equal(a, b)
    for name in a["series"]:
        pd.testing.assert_series_equal(once.read_series(name), steps.read_series(name))


def test_bucket_widths_other_than_a_minute(store):
    fill(store, [0, 299, 300, 301, 3600], [100, 101, 102, 103, 104])
    MetricPipeline(store, bucket="5min", depths=(0,), slippages=()).run()
    five = store.read_series("bitstamp_btc_usd.5min.midpoint")
    assert five.iloc[:3].tolist() == [100, 102, 103] and five.index[1] == T0 + pd.Timedelta("5min")
    MetricPipeline(store, bucket="1h", depths=(0,), slippages=()).run()
    assert store.read_series("bitstamp_btc_usd.1h.midpoint").to_dict() == {T0: 100, T0 + pd.Timedelta("1h"): 104}


def test_recompute_a_range_overwrites_it(store):
    fill(store, [0, 60, 120], [100, 101, 102])
    pipeline = MetricPipeline(store, bucket="1min", depths=(0,), slippages=())
    pipeline.run()
    with store.atomic() as conn:  # damage a stored value
        conn.exec_driver_sql("UPDATE atlas_metric SET value = -1")
    report = pipeline.run(start=T0 + pd.Timedelta("1min"))[0]
    assert report.buckets == 2
    assert store.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [-1, 101, 102]


def test_pipeline_errors_say_what_to_do(store):
    with pytest.raises(ConfigError, match="has no fixed length"):
        MetricPipeline(store, bucket="1ME")
    with pytest.raises(ConfigError, match="not a pandas offset"):
        MetricPipeline(store, bucket="one minute")
    with pytest.raises(ConfigError, match="depths must be numbers >= 0"):
        MetricPipeline(store, depths=(-1,))
    fill(store, [0], [100])
    with pytest.raises(MissingDataError, match="no market data for ITBIT_BTC_USD; exchanges with data: BITSTAMP"):
        MetricPipeline(store).run(["itbit"])


@pytest.mark.parametrize("signal", [0.3, 0.0])
def test_the_pipeline_recovers_the_planted_signal_from_the_store(tmp_path, signal):
    from atlas.data import MarketSimulator, SimulatorConfig

    store = MarketStore(f"sqlite:///{tmp_path / 'market.db'}")
    simulator = MarketSimulator(SimulatorConfig(days=3, exchanges="bitstamp,itbit", seed=11, signal=signal,
                                                snapshot_interval="20s", levels=10))
    simulator.simulate_into(store)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    leader = np.log(store.read_series("bitstamp_btc_usd.1min.midpoint")).diff()
    follower = np.log(store.read_series("itbit_btc_usd.1min.midpoint")).diff()
    # the store's midpoints are the simulator's: the series is the truth the simulator states
    truth = simulator.truth()
    np.testing.assert_allclose(store.read_series("itbit_btc_usd.1min.midpoint").to_numpy(),
                               truth["mid_itbit_btc_usd"].loc[follower.index].to_numpy(), rtol=1e-12)
    correlation = leader.corr(follower.shift(-1))
    if signal:
        assert correlation == pytest.approx(signal, abs=0.05)
    else:
        assert abs(correlation) < 0.05


def test_metrics_never_overwrite_imported_bars(store):
    fill(store, [0, 60, 120], [100, 101, 102])
    index = pd.date_range(T0, periods=2, freq="30min")
    store.write_series({"bitstamp_btc_usd.30min.close": pd.Series([1.0, 2.0], index=index),
                        "bitstamp_btc_usd.30min.volume": pd.Series([5.0, 6.0], index=index)})
    with pytest.raises(ConfigError, match="bars imported at 30min: the metric pipeline's volume"):
        MetricPipeline(store, bucket="30min").run()
    assert store.read_series("bitstamp_btc_usd.30min.volume").tolist() == [5.0, 6.0]
    assert MetricPipeline(store, bucket="1min").run()[0].buckets == 3
