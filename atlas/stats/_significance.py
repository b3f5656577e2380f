"""Is a trial better than its baseline? The per-sample differential, its block-bootstrap test, and the
family-wise corrections of many such tests (Holm, Romano-Wolf).

The differential of a sample is what the model gains over its baseline there:

* a classifier: ``correct_model - correct_baseline`` (each 1 or 0), the baseline predicting the majority class of
  the *training* labels everywhere; its mean is the accuracy lift;
* a regressor: ``squared_error_baseline - squared_error_model``, the baseline forecasting zero; its mean is the
  reduction of the mean squared error.

The test is one-sided. The null is that the mean differential is at most zero; its distribution under the null
is the stationary block bootstrap's distribution of the *centered* resampled mean (resampled mean minus the
observed mean, see :mod:`atlas.stats._bootstrap`), which keeps the dependence that overlapping labels create.
Two p-values come from it:

* ``p_value``, from the bootstrap standard error: ``P(Z >= lift / se)`` for a standard normal ``Z``. It is
  continuous, so a family-wise correction over hundreds of trials (which needs p-values far below ``1 / n_boot``)
  can use it; it is the one the corrections take.
* ``p_value_bootstrap``, the share of centered resampled means at or above the lift, ``(1 + k) / (1 + n_boot)``:
  no normal approximation, but never below ``1 / (1 + n_boot)``.

A differential that never varies (a model that always agrees with its baseline) has a standard error of 0: its
p-value is 0 if its lift is positive and 1 otherwise. A trial with fewer than two finite differentials has no
finite statistic: NaN throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from atlas.stats._bootstrap import block_length as default_block_length
from atlas.stats._bootstrap import bootstrap_deviations
from atlas.stats._checks import check_choice, check_count, check_number, normal_upper_tail
from atlas.stats._predictions import PARTS, Predictions


def lift_differential(predictions: Predictions, *, part: str = "test") -> pd.Series:
    """The per-sample differential of one part of a trial's predictions, indexed by bucket.

    Example:
        >>> buckets = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
        >>> frame = pd.DataFrame({"bucket": buckets, "part": "test", "y_true": [0, 1, 1, 0],
        ...                       "forward_return": 0.0, "y_pred": [0, 1, 0, 1],
        ...                       "proba_down": [.6, .2, .7, .4], "proba_up": [.4, .8, .3, .6]})
        >>> from atlas.stats import check_predictions
        >>> trial = check_predictions(frame, bucket_width="1min", horizon=1, baseline_class=1)
        >>> lift_differential(trial).tolist()  # the baseline always says "up"
        [1.0, 0.0, -1.0, 0.0]

    Raises:
        ConfigError: a classifier's predictions without ``baseline_class``, or a part they lack.
    """
    check_choice("part", part, PARTS)
    rows = predictions.part(part)
    y_true, y_pred = rows.y_true, rows.y_pred
    if predictions.task == "classification":
        if predictions.baseline_class is None:
            msg = ("the predictions have no baseline_class (the majority class of the training labels): a "
                   "classifier's lift is measured against it; set it when the predictions are made")
            raise ConfigError(msg)
        values = (y_pred == y_true).astype(np.float64) - (y_true == predictions.baseline_class)
    else:
        values = y_true ** 2 - (y_true - y_pred) ** 2
    return pd.Series(values, index=pd.DatetimeIndex(rows.buckets, name="bucket"), name="differential")


@dataclass(frozen=True)
class TrialSignificance:
    """What :func:`trial_significance` finds (see the module docstring for the null and the p-values).

    Attributes:
        lift: the mean differential. standard_error: its block-bootstrap standard error.
        statistic: ``lift / standard_error``.
        p_value: the one-sided p-value from the bootstrap standard error.
        p_value_bootstrap: the one-sided p-value from the centered resampled means.
        ci_low, ci_high: the bootstrap percentile interval of the lift at ``confidence``.
        confidence: the interval's confidence.
        samples: finite differentials. block_length: the bootstrap's mean block length. n_boot: resamples.
        seed: the seed of the resamples.
    """

    lift: float
    standard_error: float
    statistic: float
    p_value: float
    p_value_bootstrap: float
    ci_low: float
    ci_high: float
    confidence: float
    samples: int
    block_length: int
    n_boot: int
    seed: int


def trial_significance(differential, *, horizon: int, n_boot: int = 1000, block_length: int | None = None,
                       seed: int = 0, confidence: float = 0.95) -> TrialSignificance:
    """Tests whether a trial beats its baseline: a one-sided block-bootstrap test of its mean differential.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> differential = rng.choice([-1.0, 0.0, 1.0], size=5000, p=[0.24, 0.5, 0.26])  # a 2% lift
        >>> result = trial_significance(differential, horizon=1, seed=7)
        >>> round(result.lift, 4), round(result.p_value, 3), result.block_length
        (0.0182, 0.035, 18)
        >>> trial_significance(differential, horizon=1, seed=7) == result  # same seed, same answer
        True

    Args:
        differential: the per-sample differentials in time order (:func:`lift_differential`); NaN where absent.
        horizon: the labels' lookforward in buckets: the shortest mean block.
        n_boot: how many resamples.
        block_length: the mean block length; by default the rule of :func:`~atlas.stats.block_length`.
        seed: the seed of the resamples.
        confidence: the confidence of the lift's interval.
    """
    series = np.asarray(differential, dtype=np.float64)
    if series.ndim != 1:
        msg = f"differential must be one-dimensional, got shape {series.shape}"
        raise ConfigError(msg)
    tested = bootstrap_test(series[None, :], horizon=horizon, n_boot=n_boot, block_length=block_length,
                            seed=seed, confidence=confidence)
    values = {key: float(value[0]) for key, value in tested.items() if key not in ("deviations", "block_length")}
    return TrialSignificance(**values | {"samples": int(values["samples"])}, block_length=tested["block_length"],
                             confidence=confidence, n_boot=n_boot, seed=seed)


def bootstrap_test(series: np.ndarray, *, horizon: int, n_boot: int, block_length: int | None, seed: int,
                   confidence: float) -> dict:
    """The test of :func:`trial_significance` on every row of ``series`` (trials, n) at once, on shared resamples.

    Returns a dict of (trials,) arrays ``lift``, ``standard_error``, ``statistic``, ``p_value``,
    ``p_value_bootstrap``, ``ci_low``, ``ci_high``, ``samples``, the ``block_length`` used, and ``deviations``,
    the (n_boot, trials) centered resampled means over the standard errors, for :func:`romano_wolf`.
    """
    n_boot = check_count("n_boot", n_boot, minimum=20)
    seed = check_count("seed", seed, minimum=0)
    confidence = check_number("confidence", confidence, low=0, high=1, inclusive=False)
    horizon = check_count("horizon", horizon, minimum=1)
    series = np.atleast_2d(np.asarray(series, dtype=np.float64))
    samples = np.isfinite(series).sum(axis=1)
    usable = samples > 1
    length = default_block_length(series[usable], horizon=horizon) if block_length is None else \
        check_count("block_length", block_length, minimum=1)
    trials = len(series)
    nan = np.full(trials, np.nan)
    out = {"lift": nan.copy(), "standard_error": nan.copy(), "statistic": nan.copy(), "p_value": nan.copy(),
           "p_value_bootstrap": nan.copy(), "ci_low": nan.copy(), "ci_high": nan.copy(), "samples": samples,
           "block_length": length, "deviations": np.full((n_boot, trials), np.nan)}
    if not usable.any():
        return out
    means, deviations = bootstrap_deviations(series[usable], block_length=length, n_boot=n_boot, seed=seed)
    with np.errstate(invalid="ignore"):
        resampled = np.nanstd(deviations, axis=0, ddof=1)
    # the block bootstrap understates the variance of overlapping labels (blocks cut their correlation short):
    # the standard error is at least the one the labels' own overlap implies (lags below the horizon)
    error = np.fmax(resampled, overlap_standard_error(series[usable], horizon))
    flat = ~(error > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(flat, np.where(means > 0, np.inf, -np.inf), means / error)
        scaled = np.where(flat, 0.0, deviations / resampled)  # the resamples' shape, at unit scale
    tail = (1 - confidence) / 2
    out["lift"][usable], out["standard_error"][usable], out["statistic"][usable] = means, error, statistic
    out["p_value"][usable] = np.where(flat, np.where(means > 0, 0.0, 1.0), normal_upper_tail(statistic))
    out["p_value_bootstrap"][usable] = (1 + (deviations >= means).sum(axis=0)) / (1 + n_boot)
    low, high = _column_quantiles(deviations, (tail, 1 - tail))
    out["ci_low"][usable], out["ci_high"][usable] = means + low, means + high
    out["deviations"][:, usable] = np.nan_to_num(scaled, nan=-np.inf)
    return out


def overlap_standard_error(series: np.ndarray, horizon: int) -> np.ndarray:
    """The standard error of each row's mean from its autocovariances at lags ``0 .. horizon - 1``: the truncated
    (uniform-kernel) long-run variance, exact for the moving-average dependence that labels overlapping by
    ``horizon`` buckets create; NaN are left out.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noise = rng.normal(size=(1, 100_000))
        >>> round(float(overlap_standard_error(noise, 1)[0] * np.sqrt(100_000)), 2)
        1.0
    """
    series = np.atleast_2d(np.asarray(series, dtype=np.float64))
    counts = np.isfinite(series).sum(axis=1)
    centered = np.where(np.isfinite(series), series - np.nanmean(series, axis=1, keepdims=True), 0.0)
    variance = (centered * centered).sum(axis=1) / np.maximum(counts, 1)
    for lag in range(1, max(1, int(horizon))):
        variance = variance + 2 * (centered[:, lag:] * centered[:, :-lag]).sum(axis=1) / np.maximum(counts, 1)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.maximum(variance, 0.0) / np.maximum(counts, 1))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of p-values (family-wise error), NaN counted in the family as a p of 1.

    Every trial tried is one test of the family, whatever its outcome: a NaN p-value (a trial without a
    finite statistic) stays NaN, but still raises the others' adjustment.

    Example:
        >>> holm([0.01, 0.04, 0.03, np.nan]).round(3).tolist()
        [0.04, 0.09, 0.09, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    filled = np.where(np.isnan(p), 1.0, p)
    order = np.argsort(filled, kind="stable")
    factors = len(p) - np.arange(len(p))
    adjusted = np.empty(len(p))
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(factors * filled[order]))
    return np.where(np.isnan(p), np.nan, adjusted)


def romano_wolf(statistics, bootstrap_statistics) -> np.ndarray:
    """Romano and Wolf's (2005) step-down p-values from studentized statistics and their joint bootstrap.

    ``statistics`` (trials,) are the observed ``lift / se``; ``bootstrap_statistics`` (n_boot, trials) the
    centered resampled means over the same standard errors, drawn on resamples shared by all trials, so the
    maximum over trials in each resample carries the trials' dependence. The hypothesis with the ``j``-th largest
    statistic gets ``(1 + #{resamples whose maximum over the hypotheses not yet rejected reaches it}) /
    (1 + n_boot)``, made monotone. A NaN statistic stays NaN and never enters a maximum.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> romano_wolf(np.array([4.0, 1.0, np.nan]), rng.standard_normal((999, 3))).round(3).tolist()
        [0.001, 0.167, nan]
    """
    observed = np.asarray(statistics, dtype=np.float64)
    draws = np.asarray(bootstrap_statistics, dtype=np.float64)
    valid = np.flatnonzero(~np.isnan(observed))
    out = np.full(len(observed), np.nan)
    if not len(valid):
        return out
    order = valid[np.argsort(-observed[valid], kind="stable")]
    sorted_draws = np.nan_to_num(draws[:, order], nan=-np.inf)
    remaining_max = np.maximum.accumulate(sorted_draws[:, ::-1], axis=1)[:, ::-1]
    p = (1 + (remaining_max >= observed[order]).sum(axis=0)) / (1 + len(draws))
    out[order] = np.maximum.accumulate(p)
    return out


def _column_quantiles(values: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """``np.nanquantile(values, levels, axis=0)`` (linear interpolation) without its loop over columns."""
    ordered = np.sort(values, axis=0)  # NaN sorts last
    count = (~np.isnan(values)).sum(axis=0)
    columns = np.arange(values.shape[1])
    out = []
    for level in levels:
        position = level * np.maximum(count - 1, 0)
        below = np.floor(position).astype(int)
        above = np.minimum(below + 1, np.maximum(count - 1, 0))
        low, high = ordered[below, columns], ordered[above, columns]
        out.append(np.where(count > 0, low + (position - below) * (high - low), np.nan))
    return np.array(out)
