"""Sequence windows for recurrent and convolutional models, as read-only views: no copy per window.

Rows are buckets on a grid, and some buckets are missing (a weekend, an outage, a row dropped for a missing
value), so ``length`` rows in a row are not always ``length`` buckets in a row. :func:`window_gaps` tells which
windows join buckets across a gap; ``keep=~window_gaps(...)`` drops them from :func:`sequence_windows` and
:func:`window_targets` alike, so windows and targets stay aligned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_count
from atlas.exceptions import ConfigError


def sequence_windows(X: np.ndarray, length: int, *, keep: np.ndarray | None = None) -> np.ndarray:
    """Windows of ``length`` consecutive rows of ``X``: a read-only view, shape (n - length + 1, length, F).

    Window ``k`` holds rows ``k .. k + length - 1``: it ends at the row it predicts for, so it never holds a
    later row. Pair it with :func:`window_targets`. The view shares ``X``'s memory (``np.shares_memory`` is
    true); copy a window before writing to it. With ``keep`` (one flag per window, such as
    ``~window_gaps(index, length)``) only the flagged windows come back: a copy of those, unless every one is
    kept.

    Example:
        >>> X = np.arange(10.0).reshape(5, 2)
        >>> windows = sequence_windows(X, 3)
        >>> windows.shape, windows[0, -1].tolist(), np.shares_memory(windows, X)
        ((3, 3, 2), [4.0, 5.0], True)
        >>> sequence_windows(X, 3, keep=np.array([True, False, True]))[:, -1, 0].tolist()
        [4.0, 8.0]

    Args:
        X: rows in time order, 2-D (rows, features), or 1-D for one feature (then windows are 2-D).
        length: rows per window, 1 to ``len(X)``.
        keep: a boolean flag per window (``n - length + 1``), or None for every window.

    Raises:
        ConfigError: ``X`` is not 1-D or 2-D, ``length`` is below 1 or above the number of rows, or ``keep``
            does not have one flag per window.
    """
    X = np.asarray(X)
    length = check_count("window length", length, minimum=1)
    if X.ndim not in (1, 2):
        msg = f"sequence_windows needs rows in time order, a 1-D or 2-D array, got shape {X.shape}"
        raise ConfigError(msg)
    if length > len(X):
        msg = f"a window of {length} rows needs at least {length} rows, got {len(X)}; use a shorter window"
        raise ConfigError(msg)
    windows = np.lib.stride_tricks.sliding_window_view(X, length, axis=0)  # (n - length + 1, [F,] length)
    windows = windows if X.ndim == 1 else windows.transpose(0, 2, 1)
    keep = _keep(keep, len(windows))
    if keep is None:
        return windows
    kept = windows[keep]  # a gather: one copy of the kept windows
    kept.flags.writeable = False
    return kept


def window_targets(y, length: int, *, keep: np.ndarray | None = None):
    """The targets aligned with :func:`sequence_windows`: ``y[length - 1:]``, then ``[keep]`` when given.

    Window ``k`` ends at row ``k + length - 1``, whose target is ``y[k + length - 1]``. Works on arrays,
    Series (by position) and indexes alike. Give the same ``keep`` as to :func:`sequence_windows`.

    Example:
        >>> window_targets(np.array([10, 11, 12, 13, 14]), 3).tolist()
        [12, 13, 14]
        >>> window_targets(np.array([10, 11, 12, 13, 14]), 3, keep=np.array([True, False, True])).tolist()
        [12, 14]
    """
    length = check_count("window length", length, minimum=1)
    if length > len(y):
        msg = f"a window of {length} rows needs at least {length} targets, got {len(y)}"
        raise ConfigError(msg)
    targets = y.iloc[length - 1:] if hasattr(y, "iloc") else y[length - 1:]
    keep = _keep(keep, len(targets))
    if keep is None:
        return targets
    return targets.iloc[keep] if hasattr(targets, "iloc") else targets[keep]


def window_gaps(index, length: int, *, bucket: str | pd.Timedelta | None = None) -> np.ndarray:
    """For each window of ``length`` rows (as :func:`sequence_windows` makes them), whether it spans a gap.

    A window spans a gap when a step between two of its rows is larger than one bucket: a missing bucket, or a
    row dropped in between. With timestamps (a DatetimeIndex) the bucket is ``bucket`` (by default the
    smallest step between the rows, which misses a gap only when every step is one); with whole numbers (row
    positions on a grid, such as the positions of the rows kept out of a frame) a step above 1 is a gap.

    Example:
        >>> index = pd.DatetimeIndex(["2024-01-05 22:00", "2024-01-05 23:00", "2024-01-08 00:00",
        ...                           "2024-01-08 01:00"])  # a weekend between the second and third
        >>> window_gaps(index, 2, bucket="1h").tolist()
        [False, True, False]
        >>> window_gaps(np.array([0, 1, 2, 4]), 3).tolist()  # row 3 was dropped
        [False, True]

    Args:
        index: the rows' timestamps (DatetimeIndex, or datetime64 values), or their integer positions.
        length: rows per window, 1 to ``len(index)``.
        bucket: the bucket width (``"1min"``, a Timedelta) for timestamps; ignored for positions.

    Returns:
        A boolean array, one flag per window (``len(index) - length + 1``); True: the window spans a gap.

    Raises:
        ConfigError: ``length`` out of range, rows out of time order, or a bucket that is not a positive width.
    """
    length = check_count("window length", length, minimum=1)
    if length > len(index):
        msg = f"a window of {length} rows needs at least {length} rows, got {len(index)}; use a shorter window"
        raise ConfigError(msg)
    stamps, step = _stamps(index, bucket)
    steps = np.diff(stamps)
    if np.any(steps <= 0):
        msg = "window_gaps needs rows in time order, each after the one before (unique, increasing timestamps)"
        raise ConfigError(msg)
    gap = steps > step  # (n - 1) steps; window k reads steps k .. k + length - 2
    gaps_before = np.concatenate([[0], np.cumsum(gap)])  # gaps_before[i]: gaps among the steps before row i
    return (gaps_before[length - 1:] - gaps_before[:len(gaps_before) - length + 1]) > 0


def _stamps(index, bucket) -> tuple[np.ndarray, int]:
    """The rows as int64 on one scale, and the largest step that is not a gap."""
    values = np.asarray(index)
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64), 1
    try:
        stamps = pd.DatetimeIndex(index).as_unit("ns").asi8
    except (TypeError, ValueError):
        msg = f"window_gaps needs timestamps (a DatetimeIndex) or integer row positions, got {values.dtype}"
        raise ConfigError(msg) from None
    if bucket is None:
        steps = np.diff(stamps)
        return stamps, int(steps[steps > 0].min()) if np.any(steps > 0) else 0
    try:
        width = pd.Timedelta(bucket)
    except (TypeError, ValueError):
        width = None
    if width is None or width <= pd.Timedelta(0):
        msg = f"bucket must be a positive width such as '1min' or '1h', got bucket={bucket!r}"
        raise ConfigError(msg)
    return stamps, int(width.value)


def _keep(keep, n: int) -> np.ndarray | None:
    """``keep`` as a boolean array of ``n`` flags, or None when every window is kept."""
    if keep is None:
        return None
    keep = np.asarray(keep)
    if keep.dtype != bool or keep.shape != (n,):
        msg = (f"keep must be one boolean flag per window ({n}), such as ~window_gaps(index, length); got "
               f"{keep.dtype} of shape {keep.shape}")
        raise ConfigError(msg)
    return None if keep.all() else keep


__all__ = ["sequence_windows", "window_gaps", "window_targets"]
