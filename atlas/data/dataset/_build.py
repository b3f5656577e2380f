"""make_dataset: from an aligned frame of features and labels to a leak-free Dataset, fitted on train only."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from atlas.data.dataset._balance import BALANCE_METHODS, balance_positions
from atlas.data.dataset._common import check_columns, check_count, check_method
from atlas.data.dataset._dataset import Dataset
from atlas.data.dataset._labels import LABEL_METHODS, ClassLabels
from atlas.data.dataset._scaling import Scaler
from atlas.data.dataset._splits import train_test_split
from atlas.data.dataset._transforms import Transforms
from atlas.exceptions import ConfigError


def make_dataset(frame: pd.DataFrame, *, features: list[str], label: str, train: tuple, test: tuple,
                 scaling: str | Scaler = "zscore", labels: ClassLabels | str | None = None,
                 balance: str = "none", horizon: int, embargo: int = 0, window: int | None = None,
                 seed: int = 0) -> Dataset:
    """Splits a frame by time into train and test data, fitting every transform on the training rows only.

    The steps, in order:

    1. Split by time with :func:`train_test_split`: the rows in ``train`` and ``test`` (ends included), the
       training rows purged by ``horizon`` and embargoed by ``embargo`` rows before the test window.
    2. Drop, in each part, the rows where a feature or the label is missing (NaN): usually the first rows (a
       feature's lookback) and the last ones (a label's lookforward past the data). Infinite values are an
       error.
    3. Fit the scaler on the training features, and the label classes on the training labels; transform both
       parts with them. Row ``t``'s features go with row ``t``'s label: nothing is shifted here (the label
       column already looks forward from ``t``).
    4. With a ``window``, a sample is the window of rows ending at its row; the first ``window - 1`` rows of
       each part have no full window, so they get no label and no timestamp (they remain as history in
       ``rows_*``). Windows run over the rows kept in step 2, so a window spans any row dropped there: clean
       the frame first (``FeatureLabelSet.build`` does).
    5. Balance the training samples (never the test samples).

    Example:
        >>> index = pd.date_range("2024-01-01", periods=200, freq="1min", tz="UTC")
        >>> x = np.sin(np.arange(200.0))
        >>> frame = pd.DataFrame({"x": x, "ret": np.roll(x, -1)}, index=index)
        >>> ds = make_dataset(frame, features=["x"], label="ret", train=(index[0], index[149]),
        ...                   test=(index[150], index[-1]), labels=ClassLabels("sign"), horizon=1)
        >>> ds.X_train.shape, ds.X_test.shape, ds.class_names
        ((149, 1), (50, 1), ('down', 'up'))

    Args:
        frame: feature and label columns on a time-ordered index of unique timestamps (a bucket grid).
        features: the feature columns, in input order.
        label: the label column (not a feature).
        train: ``(start, end)`` of the training window. test: ``(start, end)`` of the later test window.
        scaling: ``"zscore"``, ``"robust"``, ``"none"``, or a :class:`Scaler`.
        labels: a :class:`ClassLabels` (or its method name) to make classes; None keeps the label a number.
        balance: ``"none"``, ``"undersample"``, ``"oversample"`` or ``"class_weights"`` (training data).
        horizon: the label's lookforward in rows (buckets), for the purge.
        embargo: extra rows dropped between training and test rows.
        window: rows per sequence window, or None for row inputs.
        seed: the seed of the random balancing.

    Returns:
        A :class:`Dataset`; its ``transforms`` (:class:`Transforms`) rebuild the inputs at serving time with
        ``transforms.inputs(frame)``.

    Raises:
        ConfigError: a missing column, a label among the features, an unknown method, windows that overlap or
            are out of order, too few rows in a part, or resampling asked for sequence windows.
    """
    features, label = _check_columns(frame, features, label)
    scaler = scaling if isinstance(scaling, Scaler) else Scaler(scaling)
    if labels is None or isinstance(labels, str):
        labels = ClassLabels("none" if labels is None else check_method("labels", labels, LABEL_METHODS))
    elif not isinstance(labels, ClassLabels):
        msg = f"labels must be a ClassLabels, a label method name or None, got {type(labels).__name__}"
        raise ConfigError(msg)
    check_method("balance", balance, BALANCE_METHODS)
    if window is not None:
        window = check_count("window", window, minimum=1)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        msg = f"seed must be a whole number, got seed={seed!r}"
        raise ConfigError(msg)
    if balance != "none" and labels.method == "none":
        msg = (f"balance={balance!r} balances classes, but the label is a number (regression); give "
               f"labels=ClassLabels(...) or balance='none'")
        raise ConfigError(msg)
    if window is not None and balance in ("undersample", "oversample"):
        msg = (f"balance={balance!r} with window={window} would copy every resampled window; "
               f"use balance='class_weights' with sequence windows")
        raise ConfigError(msg)

    split = train_test_split(frame.index, train=train, test=test, horizon=horizon, embargo=embargo)
    parts = {}
    for name, positions in (("train", split.train), ("test", split.test)):
        part = frame.iloc[positions][[*features, label]]
        part = part[part.notna().all(axis=1)]
        needed = window or 1
        if len(part) < needed:
            msg = (f"the {name} part has {len(part)} complete rows (of {len(positions)} in the window after "
                   f"purge and embargo; rows with a missing feature or label are dropped), "
                   f"it needs at least {needed}"
                   f"{f' for window={window}' if window else ''}; widen the {name} window")
            raise ConfigError(msg)
        parts[name] = part

    fitted_scaler = scaler.fit(parts["train"][features])
    fitted_labels = labels.fit(parts["train"][label])
    transforms = Transforms(fitted_scaler, fitted_labels, window)
    built = {}
    for name, part in parts.items():
        rows = transforms.inputs(part[features])
        y = fitted_labels.transform(part[label])
        y = y.to_numpy(np.int64) if fitted_labels.class_names is not None else y.to_numpy(np.float32)
        warmup = (window or 1) - 1
        raw = part[label].to_numpy(np.float64)[warmup:]
        built[name] = [rows, y[warmup:], part.index[warmup:], raw]

    weights = None
    if balance != "none":
        kept, weights = balance_positions(built["train"][1], balance, seed=seed)
        if balance != "class_weights":
            rows_, y_, index_, raw_ = built["train"]
            built["train"] = [rows_[kept], y_[kept], index_[kept], raw_[kept]]
    for values in built.values():
        for array in values[:2]:
            array.flags.writeable = False  # the Dataset keeps these arrays without a copy
    return Dataset(built["train"][0], built["train"][1], built["test"][0], built["test"][1],
                   built["train"][2], built["test"][2], tuple(features), label,
                   class_names=fitted_labels.class_names, sample_weight=weights, transforms=transforms,
                   window=window, raw_train=built["train"][3], raw_test=built["test"][3])


def _check_columns(frame, features, label) -> tuple[list[str], str]:
    if not isinstance(frame, pd.DataFrame):
        msg = f"make_dataset needs a DataFrame of feature and label columns, got {type(frame).__name__}"
        raise ConfigError(msg)
    if isinstance(features, str) or not features:
        msg = f"features must be a non-empty list of column names, got features={features!r}"
        raise ConfigError(msg)
    features = list(features)
    if len(set(features)) != len(features):
        repeated = sorted({f for f in features if features.count(f) > 1})
        msg = f"features names a column more than once: {repeated}"
        raise ConfigError(msg)
    if frame.columns.has_duplicates:
        msg = f"the frame has repeated column names: {sorted(set(frame.columns[frame.columns.duplicated()]))}"
        raise ConfigError(msg)
    check_columns("features", features, frame.columns)
    check_columns("label", [label], frame.columns)
    if label in features:
        msg = f"the label {label!r} is also a feature: a model would read its answer; remove it from features"
        raise ConfigError(msg)
    return features, label


__all__ = ["make_dataset"]
