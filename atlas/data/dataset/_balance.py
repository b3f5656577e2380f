"""Class balancing of training data: random under- or oversampling (seeded, time-ordered), class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_method
from atlas.exceptions import ConfigError

#: The balancing methods, by name.
BALANCE_METHODS = ("none", "undersample", "oversample", "class_weights")


def balance(X, y, method: str = "none", *, seed: int = 0):
    """Balances the classes of training data; apply it to training data only, never to test data.

    * ``"undersample"``: every class keeps as many rows as the rarest class has, drawn at random without
      replacement.
    * ``"oversample"``: every class grows to as many rows as the commonest class has: all its rows, plus rows
      drawn at random with replacement.
    * ``"class_weights"``: rows stay; each row gets the weight ``n / (k * count[class])`` (``n`` rows, ``k``
      classes present), so every class carries the same total weight, ``n / k``.
    * ``"none"``: unchanged.

    Resampled rows keep their time order (the kept positions are sorted; a row drawn twice appears twice, side
    by side). The draws come from ``numpy.random.default_rng(seed)``: the same seed gives the same rows.

    Example:
        >>> X = np.arange(6.0).reshape(6, 1)
        >>> y = np.array([0, 0, 0, 0, 1, 1])
        >>> _, y_under, _ = balance(X, y, "undersample", seed=1)
        >>> np.bincount(y_under).tolist()
        [2, 2]
        >>> balance(X, y, "class_weights")[2].tolist()
        [0.75, 0.75, 0.75, 0.75, 1.5, 1.5]

    Args:
        X: rows, a numpy array or a DataFrame (rows are selected with ``.iloc``).
        y: class numbers, one per row.
        method: ``"none"``, ``"undersample"``, ``"oversample"`` or ``"class_weights"``.
        seed: the random generator's seed.

    Returns:
        ``(X, y, sample_weight)``; ``sample_weight`` is a float64 array for ``"class_weights"``, else None.

    Raises:
        ConfigError: an unknown method, labels that are not whole class numbers, or X and y of other lengths.
    """
    check_method("balance method", method, BALANCE_METHODS)
    y = np.asarray(y)
    if y.ndim != 1 or len(X) != len(y):
        msg = f"balance: X has {len(X)} rows and y has shape {y.shape}; give one class number per row"
        raise ConfigError(msg)
    if method == "none":
        return X, y, None
    if not len(y):
        msg = "balance: no training rows to balance; widen the training window"
        raise ConfigError(msg)
    floats = np.issubdtype(y.dtype, np.floating)
    if not (np.issubdtype(y.dtype, np.integer) or (floats and np.all(y == np.round(y)))):
        msg = (f"balance {method!r} needs class numbers, got labels of dtype {y.dtype}; balancing is for "
               f"classification: give labels=ClassLabels(...), or balance='none' for regression")
        raise ConfigError(msg)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if method == "class_weights":
        weights = len(y) / (len(classes) * counts)
        return X, y, weights[inverse].astype(np.float64)
    rng = np.random.default_rng(seed)
    keep = []
    for k, count in enumerate(counts):
        rows = np.flatnonzero(inverse == k)
        if method == "undersample":
            keep.append(rng.choice(rows, size=counts.min(), replace=False))
        else:
            keep.append(np.concatenate([rows, rng.choice(rows, size=counts.max() - count, replace=True)]))
    positions = np.sort(np.concatenate(keep), kind="stable")
    rows_of_x = X.iloc[positions] if isinstance(X, (pd.DataFrame, pd.Series)) else np.asarray(X)[positions]
    return rows_of_x, y[positions], None


def balance_positions(y: np.ndarray, method: str, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """The row positions :func:`balance` keeps and its sample weights, without touching any features."""
    positions = np.arange(len(y))
    kept, _, weights = balance(positions, y, method, seed=seed)
    return np.asarray(kept), weights


__all__ = ["BALANCE_METHODS", "balance", "balance_positions"]
