"""Statistics of a regressor on held-out samples: errors, out-of-sample R², direction, IC, rank IC and ICIR."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from atlas.stats._calendar import interval_starts
from atlas.stats._checks import average_ranks, check_floats, check_number, pearson

#: The fewest samples an interval needs for its IC to count in the ICIR (two points always correlate ±1).
MIN_INTERVAL_SAMPLES = 3


@dataclass(frozen=True, eq=False)
class RegressionStatistics:
    """What :func:`regression_statistics` finds; :meth:`headline` flattens it for MLflow.

    Attributes:
        samples: how many samples were scored.
        rmse: the root mean squared error. mae: the mean absolute error.
        r2_oos: ``1 - SSE / sum((y - train_mean)^2)``: the out-of-sample R² against the training mean as the
            forecast; negative when the model does worse than that mean. NaN if every label equals it.
        directional_accuracy: the share of samples, among those whose label is not 0, where the prediction has
            the label's sign (a prediction of exactly 0 has no sign, so it is wrong). NaN if every label is 0.
        ic: the information coefficient, the Pearson correlation of predictions and labels.
        rank_ic: the Spearman correlation (Pearson on average ranks).
        icir: the mean of the per-interval ICs over their standard deviation (``ddof=1``); NaN without
            timestamps or with fewer than two intervals that have an IC.
        interval_ic: the IC of each interval (NaN where an interval has fewer than
            :data:`MIN_INTERVAL_SAMPLES` samples or a constant side), indexed by interval start; empty
            without timestamps.
    """

    samples: int
    rmse: float
    mae: float
    r2_oos: float
    directional_accuracy: float
    ic: float
    rank_ic: float
    icir: float
    interval_ic: pd.Series

    def headline(self) -> dict[str, float]:
        """``rmse``, ``mae``, ``r2_oos``, ``directional_accuracy``, ``ic``, ``rank_ic`` and ``icir``."""
        return {"rmse": self.rmse, "mae": self.mae, "r2_oos": self.r2_oos,
                "directional_accuracy": self.directional_accuracy, "ic": self.ic, "rank_ic": self.rank_ic,
                "icir": self.icir}


def regression_statistics(y_true, y_pred, *, train_mean: float, buckets: pd.DatetimeIndex | None = None,
                          interval: str = "1D") -> RegressionStatistics:
    """Scores a regressor's predictions against the labels.

    Example:
        >>> buckets = pd.date_range("2024-01-01 08:00", periods=6, freq="8h", tz="UTC")
        >>> stats = regression_statistics([1.0, -1.0, 2.0, 0.5, -0.5, 1.0], [0.5, -0.5, 1.0, 0.4, 0.1, 0.2],
        ...                               train_mean=0.0, buckets=buckets)
        >>> round(stats.r2_oos, 3), round(stats.directional_accuracy, 3), round(stats.ic, 3)
        (0.665, 0.833, 0.921)
        >>> stats.interval_ic.tolist(), round(stats.icir, 3)  # one IC a day; midnight closes its day
        ([1.0, 0.5], 2.121)

    Args:
        y_true: the labels. y_pred: the predictions, one per label.
        train_mean: the mean of the training labels: the forecast the out-of-sample R² compares with.
        buckets: the samples' timestamps, for the ICIR; without them the ICIR is NaN.
        interval: the interval of the ICIR's ICs, a fixed pandas width (default one day).

    Raises:
        ConfigError: no sample, lengths that differ, NaN or infinite values, or timestamps that do not fit.
    """
    y_true = check_floats("y_true", y_true)
    y_pred = check_floats("y_pred", y_pred, length=len(y_true))
    train_mean = check_number("train_mean", train_mean)
    if not len(y_true):
        msg = "regression_statistics needs at least one sample, got none"
        raise ConfigError(msg)
    error = y_pred - y_true
    baseline = float(((y_true - train_mean) ** 2).sum())
    moving = y_true != 0
    interval_ic = _interval_ic(y_true, y_pred, buckets, interval)
    finite = interval_ic.dropna().to_numpy()
    spread = finite.std(ddof=1) if len(finite) > 1 else 0.0
    return RegressionStatistics(
        samples=len(y_true), rmse=math.sqrt(float((error ** 2).mean())), mae=float(np.abs(error).mean()),
        r2_oos=1 - float((error ** 2).sum()) / baseline if baseline > 0 else math.nan,
        directional_accuracy=float((np.sign(y_pred[moving]) == np.sign(y_true[moving])).mean())
        if moving.any() else math.nan,
        ic=pearson(y_pred, y_true), rank_ic=pearson(average_ranks(y_pred), average_ranks(y_true)),
        icir=float(finite.mean() / spread) if spread > 0 else math.nan, interval_ic=interval_ic)


def _interval_ic(y_true: np.ndarray, y_pred: np.ndarray, buckets, interval: str) -> pd.Series:
    """The Pearson IC of each interval, from per-interval sums of centered values (no loop over intervals)."""
    if buckets is None:
        return pd.Series(dtype=np.float64, name="ic")
    if not isinstance(buckets, pd.DatetimeIndex) or buckets.tz is None or len(buckets) != len(y_true):
        msg = (f"buckets must be a tz-aware DatetimeIndex with one timestamp per sample ({len(y_true)}), got "
               f"{type(buckets).__name__} of length {len(buckets)}")
        raise ConfigError(msg)
    codes, starts = pd.factorize(interval_starts(buckets, interval), sort=True)
    groups = len(starts)
    count = np.bincount(codes, minlength=groups).astype(np.float64)
    x = y_pred - (np.bincount(codes, y_pred, groups) / count)[codes]
    y = y_true - (np.bincount(codes, y_true, groups) / count)[codes]
    covariance = np.bincount(codes, x * y, groups)
    spread = np.sqrt(np.bincount(codes, x * x, groups) * np.bincount(codes, y * y, groups))
    varies = (_group_range(codes, y_pred, groups) > 0) & (_group_range(codes, y_true, groups) > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ic = np.where(varies & (count >= MIN_INTERVAL_SAMPLES), covariance / spread, np.nan)
    return pd.Series(ic, index=pd.DatetimeIndex(starts, name="interval"), name="ic")


def _group_range(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """Each group's maximum minus its minimum: exactly 0 for a constant group, whatever the rounding."""
    high, low = np.full(groups, -np.inf), np.full(groups, np.inf)
    np.maximum.at(high, codes, values)
    np.minimum.at(low, codes, values)
    return high - low
