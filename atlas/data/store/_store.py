"""MarketStore: the façade over the market tables and the metric series."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from atlas.config import Settings, mask_url
from atlas.data._checks import check_choice
from atlas.data.exchanges import DEFAULT_PAIR, Exchange, Venues
from atlas.data.orderbooks import BookBatch
from atlas.data.store import _market, _series
from atlas.data.store import _schema as schema
from atlas.data.store._deletes import DeleteAccess
from atlas.data.store._engine import GDS_SETTING, STORE_SETTING, open_engine, translated
from atlas.data.store._series_access import SeriesAccess
from atlas.exceptions import DataValidationError, StoreError


@dataclass(frozen=True)
class WriteReport:
    """What a write did: rows written, and rows skipped by rule (``{"crossed_book": 3}``)."""

    written: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


class MarketStore(SeriesAccess, DeleteAccess):
    """Order books, trades and exchange volume in GDS's tables, and Atlas's metric series beside them.

    SQLite by default, PostgreSQL (or any SQLAlchemy database) by URL. With ``gds_url`` the market tables are read
    in place from a Gryphon Data Service database and only the metric series are written to ``url``.

    Every store has an identity (:attr:`identity`), made when the store is created and kept in it: a cache keyed
    by it never serves one store's data for another's, even one made again at the same URL.

    Example:
        >>> store = MarketStore("sqlite://")          # in memory
        >>> store.summary().empty, len(store.identity)
        (True, 32)

    Args:
        url: SQLAlchemy URL of the Atlas store.
        gds_url: optional URL of a GDS database to read market data from in place (opened read-only: a GDS
            SQLite file is never changed, a PostgreSQL session is read-only).
        extra_venues: venues accepted beside the built-in ones (``ATLAS_EXTRA_VENUES``), e.g. ``("cme",)``; the
            venues with data in the store are accepted too (:meth:`venues`).
        cache_folder: where built feature frames are cached (``$ATLAS_HOME/cache`` through
            :meth:`from_settings`); None: no cache.

    Raises:
        ConfigError: a URL is not a database URL.
        StoreError: the database cannot be opened (unreachable, damaged, read-only, its driver missing); the
            message names the URL without its password and the setting that gave it.
    """

    def __init__(self, url: str, *, gds_url: str | None = None, extra_venues: tuple[str, ...] = (),
                 cache_folder: str | Path | None = None) -> None:
        self.url = url
        self.extra_venues = tuple(v.lower() for v in extra_venues)
        self.cache_folder = None if cache_folder is None else Path(cache_folder)
        self.engine = open_engine(url, setting=STORE_SETTING)
        self._active: contextvars.ContextVar[Connection | None] = contextvars.ContextVar("atlas_tx", default=None)
        self.gds_engine: Engine | None = None
        self._gds_url = gds_url
        with translated(url, STORE_SETTING):
            schema.atlas_metadata.create_all(self.engine)
            if gds_url is None:
                schema.gds_metadata.create_all(self.engine)
            self.identity = _identity(self.engine)
        if gds_url is not None:
            self.gds_engine = open_engine(gds_url, setting=GDS_SETTING, read_only=True)
            with translated(gds_url, GDS_SETTING):
                missing = set(schema.MARKET_TABLES) - set(inspect(self.gds_engine).get_table_names())
            if missing:
                msg = (f"the GDS database at {mask_url(gds_url)!r} ({GDS_SETTING}) lacks the tables "
                       f"{sorted(missing)}; is it a GDS database?")
                raise StoreError(msg)

    @classmethod
    def from_settings(cls, settings: Settings) -> MarketStore:
        """The store that the settings (``ATLAS_STORE_URL``, ``ATLAS_GDS_URL``) point at, caching feature frames
        under ``$ATLAS_HOME/cache``: ``MarketStore.from_settings(Settings.from_env())``."""
        return cls(settings.store.url, gds_url=settings.store.gds_url, extra_venues=settings.store.extra_venues,
                   cache_folder=settings.home / "cache")

    def close(self) -> None:
        self.engine.dispose()
        if self.gds_engine is not None:
            self.gds_engine.dispose()

    def __enter__(self) -> MarketStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MarketStore({mask_url(self.url)!r})"

    # transactions -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Connection]:
        """Groups writes into one transaction: all of them land, or none (an import that fails half-way)."""
        current = self._active.get()
        if current is not None:
            yield current
            return
        with translated(self.url, STORE_SETTING), self.engine.begin() as conn:
            token = self._active.set(conn)
            try:
                yield conn
            finally:
                self._active.reset(token)

    @contextlib.contextmanager
    def _market_read(self) -> Iterator[Connection]:
        if self.gds_engine is not None:
            with translated(self._gds_url, GDS_SETTING), self.gds_engine.connect() as conn:
                yield conn
        else:
            with self._read() as conn:
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        current = self._active.get()
        if current is not None:
            yield current
        else:
            with translated(self.url, STORE_SETTING), self.engine.connect() as conn:
                yield conn

    def require_writable(self) -> None:
        """Raises StoreError when the market tables are read in place from a GDS database."""
        if self.gds_engine is not None:
            msg = ("the market tables are read in place from the GDS database (ATLAS_GDS_URL), which Atlas never "
                   "writes; to import data, unset ATLAS_GDS_URL or copy it with `atlas data import gds`")
            raise StoreError(msg)

    def _log(self, conn: Connection, exchange: Exchange, kind: str, times: pd.DatetimeIndex, source: str, *,
             invalidate: bool = True) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        first, last = times.min().floor("us"), times.max().floor("us")  # the store keeps microseconds
        if invalidate:  # logged in the order watermark moves see it (see advance_watermark)
            _series.lock_watermarks(conn)
        conn.execute(schema.ingest.insert().values(
            exchange=exchange.name, kind=kind, rows=len(times), source=source[:255], created_at=now,
            first_timestamp=first.tz_convert("UTC").tz_localize(None).to_pydatetime(),
            last_timestamp=last.tz_convert("UTC").tz_localize(None).to_pydatetime()))
        if invalidate:  # market data: the metric buckets from `first` on must be computed again
            _series.lower_watermarks(conn, exchange.name, first)

    def venues(self) -> Venues:
        """The venues this store knows, by Atlas's one rule (:class:`~atlas.data.exchanges.Venues`): built in,
        configured (``extra_venues``, from ``ATLAS_EXTRA_VENUES``), and present here (market tables or metric
        series: a venue imported with ``--new-venue``, bars only included)."""
        return Venues(configured=self.extra_venues, stored=tuple(_venue_of(name) for name in self.exchanges()))

    def known_exchange(self, exchange: str | Exchange, *, pair: str = DEFAULT_PAIR,
                       used_by: str | None = None) -> Exchange:
        """The exchange ``exchange`` names, if its venue is known: built in, configured, or present in the store.

        The store is read only for a venue neither built in nor configured: its metric series first (a small
        table), then its market tables.

        Args:
            exchange: a venue, ``venue_base_quote``, or an :class:`Exchange`.
            pair: the pair used when ``exchange`` names a venue only.
            used_by: what reads the exchange (a feature's name), for the message.

        Raises:
            UnknownExchangeError: the venue is in none of those places; the message names the known venues, the
                closest ones, and how to add one (``--new-venue`` on import, or ``ATLAS_EXTRA_VENUES``).
        """
        wanted = Exchange.read(exchange, pair=pair)
        configured = Venues(configured=self.extra_venues)
        if wanted.venue in configured:
            return wanted
        with self._read() as conn:
            in_series = {_venue_of(name) for name in _series.exchanges(conn)}
        if wanted.venue in in_series:
            return wanted
        return self.venues().check(exchange, pair=pair, used_by=used_by)

    def _stored_exchange(self, exchange: str | Exchange) -> Exchange:
        """An exchange argument of a read or a write: a name must be of a known venue (:meth:`known_exchange`); an
        :class:`Exchange` was accepted by its caller (an importer with ``new_venue=True``, a series key)."""
        return exchange if isinstance(exchange, Exchange) else self.known_exchange(exchange)

    # market data --------------------------------------------------------------------------------------------

    def write_orderbooks(self, exchange: str | Exchange, books: BookBatch, *, on_invalid: str = "raise",
                         source: str = "import") -> WriteReport:
        """Stores order-book snapshots after checking every rule (see :meth:`BookBatch.validate`).

        Args:
            exchange: the exchange, e.g. ``"bitstamp"`` or ``"BITSTAMP_BTC_USD"``.
            books: the snapshots, in time order.
            on_invalid: ``"raise"`` (nothing is written) or ``"skip"`` (bad snapshots are dropped and counted).
            source: a note for the ingest log.

        Raises:
            DataValidationError: a snapshot breaks a rule and ``on_invalid="raise"``.
        """
        self.require_writable()
        exchange = self._stored_exchange(exchange)
        check_choice("on_invalid", on_invalid, ("raise", "skip"))
        skipped: dict[str, int] = {}
        if on_invalid == "skip":
            invalid = books.invalid_rows()
            skipped = invalid.value_counts().to_dict()
            keep = pd.Index(range(len(books))).difference(invalid.index)
            books = books.take(keep.to_numpy())
        _require_utc(books.times, "order book")
        books.validate()
        if len(books):
            with self.atomic() as conn:
                _market.write_orderbooks(conn, exchange, books)
                self._log(conn, exchange, "orderbook", books.times, source)
        return WriteReport(len(books), skipped)

    def write_trades(self, exchange: str | Exchange, trades: pd.DataFrame, *, on_invalid: str = "raise",
                     on_duplicate: str = "raise", source: str = "import") -> WriteReport:
        """Stores trades: ``timestamp`` (UTC), ``price``, ``volume`` and a unique ``exchange_trade_id``.

        Args:
            on_invalid: ``"raise"`` or ``"skip"`` rows that break a rule (non-positive price or volume, a repeated id).
            on_duplicate: for trades already in the store: ``"raise"`` (nothing is written) or ``"skip"``.

        Raises:
            DataValidationError: a row breaks a rule, or a trade is already stored, and the option says raise.
        """
        self.require_writable()
        exchange = self._stored_exchange(exchange)
        check_choice("on_invalid", on_invalid, ("raise", "skip"))
        check_choice("on_duplicate", on_duplicate, ("raise", "skip"))
        missing = {"timestamp", "price", "volume", "exchange_trade_id"} - set(trades.columns)
        if missing:
            msg = f"trades lack the columns {sorted(missing)}; expected timestamp, price, volume, exchange_trade_id"
            raise DataValidationError(msg, rule="missing_columns")
        skipped: dict[str, int] = {}
        if on_invalid == "skip":
            bad, skipped = _market.invalid_trade_rows(trades)
            if bad.any():
                trades = trades.loc[~bad]
        _require_utc(trades["timestamp"], "trade")
        _market.check_trades(trades)
        if trades.empty:
            return WriteReport(0, skipped)
        with self.atomic() as conn:
            if on_duplicate == "raise":
                ids = trades["exchange_trade_id"].astype(str).tolist()
                existing = _market.existing_trade_ids(conn, exchange, trades)
                if existing:
                    held = set(existing)
                    row = next(k for k, i in enumerate(ids) if i in held)
                    msg = (f"trade row {row} (exchange_trade_id {ids[row]!r}) is already in the store for "
                           f"{exchange.name}, as are {len(existing) - 1} more (rule duplicate_trade); nothing was "
                           f"written. Re-importing? Pass on_duplicate='skip' (--skip-existing)")
                    raise DataValidationError(msg, rule="duplicate_trade", row=row)
            try:
                written = _market.write_trades(conn, exchange, trades, source=source,
                                               skip_existing=on_duplicate == "skip")
            except IntegrityError:  # the same id stored at another time: name it from a fresh connection
                ids = trades["exchange_trade_id"].astype(str).tolist()
                with self.engine.connect() as fresh:
                    existing = _market.stored_trade_ids(fresh, exchange, ids) or ["?"]
                held = set(existing)
                row = next((k for k, i in enumerate(ids) if i in held), None)
                shown = ids[row] if row is not None else "?"
                msg = (f"trade row {row} (exchange_trade_id {shown!r}) is already in the store for "
                       f"{exchange.name} at another time (rule duplicate_trade); nothing was written. "
                       f"Re-importing? Pass on_duplicate='skip' (--skip-existing)")
                raise DataValidationError(msg, rule="duplicate_trade", row=row) from None
            if written:
                self._log(conn, exchange, "trade", pd.DatetimeIndex(trades["timestamp"]), source)
        if len(trades) - written:
            skipped["already_stored"] = len(trades) - written
        return WriteReport(written, skipped)

    def write_exchange_volume(self, exchange: str | Exchange, volume: pd.Series, *, source: str = "import") -> int:
        """Stores an exchange's reported (24-hour) volume, a Series indexed by UTC time."""
        self.require_writable()
        exchange = self._stored_exchange(exchange)
        _require_utc(volume.index, "exchange volume")
        values = volume.to_numpy(dtype=float)
        for rule, mask, words in _market.volume_problems(values):
            if mask.any():
                row = int(np.flatnonzero(mask)[0])
                msg = (f"exchange volume row {row} ({values[row]}) {words} (rule {rule}); volumes are zero or more "
                       f"and below {_market.NUMERIC_LIMIT:.0e}")
                raise DataValidationError(msg, rule=rule, row=row)
        frame = pd.DataFrame({"timestamp": pd.DatetimeIndex(volume.index), "exchange_volume": values})
        if len(frame):
            with self.atomic() as conn:
                _market.write_exchange_volume(conn, exchange, frame)
                self._log(conn, exchange, "exchange_volume", pd.DatetimeIndex(frame["timestamp"]), source)
        return len(frame)

    def read_orderbook_text(self, exchange, start=None, end=None) -> tuple[pd.DatetimeIndex, list, list]:
        """Snapshots with ``start < timestamp <= end`` as stored: times and the GDS JSON of each side."""
        exchange = self._stored_exchange(exchange)
        with self._market_read() as conn:
            return _market.read_orderbook_text(conn, exchange, start, end)

    def read_orderbook_times(self, exchange, start=None, end=None) -> tuple[np.ndarray, pd.DatetimeIndex]:
        """Row ids and times of the snapshots with ``start < timestamp <= end``, without their JSON."""
        exchange = self._stored_exchange(exchange)
        with self._market_read() as conn:
            return _market.read_orderbook_times(conn, exchange, start, end)

    def read_orderbook_sides(self, ids) -> tuple[list, list]:
        """The GDS JSON (bids, asks) of the snapshots with these row ids, in the order given."""
        with self._market_read() as conn:
            return _market.read_orderbook_sides(conn, ids)

    def read_orderbooks(self, exchange, start=None, end=None) -> BookBatch:
        """Snapshots with ``start < timestamp <= end``, parsed. Rule checks: :meth:`BookBatch.invalid_rows`."""
        return BookBatch.from_json(*self.read_orderbook_text(exchange, start, end))

    def read_trades(self, exchange, start=None, end=None) -> pd.DataFrame:
        """Trades with ``start < timestamp <= end``: timestamp, price, volume, exchange_trade_id."""
        exchange = self._stored_exchange(exchange)
        with self._market_read() as conn:
            return _market.read_trades(conn, exchange, start, end)

    def read_exchange_volume(self, exchange, start=None, end=None) -> pd.Series:
        exchange = self._stored_exchange(exchange)
        with self._market_read() as conn:
            return _market.read_exchange_volume(conn, exchange, start, end)

    def summary(self) -> pd.DataFrame:
        """Rows, first and last timestamp per exchange and market table."""
        with self._market_read() as conn:
            return _market.summary(conn)

    def exchanges(self) -> list[str]:
        """The exchanges with data, GDS names: in the market tables or in metric series (imported bars)."""
        with self._market_read() as conn:
            market = {row[0] for table in schema.MARKET_TABLES
                      for row in conn.execute(text(f"SELECT DISTINCT exchange FROM {table}"))}
        with self._read() as conn:
            series = set(_series.exchanges(conn))
        return sorted(market | series)


def _venue_of(name: str) -> str:
    """The venue of an exchange name as stored (``CME_ES_USD``: ``cme``)."""
    return str(name).split("_")[0].lower()


def _identity(engine: Engine) -> str:
    """The store's identity: read, or made when the store is new (two processes creating it agree on one)."""
    facts = schema.store_facts
    query = select(facts.c.value).where(facts.c.key == "store_id")
    with engine.connect() as conn:
        found = conn.execute(query).scalar()
    if found is None:
        try:
            with engine.begin() as conn:
                conn.execute(facts.insert().values(key="store_id", value=uuid.uuid4().hex))
        except IntegrityError:  # another process made it first: take theirs
            pass
        with engine.connect() as conn:
            found = conn.execute(query).scalar()
    return found


def _require_utc(times, what: str) -> None:
    index = pd.DatetimeIndex(times)
    if len(index) and index.tz is None:
        msg = (f"{what} timestamps are naive (no time zone), e.g. row 0: {index[0]}; the store keeps UTC and does not "
               f"guess zones: convert them with atlas.data.timestamps.to_utc(values, tz=...) first")
        raise DataValidationError(msg, rule="naive_timestamp", row=0)


