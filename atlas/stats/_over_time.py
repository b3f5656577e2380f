"""Statistics over time and confidence: accuracy per interval against the baseline, precision by threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from atlas.stats._calendar import interval_starts
from atlas.stats._checks import check_classes, check_number

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, eq=False)
class IntervalAccuracy:
    """What :func:`accuracy_over_time` finds.

    Attributes:
        table: one row per interval that has samples, indexed by the interval's start, with the columns
            ``samples``, ``accuracy``, ``baseline_accuracy`` and ``win`` (accuracy strictly above the baseline's).
        win_rate: the share of intervals won; NaN without an interval.
    """

    table: pd.DataFrame
    win_rate: float

    def headline(self) -> dict[str, float]:
        """``interval_win_rate``."""
        return {"interval_win_rate": self.win_rate}


def accuracy_over_time(y_true, y_pred, buckets: pd.DatetimeIndex, *, baseline_class: int,
                       interval: str = "1D") -> IntervalAccuracy:
    """The accuracy in each interval of buckets, and the share of intervals where it beats the baseline's.

    The baseline predicts ``baseline_class`` everywhere (the majority class of the training labels), so its
    accuracy in an interval is the share of that class there. Intervals follow the bucket convention (see
    :func:`~atlas.stats.interval_starts`): the bucket stamped midnight closes the day before.

    Example:
        >>> buckets = pd.DatetimeIndex(["2024-01-01 12:00", "2024-01-01 18:00", "2024-01-02 12:00",
        ...                             "2024-01-02 18:00"], tz="UTC")
        >>> over_time = accuracy_over_time([1, 0, 1, 1], [1, 0, 0, 1], buckets, baseline_class=1)
        >>> over_time.table[["accuracy", "baseline_accuracy", "win"]].values.tolist()
        [[1.0, 0.5, True], [0.5, 1.0, False]]
        >>> over_time.win_rate
        0.5

    Args:
        y_true: the true class ids. y_pred: the predicted class ids.
        buckets: the samples' timestamps, tz-aware.
        baseline_class: the class the baseline always predicts.
        interval: the interval width, a fixed pandas width (default one day).

    Raises:
        ConfigError: lengths that differ or timestamps that are not tz-aware.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or not isinstance(buckets, pd.DatetimeIndex) or \
            buckets.tz is None or len(buckets) != len(y_true):
        msg = (f"accuracy_over_time needs y_true, y_pred and tz-aware buckets of one length, got {y_true.shape}, "
               f"{y_pred.shape} and {type(buckets).__name__} of length {len(buckets)}")
        raise ConfigError(msg)
    codes, starts = pd.factorize(interval_starts(buckets, interval), sort=True)
    count = np.bincount(codes, minlength=len(starts))
    accuracy = np.bincount(codes, (y_true == y_pred).astype(np.float64), len(starts)) / count
    baseline = np.bincount(codes, (y_true == baseline_class).astype(np.float64), len(starts)) / count
    table = pd.DataFrame({"samples": count, "accuracy": accuracy, "baseline_accuracy": baseline,
                          "win": accuracy > baseline}, index=pd.DatetimeIndex(starts, name="interval"))
    return IntervalAccuracy(table, float(table["win"].mean()) if len(table) else math.nan)


def confidence_thresholds(y_true, proba, *, thresholds=DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """Precision and frequency of the predictions whose top probability reaches each threshold.

    The prediction is the most probable class. At threshold ``p``, ``precision`` is the accuracy of the
    samples whose top probability is at least ``p`` (NaN when none is), ``frequency`` the share of samples that
    reach it and ``samples`` their number.

    Example:
        >>> proba = np.array([[.9, .1], [.3, .7], [.45, .55], [.2, .8]])
        >>> confidence_thresholds([0, 1, 0, 0], proba, thresholds=(0.5, 0.75)).values.tolist()
        [[0.5, 1.0, 4.0], [0.5, 0.5, 2.0]]

    Raises:
        ConfigError: invalid probabilities (see :func:`~atlas.stats.classification_statistics`) or thresholds
            outside [0, 1].
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true, proba, _ = check_classes(y_true, proba, tuple(f"class_{k}" for k in range(max(proba.shape[-1], 2))))
    levels = np.array([check_number("threshold", t, low=0, high=1) for t in thresholds])
    top = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    passing = top[None, :] >= levels[:, None]  # (thresholds, samples): a few thresholds, vectorized samples
    samples = passing.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(samples > 0, (passing & correct).sum(axis=1) / samples, np.nan)
    return pd.DataFrame({"precision": precision, "frequency": samples / len(y_true),
                         "samples": samples}, index=pd.Index(levels, name="threshold"))
