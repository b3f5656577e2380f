"""Deleting a time range of stored data: one series, the series matching a pattern, or all of an exchange's data.

A delete is one transaction, is written to the ingest log (so cached feature frames over the range are keyed
anew, and the metric pipeline computes the range's buckets again) and says what it removed. Imports with
``replace=True`` use the same code to clear the range they write.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Connection, func, select, text

from atlas.data.exchanges import Exchange
from atlas.data.store import _schema as schema
from atlas.data.store._bulk import parse_sql_times, time_range_clause
from atlas.exceptions import ConfigError, UnknownExchangeError

#: The market tables an exchange's delete clears, in the order they are reported.
MARKET_TABLES = ("orderbook", "trade", "exchange_volume")


@dataclass(frozen=True)
class Deletion:
    """What a delete removes (or removed): rows per market table and values per series, and their time span.

    Attributes:
        target: what was asked for (a series name, a pattern, or an exchange).
        rows: market rows by table (``{"trade": 120}``), for an exchange.
        values: values by series name.
        first: the earliest time removed, or None when nothing matches.
        last: the latest time removed.
    """

    target: str
    rows: dict[str, int] = field(default_factory=dict)
    values: dict[str, int] = field(default_factory=dict)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None

    @property
    def total(self) -> int:
        """Rows and values together."""
        return sum(self.rows.values()) + sum(self.values.values())

    def __str__(self) -> str:
        parts = [f"{n:,} {table} rows" for table, n in self.rows.items() if n]
        parts += [f"{n:,} values of {name}" for name, n in self.values.items() if n]
        if not parts:
            return f"nothing stored for {self.target} in that range"
        return f"{', '.join(parts)} from {self.first} to {self.last}"


class DeleteAccess:
    """Deleting ranges; mixed into :class:`~atlas.data.MarketStore` (its transactions, ingest log and exchanges)."""

    def plan_delete(self, target: str, start=None, end=None) -> Deletion:
        """What :meth:`delete` would remove, without removing it (``start`` and ``end`` are inclusive)."""
        with self._read() as conn:
            return _plan(self, conn, target, start, end)

    def delete(self, target: str, start=None, end=None) -> Deletion:
        """Deletes ``start <= time <= end`` (either bound may be None: unbounded) of one target in one transaction.

        Args:
            target: a series name (``bitstamp_btc_usd.30min.close``), a pattern of series names
                (``bitstamp_btc_usd.30min.*``), or an exchange (``bitstamp``, ``cme_es_usd``): its market tables
                and every one of its series.

        Returns:
            What was removed.

        Raises:
            ConfigError: the target names nothing stored, or ``start`` is after ``end``.
            StoreError: an exchange's market tables are read in place from a GDS database.
        """
        with self.atomic() as conn:
            plan = _plan(self, conn, target, start, end)
            if plan.rows:
                self.require_writable()
            _execute(self, conn, plan, start, end)
            return plan

    def count_values(self, names: list[str], start=None, end=None) -> dict[str, int]:
        """How many values each of ``names`` holds in ``[start, end]`` (series with none are left out)."""
        with self._read() as conn:
            return _series_counts(conn, names, start, end)

    def count_rows(self, exchange: Exchange, table: str, start=None, end=None) -> int:
        """How many rows of market table ``table`` (``"trade"``) ``exchange`` has in ``[start, end]``."""
        if table not in MARKET_TABLES:
            raise ConfigError(f"no market table {table!r}; the market tables are {', '.join(MARKET_TABLES)}")
        params = {"exchange": exchange.name}
        clause = time_range_clause("timestamp", start, end, params, include_start=True)
        with self._market_read() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE exchange = :exchange{clause}"),
                                    params).scalar())

    def written_span(self, exchange: Exchange, source: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last time that writes of ``exchange`` noted as ``source`` reached (the ingest log), or
        None when there were none."""
        i = schema.ingest.c
        with self._read() as conn:
            low, high = conn.execute(select(func.min(i.first_timestamp), func.max(i.last_timestamp)).where(
                i.exchange == exchange.name, i.source == source[:255])).one()
        if low is None:
            return None
        return pd.Timestamp(low).tz_localize("UTC"), pd.Timestamp(high).tz_localize("UTC")

    def clear_values(self, names: list[str], start, end) -> dict[str, int]:
        """Deletes the values of ``names`` in ``[start, end]``, in the caller's transaction when there is one (an
        import that replaces a range, whose write then logs the range); returns the count per series."""
        with self.atomic() as conn:
            counts = _series_counts(conn, names, start, end)
            _delete_values(conn, list(counts), start, end)
            return counts

    def clear_market(self, exchange: Exchange, table: str, start, end) -> int:
        """Deletes one market table's rows of ``exchange`` in ``[start, end]``, in the caller's transaction when
        there is one (an import that replaces a range, whose write then logs the range)."""
        self.require_writable()
        with self.atomic() as conn:
            return _clear_market(conn, exchange, table, start, end)


def _clear_market(conn: Connection, exchange: Exchange, table: str, start, end) -> int:
    params = {"exchange": exchange.name}
    clause = time_range_clause("timestamp", start, end, params, include_start=True)
    result = conn.execute(text(f"DELETE FROM {table} WHERE exchange = :exchange{clause}"), params)
    return int(result.rowcount or 0)


def _check_range(start, end) -> None:
    if start is not None and end is not None and start > end:
        msg = f"the range is inverted: --start {start} is after --end {end}; give --start before --end"
        raise ConfigError(msg)


def _plan(store, conn: Connection, target: str, start, end) -> Deletion:
    _check_range(start, end)
    names = sorted(conn.execute(select(schema.series.c.name)).scalars())
    if any(ch in target for ch in "*?["):
        chosen = fnmatch.filter(names, target)
        if not chosen:
            msg = f"no stored series matches {target!r}; `atlas data info` lists the series"
            raise ConfigError(msg)
        return _series_deletion(conn, target, chosen, start, end)
    if target in names:
        return _series_deletion(conn, target, [target], start, end)
    if "." in target:
        import difflib

        close = difflib.get_close_matches(target, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `atlas data info` lists the series"
        raise ConfigError(f"no series {target!r} in the store{hint}")
    try:
        exchange = store._stored_exchange(target)
    except UnknownExchangeError as error:  # say what a target can be
        msg = (f"{target!r} is neither a stored series nor an exchange with data ({error}); give a series name "
               f"(bitstamp_btc_usd.30min.close), a pattern (bitstamp_btc_usd.30min.*) or an exchange (bitstamp)")
        raise ConfigError(msg) from None
    rows, spans = {}, []
    for table in MARKET_TABLES:
        params = {"exchange": exchange.name}
        clause = time_range_clause("timestamp", start, end, params, include_start=True)
        count, low, high = conn.execute(text(
            f"SELECT COUNT(*), MIN(timestamp), MAX(timestamp) FROM {table} WHERE exchange = :exchange{clause}"),
            params).one()
        if count:
            rows[table] = int(count)
            spans += [low, high]
    owned = sorted(conn.execute(select(schema.series.c.name).where(
        schema.series.c.exchange == exchange.name)).scalars())
    series = _series_deletion(conn, exchange.name, owned, start, end)
    first, last = _span(spans, series)
    return Deletion(exchange.name, rows, series.values, first, last)


def _series_deletion(conn: Connection, target: str, names: list[str], start, end) -> Deletion:
    values, spans = {}, []
    for name in names:
        params = {"name": name}
        clause = time_range_clause("m.bucket", start, end, params, include_start=True)
        count, low, high = conn.execute(text(
            "SELECT COUNT(*), MIN(m.bucket), MAX(m.bucket) FROM atlas_metric m JOIN atlas_series s ON "
            f"s.series_id = m.series_id WHERE s.name = :name{clause}"), params).one()
        if count:
            values[name] = int(count)
            spans += [low, high]
    first, last = _span(spans)
    return Deletion(target, {}, values, first, last)


def _span(spans: list, other: Deletion | None = None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    times = list(parse_sql_times([str(s) if not isinstance(s, str) else s for s in spans])) if spans else []
    if other is not None and other.first is not None:
        times += [other.first, other.last]
    return (min(times), max(times)) if times else (None, None)


def _series_counts(conn: Connection, names: list[str], start, end) -> dict[str, int]:
    return _series_deletion(conn, "", names, start, end).values


def _delete_values(conn: Connection, names: list[str], start, end) -> None:
    for name in names:
        params = {"name": name}
        clause = time_range_clause("bucket", start, end, params, include_start=True)
        conn.execute(text("DELETE FROM atlas_metric WHERE series_id = (SELECT series_id FROM atlas_series WHERE "
                          f"name = :name){clause}"), params)


def _execute(store, conn: Connection, plan: Deletion, start, end) -> None:
    """Deletes what ``plan`` names, drops series left empty, and logs the range per exchange."""
    if not plan.total:
        return
    s, m = schema.series.c, schema.metric.c
    owners = dict(conn.execute(select(s.name, s.exchange).where(s.name.in_(list(plan.values)))).all())
    market = _exchange(plan.target) if plan.rows else None
    for table in plan.rows:
        _clear_market(conn, market, table, start, end)
    _delete_values(conn, list(plan.values), start, end)
    for name in plan.values:  # a series left without values is forgotten: its width is free for any writer
        series_id = conn.execute(select(s.series_id).where(s.name == name)).scalar()
        if conn.execute(select(m.series_id).where(m.series_id == series_id).limit(1)).first() is None:
            conn.execute(schema.series.delete().where(s.series_id == series_id))
    span = pd.DatetimeIndex([plan.first, plan.last])
    source = f"delete:{plan.target}"[:255]
    if market is not None:  # market data: the metric buckets over the range are computed again
        store._log(conn, market, next(iter(plan.rows)), span, source)
    for name in sorted(set(owners.values()) - {plan.target}):
        store._log(conn, _exchange(name), "series", span, source, invalidate=False)
    if market is not None and start is None and end is None:  # all of an exchange: its widths start afresh
        conn.execute(schema.watermark.delete().where(schema.watermark.c.exchange == market.name))


def _exchange(name: str) -> Exchange:
    """An exchange named as the store holds it (``CME_ES_USD``): its data is there, whatever its venue."""
    venue, base, quote = name.lower().split("_")
    return Exchange(venue, base, quote)
