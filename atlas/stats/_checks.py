"""Argument checks and small numerical helpers shared by the statistics modules.

Every check raises :class:`~atlas.exceptions.ConfigError` with a message that names the argument and says what
was expected; NaN probabilities or predictions are refused here, once, so no statistic crashes on them later.
"""

from __future__ import annotations

import math
import numbers
from statistics import NormalDist

import numpy as np

from atlas.data.dataset._common import check_count  # noqa: F401 (one rule for data and stats)
from atlas.data.dataset._common import check_method as check_choice  # noqa: F401
from atlas.exceptions import ConfigError

#: How far a row of probabilities may sum from 1 (float32 storage and softmax rounding stay far below it).
PROBABILITY_TOLERANCE = 1e-3

_erfc = np.frompyfunc(math.erfc, 1, 1)


def check_number(name: str, value, *, low: float = -math.inf, high: float = math.inf,
                 inclusive: bool = True) -> float:
    """``value`` as a float when it is a real number in ``[low, high]`` (open interval if not ``inclusive``)."""
    bad = isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value)
    if not bad:
        bad = not (low <= value <= high) if inclusive else not (low < value < high)
    if bad:
        brackets = "[]" if inclusive else "()"
        msg = f"{name} must be a number in {brackets[0]}{low}, {high}{brackets[1]}, got {name}={value!r}"
        raise ConfigError(msg)
    return float(value)


def check_floats(name: str, values, *, length: int | None = None, allow_nan: bool = False) -> np.ndarray:
    """A 1-d float64 array of ``values``; ConfigError for another shape, length, or (unless allowed) NaN."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"{name} must hold numbers, got {type(values).__name__}"
        raise ConfigError(msg) from None
    if array.ndim != 1:
        msg = f"{name} must be one-dimensional, got shape {array.shape}"
        raise ConfigError(msg)
    if length is not None and len(array) != length:
        msg = f"{name} must hold one value per sample: {len(array)} values for {length} samples"
        raise ConfigError(msg)
    if not allow_nan:
        check_finite(name, array)
    return array


def check_finite(name: str, array: np.ndarray) -> None:
    """Raises ConfigError naming how many rows of ``array`` are NaN or infinite, and the first of them."""
    bad = ~np.isfinite(array)
    if bad.ndim > 1:
        bad = bad.any(axis=tuple(range(1, bad.ndim)))
    if bad.any():
        first = int(np.argmax(bad))
        msg = (f"{name} has {int(bad.sum())} of {len(bad)} rows that are NaN or infinite (the first is row "
               f"{first}): a model that gives no number there has nothing to score; drop those rows, or record "
               f"the trial as failed")
        raise ConfigError(msg)


def check_classes(y_true, proba, class_names) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Class ids, a (samples, classes) float64 probability array and the class names, each checked.

    Raises:
        ConfigError: shapes that do not fit, no sample, class ids outside ``0..classes-1``, NaN probabilities,
            probabilities outside [0, 1] or rows that do not sum to 1 (within :data:`PROBABILITY_TOLERANCE`).
    """
    names = tuple(str(c) for c in class_names)
    if len(names) < 2 or len(set(names)) != len(names):
        msg = f"class_names must be two or more distinct names, got class_names={names}"
        raise ConfigError(msg)
    proba = np.asarray(proba, dtype=np.float64)
    y_true = check_labels("y_true", y_true, len(names))
    if proba.ndim != 2 or proba.shape != (len(y_true), len(names)) or not len(y_true):
        msg = (f"proba must be (samples, classes) = ({len(y_true)}, {len(names)}) for {len(y_true)} labels and "
               f"class_names={names}, got shape {proba.shape}")
        raise ConfigError(msg)
    check_finite("proba", proba)
    sums = proba.sum(axis=1)
    outside = (proba.min(axis=1) < -PROBABILITY_TOLERANCE) | (proba.max(axis=1) > 1 + PROBABILITY_TOLERANCE) | (
        np.abs(sums - 1) > PROBABILITY_TOLERANCE)
    if outside.any():
        first = int(np.argmax(outside))
        msg = (f"proba must hold probabilities in [0, 1] that sum to 1 in each row; {int(outside.sum())} rows do "
               f"not (the first is row {first}: {proba[first].tolist()}); apply a softmax to scores")
        raise ConfigError(msg)
    return y_true, proba, names


def check_labels(name: str, values, n_classes: int) -> np.ndarray:
    """Class ids as int64, each in ``0..n_classes-1``; ConfigError for anything else (NaN, 1.5, -1, ...)."""
    array = np.asarray(values)
    if array.ndim != 1:
        msg = f"{name} must be one-dimensional class ids, got shape {array.shape}"
        raise ConfigError(msg)
    if array.dtype.kind == "f" and (not np.all(np.isfinite(array)) or np.any(array != np.round(array))):
        msg = f"{name} must be whole class ids 0..{n_classes - 1}, got non-integral or NaN values"
        raise ConfigError(msg)
    if array.dtype.kind not in "iuf" and len(array):
        msg = f"{name} must be class ids 0..{n_classes - 1}, got dtype {array.dtype}"
        raise ConfigError(msg)
    ids = array.astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= n_classes):
        msg = f"{name} must be class ids 0..{n_classes - 1}, got values from {ids.min()} to {ids.max()}"
        raise ConfigError(msg)
    return ids


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing their average rank (as ``scipy.stats.rankdata``).

    Example:
        >>> average_ranks(np.array([0.3, 0.1, 0.3, 0.2])).tolist()
        [3.5, 1.0, 3.5, 2.0]
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(new)
    counts = np.diff(np.r_[starts, len(values)])
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(starts + (counts + 1) / 2, counts)
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """The Pearson correlation of two float arrays; NaN when either is constant or has fewer than 2 values."""
    if len(x) < 2 or x.min() == x.max() or y.min() == y.max():
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()  # elementwise sums: BLAS dot products spin up threads for nothing here
    spread = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    return float((dx * dy).sum()) / spread if spread > 0 else math.nan


def normal_upper_tail(z) -> np.ndarray:
    """``P(Z >= z)`` for a standard normal Z, elementwise, accurate far into the tail (via ``erfc``)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.full(z.shape, np.nan)
    finite = ~np.isnan(z)
    out[finite] = 0.5 * _erfc(z[finite] / math.sqrt(2)).astype(np.float64)
    return out


def normal_quantile(p: float) -> float:
    """The standard normal quantile of ``p`` in (0, 1)."""
    return NormalDist().inv_cdf(p)
