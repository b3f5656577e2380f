"""Features across exchanges: the spread between two midpoints, a fair value, and the revenue of arbitrage.

Each names its exchanges in order, ``InterExchangeSpread("bitstamp", "itbit")`` or ``.exchanges(...)``, and
takes ``.lookforward(n)`` to read its value at exactly ``t + n*width`` (a label).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from atlas.data.features._base import Footprint
from atlas.data.features._leaf import Getter, Level
from atlas.data.series import metric_name
from atlas.exceptions import ConfigError


class InterExchangeSpread(Level):
    """The first exchange's midpoint minus the second's, in quote units, at ``.depth(d)``.

    ``value[t] = mid_a[t] - mid_b[t]``; for a scale-free version divide by a midpoint:
    ``InterExchangeSpread("bitstamp", "itbit") / Midpoint().itbit()``. Reads ``midpoint`` (or
    ``midpoint_d{d}``) of both.

    Example:
        >>> InterExchangeSpread("bitstamp", "itbit").name
        'inter_exchange_spread(bitstamp_btc_usd, itbit_btc_usd, 1min)'
    """

    kind = "inter_exchange_spread"
    exchange_count = 2
    defaults: ClassVar[dict[str, Any]] = {"depth": 0, "lookforward": None}

    def _reads(self):
        metric = metric_name("midpoint", depth=self.get("depth"))
        return [(exchange, metric) for exchange in self.get("exchanges")]

    def _level(self, get: Getter) -> pd.Series:
        metric = metric_name("midpoint", depth=self.get("depth"))
        first, second = self.get("exchanges")
        return get(metric, first) - get(metric, second)


class ArbRevenue(Level):
    """The signed revenue per base unit of crossing two books at ``.depth(d)``, fees left out.

    With ``a, b`` the two exchanges and prices of a ``d``-unit market order (the best prices at depth 0):
    ``bid_a - ask_b`` when positive (sell on ``a``, buy on ``b``); ``-(bid_b - ask_a)`` when that is positive
    (sell on ``b``, buy on ``a``: the sign tells the direction); 0 when neither crossing pays. NaN when a
    price is missing. The revenue of crossing ``d`` units is ``d`` times the value. Reads ``bid``/``ask`` (or
    ``_d{d}``) of both.

    Example:
        >>> ArbRevenue("bitstamp", "itbit").depth(1).name
        'arb_revenue(bitstamp_btc_usd, itbit_btc_usd, 1min, depth=1)'
    """

    kind = "arb_revenue"
    exchange_count = 2
    defaults: ClassVar[dict[str, Any]] = {"depth": 0, "lookforward": None}

    def _reads(self):
        depth = self.get("depth")
        return [(e, metric_name(side, depth=depth)) for e in self.get("exchanges") for side in ("bid", "ask")]

    def _level(self, get: Getter) -> pd.Series:
        depth = self.get("depth")
        first, second = self.get("exchanges")
        bid, ask = metric_name("bid", depth=depth), metric_name("ask", depth=depth)
        bid_a, ask_a, bid_b, ask_b = get(bid, first), get(ask, first), get(bid, second), get(ask, second)
        sell_a, sell_b = bid_a - ask_b, bid_b - ask_a
        value = np.where(sell_a > 0, sell_a, np.where(sell_b > 0, -sell_b, 0.0))
        present = (sell_a.notna() & sell_b.notna()).to_numpy()
        return pd.Series(np.where(present, value, np.nan), index=bid_a.index)


class FairValue(Level):
    """A weighted mean of several exchanges' midpoints (at ``.depth(d)``).

    ``value[t] = sum_i w_i[t] * mid_i[t] / sum_i w_i[t]`` over the exchanges with a midpoint at
    ``t``. Weights:

    * ``"volume"`` (default): each exchange's traded volume over the last ``.window(n)`` buckets (default 1,
      reading ``n - 1`` buckets back); where no exchange with a midpoint traded, the plain mean of the
      midpoints.
    * ``"equal"``: the plain mean of the midpoints present.
    * numbers, one per exchange in order: fixed weights, renormalized over the midpoints present.

    Reads each exchange's ``midpoint`` (or ``midpoint_d{d}``), and ``volume`` for volume weights.

    Example:
        >>> FairValue("bitstamp", "itbit", "coinbase").name
        'fair_value(bitstamp_btc_usd, itbit_btc_usd, coinbase_btc_usd, 1min)'
        >>> FairValue("bitstamp", "itbit").weights([2, 1]).name
        'fair_value(bitstamp_btc_usd, itbit_btc_usd, 1min, weights=(2, 1))'
    """

    kind = "fair_value"
    exchange_count = -1
    defaults: ClassVar[dict[str, Any]] = {"depth": 0, "weights": "volume", "window": 1, "lookforward": None}

    def _check(self) -> None:
        weights = self.get("weights")
        if self.is_set("window") and weights != "volume":
            msg = f"FairValue takes a window only for weights='volume', got weights={weights!r}, window=" \
                  f"{self.get('window')}"
            raise ConfigError(msg)
        exchanges = self.get("exchanges")
        if isinstance(weights, tuple) and exchanges and len(weights) != len(exchanges):
            msg = (f"FairValue needs one weight per exchange, got weights={list(weights)} for "
                   f"exchanges={list(exchanges)}")
            raise ConfigError(msg)

    def _level_footprint(self) -> Footprint:
        return Footprint(self.get("window") - 1, 0) if self.get("weights") == "volume" else Footprint()

    def _reads(self):
        metric = metric_name("midpoint", depth=self.get("depth"))
        reads = [(exchange, metric) for exchange in self.get("exchanges")]
        if self.get("weights") == "volume":
            reads += [(exchange, "volume") for exchange in self.get("exchanges")]
        return reads

    def _level(self, get: Getter) -> pd.Series:
        exchanges = self.get("exchanges")
        metric = metric_name("midpoint", depth=self.get("depth"))
        mids = pd.DataFrame({e: get(metric, e) for e in exchanges})
        weights = self.get("weights")
        if weights == "volume":
            n = self.get("window")
            w = pd.DataFrame({e: get("volume", e).rolling(n, min_periods=n).sum() for e in exchanges})
        elif weights == "equal":
            w = pd.DataFrame(1.0, index=mids.index, columns=mids.columns)
        else:
            w = pd.DataFrame(np.tile(weights, (len(mids), 1)), index=mids.index, columns=mids.columns)
        w = w.fillna(0.0).where(mids.notna(), 0.0)
        total = w.sum(axis=1)
        weighted = (w * mids.fillna(0.0)).sum(axis=1) / total.where(total > 0)
        return weighted.where(total > 0, mids.mean(axis=1))
