"""Order-book metrics, vectorized over every level of every snapshot at once.

For N snapshots in a :class:`~atlas.data.orderbooks.BookBatch`, each metric is one array of N values:

* ``bid``/``ask`` at depth ``d``: the volume-weighted price of a market order of ``d`` base units (a sell into the
  bids, a buy from the asks); ``d = 0`` is the best price. NaN when the book holds less than ``d``.
* ``midpoint`` at depth ``d``: the mean of the two.
* ``spread``: best ask minus best bid.
* ``bid_strength``/``ask_strength`` at slippage ``s``: the volume resting within ``s`` quote units of the best price
  (``s = 0``: the volume at the best price), and ``*_strength_value``: its quote value, sum of price x volume.
* ``imbalance`` at slippage ``s``: (bid strength - ask strength) / (bid strength + ask strength), in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atlas.data.orderbooks import BookBatch, BookSide
from atlas.data.series import metric_name

# A float tolerance for "within s of the best price": prices are decimals that binary floats round.
_PRICE_EPS = 1e-9


def _sum(rows: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per-snapshot sums (float even when there are no levels at all)."""
    return np.bincount(rows, weights=weights, minlength=n).astype(np.float64, copy=False)


def _volume_before(side: BookSide, rows: np.ndarray) -> np.ndarray:
    """The volume on better levels than each level, summed within its snapshot only.

    A running sum over all snapshots minus each snapshot's start would lose precision as the total grows, so the
    levels are laid out as a matrix (a block of snapshots at a time) and summed along each row.
    """
    counts = side.counts
    out = np.empty_like(side.volume)
    if not len(out):
        return out
    columns = np.arange(len(out)) - np.repeat(side.offsets[:-1], counts)
    width = int(counts.max())
    block = max(1, 4_000_000 // width)
    for first in range(0, len(counts), block):
        last = min(len(counts), first + block)
        a, b = side.offsets[first], side.offsets[last]
        matrix = np.zeros((last - first, width))
        matrix[rows[a:b] - first, columns[a:b]] = side.volume[a:b]
        out[a:b] = np.cumsum(matrix, axis=1)[rows[a:b] - first, columns[a:b]]
    return out - side.volume


def _depth_price(side: BookSide, rows: np.ndarray, n: int, depth: float) -> np.ndarray:
    volume = side.volume
    before = _volume_before(side, rows)
    fill = np.clip(depth - before, 0.0, volume)
    cost = _sum(rows, side.price * fill, n)
    filled = _sum(rows, fill, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        price = cost / filled
    price[filled < depth * (1 - 1e-12)] = np.nan
    return price


def _strength(side: BookSide, rows: np.ndarray, n: int, best: np.ndarray, slippage: float, *, bids: bool):
    limit = best[rows] - slippage - _PRICE_EPS if bids else best[rows] + slippage + _PRICE_EPS
    within = side.price >= limit if bids else side.price <= limit
    volume = np.where(within, side.volume, 0.0)
    strength = _sum(rows, volume, n)
    value = _sum(rows, volume * side.price, n)
    empty = side.counts == 0
    strength[empty] = np.nan
    value[empty] = np.nan
    return strength, value


def book_metrics(books: BookBatch, *, depths: Sequence[float] = (0,), slippages: Sequence[float] = ()
                 ) -> dict[str, np.ndarray]:
    """Every order-book metric of every snapshot, by metric name (``midpoint_d1``, ``bid_strength_s10``, ...).

    Args:
        books: the snapshots; sides sorted best first (BookBatch guarantees it).
        depths: market-order sizes in base units; 0 is the top of book.
        slippages: distances from the best price in quote units.

    Returns:
        One float array of ``len(books)`` values per metric; NaN where a side is empty or too thin.

    Example:
        >>> import pandas as pd
        >>> books = BookBatch.from_levels(pd.DatetimeIndex(["2024-01-01"], tz="UTC"),
        ...                               bids=[[(100, 1), (99, 3)]], asks=[[(101, 2), (103, 2)]])
        >>> m = book_metrics(books, depths=(0, 2), slippages=(1,))
        >>> float(m["bid_d2"][0]), float(m["ask_d2"][0]), float(m["imbalance_s1"][0])
        (99.5, 101.0, 0.333...)
    """
    n = len(books)
    bid_rows, ask_rows = books.bids.rows, books.asks.rows
    best_bid, best_ask = books.best_bid, books.best_ask
    out: dict[str, np.ndarray] = {"spread": best_ask - best_bid}
    for depth in depths:
        if depth == 0:
            bid, ask = best_bid, best_ask
        else:
            bid = _depth_price(books.bids, bid_rows, n, depth)
            ask = _depth_price(books.asks, ask_rows, n, depth)
        out[metric_name("bid", depth=depth)] = bid
        out[metric_name("ask", depth=depth)] = ask
        out[metric_name("midpoint", depth=depth)] = (bid + ask) / 2
    for slippage in slippages:
        bid_strength, bid_value = _strength(books.bids, bid_rows, n, best_bid, slippage, bids=True)
        ask_strength, ask_value = _strength(books.asks, ask_rows, n, best_ask, slippage, bids=False)
        out[metric_name("bid_strength", slippage=slippage)] = bid_strength
        out[metric_name("bid_strength_value", slippage=slippage)] = bid_value
        out[metric_name("ask_strength", slippage=slippage)] = ask_strength
        out[metric_name("ask_strength_value", slippage=slippage)] = ask_value
        with np.errstate(invalid="ignore", divide="ignore"):
            out[metric_name("imbalance", slippage=slippage)] = (bid_strength - ask_strength) / (
                bid_strength + ask_strength)
    return out
