"""Prices and their changes: midpoints, bar closes, returns and volatility.

Returns read one price series, chosen by ``.price(...)``: the order-book ``"midpoint"`` (the default, at
``.depth(d)``), the bar ``"close"`` (bar-only data, such as imported OHLCV bars) or the trades' ``"vwap"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from atlas.data.features._base import Footprint
from atlas.data.features._leaf import Getter, Leaf, Level
from atlas.data.series import metric_name
from atlas.exceptions import ConfigError


class Midpoint(Level):
    """The midpoint, ``(bid + ask) / 2``, sampled at the bucket end; at ``.depth(d)`` the mean of the prices
    of a ``d``-unit market sell and buy.

    ``value[t] = midpoint_d[t]``; with ``.lookforward(n)``, ``midpoint_d[t + n]``. Reads ``midpoint`` (depth
    0) or ``midpoint_d{d}``.

    Example:
        >>> Midpoint().bitstamp().depth(1).name
        'midpoint(bitstamp_btc_usd, 1min, depth=1)'
    """

    kind = "midpoint"
    defaults: ClassVar[dict[str, Any]] = {"depth": 0, "lookforward": None}

    def _reads(self):
        return [(self.get("exchange"), metric_name("midpoint", depth=self.get("depth")))]

    def _level(self, get: Getter) -> pd.Series:
        return get(metric_name("midpoint", depth=self.get("depth")))


class Close(Level):
    """The close of an OHLCV bar: the price feature of bar-only data.

    ``value[t] = close[t]``, the last price of the bar that ends at ``t``; with ``.lookforward(n)``,
    ``close[t + n]``. Reads ``close``, which ``atlas data import bars`` writes.

    Example:
        >>> Close().kraken().bucket("30min").name
        'close(kraken_btc_usd, 30min)'
    """

    kind = "close"
    defaults: ClassVar[dict[str, Any]] = {"lookforward": None}

    def _reads(self):
        return [(self.get("exchange"), "close")]

    def _level(self, get: Getter) -> pd.Series:
        return get("close")


class _Change(Leaf):
    """A change of price over ``n`` buckets: back to ``t - n`` (``lookback``, default 1) or to ``t + n``.

    ``lookback(n)`` at ``t`` compares ``p[t]`` with ``p[t - n]``; ``lookforward(n)`` compares ``p[t + n]``
    with ``p[t]``, exactly ``n`` buckets ahead.
    """

    defaults: ClassVar[dict[str, Any]] = {"price": "midpoint", "depth": 0, "lookback": 1, "lookforward": None}
    shown = ("lookback",)
    exclusive = (("lookback", "lookforward"),)

    def _check(self) -> None:
        _check_price(self)

    def _footprint(self) -> Footprint:
        n = self.get("lookforward")
        return Footprint(0, n) if n else Footprint(self.get("lookback"), 0)

    def _reads(self):
        return [(self.get("exchange"), _price_metric(self))]

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        price = get(_price_metric(self))
        n = self.get("lookforward")
        if n:
            return self._change(price.shift(-n), price)
        return self._change(price, price.shift(self.get("lookback")))

    def _change(self, later: pd.Series, earlier: pd.Series) -> pd.Series:
        raise NotImplementedError


class LogReturns(_Change):
    """Log returns: ``lookback(n)`` at ``t`` is ``log(p[t] / p[t - n])``, ``lookforward(n)`` is
    ``log(p[t + n] / p[t])``; ``p`` is the midpoint at ``.depth(d)`` or the ``.price(...)`` chosen.

    Example:
        >>> LogReturns().bitstamp().lookforward(1).name
        'log_returns(bitstamp_btc_usd, 1min, lookforward=1)'

        On bar-only data, returns of the bar close:

        >>> LogReturns().kraken().bucket("30min").price("close").name
        'log_returns(kraken_btc_usd, 30min, price=close, lookback=1)'
    """

    kind = "log_returns"

    def _change(self, later, earlier):
        return np.log(later / earlier)


class SimpleReturns(_Change):
    """Simple returns: ``lookback(n)`` at ``t`` is ``p[t] / p[t - n] - 1``, ``lookforward(n)`` is
    ``p[t + n] / p[t] - 1``.

    Example:
        >>> SimpleReturns().itbit().lookback(5).name
        'simple_returns(itbit_btc_usd, 1min, lookback=5)'
    """

    kind = "simple_returns"

    def _change(self, later, earlier):
        return later / earlier - 1


class MidpointDiff(_Change):
    """The midpoint's change in quote units: ``lookback(n)`` at ``t`` is ``mid[t] - mid[t - n]``,
    ``lookforward(n)`` is ``mid[t + n] - mid[t]``, at ``.depth(d)``.

    Example:
        >>> MidpointDiff().gemini().lookforward(3).name
        'midpoint_diff(gemini_btc_usd, 1min, lookforward=3)'
    """

    kind = "midpoint_diff"
    defaults: ClassVar[dict[str, Any]] = {"depth": 0, "lookback": 1, "lookforward": None}

    def _change(self, later, earlier):
        return later - earlier


class Volatility(Leaf):
    """The sample standard deviation (ddof 1, not annualized) of one-bucket log returns.

    ``window(n)`` (default 10) at ``t`` uses the ``n`` returns ``log(p[k] / p[k - 1])`` for ``k`` in
    ``t - n + 1 .. t`` (it reads ``n`` buckets back); ``lookforward(n)`` uses those for ``k`` in
    ``t + 1 .. t + n``, the realized volatility of the next ``n`` buckets (a label). NaN unless every return
    is present.

    Example:
        >>> Volatility().coinbase().window(30).name
        'volatility(coinbase_btc_usd, 1min, window=30)'
    """

    kind = "volatility"
    defaults: ClassVar[dict[str, Any]] = {"price": "midpoint", "depth": 0, "window": 10, "lookforward": None}
    shown = ("window",)
    exclusive = (("window", "lookforward"),)

    def _check(self) -> None:
        _check_price(self)
        n = self.get("lookforward") or self.get("window")
        if n < 2:
            key = "lookforward" if self.is_set("lookforward") else "window"
            msg = f"Volatility needs at least 2 returns for a standard deviation, got {key}={n}"
            raise ConfigError(msg)

    def _footprint(self) -> Footprint:
        n = self.get("lookforward")
        return Footprint(0, n) if n else Footprint(self.get("window"), 0)

    def _reads(self):
        return [(self.get("exchange"), _price_metric(self))]

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        price = get(_price_metric(self))
        returns = np.log(price / price.shift(1))
        n = self.get("lookforward")
        if n:
            return returns.rolling(n, min_periods=n).std().shift(-n)
        window = self.get("window")
        return returns.rolling(window, min_periods=window).std()


def _price_metric(feature: Leaf) -> str:
    source = feature.get("price") or "midpoint"
    return metric_name("midpoint", depth=feature.get("depth")) if source == "midpoint" else source


def _check_price(feature: Leaf) -> None:
    if feature.get("price") not in (None, "midpoint") and feature.get("depth"):
        msg = (f"{type(feature).__name__} takes a depth only for price='midpoint', got price="
               f"{feature.get('price')!r}, depth={feature.get('depth')}")
        raise ConfigError(msg)
