"""MarketStore: the façade over the market tables and the metric series."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from atlas.config import Settings
from atlas.data._checks import check_choice
from atlas.data.exchanges import Exchange
from atlas.data.orderbooks import BookBatch
from atlas.data.series import SeriesKey
from atlas.data.store import _market, _series
from atlas.data.store import _schema as schema
from atlas.exceptions import ConfigError, DataValidationError, StoreError, UnknownExchangeError


@dataclass(frozen=True)
class WriteReport:
    """What a write did: rows written, and rows skipped by rule (``{"crossed_book": 3}``)."""

    written: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy raises several types for a bad URL
        msg = f"store URL {url!r} is not a database URL ({error}); e.g. sqlite:///.atlas/market.db or postgresql+psycopg://user@host/db"
        raise ConfigError(msg) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # WAL: readers never wait for the writer
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=60000"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


class MarketStore:
    """Order books, trades and exchange volume in GDS's tables, and Atlas's metric series beside them.

    SQLite by default, PostgreSQL (or any SQLAlchemy database) by URL. With ``gds_url`` the market tables are read
    in place from a Gryphon Data Service database and only the metric series are written to ``url``.

    Example:
        >>> store = MarketStore("sqlite://")          # in memory
        >>> store.summary().empty
        True

    Args:
        url: SQLAlchemy URL of the Atlas store.
        gds_url: optional URL of a GDS database to read market data from in place (read only).
        extra_venues: venues accepted beside the built-in ones (``ATLAS_EXTRA_VENUES``), e.g. ``("cme",)``.
    """

    def __init__(self, url: str, *, gds_url: str | None = None, extra_venues: tuple[str, ...] = ()) -> None:
        self.url = url
        self.extra_venues = tuple(v.lower() for v in extra_venues)
        self.engine = _engine(url)
        self.gds_engine = _engine(gds_url) if gds_url else None
        self._active: contextvars.ContextVar[Connection | None] = contextvars.ContextVar("atlas_tx", default=None)
        tables = list(schema.atlas_metadata.tables.values())
        schema.atlas_metadata.create_all(self.engine, tables=tables)
        if self.gds_engine is None:
            schema.gds_metadata.create_all(self.engine)
        else:
            missing = set(schema.MARKET_TABLES) - set(inspect(self.gds_engine).get_table_names())
            if missing:
                msg = f"the GDS database at {gds_url!r} lacks the tables {sorted(missing)}; is it a GDS database?"
                raise StoreError(msg)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> MarketStore:
        """The store that the settings (``ATLAS_STORE_URL``, ``ATLAS_GDS_URL``) point at."""
        settings = settings or Settings.from_env()
        return cls(settings.store.url, gds_url=settings.store.gds_url, extra_venues=settings.store.extra_venues)

    def close(self) -> None:
        self.engine.dispose()
        if self.gds_engine is not None:
            self.gds_engine.dispose()

    def __enter__(self) -> MarketStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # transactions -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Connection]:
        """Groups writes into one transaction: all of them land, or none (an import that fails half-way)."""
        current = self._active.get()
        if current is not None:
            yield current
            return
        with self.engine.begin() as conn:
            token = self._active.set(conn)
            try:
                yield conn
            finally:
                self._active.reset(token)

    @contextlib.contextmanager
    def _market_read(self) -> Iterator[Connection]:
        if self.gds_engine is not None:
            with self.gds_engine.connect() as conn:
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
            with self.engine.connect() as conn:
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
        conn.execute(schema.ingest.insert().values(
            exchange=exchange.name, kind=kind, rows=len(times), source=source[:255], created_at=now,
            first_timestamp=first.tz_convert("UTC").tz_localize(None).to_pydatetime(),
            last_timestamp=last.tz_convert("UTC").tz_localize(None).to_pydatetime()))
        if invalidate:  # market data: the metric buckets from `first` on must be computed again
            _series.lower_watermarks(conn, exchange.name, first)

    def _stored_exchange(self, exchange: str | Exchange) -> Exchange:
        """An exchange to read: a known venue, or one whose data is in the store (imported as a new venue)."""
        try:
            return Exchange.parse(exchange, extra_venues=self.extra_venues)
        except UnknownExchangeError:
            own = Exchange.parse(exchange, extra_venues=(str(exchange).split("_")[0].lower(),))
            if own.name in self.summary()["exchange"].tolist():
                return own
            raise

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
        exchange = Exchange.parse(exchange, extra_venues=self.extra_venues)
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
        exchange = Exchange.parse(exchange, extra_venues=self.extra_venues)
        check_choice("on_invalid", on_invalid, ("raise", "skip"))
        check_choice("on_duplicate", on_duplicate, ("raise", "skip"))
        missing = {"timestamp", "price", "volume", "exchange_trade_id"} - set(trades.columns)
        if missing:
            msg = f"trades lack the columns {sorted(missing)}; expected timestamp, price, volume, exchange_trade_id"
            raise DataValidationError(msg, rule="missing_columns")
        skipped: dict[str, int] = {}
        if on_invalid == "skip":
            bad = _market.invalid_trade_rows(trades)
            if bad.any():
                skipped["invalid_trade"] = int(bad.sum())
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
                    row = min(ids.index(i) for i in set(existing))
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
                row = min((ids.index(i) for i in set(existing) if i in ids), default=None)
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
        exchange = Exchange.parse(exchange, extra_venues=self.extra_venues)
        _require_utc(volume.index, "exchange volume")
        values = volume.to_numpy(dtype=float)
        if (~(values >= 0)).any():
            row = int((~(values >= 0)).nonzero()[0][0])
            msg = f"exchange volume row {row} is negative or missing ({values[row]}); volumes are zero or more"
            raise DataValidationError(msg, rule="negative_volume", row=row)
        frame = pd.DataFrame({"timestamp": pd.DatetimeIndex(volume.index), "exchange_volume": values})
        if len(frame):
            with self.atomic() as conn:
                _market.write_exchange_volume(conn, exchange, frame)
                self._log(conn, exchange, "exchange_volume", pd.DatetimeIndex(frame["timestamp"]), source)
        return len(frame)

    def read_orderbook_text(self, exchange, start=None, end=None) -> tuple[pd.DatetimeIndex, list, list]:
        """Snapshots with ``start < timestamp <= end`` as stored: times and the GDS JSON of each side."""
        with self._market_read() as conn:
            return _market.read_orderbook_text(conn, self._stored_exchange(exchange),
                                               start, end)

    def read_orderbook_times(self, exchange, start=None, end=None) -> tuple[np.ndarray, pd.DatetimeIndex]:
        """Row ids and times of the snapshots with ``start < timestamp <= end``, without their JSON."""
        with self._market_read() as conn:
            return _market.read_orderbook_times(conn, self._stored_exchange(exchange), start, end)

    def read_orderbook_sides(self, ids) -> tuple[list, list]:
        """The GDS JSON (bids, asks) of the snapshots with these row ids, in the order given."""
        with self._market_read() as conn:
            return _market.read_orderbook_sides(conn, ids)

    def read_orderbooks(self, exchange, start=None, end=None) -> BookBatch:
        """Snapshots with ``start < timestamp <= end``, parsed. Rule checks: :meth:`BookBatch.invalid_rows`."""
        return BookBatch.from_json(*self.read_orderbook_text(exchange, start, end))

    def read_trades(self, exchange, start=None, end=None) -> pd.DataFrame:
        """Trades with ``start < timestamp <= end``: timestamp, price, volume, exchange_trade_id."""
        with self._market_read() as conn:
            return _market.read_trades(conn, self._stored_exchange(exchange), start, end)

    def read_exchange_volume(self, exchange, start=None, end=None) -> pd.Series:
        with self._market_read() as conn:
            return _market.read_exchange_volume(conn, self._stored_exchange(exchange),
                                                start, end)

    def summary(self) -> pd.DataFrame:
        """Rows, first and last timestamp per exchange and market table."""
        with self._market_read() as conn:
            return _market.summary(conn)

    def exchanges(self) -> list[str]:
        """The exchanges with market data, GDS names."""
        return sorted(self.summary()["exchange"].unique().tolist())

    # metric series ------------------------------------------------------------------------------------------

    def write_series(self, values: dict[SeriesKey | str, pd.Series]) -> int:
        """Upserts metric values by series (bucket-indexed, UTC); NaN values are not stored. Returns the count."""
        keyed = {k if isinstance(k, SeriesKey) else SeriesKey.parse(k): v for k, v in values.items()}
        with self.atomic() as conn:
            written = _series.write_values(conn, keyed)
            spans: dict[Exchange, list[pd.Timestamp]] = {}
            for key, series in keyed.items():
                present = series.dropna().index
                if len(present):
                    spans.setdefault(key.exchange, []).extend([present.min(), present.max()])
            for exchange, times in spans.items():  # the data version of these buckets moves on
                self._log(conn, exchange, "series", pd.DatetimeIndex(times), "series", invalidate=False)
            return written

    def read_series(self, name: str | SeriesKey, start=None, end=None) -> pd.Series:
        """One metric series with ``start <= bucket <= end``, indexed by bucket (UTC).

        Raises:
            KeyError: no such series, with the closest stored names.
        """
        name = str(name)
        with self._read() as conn:
            values = _series.read_values(conn, name, start, end)
            if values.empty and not _series.series_ids(conn, [SeriesKey.parse(name)], create=False):
                import difflib

                names = _series.registry(conn)["name"].tolist()
                close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else "; `atlas data info` lists the series"
                raise KeyError(f"no metric series {name!r} in the store{hint}")
        return values

    def series_registry(self) -> pd.DataFrame:
        """Every registered series: name, exchange, bucket_width, metric."""
        with self._read() as conn:
            return _series.registry(conn)

    def series_summary(self) -> pd.DataFrame:
        """Per series: first and last bucket, values, expected buckets, missing ones, coverage."""
        with self._read() as conn:
            return _series.summary(conn)

    def watermark(self, exchange: str | Exchange, width: str) -> pd.Timestamp | None:
        """The last bucket the metric pipeline has computed for ``exchange`` and ``width``."""
        with self._read() as conn:
            return _series.get_watermark(conn, self._stored_exchange(exchange).name, width)

    def set_watermark(self, exchange: str | Exchange, width: str, through: pd.Timestamp) -> None:
        with self.atomic() as conn:
            _series.set_watermark(conn, self._stored_exchange(exchange).name, width,
                                  through)

    def data_version(self, exchanges=None, start=None, end=None) -> int:
        """A number that grows with every write of market data or metric series (the newest ingest log id).

        Args:
            exchanges: only writes of these exchanges count.
            start: only writes reaching at or after this time count.
            end: only writes reaching at or before this time count.

        Returns:
            The id of the newest matching write, 0 if none: equal numbers mean the data in that range is unchanged.
        """
        names = None if exchanges is None else [self._stored_exchange(e).name for e in exchanges]
        with self._read() as conn:
            return _series.data_version(conn, names, start, end)


def _require_utc(times, what: str) -> None:
    index = pd.DatetimeIndex(times)
    if len(index) and index.tz is None:
        msg = (f"{what} timestamps are naive (no time zone), e.g. row 0: {index[0]}; the store keeps UTC and does not "
               f"guess zones: convert them with atlas.data.timestamps.to_utc(values, tz=...) first")
        raise DataValidationError(msg, rule="naive_timestamp", row=0)


