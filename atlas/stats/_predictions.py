"""The predictions frame: the evidence each finished trial stores, one row per predicted bucket.

Columns, in this order:

=================  ==========================  ========================================================
column             dtype                        meaning
=================  ==========================  ========================================================
``bucket``         datetime64[ns, UTC]          the bucket predicted for (a label's timestamp)
``part``           str                          ``"test"`` or ``"validation"``
``y_true``         int64 / float64              the class id (classification) or the label (regression)
``forward_return`` float64, NaN where unknown   the realized forward return behind the label: the label
                                                column's raw value before it became a class
``y_pred``         int64 / float64              the predicted class id, or the predicted value
``proba_<name>``   float64 (float32 on disk)    classifiers only: one column per class, in class order
=================  ==========================  ========================================================

Metadata: ``task`` (``"classification"`` or ``"regression"``), ``class_names`` (lowest class first),
``bucket_width`` (``"1min"``), ``horizon`` (the label's lookforward, in buckets), and the training baseline that
significance needs but the held-out rows cannot give: ``baseline_class`` (the majority class of the *training*
labels) or ``train_mean`` (the training labels' mean, for the out-of-sample R²).

Within a part the buckets strictly increase. NaN is refused in ``y_true``, ``y_pred`` and the probabilities: a
model that produced NaN has nothing to digest, and the trial should be recorded as failed instead.

Size: at most :data:`MAX_ROWS_PER_PART` (1,000,000) rows per part; a larger part is refused with a
:class:`~atlas.exceptions.ConfigError` rather than downsampled, because thinning the buckets would change the
overlap of the labels that the significance tests account for, and truncating would hide data. A million
one-minute buckets are almost two years of test window; use a wider bucket or a shorter test window. On disk the
probabilities are float32 (their 7 significant digits are finer than any statistic here resolves) and the file
is zstd-compressed: about 20 to 40 MB for a million rows of a three-class model.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from atlas.data.buckets import width_name
from atlas.exceptions import ConfigError
from atlas.stats._checks import check_choice, check_classes, check_count, check_floats, check_labels

TASKS = ("classification", "regression")
PARTS = ("test", "validation")
PROBA_PREFIX = "proba_"
#: The most rows a part may hold (see the module's note on size).
MAX_ROWS_PER_PART = 1_000_000
#: Where the metadata lives: ``frame.attrs[ATTRS_KEY]`` in memory, the Parquet schema metadata on disk.
ATTRS_KEY = "atlas.predictions"
_FORMAT_VERSION = 1
_BASE_COLUMNS = ("bucket", "part", "y_true", "forward_return", "y_pred")


@dataclass(frozen=True, eq=False)
class Predictions:
    """A checked predictions frame with its metadata (see the module docstring for the contract).

    Build it with :func:`check_predictions`; the constructor checks the same things and keeps a normalized copy
    of the frame (canonical column order and dtypes, a fresh RangeIndex).

    Example:
        >>> buckets = pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC")
        >>> frame = pd.DataFrame({"bucket": buckets, "part": "test", "y_true": [0, 1, 1],
        ...                       "forward_return": [-0.001, 0.002, 0.0005], "y_pred": [0, 1, 0],
        ...                       "proba_down": [0.6, 0.3, 0.55], "proba_up": [0.4, 0.7, 0.45]})
        >>> predictions = check_predictions(frame, bucket_width="1min", horizon=1, baseline_class=1)
        >>> predictions.task, predictions.class_names, predictions.proba.shape
        ('classification', ('down', 'up'), (3, 2))

    Attributes:
        frame: the normalized frame.
        task: ``"classification"`` or ``"regression"``.
        class_names: the classes, lowest id first; None for regression.
        bucket_width: the canonical bucket width (``"1min"``).
        horizon: the label's lookforward in buckets (the forward return spans this many buckets).
        baseline_class: the majority class of the training labels (classification), or None if unknown.
        train_mean: the mean of the training labels (regression), or None if unknown.
    """

    frame: pd.DataFrame
    task: str
    class_names: tuple[str, ...] | None
    bucket_width: str
    horizon: int
    baseline_class: int | None = None
    train_mean: float | None = None

    def __post_init__(self) -> None:
        def set_(name: str, value) -> None:
            object.__setattr__(self, name, value)

        if not isinstance(self.frame, pd.DataFrame):
            msg = f"predictions must be a pandas DataFrame, got {type(self.frame).__name__}"
            raise ConfigError(msg)
        check_choice("task", self.task, TASKS)
        classes = self.task == "classification"
        if classes:
            names = tuple(str(c) for c in (self.class_names or ()))
            if len(names) < 2 or len(set(names)) != len(names):
                msg = f"a classifier's predictions need two or more distinct class_names, got {names!r}"
                raise ConfigError(msg)
            set_("class_names", names)
        elif self.class_names is not None:
            msg = f"a regressor's predictions have no class_names, got class_names={self.class_names!r}"
            raise ConfigError(msg)
        set_("bucket_width", width_name(self.bucket_width))
        set_("horizon", check_count("horizon", self.horizon, minimum=1))
        if self.baseline_class is not None:
            if not classes:
                msg = "baseline_class is a classifier's training majority class; a regressor has train_mean"
                raise ConfigError(msg)
            set_("baseline_class", int(check_labels("baseline_class", [self.baseline_class],
                                                    len(self.class_names))[0]))
        if self.train_mean is not None:
            if isinstance(self.train_mean, bool) or not isinstance(self.train_mean, numbers.Real) or \
                    not math.isfinite(self.train_mean):
                msg = f"train_mean must be a finite number, got train_mean={self.train_mean!r}"
                raise ConfigError(msg)
            set_("train_mean", float(self.train_mean))
        set_("frame", _normalized(self.frame, self.task, self.class_names))

    @property
    def proba_columns(self) -> list[str]:
        """``proba_<name>`` for each class, in class order; empty for regression."""
        return [PROBA_PREFIX + name for name in (self.class_names or ())]

    @property
    def n_classes(self) -> int:
        """The number of classes; 0 for regression."""
        return len(self.class_names or ())

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts present, in :data:`PARTS` order."""
        present = set(self.frame["part"].unique())
        return tuple(p for p in PARTS if p in present)

    @property
    def buckets(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.frame["bucket"])

    @property
    def y_true(self) -> np.ndarray:
        return self.frame["y_true"].to_numpy()

    @property
    def y_pred(self) -> np.ndarray:
        return self.frame["y_pred"].to_numpy()

    @property
    def forward_return(self) -> np.ndarray:
        return self.frame["forward_return"].to_numpy()

    @property
    def proba(self) -> np.ndarray | None:
        """The class probabilities, (rows, classes) float64; None for regression."""
        return self.frame[self.proba_columns].to_numpy(np.float64) if self.class_names else None

    def part(self, name: str) -> Predictions:
        """The rows of one part, as Predictions with the same metadata.

        Raises:
            ConfigError: ``name`` is not a part, or the frame has no row of it.
        """
        check_choice("part", name, PARTS)
        if self.parts == (name,):
            return self
        rows = self.frame[self.frame["part"] == name]
        if rows.empty:
            msg = f"the predictions have no {name!r} rows; parts present: {list(self.parts)}"
            raise ConfigError(msg)
        # the rows of checked predictions are checked already: the same metadata, a fresh index, no second check
        part = object.__new__(Predictions)
        for key, value in vars(self).items():
            object.__setattr__(part, key, value)
        object.__setattr__(part, "frame", rows.reset_index(drop=True))
        return part

    def metadata(self) -> dict:
        """The metadata as plain JSON values: the keyword arguments of :func:`check_predictions`."""
        return {"task": self.task, "class_names": None if self.class_names is None else list(self.class_names),
                "bucket_width": self.bucket_width, "horizon": self.horizon,
                "baseline_class": self.baseline_class, "train_mean": self.train_mean}

    def to_frame(self) -> pd.DataFrame:
        """A copy of the frame carrying the metadata in ``attrs``, so :func:`check_predictions` reads it back."""
        frame = self.frame.copy()
        frame.attrs[ATTRS_KEY] = self.metadata()
        return frame

    def to_parquet(self, path: str | Path) -> Path:
        """Writes the frame to a zstd-compressed Parquet file, the metadata in its schema; returns the path."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        floats32 = set(self.proba_columns)
        columns = {name: pa.array(values.to_numpy(np.float32 if name in floats32 else None))
                   for name, values in self.frame.items() if name != "bucket"}
        columns = {"bucket": pa.array(self.buckets.asi8, type=pa.timestamp("ns", tz="UTC")), **columns}
        metadata = {"version": _FORMAT_VERSION, **self.metadata()}
        table = pa.table(columns, metadata={ATTRS_KEY.encode(): json.dumps(metadata).encode()})
        path = Path(path)
        pq.write_table(table, path, compression="zstd")
        return path

    def to_bytes(self) -> bytes:
        """The Parquet file of :meth:`to_parquet`, in memory (what a worker sends back to the sweep's driver)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="atlas-predictions-") as folder:
            return self.to_parquet(Path(folder) / "predictions.parquet").read_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Predictions:
        """Reads :meth:`to_bytes`' file from memory, checking it again."""
        import pyarrow as pa

        return cls.from_parquet(pa.BufferReader(data))

    @classmethod
    def from_parquet(cls, path: str | Path) -> Predictions:
        """Reads a file written by :meth:`to_parquet`, checking it again.

        Raises:
            ConfigError: the file has no Atlas predictions metadata, or a format version this code cannot read.
        """
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(ATTRS_KEY.encode())
        if raw is None:
            msg = f"{path} is not an Atlas predictions file: its Parquet schema has no {ATTRS_KEY!r} metadata"
            raise ConfigError(msg)
        metadata = json.loads(raw)
        version = metadata.pop("version", None)
        if version != _FORMAT_VERSION:
            msg = f"{path} holds predictions format version {version}; this Atlas reads version {_FORMAT_VERSION}"
            raise ConfigError(msg)
        return cls(table.to_pandas(), **metadata)

    def __repr__(self) -> str:
        sizes = {p: int((self.frame["part"] == p).sum()) for p in self.parts}
        return (f"Predictions({self.task}, rows={sizes}, classes={self.class_names}, "
                f"bucket_width={self.bucket_width!r}, horizon={self.horizon})")


def check_predictions(frame: pd.DataFrame, *, task: str | None = None, class_names=None,
                      bucket_width: str | None = None, horizon: int | None = None,
                      baseline_class: int | None = None, train_mean: float | None = None) -> Predictions:
    """Checks a predictions frame against the contract and returns it as :class:`Predictions`.

    Metadata comes from the keyword arguments, else from ``frame.attrs["atlas.predictions"]`` (as
    :meth:`Predictions.to_frame` leaves it); ``task`` and ``class_names`` are otherwise read from the
    ``proba_<name>`` columns (present: a classifier, in column order; absent: a regressor).

    Example:
        >>> frame = pd.DataFrame({"bucket": pd.date_range("2024-01-01", periods=2, freq="1h", tz="UTC"),
        ...                       "part": "test", "y_true": [0.01, -0.02], "forward_return": [0.01, -0.02],
        ...                       "y_pred": [0.002, 0.001]})
        >>> check_predictions(frame, bucket_width="1h", horizon=1)
        Predictions(regression, rows={'test': 2}, classes=None, bucket_width='1h', horizon=1)
        >>> check_predictions(frame.drop(columns="y_pred"), bucket_width="1h", horizon=1)
        Traceback (most recent call last):
        ...
        atlas.exceptions.ConfigError: the predictions frame has no column 'y_pred' ...

    Raises:
        ConfigError: a missing or unknown column (named), a dtype or value that breaks the contract, buckets that
            do not increase within a part, a part above :data:`MAX_ROWS_PER_PART` rows, or missing metadata.
    """
    if not isinstance(frame, pd.DataFrame):
        msg = f"predictions must be a pandas DataFrame, got {type(frame).__name__}"
        raise ConfigError(msg)
    stored = dict(frame.attrs.get(ATTRS_KEY) or {})
    given = {"task": task, "class_names": class_names, "bucket_width": bucket_width, "horizon": horizon,
             "baseline_class": baseline_class, "train_mean": train_mean}
    meta = {key: value if value is not None else stored.get(key) for key, value in given.items()}
    probas = [str(c)[len(PROBA_PREFIX):] for c in frame.columns if str(c).startswith(PROBA_PREFIX)]
    if meta["task"] is None:
        meta["task"] = "classification" if probas else "regression"
    if meta["class_names"] is None and meta["task"] == "classification":
        meta["class_names"] = tuple(probas)
    for key, example in (("bucket_width", "'1min'"), ("horizon", "5")):
        if meta[key] is None:
            msg = (f"check_predictions needs {key} (e.g. {key}={example}): pass it, or keep it in "
                   f"frame.attrs[{ATTRS_KEY!r}] as Predictions.to_frame() does")
            raise ConfigError(msg)
    return Predictions(frame, **meta)


def _normalized(frame: pd.DataFrame, task: str, class_names: tuple[str, ...] | None) -> pd.DataFrame:
    columns = [*_BASE_COLUMNS, *(PROBA_PREFIX + c for c in class_names or ())]
    present = [str(c) for c in frame.columns]
    for column in columns:
        if column not in present:
            hint = (f"; a classifier needs one {PROBA_PREFIX}<class> column per class of {class_names}"
                    if column.startswith(PROBA_PREFIX) else "")
            msg = f"the predictions frame has no column {column!r} (columns: {present}){hint}"
            raise ConfigError(msg)
    extra = [c for c in present if c not in columns]
    if extra:
        msg = (f"the predictions frame has columns outside the contract: {extra}; expected exactly {columns}"
               + (" (a regressor has no probabilities)" if task == "regression" and any(
                   c.startswith(PROBA_PREFIX) for c in extra) else ""))
        raise ConfigError(msg)
    n = len(frame)
    buckets = _buckets(frame["bucket"])
    part = frame["part"].astype(str).to_numpy()
    unknown = sorted(set(pd.unique(part)) - set(PARTS))  # a hash of few distinct values, not a sort of strings
    if unknown:
        msg = f"the predictions frame's part column holds {unknown}; each row must be one of {list(PARTS)}"
        raise ConfigError(msg)
    ns = buckets.asi8
    for name in PARTS:
        rows = part == name
        if rows.sum() > MAX_ROWS_PER_PART:
            msg = (f"the {name!r} part holds {int(rows.sum()):,} rows, above the {MAX_ROWS_PER_PART:,} a "
                   f"predictions frame keeps; use a wider bucket width or a shorter {name} window")
            raise ConfigError(msg)
        stamps = ns[rows]
        if len(stamps) > 1 and not np.all(np.diff(stamps) > 0):
            first = int(np.argmax(np.diff(stamps) <= 0)) + 1
            msg = (f"the {name!r} buckets must strictly increase (one row per bucket, in time order); row "
                   f"{first} of that part ({buckets[rows][first]}) does not follow the one before it")
            raise ConfigError(msg)
    out = {"bucket": buckets, "part": pd.array(part, dtype="str")}
    if task == "classification":
        y_true = check_labels("y_true", frame["y_true"].to_numpy(), len(class_names))
        y_pred = check_labels("y_pred", frame["y_pred"].to_numpy(), len(class_names))
    else:
        y_true = check_floats("y_true", frame["y_true"].to_numpy(np.float64, na_value=np.nan))
        y_pred = check_floats("y_pred", frame["y_pred"].to_numpy(np.float64, na_value=np.nan))
    forward = check_floats("forward_return", frame["forward_return"].to_numpy(np.float64, na_value=np.nan),
                           allow_nan=True)
    if np.isinf(forward).any():
        msg = "forward_return must be finite or NaN (unknown), got an infinite value"
        raise ConfigError(msg)
    out.update(y_true=y_true, forward_return=forward, y_pred=y_pred)
    if task == "classification" and n:
        proba_columns = [PROBA_PREFIX + c for c in class_names]
        _, proba, _ = check_classes(y_true, frame[proba_columns].to_numpy(np.float64, na_value=np.nan),
                                    class_names)
        out.update({column: proba[:, k] for k, column in enumerate(proba_columns)})
    elif task == "classification":
        out.update({PROBA_PREFIX + c: np.zeros(0) for c in class_names})
    return pd.DataFrame(out, columns=columns)


def _buckets(column: pd.Series) -> pd.DatetimeIndex:
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        what = "naive timestamps" if pd.api.types.is_datetime64_dtype(column.dtype) else f"dtype {column.dtype}"
        msg = (f"the predictions frame's bucket column must hold UTC timestamps (datetime64[ns, UTC]), got "
               f"{what}; use pd.to_datetime(..., utc=True)")
        raise ConfigError(msg)
    buckets = pd.DatetimeIndex(column).tz_convert("UTC").as_unit("ns")
    if buckets.isna().any():
        row = int(np.argmax(buckets.isna()))
        msg = f"the predictions frame's bucket column has a missing timestamp at row {row}"
        raise ConfigError(msg)
    return buckets
