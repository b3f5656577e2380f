"""The metric-series half of the market store: values, the registry, owners of widths, watermarks, versions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from atlas.data._checks import check_choice
from atlas.data.exchanges import Exchange
from atlas.data.series import SeriesKey
from atlas.data.store import _series
from atlas.exceptions import ConfigError, DataValidationError


class SeriesAccess:
    """Metric series, watermarks and data versions; mixed into :class:`~atlas.data.MarketStore`, whose
    transactions (``atomic``, ``_read``), ingest log (``_log``) and exchange lookup (``_stored_exchange``) it uses."""

    # metric series ------------------------------------------------------------------------------------------

    def write_series(self, values: dict[SeriesKey | str, pd.Series], *, owner: str | None = None,
                     source: str = "series") -> int:
        """Upserts metric values by series (bucket-indexed, UTC); NaN values are not stored. Returns the count.

        Args:
            values: series name (or key) -> values.
            owner: who writes: ``"bars"`` (an import of OHLCV bars) or ``"metrics"`` (the metric pipeline). Each
                exchange's series at one width belong to one of them: the other is refused, in the same
                transaction, so imported bars and computed metrics never overwrite each other.
            source: a note for the ingest log (an import names its file, so importing it again can replace it).

        Raises:
            DataValidationError: a value is infinite (rule ``non_finite_value``).
            ConfigError: ``owner`` is not the one that wrote these series.
        """
        keyed = {k if isinstance(k, SeriesKey) else SeriesKey.parse(k): v for k, v in values.items()}
        for key, series in keyed.items():
            numbers = series.to_numpy(dtype=np.float64)
            infinite = np.isinf(numbers)
            if infinite.any():
                at = series.index[int(np.flatnonzero(infinite)[0])]
                msg = (f"series {key.name} has an infinite value at {at} (rule non_finite_value), "
                       f"{int(infinite.sum())} in all; the store keeps finite numbers only: fix the source")
                raise DataValidationError(msg, rule="non_finite_value")
        with self.atomic() as conn:
            if owner is not None:
                check_choice("owner", owner, _series.OWNERS)
                for exchange, width in sorted({(k.exchange.name, k.width) for k in keyed}):
                    _require_owner(conn, exchange, width, owner)
            written = _series.write_values(conn, keyed)
            spans: dict[Exchange, list[pd.Timestamp]] = {}
            for key, series in keyed.items():
                present = series.dropna().index
                if len(present):
                    spans.setdefault(key.exchange, []).extend([present.min(), present.max()])
            for exchange, times in spans.items():  # the data version of these buckets moves on
                self._log(conn, exchange, "series", pd.DatetimeIndex(times), source, invalidate=False)
            return written

    def width_owner(self, exchange: str | Exchange, width: str) -> str | None:
        """Who writes ``exchange``'s series at ``width``: ``"bars"``, ``"metrics"`` or None (see write_series)."""
        name = self._stored_exchange(exchange).name
        with self._read() as conn:
            return _series.width_owner(conn, name, width)

    def require_owner(self, exchange: str | Exchange, width: str, owner: str) -> None:
        """Raises ConfigError when ``exchange``'s series at ``width`` belong to the other writer (see
        :meth:`write_series`): a command checks before it starts, and every write checks again."""
        name = self._stored_exchange(exchange).name
        with self._read() as conn:
            _require_owner(conn, name, width, owner)

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

    def series_gaps(self, names: list[str] | None = None) -> pd.DataFrame:
        """Where series lack buckets: every run of missing buckets between a series' first and last, longest first.

        Example:
            >>> from atlas.data import MarketStore
            >>> store = MarketStore("sqlite://")
            >>> hours = pd.date_range("2024-01-05 20:00", "2024-01-08 03:00", freq="1h", tz="UTC")
            >>> weekend = (hours >= "2024-01-06") & (hours <= "2024-01-07 23:00")
            >>> _ = store.write_series({"cme_es_usd.1h.close": pd.Series(1.0, index=hours[~weekend])})
            >>> gap = store.series_gaps().iloc[0]
            >>> str(gap.start), str(gap.end), int(gap.buckets), str(gap.duration)
            ('2024-01-06 00:00:00+00:00', '2024-01-07 23:00:00+00:00', 48, '2 days 00:00:00')

        Args:
            names: only these series; all by default.

        Returns:
            One row per gap: series, exchange, bucket_width, start and end (its first and last missing bucket),
            buckets (how many are missing) and duration (the time they cover). Only the bucket column of a series
            that lacks buckets is read, once.
        """
        with self._read() as conn:
            return _series.gaps(conn, names)

    def watermark(self, exchange: str | Exchange, width: str) -> pd.Timestamp | None:
        """The last bucket the metric pipeline has computed for ``exchange`` and ``width``."""
        name = self._stored_exchange(exchange).name
        with self._read() as conn:
            return _series.get_watermark(conn, name, width)

    def set_watermark(self, exchange: str | Exchange, width: str, through: pd.Timestamp) -> None:
        """Sets the watermark outright (tests, repairs); the pipeline moves it with :meth:`advance_watermark`."""
        name = self._stored_exchange(exchange).name
        with self.atomic() as conn:
            _series.set_watermark(conn, name, width, through)

    def market_version(self, exchange: str | Exchange) -> int:
        """The newest write of market data for ``exchange``: a metrics run reads it before it reads the data, and
        passes it to :meth:`advance_watermark`."""
        name = self._stored_exchange(exchange).name
        with self.atomic() as conn:
            _series.lock_watermarks(conn)
            return _series.market_version(conn, name)

    def advance_watermark(self, exchange: str | Exchange, width: str, through: pd.Timestamp, *,
                          read: int) -> pd.Timestamp:
        """Moves the watermark forward to ``through`` from what a run read (market data as of write ``read``):
        data that arrived meanwhile for an earlier time keeps its buckets to be computed again, so a metrics run
        and an import side by side never leave stale metrics behind. Same transaction as the values' write.

        Returns:
            The watermark set: ``through``, or the bucket before the earliest data that arrived meanwhile.
        """
        name = self._stored_exchange(exchange).name
        with self.atomic() as conn:
            _series.lock_watermarks(conn)
            return _series.advance_watermark(conn, name, width, through, read)

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

    def ingest_sources(self, prefix: str) -> list[str]:
        """The distinct ``source`` notes of the ingest log that start with ``prefix`` (a writer that names its
        writes, as the simulator does per day, finds here which of them landed)."""
        with self._read() as conn:
            return _series.ingest_sources(conn, prefix)

    def fingerprint(self, exchanges=None, start=None, end=None) -> str:
        """What a cache of data read from this store is keyed by: the store's :attr:`identity`, and the id and
        time of its newest write in the range (arguments as :meth:`data_version`).

        Equal fingerprints mean the same data: a store made again at the same URL has another identity, and a
        store restored from a copy that then takes other writes has other write times.
        """
        names = None if exchanges is None else [self._stored_exchange(e).name for e in exchanges]
        with self._read() as conn:
            version, written = _series.newest_write(conn, names, start, end)
        return f"{self.identity}/{version}/{written}"


def _require_owner(conn: Connection, exchange: str, width: str, owner: str) -> None:
    found = _series.width_owner(conn, exchange, width)
    if found is None or found == owner:
        return
    if owner == "bars":
        msg = (f"{exchange} has metrics computed at {width} by `atlas data metrics`: imported bars at that "
               f"width would overwrite their volume (and the pipeline would then refuse the width). Import "
               f"the bars at another width (--bucket), or under another exchange name")
    else:
        msg = (f"{exchange} has OHLCV bars imported at {width}: the metric pipeline's volume at that width "
               f"would overwrite the bars' volume; compute metrics at another width (e.g. --bucket 1min), or "
               f"choose the other exchanges with --exchanges")
    raise ConfigError(msg)
