"""Feature classes by name, with did-you-mean, and features restored from their dictionaries.

Example:
    >>> feature("LogReturns")().bitstamp().name
    'log_returns(bitstamp_btc_usd, 1min, lookback=1)'
    >>> feature_from_dict({"type": "Midpoint", "exchange": "itbit_btc_usd", "bucket": "5min"}).name
    'midpoint(itbit_btc_usd, 5min)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atlas.data.features._base import Feature, did_you_mean
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
from atlas.data.features._trades import VWAP, TradeFlow, Volume
from atlas.exceptions import ConfigError

#: Every feature class that reads data, by class name.
FEATURES: dict[str, type[Feature]] = {cls.__name__: cls for cls in (
    Midpoint, MidpointDiff, SimpleReturns, LogReturns, Volatility, Close,
    Bid, Ask, Spread, BidStrength, AskStrength, BidStrengthValue, AskStrengthValue, OrderbookImbalance,
    Volume, VWAP, TradeFlow,
    InterExchangeSpread, FairValue, ArbRevenue,
    TimeOfDay, DayOfWeek,
)}
#: What ``to_dict`` may name: the feature classes and the features made of features.
_TYPES: dict[str, type[Feature]] = {**FEATURES, "Arithmetic": Arithmetic, "Transform": Transform,
                                    "Pipe": Pipe}


def feature(name: str) -> type[Feature]:
    """The feature class called ``name``: its class name (``"LogReturns"``) or its kind (``"log_returns"``).

    Raises:
        ConfigError: no such feature class, with the closest names and the list of all.
    """
    if name in FEATURES:
        return FEATURES[name]
    by_kind = {getattr(cls, "kind", ""): cls for cls in FEATURES.values()}
    folded = {n.lower(): cls for n, cls in FEATURES.items()}
    found = by_kind.get(name) or folded.get(str(name).lower())
    if found is not None:
        return found
    msg = f"no feature called {name!r}{did_you_mean(name, FEATURES)}; features: {', '.join(FEATURES)}"
    raise ConfigError(msg)


def feature_from_dict(description: Mapping[str, Any]) -> Feature:
    """The feature that ``feature.to_dict()`` described; it equals the feature, name and hash included.

    Raises:
        ConfigError: the description has no known ``"type"``, or a parameter the type does not take.
    """
    if not isinstance(description, Mapping) or "type" not in description:
        msg = f"a feature description is a mapping with a 'type' key, got {description!r}"
        raise ConfigError(msg)
    kind = description["type"]
    if kind not in _TYPES:
        msg = f"unknown feature type {kind!r}{did_you_mean(str(kind), _TYPES)}; types: {', '.join(_TYPES)}"
        raise ConfigError(msg)
    return _TYPES[kind]._from_dict({k: v for k, v in description.items() if k != "type"})
