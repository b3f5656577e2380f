"""Trade features: volume, VWAP and trade flow, summed over a window of buckets.

Each aggregates the buckets ``(t - n*width, t]`` with ``.window(n)`` (default 1: the bucket ``t`` alone), or,
as a label, the next buckets ``(t, t + n*width]`` with ``.lookforward(n)``. A window with a missing bucket is
NaN.
"""

from __future__ import annotations

import pandas as pd

from atlas.data.features._leaf import Aggregate, Getter


class Volume(Aggregate):
    """Traded volume in base units, summed over the window. Reads ``volume`` (also present on OHLCV bars).

    Example:
        >>> Volume().bitstamp().window(5).name
        'volume(bitstamp_btc_usd, 1min, window=5)'
    """

    kind = "volume"

    def _reads(self):
        return [(self.get("exchange"), "volume")]

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        return self._total(get("volume"))


class VWAP(Aggregate):
    """The volume-weighted average trade price over the window: ``sum(vwap * volume) / sum(volume)``.

    NaN where nothing traded. Reads ``vwap`` and ``volume``.

    Example:
        >>> VWAP().bitstamp().lookforward(5).name
        'vwap(bitstamp_btc_usd, 1min, lookforward=5)'
    """

    kind = "vwap"

    def _reads(self):
        return [(self.get("exchange"), "vwap"), (self.get("exchange"), "volume")]

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        volume = get("volume")
        notional = (get("vwap") * volume).mask(volume == 0, 0.0)  # a bucket without trades has no vwap
        return self._total(notional) / self._total(volume)


class TradeFlow(Aggregate):
    """Signed volume: ``buy_volume - sell_volume`` in base units over the window, sides by the tick rule.

    For the share of volume, in [-1, 1], divide by the volume: ``TradeFlow() / Volume()`` (a bucket without
    trades then gives NaN). Reads ``buy_volume`` and ``sell_volume``.

    Example:
        >>> flow = TradeFlow().bitstamp().window(10)
        >>> (flow / Volume().bitstamp().window(10)).name
        '(trade_flow(bitstamp_btc_usd, 1min, window=10) / volume(bitstamp_btc_usd, 1min, window=10))'
    """

    kind = "trade_flow"

    def _reads(self):
        return [(self.get("exchange"), "buy_volume"), (self.get("exchange"), "sell_volume")]

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        return self._total(get("buy_volume") - get("sell_volume"))
