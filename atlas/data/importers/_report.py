"""What an import did, and the checks every importer shares (choices, exchanges, snapshots already stored)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from atlas.data._checks import check_choice  # noqa: F401 (importers take it from here)
from atlas.data.exchanges import Exchange
from atlas.data.store import MarketStore
from atlas.exceptions import UnknownExchangeError


@dataclass(frozen=True)
class ImportReport:
    """What one import wrote and skipped. Every importer writes in one transaction: all of it, or nothing.

    Attributes:
        source: where the data came from (a path, or a URL without its password).
        exchanges: the GDS names of the exchanges written (``("BITSTAMP_BTC_USD",)``).
        written: rows written, by table (``"orderbook"``, ``"trade"``, ``"exchange_volume"``) or by series
            name (``"bitstamp_btc_usd.30min.close"``).
        skipped: rows left out, by ``table.rule`` (``"orderbook.crossed_book"``, ``"trade.already_stored"``).
        noted: rows written but worth knowing about, by ``table.what`` (``"bars.zero_volume"``), and stored rows
            an import with ``replace=True`` deleted (``"bars.replaced"``).
        first: the earliest timestamp written (UTC), or ``None`` when nothing was written.
        last: the latest timestamp written.
        seconds: wall time of the import.

    Example:
        >>> report = ImportReport("trades.csv", ("BITSTAMP_BTC_USD",), {"trade": 3},
        ...                       {"trade.duplicate_trade": 1})
        >>> report.rows_written, report.rows_skipped
        (3, 1)
    """

    source: str
    exchanges: tuple[str, ...]
    written: Mapping[str, int] = field(default_factory=dict)
    skipped: Mapping[str, int] = field(default_factory=dict)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    seconds: float = 0.0
    noted: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:  # read-only views: a frozen report whose dicts can change is not frozen
        skipped = {rule: count for rule, count in self.skipped.items() if count}
        noted = {what: count for what, count in self.noted.items() if count}
        object.__setattr__(self, "written", types.MappingProxyType(dict(self.written)))
        object.__setattr__(self, "skipped", types.MappingProxyType(skipped))
        object.__setattr__(self, "noted", types.MappingProxyType(noted))

    @property
    def rows_written(self) -> int:
        """Every row written, over all tables or series."""
        return sum(self.written.values())

    @property
    def rows_skipped(self) -> int:
        """Every row left out, over all rules."""
        return sum(self.skipped.values())

    @property
    def rows_per_second(self) -> float:
        """Rows written per second of wall time."""
        return self.rows_written / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        written = ", ".join(f"{n} {k}" for k, n in self.written.items()) or "nothing"
        text_ = f"{self.source}: wrote {written} for {', '.join(self.exchanges) or 'no exchange'}"
        if self.first is not None:
            text_ += f" from {self.first} to {self.last}"
        if self.skipped:
            text_ += "; skipped " + ", ".join(f"{n} {k}" for k, n in self.skipped.items())
        if self.noted:
            text_ += "; noted " + ", ".join(f"{n} {k}" for k, n in self.noted.items())
        return text_ + f" in {self.seconds:.1f}s"


class Tally:
    """Counts written and skipped rows and the time range while an import runs, then makes its report."""

    def __init__(self) -> None:
        self.written: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self.noted: dict[str, int] = {}
        self.exchanges: list[str] = []
        self.first: pd.Timestamp | None = None
        self.last: pd.Timestamp | None = None

    def wrote(self, what: str, rows: int, times: pd.DatetimeIndex | None = None,
              exchange: Exchange | None = None) -> None:
        self.written[what] = self.written.get(what, 0) + int(rows)
        if exchange is not None and rows and exchange.name not in self.exchanges:
            self.exchanges.append(exchange.name)
        if times is not None and len(times) and rows:
            low, high = times.min(), times.max()
            self.first = low if self.first is None else min(self.first, low)
            self.last = high if self.last is None else max(self.last, high)

    def skip(self, table: str, counts: Mapping[str, int]) -> None:
        for rule, count in counts.items():
            if count:
                key = rule if "." in rule else f"{table}.{rule}"
                self.skipped[key] = self.skipped.get(key, 0) + int(count)

    def note(self, what: str, count: int) -> None:
        if count:
            self.noted[what] = self.noted.get(what, 0) + int(count)

    def report(self, source: str, seconds: float) -> ImportReport:
        return ImportReport(source, tuple(self.exchanges), self.written, self.skipped, self.first, self.last,
                            seconds, self.noted)


def parse_exchange(exchange: str | Exchange, store: MarketStore, *, new_venue: bool = False,
                   source: bool = False) -> Exchange:
    """The exchange an import writes, by the store's venue rule (built in, configured, or already in the store),
    and an error that says how to add a venue.

    Args:
        exchange: the name to read.
        store: its venues (``extra_venues``, ``ATLAS_EXTRA_VENUES``, and those it holds data of) are accepted.
        new_venue: accept the venue of ``exchange`` whatever it is (``--new-venue``).
        source: the name comes from the data (a GDS database), not from the caller: the hint differs.
    """
    if new_venue:
        return Exchange.read(exchange)
    try:
        return store.known_exchange(exchange)
    except UnknownExchangeError as error:
        if not source:
            raise
        venue = str(exchange).strip().lower().split("_")[0]
        msg = f"{error}; or open the store with MarketStore(url, extra_venues=({venue!r},))"
        raise UnknownExchangeError(msg) from None


def check_writable(store: MarketStore) -> None:
    """Importers write market tables: a store that reads them in place from GDS cannot take them."""
    store.require_writable()


def stored_range(conn: Connection, table: str, exchange: Exchange
                 ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last timestamp the store holds in a market table for one exchange (an index lookup)."""
    sql = f"SELECT MIN(timestamp), MAX(timestamp) FROM {table} WHERE exchange = :exchange"
    low, high = conn.execute(text(sql), {"exchange": exchange.name}).one()
    if low is None:
        return None
    first, last = pd.to_datetime(pd.Index([low, high], dtype=object), format="ISO8601")
    return first.tz_localize("UTC"), last.tz_localize("UTC")


def already_stored(times: pd.DatetimeIndex, stored: tuple[pd.Timestamp, pd.Timestamp] | None) -> np.ndarray:
    """A mask of the rows that fall within the time range the store already holds for their exchange.

    Order-book snapshots and exchange volume have no unique key, so a row inside the stored range is taken as
    imported before: importing the same data twice would otherwise double it. Newer data is imported.
    """
    if stored is None:
        return np.zeros(len(times), dtype=bool)
    values = times.as_unit("ns").asi8
    return (values >= stored[0].value) & (values <= stored[1].value)


def overlap_message(where: str, exchange: Exchange, time, stored, count: int,
                    table: str = "order books") -> str:
    """The error for rows within the stored range (rule ``already_stored``)."""
    return (f"{where} at {time} lies within the {table} the store already holds for {exchange.name} "
            f"({stored[0]} to {stored[1]}), as do {count - 1} more (rule already_stored); nothing was "
            f"written. Importing the same data again? Pass on_duplicate='skip' (--skip-existing) to skip and "
            f"count them")
