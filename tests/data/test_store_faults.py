"""Stores that cannot be opened or written: one clear error naming the store and the setting, nothing half-written."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import event

from atlas.cli import main
from atlas.data import MarketStore
from atlas.exceptions import StoreError

T0 = pd.Timestamp("2024-02-01 12:00:00", tz="UTC")


def trades(n: int, first_id: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.date_range(T0, periods=n, freq="1s").as_unit("ns"),
                         "price": 100.0 + np.arange(n) % 7, "volume": 0.5 + np.arange(n) % 3,
                         "exchange_trade_id": [f"t{first_id + i}" for i in range(n)]})


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)


def test_a_file_that_is_not_a_database_is_one_error_naming_the_store_and_setting(tmp_path):
    damaged = tmp_path / "market.db"
    damaged.write_bytes(b"this is not an SQLite database, just text that someone saved here\n" * 100)
    with pytest.raises(StoreError, match=r"market\.db.*ATLAS_STORE_URL or --store.*damaged"):
        MarketStore(f"sqlite:///{damaged}")
    line = one_error_line(run("data", "info", "--store", f"sqlite:///{damaged}"))
    assert str(damaged) in line and "ATLAS_STORE_URL" in line


def test_a_truncated_store_is_one_error_and_is_not_changed_further(tmp_path):
    path = tmp_path / "market.db"
    with MarketStore(f"sqlite:///{path}") as store:
        for i in range(20):
            store.write_trades("bitstamp", trades(500, first_id=500 * i))
        store.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    before = digest(path)
    result = CliRunner().invoke(main, ["data", "metrics", "--store", f"sqlite:///{path}"])
    line = one_error_line(result)
    assert "market.db" in line and ("damaged" in line or "malformed" in line)
    assert digest(path) == before


def test_an_unreachable_postgresql_is_one_line_naming_the_setting_without_the_password(tmp_path):
    url = "postgresql+psycopg://atlas:Pl4nted-Secret@127.0.0.1:1/market"
    with pytest.raises(StoreError) as error:
        MarketStore(url)
    assert "ATLAS_STORE_URL or --store" in str(error.value) and "Pl4nted-Secret" not in str(error.value)
    result = run("data", "info", env={"ATLAS_STORE_URL": url, "ATLAS_HOME": str(tmp_path)})
    line = one_error_line(result)
    assert "127.0.0.1:1" in line and "Pl4nted-Secret" not in result.output


def test_a_database_driver_that_is_not_installed_says_what_to_install(tmp_path):
    line = one_error_line(run("data", "info", "--store", "mysql+pymysql://atlas@127.0.0.1/market"))
    assert "driver is not installed" in line and "pymysql" in line.lower()


def test_a_home_that_cannot_be_made_names_the_path(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the folder should be")  # no folder can be made under it, even by root
    line = one_error_line(run("data", "info", env={"ATLAS_HOME": str(blocker / "atlas")}))
    assert str(blocker / "atlas") in line and "ATLAS_HOME" in line


def test_a_full_disk_is_one_error_and_the_store_keeps_what_it_had(tmp_path):
    path = tmp_path / "market.db"
    store = MarketStore(f"sqlite:///{path}")
    store.write_trades("bitstamp", trades(10))
    pages = store.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(store.engine, "connect")
    def _small_disk(dbapi_connection, _record):  # SQLite stops at this many pages: SQLITE_FULL, as on a full disk
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

    store.engine.dispose()
    with pytest.raises(StoreError, match="disk is full; the write in progress was rolled back"):
        store.write_trades("bitstamp", trades(20_000, first_id=10))
    assert len(store.read_trades("bitstamp")) == 10
    store.close()


def test_a_gds_sqlite_file_read_in_place_is_never_changed(tmp_path):
    gds_path = tmp_path / "gds.db"
    with sqlite3.connect(gds_path) as conn:  # a GDS database in the default rollback journal, as GDS leaves it
        conn.executescript(
            "CREATE TABLE orderbook (orderbook_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, "
            "timestamp DATETIME, time_created DATETIME, bids TEXT, asks TEXT);"
            "CREATE TABLE trade (trade_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, timestamp DATETIME, "
            "time_created DATETIME, exchange_trade_id TEXT, source TEXT, price NUMERIC, price_currency TEXT, "
            "volume NUMERIC, volume_currency TEXT);"
            "CREATE TABLE exchange_volume (exchange_volume_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, "
            "timestamp DATETIME, time_created DATETIME, exchange_volume NUMERIC);"
            "INSERT INTO trade VALUES (1, 'u1', 'BITSTAMP_BTC_USD', '2024-02-01 12:00:01.000000', "
            "'2024-02-01 12:00:02.000000', 'a', 'gds', 100.5, 'USD', 0.25, 'BTC');")
    before = digest(gds_path)
    with MarketStore(f"sqlite:///{tmp_path / 'atlas.db'}", gds_url=f"sqlite:///{gds_path}") as store:
        assert store.read_trades("bitstamp")["price"].tolist() == [100.5]
        assert store.summary()["rows"].sum() == 1
    assert digest(gds_path) == before
    assert not (tmp_path / "gds.db-wal").exists()
    with sqlite3.connect(gds_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_bad_rows_of_a_gds_database_read_in_place_are_skipped_and_counted(tmp_path):
    """Fault: a trade whose price was text or NULL became vwap 0.0, or added to volume and trade count, and
    nothing was counted."""
    gds_path = tmp_path / "gds.db"
    good = [(1, "2024-02-01 12:00:10", "100.0", "1.0"), (2, "2024-02-01 12:00:20", "102.0", "3.0")]
    bad = [(3, "2024-02-01 12:00:30", "'not a price'", "1.0"), (4, "2024-02-01 12:00:40", "NULL", "5.0"),
           (5, "2024-02-01 12:00:50", "101.0", "NULL"), (6, "2024-02-01 12:00:55", "-3.0", "1.0")]
    rows = ", ".join(f"({i}, 'u{i}', 'BITSTAMP_BTC_USD', '{t}.000000', '{t}.000000', 'x{i}', 'gds', {p}, "
                     f"'USD', {v}, 'BTC')" for i, t, p, v in good + bad)
    with sqlite3.connect(gds_path) as conn:
        conn.executescript(
            "CREATE TABLE orderbook (orderbook_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, "
            "timestamp DATETIME, time_created DATETIME, bids TEXT, asks TEXT);"
            "CREATE TABLE trade (trade_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, timestamp DATETIME, "
            "time_created DATETIME, exchange_trade_id TEXT, source TEXT, price NUMERIC, price_currency TEXT, "
            "volume NUMERIC, volume_currency TEXT);"
            "CREATE TABLE exchange_volume (exchange_volume_id INTEGER PRIMARY KEY, unique_id TEXT, exchange TEXT, "
            "timestamp DATETIME, time_created DATETIME, exchange_volume NUMERIC);"
            f"INSERT INTO trade VALUES {rows};"
            "INSERT INTO trade VALUES (7, 'u7', 'BITSTAMP_BTC_USD', '2024-02-01 12:01:10.000000', "
            "'2024-02-01 12:01:10.000000', 'x7', 'gds', 99.0, 'USD', 1.0, 'BTC');"
            "INSERT INTO exchange_volume VALUES (1, 'v1', 'BITSTAMP_BTC_USD', '2024-02-01 12:00:05.000000', "
            "'2024-02-01 12:00:05.000000', 'lots'), (2, 'v2', 'BITSTAMP_BTC_USD', '2024-02-01 12:00:45.000000', "
            "'2024-02-01 12:00:45.000000', 1234.5);")
    before = digest(gds_path)
    from atlas.data.metrics import MetricPipeline

    with MarketStore(f"sqlite:///{tmp_path / 'atlas.db'}", gds_url=f"sqlite:///{gds_path}") as store:
        report = MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()[0]
        bucket = pd.Timestamp("2024-02-01 12:01", tz="UTC")
        assert report.skipped == {"trade.non_positive_price": 3, "trade.non_positive_volume": 1,
                                  "exchange_volume.negative_volume": 1}
        assert store.read_series("bitstamp_btc_usd.1min.trade_count")[bucket] == 2
        assert store.read_series("bitstamp_btc_usd.1min.volume")[bucket] == 4.0
        assert store.read_series("bitstamp_btc_usd.1min.vwap")[bucket] == (100.0 * 1 + 102.0 * 3) / 4
        assert store.read_series("bitstamp_btc_usd.1min.exchange_volume")[bucket] == 1234.5
    assert digest(gds_path) == before
