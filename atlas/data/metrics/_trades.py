"""Trade metrics per bucket: volume, VWAP, trade count, and buy and sell volume.

GDS trades carry no aggressor side, so Atlas classifies each trade by the tick rule (Lee and Ready, 1991): a trade
above the previous different price is a buy, below it a sell. Trades before the first price change of the data are
unclassified and count in ``volume`` but in neither ``buy_volume`` nor ``sell_volume``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def tick_rule(price: np.ndarray) -> np.ndarray:
    """+1 for a buy, -1 for a sell, 0 where no earlier price differs.

    Example:
        >>> tick_rule(np.array([10.0, 10.5, 10.5, 10.2, 10.2])).tolist()
        [0, 1, 1, -1, -1]
    """
    step = np.sign(np.diff(price, prepend=np.nan))
    step[~np.isfinite(step)] = 0
    signs = pd.Series(step).replace(0, np.nan).ffill().fillna(0)
    return signs.to_numpy(dtype=np.int8)


def trade_metrics(labels: np.ndarray, price: np.ndarray, volume: np.ndarray, side: np.ndarray,
                  grid: np.ndarray) -> dict[str, np.ndarray]:
    """Aggregates trades into the buckets of ``grid`` (sorted bucket labels, int64 ns).

    Args:
        labels: each trade's bucket label; trades whose label is not in ``grid`` are ignored.
        price: trade prices.
        volume: trade volumes, base units.
        side: +1 buy, -1 sell, 0 unclassified (see :func:`tick_rule`).
        grid: the buckets to report.

    Returns:
        ``volume``, ``vwap`` (NaN without trades), ``trade_count``, ``buy_volume``, ``sell_volume``, each one
        value per grid bucket.
    """
    position = np.searchsorted(grid, labels)
    inside = (position < len(grid)) & (grid[np.minimum(position, len(grid) - 1)] == labels)
    position, price, volume, side = position[inside], price[inside], volume[inside], side[inside]
    n = len(grid)
    total = np.bincount(position, weights=volume, minlength=n)
    notional = np.bincount(position, weights=price * volume, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = notional / total
    return {
        "volume": total,
        "vwap": vwap,
        "trade_count": np.bincount(position, minlength=n).astype(np.float64),
        "buy_volume": np.bincount(position, weights=volume * (side > 0), minlength=n),
        "sell_volume": np.bincount(position, weights=volume * (side < 0), minlength=n),
    }
