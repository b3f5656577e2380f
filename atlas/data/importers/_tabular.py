"""Trades from CSV or Parquet files, with a column mapping, into the GDS ``trade`` table (bars: ``_bars``)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from atlas.data.exchanges import Exchange
from atlas.data.importers._columns import numbers, parse_times, resolve_columns
from atlas.data.importers._files import read_table
from atlas.data.importers._report import ImportReport, Tally, check_choice, check_writable, parse_exchange
from atlas.data.importers._rules import Rules
from atlas.data.store import MarketStore
from atlas.data.store._bulk import sql_times
from atlas.data.store._market import TRADE_RULES, trade_problems
from atlas.exceptions import DataValidationError


def import_trades(store: MarketStore, source: str | Path | pd.DataFrame, *, exchange: str | Exchange,
                  columns: Mapping[str, str] | str | None = None, tz: str | None = None,
                  unit: str | None = None, time_format: str | None = None, skip_rows: int = 0,
                  on_invalid: str = "raise", on_duplicate: str = "raise", sort: bool = False,
                  replace: bool = False, new_venue: bool = False) -> ImportReport:
    """Imports trades from a CSV or Parquet file (or a DataFrame) into the ``trade`` table.

    The file needs a timestamp, a price and a volume per trade, and may have an ``exchange_trade_id``. Without
    one, each trade gets a deterministic id made from its timestamp, price, volume and occurrence number (the
    n-th identical row), so importing the same file twice is caught as a duplicate and identical trades stay
    distinct.

    Example:
        >>> import pandas as pd
        >>> from atlas.data import MarketStore
        >>> trades = pd.DataFrame({"time": ["2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z"],
        ...                        "px": [42000.0, 42001.5], "volume": [0.1, 0.25]})
        >>> report = import_trades(MarketStore("sqlite://"), trades, exchange="bitstamp",
        ...                        columns={"timestamp": "time", "price": "px"})
        >>> report.written["trade"]
        2

    Args:
        store: the destination store.
        source: a ``.csv``/``.csv.gz``/``.parquet`` path, or a DataFrame.
        exchange: the exchange, e.g. ``"bitstamp"`` or ``"BITSTAMP_BTC_EUR"``.
        columns: Atlas column -> file column (``{"timestamp": "time"}`` or ``"timestamp=time,price=px"``);
            columns left out are found by their own name in any case.
        tz: the zone naive timestamps were written in (``"UTC"``); without it naive timestamps are an error.
        unit: for numeric timestamps, what they count since the epoch: ``"s"``, ``"ms"``, ``"us"`` or
            ``"ns"``.
        time_format: for timestamps written as text that is not ISO-8601, their ``strptime`` format.
        skip_rows: lines above the header line to skip (a vendor's banner).
        on_invalid: ``"raise"`` when rows have a price or volume that is zero, negative or not a number, or an
            id repeated in the file (one error names every rule broken); ``"skip"`` to drop and count them.
        on_duplicate: trades already in the store: ``"raise"`` (nothing is written) or ``"skip"`` and count.
        sort: sort the rows by time first; otherwise a row earlier than the one before it is an error.
        replace: where the store holds trades of this exchange between the file's first and last trade that
            the file does not (another source's), delete the stored trades in that range and write the file's,
            in one transaction; without it such an import is refused, so two sources are never mixed.
        new_venue: accept a venue Atlas does not know (``cme`` of ``cme_es_usd``); the store's
            ``extra_venues`` (``ATLAS_EXTRA_VENUES``) are accepted anyway.

    Returns:
        Rows written (``written["trade"]``) and skipped by rule.

    Raises:
        DataValidationError: a column is missing, or a row breaks a rule; the message names the row and the
            rule.
        UnknownExchangeError: the venue is unknown (and says how to add it).
    """
    began = time.perf_counter()
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    check_choice("on_duplicate", on_duplicate, ("raise", "skip"))
    check_writable(store)
    exchange = parse_exchange(exchange, store, new_venue=new_venue)
    table = read_table(source, skip_rows=skip_rows)
    cols = resolve_columns(table, columns, ("timestamp", "price", "volume"), ("exchange_trade_id",))
    times = parse_times(table, cols["timestamp"], tz=tz, unit=unit, time_format=time_format)
    price, volume = numbers(table, cols["price"]), numbers(table, cols["volume"])
    if "exchange_trade_id" in cols:
        ids = table.frame[cols["exchange_trade_id"]].astype(str).to_numpy(dtype=object)
    else:
        ids = trade_ids(times, price, volume)
    rows = np.arange(len(times))
    rules = Rules(table, lambda i: f" ({times[i]}, id {ids[i]!r})")
    backwards = np.diff(times.asi8) < 0
    if sort:
        rows = np.argsort(times.asi8, kind="stable")
    else:
        words = ("runs newest first: every trade is earlier than the one before it" if backwards.all() else
                 "is earlier than the trade before it")
        rules.check("timestamps_out_of_order", np.r_[False, backwards], words,
                    fix="sort the trades by time with sort=True (--sort)", skippable=False)
    for rule, mask in trade_problems(price, volume, ids).items():
        rules.check(rule, mask, TRADE_RULES[rule])
    tally = Tally()
    bad = rules.settle(on_invalid, tally, "trade")
    rows = rows[~bad[rows]]
    frame = pd.DataFrame({"timestamp": times[rows], "price": price[rows], "volume": volume[rows],
                          "exchange_trade_id": ids[rows]})
    with store.atomic():
        if len(frame):
            _clear_range(store, exchange, frame, replace, tally, table.name)
        try:
            written = store.write_trades(exchange, frame, on_duplicate=on_duplicate, source=table.name)
        except DataValidationError as error:
            if error.rule != "duplicate_trade" or error.row is None:
                raise
            i = int(rows[error.row])
            msg = (f"{table.where(i)} ({times[i]}, exchange_trade_id {ids[i]!r}) is already in the store "
                   f"for {exchange.name} (rule duplicate_trade); nothing was written. Importing the same "
                   f"file again? Pass on_duplicate='skip' (--skip-existing) to skip and count trades already "
                   f"stored")
            raise DataValidationError(msg, rule="duplicate_trade", row=i) from None
    tally.skip("trade", written.skipped)
    tally.wrote("trade", written.written, pd.DatetimeIndex(frame["timestamp"]), exchange)
    return tally.report(table.name, time.perf_counter() - began)


def _clear_range(store: MarketStore, exchange: Exchange, frame: pd.DataFrame, replace: bool, tally: Tally,
                 source: str) -> None:
    """Refuses trades over a range where the store holds trades this file lacks (another source's), or
    (``replace``) deletes the stored trades in the file's range first.

    A file holding every stored trade strictly inside its range (the same file again, a longer one, or a slice
    of one) is left to the duplicate rule: trades at its first or last instant may be cut by the slice.
    """
    times = pd.DatetimeIndex(frame["timestamp"])
    first, last = times.min(), times.max()
    if replace:
        tally.note("trade.replaced", store.clear_market(exchange, "trade", first, last))
        return
    first_sql, last_sql = sql_times(pd.DatetimeIndex([first, last]))
    sql = ("SELECT exchange_trade_id FROM trade WHERE exchange = :exchange AND timestamp > :first "
           "AND timestamp < :last")
    with store.atomic() as conn:
        inside = {row[0] for row in conn.execute(text(sql), {"exchange": exchange.name, "first": str(first_sql),
                                                             "last": str(last_sql)})}
    foreign = len(inside - set(frame["exchange_trade_id"].astype(str)))
    if not foreign:
        return
    msg = (f"{source}: the store holds {foreign:,} trades of {exchange.name} between this file's first and last "
           f"trade, {first} and {last}, that this file does not (another import's; rule already_stored); "
           f"importing would mix two sources, so nothing was written. To replace the stored trades in that range "
           f"with this file's, pass replace=True (--replace), or delete them first: atlas data delete "
           f"{exchange.key} --start '{first}' --end '{last}'")
    raise DataValidationError(msg, rule="already_stored")


def trade_ids(times: pd.DatetimeIndex, price: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Deterministic trade ids from (timestamp, price, volume, occurrence): the same rows get the same ids.

    Example:
        >>> t = pd.DatetimeIndex(["2024-01-01", "2024-01-01"], tz="UTC")
        >>> a, b = trade_ids(t, np.array([1.0, 1.0]), np.array([2.0, 2.0]))
        >>> a != b, a == trade_ids(t[:1], np.array([1.0]), np.array([2.0]))[0]
        (True, True)
    """
    nanos = pd.DatetimeIndex(times).as_unit("ns").asi8  # the same ids whatever unit the times came in
    keys = pd.DataFrame({"t": nanos, "p": price, "v": volume})
    occurrence = keys.groupby(["t", "p", "v"], sort=False, dropna=False).cumcount().to_numpy()
    blake = hashlib.blake2b
    return np.array([
        "h" + blake(f"{t}|{p!r}|{v!r}|{k}".encode(), digest_size=16).hexdigest()
        for t, p, v, k in zip(nanos.tolist(), price.tolist(), volume.tolist(), occurrence.tolist())
    ], dtype=object)
