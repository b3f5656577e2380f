"""Metric series names: ``{exchange}.{bucket width}.{metric}``, e.g. ``bitstamp_btc_usd.1min.midpoint``.

Metrics that take a parameter carry it in their name: depth ``d`` in base units (``midpoint_d1``, the
volume-weighted midpoint of a 1-unit market order), slippage ``s`` in quote units (``bid_strength_s10``, the bid
volume within 10 USD of the best bid). Depth 0 is the top of book and has the plain name (``midpoint``).

Example:
    >>> key = SeriesKey.parse("bitstamp_btc_usd.1min.midpoint_d1")
    >>> key.exchange.name, key.width, key.metric
    ('BITSTAMP_BTC_USD', '1min', 'midpoint_d1')
    >>> metric_name("bid_strength", slippage=10)
    'bid_strength_s10'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from atlas.data.buckets import width_name
from atlas.data.exchanges import Exchange
from atlas.exceptions import ConfigError

_METRIC = re.compile(r"^[a-z][a-z0-9_]*(_[ds][0-9]+(\.[0-9]+)?)?$")


def _number(value: float) -> str:
    if value < 0:
        msg = f"depth and slippage must be zero or more, got {value}"
        raise ConfigError(msg)
    return format(float(value), "g")


def metric_name(base: str, *, depth: float | None = None, slippage: float | None = None) -> str:
    """The metric part of a series name: ``midpoint``, ``midpoint_d1``, ``ask_strength_s25``."""
    if depth is not None:
        return base if float(depth) == 0 else f"{base}_d{_number(depth)}"
    if slippage is not None:
        return f"{base}_s{_number(slippage)}"
    return base


@dataclass(frozen=True)
class SeriesKey:
    """The three parts of a series name.

    A name's exchange is read by its form only (:meth:`Exchange.read`): whether its venue is known is the store's
    to say (:meth:`MarketStore.known_exchange <atlas.data.MarketStore.known_exchange>`).
    """

    exchange: Exchange
    width: str
    metric: str

    @property
    def name(self) -> str:
        return f"{self.exchange.key}.{self.width}.{self.metric}"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def of(cls, exchange: str | Exchange, width, metric: str) -> SeriesKey:
        return cls(Exchange.read(exchange), width_name(width), metric)

    @classmethod
    def parse(cls, name: str) -> SeriesKey:
        """Reads ``exchange.width.metric``.

        Raises:
            ConfigError: the name does not have three dot-separated parts of the right form.
        """
        parts = str(name).split(".", 2)
        if len(parts) != 3 or not _METRIC.match(parts[2].replace(".", "")) and not _METRIC.match(parts[2]):
            msg = (f"series name {name!r} is not exchange.width.metric; "
                   "e.g. 'bitstamp_btc_usd.1min.midpoint' (see `atlas data info` for the stored ones)")
            raise ConfigError(msg)
        exchange, width, metric = parts
        return cls(Exchange.read(exchange), width_name(width), metric)

