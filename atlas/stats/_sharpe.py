"""The probabilistic and the deflated Sharpe ratio (Bailey and López de Prado, 2012 and 2014).

All Sharpe ratios here are per period (per trade), never annualized: the formulas count observations.

* The probabilistic Sharpe ratio is the probability that the true Sharpe ratio exceeds a benchmark ``SR0``,
  given an estimate ``SR`` from ``T`` observations with skewness ``g3`` and (non-excess) kurtosis ``g4``:
  ``PSR = Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``.
* The deflated Sharpe ratio is the PSR whose benchmark is the Sharpe ratio the best of ``N`` trials reaches
  by luck alone: ``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``, with ``V`` the
  variance of the trials' Sharpe ratios and ``gamma`` the Euler-Mascheroni constant.

One trial has no selection to deflate (``SR0 = 0``, the DSR is the PSR against zero). Where the variance cannot
be estimated (fewer than two trials with a finite Sharpe ratio among several) or the PSR's denominator is not
positive (extreme skew), the result is NaN.
"""

from __future__ import annotations

import math

import numpy as np

from atlas.exceptions import ConfigError
from atlas.stats._checks import check_count, normal_quantile, normal_upper_tail

EULER_GAMMA = 0.5772156649015329


def expected_maximum_sharpe(n_trials: int, variance: float) -> float:
    """The Sharpe ratio the best of ``n_trials`` unskilled trials is expected to reach (0 for one trial).

    Example:
        >>> round(expected_maximum_sharpe(100, 0.5 / 250) * math.sqrt(250), 4)  # the paper's example, annualized
        1.7894
    """
    n_trials = check_count("n_trials", n_trials, minimum=1)
    if n_trials == 1:
        return 0.0
    if not (variance >= 0):
        return math.nan
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * normal_quantile(1 - 1 / n_trials)
                                  + EULER_GAMMA * normal_quantile(1 - 1 / (n_trials * math.e)))


def probabilistic_sharpe_ratio(sharpe: float, *, observations: float, benchmark: float = 0.0,
                               skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """The probability that the true Sharpe ratio exceeds ``benchmark``, given the estimate ``sharpe``.

    Example:
        >>> round(probabilistic_sharpe_ratio(0.1, observations=400), 4)
        0.9768

    Args:
        sharpe: the estimated per-period Sharpe ratio.
        observations: how many independent returns it was estimated from (``T``).
        benchmark: the Sharpe ratio to beat, per period.
        skew: the returns' skewness. kurtosis: their kurtosis, 3 for a normal distribution (not the excess).

    Raises:
        ConfigError: fewer than two observations.
    """
    if not observations > 1:
        msg = f"the probabilistic Sharpe ratio needs more than one observation, got observations={observations}"
        raise ConfigError(msg)
    if not all(math.isfinite(v) for v in (sharpe, benchmark, skew, kurtosis)):
        return math.nan
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe ** 2
    if spread <= 0:
        return math.nan
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread)
    return float(1 - normal_upper_tail(z))


def deflated_sharpe_ratio(sharpe: float, *, n_trials: int, variance: float, observations: float,
                          skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """The probability that the best of ``n_trials`` trials has a true Sharpe ratio above what luck gives.

    Example:
        >>> # Bailey and López de Prado (2014): SR 2.5 a year over 5 years of daily returns, skew -3,
        >>> # kurtosis 10, 100 trials whose annualized Sharpe ratios have variance 1/2: the paper's DSR 0.9004
        >>> round(deflated_sharpe_ratio(2.5 / math.sqrt(250), n_trials=100, variance=0.5 / 250,
        ...                             observations=1250, skew=-3, kurtosis=10), 4)
        0.9004

    Args:
        sharpe: the best trial's per-period Sharpe ratio.
        n_trials: how many trials were tried (all of them, whatever their outcome).
        variance: the variance of the trials' per-period Sharpe ratios.
        observations: the best trial's independent returns (``T``).
        skew: the best trial's return skewness. kurtosis: their kurtosis (3 for normal returns).
    """
    benchmark = expected_maximum_sharpe(n_trials, variance)
    return probabilistic_sharpe_ratio(sharpe, observations=observations, benchmark=benchmark, skew=skew,
                                      kurtosis=kurtosis) if math.isfinite(benchmark) else math.nan


def moments(returns: np.ndarray) -> tuple[float, float]:
    """The skewness and (non-excess) kurtosis of the finite returns, population moments as in the paper.

    Example:
        >>> [round(v, 3) for v in moments(np.array([0.01, -0.02, 0.03, 0.0, np.nan]))]
        [-0.0, 1.852]
    """
    values = np.asarray(returns, dtype=np.float64)
    values = values[np.isfinite(values)]
    deviation = values - values.mean() if len(values) else values
    variance = float((deviation ** 2).mean()) if len(values) else 0.0
    if variance <= 0:
        return math.nan, math.nan
    return (float((deviation ** 3).mean()) / variance ** 1.5, float((deviation ** 4).mean()) / variance ** 2)
