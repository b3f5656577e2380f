"""The Dataset container: train and test arrays, their timestamps, the fitted transforms, a content hash, a report."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_count, check_method
from atlas.data.dataset._transforms import Transforms
from atlas.data.dataset._windows import sequence_windows
from atlas.exceptions import ConfigError

PARTS = ("train", "test")
#: The counts of :attr:`Dataset.report`, per part.
REPORT_COUNTS = ("windows_across_gaps", "windows_dropped", "zero_labels", "ties_dropped")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test data built by :func:`make_dataset`, with everything fitted on the training rows only.

    One sample per label: ``X_train[k]`` (the features of the row ``index_train[k]``) goes with
    ``y_train[k]``. With a ``window``, a sample is the window of ``window`` rows that ends at that row:
    ``windows("train")[k]``, a read-only view of shape (samples, window, features); the ``window - 1`` rows
    before the first sample are kept in ``rows_train`` as the first window's history and have no label of
    their own. Without a window, ``rows_train`` and ``X_train`` are the same rows. All arrays are read-only.

    When some rows end no sample (a window across a gap, a tie dropped under ``ties="drop"``), ``positions_train``
    says which row each sample ends at; the rows stay, as history of the other windows. Then ``windows`` and
    ``X_train`` are gathered (a copy of the samples kept) rather than views.

    Example:
        >>> index = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
        >>> ds = Dataset(np.zeros((4, 2)), np.array([0, 1, 0]), np.zeros((3, 2)), np.array([1, 0]),
        ...              index[1:], index[2:], ("a", "b"), "ret", class_names=("down", "up"), window=2)
        >>> ds.X_train.shape, ds.windows("train").shape, ds.y_train.dtype.name
        ((3, 2), (3, 2, 2), 'int64')
        >>> len(ds.content_hash)
        64

    Attributes:
        rows_train: the scaled feature rows of the training part, float32 (rows, features).
        y_train: the labels, one per sample: class numbers (int64) or, for regression, float32.
        rows_test: as ``rows_train``, for the test part. y_test: as ``y_train``.
        index_train: the timestamp of each training sample (the row it predicts for). index_test: the same.
        feature_names: the feature columns, in input order.
        label_name: the label column.
        class_names: the classes' names, lowest class number first; None for regression.
        sample_weight: training sample weights (``balance="class_weights"``), or None.
        transforms: the fitted :class:`Transforms` (scaler, class cut points, window), or None when built by
            hand without them; ``transforms.inputs(frame)`` rebuilds inputs, ``to_dict()`` gives plain JSON.
        window: the sequence length, or None for row inputs.
        raw_train: the label column's own values behind ``y_train`` (float64, before they became classes): for
            a return label, the realized forward return each sample's label stands for, which trading statistics
            need. None when not kept. raw_test: the same for ``y_test``.
        positions_train: the position in ``rows_train`` of each sample's row (its window's last row), increasing
            (int64); None: every row from ``window - 1`` on ends a sample. positions_test: the same for test.
        report: what :func:`make_dataset` counted per part, ``{"train": {...}, "test": {...}}``:
            ``windows_across_gaps`` (windows whose rows are not consecutive buckets), ``windows_dropped`` (those
            left out: all of them unless ``allow_gaps``), ``zero_labels`` (labels exactly 0: ties under
            ``ClassLabels("sign")``), ``ties_dropped`` (those left out under ``ties="drop"``). Counted over the
            rows that end a full window, before any is dropped (a sample can be both). The window counts are None
            without a window. None when built by hand.
    """

    rows_train: np.ndarray
    y_train: np.ndarray
    rows_test: np.ndarray
    y_test: np.ndarray
    index_train: pd.DatetimeIndex
    index_test: pd.DatetimeIndex
    feature_names: tuple[str, ...]
    label_name: str
    class_names: tuple[str, ...] | None = None
    sample_weight: np.ndarray | None = None
    transforms: Transforms | None = None
    window: int | None = None
    raw_train: np.ndarray | None = None
    raw_test: np.ndarray | None = None
    positions_train: np.ndarray | None = None
    positions_test: np.ndarray | None = None
    report: dict | None = None

    def __post_init__(self) -> None:
        def set_(name: str, value) -> None:  # a frozen dataclass sets its own fields through object
            object.__setattr__(self, name, value)

        set_("feature_names", tuple(str(f) for f in self.feature_names))
        set_("label_name", str(self.label_name))
        if self.class_names is not None:
            set_("class_names", tuple(str(c) for c in self.class_names))
        if self.window is not None:
            set_("window", check_count("window", self.window, minimum=1))
        if isinstance(self.transforms, dict) and not self.transforms:
            set_("transforms", None)  # the old default: no transforms
        elif self.transforms is not None:
            set_("transforms", Transforms.from_dict(self.transforms))  # a dict (JSON) reads back as Transforms
        y_dtype = np.int64 if self.class_names is not None else np.float32
        for part in PARTS:
            rows = _frozen(getattr(self, f"rows_{part}"), np.float32)
            y = _frozen(getattr(self, f"y_{part}"), y_dtype)
            index = getattr(self, f"index_{part}")
            if not isinstance(index, pd.DatetimeIndex):
                index = pd.DatetimeIndex(index)
            warmup = (self.window or 1) - 1
            positions = self._positions(part, len(rows), warmup)
            samples = len(rows) - warmup if positions is None else len(positions)
            if rows.ndim != 2 or rows.shape[1] != len(self.feature_names) or y.ndim != 1 or \
                    len(y) != samples or len(index) != len(y):
                msg = (f"Dataset {part} part: {rows.shape} rows for {len(self.feature_names)} features, "
                       f"{y.shape} labels and {len(index)} timestamps do not fit; "
                       f"expected rows (n, features), and {samples} labels and timestamps "
                       f"({'n - window + 1' if positions is None else f'positions_{part}'})")
                raise ConfigError(msg)
            if self.class_names is not None and len(y) and (y.min() < 0 or y.max() >= len(self.class_names)):
                msg = f"Dataset {part} labels must be class numbers 0..{len(self.class_names) - 1}"
                raise ConfigError(msg)
            set_(f"rows_{part}", rows)
            set_(f"y_{part}", y)
            set_(f"index_{part}", index)
            set_(f"positions_{part}", positions)
        for part in PARTS:
            raw = getattr(self, f"raw_{part}")
            if raw is not None:
                raw = _frozen(raw, np.float64)
                if raw.shape != getattr(self, f"y_{part}").shape:
                    msg = (f"Dataset raw_{part} needs one raw label value per {part} sample: {raw.shape} for "
                           f"{len(getattr(self, f'y_{part}'))}")
                    raise ConfigError(msg)
                set_(f"raw_{part}", raw)
        if self.sample_weight is not None:
            weights = _frozen(self.sample_weight, np.float64)
            if weights.shape != self.y_train.shape:
                msg = (f"Dataset sample_weight needs one weight per training sample: "
                       f"{weights.shape} for {len(self.y_train)}")
                raise ConfigError(msg)
            set_("sample_weight", weights)

    def _positions(self, part: str, n_rows: int, warmup: int) -> np.ndarray | None:
        positions = getattr(self, f"positions_{part}")
        if positions is None:
            return None
        positions = _frozen(positions, np.int64)
        if positions.ndim != 1 or (len(positions) and (positions[0] < warmup or positions[-1] >= n_rows
                                                       or np.any(np.diff(positions) <= 0))):
            msg = (f"Dataset positions_{part} must be increasing row positions from window - 1 = {warmup} to "
                   f"{n_rows - 1}, one per sample")
            raise ConfigError(msg)
        return positions

    def __setstate__(self, state: dict) -> None:  # unpickling: arrays come back writeable, freeze them again
        for value in state.values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        self.__dict__.update(state)

    @property
    def X_train(self) -> np.ndarray:
        """The training samples' feature rows, (samples, features): with a window, its last row."""
        return self._rows_of("train")

    @property
    def X_test(self) -> np.ndarray:
        """The test samples' feature rows, (samples, features)."""
        return self._rows_of("test")

    def _rows_of(self, part: str) -> np.ndarray:
        rows, positions = getattr(self, f"rows_{part}"), getattr(self, f"positions_{part}")
        if positions is None:
            return rows[(self.window or 1) - 1:]
        chosen = rows[positions]
        chosen.flags.writeable = False
        return chosen

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        """The number of classes; 0 for regression."""
        return 0 if self.class_names is None else len(self.class_names)

    def windows(self, part: str = "train") -> np.ndarray:
        """The samples of ``part`` as sequence windows, (samples, window, features): a view, not a copy.

        When some rows end no sample (:attr:`positions_train`), the kept windows are gathered: one copy.

        Raises:
            ConfigError: the dataset was built without a window, or ``part`` is not "train" or "test".
        """
        check_method("part", part, PARTS)
        if self.window is None:
            msg = "this dataset has no sequence window; build it with window=<rows per window>, or use X_*"
            raise ConfigError(msg)
        rows, positions = getattr(self, f"rows_{part}"), getattr(self, f"positions_{part}")
        if positions is None:
            return sequence_windows(rows, self.window)
        keep = np.zeros(len(rows) - self.window + 1, dtype=bool)
        keep[positions - (self.window - 1)] = True
        return sequence_windows(rows, self.window, keep=keep)

    def inputs(self, part: str = "train") -> np.ndarray:
        """What a model takes for ``part``: :meth:`windows` when windowed, else ``X_train`` / ``X_test``."""
        check_method("part", part, PARTS)
        return self.windows(part) if self.window is not None else getattr(self, f"X_{part}")

    @cached_property
    def content_hash(self) -> str:
        """A sha256 hex digest of the built data: arrays, timestamps, names and transforms.

        It is computed from the arrays' raw little-endian bytes and canonical JSON, so it is the same in every
        run and process for the same data, and differs when any value, timestamp or fitted statistic does.
        """
        arrays = {"rows_train": self.rows_train, "y_train": self.y_train, "rows_test": self.rows_test,
                  "y_test": self.y_test, "index_train": self.index_train.as_unit("ns").asi8,
                  "index_test": self.index_test.as_unit("ns").asi8}
        if self.sample_weight is not None:
            arrays["sample_weight"] = self.sample_weight
        for part in PARTS:
            if getattr(self, f"raw_{part}") is not None:
                arrays[f"raw_{part}"] = getattr(self, f"raw_{part}")
        for part in PARTS:
            if getattr(self, f"positions_{part}") is not None:
                arrays[f"positions_{part}"] = getattr(self, f"positions_{part}")
        arrays = {name: np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
                  for name, a in arrays.items()}
        header = {"feature_names": list(self.feature_names), "label_name": self.label_name,
                  "class_names": None if self.class_names is None else list(self.class_names),
                  "window": self.window, "transforms": {} if self.transforms is None else self.transforms.to_dict(),
                  "time_zones": [str(self.index_train.tz), str(self.index_test.tz)],
                  "arrays": [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]}
        digest = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
        for a in arrays.values():
            digest.update(a.tobytes())
        return digest.hexdigest()

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """``{"train": frame, "test": frame}`` for inspection, indexed by the samples' timestamps.

        Each frame holds each sample's scaled features and label, and for train ``sample_weight`` if set.
        """
        frames = {}
        for part in PARTS:
            frame = pd.DataFrame(getattr(self, f"X_{part}"), index=getattr(self, f"index_{part}"),
                                 columns=list(self.feature_names))
            frame[self.label_name] = getattr(self, f"y_{part}")
            if part == "train" and self.sample_weight is not None:
                frame["sample_weight"] = self.sample_weight
            frames[part] = frame
        return frames

    def summary(self) -> dict:
        """Plain values for tracking (MLflow params): sizes, time ranges, class counts, the content hash, and the
        :attr:`report`'s counts as ``<part>_<count>`` (``train_windows_dropped``, ``test_zero_labels``, ...)."""
        out = {"features": self.n_features, "window": self.window, "label": self.label_name,
               "content_hash": self.content_hash}
        for part in PARTS:
            index, y = getattr(self, f"index_{part}"), getattr(self, f"y_{part}")
            out[f"{part}_samples"] = len(y)
            out[f"{part}_start"] = str(index[0]) if len(index) else None
            out[f"{part}_end"] = str(index[-1]) if len(index) else None
            if self.class_names is not None:
                counts = np.bincount(y, minlength=self.n_classes)
                out[f"{part}_classes"] = dict(zip(self.class_names, counts.tolist(), strict=True))
            for name, count in ((self.report or {}).get(part) or {}).items():
                out[f"{part}_{name}"] = count
        if self.window is not None and self.transforms is not None:
            out["allow_gaps"] = self.transforms.allow_gaps
        return out

    def __repr__(self) -> str:
        return (f"Dataset(train={len(self.y_train)}, test={len(self.y_test)}, features={self.n_features}, "
                f"label={self.label_name!r}, classes={self.class_names}, window={self.window}, "
                f"hash={self.content_hash[:12]})")


def _frozen(values, dtype) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=None, order="C")
    if array is values and array.flags.writeable:
        array = array.copy()  # do not make the caller's own array read-only
    array.flags.writeable = False
    return array


__all__ = ["Dataset"]
