"""Ready-made feature-label sets, in the spirit of the original Atlas's.

Each is a function, so every call returns a fresh, equal set and takes the exchanges to use.

Example:
    >>> example_set().feature_names[:2]
    ['bid_strength(bitstamp_btc_usd, 1min)', 'ask_strength(bitstamp_btc_usd, 1min)']
"""

from __future__ import annotations

from atlas.data.features import (
    AskStrength,
    BidStrength,
    InterExchangeSpread,
    LogReturns,
    Midpoint,
    OrderbookImbalance,
    TimeOfDay,
    Volatility,
    Volume,
)
from atlas.data.featureset._set import FeatureLabelSet


def example_set(leader: str = "bitstamp", other: str = "itbit") -> FeatureLabelSet:
    """The README's set: the top bid and ask volume on ``leader``, its past one-minute return and the
    ``leader``-``other`` midpoint spread, to predict ``leader``'s next one-minute return."""
    return FeatureLabelSet(
        features=[
            BidStrength().exchange(leader).one_min().slippage(0),
            AskStrength().exchange(leader).one_min().slippage(0),
            LogReturns().exchange(leader).one_min().lookback(1),
            InterExchangeSpread(leader, other).one_min(),
        ],
        labels=[LogReturns().exchange(leader).one_min().lookforward(1)],
        title="example_set",
    )


def simple_prices(exchanges: tuple[str, ...] = ("bitstamp", "itbit", "coinbase"), target: str | None = None
                  ) -> FeatureLabelSet:
    """Every exchange's last one-minute log return, to predict ``target``'s next one (the last exchange's by
    default: in the simulator the first exchange leads the others)."""
    target = target or exchanges[-1]
    return FeatureLabelSet(
        features=[LogReturns().exchange(e).one_min().lookback(1) for e in exchanges],
        labels=[LogReturns().exchange(target).one_min().lookforward(1)],
        title="simple_prices",
    )


def lots(exchange: str = "bitstamp", others: tuple[str, ...] = ("itbit",)) -> FeatureLabelSet:
    """Many features and a label per horizon (1, 5, 10 and 30 minutes): returns over several lookbacks,
    volatility, order-book imbalance, volume, time of day, and spreads to the other exchanges."""
    features = [LogReturns().exchange(exchange).one_min().lookback(n) for n in (1, 5, 10, 30)]
    features += [
        Volatility().exchange(exchange).one_min().window(30),
        OrderbookImbalance().exchange(exchange).one_min().slippage(10),
        Volume().exchange(exchange).one_min().rolling_mean(5),
        TimeOfDay().one_min().cyclic("sin"),
        TimeOfDay().one_min().cyclic("cos"),
    ]
    features += [InterExchangeSpread(exchange, other).one_min() / Midpoint().exchange(other).one_min()
                 for other in others]
    labels = [LogReturns().exchange(exchange).one_min().lookforward(n) for n in (1, 5, 10, 30)]
    return FeatureLabelSet(features=features, labels=labels, title="lots")


def strength(exchange: str = "bitstamp", slippages: tuple[float, ...] = (0, 10, 50)) -> FeatureLabelSet:
    """Order-book strength: bid and ask volume within each slippage of the top, and the imbalance."""
    features = []
    for slippage in slippages:
        features += [BidStrength().exchange(exchange).one_min().slippage(slippage),
                     AskStrength().exchange(exchange).one_min().slippage(slippage),
                     OrderbookImbalance().exchange(exchange).one_min().slippage(slippage)]
    return FeatureLabelSet(features=features, labels=[LogReturns().exchange(exchange).one_min().lookforward(1)],
                           title="strength")


PRESETS = {"example_set": example_set, "simple_prices": simple_prices, "lots": lots, "strength": strength}
