"""The pure bucketing rules: on data in memory they give exactly what the store pipeline writes, whole or one
bucket at a time, as a live runner calls them."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from atlas.data import MarketStore
from atlas.data.metrics import (
    TICK_CONTEXT,
    TRADE_METRICS,
    BookSnapshots,
    MetricPipeline,
    bucket_metrics,
    sample_positions,
)

T0 = pd.Timestamp("2024-02-01 12:00:00", tz="UTC")
WIDTH = pd.Timedelta("1min")
STALENESS = pd.Timedelta("5min")
DEPTHS, SLIPPAGES = (0.0, 1.0), (0.0, 1.0)
BAD_BOOKS = {
    "crossed": ('[["200.5", 1, ""]]', '[["150.25", 1, ""]]'),
    "malformed": ('[["200", 1, ', "[]"),
    "empty": ('[["100", 1, ""]]', "[]"),
    "zero_volume": ('[["100", 0, ""]]', '[["101", 1, ""]]'),
}


def _levels(rng, best: float, sign: int) -> str:
    prices = np.round(best + sign * np.cumsum(rng.uniform(0.01, 1.0, 3)) - sign * 0.01, 2)
    volumes = np.round(rng.uniform(0.1, 2.0, 3), 4)
    return "[" + ", ".join(f'["{p:.2f}", {v}, ""]' for p, v in zip(prices, volumes)) + "]"


def _market(seed: int = 7):
    """Ninety minutes of one exchange, as a GDS database holds it: books every few seconds but for a quiet spell
    longer than the staleness limit, trades without and with prices, exchange volume; bad rows of every kind."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, 90 * 60, 900)).round(6)
    seconds = seconds[(seconds < 30 * 60) | (seconds > 42 * 60)]  # 12 quiet minutes: stale, then no book
    mids = 100 + np.cumsum(rng.normal(0, 0.2, len(seconds)))
    books = [[T0 + pd.Timedelta(seconds=s), _levels(rng, m - 0.05, -1), _levels(rng, m + 0.05, 1)]
             for s, m in zip(seconds, mids)]
    times = np.array([book[0].value for book in books])
    last = np.searchsorted(times, pd.date_range(T0, periods=91, freq=WIDTH).as_unit("ns").asi8, side="right") - 1
    kinds = list(BAD_BOOKS)
    for k, i in enumerate(np.unique(last[last >= 1])[::3]):  # the book a bucket samples is bad, or two in a row
        books[i][1:] = BAD_BOOKS[kinds[k % len(kinds)]]
        if k % 5 == 0:
            books[i - 1][1:] = BAD_BOOKS[kinds[(k + 1) % len(kinds)]]
    end = T0 + pd.Timedelta("44min")  # alone in the quiet spell: a bad book with nothing valid before it in reach
    books.append([end, *BAD_BOOKS["crossed"]])
    books.sort(key=lambda book: book[0])
    trade_seconds = np.sort(rng.uniform(0, 90 * 60, 700)).round(6)
    trade_seconds = trade_seconds[(trade_seconds < 33 * 60) | (trade_seconds > 38 * 60)]  # trades only, then none
    trades = pd.DataFrame({
        "timestamp": pd.DatetimeIndex([T0 + pd.Timedelta(seconds=s) for s in trade_seconds]).as_unit("ns"),
        "price": np.round(100 + np.cumsum(rng.normal(0, 0.1, len(trade_seconds))), 2),
        "volume": np.round(rng.uniform(0.01, 3.0, len(trade_seconds)), 4),
    })
    bad = rng.choice(len(trades), 30, replace=False)
    trades.loc[bad[:10], "price"] = np.nan        # NULL or text in the database
    trades.loc[bad[10:20], "price"] = -3.0
    trades.loc[bad[20:], "volume"] = np.nan
    volume_times = pd.DatetimeIndex([T0 + pd.Timedelta(seconds=s) for s in range(5, 90 * 60, 130)]).as_unit("ns")
    volume = pd.Series(np.round(rng.uniform(1000, 2000, len(volume_times)), 2), index=volume_times)
    volume.iloc[::7] = -1.0
    volume.iloc[3::11] = np.nan
    return books, trades, volume


def _sql(value: float) -> str:
    return "NULL" if np.isnan(value) else repr(float(value))


def _stamp(time: pd.Timestamp) -> str:
    return time.tz_convert(None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _gds(path, books, trades, volume) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE orderbook (orderbook_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, "
            "timestamp DATETIME, time_created DATETIME, bids TEXT, asks TEXT);"
            "CREATE TABLE trade (trade_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, timestamp DATETIME, "
            "time_created DATETIME, exchange_trade_id TEXT, source TEXT, price NUMERIC, price_currency TEXT, "
            "volume NUMERIC, volume_currency TEXT);"
            "CREATE TABLE exchange_volume (exchange_volume_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, "
            "timestamp DATETIME, time_created DATETIME, exchange_volume NUMERIC);")
        conn.executemany("INSERT INTO orderbook VALUES (?, ?, 'BITSTAMP_BTC_USD', ?, ?, ?, ?)",
                         [(i, f"b{i}", _stamp(t), _stamp(t), bids, asks) for i, (t, bids, asks) in enumerate(books)])
        conn.executescript("".join(
            f"INSERT INTO trade VALUES ({i}, 't{i}', 'BITSTAMP_BTC_USD', '{_stamp(t)}', '{_stamp(t)}', 'x{i}', 'gds', "
            f"{_sql(p)}, 'USD', {_sql(v)}, 'BTC');"
            for i, (t, p, v) in enumerate(zip(trades["timestamp"], trades["price"], trades["volume"]))))
        conn.executemany("INSERT INTO exchange_volume VALUES (?, ?, 'BITSTAMP_BTC_USD', ?, ?, ?)",
                         [(i, f"v{i}", _stamp(t), _stamp(t), None if np.isnan(v) else float(v))
                          for i, (t, v) in enumerate(volume.items())])
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """The data in memory, and what the store pipeline wrote from it."""
    folder = tmp_path_factory.mktemp("bucketing")
    books, trades, volume = _market()
    with MarketStore(f"sqlite:///{folder / 'atlas.db'}", gds_url=_gds(folder / "gds.db", books, trades,
                                                                         volume)) as store:
        pipeline = MetricPipeline(store, bucket="1min", depths=DEPTHS, slippages=SLIPPAGES)
        [report] = pipeline.run()
        grid = pd.date_range(report.first, report.last, freq=WIDTH).as_unit("ns")
        stored = {metric: store.read_series(f"bitstamp_btc_usd.1min.{metric}").reindex(grid).to_numpy()
                  for metric in pipeline.metric_names()}
    return {"books": books, "trades": trades, "volume": volume, "grid": grid, "stored": stored, "report": report}


_ALL = object()


def _bucket(market, grid, *, books=None, trades=_ALL, volume=_ALL):
    return bucket_metrics(grid, width="1min", staleness=STALENESS, depths=DEPTHS, slippages=SLIPPAGES,
                          books=BookSnapshots.from_records(market["books"] if books is None else books),
                          trades=market["trades"] if trades is _ALL else trades,
                          exchange_volume=market["volume"] if volume is _ALL else volume)


def test_the_pure_function_on_data_in_memory_equals_what_the_pipeline_stored(market):
    values, skipped, parsed = _bucket(market, market["grid"])
    assert list(values) == list(market["stored"])
    for metric, stored in market["stored"].items():
        np.testing.assert_array_equal(values[metric], stored, err_msg=metric)
    report = market["report"]
    assert skipped == report.skipped and parsed == report.snapshots_parsed
    # the data hold every case the rules decide: bad books of each rule, bad trades, bad volume, stale books,
    # buckets with trades but no book, and buckets with neither (trade flows NaN, not zero)
    assert {"orderbook.crossed_book", "orderbook.malformed_json", "orderbook.empty_side",
            "orderbook.non_positive_volume", "trade.non_positive_price", "trade.non_positive_volume",
            "exchange_volume.negative_volume"} <= set(skipped)
    no_book, traded = np.isnan(values["midpoint"]), values["trade_count"] > 0
    assert (no_book & traded).any() and (no_book & ~traded).any()
    assert np.isnan(values["volume"][no_book & ~traded]).all()
    assert (values["volume"][~no_book & ~traded] == 0).all()


def test_one_bucket_at_a_time_as_a_live_runner_equals_one_call_over_the_grid(market):
    whole = _bucket(market, market["grid"])
    trades, volume = market["trades"], market["volume"]
    totals: dict[str, int] = {}
    for i, t in enumerate(market["grid"]):
        # what a runner holds at the close of bucket t: the books within the staleness limit, an hour of trades
        recent = [book for book in market["books"] if t - STALENESS <= book[0] <= t]
        held = trades[(trades["timestamp"] > t - WIDTH - TICK_CONTEXT) & (trades["timestamp"] <= t)]
        one = _bucket(market, pd.DatetimeIndex([t]), books=recent, trades=held.reset_index(drop=True),
                      volume=volume[(volume.index >= t - STALENESS) & (volume.index <= t)])
        for metric, value in one.values.items():
            np.testing.assert_array_equal(value, whole.values[metric][i:i + 1], err_msg=f"{metric} at {t}")
        for rule, count in one.skipped.items():
            totals[rule] = totals.get(rule, 0) + count
    # rows of trades and volume are counted by the bucket that holds them, once
    assert {r: c for r, c in totals.items() if not r.startswith("orderbook.")} == {
        r: c for r, c in whole.skipped.items() if not r.startswith("orderbook.")}


def test_a_feed_without_trades_gives_book_metrics_only(market):
    with_trades = _bucket(market, market["grid"])
    books_only = _bucket(market, market["grid"], trades=None, volume=None)
    assert not set(TRADE_METRICS) & set(books_only.values) and "exchange_volume" not in books_only.values
    assert list(books_only.values) == [m for m in with_trades.values if m not in (*TRADE_METRICS, "exchange_volume")]
    for metric, values in books_only.values.items():
        np.testing.assert_array_equal(values, with_trades.values[metric], err_msg=metric)


def test_levels_held_in_memory_give_what_their_json_gives():
    times = [T0 + pd.Timedelta(seconds=s) for s in (10, 50, 70, 110)]
    levels = [([(100.0, 1.0), (99.5, 2.0)], [(100.5, 1.5)]), ([(101, 1)], [(101.5, 3), (102, 1)]),
              ([(102.0, 1.0)], [(101.0, 1.0)]), ([(103.0, 1.0)], [(103.5, 0.5)])]
    text = [('[["100.0", 1.0, ""], ["99.5", 2.0, ""]]', '[["100.5", 1.5, ""]]'),
            ('[[101, 1, ""]]', '[[101.5, 3, ""], [102, 1, ""]]'),
            ('[[102.0, 1.0, ""]]', '[[101.0, 1.0, ""]]'), ('[[103.0, 1.0, ""]]', '[[103.5, 0.5, ""]]')]
    grid = pd.date_range(T0 + WIDTH, periods=2, freq=WIDTH)
    a = bucket_metrics(grid, width=WIDTH, books=BookSnapshots.from_records(
        (t, b, s) for t, (b, s) in zip(times, levels)), depths=(0, 2), slippages=(1,))
    b = bucket_metrics(grid, width=WIDTH, books=BookSnapshots.from_records(
        (t, b, s) for t, (b, s) in zip(times[::-1], text[::-1])), depths=(0, 2), slippages=(1,))
    for metric in a.values:
        np.testing.assert_array_equal(a.values[metric], b.values[metric], err_msg=metric)
    # 70 s is crossed: the bucket ending at 2 min takes 110 s; the first takes 50 s
    assert a.values["midpoint"].tolist() == [(101 + 101.5) / 2, (103 + 103.5) / 2]
    assert a.skipped == b.skipped == {} and a.parsed == 2  # the crossed book is never sampled


def test_a_bad_book_is_replaced_by_the_one_before_it_within_the_staleness_limit():
    books = BookSnapshots.from_records([
        (T0 + pd.Timedelta("10s"), '[["100", 1, ""]]', '[["101", 1, ""]]'),
        (T0 + pd.Timedelta("50s"), *BAD_BOOKS["crossed"]),
        (T0 + pd.Timedelta("55s"), *BAD_BOOKS["malformed"]),
        (T0 + pd.Timedelta("7min"), *BAD_BOOKS["empty"]),
    ])
    grid = pd.date_range(T0 + WIDTH, periods=7, freq=WIDTH)
    out = bucket_metrics(grid, width=WIDTH, books=books, depths=(0,))
    # the book at 10 s serves until it is older than 5 minutes; at 7 min the only book in reach is bad
    assert out.values["midpoint"].tolist()[:5] == [100.5] * 5
    assert np.isnan(out.values["midpoint"][5:]).all()
    assert out.skipped == {"orderbook.malformed_json": 1, "orderbook.crossed_book": 1, "orderbook.empty_side": 1}
    assert set(out.values) == {"spread", "bid", "ask", "midpoint"}


def test_sample_positions_takes_the_last_observation_no_older_than_the_limit():
    times = np.array([10, 20, 50], dtype=np.int64)
    assert sample_positions(times, np.array([5, 10, 20, 45, 70, 75, 100]), 25).tolist() == [-1, 0, 1, 1, 2, 2, -1]
    minute = WIDTH.value
    assert sample_positions(np.array([0]), np.array([5 * minute, 5 * minute + 1]), "5min").tolist() == [0, -1]
    empty = bucket_metrics(np.array([], dtype=np.int64), width=WIDTH, books=BookSnapshots.from_records([]),
                           trades=pd.DataFrame({"timestamp": [], "price": [], "volume": []}))
    assert all(len(v) == 0 for v in empty.values.values()) and "volume" in empty.values
