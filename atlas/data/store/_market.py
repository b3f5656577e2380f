"""Reading and writing the GDS market tables: order books, trades and exchange volume."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from atlas.data.exchanges import Exchange
from atlas.data.orderbooks import BookBatch
from atlas.data.store import _schema as schema
from atlas.data.store._bulk import fetch_columns, insert_frame, parse_sql_times, sql_times, time_range_clause
from atlas.exceptions import DataValidationError


def _common(n: int, exchange: Exchange, times: pd.DatetimeIndex) -> dict:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return {
        "unique_id": _unique_ids(n),
        "exchange": exchange.name,
        "timestamp": sql_times(times),
        "time_created": now,
    }


def _unique_ids(n: int) -> list[str]:
    """Random 128-bit hex ids, as GDS's uuid4().hex, drawn in one call."""
    text = os.urandom(16 * n).hex()
    return [text[i:i + 32] for i in range(0, 32 * n, 32)]


def write_orderbooks(conn: Connection, exchange: Exchange, books: BookBatch) -> None:
    bids, asks = books.to_json()
    frame = pd.DataFrame({**_common(len(books), exchange, books.times), "bids": bids, "asks": asks})
    insert_frame(conn, schema.orderbook, frame)


def write_trades(conn: Connection, exchange: Exchange, trades: pd.DataFrame, *, source: str,
                 skip_existing: bool) -> int:
    """Inserts trades; returns how many rows were new. Conflicts on (exchange, exchange_trade_id) raise unless
    ``skip_existing``."""
    frame = pd.DataFrame({
        **_common(len(trades), exchange, trades["timestamp"]),
        "exchange_trade_id": trades["exchange_trade_id"].astype(str).to_numpy(dtype=object),
        "source": source,
        "price": trades["price"].to_numpy(dtype=np.float64),
        "price_currency": exchange.quote.upper()[:3],
        "volume": trades["volume"].to_numpy(dtype=np.float64),
        "volume_currency": exchange.base.upper()[:3],
    })
    before = count_rows(conn, "trade", exchange)
    insert_frame(conn, schema.trade, frame, conflict="nothing" if skip_existing else None,
                 keys=("exchange", "exchange_trade_id"))
    return count_rows(conn, "trade", exchange) - before


def write_exchange_volume(conn: Connection, exchange: Exchange, volume: pd.DataFrame) -> None:
    frame = pd.DataFrame({
        **_common(len(volume), exchange, volume["timestamp"]),
        "exchange_volume": volume["exchange_volume"].to_numpy(dtype=np.float64),
    })
    insert_frame(conn, schema.exchange_volume, frame)


def existing_trade_ids(conn: Connection, exchange: Exchange, trades: pd.DataFrame) -> list[str]:
    """Which of the trades' ids the store already holds for ``exchange`` within their time range.

    A stored trade with the same id at another time is caught by the unique constraint instead.
    """
    times = pd.DatetimeIndex(trades["timestamp"])
    first, last = sql_times(pd.DatetimeIndex([times.min(), times.max()]))
    params = {"exchange": exchange.name, "first": str(first), "last": str(last)}
    sql = ("SELECT exchange_trade_id FROM trade WHERE exchange = :exchange AND timestamp >= :first "
           "AND timestamp <= :last")
    stored = {row[0] for row in conn.execute(text(sql), params)}
    return [i for i in trades["exchange_trade_id"].astype(str) if i in stored] if stored else []


def stored_trade_ids(conn: Connection, exchange: Exchange, ids: list[str]) -> list[str]:
    """Which of ``ids`` the store holds for ``exchange``, at any time (slow: for error messages)."""
    found: list[str] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join(f":i{k}" for k in range(len(chunk)))
        params = {f"i{k}": v for k, v in enumerate(chunk)} | {"exchange": exchange.name}
        sql = f"SELECT exchange_trade_id FROM trade WHERE exchange = :exchange AND exchange_trade_id IN ({marks})"
        found += [row[0] for row in conn.execute(text(sql), params)]
    return found


def _range_clause(start: pd.Timestamp | None, end: pd.Timestamp | None, params: dict) -> str:
    return time_range_clause("timestamp", start, end, params, include_start=False)


def read_orderbook_text(conn: Connection, exchange: Exchange, start, end) -> tuple[pd.DatetimeIndex, list, list]:
    """Snapshots with ``start < timestamp <= end``, in time order, as GDS JSON text."""
    params = {"exchange": exchange.name}
    sql = ("SELECT timestamp, bids, asks FROM orderbook WHERE exchange = :exchange AND timestamp IS NOT NULL"
           f"{_range_clause(start, end, params)} ORDER BY timestamp, orderbook_id")
    rows = conn.execute(text(sql), params).all()
    if not rows:
        return pd.DatetimeIndex([], tz="UTC"), [], []
    times, bids, asks = zip(*rows)
    return parse_sql_times(times), list(bids), list(asks)


def read_orderbook_times(conn: Connection, exchange: Exchange, start, end) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Ids and times of the snapshots with ``start < timestamp <= end``, in time order (no JSON is read)."""
    params = {"exchange": exchange.name}
    sql = ("SELECT orderbook_id, timestamp FROM orderbook WHERE exchange = :exchange AND timestamp IS NOT NULL"
           f"{_range_clause(start, end, params)} ORDER BY timestamp, orderbook_id")
    ids, times = fetch_columns(conn, sql, params, 2)
    if not ids:
        return np.array([], dtype=np.int64), pd.DatetimeIndex([], tz="UTC").as_unit("ns")
    return np.asarray(ids, dtype=np.int64), parse_sql_times(times)


def read_orderbook_sides(conn: Connection, ids: np.ndarray) -> tuple[list, list]:
    """The GDS JSON of the snapshots ``ids``, in the order given."""
    found: dict[int, tuple] = {}
    values = [int(i) for i in ids]
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        marks = ", ".join(f":i{k}" for k in range(len(chunk)))
        params = {f"i{k}": v for k, v in enumerate(chunk)}
        sql = f"SELECT orderbook_id, bids, asks FROM orderbook WHERE orderbook_id IN ({marks})"
        found |= {row[0]: (row[1], row[2]) for row in conn.execute(text(sql), params).all()}
    return [found[i][0] for i in values], [found[i][1] for i in values]


def _number(conn: Connection, column: str) -> str:
    """SQL reading a numeric column as a float, or NULL where it holds text: SQLite keeps whatever a writer put in
    a column, and ``CAST('abc' AS FLOAT)`` is 0.0 there, a price that would pass for real."""
    if conn.dialect.name == "sqlite":
        return f"CASE WHEN typeof({column}) IN ('integer', 'real') THEN {column} END"
    return f"CAST({column} AS FLOAT)"


def read_trades(conn: Connection, exchange: Exchange, start, end) -> pd.DataFrame:
    """Trades with ``start < timestamp <= end`` in time order: timestamp, price, volume, exchange_trade_id."""
    params = {"exchange": exchange.name}
    price, volume = _number(conn, "price"), _number(conn, "volume")
    sql = (f"SELECT timestamp, {price} AS price, {volume} AS volume, exchange_trade_id "
           f"FROM trade WHERE exchange = :exchange{_range_clause(start, end, params)} ORDER BY timestamp, trade_id")
    times, price, volume, ids = fetch_columns(conn, sql, params, 4)
    if not times:
        return pd.DataFrame({"timestamp": pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
                             "price": np.array([], dtype=float), "volume": np.array([], dtype=float),
                             "exchange_trade_id": np.array([], dtype=object)})
    return pd.DataFrame({"timestamp": parse_sql_times(times), "price": np.asarray(price, dtype=np.float64),
                         "volume": np.asarray(volume, dtype=np.float64), "exchange_trade_id": list(ids)})


def read_exchange_volume(conn: Connection, exchange: Exchange, start, end) -> pd.Series:
    """Reported exchange volume with ``start < timestamp <= end``, indexed by time."""
    params = {"exchange": exchange.name}
    sql = (f"SELECT timestamp, {_number(conn, 'exchange_volume')} FROM exchange_volume WHERE exchange = :exchange"
           f"{_range_clause(start, end, params)} ORDER BY timestamp, exchange_volume_id")
    rows = conn.execute(text(sql), params).all()
    if not rows:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float, name="exchange_volume")
    times, values = zip(*rows)
    return pd.Series(np.asarray(values, dtype=np.float64), index=parse_sql_times(times), name="exchange_volume")


def count_rows(conn: Connection, table: str, exchange: Exchange) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE exchange = :e"), {"e": exchange.name}).scalar())


def summary(conn: Connection) -> pd.DataFrame:
    """Rows, first and last timestamp per exchange and market table."""
    parts = []
    for table in schema.MARKET_TABLES:
        sql = f"SELECT exchange, COUNT(*), MIN(timestamp), MAX(timestamp) FROM {table} GROUP BY exchange"
        for exchange, rows, first, last in conn.execute(text(sql)):
            parts.append({"exchange": exchange, "table": table, "rows": int(rows),
                          "first": parse_sql_times([first])[0] if first is not None else pd.NaT,
                          "last": parse_sql_times([last])[0] if last is not None else pd.NaT})
    return pd.DataFrame(parts, columns=["exchange", "table", "rows", "first", "last"])


#: What GDS's ``Numeric(20, 10)`` columns hold: below 10^10, and 10 decimal places (smaller rounds to zero).
NUMERIC_LIMIT, NUMERIC_RESOLUTION = 1e10, 0.5e-10
#: GDS's ``exchange_trade_id`` is ``Unicode(64)``.
TRADE_ID_LENGTH = 64

#: The trade rules, in the order they are checked, and how a message says each.
TRADE_RULES = {
    "non_positive_price": "has a price that is zero, negative or not a number",
    "non_positive_volume": "has a volume that is zero, negative or not a number",
    "out_of_range": (f"has a price or volume that the store cannot hold: infinite, {NUMERIC_LIMIT:.0e} or more, "
                     f"or so small that GDS's Numeric(20,10) rounds it to zero"),
    "trade_id_too_long": f"has an exchange_trade_id longer than GDS's {TRADE_ID_LENGTH} characters",
    "timestamps_out_of_order": "is earlier than the row before it",
    "duplicate_trade": "repeats an exchange_trade_id of an earlier row",
}


def out_of_range(values: np.ndarray, *, zero_ok: bool = False) -> np.ndarray:
    """Values a GDS ``Numeric(20, 10)`` column cannot hold: infinite, too large, or rounding to zero (NaN is not
    out of range: it is missing, which the other rules catch)."""
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)
        small = (magnitude < NUMERIC_RESOLUTION) & (magnitude > 0 if zero_ok else magnitude >= 0)
        return np.isinf(values) | (magnitude >= NUMERIC_LIMIT) | small


def volume_problems(values: np.ndarray) -> list[tuple[str, np.ndarray, str]]:
    """The exchange-volume rules: (rule, rows breaking it, words), in order."""
    with np.errstate(invalid="ignore"):
        negative = ~(values >= 0)
    return [("negative_volume", negative, "is negative or not a number"),
            ("out_of_range", out_of_range(values, zero_ok=True) & ~negative,
             "is a volume the store cannot hold: infinite, 1e+10 or more, or rounding to zero at 10 decimals")]


def trade_problems(price: np.ndarray, volume: np.ndarray, ids, times=None) -> dict[str, np.ndarray]:
    """For each trade rule, a mask of the rows that break it (a row may break several; the first counts).

    Args:
        price, volume: the values as floats (NaN where the input was missing or not a number).
        ids: the ``exchange_trade_id`` of each row, or None when the store makes them.
        times: the timestamps as int64 nanoseconds, to check their order; None skips that rule.
    """
    with np.errstate(invalid="ignore"):
        masks = {"non_positive_price": ~(price > 0), "non_positive_volume": ~(volume > 0),
                 "out_of_range": out_of_range(price) | out_of_range(volume)}
    masks["out_of_range"] &= ~(masks["non_positive_price"] | masks["non_positive_volume"])
    if ids is not None:
        text = pd.Series(ids, dtype=object).astype(str)
        masks["trade_id_too_long"] = (text.str.len() > TRADE_ID_LENGTH).to_numpy()
        masks["duplicate_trade"] = text.duplicated().to_numpy()
    if times is not None:
        masks["timestamps_out_of_order"] = np.r_[False, np.diff(np.asarray(times)) < 0]
    return {rule: masks[rule] for rule in TRADE_RULES if rule in masks}


def first_rule(masks: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, dict[str, int]]:
    """The rows breaking any rule, and how many rows each rule takes (a row counts under its first rule)."""
    bad = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}
    for rule, mask in masks.items():
        mine = np.asarray(mask, dtype=bool) & ~bad
        if mine.any():
            counts[rule] = int(mine.sum())
        bad |= mine
    return bad, counts


def check_trades(trades: pd.DataFrame) -> None:
    """Rules for trades: positive prices and volumes the store can hold, time order, unique ids that fit.

    Raises:
        DataValidationError: naming the first row that breaks a rule.
    """
    ids = trades["exchange_trade_id"].astype(str)
    masks = trade_problems(trades["price"].to_numpy(dtype=np.float64), trades["volume"].to_numpy(dtype=np.float64),
                           ids.to_numpy(dtype=object), pd.DatetimeIndex(trades["timestamp"]).asi8)
    for rule, mask in masks.items():
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            msg = (f"trade row {row} (exchange_trade_id {ids.iloc[row]!r}, {trades['timestamp'].iloc[row]}) "
                   f"{TRADE_RULES[rule]} (rule {rule}); {int(mask.sum())} rows break it. Fix the input, or skip "
                   f"bad rows (on_invalid='skip', --skip-invalid) to drop and count them")
            raise DataValidationError(msg, rule=rule, row=row)


def invalid_trade_rows(trades: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """The trade rows that break a rule other than time order (for skipping), and the count by rule."""
    masks = trade_problems(trades["price"].to_numpy(dtype=np.float64), trades["volume"].to_numpy(dtype=np.float64),
                           trades["exchange_trade_id"].astype(str).to_numpy(dtype=object))
    return first_rule(masks, len(trades))
