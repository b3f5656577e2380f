"""The latent paths: the efficient price, its volatility, and each exchange's midpoint following it.

The model, on the snapshot grid ``t_k = start + k * dt`` (log prices relative to ``start_price``):

* **Volatility.** ``sigma_k = annual_volatility * exp(x_k - s**2) * m(t_k)``: ``x`` is an Ornstein-Uhlenbeck
  log volatility with stationary deviation ``s = vol_of_vol`` and half-life ``vol_half_life``; ``m`` is the
  intraday pattern ``1 + A cos(2 pi (hour - 15) / 24)``, scaled so that its mean square is 1. ``E[sigma**2]`` is
  ``annual_volatility**2``.
* **Efficient price.** ``p_k = p_{k-1} + sigma_{k-1} sqrt(dt) z_k + J_k``: Gaussian steps and compound-Poisson
  jumps (``jump_rate_per_day``, each ``N(0, jump_std**2)``). Its steps have mean zero and are independent of the
  past: ``p`` is a martingale, nothing predicts it.
* **Midpoints.** The leader's log midpoint is ``p`` exactly. A follower's is
  ``f(t) = alpha p(t - lag) + (1 - alpha) p(t) + w(t)``, where ``w`` is the follower's own random walk whose steps
  have ``noise`` times the efficient price's expected step deviation (diffusion and jumps together). All quote
  noise goes into spreads, book depth and volumes, never into midpoints, so the only predictable part of any
  midpoint is the planted one.
* **The planted signal.** Over the next bucket ``(t, t + bucket]`` a follower moves by
  ``alpha (p(t + bucket - lag) - p(t - lag)) + (1 - alpha) R_p + R_w``. The part known at ``t`` is the best
  prediction any model can make: ``alpha (p(min(t, t + bucket - lag)) - p(t - lag))``, a share
  ``q = min(lag, bucket) / bucket`` of the delayed move. Its correlation with the follower's return is
  ``rho = alpha sqrt(q) / sqrt(1 + noise**2 - 2 q alpha (1 - alpha))`` (when ``lag >= bucket`` the delayed and the
  current moves do not overlap and the denominator is ``alpha**2 + (1 - alpha)**2 + noise**2``; when
  ``lag < bucket`` they share ``bucket - lag`` of time, which the same expression accounts for).
  :func:`alpha_for_signal` solves it for ``alpha``; ``rho`` rises with ``alpha`` up to
  ``sqrt(q / (1 + noise**2))`` at ``alpha = 1``. With ``lag == bucket`` the prediction is ``alpha`` times the
  leader's return over the bucket ending at ``t``, so ``rho`` is the correlation of the leader's return at ``t``
  with the follower's at ``t + 1``. The signs of a Gaussian pair with correlation ``rho`` agree with probability
  ``1/2 + arcsin(rho) / pi``: the best directional accuracy of any model.

Example:
    >>> from atlas.data.simulator._config import SimulatorConfig
    >>> alpha = alpha_for_signal(0.3, noise=0.2, lag_steps=6, bucket_steps=6)
    >>> round(signal_for_alpha(alpha, noise=0.2, lag_steps=6, bucket_steps=6), 12)
    0.3
    >>> latent = simulate_latent(SimulatorConfig(days=0.5, signal=0.3))
    >>> len(latent.log_mids), round(latent.alpha, 4)
    (3, 0.2455)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from atlas.data.buckets import parse_width
from atlas.data.simulator._config import SimulatorConfig

_YEAR_SECONDS = 365.0 * 86_400.0
_DAY_SECONDS = 86_400.0
#: Random-stream tags: the first number of every stream key, so no two uses share a stream.
LATENT_STREAM, FOLLOWER_STREAM = 0, 1


def signal_for_alpha(alpha: float, *, noise: float, lag_steps: int, bucket_steps: int) -> float:
    """The planted correlation ``rho`` for a follower weight ``alpha`` (see the module's model)."""
    share = min(lag_steps, bucket_steps) / bucket_steps
    return alpha * math.sqrt(share) / math.sqrt(1 + noise**2 - 2 * share * alpha * (1 - alpha))


def alpha_for_signal(signal: float, *, noise: float, lag_steps: int, bucket_steps: int) -> float:
    """The follower weight ``alpha`` in ``[0, 1]`` that plants correlation ``signal``.

    Solves ``rho**2 (1 + k**2 - 2 q alpha (1 - alpha)) = q alpha**2`` (``k = noise``) for its positive root, in
    the form that stays exact as ``rho`` goes to 0.
    """
    if signal <= 0:
        return 0.0
    share = min(lag_steps, bucket_steps) / bucket_steps
    rho, scale = signal, 1.0 + noise**2
    root = math.sqrt(max(share**2 * rho**2 + share * (1 - 2 * rho**2) * scale, 0.0))
    return min(rho * scale / (share * rho + root), 1.0)


@dataclass(frozen=True, eq=False)
class LatentPaths:
    """Every latent path of a simulation, on the snapshot grid from ``-warmup`` to ``n_snapshots``.

    Position ``j`` of each array is snapshot number ``k = j - warmup``; snapshot 0 is ``start`` itself, which is
    never emitted as a book. The warm-up covers the lag and one day of trades before ``start`` (for the first
    day's 24-hour exchange volume).

    Attributes:
        warmup: the position of snapshot 0.
        efficient: the efficient log price ``p`` (0 at the first position).
        volatility: the diffusion's annualized volatility ``sigma`` at each snapshot.
        relative_volatility: ``sigma`` over its expected value (mean about 1); trade rates and spreads follow it.
        log_mids: each exchange's log midpoint, in the config's exchange order (the leader's is ``efficient``).
        alpha: the followers' weight on the delayed efficient price.
    """

    warmup: int
    efficient: np.ndarray
    volatility: np.ndarray
    relative_volatility: np.ndarray
    log_mids: tuple[np.ndarray, ...]
    alpha: float

    def log_price(self, k: int | np.ndarray) -> float | np.ndarray:
        """The efficient log price at snapshot number(s) ``k``."""
        return self.efficient[np.asarray(k) + self.warmup]

    def prediction(self, config: SimulatorConfig, k: np.ndarray) -> np.ndarray:
        """The best prediction of a follower's log return over the bucket that starts at snapshot ``k``."""
        k = np.asarray(k, dtype=np.int64)
        known = k + min(0, config.bucket_steps - config.lag_steps)
        return self.alpha * (self.log_price(known) - self.log_price(k - config.lag_steps))


def warmup_steps(config: SimulatorConfig) -> int:
    """Snapshots simulated before ``start``: one day (plus one step) of trades, and the lag."""
    return -config.day_steps(-1)[0] + 1 + config.lag_steps


def simulate_latent(config: SimulatorConfig) -> LatentPaths:
    """Simulates the whole horizon's latent paths at once (cheap: a few arrays of one value per snapshot)."""
    warmup = warmup_steps(config)
    first, stop = -warmup, config.n_snapshots + 1
    dt = config.snapshot_ns / 1e9
    jump_mean = config.jump_rate_per_day * dt / _DAY_SECONDS
    shocks, normal, jump_normal, jump_count = config.block_draws(
        (LATENT_STREAM,), first, stop,
        lambda rng, n: np.stack([rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n),
                                 rng.poisson(jump_mean, n)]))
    volatility, relative = _volatility(config, shocks, warmup)
    diffusion = volatility * math.sqrt(dt / _YEAR_SECONDS) * normal
    jumps = np.sqrt(jump_count) * config.jump_std * jump_normal
    efficient = np.concatenate([[0.0], np.cumsum((diffusion + jumps)[:-1])])
    # The followers' own steps: `noise` times the expected deviation of an efficient step, jumps included.
    step_std = np.sqrt(volatility**2 * dt / _YEAR_SECONDS + jump_mean * config.jump_std**2)
    alpha = alpha_for_signal(config.signal, noise=config.noise, lag_steps=config.lag_steps,
                             bucket_steps=config.bucket_steps)
    lag = config.lag_steps
    delayed = np.concatenate([np.full(lag, efficient[0]), efficient[:len(efficient) - lag]])
    mids = [efficient]
    for exchange in config.exchanges[1:]:
        own = config.block_draws((FOLLOWER_STREAM, config.exchange_key(exchange)), first, stop,
                                 lambda rng, n: rng.standard_normal(n))
        walk = np.concatenate([[0.0], np.cumsum((config.noise * step_std * own)[:-1])])
        mids.append(alpha * delayed + (1 - alpha) * efficient + walk)
    return LatentPaths(warmup, efficient, volatility, relative, tuple(mids), alpha)


def _volatility(config: SimulatorConfig, normal: np.ndarray, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    step_ns, size = config.snapshot_ns, len(normal)
    phi = 0.5 ** (step_ns / parse_width(config.vol_half_life).value)
    spread = config.vol_of_vol
    shocks = spread * math.sqrt(1 - phi**2) * normal
    shocks[0] = spread * normal[0]  # start in the stationary distribution
    log_vol = np.fromiter(itertools.accumulate(shocks.tolist(), lambda x, e: phi * x + e), float, size)
    times = config.start.value + (np.arange(size, dtype=np.int64) - warmup) * step_ns
    hours = (times % (86_400 * 10**9)) / (3_600 * 10**9)
    amplitude = config.intraday_amplitude
    intraday = (1 + amplitude * np.cos(2 * np.pi * (hours - 15.0) / 24.0)) / math.sqrt(1 + amplitude**2 / 2)
    stochastic = np.exp(log_vol - spread**2)
    volatility = config.annual_volatility * stochastic * intraday
    expected = math.exp(-spread**2 / 2) / math.sqrt(1 + amplitude**2 / 2)  # E[exp(x - s^2)] E[m]
    return volatility, stochastic * intraday / expected
