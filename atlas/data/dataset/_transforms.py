"""Model inputs from raw feature values: one code path for training and serving.

:class:`Transforms` is what a :class:`Dataset` fitted on its training rows (the scaler, the class cut points, the
window and its gap rule); its :meth:`Transforms.inputs` is the one place raw feature values become model inputs, for a whole frame
(training, batch prediction) and for one tick (serving) alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_columns, check_count
from atlas.data.dataset._labels import FittedClassLabels
from atlas.data.dataset._scaling import FittedScaler
from atlas.exceptions import ConfigError


@dataclass(frozen=True)
class Transforms:
    """The transforms fitted on a dataset's training rows: what turns raw feature values into model inputs.

    Example:
        >>> from atlas.data.dataset import Scaler
        >>> train = pd.DataFrame({"a": [1.0, 3.0]})  # mean 2, standard deviation 1
        >>> transforms = Transforms(Scaler("zscore").fit(train))
        >>> transforms.inputs(pd.DataFrame({"a": [2.0, 4.0], "other": [0, 0]})).tolist()
        [[0.0], [2.0]]
        >>> transforms.inputs(np.array([4.0])).tolist()  # one tick: values in feature order
        [2.0]
        >>> Transforms.from_dict(transforms.to_dict()) == transforms
        True

    Attributes:
        scaler: the scaler fitted on the training features; its columns are the model's inputs, in order.
        labels: the class cut points fitted on the training labels (method ``"none"`` for regression), or None.
        window: rows per sequence window, or None for row inputs.
        allow_gaps: False (the default): a window whose rows are not consecutive buckets (a step longer than one
            bucket: a weekend, an outage, a row with a missing value) is not used, in training or in serving;
            True: such windows are used as if the buckets were consecutive. Only read with a window.

    Raises:
        ConfigError: a scaler that is not a :class:`FittedScaler`, labels that are not
            :class:`FittedClassLabels`, a window below 1, or allow_gaps that is not True or False.
    """

    scaler: FittedScaler
    labels: FittedClassLabels | None = None
    window: int | None = None
    allow_gaps: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.scaler, FittedScaler):
            msg = (f"Transforms.scaler must be a FittedScaler (Scaler(...).fit(train)), "
                   f"got {type(self.scaler).__name__}")
            raise ConfigError(msg)
        if self.labels is not None and not isinstance(self.labels, FittedClassLabels):
            msg = (f"Transforms.labels must be FittedClassLabels (ClassLabels(...).fit(y_train)) or None, "
                   f"got {type(self.labels).__name__}")
            raise ConfigError(msg)
        if self.window is not None:
            object.__setattr__(self, "window", check_count("window", self.window, minimum=1))
        if not isinstance(self.allow_gaps, (bool, np.bool_)):
            msg = f"allow_gaps must be True or False, got allow_gaps={self.allow_gaps!r}"
            raise ConfigError(msg)
        object.__setattr__(self, "allow_gaps", bool(self.allow_gaps))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The feature columns the scaler was fitted on, in the order of the model's inputs."""
        return self.scaler.columns

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The classes' names, lowest class number first; None for regression (or no labels)."""
        return None if self.labels is None else self.labels.class_names

    @cached_property
    def _center(self) -> np.ndarray:
        return np.asarray(self.scaler.center, dtype=np.float64)

    @cached_property
    def _scale(self) -> np.ndarray:
        return np.asarray(self.scaler.scale, dtype=np.float64)

    def inputs(self, values: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Scaled inputs as a C-ordered float32 array: the path of training and serving.

        Scaling runs in float64 and the result is rounded once to float32, so the same raw values give the same
        bits whether they come as a frame of many rows or as one tick.

        Args:
            values: a DataFrame of raw feature values, one column per feature by name (extra columns are
                ignored), giving (rows, features); or an array whose last axis holds the features in
                :attr:`feature_names` order (one row, or a window of rows), giving the same shape. NaN stays NaN.

        Raises:
            ConfigError: a missing feature column, a non-numeric column, an infinite value, or an array whose
                last axis is not the features.
        """
        if isinstance(values, pd.DataFrame):
            check_columns("model inputs", self.scaler.columns, values.columns)
            raw = self.scaler._values(values[list(self.scaler.columns)])  # checked: numeric, finite or NaN
        else:
            try:
                raw = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                msg = f"model inputs must be numbers, got {type(values).__name__} that cannot be read as floats"
                raise ConfigError(msg) from None
            if raw.ndim == 0 or raw.shape[-1] != len(self.scaler.columns):
                msg = (f"model inputs need the {len(self.scaler.columns)} features {list(self.scaler.columns)} "
                       f"on the last axis, got an array of shape {raw.shape}")
                raise ConfigError(msg)
            if np.isinf(raw).any():
                msg = "model inputs: an infinite feature value; replace infinities (division by zero?) first"
                raise ConfigError(msg)
        return np.ascontiguousarray((raw - self._center) / self._scale, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: ``{"scaler": ..., "labels": ..., "window": ..., "allow_gaps": ...}``."""
        return {"scaler": self.scaler.to_dict(), "labels": None if self.labels is None else self.labels.to_dict(),
                "window": self.window, "allow_gaps": self.allow_gaps}

    @classmethod
    def from_dict(cls, values: Any) -> Transforms:
        """The transforms :meth:`to_dict` wrote, read back from JSON; a :class:`Transforms` passes through.

        Older forms load too: ``labels`` None or absent, ``window`` absent, ``allow_gaps`` absent. A form without
        ``allow_gaps`` was fitted before windows across gaps were dropped, so with a window it reads as
        ``allow_gaps=True``: the rule its model was trained under, which serving then keeps.

        Raises:
            ConfigError: ``values`` is not a dict with a ``"scaler"``, or a part does not read back.
        """
        if isinstance(values, Transforms):
            return values
        if not isinstance(values, dict) or not isinstance(values.get("scaler"), dict):
            msg = ("transforms must be a dataset's transforms: a Transforms, or a dict with a 'scaler' "
                   f"(Dataset.transforms.to_dict()), got {type(values).__name__}")
            raise ConfigError(msg)
        labels = values.get("labels")
        try:
            return cls(FittedScaler.from_dict(values["scaler"]),
                       None if labels is None else FittedClassLabels.from_dict(labels), values.get("window"),
                       allow_gaps=values.get("allow_gaps", values.get("window") is not None))
        except (KeyError, TypeError) as error:
            msg = f"transforms do not read back: {type(error).__name__} {error}; log them with to_dict()"
            raise ConfigError(msg) from None


def model_inputs(frame: pd.DataFrame, scaler: FittedScaler) -> np.ndarray:
    """Scaled feature rows as a C-ordered float32 array (rows, features): ``Transforms(scaler).inputs(frame)``."""
    return Transforms(scaler).inputs(frame)


def apply_transforms(frame: pd.DataFrame, transforms: Transforms | dict) -> np.ndarray:
    """Rebuilds model inputs at serving time from raw feature values and a dataset's ``transforms``.

    The result is identical, bit for bit, to the dataset's rows for the same raw rows. Extra columns in
    ``frame`` are ignored; missing values stay NaN (the caller decides what to do with such rows). For a
    windowed model, take the windows of the result with ``sequence_windows(rows, transforms.window)``; the
    last window ends at the newest row. Unless ``transforms.allow_gaps``, leave out the windows that span a gap
    as training did: ``keep=~window_gaps(frame.index, transforms.window, bucket=...)``.

    Example:
        >>> from atlas.data.dataset import Scaler
        >>> train = pd.DataFrame({"a": [1.0, 3.0]})  # mean 2, standard deviation 1
        >>> transforms = {"scaler": Scaler("zscore").fit(train).to_dict(), "labels": None, "window": None}
        >>> apply_transforms(pd.DataFrame({"a": [2.0, 4.0], "other": [0, 0]}), transforms).tolist()
        [[0.0], [2.0]]

    Args:
        frame: rows of raw feature values, one column per feature (by name), in time order.
        transforms: ``Dataset.transforms`` (a :class:`Transforms`), or its dict form read back from JSON.

    Raises:
        ConfigError: ``transforms`` has no scaler, or ``frame`` lacks a feature column.
    """
    if not isinstance(frame, pd.DataFrame):
        msg = f"apply_transforms needs a DataFrame of raw feature values, got {type(frame).__name__}"
        raise ConfigError(msg)
    return Transforms.from_dict(transforms).inputs(frame)


__all__ = ["Transforms", "apply_transforms", "model_inputs"]
