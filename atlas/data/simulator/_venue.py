"""One exchange's market data: order books, trades and 24-hour exchange volume around its latent midpoint.

* **Quotes.** The best bid and ask sit a half-spread below and above the midpoint, rounded to the tick (never
  crossed). The half-spread is random: an exchange-specific mean (``spread_bps`` times a per-exchange factor),
  widening with the square root of the relative volatility, times independent log-normal noise per snapshot. The
  spread moves, the midpoint does not: quotes add no predictable noise to midpoints.
* **Depth.** Price gaps between levels are whole ticks drawn from Gamma distributions whose mean grows away from
  the top (0.5 bp of the price at the top, +15% a level); volumes are Gamma distributed with a mean that grows
  with depth (``depth_volume`` at the best level, +25% a level). Bids are best (highest) first, asks lowest first.
* **Trades.** Poisson counts per snapshot interval, with intensity ``trades_per_minute`` times a per-exchange
  activity factor times the relative volatility at the interval's start; each trade buys at the best ask or sells
  at the best bid of the snapshot before it, 50/50 and independent of everything else; log-normal sizes around
  ``trade_volume``; times strictly inside the interval, at whole microseconds (what the store keeps).
* **Exchange volume.** The traded volume of the 24 hours up to each whole minute.

Every day's books and trades come from their own random streams, keyed by (exchange, day), so one day is the
same whether it is generated alone or with the others.

Example:
    >>> from atlas.data.simulator._config import SimulatorConfig
    >>> from atlas.data.simulator._latent import simulate_latent
    >>> config = SimulatorConfig(days=0.25, exchanges="bitstamp")
    >>> latent = simulate_latent(config)
    >>> track = venue_track(config, latent, 0)
    >>> books = day_books(config, track, 0)
    >>> len(books), int(books.bids.counts[0]), bool((books.best_bid < books.best_ask).all())
    (2160, 20, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.data.exchanges import Exchange
from atlas.data.orderbooks import BookBatch, BookSide
from atlas.data.simulator._config import SimulatorConfig
from atlas.data.simulator._latent import LatentPaths

QUOTE_STREAM, DEPTH_STREAM, TRADE_STREAM, PROFILE_STREAM = 2, 3, 4, 5
_PROFILE_SPREAD = 0.3  # log-deviation of an exchange's spread factor and of its activity factor
_SPREAD_NOISE = 0.3  # log-deviation of the half-spread from one snapshot to the next
_GAP_BPS, _GAP_GROWTH, _GAP_SHAPE = 0.5, 0.15, 2.0
_VOLUME_GROWTH, _VOLUME_SHAPE = 0.25, 1.5
_TRADE_SIZE_SPREAD = 1.0  # log-deviation of trade sizes
_VOLUME_DECIMALS = 4
_MINUTE_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True, eq=False)
class VenueTrack:
    """One exchange's top of book over the whole horizon (positions as in :class:`LatentPaths`).

    Attributes:
        exchange: the exchange.
        warmup: the position of snapshot 0.
        bid_ticks: the best bid of every snapshot, in ticks.
        ask_ticks: the best ask of every snapshot, in ticks; always above the bid.
        relative_volatility: the latent relative volatility (shared by every exchange).
        activity: the exchange's trade-rate factor.
    """

    exchange: Exchange
    warmup: int
    bid_ticks: np.ndarray
    ask_ticks: np.ndarray
    relative_volatility: np.ndarray
    activity: float

    def mid(self, config: SimulatorConfig, k: np.ndarray) -> np.ndarray:
        """The book midpoint ``(bid + ask) / 2`` at snapshot numbers ``k``."""
        j = np.asarray(k) + self.warmup
        return (self.bid_ticks[j] + self.ask_ticks[j]) * (config.tick / 2)


@dataclass(frozen=True, eq=False)
class VenueDay:
    """One exchange's data for one day chunk, in the shapes :class:`~atlas.data.MarketStore` writes.

    Attributes:
        exchange: the exchange.
        books: the order-book snapshots.
        trades: columns ``timestamp`` (UTC), ``price``, ``volume``, ``exchange_trade_id``, in time order.
        exchange_volume: the 24-hour traded volume at each whole minute, indexed by UTC time.
    """

    exchange: Exchange
    books: BookBatch
    trades: pd.DataFrame
    exchange_volume: pd.Series


def venue_track(config: SimulatorConfig, latent: LatentPaths, index: int) -> VenueTrack:
    """The top of book of the exchange at ``index`` in ``config.exchanges``, for the whole horizon."""
    exchange = config.exchanges[index]
    key = config.exchange_key(exchange)
    spread_factor, activity = np.exp(_PROFILE_SPREAD * config.stream(PROFILE_STREAM, key).standard_normal(2))
    log_mid = latent.log_mids[index]
    noise = config.block_draws((QUOTE_STREAM, key), -latent.warmup, len(log_mid) - latent.warmup,
                               lambda rng, n: rng.standard_normal(n))
    mid_ticks = config.start_price * np.exp(log_mid) / config.tick
    half_ticks = (mid_ticks * (config.spread_bps / 2e4) * spread_factor * np.sqrt(latent.relative_volatility)
                  * np.exp(_SPREAD_NOISE * noise - _SPREAD_NOISE**2 / 2))
    bid = np.rint(mid_ticks - half_ticks).astype(np.int64)
    ask = np.maximum(np.rint(mid_ticks + half_ticks).astype(np.int64), bid + 1)
    return VenueTrack(exchange, latent.warmup, bid, ask, latent.relative_volatility, float(activity))


def snapshot_times(config: SimulatorConfig, k: np.ndarray) -> pd.DatetimeIndex:
    """The UTC times of snapshot numbers ``k``."""
    return pd.DatetimeIndex(pd.to_datetime(config.start.value + np.asarray(k) * config.snapshot_ns, utc=True))


def day_books(config: SimulatorConfig, track: VenueTrack, day: int) -> BookBatch:
    """The order-book snapshots of day chunk ``day``: ``config.levels`` levels a side."""
    first, last = config.day_steps(day)
    k = np.arange(first + 1, last + 1)
    rng = config.stream(DEPTH_STREAM, config.exchange_key(track.exchange), day + 1)
    levels, n = config.levels, len(k)
    j = k + track.warmup
    mid = (track.bid_ticks[j] + track.ask_ticks[j]) / 2  # in ticks
    gap_mean = mid[:, None] * (_GAP_BPS * 1e-4) * (1 + _GAP_GROWTH * np.arange(levels - 1))
    sides = []
    for best, sign in ((track.bid_ticks[j], -1), (track.ask_ticks[j], 1)):
        gaps = np.maximum(np.ceil(rng.gamma(_GAP_SHAPE, gap_mean / _GAP_SHAPE)), 1).astype(np.int64)
        ticks = np.empty((n, levels), dtype=np.int64)
        ticks[:, 0] = best
        ticks[:, 1:] = best[:, None] + sign * np.cumsum(gaps, axis=1)
        mean_volume = config.depth_volume * (1 + _VOLUME_GROWTH * np.arange(levels))
        volume = rng.gamma(_VOLUME_SHAPE, mean_volume / _VOLUME_SHAPE, size=(n, levels))
        volume = np.maximum(np.round(volume, _VOLUME_DECIMALS), 10.0**-_VOLUME_DECIMALS)
        price = np.round(ticks * config.tick, config.price_decimals)
        offsets = np.arange(0, n * levels + 1, levels, dtype=np.int64)
        sides.append(BookSide(price.ravel(), volume.ravel(), offsets))
    return BookBatch(snapshot_times(config, k), sides[0], sides[1])


def day_trades(config: SimulatorConfig, track: VenueTrack, day: int) -> pd.DataFrame:
    """The trades of day chunk ``day`` (day -1 is the warm-up day before ``start``), in time order."""
    first, last = config.day_steps(day)
    k = np.arange(first + 1, last + 1)  # the interval (t_{k-1}, t_k]
    rng = config.stream(TRADE_STREAM, config.exchange_key(track.exchange), day + 1)
    step_ns = config.snapshot_ns
    rate = config.trades_per_minute * track.activity * (step_ns / _MINUTE_NS)
    counts = rng.poisson(rate * track.relative_volatility[k - 1 + track.warmup])
    total = int(counts.sum())
    interval = np.repeat(k, counts)
    offset_us = np.sort(rng.integers(1, step_ns // 1000, size=total) + (interval - 1 - first) * (step_ns // 1000))
    times = config.start.value + first * step_ns + offset_us * 1000
    buy = rng.random(total) < 0.5
    size = config.trade_volume * np.exp(_TRADE_SIZE_SPREAD * rng.standard_normal(total))
    size = np.maximum(np.round(size, _VOLUME_DECIMALS), 10.0**-_VOLUME_DECIMALS)
    before = interval - 1 + track.warmup
    ticks = np.where(buy, track.ask_ticks[before], track.bid_ticks[before])
    sequence = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    # ids name the interval by its end (epoch milliseconds), so simulations of other time ranges never collide
    ends_ms = (config.start.value + interval * step_ns) // 1_000_000
    ids = [f"{a}-{b}" for a, b in zip(ends_ms.tolist(), sequence.tolist())]
    return pd.DataFrame({
        "timestamp": pd.to_datetime(times, utc=True),
        "price": np.round(ticks * config.tick, config.price_decimals),
        "volume": size,
        "exchange_trade_id": pd.array(ids, dtype=object),
    })


def exchange_volume(config: SimulatorConfig, day: int, previous: pd.DataFrame, trades: pd.DataFrame) -> pd.Series:
    """The 24-hour traded volume at every whole minute of day chunk ``day``, from its and the day before's trades."""
    first, last = (config.start.value + s * config.snapshot_ns for s in config.day_steps(day))
    stamps = np.arange((first // _MINUTE_NS + 1) * _MINUTE_NS, last + 1, _MINUTE_NS, dtype=np.int64)
    times = np.concatenate([pd.DatetimeIndex(previous["timestamp"]).asi8, pd.DatetimeIndex(trades["timestamp"]).asi8])
    cumulative = np.concatenate([[0.0], np.cumsum(np.concatenate([previous["volume"].to_numpy(),
                                                                  trades["volume"].to_numpy()]))])
    upper = cumulative[np.searchsorted(times, stamps, side="right")]
    lower = cumulative[np.searchsorted(times, stamps - _DAY_NS, side="right")]
    values = np.maximum(np.round(upper - lower, 8), 0.0)
    index = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True), name="timestamp")
    return pd.Series(values, index=index, name="exchange_volume")


def venue_day(config: SimulatorConfig, track: VenueTrack, day: int,
              previous_trades: pd.DataFrame | None = None) -> VenueDay:
    """Books, trades and exchange volume of one exchange for day chunk ``day``.

    Args:
        previous_trades: the trades of day ``day - 1`` when the caller has them; generated again otherwise.
    """
    trades = day_trades(config, track, day)
    previous = day_trades(config, track, day - 1) if previous_trades is None else previous_trades
    return VenueDay(track.exchange, day_books(config, track, day), trades,
                    exchange_volume(config, day, previous, trades))

