"""The metric pipeline: order books, trades and exchange volume in, metric series out, incrementally."""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from atlas.data.buckets import bucket_floor, parse_width, width_name
from atlas.data.exchanges import Exchange
from atlas.data.metrics._bucketing import TICK_CONTEXT, TRADE_METRICS, BookSnapshots, bucket_metrics
from atlas.data.metrics._orderbook import book_metrics
from atlas.data.orderbooks import BookBatch
from atlas.data.series import SeriesKey
from atlas.data.store import MarketStore
from atlas.data.timestamps import utc_timestamp
from atlas.exceptions import ConfigError, MissingDataError


@dataclass(frozen=True)
class PipelineReport:
    """What one run computed for one exchange.

    Attributes:
        exchange: the GDS name.
        bucket: the bucket width's name.
        buckets: buckets computed (``0`` when the series were already up to date).
        values: metric values written.
        snapshots_read: order-book snapshots in the range (their times are read).
        snapshots_parsed: of those, the ones read and parsed: the last valid one at or before each bucket end.
        skipped: rows left out, by ``table.rule``: order books (``orderbook.crossed_book``,
            ``orderbook.malformed_json``, ...), trades (``trade.non_positive_price``, ...) and exchange volume
            (``exchange_volume.negative_volume``) that break the importers' rules, as a GDS database read in place
            may hold.
        first: the first bucket computed. last: the last one.
        seconds: wall time.
    """

    exchange: str
    bucket: str
    buckets: int = 0
    values: int = 0
    snapshots_read: int = 0
    snapshots_parsed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    seconds: float = 0.0


class MetricPipeline:
    """Buckets order books and trades into metric series, computing only buckets not yet computed.

    A bucket stamped ``t`` covers ``(t - width, t]``. Order-book metrics and exchange volume are sampled: the last
    valid snapshot at or before ``t`` and no older than ``max_staleness``. Trade metrics aggregate the bucket's
    trades. Rows that break a rule (a crossed book, malformed JSON, a trade without a positive price) are skipped
    and counted. Only buckets that have ended by the newest stored observation are computed; the next run picks up
    from there, and new data stored for an earlier time makes the buckets from that time on be computed again.

    Example:
        >>> from atlas.data import MarketStore
        >>> pipeline = MetricPipeline(MarketStore("sqlite://"), bucket="5min", depths=(0, 1), slippages=(10,))
        >>> pipeline.metric_names()[:4]
        ['spread', 'bid', 'ask', 'midpoint']

    Args:
        store: the market store, read and written.
        bucket: the bucket width, ``"1min"``, ``"5min"``, ``"1h"`` or any fixed pandas offset.
        depths: market-order sizes in base units for bid, ask and midpoint at depth (0 is the top of book).
        slippages: distances from the best price in quote units for strength and imbalance.
        max_staleness: the oldest a sampled observation may be; default the larger of the width and 5 minutes.
        chunk: how much time one read-compute-write step covers (bounded memory; one transaction each).
    """

    def __init__(self, store: MarketStore, *, bucket: str = "1min", depths: Sequence[float] = (0, 1, 5),
                 slippages: Sequence[float] = (0, 10, 50), max_staleness: str | None = None,
                 chunk: str = "1D") -> None:
        self.store = store
        self.width = parse_width(bucket)
        self.bucket = width_name(self.width)
        for label, values in (("depths", depths), ("slippages", slippages)):
            if any(not np.isfinite(v) or v < 0 for v in values):
                msg = f"{label} must be numbers >= 0, got {label}={list(values)}"
                raise ConfigError(msg)
        self.depths = tuple(sorted(set(float(d) for d in depths)))
        self.slippages = tuple(sorted(set(float(s) for s in slippages)))
        self.staleness = max(self.width, pd.Timedelta("5min")) if max_staleness is None else parse_width(
            max_staleness)
        self.chunk_buckets = max(1, int(parse_width(chunk) / self.width))

    def metric_names(self) -> list[str]:
        """The metrics each exchange gets, in order."""
        empty = BookBatch.from_levels(pd.DatetimeIndex([], tz="UTC"), [], [])
        names = list(book_metrics(empty, depths=self.depths, slippages=self.slippages))
        return [*names, *TRADE_METRICS, "exchange_volume"]

    def run(self, exchanges: Iterable[str] | None = None, *, start=None, end=None,
            progress: bool = False) -> list[PipelineReport]:
        """Computes the buckets each exchange lacks.

        Args:
            exchanges: which exchanges; all with market data by default.
            start: recompute from this time on, overwriting stored values (the watermark is left alone).
            end: compute no bucket after this time.
            progress: show a progress bar on stderr.

        Returns:
            One report per exchange.

        Raises:
            MissingDataError: an exchange has no market data in the store (with the ones that do).
        """
        # what the run reads is as of these writes: read first, so data arriving later keeps its buckets dirty
        versions = {name: self.store.market_version(_stored(name)) for name in self.store.exchanges()}
        extent = self._extents()
        names = self._select(exchanges, extent)
        self._refuse_bar_widths(names)
        plans = [self._plan(name, extent[name], start, end) for name in names]
        total = sum(len(grid) for _, grid, _ in plans)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="bucket", desc=f"metrics {self.bucket}", leave=False)
        try:
            return [self._run_one(name, grid, advance, bar, versions.get(name, 0)) for name, grid, advance in plans]
        finally:
            if bar is not None:
                bar.close()

    # planning -------------------------------------------------------------------------------------------------

    def _extents(self) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        summary = self.store.summary()
        grouped = summary.groupby("exchange").agg(first=("first", "min"), last=("last", "max"))
        return {name: (row["first"], row["last"]) for name, row in grouped.iterrows()}

    def _select(self, exchanges, extent) -> list[str]:
        if exchanges is None:
            return sorted(extent)
        chosen = []
        for given in exchanges:
            as_stored = _stored(given).name
            if as_stored in extent:  # even a venue Atlas does not know, once its data is in the store
                chosen.append(as_stored)
                continue
            name = self.store.known_exchange(given).name  # an unknown venue: did you mean ...
            close = difflib.get_close_matches(name, list(extent), n=2, cutoff=0.85)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            stored = ", ".join(sorted(extent)) or "none: import or simulate data first"
            msg = f"the store has no market data for {name}; {hint}exchanges with data: {stored}"
            raise MissingDataError(msg)
        return chosen

    def _refuse_bar_widths(self, names: list[str]) -> None:
        """Imported bars own their width: computing metrics there would overwrite their volume (checked again, in
        the same transaction, by every write)."""
        for name in names:
            self.store.require_owner(name, self.bucket, "metrics")

    def _plan(self, name: str, extent, start, end) -> tuple[str, np.ndarray, bool]:
        w = self.width.value
        first, last = extent
        lo = -((-first.value) // w) * w
        hi = bucket_floor(last.value, self.width)
        advance = start is None
        if start is not None:
            lo = max(lo, -((-utc_timestamp(start, what="start").value) // w) * w)
        else:
            mark = self.store.watermark(_stored(name), self.bucket)
            if mark is not None:
                lo = max(lo, mark.value + w)
        if end is not None:
            hi = min(hi, bucket_floor(utc_timestamp(end, what="end").value, self.width))
        grid = np.arange(lo, hi + 1, w, dtype=np.int64) if hi >= lo else np.array([], dtype=np.int64)
        return name, grid, advance

    # computing ------------------------------------------------------------------------------------------------

    def _run_one(self, name: str, grid: np.ndarray, advance: bool, bar, version: int) -> PipelineReport:
        began = time.perf_counter()
        exchange = _stored(name)
        totals = {"values": 0, "read": 0, "parsed": 0}
        skipped: dict[str, int] = {}
        for offset in range(0, len(grid), self.chunk_buckets):
            part = grid[offset:offset + self.chunk_buckets]
            values, read, parsed, bad = self._compute(exchange, part)
            with self.store.atomic():
                totals["values"] += self.store.write_series(values, owner="metrics")
                if advance:
                    self.store.advance_watermark(exchange, self.bucket, pd.Timestamp(int(part[-1]), tz="UTC"),
                                                 read=version)
            totals["read"] += read
            totals["parsed"] += parsed
            for rule, count in bad.items():
                skipped[rule] = skipped.get(rule, 0) + count
            if bar is not None:
                bar.update(len(part))
        stamp = (lambda i: pd.Timestamp(int(grid[i]), tz="UTC")) if len(grid) else (lambda i: None)
        return PipelineReport(name, self.bucket, len(grid), totals["values"], totals["read"], totals["parsed"],
                              skipped, stamp(0), stamp(-1), time.perf_counter() - began)

    def _compute(self, exchange: Exchange, grid: np.ndarray):
        """Reads one chunk's data from the store and buckets it (:func:`bucket_metrics` holds the rules)."""
        lo, hi = pd.Timestamp(int(grid[0]), tz="UTC"), pd.Timestamp(int(grid[-1]), tz="UTC")
        since = lo - self.staleness - pd.Timedelta(1, "ns")
        ids, times = self.store.read_orderbook_times(exchange, since, hi)
        books = BookSnapshots(times.as_unit("ns").asi8,
                              lambda positions: self.store.read_orderbook_sides(ids[positions]))
        values, bad, parsed = bucket_metrics(
            grid, width=self.width, books=books, staleness=self.staleness, depths=self.depths,
            slippages=self.slippages, trades=self.store.read_trades(exchange, lo - self.width - TICK_CONTEXT, hi),
            exchange_volume=self.store.read_exchange_volume(exchange, since, hi))
        index = pd.DatetimeIndex(grid, tz="UTC")
        series = {SeriesKey(exchange, self.bucket, metric): pd.Series(v, index=index) for metric, v in values.items()}
        return series, len(times), parsed, bad


def _stored(name: str) -> Exchange:
    """An exchange named as in the store: its venue was accepted when its data was written."""
    return Exchange.read(name)
