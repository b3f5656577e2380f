"""MarketSimulator: the façade that hands out simulated days, the ground truth, and writes into a store."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from atlas.data.buckets import width_name
from atlas.data.exchanges import Exchange
from atlas.data.simulator._config import SimulatorConfig
from atlas.data.simulator._latent import LatentPaths, alpha_for_signal, simulate_latent
from atlas.data.simulator._venue import VenueDay, VenueTrack, venue_day, venue_track
from atlas.exceptions import ConfigError, DataValidationError


@dataclass(frozen=True)
class LeadLag:
    """Who leads whom in a simulation, and by how much.

    Attributes:
        leader: the exchange whose midpoint is the efficient price.
        followers: the exchanges that follow it.
        lag: how long the followers take.
        bucket: the bucket width the signal is defined on.
        signal: the planted correlation (see :class:`SimulatorConfig`).
        alpha: each follower's weight on the leader's delayed price.
    """

    leader: Exchange
    followers: tuple[Exchange, ...]
    lag: pd.Timedelta
    bucket: pd.Timedelta
    signal: float
    alpha: float

    def __str__(self) -> str:
        if not self.followers:
            return f"{self.leader.name} alone"
        names = ", ".join(f.name for f in self.followers)
        return (f"{self.leader.name} leads {names} by {width_name(self.lag)}: signal {self.signal:g} on "
                f"{width_name(self.bucket)} buckets (alpha {self.alpha:.4f})")


@dataclass(frozen=True, eq=False)
class SimulatedDay:
    """Every exchange's data for one day chunk ``(start, end]``.

    Attributes:
        index: the day's number, from 0.
        start: the instant before the day's first snapshot (exclusive).
        end: the day's last snapshot (inclusive).
        venues: one :class:`VenueDay` per exchange, in the config's order.
    """

    index: int
    start: pd.Timestamp
    end: pd.Timestamp
    venues: tuple[VenueDay, ...]

    def __getitem__(self, exchange: str | Exchange) -> VenueDay:
        """The data of one exchange (``"itbit"``, ``"ITBIT_BTC_USD"`` or an :class:`Exchange`)."""
        wanted = Exchange.parse(exchange)
        for venue in self.venues:
            if venue.exchange == wanted:
                return venue
        msg = f"{wanted.name} is not simulated; the day holds {[v.exchange.name for v in self.venues]}"
        raise ConfigError(msg)


@dataclass(frozen=True)
class SimulationReport:
    """What :meth:`MarketSimulator.simulate_into` wrote, per exchange (GDS names), and how long it took.

    Attributes:
        days: day chunks written by this call.
        already_written: day chunks that an earlier, interrupted run of the same simulation had written.
    """

    days: int
    snapshots: dict[str, int] = field(default_factory=dict)
    trades: dict[str, int] = field(default_factory=dict)
    exchange_volume: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    already_written: int = 0

    def __str__(self) -> str:
        rows = "; ".join(f"{name}: {self.snapshots[name]} books, {self.trades[name]} trades, "
                         f"{self.exchange_volume[name]} volume rows" for name in self.snapshots)
        earlier = f" ({self.already_written} more written before)" if self.already_written else ""
        return f"simulated {self.days} day(s){earlier} in {self.seconds:.1f}s: {rows}"


class MarketSimulator:
    """Simulated order books, trades and exchange volume of several exchanges trading one pair.

    A latent efficient price with stochastic volatility, jumps and an intraday pattern; the first exchange quotes
    it, the others follow it with a lag and noise of their own (the model: :mod:`atlas.data.simulator._latent`).
    ``signal`` sets how predictable a follower's next-bucket return is from the leader, and the simulator states
    the best directional accuracy any model could reach. Seeded: the same config gives the same data.

    Example:
        >>> sim = MarketSimulator(SimulatorConfig(days=0.05, signal=0.3))
        >>> day = next(sim.days())
        >>> len(day["bitstamp"].books), int(day["itbit"].books.bids.counts.min())
        (432, 20)
        >>> round(sim.theoretical_accuracy(), 4)
        0.597
        >>> str(sim.lead_lag).split(":")[0]
        'BITSTAMP_BTC_USD leads ITBIT_BTC_USD, COINBASE_BTC_USD by 1min'

        Writing every day into a store, one transaction a day:

        >>> from atlas.data.store import MarketStore
        >>> with MarketStore("sqlite://") as store:
        ...     report = sim.simulate_into(store)
        >>> report.snapshots["BITSTAMP_BTC_USD"], report.exchange_volume["COINBASE_BTC_USD"]
        (432, 72)

    Args:
        config: what to simulate; the defaults when omitted.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()

    def __repr__(self) -> str:
        return f"MarketSimulator({self.lead_lag}; {self.config.n_days} day(s), seed {self.config.seed})"

    @cached_property
    def latent(self) -> LatentPaths:
        """The latent paths of the whole horizon (computed once, on first use)."""
        return simulate_latent(self.config)

    @cached_property
    def _tracks(self) -> tuple[VenueTrack, ...]:
        return tuple(venue_track(self.config, self.latent, i) for i in range(len(self.config.exchanges)))

    @property
    def lead_lag(self) -> LeadLag:
        """The leader, its followers, the lag and the planted signal."""
        config = self.config
        alpha = alpha_for_signal(config.signal, noise=config.noise, lag_steps=config.lag_steps,
                                 bucket_steps=config.bucket_steps)
        return LeadLag(config.exchanges[0], config.exchanges[1:], config.lag_timedelta, config.bucket_timedelta,
                       config.signal, alpha)

    @property
    def n_days(self) -> int:
        """How many day chunks :meth:`days` yields."""
        return self.config.n_days

    # the data -----------------------------------------------------------------------------------------------

    def day(self, index: int) -> SimulatedDay:
        """Day chunk ``index``: the same data as the ``index``-th item of :meth:`days`.

        Raises:
            ConfigError: ``index`` is not a day of the horizon.
        """
        if not 0 <= index < self.n_days:
            msg = f"day index must be in [0, {self.n_days}) for a {self.config.days:g}-day simulation, got {index}"
            raise ConfigError(msg)
        return self._day(index, [None] * len(self._tracks))

    def days(self) -> Iterator[SimulatedDay]:
        """Every day chunk in time order, generated one at a time (memory stays at one day)."""
        previous: list[pd.DataFrame | None] = [None] * len(self._tracks)
        for index in range(self.n_days):
            day = self._day(index, previous)
            previous = [venue.trades for venue in day.venues]
            yield day

    def _day(self, index: int, previous: list[pd.DataFrame | None]) -> SimulatedDay:
        venues = tuple(venue_day(self.config, track, index, trades) for track, trades in zip(self._tracks, previous))
        first, last = self.config.day_steps(index)
        step, start = self.config.snapshot_timedelta, self.config.start
        return SimulatedDay(index, start + first * step, start + last * step, venues)

    # the truth ----------------------------------------------------------------------------------------------

    def truth(self) -> pd.DataFrame:
        """The ground truth on the bucket grid (a bucket stamped ``t`` covers ``(t - bucket, t]``).

        Returns:
            One row per bucket, indexed by its label ``bucket`` (UTC), with ``efficient_price``; ``volatility``
            (the diffusion's annualized volatility at the bucket's end); and per exchange (``key`` as in
            ``bitstamp_btc_usd``): ``mid_{key}``, the book midpoint at the bucket's end; ``prediction_{key}``,
            the best possible prediction of its log return over the next bucket (0 for the leader); and
            ``next_return_{key}``, that return as it happened (NaN on the last bucket).
        """
        return self._truth.copy()

    @cached_property
    def _truth(self) -> pd.DataFrame:
        config, latent = self.config, self.latent
        k = np.arange(1, config.n_buckets + 1, dtype=np.int64) * config.bucket_steps
        index = pd.DatetimeIndex(pd.to_datetime(config.start.value + k * config.snapshot_ns, utc=True),
                                 name="bucket")
        columns: dict[str, np.ndarray] = {
            "efficient_price": config.start_price * np.exp(latent.log_price(k)),
            "volatility": latent.volatility[k + latent.warmup],
        }
        for position, track in enumerate(self._tracks):
            key = track.exchange.key
            mid = track.mid(config, k)
            columns[f"mid_{key}"] = mid
            columns[f"prediction_{key}"] = latent.prediction(config, k) if position else np.zeros(len(k))
            columns[f"next_return_{key}"] = np.append(np.log(mid[1:] / mid[:-1]), np.nan)
        return pd.DataFrame(columns, index=index)

    def best_accuracy(self, exchange: str | Exchange | None = None) -> float:
        """The best directional accuracy any model could reach on this data, for one exchange's next-bucket return.

        Measured on the data itself: the share of buckets where the sign of the best possible prediction agrees
        with the sign of the return that followed (a prediction of 0, which no data can improve on, counts as a
        coin flip: one half).

        Args:
            exchange: the exchange; the first follower when omitted (the leader when it is alone).

        Raises:
            ConfigError: the exchange is not simulated.
        """
        key = self._exchange(exchange).key
        truth = self._truth
        returns = truth[f"next_return_{key}"].to_numpy()
        valid = np.isfinite(returns)
        agreement = np.sign(truth[f"prediction_{key}"].to_numpy()[valid]) * np.sign(returns[valid])
        return float(np.mean(np.where(agreement > 0, 1.0, np.where(agreement < 0, 0.0, 0.5))))

    def theoretical_accuracy(self, exchange: str | Exchange | None = None) -> float:
        """The best directional accuracy in expectation: ``1/2 + arcsin(signal) / pi`` (1/2 for the leader).

        Args:
            exchange: the exchange; the first follower when omitted.
        """
        leader = self._exchange(exchange) == self.config.exchanges[0]
        return 0.5 if leader else 0.5 + math.asin(self.config.signal) / math.pi

    def _exchange(self, exchange: str | Exchange | None) -> Exchange:
        exchanges = self.config.exchanges
        if exchange is None:
            return exchanges[1] if len(exchanges) > 1 else exchanges[0]
        wanted = Exchange.parse(exchange)
        if wanted not in exchanges:
            msg = (f"exchange {wanted.name} is not simulated; pass one of {[e.name for e in exchanges]}, "
                   f"or add it to SimulatorConfig.exchanges")
            raise ConfigError(msg)
        return wanted

    # writing ------------------------------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """How this simulation names its writes in the store's ingest log: ``simulator:<config digest>``."""
        return f"simulator:{self.config.digest}"

    def written_days(self, store) -> tuple[int, ...]:
        """The day chunks of this simulation (the same config) that ``store`` already holds, from its ingest log.

        Each day is written in one transaction, logged as ``simulator:<config digest>:day<k>``: a logged day is
        whole, and a day that an interruption cut short left nothing.
        """
        prefix = f"{self.source}:day"
        sources = store.ingest_sources(prefix)
        days = {int(name[len(prefix):]) for name in sources if name[len(prefix):].isdigit()}
        return tuple(sorted(day for day in days if day < self.n_days))

    def resume_text(self, written: tuple[int, ...]) -> str:
        """One line on what a run does given the days already written, e.g. ``resuming: days 1-3 of 14 ...``."""
        n = self.n_days
        if not written:
            return f"writing days 1-{n} of {n}" if n > 1 else "writing day 1 of 1"
        pending = [day for day in range(n) if day not in set(written)]
        if not pending:
            return f"nothing to do: all {n} day(s) of this simulation are already in the store"
        return (f"resuming: {_days_text(written)} of {n} already written by this simulation; writing "
                f"{_days_text(pending)}")

    def _check_free(self, store, names: list[str], pending: list[int]) -> None:
        """Refuses to write the pending days over market data that the store holds in their time range."""
        if not pending:
            return
        held = store.summary()
        held = held[held["exchange"].isin(names)]
        first = self.config.day_range(pending[0])[0]
        overlap = held[(held["last"] > first) & (held["first"] <= self.config.end)]
        if not overlap.empty:
            row = overlap.iloc[0]
            msg = (f"the store already holds {row['table']} data of {row['exchange']} from {row['first']} to "
                   f"{row['last']}, which the simulation ({first} to {self.config.end}) overlaps; simulate into "
                   f"another store (--store URL, or another ATLAS_HOME) or start after {row['last']} (--start). "
                   f"An interrupted simulation is finished by running it again with exactly the same options")
            raise DataValidationError(msg, rule="overlapping_data")

    def simulate_into(self, store, *, progress: bool = False) -> SimulationReport:
        """Writes every exchange's books, trades and exchange volume into ``store``, one transaction a day.

        A run that was interrupted is finished by calling this again with the same config: the days already
        written (whole, as the ingest log says) are kept, and only the others are written, so the store ends up
        with the same data as an uninterrupted run.

        Args:
            store: a :class:`~atlas.data.MarketStore`.
            progress: show a progress bar (one step a day) on stderr.

        Returns:
            Rows written per exchange, and the seconds it took.

        Raises:
            DataValidationError: the store holds market data of these exchanges in the time range of the days
                still to write (rule ``overlapping_data``), from anything but this simulation; nothing is written.
        """
        from tqdm import tqdm

        started = time.perf_counter()
        names = [e.name for e in self.config.exchanges]
        written = set(self.written_days(store))
        pending = [day for day in range(self.n_days) if day not in written]
        self._check_free(store, names, pending)
        snapshots, trades, volume = dict.fromkeys(names, 0), dict.fromkeys(names, 0), dict.fromkeys(names, 0)
        previous: list[pd.DataFrame | None] = [None] * len(self._tracks)
        with tqdm(total=len(pending), unit="day", desc="simulating", file=sys.stderr, disable=not progress) as bar:
            for index in pending:
                if index - 1 in written or index == 0:  # the day before was not generated here
                    previous = [None] * len(self._tracks)
                day = self._day(index, previous)
                source = f"{self.source}:day{index}"
                with store.atomic():
                    for venue in day.venues:
                        name = venue.exchange.name
                        snapshots[name] += store.write_orderbooks(venue.exchange, venue.books, source=source).written
                        trades[name] += store.write_trades(venue.exchange, venue.trades, source=source).written
                        volume[name] += store.write_exchange_volume(venue.exchange, venue.exchange_volume,
                                                                    source=source)
                previous = [venue.trades for venue in day.venues]
                bar.update()
        return SimulationReport(len(pending), snapshots, trades, volume, time.perf_counter() - started,
                                already_written=len(written))


def _days_text(days: list[int] | tuple[int, ...]) -> str:
    """Day chunks counted from 1, as runs: ``days 1-3, 5`` (``day 4`` for one)."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    parts = [f"{a + 1}-{b + 1}" if b > a else f"{a + 1}" for a, b in runs]
    return ("days " if len(days) > 1 else "day ") + ", ".join(parts)
