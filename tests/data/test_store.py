"""The market store's contract, run over every backend (SQLite and a real PostgreSQL server)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect

from atlas.data import BookBatch, MarketStore
from atlas.data.store import _schema
from atlas.exceptions import DataValidationError, StoreError, UnknownExchangeError

T0 = pd.Timestamp("2024-02-01 12:00:00", tz="UTC")


def books(n: int, *, start=T0, step="10s", mid=100.0) -> BookBatch:
    times = pd.date_range(start, periods=n, freq=step).as_unit("ns")
    return BookBatch.from_levels(
        times,
        [[(mid + i - 0.5, 1.0 + i), (mid + i - 1.5, 2.0)] for i in range(n)],
        [[(mid + i + 0.5, 1.5), (mid + i + 1.75, 0.25 * (i + 1))] for i in range(n)],
    )


def trades(n: int, *, start=T0, first_id=0) -> pd.DataFrame:
    return pd.DataFrame({
        "timestamp": pd.date_range(start, periods=n, freq="7s").as_unit("ns"),
        "price": 100.0 + np.arange(n),
        "volume": 0.5 + np.arange(n) / 10,
        "exchange_trade_id": [f"t{first_id + i}" for i in range(n)],
    })


def test_tables_and_columns_are_those_of_gds(store):
    inspector = inspect(store.engine)
    columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in ("orderbook", "trade", "exchange_volume")}
    assert columns["orderbook"] == ["orderbook_id", "unique_id", "exchange", "timestamp", "time_created", "bids",
                                    "asks"]
    assert columns["trade"] == ["trade_id", "unique_id", "exchange", "timestamp", "time_created",
                                "exchange_trade_id", "source", "price", "price_currency", "volume", "volume_currency"]
    assert columns["exchange_volume"] == ["exchange_volume_id", "unique_id", "exchange", "timestamp", "time_created",
                                          "exchange_volume"]
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("orderbook")}
    assert ("timestamp", "exchange") in indexed
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("trade")}
    indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("trade") if ix.get("unique")}
    assert ("exchange", "exchange_trade_id") in uniques | indexes


def test_order_books_round_trip(store):
    written = books(5)
    assert store.write_orderbooks("bitstamp", written).written == 5
    read = store.read_orderbooks("BITSTAMP_BTC_USD")
    pd.testing.assert_index_equal(read.times, written.times, check_freq=False)
    for side in ("bids", "asks"):
        np.testing.assert_array_equal(getattr(read, side).price, getattr(written, side).price)
        np.testing.assert_array_equal(getattr(read, side).volume, getattr(written, side).volume)
        np.testing.assert_array_equal(getattr(read, side).offsets, getattr(written, side).offsets)
    # stored as GDS does it: JSON lists of [price, volume, order_id] per side, the exchange as BITSTAMP_BTC_USD
    times, bids, asks = store.read_orderbook_text("bitstamp")
    assert bids[0] == '[[99.5,1.0,""],[98.5,2.0,""]]' and asks[0] == '[[100.5,1.5,""],[101.75,0.25,""]]'


def test_reads_select_a_half_open_time_range(store):
    store.write_orderbooks("bitstamp", books(6))
    read = store.read_orderbooks("bitstamp", T0 + pd.Timedelta("10s"), T0 + pd.Timedelta("40s"))
    assert list(read.times) == [T0 + pd.Timedelta(s, "s") for s in (20, 30, 40)]


def test_exchanges_are_kept_apart(store):
    store.write_orderbooks("bitstamp", books(3))
    store.write_orderbooks("itbit", books(2, mid=200.0))
    assert store.exchanges() == ["BITSTAMP_BTC_USD", "ITBIT_BTC_USD"]
    assert store.read_orderbooks("itbit").best_bid.tolist() == [199.5, 200.5]


def test_trades_round_trip_and_duplicates(store):
    assert store.write_trades("bitstamp", trades(4)).written == 4
    read = store.read_trades("bitstamp")
    pd.testing.assert_frame_equal(read, trades(4))
    with pytest.raises(DataValidationError, match=r"trade row 0 \(exchange_trade_id 't2'\) is already in the store"):
        store.write_trades("bitstamp", trades(3, first_id=2, start=T0 + pd.Timedelta("1h")))
    assert len(store.read_trades("bitstamp")) == 4  # nothing of the failed write landed
    report = store.write_trades("bitstamp", trades(3, first_id=2, start=T0 + pd.Timedelta("1h")),
                                on_duplicate="skip")
    assert (report.written, report.skipped) == (1, {"already_stored": 2})
    # the same trade id on another exchange is another trade
    assert store.write_trades("itbit", trades(2)).written == 2


@pytest.mark.parametrize(("column", "value", "rule"), [
    ("volume", 0.0, "non_positive_volume"),
    ("volume", -1.0, "non_positive_volume"),
    ("price", np.nan, "non_positive_price"),
    ("exchange_trade_id", "t1", "duplicate_trade"),
    # what GDS's Numeric(20,10) and Unicode(64) cannot hold: the same answer from SQLite and PostgreSQL
    ("price", np.inf, "out_of_range"),
    ("volume", np.inf, "out_of_range"),
    ("price", 2.5e10, "out_of_range"),
    ("volume", 1e-12, "out_of_range"),
    ("exchange_trade_id", "x" * 65, "trade_id_too_long"),
])
def test_bad_trades_are_refused_naming_row_and_rule(store, column, value, rule):
    frame = trades(5)
    frame.loc[3, column] = value
    with pytest.raises(DataValidationError, match=f"trade row 3 .*rule {rule}") as error:
        store.write_trades("bitstamp", frame)
    assert (error.value.rule, error.value.row) == (rule, 3)
    assert store.read_trades("bitstamp").empty
    report = store.write_trades("bitstamp", frame, on_invalid="skip")
    assert (report.written, report.skipped) == (4, {rule: 1})
    assert len(store.read_trades("bitstamp")) == 4


def test_out_of_order_and_naive_timestamps_are_refused(store):
    frame = trades(4)
    frame.loc[2, "timestamp"] = T0 - pd.Timedelta("1h")
    with pytest.raises(DataValidationError, match="trade row 2 .* is earlier than the row before it"):
        store.write_trades("bitstamp", frame)
    naive = trades(2).assign(timestamp=lambda f: f["timestamp"].dt.tz_localize(None))
    with pytest.raises(DataValidationError, match="naive") as error:
        store.write_trades("bitstamp", naive)
    assert error.value.rule == "naive_timestamp"
    shuffled = books(3)
    shuffled = shuffled.take(np.array([0, 2, 1]))
    with pytest.raises(DataValidationError, match="order book row 2 .* timestamps must not go back"):
        store.write_orderbooks("bitstamp", shuffled)


def test_crossed_and_non_positive_books_are_refused_or_skipped(store):
    times = pd.date_range(T0, periods=4, freq="1s")
    batch = BookBatch.from_levels(times, [[(100, 1)], [(102, 1)], [(100, 0)], [(100, 1)]],
                                  [[(101, 1)], [(101, 1)], [(101, 1)], [(101, -2)]])
    with pytest.raises(DataValidationError, match=r"order book row 1 at .* is crossed.*rule crossed_book"):
        store.write_orderbooks("bitstamp", batch)
    assert len(store.read_orderbooks("bitstamp")) == 0
    report = store.write_orderbooks("bitstamp", batch, on_invalid="skip")
    assert report.written == 1
    assert report.skipped == {"crossed_book": 1, "non_positive_volume": 2}


def test_malformed_json_names_the_row():
    with pytest.raises(DataValidationError, match=r"order book row 1: bids is not a JSON list") as error:
        BookBatch.from_json(pd.date_range(T0, periods=3, freq="1s"), ['[[1, 2, ""]]', '[[1, 2', "[]"],
                            ["[]", "[]", "[]"])
    assert (error.value.rule, error.value.row) == ("malformed_json", 1)
    with pytest.raises(DataValidationError, match="order book row 0"):
        BookBatch.from_json(pd.date_range(T0, periods=1, freq="1s"), ['[["abc", 2, ""]]'], ["[]"])


def test_string_prices_as_bitstamp_writes_them_are_read():
    batch = BookBatch.from_json(pd.date_range(T0, periods=1, freq="1s"), ['[["0.09000011", 3.74072284, ""]]'],
                                ['[["0.09022887", "1704.11453071", ""]]'])
    assert batch.best_bid.tolist() == [0.09000011] and batch.asks.volume.tolist() == [1704.11453071]


def test_the_fast_decoder_agrees_with_the_exact_json_path():
    from atlas.data.orderbooks import _decode_fast, _decode_json

    rng = np.random.default_rng(7)
    bids, asks = [], []
    for i in range(300):
        levels = [(round(float(p), int(rng.integers(0, 9))), float(v)) for p, v in
                  zip(rng.uniform(1, 1e5, rng.integers(0, 6)), rng.uniform(1e-8, 50, 6))]
        text = [f'["{p}", "{v}", ""]' if i % 3 == 0 else f"[{p!r}, {v!r}{', 12345' if i % 2 else ''}]"
                for p, v in levels]
        (bids if i % 2 else asks).append("[" + (", " if i % 5 else ",").join(text) + "]")
    for texts in (bids, asks):
        fast, exact = _decode_fast(texts), _decode_json(texts, "bids")
        for got, expected in zip(fast, exact):
            np.testing.assert_array_equal(got, expected)
    assert len(_decode_fast(bids)[0]) > 300
    for odd in ("[[true, 1]]", "[[null, 1]]", "[[1, [2]]]", '[["1e5x", 1]]', "[[1, 2]", "[[1, 2]]\n"):
        assert _decode_fast([odd]) is None  # left to the exact JSON path, which decides (and names errors)


def test_a_failed_import_leaves_the_store_as_it_was(store):
    store.write_trades("bitstamp", trades(2))
    bad = trades(3, first_id=10, start=T0 + pd.Timedelta("1h"))
    bad.loc[2, "volume"] = -1
    with pytest.raises(DataValidationError):
        with store.atomic():
            store.write_orderbooks("bitstamp", books(4))
            store.write_exchange_volume("bitstamp", pd.Series([1.0], index=[T0]))
            store.write_trades("bitstamp", bad)
    assert len(store.read_orderbooks("bitstamp")) == 0
    assert store.read_exchange_volume("bitstamp").empty
    assert store.read_trades("bitstamp")["exchange_trade_id"].tolist() == ["t0", "t1"]


def test_series_upsert_read_and_summary(store):
    index = pd.date_range(T0, periods=4, freq="1min")
    name = "bitstamp_btc_usd.1min.midpoint"
    assert store.write_series({name: pd.Series([1.0, 2.0, np.nan, 4.0], index=index)}) == 3
    assert store.write_series({name: pd.Series([5.0], index=index[:1])}) == 1
    read = store.read_series(name)
    assert read.to_dict() == {index[0]: 5.0, index[1]: 2.0, index[3]: 4.0}
    assert store.read_series(name, index[1], index[3]).tolist() == [2.0, 4.0]
    summary = store.series_summary().set_index("series").loc[name]
    assert (summary["values"], summary["expected"], summary["missing"]) == (3, 4, 1)
    assert summary["coverage"] == pytest.approx(0.75)
    with pytest.raises(KeyError, match="did you mean bitstamp_btc_usd.1min.midpoint"):
        store.read_series("bitstamp_btc_usd.1min.midpont")


def test_data_version_grows_with_each_write(store):
    assert store.data_version() == 0
    store.write_orderbooks("bitstamp", books(2))
    first = store.data_version()
    store.write_trades("bitstamp", trades(2))
    assert store.data_version() > first > 0


def test_unknown_exchanges_get_did_you_mean(store):
    with pytest.raises(UnknownExchangeError, match="did you mean 'bitstamp'"):
        store.write_orderbooks("bitsamp", books(1))
    with pytest.raises(UnknownExchangeError, match="ATLAS_EXTRA_VENUES=cme"):
        store.write_trades("cme_es_usd", trades(1))


def test_gds_database_is_read_in_place_and_never_written(tmp_path, store_url):
    gds = MarketStore(store_url)  # stands for a GDS database: the same tables
    gds.write_orderbooks("bitstamp", books(3))
    gds.close()
    atlas = MarketStore(f"sqlite:///{tmp_path / 'atlas.db'}", gds_url=store_url)
    assert atlas.read_orderbooks("bitstamp").best_bid.tolist() == [99.5, 100.5, 101.5]
    with pytest.raises(StoreError, match="read in place from the GDS database"):
        atlas.write_orderbooks("bitstamp", books(1))
    atlas.write_series({"bitstamp_btc_usd.1min.midpoint": pd.Series([1.0], index=[T0])})
    assert atlas.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [1.0]
    with create_engine(store_url).connect() as gds_connection:  # the series went to the Atlas store only
        assert gds_connection.exec_driver_sql("SELECT COUNT(*) FROM atlas_metric").scalar() == 0
    # and the Atlas store holds no market tables of its own
    assert set(inspect(atlas.engine).get_table_names()) == set(_schema.atlas_metadata.tables)


def test_a_database_without_gds_tables_is_refused(tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    create_engine(empty).connect().close()
    with pytest.raises(StoreError, match="lacks the tables"):
        MarketStore(f"sqlite:///{tmp_path / 'atlas.db'}", gds_url=empty)


def test_a_stored_trade_id_at_another_time_is_a_duplicate_too(store):
    store.write_trades("bitstamp", trades(2))
    moved = trades(1, start=T0 + pd.Timedelta("1D"))  # id t0 again, a day later
    with pytest.raises(DataValidationError, match=r"row 0 \(exchange_trade_id 't0'\) is already in the store .* "
                                                  "at another time") as error:
        store.write_trades("bitstamp", moved)
    assert error.value.rule == "duplicate_trade"
    assert len(store.read_trades("bitstamp")) == 2


def test_data_version_by_exchange_and_range(store):
    store.write_orderbooks("bitstamp", books(3))                      # 12:00:00 .. 12:00:20
    store.write_trades("itbit", trades(2, start=T0 + pd.Timedelta("1D")))
    one_hour = (T0 - pd.Timedelta("1h"), T0 + pd.Timedelta("1h"))
    before = store.data_version(["bitstamp"], *one_hour)
    assert before > 0
    assert store.data_version(["itbit"], *one_hour) == 0              # itbit wrote outside the range
    store.write_series({"itbit_btc_usd.1min.midpoint": pd.Series([1.0], index=[T0 + pd.Timedelta("2D")])})
    assert store.data_version(["bitstamp"], *one_hour) == before      # not this exchange, not this range
    store.set_watermark("bitstamp", "1min", T0 + pd.Timedelta("1D"))
    store.write_series({"bitstamp_btc_usd.1min.midpoint": pd.Series([1.0], index=[T0])})
    assert store.data_version(["bitstamp"], *one_hour) > before       # series written in range: a new version
    assert store.watermark("bitstamp", "1min") == T0 + pd.Timedelta("1D")  # and the pipeline is not reset
