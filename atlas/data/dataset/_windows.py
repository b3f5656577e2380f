"""Sequence windows for recurrent and convolutional models, as read-only views: no copy per window."""

from __future__ import annotations

import numpy as np

from atlas.data.dataset._common import check_count
from atlas.exceptions import ConfigError


def sequence_windows(X: np.ndarray, length: int) -> np.ndarray:
    """Windows of ``length`` consecutive rows of ``X``: a read-only view, shape (n - length + 1, length, F).

    Window ``k`` holds rows ``k .. k + length - 1``: it ends at the row it predicts for, so it never holds a
    later row. Pair it with :func:`window_targets`. The view shares ``X``'s memory (``np.shares_memory`` is
    true); copy a window before writing to it.

    Example:
        >>> X = np.arange(10.0).reshape(5, 2)
        >>> windows = sequence_windows(X, 3)
        >>> windows.shape, windows[0, -1].tolist(), np.shares_memory(windows, X)
        ((3, 3, 2), [4.0, 5.0], True)

    Args:
        X: rows in time order, 2-D (rows, features), or 1-D for one feature (then windows are 2-D).
        length: rows per window, 1 to ``len(X)``.

    Raises:
        ConfigError: ``X`` is not 1-D or 2-D, or ``length`` is below 1 or above the number of rows.
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
    return windows if X.ndim == 1 else windows.transpose(0, 2, 1)


def window_targets(y, length: int):
    """The targets aligned with :func:`sequence_windows`: ``y[length - 1:]``.

    Window ``k`` ends at row ``k + length - 1``, whose target is ``y[k + length - 1]``. Works on arrays,
    Series (by position) and indexes alike.

    Example:
        >>> window_targets(np.array([10, 11, 12, 13, 14]), 3).tolist()
        [12, 13, 14]
    """
    length = check_count("window length", length, minimum=1)
    if length > len(y):
        msg = f"a window of {length} rows needs at least {length} targets, got {len(y)}"
        raise ConfigError(msg)
    return y.iloc[length - 1:] if hasattr(y, "iloc") else y[length - 1:]


__all__ = ["sequence_windows", "window_targets"]
