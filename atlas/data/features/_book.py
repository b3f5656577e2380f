"""Order-book features: best and depth prices, the spread, book strength and imbalance.

Each reads one order-book metric series, sampled at the bucket end (the last valid snapshot at or before
``t``), and takes ``.lookforward(n)`` to read it at exactly ``t + n*width`` (a label). Depths are in base
units, slippages in quote units; the metric pipeline must have computed the depth or slippage asked for
(``atlas data metrics --depths ... --slippages ...``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from atlas.data.features._leaf import Getter, Level
from atlas.data.series import metric_name


class _BookMetric(Level):
    """One order-book metric, named ``{metric}`` plus the depth or slippage suffix."""

    metric: ClassVar[str] = ""
    parameter: ClassVar[str] = "depth"

    def _metric(self) -> str:
        return metric_name(self.metric, **{self.parameter: self.get(self.parameter)})

    def _reads(self):
        return [(self.get("exchange"), self._metric())]

    def _level(self, get: Getter) -> pd.Series:
        return get(self._metric())


_DEPTH: dict[str, Any] = {"depth": 0, "lookforward": None}
_SLIPPAGE: dict[str, Any] = {"slippage": 0, "lookforward": None}


class Bid(_BookMetric):
    """The best bid; at ``.depth(d)`` the average price of selling ``d`` base units into the bids.

    Reads ``bid`` or ``bid_d{d}``.

    Example:
        >>> Bid().bitstamp().depth(5).name
        'bid(bitstamp_btc_usd, 1min, depth=5)'
    """

    kind = metric = "bid"
    defaults = _DEPTH


class Ask(_BookMetric):
    """The best ask; at ``.depth(d)`` the average price of buying ``d`` base units from the asks.

    Reads ``ask`` or ``ask_d{d}``.

    Example:
        >>> Ask().bitstamp().name
        'ask(bitstamp_btc_usd, 1min)'
    """

    kind = metric = "ask"
    defaults = _DEPTH


class Spread(_BookMetric):
    """Best ask minus best bid, in quote units; at ``.depth(d)``, ``ask_d - bid_d``.

    Reads ``spread``, or ``ask_d{d}`` and ``bid_d{d}``.

    Example:
        >>> Spread().itbit().depth(1).name
        'spread(itbit_btc_usd, 1min, depth=1)'
    """

    kind = metric = "spread"
    defaults = _DEPTH

    def _reads(self):
        if not self.get("depth"):
            return [(self.get("exchange"), "spread")]
        return [(self.get("exchange"), metric_name(side, depth=self.get("depth"))) for side in ("ask", "bid")]

    def _level(self, get: Getter) -> pd.Series:
        if not self.get("depth"):
            return get("spread")
        depth = self.get("depth")
        return get(metric_name("ask", depth=depth)) - get(metric_name("bid", depth=depth))


class BidStrength(_BookMetric):
    """Bid volume (base units) within ``.slippage(s)`` quote units of the best bid (``s = 0``: best level).

    Reads ``bid_strength_s{s}``.

    Example:
        >>> BidStrength().bitstamp().slippage(10).name
        'bid_strength(bitstamp_btc_usd, 1min, slippage=10)'
    """

    kind = metric = "bid_strength"
    parameter = "slippage"
    defaults = _SLIPPAGE


class AskStrength(_BookMetric):
    """Ask volume (base units) within ``.slippage(s)`` quote units of the best ask.

    Reads ``ask_strength_s{s}``.

    Example:
        >>> AskStrength().bitstamp().name
        'ask_strength(bitstamp_btc_usd, 1min)'
    """

    kind = metric = "ask_strength"
    parameter = "slippage"
    defaults = _SLIPPAGE


class BidStrengthValue(_BookMetric):
    """The quote value of :class:`BidStrength`: the sum of price x volume of those bids.

    Reads ``bid_strength_value_s{s}``.

    Example:
        >>> BidStrengthValue().bitstamp().slippage(10).name
        'bid_strength_value(bitstamp_btc_usd, 1min, slippage=10)'
    """

    kind = metric = "bid_strength_value"
    parameter = "slippage"
    defaults = _SLIPPAGE


class AskStrengthValue(_BookMetric):
    """The quote value of :class:`AskStrength`: the sum of price x volume of those asks.

    Reads ``ask_strength_value_s{s}``.

    Example:
        >>> AskStrengthValue().bitstamp().slippage(10).name
        'ask_strength_value(bitstamp_btc_usd, 1min, slippage=10)'
    """

    kind = metric = "ask_strength_value"
    parameter = "slippage"
    defaults = _SLIPPAGE


class OrderbookImbalance(_BookMetric):
    """``(bid strength - ask strength) / (bid strength + ask strength)`` at ``.slippage(s)``, in [-1, 1].

    Reads ``imbalance_s{s}``.

    Example:
        >>> OrderbookImbalance().bitstamp().slippage(10).name
        'orderbook_imbalance(bitstamp_btc_usd, 1min, slippage=10)'
    """

    kind = "orderbook_imbalance"
    metric = "imbalance"
    parameter = "slippage"
    defaults = _SLIPPAGE
