"""Label classes from returns (sign, percentiles or fixed thresholds, fitted on train) and triple barriers.

A class is found from ordered cut points ``c_1 < ... < c_m``: class ``k`` holds the values between ``c_k`` and
``c_{k+1}``. A value exactly on a cut point goes to the class below it with ``boundary="lower"`` and to the
class above it with ``boundary="upper"``.

With ``"sign"`` (one cut point at 0) a return of exactly 0 is a tie, and ``ties`` says what it is: ``"down"`` (the
default, and what ``boundary="lower"`` has always done), ``"up"`` (what ``boundary="upper"`` has always done), or
``"drop"``: no class at all, so the row is left out of training and evaluation (``transform`` gives ``<NA>``). Ties
are common in bar data (a quiet bucket, a price that did not move), so a dataset's report counts them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_count, check_method
from atlas.exceptions import ConfigError

#: The ways to turn a label into classes; ``"none"`` keeps it a number (regression).
LABEL_METHODS = ("none", "sign", "percentile", "bps", "barrier")
BOUNDARIES = ("lower", "upper")
#: Where a return of exactly 0 goes under ``"sign"``: the down class, the up class, or nowhere (dropped).
TIES = ("down", "up", "drop")
#: The fixed cut points of ``"barrier"``: triple-barrier labels -1, 0, 1 become classes 0, 1, 2.
_BARRIER_CUTS = (-0.5, 0.5)


def default_class_names(n_classes: int) -> tuple[str, ...]:
    """``("down", "up")``, ``("down", "flat", "up")``, else ``("class_0", "class_1", ...)``."""
    return {2: ("down", "up"), 3: ("down", "flat", "up")}.get(n_classes,
                                                               tuple(f"class_{k}" for k in range(n_classes)))


@dataclass(frozen=True)
class ClassLabels:
    """How to turn a numeric label (a return) into classes; :meth:`fit` learns cut points from train labels.

    Methods:

    * ``"sign"``: two classes, down / up, cut at 0 (``thresholds`` empty); a return of exactly 0 is a tie, which
      goes where ``ties`` says: ``"down"`` by default, ``"up"``, or ``"drop"`` (left out).
    * ``"percentile"``: ``thresholds`` are quantiles in (0, 1) of the *training* labels; ``(0.33, 0.67)``
      gives three classes, strong down / flat / strong up.
    * ``"bps"``: fixed ``thresholds`` in basis points of a return; ``(-5, 5)`` cuts at -0.0005 and 0.0005.
    * ``"barrier"``: the label already holds triple-barrier outcomes -1, 0, 1 (see
      :func:`triple_barrier_labels`); they become classes down / flat / up.
    * ``"none"``: no classes; the label passes through as a number (regression).

    Example:
        >>> y_train = pd.Series([-0.002, -0.0005, 0.0, 0.0004, 0.003])
        >>> fitted = ClassLabels("bps", thresholds=(-5, 5)).fit(y_train)
        >>> fitted.cut_points, fitted.class_names
        ((-0.0005, 0.0005), ('down', 'flat', 'up'))
        >>> fitted.transform(y_train).tolist()  # -0.0005 lies on a cut point: "lower" puts it in "down"
        [0, 0, 1, 1, 2]
        >>> ClassLabels("percentile", thresholds=(0.33, 0.67), boundary="upper").fit(y_train).n_classes
        3
        >>> ClassLabels("sign", ties="drop").fit(y_train).transform(y_train).tolist()  # 0.0 is no class
        [0, 0, <NA>, 1, 1]

    Args:
        method: one of ``"sign"``, ``"percentile"``, ``"bps"``, ``"barrier"``, ``"none"``.
        thresholds: quantiles for ``"percentile"``, basis points for ``"bps"``, strictly increasing; empty for
            the others.
        boundary: where a value exactly on a cut point goes, ``"lower"`` or ``"upper"`` class.
        class_names: names of the classes, lowest first; default :func:`default_class_names`.
        ties: ``"sign"`` only: where a return of exactly 0 goes, ``"down"``, ``"up"`` or ``"drop"``. None (the
            default) reads the boundary as before: ``"down"`` under ``boundary="lower"`` (the default),
            ``"up"`` under ``"upper"``; ``"down"`` and ``"up"`` set the boundary to match.

    Raises:
        ConfigError: an unknown method, boundary or ties value, ties for a method other than ``"sign"``, ties
            that contradict the boundary, or thresholds that do not fit the method.
    """

    method: str = "sign"
    thresholds: tuple[float, ...] = ()
    boundary: str = "lower"
    class_names: tuple[str, ...] | None = None
    ties: str | None = None

    def __post_init__(self) -> None:
        check_method("label method", self.method, LABEL_METHODS)
        check_method("boundary", self.boundary, BOUNDARIES)
        object.__setattr__(self, "ties", _check_ties(self.method, self.boundary, self.ties))
        if self.ties in ("down", "up"):
            object.__setattr__(self, "boundary", "lower" if self.ties == "down" else "upper")
        if isinstance(self.thresholds, (str, bytes)) or not hasattr(self.thresholds, "__iter__") or any(
                isinstance(t, bool) or not isinstance(t, numbers.Real) for t in self.thresholds):
            msg = f"thresholds must be a sequence of numbers, got thresholds={self.thresholds!r}"
            raise ConfigError(msg)
        thresholds = tuple(float(t) for t in self.thresholds)
        object.__setattr__(self, "thresholds", thresholds)
        if self.method in ("sign", "barrier", "none") and thresholds:
            msg = (f"label method {self.method!r} takes no thresholds, got thresholds={thresholds}; "
                   f"use method='bps' or 'percentile' for thresholds")
            raise ConfigError(msg)
        if self.method in ("percentile", "bps"):
            if not thresholds or not np.all(np.isfinite(thresholds)) or np.any(np.diff(thresholds) <= 0):
                msg = (f"label method {self.method!r} needs one or more finite, strictly increasing "
                       f"thresholds, got thresholds={thresholds}; "
                       f"e.g. (0.33, 0.67) for 'percentile', (-5, 5) for 'bps'")
                raise ConfigError(msg)
            if self.method == "percentile" and not (0 < thresholds[0] and thresholds[-1] < 1):
                msg = (f"percentile thresholds are quantiles strictly between 0 and 1, "
                       f"got thresholds={thresholds}; e.g. (0.33, 0.67)")
                raise ConfigError(msg)
        if self.class_names is not None:
            names = tuple(str(n) for n in self.class_names)
            object.__setattr__(self, "class_names", names)
            if self.method == "none" or len(names) != self.n_classes or len(set(names)) != len(names):
                msg = (f"class_names must be {self.n_classes} distinct names for label method "
                       f"{self.method!r} with thresholds={thresholds}, got class_names={names}")
                raise ConfigError(msg)

    @property
    def n_classes(self) -> int:
        """The number of classes (0 for ``"none"``)."""
        return {"none": 0, "sign": 2, "barrier": 3}.get(self.method, len(self.thresholds) + 1)

    def fit(self, y_train) -> FittedClassLabels:
        """Learns the cut points from the training labels (NaN left out).

        Raises:
            ConfigError: no finite training label, percentile cut points that coincide (many equal labels), or
                ``"barrier"`` labels other than -1, 0, 1.
        """
        values = _floats(y_train)
        values = values[~np.isnan(values)]
        if self.method == "none":
            return FittedClassLabels(self.method, (), self.boundary, (), None)
        if not len(values):
            msg = "ClassLabels.fit: the training labels have no value (all NaN, or none); widen the window"
            raise ConfigError(msg)
        if self.method == "sign":
            cuts = (0.0,)
        elif self.method == "bps":
            cuts = tuple(t / 1e4 for t in self.thresholds)
        elif self.method == "barrier":
            _check_barrier(values)
            cuts = _BARRIER_CUTS
        else:
            cuts = tuple(float(c) for c in np.quantile(values, self.thresholds))
            if np.any(np.diff(cuts) <= 0):
                msg = (f"percentile thresholds {self.thresholds} give cut points {cuts} on the training "
                       f"labels: equal cut points leave a class empty (many equal labels, such as zero "
                       f"returns); use method='bps' with fixed thresholds, or quantiles further apart")
                raise ConfigError(msg)
        names = self.class_names or default_class_names(len(cuts) + 1)
        return FittedClassLabels(self.method, self.thresholds, self.boundary, cuts, names, ties=self.ties)

    def to_dict(self) -> dict:
        return {"method": self.method, "thresholds": list(self.thresholds), "boundary": self.boundary,
                "class_names": None if self.class_names is None else list(self.class_names), "ties": self.ties}

    @classmethod
    def from_dict(cls, values: dict) -> ClassLabels:
        """Reads :meth:`to_dict` back; a dict written before ``ties`` existed reads as before (the boundary's).

        Raises:
            ConfigError: an unknown key (the message lists the known ones) or a value :class:`ClassLabels`
                refuses.
        """
        unknown = sorted(set(values) - {"method", "thresholds", "boundary", "class_names", "ties"})
        if unknown:
            msg = (f"ClassLabels has no option(s) {unknown}; the options are method, thresholds, boundary, "
                   f"class_names and ties")
            raise ConfigError(msg)
        names = values.get("class_names")
        return cls(values.get("method", "sign"), tuple(values.get("thresholds", ())),
                   values.get("boundary", "lower"), None if names is None else tuple(names), values.get("ties"))


@dataclass(frozen=True)
class FittedClassLabels:
    """Cut points learned by :meth:`ClassLabels.fit`; :meth:`transform` maps labels to class numbers.

    Example:
        >>> fitted = FittedClassLabels("sign", (), "upper", (0.0,), ("down", "up"))
        >>> fitted.ties, fitted.transform(pd.Series([-1.0, 0.0, float("nan"), 2.0])).tolist()
        ('up', [0, 1, <NA>, 1])

    Attributes:
        method: the label method.
        thresholds: the thresholds it was configured with.
        boundary: where a value on a cut point goes.
        cut_points: the cut points in the label's units (a return), increasing; empty for ``"none"``.
        class_names: names of the classes, lowest first; None for ``"none"``.
        ties: ``"sign"`` only: where a return of exactly 0 goes (``"down"``, ``"up"``, ``"drop"``); None for the
            other methods. Read from the boundary when not given, as :class:`ClassLabels` does.
    """

    method: str
    thresholds: tuple[float, ...]
    boundary: str
    cut_points: tuple[float, ...]
    class_names: tuple[str, ...] | None
    ties: str | None = None

    def __post_init__(self) -> None:
        check_method("label method", self.method, LABEL_METHODS)
        check_method("boundary", self.boundary, BOUNDARIES)
        object.__setattr__(self, "ties", _check_ties(self.method, self.boundary, self.ties))
        if self.ties in ("down", "up"):
            object.__setattr__(self, "boundary", "lower" if self.ties == "down" else "upper")
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "cut_points", tuple(float(c) for c in self.cut_points))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        classes = 0 if self.method == "none" else len(self.cut_points) + 1
        if (self.method == "none") != (self.class_names is None) or (
                self.class_names is not None and len(self.class_names) != classes):
            msg = (f"FittedClassLabels: {len(self.cut_points)} cut points need {classes} class names "
                   f"(None for method 'none'), got class_names={self.class_names}")
            raise ConfigError(msg)

    @property
    def n_classes(self) -> int:
        return 0 if self.class_names is None else len(self.class_names)

    def transform(self, y) -> pd.Series:
        """Class numbers 0..n_classes-1 as a nullable ``Int64`` Series, NaN labels staying missing (``<NA>``).

        For ``"none"`` the labels come back unchanged as float64. The index of ``y`` is kept, so rows stay
        aligned; drop the missing rows (``.dropna()``) before training. Under ``ties="drop"`` a label of exactly
        0 is missing too.
        """
        values = _floats(y)
        index = y.index if isinstance(y, pd.Series) else pd.RangeIndex(len(values))
        name = y.name if isinstance(y, pd.Series) else None
        if self.method == "none":
            return pd.Series(values.copy(), index=index, name=name, dtype="float64")
        missing = np.isnan(values)
        if self.method == "barrier":
            _check_barrier(values[~missing])
        side = "left" if self.boundary == "lower" else "right"
        classes = np.searchsorted(np.asarray(self.cut_points), np.where(missing, 0.0, values), side=side)
        if self.ties == "drop":
            missing = missing | (values == 0)
        return pd.Series(pd.arrays.IntegerArray(classes.astype(np.int64), missing), index=index, name=name)

    def to_dict(self) -> dict:
        return {"method": self.method, "thresholds": list(self.thresholds), "boundary": self.boundary,
                "cut_points": list(self.cut_points),
                "class_names": None if self.class_names is None else list(self.class_names), "ties": self.ties}

    @classmethod
    def from_dict(cls, values: dict) -> FittedClassLabels:
        """Reads :meth:`to_dict` back; one written before ``ties`` existed reads as it was fitted."""
        names = values["class_names"]
        return cls(values["method"], tuple(values["thresholds"]), values["boundary"],
                   tuple(values["cut_points"]), None if names is None else tuple(names), ties=values.get("ties"))


def _check_ties(method: str, boundary: str, ties) -> str | None:
    """``ties`` checked against the method and the boundary; for ``"sign"`` never None (read from the boundary)."""
    if method != "sign":
        if ties is not None:
            msg = (f"ties is an option of label method 'sign' only (where a return of exactly 0 goes: "
                   f"{', '.join(repr(t) for t in TIES)}); label method {method!r} got ties={ties!r}: remove it, "
                   f"and use boundary='lower' or 'upper' to say where a value on a cut point goes")
            raise ConfigError(msg)
        return None
    if ties is None:
        return "down" if boundary == "lower" else "up"
    check_method("ties", ties, TIES)
    if boundary == "upper" and ties == "down":
        msg = ("ClassLabels('sign') got boundary='upper' (a return of 0 is 'up') and ties='down': they say "
               "opposite things; give ties alone ('down', 'up' or 'drop')")
        raise ConfigError(msg)
    return ties


def triple_barrier_labels(prices: pd.Series, volatility: pd.Series, *, horizon: int, upper: float = 1.0,
                          lower: float = 1.0) -> pd.Series:
    """Which barrier each price path touches first: 1 the upper, -1 the lower, 0 neither within ``horizon``.

    For each bucket ``t`` the barriers are ``prices[t] * (1 + upper * volatility[t])`` and
    ``prices[t] * (1 - lower * volatility[t])``, and the path is ``prices[t+1], ..., prices[t+horizon]``. A
    price at or beyond a barrier touches it. Where both are touched first in the same bucket (only possible
    when the barriers are very close) the label is 0. The label is NaN for the last ``horizon`` buckets (fewer
    future buckets than the horizon) and wherever ``prices[t]``, ``volatility[t]`` or a price on the path is
    missing. This reads the future by design: it is a label, with a lookforward of ``horizon`` buckets.

    Example:
        >>> prices = pd.Series([100.0, 101.0, 103.0, 99.0, 97.0, 100.0])
        >>> vol = pd.Series(0.02, index=prices.index)
        >>> triple_barrier_labels(prices, vol, horizon=2).tolist()
        [1.0, 0.0, -1.0, -1.0, nan, nan]

    Args:
        prices: prices on a time-ordered bucket grid.
        volatility: per bucket, a return scale (a fraction, e.g. a rolling standard deviation of returns), on
            the same index; it should use only past data, as any feature.
        horizon: the vertical barrier, in buckets.
        upper: the upper barrier's distance in units of volatility. lower: the lower barrier's.

    Returns:
        A float64 Series of -1.0, 0.0, 1.0 and NaN on ``prices``'s index.

    Raises:
        ConfigError: a horizon below 1, barrier multipliers that are not positive, a negative volatility, or
            volatility on another index.
    """
    horizon = check_count("horizon", horizon, minimum=1)
    for name, value in (("upper", upper), ("lower", lower)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            msg = (f"triple_barrier_labels: {name} must be a positive multiple of volatility, "
                   f"got {name}={value!r}")
            raise ConfigError(msg)
    if not isinstance(prices, pd.Series):
        prices = pd.Series(prices)
    if isinstance(volatility, pd.Series):
        if not volatility.index.equals(prices.index):
            msg = ("triple_barrier_labels: volatility is on another index than prices; "
                   "use volatility.reindex(prices.index)")
            raise ConfigError(msg)
    elif np.ndim(volatility) == 0:
        volatility = pd.Series(float(volatility), index=prices.index)
    p, v = _floats(prices), _floats(volatility)
    if len(v) != len(p):
        msg = f"triple_barrier_labels: {len(p)} prices but {len(v)} volatilities; give one per price"
        raise ConfigError(msg)
    if np.any(v < 0):
        msg = f"triple_barrier_labels: volatility must not be negative, got {float(np.nanmin(v))}"
        raise ConfigError(msg)
    out = np.full(len(p), np.nan)
    rows = len(p) - horizon
    if rows > 0:
        paths = np.lib.stride_tricks.sliding_window_view(p[1:], horizon)  # row t: prices t+1 .. t+horizon
        for start in range(0, rows, 1 << 16):  # blocks bound the memory of the (rows, horizon) comparisons
            stop = min(start + (1 << 16), rows)
            out[start:stop] = _first_touch(p[start:stop], v[start:stop], paths[start:stop], upper, lower)
    return pd.Series(out, index=prices.index, name="triple_barrier")


def _first_touch(base: np.ndarray, vol: np.ndarray, paths: np.ndarray, upper: float,
                 lower: float) -> np.ndarray:
    horizon = paths.shape[1]
    with np.errstate(invalid="ignore"):
        hit_up = paths >= (base * (1 + upper * vol))[:, None]
        hit_down = paths <= (base * (1 - lower * vol))[:, None]
    first_up = np.where(hit_up.any(axis=1), hit_up.argmax(axis=1), horizon)
    first_down = np.where(hit_down.any(axis=1), hit_down.argmax(axis=1), horizon)
    label = np.sign(first_down - first_up).astype(np.float64)
    valid = np.isfinite(base) & np.isfinite(vol) & np.isfinite(paths).all(axis=1)
    return np.where(valid, label, np.nan)


def _check_barrier(values: np.ndarray) -> None:
    odd = np.setdiff1d(np.unique(values), (-1.0, 0.0, 1.0))
    if len(odd):
        msg = (f"label method 'barrier' expects triple-barrier labels -1, 0, 1, got also {odd[:5].tolist()}; "
               f"use method='sign', 'bps' or 'percentile' for returns")
        raise ConfigError(msg)


def _floats(values) -> np.ndarray:
    try:
        if isinstance(values, (pd.Series, pd.Index)):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        msg = f"labels must be numbers, got {type(values).__name__} that cannot be read as floats"
        raise ConfigError(msg) from None


__all__ = ["BOUNDARIES", "LABEL_METHODS", "TIES", "ClassLabels", "FittedClassLabels", "default_class_names",
           "triple_barrier_labels"]
