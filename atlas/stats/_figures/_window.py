"""One part of a trial's predictions as plain arrays, whether the model is degenerate, and its p-value."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from atlas.stats._checks import check_choice
from atlas.stats._predictions import PARTS, Predictions, check_predictions
from atlas.stats._significance import TrialSignificance, lift_differential, trial_significance

#: Probabilities closer than this are equal (float32 storage keeps about 7 significant digits).
PROBABILITY_TOLERANCE = 1e-6
#: A regressor whose predictions spread less than this share of their magnitude predicts a constant.
RELATIVE_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class Window:
    """The rows of one part (``"test"`` by default) of a trial's predictions, as arrays.

    Slicing the checked frame directly, rather than through :meth:`Predictions.part`, spares a second
    validation of rows that were checked when the Predictions were built.
    """

    predictions: Predictions
    part: str
    y_true: np.ndarray
    y_pred: np.ndarray
    forward_return: np.ndarray
    proba: np.ndarray | None
    buckets: pd.DatetimeIndex

    @property
    def samples(self) -> int:
        return len(self.y_true)

    @property
    def classifier(self) -> bool:
        return self.predictions.task == "classification"


def as_predictions(predictions) -> Predictions:
    """``predictions`` when it is :class:`Predictions`; a DataFrame is checked with :func:`check_predictions`."""
    if isinstance(predictions, Predictions):
        return predictions
    if isinstance(predictions, pd.DataFrame):
        return check_predictions(predictions)
    msg = (f"a card draws Predictions (atlas.stats.check_predictions(frame, ...)), got "
           f"{type(predictions).__name__}")
    raise ConfigError(msg)


def window(predictions, part: str = "test") -> Window:
    """The arrays of ``part``.

    Raises:
        ConfigError: not Predictions (or a frame that fails the contract), or no row of ``part``.
    """
    predictions = as_predictions(predictions)
    check_choice("part", part, PARTS)
    frame = predictions.frame
    rows = (frame["part"] == part).to_numpy()
    if not rows.any():
        msg = f"the predictions have no {part!r} rows to draw; parts present: {list(predictions.parts)}"
        raise ConfigError(msg)
    every = rows.all()

    def column(name: str, dtype=None) -> np.ndarray:
        values = frame[name].to_numpy(dtype)
        return values if every else values[rows]

    proba = None
    if predictions.task == "classification":
        proba = frame[predictions.proba_columns].to_numpy(np.float64)
        proba = proba if every else proba[rows]
    buckets = pd.DatetimeIndex(frame["bucket"])
    return Window(predictions=predictions, part=part, y_true=column("y_true"), y_pred=column("y_pred"),
                  forward_return=column("forward_return", np.float64), proba=proba,
                  buckets=buckets if every else buckets[rows])


def degeneracy(rows: Window) -> str | None:
    """Why the model is degenerate, in words, or None if it is not (or a single row cannot tell)."""
    if rows.samples < 2:
        return None
    if rows.classifier:
        names = rows.predictions.class_names
        proba = rows.proba
        if np.all(np.ptp(proba, axis=0) <= PROBABILITY_TOLERANCE):
            return "its probabilities are the same in every row"
        if np.all(np.ptp(proba, axis=1) <= PROBABILITY_TOLERANCE):
            return "its probabilities are equal across classes"
        predicted = np.unique(rows.y_pred)
        if len(predicted) == 1:
            return f"it predicts one class only ({names[int(predicted[0])]!r})"
        return None
    values = rows.y_pred.astype(np.float64)
    scale = float(np.abs(values).max())
    if float(np.ptp(values)) <= RELATIVE_TOLERANCE * scale or scale == 0:
        return f"it predicts a constant ({values[0]:.4g})"
    return None


def is_degenerate(predictions, *, part: str = "test") -> bool:
    """Whether a model says nothing: a classifier that predicts one class only, or whose probabilities are the
    same in every row or equal across the classes; a regressor whose prediction is a constant.

    Such a model can still score an accuracy (the majority class's) but has learned nothing; overviews flag it.

    Example:
        >>> frame = pd.DataFrame({"bucket": pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC"),
        ...                       "part": "test", "y_true": [0, 1, 1], "forward_return": 0.0, "y_pred": [1, 1, 1],
        ...                       "proba_down": [.4, .3, .45], "proba_up": [.6, .7, .55]})
        >>> is_degenerate(check_predictions(frame, bucket_width="1min", horizon=1))
        True

    Args:
        predictions: a trial's :class:`~atlas.stats.Predictions`.
        part: the part judged (default ``"test"``).

    Raises:
        ConfigError: not Predictions, or no row of ``part``.
    """
    return degeneracy(window(predictions, part)) is not None


@dataclass(frozen=True)
class PValue:
    """The p-value a card prints, and the lift's interval when a :class:`TrialSignificance` gave it."""

    value: float
    source: str
    ci: tuple[float, float] | None = None


def p_value(rows: Window, significance) -> PValue:
    """The p-value of the lift over the baseline: from ``significance`` (a TrialSignificance or a number in
    [0, 1]), else computed with :func:`~atlas.stats.trial_significance` on the part's differential.

    Raises:
        ConfigError: ``significance`` of another type, or a number outside [0, 1].
    """
    if isinstance(significance, TrialSignificance):
        return PValue(significance.p_value, "given", (significance.ci_low, significance.ci_high))
    if significance is not None:
        if isinstance(significance, bool) or not isinstance(significance, numbers.Real) or not (
                math.isnan(significance) or 0 <= significance <= 1):
            msg = (f"significance must be a TrialSignificance, a p-value in [0, 1] or None (computed), got "
                   f"significance={significance!r}")
            raise ConfigError(msg)
        return PValue(float(significance), "given")
    predictions = rows.predictions
    if rows.classifier and predictions.baseline_class is None:
        return PValue(math.nan, "no baseline class")
    tested = trial_significance(lift_differential(predictions, part=rows.part), horizon=predictions.horizon)
    return PValue(tested.p_value, "block bootstrap", (tested.ci_low, tested.ci_high))
