"""Per-column scaling fitted on training rows: z-score (mean, standard deviation) or robust (median, IQR)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_method
from atlas.exceptions import ConfigError

#: The scaling methods, by name.
SCALING_METHODS = ("zscore", "robust", "none")


@dataclass(frozen=True)
class Scaler:
    """How to scale feature columns; :meth:`fit` learns the per-column statistics from training rows.

    ``"zscore"`` subtracts the mean and divides by the standard deviation (``ddof=0``); ``"robust"`` subtracts
    the median and divides by the interquartile range (75th minus 25th percentile); ``"none"`` passes values
    through (center 0, scale 1). Missing values (NaN) are left out of the statistics and stay NaN when
    transformed. A column whose spread is zero (a constant in the training rows) gets scale 1, so it becomes
    ``value - center`` (0 on the training rows) without a division by zero or a warning.

    Example:
        >>> frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [5.0, 5.0, 5.0]})
        >>> fitted = Scaler("zscore").fit(frame)
        >>> fitted.transform(frame)["b"].tolist()
        [0.0, 0.0, 0.0]
        >>> FittedScaler.from_dict(fitted.to_dict()) == fitted
        True

    Args:
        method: ``"zscore"``, ``"robust"`` or ``"none"``.

    Raises:
        ConfigError: an unknown method.
    """

    method: str = "zscore"

    def __post_init__(self) -> None:
        check_method("scaling method", self.method, SCALING_METHODS)

    def fit(self, frame: pd.DataFrame) -> FittedScaler:
        """Learns each column's center and scale from ``frame`` (the training rows only).

        Raises:
            ConfigError: ``frame`` has no columns, a column that is not numeric, or a column with no values.
        """
        if not isinstance(frame, pd.DataFrame) or frame.shape[1] == 0:
            msg = f"Scaler.fit needs a DataFrame with at least one feature column, got {type(frame).__name__}"
            raise ConfigError(msg)
        values = _numeric(frame, "Scaler.fit")
        columns = tuple(str(c) for c in frame.columns)
        empty = [c for c, n in zip(columns, np.isfinite(values).sum(axis=0), strict=True) if n == 0]
        if empty:
            msg = (f"Scaler.fit: column(s) {empty} have no finite value in the training rows; "
                   f"drop them or widen the training window")
            raise ConfigError(msg)
        if self.method == "none":
            center, scale = np.zeros(len(columns)), np.ones(len(columns))
        elif self.method == "zscore":
            center, scale = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        else:
            low, center, high = np.nanquantile(values, [0.25, 0.5, 0.75], axis=0)
            scale = high - low
        # A constant column: its mean can differ from the value by rounding, giving a tiny false spread.
        constant = np.nanmax(values, axis=0) == np.nanmin(values, axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 0) & ~constant, scale, 1.0)
        return FittedScaler(self.method, columns, tuple(center.tolist()), tuple(scale.tolist()))

    def to_dict(self) -> dict:
        return {"method": self.method}

    @classmethod
    def from_dict(cls, values: dict) -> Scaler:
        return cls(**values)


@dataclass(frozen=True)
class FittedScaler:
    """A scaler's learned statistics: ``transform(x) = (x - center) / scale`` per column, in float64.

    Example:
        >>> fitted = FittedScaler("zscore", ("a",), (2.0,), (0.5,))
        >>> fitted.transform(pd.DataFrame({"a": [1.0, 3.0]}))["a"].tolist()
        [-2.0, 2.0]

    Attributes:
        method: the scaling method it was fitted with.
        columns: the feature columns, in the order of the model's inputs.
        center: per column, the value subtracted.
        scale: per column, the divisor (never zero).
    """

    method: str
    columns: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        check_method("scaling method", self.method, SCALING_METHODS)
        object.__setattr__(self, "columns", tuple(str(c) for c in self.columns))
        object.__setattr__(self, "center", tuple(float(v) for v in self.center))
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
        if not len(self.columns) == len(self.center) == len(self.scale):
            msg = (f"FittedScaler needs one center and one scale per column: {len(self.columns)} columns, "
                   f"{len(self.center)} centers, {len(self.scale)} scales")
            raise ConfigError(msg)
        if any(not np.isfinite(s) or s <= 0 for s in self.scale) or not np.all(np.isfinite(self.center)):
            msg = f"FittedScaler needs finite centers and positive finite scales, got scale={self.scale}"
            raise ConfigError(msg)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The scaled columns, in :attr:`columns` order, as float64; NaN stays NaN.

        Raises:
            ConfigError: ``frame``'s columns are not the fitted columns (the message names the difference).
        """
        values = self._values(frame)
        return pd.DataFrame((values - np.asarray(self.center)) / np.asarray(self.scale), index=frame.index,
                            columns=list(self.columns))

    def inverse_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The original values back from scaled ones: ``x * scale + center``."""
        values = self._values(frame)
        return pd.DataFrame(values * np.asarray(self.scale) + np.asarray(self.center), index=frame.index,
                            columns=list(self.columns))

    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        if not isinstance(frame, pd.DataFrame):
            msg = (f"FittedScaler needs a DataFrame of columns {list(self.columns)}, "
                   f"got {type(frame).__name__}")
            raise ConfigError(msg)
        given = [str(c) for c in frame.columns]
        missing = [c for c in self.columns if c not in given]
        extra = [c for c in given if c not in self.columns]
        if missing or extra or len(given) != len(self.columns):
            msg = (f"the frame's columns do not match the fitted scaler's: "
                   f"missing {missing}, unexpected {extra}"
                   f"{'' if missing or extra else ' (repeated columns)'}; "
                   f"pass frame[{list(self.columns)}]")
            raise ConfigError(msg)
        ordered = frame.set_axis(given, axis=1)[list(self.columns)]
        return _numeric(ordered, "FittedScaler")

    def to_dict(self) -> dict:
        """Plain JSON-serializable values (floats written by ``json`` round-trip exactly)."""
        return {"method": self.method, "columns": list(self.columns), "center": list(self.center),
                "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, values: dict) -> FittedScaler:
        return cls(values["method"], tuple(values["columns"]), tuple(values["center"]),
                   tuple(values["scale"]))


def _numeric(frame: pd.DataFrame, what: str) -> np.ndarray:
    bad = [str(c) for c, dtype in frame.dtypes.items()
           if not (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))]
    if bad:
        msg = f"{what}: feature column(s) {bad} are not numeric; features must be numbers"
        raise ConfigError(msg)
    values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        column = frame.columns[int(np.flatnonzero(np.isinf(values).any(axis=0))[0])]
        row = frame.index[int(np.flatnonzero(np.isinf(values).any(axis=1))[0])]
        msg = f"{what}: column {column!r} is infinite at {row}; replace infinities (division by zero?) first"
        raise ConfigError(msg)
    return values


__all__ = ["SCALING_METHODS", "FittedScaler", "Scaler"]
