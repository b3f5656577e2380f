"""Model inputs from raw feature values: one code path for training and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_columns
from atlas.data.dataset._scaling import FittedScaler
from atlas.exceptions import ConfigError


def model_inputs(frame: pd.DataFrame, scaler: FittedScaler) -> np.ndarray:
    """Scaled feature rows as a C-ordered float32 array (rows, features): the path of training and serving.

    Scaling runs in float64 and the result is rounded once to float32: the same raw values give the same bits.
    """
    check_columns("model inputs", scaler.columns, frame.columns)
    scaled = scaler.transform(frame[list(scaler.columns)])
    return np.ascontiguousarray(scaled.to_numpy(dtype=np.float64), dtype=np.float32)


def apply_transforms(frame: pd.DataFrame, transforms: dict) -> np.ndarray:
    """Rebuilds model inputs at serving time from raw feature values and a dataset's ``transforms``.

    The result is identical, bit for bit, to the dataset's rows for the same raw rows. Extra columns in
    ``frame`` are ignored; missing values stay NaN (the caller decides what to do with such rows). For a
    windowed model, take the windows of the result with ``sequence_windows(rows, transforms["window"])``; the
    last window ends at the newest row.

    Example:
        >>> from atlas.data.dataset import Scaler
        >>> train = pd.DataFrame({"a": [1.0, 3.0]})  # mean 2, standard deviation 1
        >>> transforms = {"scaler": Scaler("zscore").fit(train).to_dict(), "labels": None, "window": None}
        >>> apply_transforms(pd.DataFrame({"a": [2.0, 4.0], "other": [0, 0]}), transforms).tolist()
        [[0.0], [2.0]]

    Args:
        frame: rows of raw feature values, one column per feature (by name), in time order.
        transforms: ``Dataset.transforms``, possibly read back from JSON.

    Raises:
        ConfigError: ``transforms`` has no scaler, or ``frame`` lacks a feature column.
    """
    if not isinstance(transforms, dict) or not isinstance(transforms.get("scaler"), dict):
        msg = "apply_transforms needs a dataset's transforms: a dict with a 'scaler' (Dataset.transforms)"
        raise ConfigError(msg)
    if not isinstance(frame, pd.DataFrame):
        msg = f"apply_transforms needs a DataFrame of raw feature values, got {type(frame).__name__}"
        raise ConfigError(msg)
    return model_inputs(frame, FittedScaler.from_dict(transforms["scaler"]))


__all__ = ["apply_transforms", "model_inputs"]
