"""The simulator's settings, checked once at construction, and the time grid they imply.

Example:
    >>> config = SimulatorConfig(days=1, signal=0.3)
    >>> [exchange.venue for exchange in config.exchanges]
    ['bitstamp', 'itbit', 'coinbase']
    >>> config.n_buckets, config.n_snapshots, config.bucket_steps, config.lag_steps
    (1440, 8640, 6, 6)
    >>> SimulatorConfig.from_dict(config.to_dict()) == config
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from atlas.data.buckets import parse_width, width_name
from atlas.data.exchanges import Exchange
from atlas.exceptions import ConfigError

_DAY = pd.Timedelta("1D")
_FIRST, _LAST = pd.Timestamp.min.ceil("D").tz_localize("UTC"), pd.Timestamp.max.floor("D").tz_localize("UTC")
_SECOND_NS = 10**9
#: Snapshots per random block of the whole-horizon paths (see :meth:`SimulatorConfig.block_draws`).
BLOCK_STEPS = 4096
_WIDTH_FIELDS = ("lag", "bucket", "snapshot_interval", "vol_half_life")
#: The version of the data a config generates: bump it when the simulator's output for a config changes, so a
#: re-run of an interrupted simulation never finishes old data with new.
DATA_VERSION = 1


def max_signal(noise: float, lag_steps: int, bucket_steps: int) -> float:
    """The largest ``signal`` the lead-lag model can plant: ``sqrt(q / (1 + noise**2))``.

    ``q = min(lag, bucket) / bucket`` is the share of a follower's delayed move over the next bucket that the
    leader has already made when the bucket starts (1 when the lag is at least one bucket).

    Example:
        >>> round(max_signal(0.2, 6, 6), 4)
        0.9806
    """
    share = min(lag_steps, bucket_steps) / bucket_steps
    return math.sqrt(share / (1.0 + noise**2))


@dataclass(frozen=True)
class SimulatorConfig:
    """What to simulate: exchanges, horizon, seed, the planted lead-lag signal, and the market's character.

    Every field has a default that looks like BTC/USD; the first exchange leads the others. Width fields take
    pandas offsets (``"1min"``, ``"10s"``, or a ``pd.Timedelta``) and are held by their canonical names
    (:func:`~atlas.data.buckets.width_name`); ``exchanges`` also takes one comma-separated string, as the command
    line passes it.

    Example:
        >>> config = SimulatorConfig(exchanges="bitstamp,coinbase", days=2, signal=0.3, lag="2min")
        >>> config.exchanges[0].name, config.lag, config.lag_timedelta, config.n_buckets
        ('BITSTAMP_BTC_USD', '2min', Timedelta('0 days 00:02:00'), 2880)
        >>> config.lead_lag_text()
        'BITSTAMP_BTC_USD leads COINBASE_BTC_USD by 2min (signal 0.3 on 1min buckets)'

    Attributes:
        exchanges: the venues, all trading one pair; the first is the leader, the others follow it.
        days: the horizon in days (fractions allowed), rounded down to whole buckets.
        start: the first instant (UTC; naive text is taken as UTC), on the bucket grid.
        seed: the seed of every random stream; the same config always gives the same data.
        signal: the correlation between the best possible prediction of a follower's return over the next
            bucket and that return; with ``lag == bucket`` it is the correlation of the leader's return over a
            bucket with the follower's return over the next one. 0 plants nothing at all.
        lag: how long the followers take to follow the leader; a whole number of snapshot intervals.
        bucket: the bucket width the signal is defined on; a whole number of snapshot intervals.
        snapshot_interval: the time between order-book snapshots; a whole number of seconds.
        levels: price levels per side of every book (10 or more).
        start_price: the price at ``start``, in quote units.
        tick: the price increment.
        annual_volatility: the diffusion's yearly volatility of log prices (jumps come on top).
        vol_of_vol: the stationary standard deviation of the log volatility (an Ornstein-Uhlenbeck process).
        vol_half_life: how fast the log volatility returns to its mean.
        jump_rate_per_day: the mean number of price jumps a day.
        jump_std: the standard deviation of one jump's log size.
        intraday_amplitude: the intraday volatility swing, peaking at 15:00 UTC (0 for none, below 1).
        noise: each follower's own random walk, as a fraction of the efficient price's volatility.
        spread_bps: the mean quoted spread, in basis points of the price.
        depth_volume: the mean volume at the best level, in base units; deeper levels hold more.
        trades_per_minute: the mean trade rate of an exchange, rising with volatility.
        trade_volume: the median trade size, in base units.
    """

    exchanges: tuple[Exchange, ...] | str = ("bitstamp", "itbit", "coinbase")
    days: float = 14.0
    start: pd.Timestamp | str = "2024-01-01"
    seed: int = 7
    signal: float = 0.0
    lag: str | pd.Timedelta = "1min"
    bucket: str | pd.Timedelta = "1min"
    snapshot_interval: str | pd.Timedelta = "10s"
    levels: int = 20
    start_price: float = 10_000.0
    tick: float = 0.01
    annual_volatility: float = 0.6
    vol_of_vol: float = 0.5
    vol_half_life: str | pd.Timedelta = "6h"
    jump_rate_per_day: float = 2.0
    jump_std: float = 0.005
    intraday_amplitude: float = 0.3
    noise: float = 0.2
    spread_bps: float = 2.0
    depth_volume: float = 0.5
    trades_per_minute: float = 6.0
    trade_volume: float = 0.05

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "exchanges", _parse_exchanges(self.exchanges))
        for name in _WIDTH_FIELDS:
            set_(self, name, width_name(_width(name, getattr(self, name))))
        set_(self, "start", _start(self.start))
        for name in ("days", "signal", "start_price", "tick", "annual_volatility", "vol_of_vol",
                     "jump_rate_per_day", "jump_std", "intraday_amplitude", "noise", "spread_bps",
                     "depth_volume", "trades_per_minute", "trade_volume"):
            set_(self, name, _number(name, getattr(self, name)))
        set_(self, "seed", _integer("seed", self.seed, low=0, hint="use a whole number such as 7"))
        set_(self, "levels", _integer("levels", self.levels, low=10,
                                      hint="books need 10 or more levels a side; the default is 20"))
        self._check_grid()
        self._check_market()
        if self.signal > 0 and len(self.exchanges) < 2:
            msg = (f"SimulatorConfig.signal must be 0 with a single exchange, got signal={self.signal} and "
                   f"exchanges={[e.name for e in self.exchanges]}; the signal is planted in followers: add an "
                   f"exchange to follow the first one")
            raise ConfigError(msg)
        limit = max_signal(self.noise, self.lag_steps, self.bucket_steps)
        if not 0.0 <= self.signal <= limit + 1e-12:
            msg = (f"SimulatorConfig.signal must be in [0, {limit:.4f}], got signal={self.signal}; the maximum is "
                   f"sqrt(min(lag, bucket) / bucket / (1 + noise**2)) with noise={self.noise}, "
                   f"lag={self.lag}, bucket={self.bucket}: lower the signal, or the noise")
            raise ConfigError(msg)

    # the time grid ------------------------------------------------------------------------------------------

    @property
    def bucket_timedelta(self) -> pd.Timedelta:
        """The bucket width as a ``pd.Timedelta``."""
        return parse_width(self.bucket)

    @property
    def lag_timedelta(self) -> pd.Timedelta:
        """The lead-lag as a ``pd.Timedelta``."""
        return parse_width(self.lag)

    @property
    def snapshot_timedelta(self) -> pd.Timedelta:
        """The snapshot interval as a ``pd.Timedelta``."""
        return parse_width(self.snapshot_interval)

    @property
    def snapshot_ns(self) -> int:
        """The snapshot interval in nanoseconds: one step of every simulated path."""
        return self.snapshot_timedelta.value

    @property
    def bucket_steps(self) -> int:
        """Snapshot intervals per bucket."""
        return self.bucket_timedelta.value // self.snapshot_ns

    @property
    def lag_steps(self) -> int:
        """Snapshot intervals of lead-lag."""
        return self.lag_timedelta.value // self.snapshot_ns

    @property
    def n_buckets(self) -> int:
        """Whole buckets in the horizon."""
        return int(round(self.days * _DAY.value)) // self.bucket_timedelta.value

    @property
    def n_snapshots(self) -> int:
        """Snapshots per exchange: one at the end of every snapshot interval, the first at ``start + interval``."""
        return self.n_buckets * self.bucket_steps

    @property
    def end(self) -> pd.Timestamp:
        """The last instant simulated, the last bucket's label."""
        return self.start + self.n_buckets * self.bucket_timedelta

    @property
    def n_days(self) -> int:
        """Day chunks: ``(start + d days, start + (d + 1) days]``, the last one cut at :attr:`end`."""
        return -(-(self.end - self.start).value // _DAY.value)

    def day_steps(self, day: int) -> tuple[int, int]:
        """Snapshot numbers ``(first - 1, last)`` of day chunk ``day``; day -1 is the warm-up day before start."""
        day_ns, step = _DAY.value, self.snapshot_ns
        last = min((day + 1) * day_ns // step, self.n_snapshots)
        return (day * day_ns) // step, last

    def stream(self, *key: int) -> np.random.Generator:
        """An independent random stream for ``key`` (what, exchange, day), derived from :attr:`seed`."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=tuple(int(k) for k in key)))

    def block_draws(self, key: tuple[int, ...], first: int, stop: int,
                    draw: Callable[[np.random.Generator, int], np.ndarray]) -> np.ndarray:
        """Random draws for snapshot numbers ``first`` to ``stop - 1``, from one stream per block of snapshots.

        Each block of :data:`BLOCK_STEPS` snapshots has its own stream, keyed by ``key`` and the block's number,
        so a snapshot's draws do not depend on the horizon: a longer simulation extends a shorter one.

        Args:
            key: the stream key (what, exchange).
            first: the first snapshot number.
            stop: one past the last snapshot number.
            draw: ``draw(rng, n)`` returns an array whose last axis has ``n`` draws.
        """
        low, high = first // BLOCK_STEPS, (stop - 1) // BLOCK_STEPS
        parts = [draw(self.stream(*key, block < 0, abs(block)), BLOCK_STEPS) for block in range(low, high + 1)]
        return np.concatenate(parts, axis=-1)[..., first - low * BLOCK_STEPS:stop - low * BLOCK_STEPS]

    @staticmethod
    def exchange_key(exchange: Exchange) -> int:
        """A stable number for an exchange's random streams: its place in the list does not matter."""
        return zlib.crc32(exchange.name.encode())

    @property
    def price_decimals(self) -> int:
        """Decimals of :attr:`tick`, for rounding prices to the tick grid exactly."""
        return max(0, -Decimal(repr(self.tick)).normalize().as_tuple().exponent)

    @property
    def digest(self) -> str:
        """A short name of everything that decides the data (every field, and :data:`DATA_VERSION`).

        Two configs with equal digests generate the same data; the store's ingest log names a simulation's days
        by it, so a re-run of an interrupted simulation knows which days it already wrote.

        Example:
            >>> SimulatorConfig(days=1).digest == SimulatorConfig(days=1.0).digest != SimulatorConfig(days=2).digest
            True
        """
        text = json.dumps({"version": DATA_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def day_range(self, day: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The time range ``(start, end]`` of day chunk ``day``."""
        first, last = self.day_steps(day)
        return self.start + first * self.snapshot_timedelta, self.start + last * self.snapshot_timedelta

    def lead_lag_text(self) -> str:
        """One line saying who leads whom, by how much, and the planted signal."""
        leader, followers = self.exchanges[0], self.exchanges[1:]
        if not followers:
            return f"{leader.name} alone: nothing leads or follows"
        names = ", ".join(f.name for f in followers)
        return f"{leader.name} leads {names} by {self.lag} (signal {self.signal:g} on {self.bucket} buckets)"

    # round trip ---------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain values (names, ISO time, width names): what :meth:`from_dict` reads back."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "exchanges":
                value = [e.name for e in value]
            elif item.name == "start":
                value = value.isoformat()
            out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulatorConfig:
        """The config that :meth:`to_dict` wrote.

        Raises:
            ConfigError: a key is not a field (listing the fields), or a value is out of range.
        """
        names = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            msg = f"SimulatorConfig has no field(s) {unknown}; the fields are {sorted(names)}"
            raise ConfigError(msg)
        values = dict(values)
        if "exchanges" in values and not isinstance(values["exchanges"], str):
            values["exchanges"] = tuple(values["exchanges"])
        return cls(**values)

    # checks -------------------------------------------------------------------------------------------------

    def _check_grid(self) -> None:
        step = self.snapshot_timedelta
        if step.value % _SECOND_NS:
            msg = (f"SimulatorConfig.snapshot_interval must be a whole number of seconds, got "
                   f"snapshot_interval={self.snapshot_interval}; use e.g. '1s', '10s'")
            raise ConfigError(msg)
        for name in ("bucket", "lag"):
            if parse_width(getattr(self, name)).value % step.value:
                msg = (f"SimulatorConfig.{name} must be a whole multiple of snapshot_interval="
                       f"{self.snapshot_interval}, got {name}={getattr(self, name)}; pick a snapshot interval "
                       f"that divides it, or change {name}")
                raise ConfigError(msg)
        bucket = self.bucket_timedelta
        if self.start.value % bucket.value:
            msg = (f"SimulatorConfig.start must lie on the {self.bucket} bucket grid, got "
                   f"start={self.start.isoformat()}; use e.g. {self.start.floor(bucket).isoformat()}")
            raise ConfigError(msg)
        if self.days > 0 and (_LAST - self.start).value < self.days * _DAY.value:
            msg = (f"SimulatorConfig.days={self.days:g} from start={self.start.isoformat()} would end after "
                   f"{_LAST:%Y-%m-%d}, the last day Atlas can hold (nanoseconds since 1970 in 64 bits); start "
                   f"earlier (--start) or simulate fewer days (--days)")
            raise ConfigError(msg)
        if self.days <= 0 or self.n_buckets < 2:
            msg = (f"SimulatorConfig.days must cover at least two {self.bucket} buckets, got "
                   f"days={self.days}; use e.g. days=1")
            raise ConfigError(msg)

    def _check_market(self) -> None:
        positive = ("start_price", "tick", "annual_volatility", "spread_bps", "depth_volume", "trade_volume")
        for name in positive:
            _check(name, getattr(self, name), getattr(self, name) > 0, "greater than 0")
        for name in ("vol_of_vol", "jump_rate_per_day", "jump_std", "noise", "trades_per_minute"):
            _check(name, getattr(self, name), getattr(self, name) >= 0, "0 or more")
        _check("intraday_amplitude", self.intraday_amplitude, 0 <= self.intraday_amplitude < 1, "in [0, 1)")
        if self.start_price / self.tick < 1000:
            msg = (f"SimulatorConfig.start_price must be at least 1000 ticks, got start_price={self.start_price} "
                   f"with tick={self.tick}; use a smaller tick or a larger start price")
            raise ConfigError(msg)


def _check(name: str, value: float, ok: bool, allowed: str) -> None:
    if not ok:
        msg = f"SimulatorConfig.{name} must be {allowed}, got {name}={value!r}; see the field's documentation"
        raise ConfigError(msg)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not math.isfinite(float(value)):
        msg = f"SimulatorConfig.{name} must be a finite number, got {name}={value!r}"
        raise ConfigError(msg)
    return float(value)


def _integer(name: str, value: Any, *, low: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        msg = f"SimulatorConfig.{name} must be a whole number >= {low}, got {name}={value!r}; {hint}"
        raise ConfigError(msg)
    return int(value)


def _width(name: str, value: Any) -> pd.Timedelta:
    try:
        return parse_width(value)
    except ConfigError as error:
        msg = f"SimulatorConfig.{name}: {error}"
        raise ConfigError(msg) from None


def _start(value: Any) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        msg = f"SimulatorConfig.start {value!r} is not a timestamp; write e.g. '2024-01-01' or '2024-01-01T00:00Z'"
        raise ConfigError(msg) from None
    if stamp is pd.NaT:
        msg = f"SimulatorConfig.start {value!r} is not a timestamp; write e.g. '2024-01-01' or '2024-01-01T00:00Z'"
        raise ConfigError(msg)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not _FIRST <= stamp <= _LAST:
        msg = (f"SimulatorConfig.start {value!r} is outside the times Atlas can hold, {_FIRST:%Y-%m-%d} to "
               f"{_LAST:%Y-%m-%d} (nanoseconds since 1970 in 64 bits); start e.g. at '2024-01-01' (--start)")
        raise ConfigError(msg)
    return stamp.as_unit("ns")


def _parse_exchanges(value: Any) -> tuple[Exchange, ...]:
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    if not items:
        msg = "SimulatorConfig.exchanges is empty; name at least one exchange, e.g. ('bitstamp', 'coinbase')"
        raise ConfigError(msg)
    exchanges = tuple(Exchange.parse(item) for item in items)  # UnknownExchangeError names the venue
    names = [e.name for e in exchanges]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        msg = f"SimulatorConfig.exchanges names {repeated} more than once, got exchanges={names}; list each once"
        raise ConfigError(msg)
    pairs = sorted({f"{e.base}_{e.quote}" for e in exchanges})
    if len(pairs) > 1:
        msg = (f"SimulatorConfig.exchanges must all trade one pair, got pairs {pairs} in exchanges={names}; "
               f"simulate each pair separately")
        raise ConfigError(msg)
    return exchanges
