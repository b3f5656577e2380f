"""The bucketing rules, as pure functions over data in memory: what the store pipeline and a live runner share.

A bucket stamped ``t`` covers ``(t - width, t]``. Order-book metrics and exchange volume are sampled: the last
valid observation at or before ``t`` and no older than the staleness limit. A bad snapshot (malformed JSON, a
crossed book, an empty side, ...) is replaced by the one before it and counted by rule. Trade metrics aggregate the
bucket's trades, each classified by the tick rule over the trades before it; trades that break a rule are left out
and counted. Trade flows are NaN in a bucket with neither a book nor a trade (the exchange was not there).

:class:`~atlas.data.metrics.MetricPipeline` feeds these functions from the store, chunk by chunk; a live runner
feeds them the few snapshots and trades it holds, one bucket at a time, and gets the same values.

Example:
    >>> import numpy as np, pandas as pd
    >>> books = BookSnapshots.from_records([
    ...     ("2024-01-01 00:00:50", '[["100", 1, ""]]', '[["101", 2, ""]]'),
    ...     ("2024-01-01 00:01:30", '[["102", 1, ""]]', '[["101", 2, ""]]'),  # crossed: replaced, counted
    ... ])
    >>> grid = pd.date_range("2024-01-01 00:01", periods=2, freq="1min", tz="UTC")
    >>> out = bucket_metrics(grid, width="1min", books=books, depths=(0,), slippages=())
    >>> out.values["midpoint"].tolist(), out.skipped
    ([100.5, 100.5], {'orderbook.crossed_book': 1})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import orjson
import pandas as pd

from atlas.data.buckets import bucket_labels, parse_width
from atlas.data.metrics._orderbook import book_metrics
from atlas.data.metrics._trades import tick_rule, trade_metrics
from atlas.data.orderbooks import BookBatch
from atlas.data.store._market import first_rule, trade_problems, volume_problems
from atlas.exceptions import DataValidationError

#: How far back before the first bucket the tick rule reads trades for the last price change (the pipeline passes
#: this much; a live runner should hold as much).
TICK_CONTEXT = pd.Timedelta("1h")

#: The trade metrics, in order.
TRADE_METRICS = ("volume", "vwap", "trade_count", "buy_volume", "sell_volume")

#: A reader of snapshot sides: positions (int64 array) -> (bids, asks), each GDS JSON text or lists of levels.
SideReader = Callable[[np.ndarray], tuple[Sequence, Sequence]]


@dataclass(frozen=True)
class BookSnapshots:
    """Order-book snapshots of one exchange in time order: their times, and a reader of their sides.

    Only the snapshots that buckets sample are read and parsed, so the store pipeline reads the sides of those
    alone; a live runner holds its few recent snapshots in memory (:meth:`from_records`).

    Attributes:
        times: snapshot times, int64 nanoseconds since the epoch (UTC), ascending.
        read: positions into :attr:`times` -> ``(bids, asks)``: GDS JSON text (``'[["100.5", 1.2, ""]]'``) or
            lists of ``(price, volume[, order_id])`` levels.
    """

    times: np.ndarray
    read: SideReader

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def from_sides(cls, times, bids: Sequence, asks: Sequence) -> BookSnapshots:
        """Snapshots held in memory: their times (sorted) and each one's bids and asks, text or levels."""
        stamps = _nanoseconds(times)
        if len(stamps) != len(bids) or len(stamps) != len(asks):
            msg = f"every snapshot needs a time, bids and asks, got {len(stamps)} times, {len(bids)} bids, " \
                  f"{len(asks)} asks"
            raise ValueError(msg)
        if (np.diff(stamps) < 0).any():
            msg = "snapshot times must be in ascending order; use BookSnapshots.from_records, which sorts them"
            raise ValueError(msg)
        bids, asks = list(bids), list(asks)
        return cls(stamps, lambda positions: ([bids[i] for i in positions], [asks[i] for i in positions]))

    @classmethod
    def from_records(cls, records: Iterable[tuple]) -> BookSnapshots:
        """Snapshots from ``(time, bids, asks)`` records in any order (a live runner's recent books).

        Example:
            >>> books = BookSnapshots.from_records([(pd.Timestamp("2024-01-01", tz="UTC"), [(100, 1)], [(101, 1)])])
            >>> len(books)
            1
        """
        records = list(records)
        stamps = _nanoseconds([r[0] for r in records])
        order = np.argsort(stamps, kind="stable")
        return cls.from_sides(stamps[order], [records[i][1] for i in order], [records[i][2] for i in order])


class BucketedMetrics(NamedTuple):
    """What :func:`bucket_metrics` computed: ``values, skipped, parsed = bucket_metrics(...)``.

    Attributes:
        values: one float array per metric, one value per bucket of the grid, NaN where there is none.
        skipped: rows left out by ``table.rule`` (``orderbook.crossed_book``, ``trade.non_positive_price``, ...).
        parsed: snapshots read and parsed (the ones buckets sampled, and bad ones replaced).
    """

    values: dict[str, np.ndarray]
    skipped: dict[str, int]
    parsed: int


def sample_positions(times: np.ndarray, grid: np.ndarray, staleness: pd.Timedelta | str | int) -> np.ndarray:
    """For each bucket end, the position of the last observation at or before it and fresh enough, or -1.

    Args:
        times: observation times, int64 ns, ascending.
        grid: bucket ends (labels), int64 ns.
        staleness: the oldest an observation may be, a ``pd.Timedelta``, offset text or int ns.

    Example:
        >>> sample_positions(np.array([10, 20, 50]), np.array([5, 20, 45, 100]), 25).tolist()
        [-1, 1, 1, -1]
    """
    limit = staleness if isinstance(staleness, int | np.integer) else parse_width(staleness).value
    times, grid = np.asarray(times, dtype=np.int64), np.asarray(grid, dtype=np.int64)
    position = np.searchsorted(times, grid, side="right") - 1
    fresh = position >= 0
    fresh[fresh] = times[position[fresh]] >= grid[fresh] - limit
    return np.where(fresh, position, -1)


def bucket_metrics(grid: np.ndarray | pd.DatetimeIndex, *, width: str | pd.Timedelta, books: BookSnapshots,
                   staleness: str | pd.Timedelta | None = None,
                   depths: Sequence[float] = (0,), slippages: Sequence[float] = (),
                   trades: pd.DataFrame | None = None, exchange_volume: pd.Series | None = None) -> BucketedMetrics:
    """Every metric of one exchange for the buckets of ``grid``: the rules of the metric pipeline, on given data.

    Args:
        grid: bucket labels, ascending: a ``DatetimeIndex`` or int64 ns (a live runner passes one bucket at
            each bucket close).
        width: the bucket width (``"1min"`` or a ``pd.Timedelta``).
        books: the snapshots, from at least ``staleness`` before the first bucket's end.
        staleness: the oldest a sampled snapshot or volume may be; default the larger of the width and 5 minutes.
        depths: market-order sizes in base units (0 is the top of book).
        slippages: distances from the best price in quote units.
        trades: ``timestamp``, ``price`` and ``volume`` columns in time order, from :data:`TICK_CONTEXT` before
            the first bucket on (the earlier ones only set the tick rule); None where the feed has no trades:
            then the trade metrics are absent, not zero.
        exchange_volume: reported volume by time; None: the metric is absent.

    Returns:
        :class:`BucketedMetrics`: the values by metric name (book metrics, then ``volume``, ``vwap``,
        ``trade_count``, ``buy_volume``, ``sell_volume``, ``exchange_volume``), the skipped rows, the snapshots
        parsed. Trades and exchange volume are counted as skipped only inside the grid's buckets.
    """
    width = parse_width(width)
    staleness = max(width, pd.Timedelta("5min")) if staleness is None else parse_width(staleness)
    grid = _nanoseconds(grid)
    values, parsed, bad = _sample_books(books, grid, staleness, tuple(depths), tuple(slippages))
    skipped = {f"orderbook.{rule}": count for rule, count in bad.items()}
    first, last = (int(grid[0]) - width.value, int(grid[-1])) if len(grid) else (0, -1)
    if trades is not None:
        flows, bad = _trade_flows(trades, grid, width, first, last)
        skipped |= bad
        alive = ~np.isnan(values.get("midpoint", np.full(len(grid), np.nan))) | (flows["trade_count"] > 0)
        values |= {metric: np.where(alive, flow, np.nan) for metric, flow in flows.items()}
    if exchange_volume is not None:
        values["exchange_volume"], bad = _sample_volume(exchange_volume, grid, staleness, first, last)
        skipped |= bad
    return BucketedMetrics(values, skipped, parsed)


def _sample_books(books: BookSnapshots, grid: np.ndarray, staleness: pd.Timedelta, depths: tuple,
                  slippages: tuple) -> tuple[dict[str, np.ndarray], int, dict[str, int]]:
    """Reads and parses only the snapshots that buckets sample; a bad one is replaced by the one before it."""
    times = np.asarray(books.times, dtype=np.int64)
    alive = np.ones(len(times), dtype=bool)
    bad: dict[str, int] = {}
    sides: dict[int, tuple] = {}
    while True:
        kept = np.flatnonzero(alive)
        position = sample_positions(times[kept], grid, staleness.value)
        chosen, slot = np.unique(kept[position[position >= 0]], return_inverse=True)
        missing = [i for i in chosen.tolist() if i not in sides]
        if missing:
            sides |= dict(zip(missing, zip(*books.read(np.asarray(missing, dtype=np.int64)))))
        texts = [sides[i] for i in chosen.tolist()]
        try:
            batch = _parse(times[chosen], [t[0] for t in texts], [t[1] for t in texts])
        except DataValidationError as error:
            alive[chosen[error.row]] = False
            bad[error.rule] = bad.get(error.rule, 0) + 1
            continue
        invalid = batch.invalid_rows()
        if invalid.empty:
            break
        alive[chosen[invalid.index.to_numpy()]] = False
        for rule, count in invalid.value_counts().items():
            bad[rule] = bad.get(rule, 0) + int(count)
    metrics = book_metrics(batch, depths=depths, slippages=slippages)
    has = position >= 0
    sampled = {}
    for metric, values in metrics.items():
        full = np.full(len(grid), np.nan)
        full[has] = values[slot]
        sampled[metric] = full
    return sampled, len(chosen), bad


def _parse(times: np.ndarray, bids: list, asks: list) -> BookBatch:
    """GDS JSON text as is; levels held in memory as JSON too, so every snapshot meets the same rules."""
    if not all(type(side) is str for side in (*bids, *asks)):
        bids, asks = ([_text(s) for s in side] for side in (bids, asks))
    return BookBatch.from_json(pd.DatetimeIndex(times, tz="UTC"), bids, asks)


def _text(side) -> str:
    if isinstance(side, str):
        return side
    if isinstance(side, bytes):
        return side.decode()
    try:
        return orjson.dumps(side, default=float, option=orjson.OPT_SERIALIZE_NUMPY).decode()  # Decimal too
    except TypeError:  # not levels at all: the JSON rule names it
        return str(side)


def _trade_flows(trades: pd.DataFrame, grid: np.ndarray, width: pd.Timedelta, first: int, last: int):
    """Trade metrics per bucket, trades breaking a rule left out (counted where the grid's buckets hold them)."""
    bad: dict[str, int] = {}
    # a GDS database read in place may hold what Atlas's importers refuse (a NULL or text price): skipped, and
    # counted once: by the call whose buckets hold it, not as the context a later call reads before its own
    if not len(grid):
        return {metric: np.array([]) for metric in TRADE_METRICS}, bad
    problems = trade_problems(trades["price"].to_numpy(), trades["volume"].to_numpy(), None)
    broken, _ = first_rule(problems, len(trades))
    if broken.any():
        stamps = _nanoseconds(trades["timestamp"])
        own = (stamps > first) & (stamps <= last)
        _, counts = first_rule({rule: mask & own for rule, mask in problems.items()}, len(trades))
        bad = {f"trade.{rule}": count for rule, count in counts.items()}
        trades = trades.loc[~broken]
    price = trades["price"].to_numpy()
    flows = trade_metrics(bucket_labels(_nanoseconds(trades["timestamp"]), width), price,
                          trades["volume"].to_numpy(), tick_rule(price), grid)
    return flows, bad


def _sample_volume(volume: pd.Series, grid: np.ndarray, staleness: pd.Timedelta, first: int, last: int):
    """Reported exchange volume sampled as a book is; a value breaking a rule is left out and counted."""
    bad: dict[str, int] = {}
    stamps = _nanoseconds(volume.index)
    broken = np.zeros(len(volume), dtype=bool)
    own = (stamps > first) & (stamps <= last)
    for rule, mask, _ in volume_problems(volume.to_numpy(dtype=np.float64)):
        if (mask & own).any():
            bad[f"exchange_volume.{rule}"] = int((mask & own).sum())
        broken |= mask
    values, stamps = volume.to_numpy(dtype=np.float64)[~broken], stamps[~broken]
    if not len(values):
        return np.full(len(grid), np.nan), bad
    position = sample_positions(stamps, grid, staleness.value)
    return np.where(position >= 0, values[np.maximum(position, 0)], np.nan), bad


def _nanoseconds(times) -> np.ndarray:
    """int64 ns since the epoch, UTC (naive times are read as UTC)."""
    if isinstance(times, np.ndarray) and times.dtype.kind in "iu":
        return times.astype(np.int64)
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        index = index.tz_localize("UTC")
    return index.as_unit("ns").asi8
