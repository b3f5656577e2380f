"""The feature DSL: immutable, fluent features computed from metric series on a bucket grid.

A bucket stamped ``t`` covers ``(t - width, t]``. ``lookback(n)`` reads ``n`` buckets back and
``lookforward(n)`` exactly the next ``n``; a feature that reads any future is a label and nothing else
(:func:`check_inputs` raises :class:`LeakageError`).

Example:
    >>> from atlas.data.features import LogReturns, OrderbookImbalance, check_inputs
    >>> inputs = [LogReturns().bitstamp().lookback(5), OrderbookImbalance().itbit().slippage(10).zscore(30)]
    >>> label = LogReturns().itbit().lookforward(1)
    >>> for f in inputs:
    ...     print(f)
    log_returns(bitstamp_btc_usd, 1min, lookback=5)
    zscore(orderbook_imbalance(itbit_btc_usd, 1min, slippage=10), 30)
    >>> check_inputs(inputs); label.is_label
    True
"""

from atlas.data.features._base import Feature, Footprint, LeakageError, check_inputs, check_labels
from atlas.data.features._book import (
    Ask,
    AskStrength,
    AskStrengthValue,
    Bid,
    BidStrength,
    BidStrengthValue,
    OrderbookImbalance,
    Spread,
)
from atlas.data.features._calendar import DayOfWeek, TimeOfDay
from atlas.data.features._cross import ArbRevenue, FairValue, InterExchangeSpread
from atlas.data.features._ops import Arithmetic, Pipe, Transform
from atlas.data.features._prices import Close, LogReturns, Midpoint, MidpointDiff, SimpleReturns, Volatility
from atlas.data.features._registry import FEATURES, feature, feature_from_dict
from atlas.data.features._trades import VWAP, TradeFlow, Volume

__all__ = [
    "FEATURES",
    "VWAP",
    "ArbRevenue",
    "Arithmetic",
    "Ask",
    "AskStrength",
    "AskStrengthValue",
    "Bid",
    "BidStrength",
    "BidStrengthValue",
    "Close",
    "DayOfWeek",
    "FairValue",
    "Feature",
    "Footprint",
    "InterExchangeSpread",
    "LeakageError",
    "LogReturns",
    "Midpoint",
    "MidpointDiff",
    "OrderbookImbalance",
    "Pipe",
    "SimpleReturns",
    "Spread",
    "TimeOfDay",
    "TradeFlow",
    "Transform",
    "Volatility",
    "Volume",
    "check_inputs",
    "check_labels",
    "feature",
    "feature_from_dict",
]
