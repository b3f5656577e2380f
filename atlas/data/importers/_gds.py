"""Copying a time range of a Gryphon Data Service database into the store, a bounded batch at a time.

The source is read with plain SQL through SQLAlchemy and never written: no table is created in it. Rows are
read per exchange in ``(timestamp, id)`` order with keyset pagination (``WHERE (timestamp, id) > last ...
LIMIT n``), so memory holds a bounded number of rows whatever the table's size: the page being checked and
written, and the next one, read on a thread meanwhile. Order-book JSON is decoded a page at a time by a
vectorized decoder (``BookBatch.from_json``). All writes share one transaction of the destination store: a failure
anywhere leaves the store as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, DateTime, Engine, bindparam, create_engine, inspect, text
from sqlalchemy.engine import make_url

from atlas.data.exchanges import Exchange
from atlas.data.importers._report import (
    ImportReport,
    Tally,
    already_stored,
    check_choice,
    check_writable,
    overlap_message,
    parse_exchange,
    stored_range,
)
from atlas.data.orderbooks import RULES, BookBatch
from atlas.data.store import MarketStore
from atlas.data.store._market import TRADE_RULES, trade_problems, volume_problems
from atlas.data.timestamps import to_utc, utc_timestamp
from atlas.exceptions import (
    ConfigError,
    DataValidationError,
    MissingDataError,
    StoreError,
    UnknownExchangeError,
)

_TABLES = {  # table -> (primary key, value columns)
    "orderbook": ("orderbook_id", "bids, asks"),
    "trade": ("trade_id", "exchange_trade_id, price, volume"),
    "exchange_volume": ("exchange_volume_id", "exchange_volume"),
}
_SKIP_HINT = ("Fix the source row, or import with on_invalid='skip' (--skip-invalid) to drop and count such "
              "rows")


def import_gds(store: MarketStore, url: str, *, start=None, end=None, exchanges: Iterable[str] | None = None,
               batch_size: int = 20_000, on_invalid: str = "raise", on_duplicate: str = "raise",
               progress: bool = False) -> ImportReport:
    """Copies the order books, trades and exchange volume of a GDS database into the store.

    GDS stores naive UTC timestamps; they are read as UTC. Rows with ``start < timestamp <= end`` are copied
    (the bucket convention, so consecutive ranges neither overlap nor leave gaps); order books without a
    timestamp are skipped and counted (``orderbook.missing_timestamp``). Trades without an
    ``exchange_trade_id`` get ``gds-{trade_id}``. To read a GDS database in place instead, open
    ``MarketStore(url, gds_url=...)``.

    Example:
        >>> from atlas.data import MarketStore
        >>> source = MarketStore("sqlite:////tmp/atlas-gds-example.db")   # any GDS database
        >>> report = import_gds(MarketStore("sqlite://"), source.url, start="2024-01-01", end="2024-01-02")
        >>> report.rows_written
        0

    Args:
        store: the destination store.
        url: SQLAlchemy URL of the GDS database (``postgresql://user@host/gds``, ``sqlite:///gds.db``).
        start: copy rows after this time (UTC when naive); from the first row by default.
        end: copy rows up to and including this time; through the last row by default.
        exchanges: exchanges to copy (``["bitstamp", "GEMINI_BTC_USD"]``); all that have rows by default.
        batch_size: rows per query; memory holds two pages at most (the next one is read meanwhile).
        on_invalid: ``"raise"`` on the first row that breaks a rule (malformed JSON, a crossed book, a volume
            that is zero or negative, ...), or ``"skip"`` to drop and count such rows.
        on_duplicate: trades already in the store and snapshots within the time range the store already holds:
            ``"raise"`` or ``"skip"`` (counted as ``already_stored``), so a range can be copied again safely.
        progress: show a progress bar on stderr.

    Returns:
        What was written and skipped, per table.

    Raises:
        DataValidationError: a row breaks a rule; the message names the table, the row's id, the time and the
            rule.
        MissingDataError: an exchange asked for has no rows in the range (the message lists those that do).
        StoreError: the URL is not a GDS database, or the store reads its market tables in place.
    """
    began = time.perf_counter()
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    check_choice("on_duplicate", on_duplicate, ("raise", "skip"))
    if int(batch_size) < 1:
        msg = f"batch_size must be a positive number of rows, got batch_size={batch_size!r}"
        raise ConfigError(msg)
    check_writable(store)
    bounds = (utc_timestamp(start, what="start") if start is not None else None,
              utc_timestamp(end, what="end") if end is not None else None)
    engine = _source_engine(url, store)
    shown = make_url(engine.url).render_as_string(hide_password=True)
    tally = Tally()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="row", desc="import gds", leave=False)
    try:
        with engine.connect() as source:
            chosen = _exchanges(source, exchanges, bounds, store, shown)
            copier = _Copier(store, source, bounds, int(batch_size), (on_invalid, on_duplicate), shown, tally,
                             bar, chosen)
            with store.atomic() as conn:
                for exchange in chosen:
                    copier.orderbooks(conn, exchange)
                    copier.trades(exchange)
                    copier.exchange_volume(conn, exchange)
    finally:
        engine.dispose()
        if bar is not None:
            bar.close()
    return tally.report(shown, time.perf_counter() - began)


def _source_engine(url: str, store: MarketStore) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy raises several types for a bad URL
        msg = (f"GDS URL {url!r} is not a database URL ({error}); e.g. postgresql://user@host/gds or "
               f"sqlite:///gds.db")
        raise ConfigError(msg) from None
    if parsed.get_backend_name() == "sqlite" and (not parsed.database or parsed.database == ":memory:"
                                                  or not Path(parsed.database).is_file()):
        msg = f"no SQLite database file at {parsed.database!r} (from {url!r}); give the GDS database's path"
        raise ConfigError(msg)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.render_as_string() == store.engine.url.render_as_string():
        msg = f"the GDS URL {url!r} is the store itself; give the URL of another database to copy from"
        raise ConfigError(msg)
    engine = create_engine(parsed)
    try:
        missing = set(_TABLES) - set(inspect(engine).get_table_names())
    except Exception as error:  # noqa: BLE001 - any driver or connection error: name the database
        engine.dispose()
        msg = f"cannot open the GDS database at {parsed.render_as_string(hide_password=True)!r}: {error}"
        raise StoreError(msg) from None
    if missing:
        engine.dispose()
        msg = (f"the database at {parsed.render_as_string(hide_password=True)!r} lacks the GDS tables "
               f"{sorted(missing)}; is it a GDS database? It needs orderbook, trade and exchange_volume")
        raise StoreError(msg)
    return engine


def _range_sql(bounds, params: dict) -> tuple[str, list]:
    clause, binds = "", []
    if bounds[0] is not None:
        clause += " AND timestamp > :start"
        params["start"] = bounds[0].tz_convert("UTC").tz_localize(None).to_pydatetime()
        binds.append(bindparam("start", type_=DateTime))
    if bounds[1] is not None:
        clause += " AND timestamp <= :end"
        params["end"] = bounds[1].tz_convert("UTC").tz_localize(None).to_pydatetime()
        binds.append(bindparam("end", type_=DateTime))
    return clause, binds


def _exchanges(source: Connection, asked, bounds, store: MarketStore, shown: str
               ) -> dict[Exchange, list[str]]:
    """The exchanges to copy, each with the names the source writes it by (``BITSTAMP_BTC_USD``)."""
    params: dict = {}
    clause, binds = _range_sql(bounds, params)
    present: set[str] = set()
    for table in _TABLES:
        sql = text(f"SELECT DISTINCT exchange FROM {table} WHERE 1 = 1{clause}").bindparams(*binds)
        present |= {row[0] for row in source.execute(sql, params)}
    chosen: dict[Exchange, list[str]] = {}
    wanted = None if asked is None else [parse_exchange(name, store) for name in asked]
    for name in sorted(present):
        try:
            exchange = parse_exchange(name, store, source=True)
        except UnknownExchangeError:
            if wanted is None:  # copying everything: every exchange must be known
                raise
            continue
        if wanted is None or exchange in wanted:
            chosen.setdefault(exchange, []).append(name)
    lacking = [e.name for e in wanted or () if e not in chosen]
    if lacking:
        msg = (f"the GDS database {shown} has no rows for {', '.join(lacking)} in the range asked; exchanges "
               f"with rows there: {', '.join(sorted(present)) or 'none'}")
        raise MissingDataError(msg)
    return chosen


class _Copier:
    """Copies one exchange's rows of each table, batch by batch, inside the store's open transaction."""

    def __init__(self, store: MarketStore, source: Connection, bounds, batch_size: int,
                 choices: tuple[str, str], shown: str, tally: Tally, bar,
                 names: dict[Exchange, list[str]]) -> None:
        self.store, self.source, self.bounds, self.batch_size = store, source, bounds, batch_size
        self.on_invalid, self.on_duplicate = choices
        self.shown, self.tally, self.bar, self.names = shown, tally, bar, names

    def _pages(self, table: str, exchange: Exchange) -> Iterator[list]:
        key, columns = _TABLES[table]
        params: dict = {"names": self.names[exchange], "n": self.batch_size}
        clause, binds = _range_sql(self.bounds, params)
        binds.append(bindparam("names", expanding=True))
        base = (f"SELECT {key}, timestamp, {columns} FROM {table} WHERE exchange IN :names "
                f"AND timestamp IS NOT NULL{clause}")
        order = f" ORDER BY timestamp, {key} LIMIT :n"
        sql = text(base + order).bindparams(*binds)
        # the first condition lets an index on timestamp start the scan at the page boundary
        keyset = f" AND timestamp >= :t AND (timestamp > :t OR (timestamp = :t AND {key} > :k))"
        after = text(base + keyset + order).bindparams(*binds)
        rows = self.source.execute(sql, params).all()
        ahead: Future | None = None  # the next page, read on a thread while this one is checked and written
        with ThreadPoolExecutor(1) as reader:
            try:
                while rows:
                    if len(rows) == self.batch_size:
                        params = params | {"t": rows[-1][1], "k": rows[-1][0]}  # raw: compared as stored
                        ahead = reader.submit(lambda p=params: self.source.execute(after, p).all())
                    yield rows
                    if self.bar is not None:
                        self.bar.update(len(rows))
                    rows, ahead = (ahead.result() if ahead is not None else []), None
            finally:
                if ahead is not None:  # stopped early (a row broke a rule): let the read end before closing
                    wait([ahead])

    def _fail(self, table: str, exchange: Exchange, ids, times, row: int, words: str, rule: str, hint: str):
        key = _TABLES[table][0]
        where = f"GDS {table} row {key}={ids[row]} ({exchange.name}, {times[row]})"
        msg = f"{where} {words} (rule {rule}); {hint}"
        raise DataValidationError(msg, rule=rule, row=int(ids[row]))

    def orderbooks(self, conn: Connection, exchange: Exchange) -> None:
        stored = stored_range(conn, "orderbook", exchange)
        if self.bounds == (None, None):
            sql = text("SELECT COUNT(*) FROM orderbook WHERE exchange IN :names AND timestamp IS NULL")
            untimed = self.source.execute(sql.bindparams(bindparam("names", expanding=True)),
                                          {"names": self.names[exchange]}).scalar()
            self.tally.skip("orderbook", {"missing_timestamp": untimed})
        for rows in self._pages("orderbook", exchange):
            ids, raw_times, bids, asks = (list(column) for column in zip(*rows))
            times = to_utc(pd.Index(raw_times, dtype=object), tz="UTC", what="GDS orderbook timestamp")
            self._write_books(exchange, stored, ids, times, bids, asks)

    def _write_books(self, exchange: Exchange, stored, ids, times, bids, asks) -> None:
        books, keep = self._parse(exchange, ids, times, bids, asks)
        invalid = books.invalid_rows()
        if len(invalid):
            if self.on_invalid == "raise":
                row = int(keep[invalid.index[0]])
                self._fail("orderbook", exchange, ids, times, row, RULES[invalid.iloc[0]], invalid.iloc[0],
                           _SKIP_HINT)
            self.tally.skip("orderbook", invalid.value_counts().to_dict())
            good = np.setdiff1d(np.arange(len(books)), invalid.index.to_numpy())
            books, keep = books.take(good), keep[good]
        seen = already_stored(books.times, stored)
        if seen.any():
            if self.on_duplicate == "raise":
                row = int(keep[np.flatnonzero(seen)[0]])
                key = f"GDS orderbook row orderbook_id={ids[row]}"
                msg = overlap_message(key, exchange, times[row], stored, int(seen.sum()))
                raise DataValidationError(msg, rule="already_stored", row=int(ids[row]))
            self.tally.skip("orderbook", {"already_stored": int(seen.sum())})
            books = books.take(np.flatnonzero(~seen))
        if len(books):
            self.store.write_orderbooks(exchange, books, source=f"gds {self.shown}")
            self.tally.wrote("orderbook", len(books), books.times, exchange)

    def _parse(self, exchange: Exchange, ids, times, bids, asks) -> tuple[BookBatch, np.ndarray]:
        """The page parsed, malformed snapshots raised or dropped, and the position of each kept one."""
        try:
            return BookBatch.from_json(times, bids, asks), np.arange(len(ids))
        except DataValidationError:
            pass
        good = []  # rare: find every malformed snapshot, one at a time
        for row in range(len(ids)):
            try:
                BookBatch.from_json(times[row:row + 1], bids[row:row + 1], asks[row:row + 1])
                good.append(row)
            except DataValidationError as error:
                if self.on_invalid == "raise":
                    side = "bids" if str(error).startswith("order book row 0: bids") else "asks"
                    got = bids[row] if side == "bids" else asks[row]
                    words = (f"{side} {RULES['malformed_json']}; got {str(got)[:80]!r}. Expected e.g. "
                             f"[[\"9500.1\", 0.5, \"\"], [9500.0, 1.2, \"\"]]")
                    self._fail("orderbook", exchange, ids, times, row, words, "malformed_json", _SKIP_HINT)
        self.tally.skip("orderbook", {"malformed_json": len(ids) - len(good)})
        keep = np.asarray(good, dtype=np.int64)
        return BookBatch.from_json(times[keep], [bids[i] for i in keep], [asks[i] for i in keep]), keep

    def trades(self, exchange: Exchange) -> None:
        for rows in self._pages("trade", exchange):
            ids, raw_times, trade_ids, price, volume = (list(column) for column in zip(*rows))
            times = to_utc(pd.Index(raw_times, dtype=object), tz="UTC", what="GDS trade timestamp")
            frame = pd.DataFrame({
                "timestamp": times,
                "price": _floats(price),
                "volume": _floats(volume),
                "exchange_trade_id": [t if t is not None else f"gds-{i}" for t, i in zip(trade_ids, ids)],
            })
            keep = np.arange(len(frame))
            checks = trade_problems(frame["price"].to_numpy(), frame["volume"].to_numpy(),
                                    frame["exchange_trade_id"].to_numpy(dtype=object))
            bad = np.zeros(len(frame), dtype=bool)
            for rule, mask in checks.items():
                mask = mask & ~bad
                if mask.any() and self.on_invalid == "raise":
                    row = int(np.flatnonzero(mask)[0])
                    self._fail("trade", exchange, ids, times, row, TRADE_RULES[rule], rule, _SKIP_HINT)
                self.tally.skip("trade", {rule: int(mask.sum())})
                bad |= mask
            if bad.any():
                frame, keep = frame.loc[~bad].reset_index(drop=True), keep[~bad]
            try:
                report = self.store.write_trades(exchange, frame, on_duplicate=self.on_duplicate,
                                                 source=f"gds {self.shown}")
            except DataValidationError as error:
                if error.row is None or error.rule != "duplicate_trade":
                    raise
                row = int(keep[error.row])
                trade_id = frame["exchange_trade_id"].iloc[error.row]
                words = f"(exchange_trade_id {trade_id!r}) is already in the store"
                self._fail("trade", exchange, ids, times, row, words, "duplicate_trade",
                           "nothing was written. Copying the same range again? Pass on_duplicate='skip' "
                           "(--skip-existing) to skip and count trades already stored")
            self.tally.skip("trade", report.skipped)
            self.tally.wrote("trade", report.written, pd.DatetimeIndex(frame["timestamp"]), exchange)

    def exchange_volume(self, conn: Connection, exchange: Exchange) -> None:
        stored = stored_range(conn, "exchange_volume", exchange)
        for rows in self._pages("exchange_volume", exchange):
            ids, raw_times, values = (list(column) for column in zip(*rows))
            times = to_utc(pd.Index(raw_times, dtype=object), tz="UTC", what="GDS exchange_volume timestamp")
            volume = _floats(values)
            bad = np.zeros(len(volume), dtype=bool)
            for rule, mask, words in volume_problems(volume):
                if mask.any():
                    if self.on_invalid == "raise":
                        self._fail("exchange_volume", exchange, ids, times, int(np.flatnonzero(mask)[0]), words,
                                   rule, _SKIP_HINT)
                    self.tally.skip("exchange_volume", {rule: int(mask.sum())})
                    bad |= mask
            seen = already_stored(times, stored) & ~bad
            if seen.any():
                if self.on_duplicate == "raise":
                    row = int(np.flatnonzero(seen)[0])
                    msg = overlap_message(f"GDS exchange_volume row exchange_volume_id={ids[row]}", exchange,
                                          times[row], stored, int(seen.sum()), table="exchange volume")
                    raise DataValidationError(msg, rule="already_stored", row=int(ids[row]))
                self.tally.skip("exchange_volume", {"already_stored": int(seen.sum())})
            keep = ~bad & ~seen
            series = pd.Series(volume[keep], index=times[keep])
            written = self.store.write_exchange_volume(exchange, series, source=f"gds {self.shown}")
            self.tally.wrote("exchange_volume", written, series.index, exchange)


def _floats(values: list) -> np.ndarray:
    """Numbers as stored (floats, Decimals, numeric text); anything else becomes NaN, caught by the rules."""
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
