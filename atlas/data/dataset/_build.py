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
from atlas.data.dataset._windows import window_gaps
from atlas.exceptions import ConfigError


def make_dataset(frame: pd.DataFrame, *, features: list[str], label: str, train: tuple, test: tuple,
                 scaling: str | Scaler = "zscore", labels: ClassLabels | str | None = None,
                 balance: str = "none", horizon: int, embargo: int = 0, window: int | None = None,
                 allow_gaps: bool = False, bucket: str | pd.Timedelta | None = None, seed: int = 0) -> Dataset:
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
       ``rows_*``). A window whose rows are not consecutive buckets (a missing bucket: a weekend, an outage, a
       row dropped in step 2) spans a gap: it is dropped, unless ``allow_gaps=True`` keeps it. Its row stays
       as history of the later windows.
    5. Under ``ClassLabels("sign", ties="drop")``, drop the samples whose label is exactly 0 (their rows stay
       as history of the windows after them; without a window the rows go too).
    6. Balance the training samples (never the test samples).

    The dataset's :attr:`~Dataset.report` counts, per part, the windows across gaps (and those dropped) and
    the labels of exactly 0 (and those dropped); :meth:`Dataset.summary` shows them.

    Example:
        >>> index = pd.date_range("2024-01-01", periods=200, freq="1min", tz="UTC")
        >>> x = np.sin(np.arange(200.0))
        >>> frame = pd.DataFrame({"x": x, "ret": np.roll(x, -1)}, index=index)
        >>> ds = make_dataset(frame, features=["x"], label="ret", train=(index[0], index[149]),
        ...                   test=(index[150], index[-1]), labels=ClassLabels("sign"), horizon=1)
        >>> ds.X_train.shape, ds.X_test.shape, ds.class_names
        ((149, 1), (50, 1), ('down', 'up'))
        >>> gappy = frame.drop(index[100:110])  # ten buckets missing in the training part
        >>> ds = make_dataset(gappy, features=["x"], label="ret", train=(index[0], index[149]),
        ...                   test=(index[150], index[-1]), horizon=1, window=5, bucket="1min")
        >>> ds.report["train"]["windows_across_gaps"], ds.report["train"]["windows_dropped"]
        (4, 4)

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
        allow_gaps: keep the windows that span a gap (False: drop them). Recorded in ``transforms``, so serving
            follows the same rule.
        bucket: the bucket width of the frame's grid (``"1min"``), what a step between a window's rows may be;
            by default the frame's ``index.freq``, else the smallest step between its rows
            (``FeatureLabelSet.dataset`` gives its own).
        seed: the seed of the random balancing.

    Returns:
        A :class:`Dataset`; its ``transforms`` (:class:`Transforms`) rebuild the inputs at serving time with
        ``transforms.inputs(frame)``.

    Raises:
        ConfigError: a missing column, a label among the features, an unknown method, windows that overlap or
            are out of order, too few rows in a part (or no sample left after dropping windows across gaps and
            ties), or resampling asked for sequence windows.
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
    if not isinstance(allow_gaps, (bool, np.bool_)):
        msg = f"allow_gaps must be True or False, got allow_gaps={allow_gaps!r}"
        raise ConfigError(msg)
    if bucket is None:
        bucket = _grid_width(frame.index)
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
    transforms = Transforms(fitted_scaler, fitted_labels, window, allow_gaps=bool(allow_gaps))
    built, report, positions = {}, {}, {}
    for name, part in parts.items():
        built[name], report[name], positions[name] = _part(name, part, features, label, transforms, bucket)

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
                   window=window, raw_train=built["train"][3], raw_test=built["test"][3],
                   positions_train=positions["train"], positions_test=positions["test"], report=report)


def _part(name: str, part: pd.DataFrame, features: list[str], label: str, transforms: Transforms,
          bucket) -> tuple[list, dict, np.ndarray | None]:
    """One part's rows, samples (labels, timestamps, raw labels), counts, and the rows its samples end at."""
    window, fitted_labels = transforms.window, transforms.labels
    rows = transforms.inputs(part[features])
    classes = fitted_labels.transform(part[label])
    tie_dropped = classes.isna().to_numpy()  # missing labels went in step 2: only ties="drop" leaves <NA>
    if fitted_labels.class_names is not None:
        y = classes.to_numpy(np.int64, na_value=-1)
    else:
        y = classes.to_numpy(np.float32)
    raw = part[label].to_numpy(np.float64)
    warmup = (window or 1) - 1
    keep = ~tie_dropped[warmup:]
    counts = {"windows_across_gaps": None, "windows_dropped": None,
              "zero_labels": 0 if fitted_labels.method == "barrier" else int((raw[warmup:] == 0).sum()),
              "ties_dropped": int(tie_dropped[warmup:].sum())}
    if window is not None:
        gaps = window_gaps(part.index, window, bucket=bucket)
        counts["windows_across_gaps"] = int(gaps.sum())
        counts["windows_dropped"] = 0 if transforms.allow_gaps else int(gaps.sum())
        if not transforms.allow_gaps:
            keep &= ~gaps
    if not keep.any():
        msg = (f"the {name} part has no sample left: of {len(keep)} rows that end a full window, "
               f"{counts['windows_dropped'] or 0} windows span a gap and {counts['ties_dropped']} labels are "
               f"ties dropped (ties='drop'); widen the {name} window"
               f"{', or give allow_gaps=True' if counts['windows_dropped'] else ''}")
        raise ConfigError(msg)
    chosen = np.flatnonzero(keep) + warmup
    samples = [y[chosen], part.index[chosen], raw[chosen]]
    if window is None:  # a row is its own sample: a dropped sample takes its row along
        return [rows if keep.all() else rows[chosen], *samples], counts, None
    return [rows, *samples], counts, None if keep.all() else chosen


def _grid_width(index) -> pd.Timedelta | None:
    """The width of a grid the index says it is on (its fixed ``freq``), or None: the smallest step decides."""
    try:
        return pd.Timedelta(index.freq) if getattr(index, "freq", None) is not None else None
    except (TypeError, ValueError):  # a calendar offset (business days) has no fixed width
        return None


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
