"""Feeds: where the runner's buckets come from.

* :class:`StoreReplay` replays the metric series of the market store, bucket by bucket, as fast as possible or paced
  in real time (``speed``): what was computed for training is what is served.
* :class:`RedisFeed` reads the live order books that Gryphon's data service keeps in Redis (``<exchange>_orderbook``)
  and, at each bucket close, buckets them with the metric pipeline's own pure function
  (:func:`atlas.data.metrics.bucket_metrics`): the same sampling, staleness and bad-snapshot rules as training. An
  order book older than Gryphon's 10 seconds at a bucket's close marks the bucket stale: no prediction is made from
  it. Both warm up from the store: the history that the featuresets' lookbacks and windows need.

A feed yields :class:`Bucket` values: the bucket's time, every series' value, and what was wrong with it.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from atlas.data.buckets import parse_width
from atlas.data.series import SeriesKey
from atlas.data.timestamps import utc_timestamp

log = logging.getLogger("serving")


@dataclass
class Bucket:
    """One closed bucket of a feed.

    Attributes:
        bucket: the bucket's time (it covers ``(bucket - width, bucket]``).
        values: each series' value (by ``exchange.width.metric`` name); a series without one is missing.
        stale: the exchanges whose latest order book was older than the feed's limit at the bucket's close.
        skipped: order books read and skipped, by rule (``malformed_json``, ``crossed_book``, ...).
    """

    bucket: pd.Timestamp
    values: dict[str, float]
    stale: tuple[str, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)


def warmup_frame(store, names: Iterable[str], *, end: pd.Timestamp, buckets: int, width: pd.Timedelta
                 ) -> pd.DataFrame:
    """The ``buckets`` buckets up to and including ``end`` of every series, from the store (NaN where missing)."""
    index = pd.date_range(end - (buckets - 1) * width, end, freq=width, name="bucket").as_unit("ns")
    return _read(store, names, index)


def _read(store, names: Iterable[str], index: pd.DatetimeIndex) -> pd.DataFrame:
    stored = set(store.series_registry()["name"])
    columns = {}
    for name in sorted(set(names)):
        values = store.read_series(name, index[0], index[-1]) if name in stored else pd.Series(dtype=float)
        columns[name] = values.reindex(index).astype(np.float64)
    return pd.DataFrame(columns, index=index)


class StoreReplay:
    """Replays stored metric series from ``start`` to ``end``.

    Args:
        store: the market store.
        names: the series to replay.
        start: the first bucket served. end: the last.
        bucket: the bucket width.
        speed: None for as fast as possible; ``1.0`` paces one bucket per bucket width, ``60`` sixty times faster.
        sleep: how to wait (tests pass their own).
    """

    live = False

    def __init__(self, store, names: Iterable[str], *, start, end, bucket: str, speed: float | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.names = sorted(set(names))
        self.width = parse_width(bucket)
        self.start = utc_timestamp(start, what="start").ceil(self.width)
        self.end = utc_timestamp(end, what="end").floor(self.width)
        self.speed = speed
        self._sleep = sleep
        self._frame: pd.DataFrame | None = None

    def can_serve(self, names: Iterable[str]) -> list[str]:
        """The series of ``names`` this feed cannot give (the store lacks them)."""
        stored = set(self.store.series_registry()["name"])
        return sorted(set(names) - stored)

    def warmup(self, buckets: int, names: Iterable[str] | None = None) -> pd.DataFrame:
        """The ``buckets`` buckets before the first one served."""
        return warmup_frame(self.store, names or self.names, end=self.start - self.width, buckets=buckets,
                            width=self.width)

    def frame(self) -> pd.DataFrame:
        """Every bucket to be served, read once."""
        if self._frame is None:
            index = pd.date_range(self.start, self.end, freq=self.width, name="bucket").as_unit("ns")
            self._frame = _read(self.store, self.names, index)
        return self._frame

    def __iter__(self) -> Iterator[Bucket]:
        frame = self.frame()
        pace = None if not self.speed else self.width.total_seconds() / self.speed
        began = time.monotonic()
        names = list(frame.columns)
        for k, (bucket, row) in enumerate(zip(frame.index, frame.to_numpy(), strict=True)):
            if pace is not None:
                wait = began + k * pace - time.monotonic()
                if wait > 0:
                    self._sleep(wait)
            yield Bucket(bucket, {n: v for n, v in zip(names, row.tolist(), strict=True) if v == v})

    def close(self) -> None:
        """Nothing to release: the store belongs to the caller."""


_DEPTH = re.compile(r"^(spread|bid|ask|midpoint)(?:_d([0-9]+(?:\.[0-9]+)?))?$")
_SLIPPAGE = re.compile(r"^(bid_strength|ask_strength|bid_strength_value|ask_strength_value|imbalance)"
                       r"_s([0-9]+(?:\.[0-9]+)?)$")


def book_metric(metric: str) -> tuple[str, float] | None:
    """An order-book metric's parameter: ``("depth", d)`` or ``("slippage", s)``; None for any other metric
    (trade metrics, exchange volume), which order books alone cannot give.

    Example:
        >>> book_metric("midpoint_d1"), book_metric("imbalance_s10"), book_metric("volume")
        (('depth', 1.0), ('slippage', 10.0), None)
    """
    depth = _DEPTH.match(metric)
    if depth:
        return ("depth", float(depth.group(2) or 0.0))
    slippage = _SLIPPAGE.match(metric)
    return ("slippage", float(slippage.group(2))) if slippage else None


class RedisFeed:
    """Gryphon's live order books in Redis, bucketed at each bucket close.

    Args:
        client: a redis-py client (the runner makes it from ``--redis-url``).
        names: the series to compute: order-book metrics (``exchange.width.metric``).
        bucket: the bucket width.
        max_book_age: Gryphon's rule: a book older than this at a bucket's close is stale (10 s).
        staleness: the metric pipeline's sampling limit for the values (the same as training's).
        poll: seconds between reads of the books.
        clock: the time now, epoch seconds (tests pass their own). sleep: how to wait.
    """

    live = True

    def __init__(self, client, names: Iterable[str], *, bucket: str, max_book_age: float = 10.0,
                 staleness: str | None = None, poll: float = 0.25, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, store=None) -> None:
        self.client = client
        self.names = sorted(set(names))
        self.width = parse_width(bucket)
        self.max_book_age = float(max_book_age)
        self.staleness = max(self.width, pd.Timedelta("5min")) if staleness is None else parse_width(staleness)
        self.poll_seconds = float(poll)
        self._clock, self._sleep = clock, sleep
        self.store = store
        self.keys = [SeriesKey.parse(n) for n in self.names]
        self._width_name = SeriesKey.parse(self.names[0]).width if self.names else None
        self.exchanges = sorted({k.exchange.name for k in self.keys})
        self._books: dict[str, deque] = {e: deque(maxlen=4096) for e in self.exchanges}
        self.skipped: dict[str, int] = {}
        self._bad: dict[str, str] = {}
        self._stopped = False

    def can_serve(self, names: Iterable[str]) -> list[str]:
        """The series of ``names`` that order books cannot give (trade metrics, exchange volume, other widths)."""
        return sorted(n for n in names if SeriesKey.parse(n).width != self._width_name
                      or book_metric(SeriesKey.parse(n).metric) is None)

    def warmup(self, buckets: int, names: Iterable[str] | None = None) -> pd.DataFrame:
        """The ``buckets`` closed buckets before now, from the store; empty without a store."""
        end = pd.Timestamp(self._clock(), unit="s", tz="UTC").floor(self.width)
        if self.store is None:
            index = pd.date_range(end - (buckets - 1) * self.width, end, freq=self.width, name="bucket")
            return pd.DataFrame({n: np.nan for n in (names or self.names)}, index=index.as_unit("ns"))
        return warmup_frame(self.store, names or self.names, end=end, buckets=buckets, width=self.width)

    def poll(self) -> int:
        """Reads every exchange's book once; keeps the new ones. Returns how many were new."""
        from serving.gds import read_orderbooks

        new = 0
        errors: dict = {}
        books = read_orderbooks(self.client, self.exchanges, errors=errors)
        for exchange, error in errors.items():  # a broken book is counted once, however often it is read
            if self._bad.get(exchange) != str(error):
                self._bad[exchange] = str(error)
                self.skipped[error.rule] = self.skipped.get(error.rule, 0) + 1
        for exchange, book in books.items():
            if book is None:
                continue
            stamp = pd.Timestamp(book.timestamp).value
            kept = self._books[exchange]
            if kept and stamp <= kept[-1][0]:
                continue
            kept.append((stamp, book.bids, book.asks))
            new += 1
        return new

    def close_bucket(self, bucket: pd.Timestamp) -> Bucket:
        """The bucket ending at ``bucket``, from the books read so far."""
        from atlas.data.metrics import BookSnapshots, bucket_metrics

        values: dict[str, float] = {}
        stale = []
        grid = np.array([pd.Timestamp(bucket).value], dtype=np.int64)
        for exchange in self.exchanges:
            books = [b for b in self._books[exchange] if b[0] <= grid[0]]
            if not books or (grid[0] - books[-1][0]) / 1e9 >= self.max_book_age:  # Gryphon: age >= 10 s is stale
                stale.append(exchange)
            metrics = bucket_metrics(grid, width=self.width, books=BookSnapshots.from_records(books),
                                     staleness=self.staleness, depths=self._depths(exchange),
                                     slippages=self._slippages(exchange)).values
            for key in self.keys:
                if key.exchange.name == exchange and key.metric in metrics:
                    value = float(metrics[key.metric][0])
                    if value == value:
                        values[key.name] = value
            self._forget(exchange, grid[0])
        skipped, self.skipped = self.skipped, {}
        return Bucket(pd.Timestamp(bucket), values, tuple(stale), skipped)

    def _forget(self, exchange: str, before: int) -> None:
        """Books older than the staleness limit before the last bucket can never be sampled again."""
        kept = self._books[exchange]
        while len(kept) > 1 and kept[1][0] <= before - self.staleness.value:
            kept.popleft()

    def _depths(self, exchange: str) -> tuple[float, ...]:
        found = {book_metric(k.metric) for k in self.keys if k.exchange.name == exchange}
        return tuple(sorted({d for kind, d in found - {None} if kind == "depth"} | {0.0}))

    def _slippages(self, exchange: str) -> tuple[float, ...]:
        found = {book_metric(k.metric) for k in self.keys if k.exchange.name == exchange}
        return tuple(sorted({s for kind, s in found - {None} if kind == "slippage"}))

    def __iter__(self) -> Iterator[Bucket]:
        """Polls the books and yields each bucket once its end has passed, until :meth:`close`."""
        next_end = pd.Timestamp(self._clock(), unit="s", tz="UTC").floor(self.width) + self.width
        while not self._stopped:
            self.poll()
            now = self._clock()
            if now >= next_end.timestamp():
                yield self.close_bucket(next_end)
                next_end += self.width
                if now >= next_end.timestamp():  # the runner fell behind: the buckets in between are gaps
                    behind = pd.Timestamp(now, unit="s", tz="UTC").floor(self.width)
                    log.warning("the feed fell %s behind; buckets up to %s are skipped", behind - next_end, behind)
                    next_end = behind + self.width
                continue
            self._sleep(min(self.poll_seconds, max(0.0, next_end.timestamp() - now)))

    def close(self) -> None:
        self._stopped = True


__all__ = ["Bucket", "RedisFeed", "StoreReplay", "warmup_frame"]
