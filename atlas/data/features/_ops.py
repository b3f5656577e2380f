"""Features made of features: arithmetic, rolling windows, lags, differences and steps of your own.

Footprints compose: arithmetic reads what both sides read (the larger reach each way); ``rolling_mean(n)``,
``rolling_std(n)`` and ``zscore(n)`` reach ``n - 1`` more buckets back; ``diff(n)`` ``n`` more; ``lag(n)``
moves the whole footprint ``n`` buckets back, so a label lagged by its lookforward reads no future. Every
window is past-only and NaN unless all its values are present; division by zero gives NaN.

Example:
    >>> from atlas.data.features import LogReturns, Volume
    >>> excess = Volume().bitstamp() - Volume().itbit()
    >>> print(excess.rolling_mean(5))
    rolling_mean((volume(bitstamp_btc_usd, 1min) - volume(itbit_btc_usd, 1min)), 5)
    >>> (LogReturns().bitstamp().lookback(3) * excess).rolling_mean(5).footprint
    Footprint(lookback=7, lookforward=0)
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from atlas.data.features._base import Feature, Footprint, number_text
from atlas.data.features._data import require
from atlas.data.series import SeriesKey
from atlas.exceptions import ConfigError

_ARITHMETIC: dict[str, Callable] = {"+": operator.add, "-": operator.sub, "*": operator.mul,
                                    "/": operator.truediv}
#: Transform -> the smallest n it takes.
_TRANSFORMS = {"neg": 1, "lag": 1, "diff": 1, "rolling_mean": 1, "rolling_std": 2, "zscore": 2}


def is_operand(value: Any) -> bool:
    """Whether arithmetic takes ``value``: a feature or a real number (not a bool)."""
    return isinstance(value, Feature) or isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True, repr=False)
class Arithmetic(Feature):
    """``left op right`` for ``op`` in ``+ - * /``, between features of one bucket width and numbers.

    Example:
        >>> from atlas.data.features import Midpoint
        >>> (2 * Midpoint().bitstamp()).name
        '(2 * midpoint(bitstamp_btc_usd, 1min))'
    """

    op: str
    left: Feature | float
    right: Feature | float

    def __post_init__(self) -> None:
        if self.op not in _ARITHMETIC:
            msg = f"Arithmetic.op must be one of {', '.join(_ARITHMETIC)}, got op={self.op!r}"
            raise ConfigError(msg)
        for side in ("left", "right"):
            value = getattr(self, side)
            if not is_operand(value) or not isinstance(value, Feature) and not math.isfinite(value):
                msg = f"arithmetic takes features and finite numbers, got {side}={value!r}"
                raise ConfigError(msg)
            if not isinstance(value, Feature):
                object.__setattr__(self, side, float(value))
        features = self._features()
        if not features:
            msg = f"arithmetic needs a feature on one side, got {self.left!r} {self.op} {self.right!r}"
            raise ConfigError(msg)
        widths = {f.bucket for f in features}
        if len(widths) > 1:
            msg = (f"arithmetic between features of different buckets ({' and '.join(sorted(widths))}): "
                   f"{self.left} {self.op} {self.right}; put both on one bucket with .bucket(...)")
            raise ConfigError(msg)

    def _features(self) -> list[Feature]:
        return [x for x in (self.left, self.right) if isinstance(x, Feature)]

    @property
    def name(self) -> str:
        return f"({_operand(self.left, str)} {self.op} {_operand(self.right, str)})"

    def __repr__(self) -> str:
        return f"({_operand(self.left, repr)} {self.op} {_operand(self.right, repr)})"

    @property
    def footprint(self) -> Footprint:
        first, *rest = [f.footprint for f in self._features()]
        for other in rest:
            first = first.union(other)
        return first

    def series(self) -> frozenset[SeriesKey]:
        return frozenset().union(*(f.series() for f in self._features()))

    def compute(self, data: Mapping[str, pd.Series], *, index: pd.DatetimeIndex | None = None) -> pd.Series:
        require(self.name, sorted(self.series(), key=str), data)  # every missing series at once
        left, right = (x.compute(data, index=index) if isinstance(x, Feature) else x
                       for x in (self.left, self.right))
        result = _ARITHMETIC[self.op](left, right)
        if self.op == "/":
            result = result.replace([np.inf, -np.inf], np.nan)
        return result.rename(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Arithmetic", "op": self.op, "left": _operand(self.left, _to_dict),
                "right": _operand(self.right, _to_dict)}

    @classmethod
    def _from_dict(cls, description: dict[str, Any]) -> Feature:
        from atlas.data.features._registry import feature_from_dict

        sides = [feature_from_dict(x) if isinstance(x, Mapping) else x for x in (description.get("left"),
                                                                                 description.get("right"))]
        return cls(description.get("op"), *sides)

    def _width(self) -> str:
        return self._features()[0].bucket

    def _with_bucket(self, width: str) -> Feature:
        left, right = (x._with_bucket(width) if isinstance(x, Feature) else x
                       for x in (self.left, self.right))
        return dataclasses.replace(self, left=left, right=right)


@dataclass(frozen=True, repr=False)
class Transform(Feature):
    """One feature's values transformed along the grid: ``neg``, ``lag``, ``diff``, ``rolling_mean``,
    ``rolling_std`` (ddof 1) or ``zscore``, each over ``n`` buckets.

    Example:
        >>> from atlas.data.features import Volume
        >>> Volume().bitstamp().lag(2).name
        'lag(volume(bitstamp_btc_usd, 1min), 2)'
    """

    op: str
    feature: Feature
    n: int = 1

    def __post_init__(self) -> None:
        if self.op not in _TRANSFORMS:
            msg = f"Transform.op must be one of {', '.join(_TRANSFORMS)}, got op={self.op!r}"
            raise ConfigError(msg)
        if not isinstance(self.feature, Feature):
            msg = f"{self.op} transforms a feature, got {self.feature!r}"
            raise ConfigError(msg)
        least = _TRANSFORMS[self.op]
        if isinstance(self.n, bool) or not isinstance(self.n, numbers.Integral) or self.n < least:
            msg = f"{self.op}(n) takes a whole number of buckets, {least} or more, got n={self.n!r}"
            raise ConfigError(msg)
        object.__setattr__(self, "n", int(self.n))

    @property
    def name(self) -> str:
        if self.op == "neg":
            return f"(-{self.feature.name})"
        return f"{self.op}({self.feature.name}, {self.n})"

    def __repr__(self) -> str:
        if self.op == "neg":
            return f"(-{self.feature!r})"
        return f"{self.feature!r}.{self.op}({self.n})"

    @property
    def footprint(self) -> Footprint:
        inner = self.feature.footprint
        if self.op == "lag":
            return inner.shifted(self.n)
        if self.op == "diff":
            return inner.widened(lookback=self.n)
        return inner if self.op == "neg" else inner.widened(lookback=self.n - 1)

    def series(self) -> frozenset[SeriesKey]:
        return self.feature.series()

    def compute(self, data: Mapping[str, pd.Series], *, index: pd.DatetimeIndex | None = None) -> pd.Series:
        x = self.feature.compute(data, index=index)
        n = self.n
        if self.op == "neg":
            result = -x
        elif self.op == "lag":
            result = x.shift(n)
        elif self.op == "diff":
            result = x - x.shift(n)
        elif self.op == "rolling_mean":
            result = x.rolling(n, min_periods=n).mean()
        elif self.op == "rolling_std":
            result = x.rolling(n, min_periods=n).std()
        else:
            window = x.rolling(n, min_periods=n)
            result = ((x - window.mean()) / window.std()).replace([np.inf, -np.inf], np.nan)
        return result.rename(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Transform", "op": self.op, "feature": self.feature.to_dict(), "n": self.n}

    @classmethod
    def _from_dict(cls, description: dict[str, Any]) -> Feature:
        from atlas.data.features._registry import feature_from_dict

        inner = feature_from_dict(description.get("feature"))
        return cls(description.get("op"), inner, description.get("n", 1))

    def _width(self) -> str:
        return self.feature.bucket

    def _with_bucket(self, width: str) -> Feature:
        return dataclasses.replace(self, feature=self.feature._with_bucket(width))


@dataclass(frozen=True, repr=False)
class Pipe(Feature):
    """A function of your own applied to a feature's values: ``function(series) -> series``, same index.

    The function is held by its import path, ``"module:qualname"``, so a piped feature has a name, a cache key
    and a ``to_dict``; ``from_dict`` imports that module, so restore only descriptions you trust. The
    footprint is the feature's, widened by what the function declares it reads (``extra``): the leakage guard
    cannot look inside a function.

    Example:
        >>> import numpy as np
        >>> from atlas.data.features import Volume
        >>> Volume().bitstamp().pipe(np.log1p).name
        'pipe(volume(bitstamp_btc_usd, 1min), numpy:log1p)'
    """

    feature: Feature
    function: str
    extra: Footprint = Footprint()

    def __post_init__(self) -> None:
        if not isinstance(self.feature, Feature):
            msg = f"pipe applies a function to a feature, got {self.feature!r}"
            raise ConfigError(msg)
        resolve(self.function)
        extra = self.extra
        for key in ("lookback", "lookforward"):
            value = getattr(extra, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                msg = f"pipe's {key} is how many buckets the function reads, 0 or more, got {key}={value!r}"
                raise ConfigError(msg)

    @property
    def name(self) -> str:
        extra = "".join(f", {k}={getattr(self.extra, k)}" for k in ("lookback", "lookforward") if getattr(
            self.extra, k))
        return f"pipe({self.feature.name}, {self.function}{extra})"

    def __repr__(self) -> str:
        extra = "".join(f", {k}={getattr(self.extra, k)}" for k in ("lookback", "lookforward") if getattr(
            self.extra, k))
        return f"{self.feature!r}.pipe({self.function!r}{extra})"

    @property
    def footprint(self) -> Footprint:
        return self.feature.footprint.widened(self.extra.lookback, self.extra.lookforward)

    def series(self) -> frozenset[SeriesKey]:
        return self.feature.series()

    def compute(self, data: Mapping[str, pd.Series], *, index: pd.DatetimeIndex | None = None) -> pd.Series:
        x = self.feature.compute(data, index=index)
        result = resolve(self.function)(x)
        if not isinstance(result, pd.Series) or not result.index.equals(x.index):
            got = (f"a Series on another index ({len(result)} rows)" if isinstance(result, pd.Series)
                   else type(result).__name__)
            msg = (f"pipe's function {self.function} must return a Series on the index it was given "
                   f"({len(x)} buckets), got {got}")
            raise ConfigError(msg)
        return result.astype(float).rename(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Pipe", "feature": self.feature.to_dict(), "function": self.function,
                "lookback": self.extra.lookback, "lookforward": self.extra.lookforward}

    @classmethod
    def _from_dict(cls, description: dict[str, Any]) -> Feature:
        from atlas.data.features._registry import feature_from_dict

        extra = Footprint(description.get("lookback", 0), description.get("lookforward", 0))
        return cls(feature_from_dict(description.get("feature")), description.get("function"), extra)

    def _width(self) -> str:
        return self.feature.bucket

    def _with_bucket(self, width: str) -> Feature:
        return dataclasses.replace(self, feature=self.feature._with_bucket(width))


def function_reference(function: Callable | str) -> str:
    """``"module:qualname"`` of a function that can be imported again by that name.

    Raises:
        ConfigError: a lambda, a local function, or anything that its name does not lead back to.
    """
    if isinstance(function, str):
        resolve(function)
        return function
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    reference = f"{module}:{qualname}"
    try:
        found = resolve(reference) if module and qualname and "<" not in qualname else None
    except ConfigError:
        found = None
    if found is not function:
        msg = (f"pipe needs a function it can name and import again, so that the feature has a name, a cache "
               f"key and a to_dict; got {function!r}: define it with def at a module's top level, or pass "
               "'module:function'")
        raise ConfigError(msg)
    return reference


def resolve(reference: str) -> Callable:
    """The function that ``"module:qualname"`` names (an import and attribute look-ups; no eval)."""
    module_name, _, qualname = str(reference).partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as error:
        msg = f"pipe function {reference!r} cannot be imported ({error}); write it as 'module:function'"
        raise ConfigError(msg) from None
    if not qualname or not callable(found):
        msg = f"pipe function {reference!r} does not name a callable; write it as 'module:function'"
        raise ConfigError(msg)
    return found


def _operand(value: Feature | float, show: Callable) -> Any:
    if isinstance(value, Feature):
        return show(value)
    return value if show is _to_dict else number_text(value)


def _to_dict(feature: Feature) -> dict[str, Any]:
    return feature.to_dict()
