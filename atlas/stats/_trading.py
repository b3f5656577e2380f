"""The returns of trading a model's predictions: positions, costs, cumulative return, Sharpe, drawdown.

Overlapping labels. With a horizon ``h > 1`` the forward return of bucket ``t`` spans buckets ``t+1 .. t+h``, so
consecutive forward returns overlap and a series of them is not a series of per-bucket returns. Atlas trades
each prediction as one *trade* held for ``h`` buckets, in one of ``h`` staggered books (the book of bucket ``t``
is ``t mod h``, each with ``1/h`` of the capital): trade ``t`` returns ``position_t * forward_return_t`` minus
``cost_bps / 1e4 * |position_t - position_{t-h}|`` (its book's previous position; flat before the first). So:

* the Sharpe ratio is the per-trade mean over standard deviation of all trades, annualized with the trades *one
  book* makes in a year, ``periods_per_year / h``: each trade is counted once, and a series whose per-bucket
  Sharpe is ``S`` has the same annualized Sharpe for every horizon (never ``sqrt(h)`` times too large);
* the cumulative return and the equity curve are those of the staggered books together, ``sum(trades) / h``,
  each trade's result booked at the bucket it opens; the maximum drawdown is read off that curve;
* the turnover is the position change per bucket of the staggered books, ``sum(|change|) / h / buckets``.

With ``h = 1`` all of this is the plain per-bucket strategy. Returns add up (log returns add exactly; simple
returns are summed, not compounded). A trade whose forward return is unknown (NaN) has a NaN return: it is left
out of the Sharpe ratio and the hit rate and adds nothing to the equity curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atlas.exceptions import ConfigError
from atlas.stats._calendar import CRYPTO, Calendar
from atlas.stats._checks import check_count, check_floats, check_labels, check_number

_NAMED = {"down": -1.0, "flat": 0.0, "up": 1.0}


def class_positions(class_names) -> np.ndarray:
    """The position each class trades: by name when every name is ``"down"``, ``"flat"`` or ``"up"`` (with an
    ``"up"`` and a ``"down"``), else by order: the highest class long, the lowest short, any middle class flat.

    Example:
        >>> class_positions(("down", "flat", "up")).tolist(), class_positions(("sell", "buy")).tolist()
        ([-1.0, 0.0, 1.0], [-1.0, 1.0])
    """
    names = [str(c).lower() for c in class_names]
    if len(names) < 2:
        msg = f"a classifier's positions need two or more classes, got class_names={tuple(class_names)}"
        raise ConfigError(msg)
    if set(names) <= set(_NAMED) and {"up", "down"} <= set(names) and len(set(names)) == len(names):
        return np.array([_NAMED[n] for n in names])
    out = np.zeros(len(names))
    out[0], out[-1] = -1.0, 1.0
    return out


def positions(y_pred, *, class_names=None) -> np.ndarray:
    """Positions -1, 0, +1 from predictions: the sign of a regressor's value, or its class's position
    (:func:`class_positions`) when ``class_names`` is given.

    Example:
        >>> positions([0.3, -0.1, 0.0]).tolist()
        [1.0, -1.0, 0.0]
        >>> positions([2, 0, 1], class_names=("down", "flat", "up")).tolist()
        [1.0, -1.0, 0.0]
    """
    if class_names is None:
        return np.sign(check_floats("y_pred", y_pred))
    table = class_positions(class_names)
    return table[check_labels("y_pred", y_pred, len(table))]


def trade_returns(positions, forward_return, *, horizon: int = 1, cost_bps: float = 1.0) -> np.ndarray:
    """The net return of each trade: ``position * forward_return - cost_bps/1e4 * |change|``, the change taken
    against the position ``horizon`` buckets earlier (see the module docstring); NaN where the return is unknown.

    Example:
        >>> trade_returns([1, 1, -1], [0.002, -0.001, -0.003], cost_bps=10).round(6).tolist()
        [0.001, -0.001, 0.001]
    """
    held = check_floats("positions", positions)
    forward = check_floats("forward_return", forward_return, length=len(held), allow_nan=True)
    horizon = check_count("horizon", horizon, minimum=1)
    cost = check_number("cost_bps", cost_bps, low=0) / 1e4
    before = np.r_[np.zeros(min(horizon, len(held))), held[:-horizon]] if len(held) else held
    return held * forward - cost * np.abs(held - before)


@dataclass(frozen=True, eq=False)
class TradingStatistics:
    """What :func:`trading_statistics` finds; :meth:`headline` flattens it for MLflow.

    Attributes:
        trades: trades with a known return.
        cumulative_return: the staggered books' summed return over the window.
        sharpe: the annualized Sharpe ratio (NaN with fewer than two trades or returns that never vary).
        sharpe_per_trade: the same, not annualized: mean over standard deviation of the trades' returns.
        max_drawdown: the largest fall of the equity curve from an earlier peak (a positive number; 0 if none).
        hit_rate: the share of trades with a position (long or short) whose gross return is positive.
        turnover: the position change per bucket (2 for a flip from long to short every bucket at ``h = 1``).
        equity: the equity curve, one value per bucket (starting from 0 before the first).
    """

    trades: int
    cumulative_return: float
    sharpe: float
    sharpe_per_trade: float
    max_drawdown: float
    hit_rate: float
    turnover: float
    equity: np.ndarray

    def headline(self) -> dict[str, float]:
        """``cumulative_return``, ``sharpe``, ``max_drawdown``, ``hit_rate`` and ``turnover``."""
        return {"cumulative_return": self.cumulative_return, "sharpe": self.sharpe,
                "max_drawdown": self.max_drawdown, "hit_rate": self.hit_rate, "turnover": self.turnover}


def trading_statistics(positions, forward_return, *, bucket_width: str, horizon: int = 1, cost_bps: float = 1.0,
                       calendar: Calendar = CRYPTO) -> TradingStatistics:
    """Trades the positions for ``horizon`` buckets each and measures the result (see the module docstring).

    Example:
        >>> stats = trading_statistics([1, -1, 1, 1], [0.01, -0.02, 0.005, -0.004], bucket_width="1D",
        ...                            cost_bps=0)
        >>> round(stats.cumulative_return, 3), stats.hit_rate, stats.turnover, round(stats.max_drawdown, 3)
        (0.031, 0.75, 1.25, 0.004)
        >>> round(stats.sharpe, 2)  # daily trades, annualized over the default calendar's 365 days
        14.79

    Args:
        positions: the position of each bucket's trade, e.g. -1, 0, +1 from :func:`positions`.
        forward_return: each bucket's realized forward return over ``horizon`` buckets; NaN where unknown.
        bucket_width: the bucket width (``"1min"``), for the annualization.
        horizon: the buckets each trade is held: the label's lookforward.
        cost_bps: the cost of a unit change of position, in basis points (default 1).
        calendar: the market's trading year (default :data:`CRYPTO`, 365 days of 24 hours).

    Raises:
        ConfigError: lengths that differ, NaN positions, or a width, horizon or cost that is not valid.
    """
    returns = trade_returns(positions, forward_return, horizon=horizon, cost_bps=cost_bps)
    held = np.asarray(positions, dtype=np.float64)
    forward = np.asarray(forward_return, dtype=np.float64)
    per_trade = float(sharpe_ratios(returns[None, :])[0])
    equity = np.cumsum(np.nan_to_num(returns)) / horizon
    peaks = np.maximum.accumulate(np.r_[0.0, equity])[1:]
    active = (held != 0) & ~np.isnan(forward)
    n = len(returns)
    before = np.r_[np.zeros(min(horizon, n)), held[:-horizon]] if n else held
    return TradingStatistics(
        trades=int((~np.isnan(returns)).sum()), cumulative_return=float(equity[-1]) if n else 0.0,
        sharpe=per_trade * math.sqrt(calendar.periods_per_year(bucket_width) / horizon),
        sharpe_per_trade=per_trade, max_drawdown=float((peaks - equity).max()) if n else 0.0,
        hit_rate=float((held[active] * forward[active] > 0).mean()) if active.any() else math.nan,
        turnover=float(np.abs(held - before).sum() / horizon / n) if n else math.nan, equity=equity)


def sharpe_ratios(returns: np.ndarray) -> np.ndarray:
    """Per-row Sharpe ratios (mean over ``ddof=1`` standard deviation) of a 2-d array, NaN entries left out.

    A row with fewer than two finite returns, or whose returns never vary, has a NaN ratio.

    Example:
        >>> sharpe_ratios(np.array([[0.01, 0.03, np.nan], [0.0, 0.0, 0.0]])).round(3).tolist()
        [1.414, nan]
    """
    returns = np.asarray(returns, dtype=np.float64)
    finite = ~np.isnan(returns)
    if finite.all() and returns.shape[1] > 1:  # the common case, without the masking
        mean = returns.mean(axis=1)
        deviation = returns - mean[:, None]
        std = np.sqrt(np.einsum("ij,ij->i", deviation, deviation) / (returns.shape[1] - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(std > 1e-14 * np.maximum(np.abs(mean), 1e-300), mean / std, np.nan)
    count = finite.sum(axis=1)
    filled = np.where(finite, returns, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = filled.sum(axis=1) / count
        deviation = np.where(finite, returns - mean[:, None], 0.0)
        std = np.sqrt((deviation ** 2).sum(axis=1) / (count - 1))
        ratio = mean / std
    return np.where((count > 1) & (std > 1e-14 * np.maximum(np.abs(mean), 1e-300)), ratio, np.nan)
