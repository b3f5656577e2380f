"""Features that read metric series directly: their parameters, names, dictionaries and computation.

A leaf feature holds its parameters in one canonical tuple: exchange(s), bucket, then the class's own, in the
class's order, each checked and normalized when the feature is made, and left out when it equals its default,
so that ``Midpoint().depth(0) == Midpoint()``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from atlas.data.buckets import width_name
from atlas.data.exchanges import Exchange
from atlas.data.features._base import Feature, Footprint, did_you_mean, number_text
from atlas.data.features._data import grid_of, require
from atlas.data.series import SeriesKey
from atlas.exceptions import ConfigError

#: A function that returns the series of a metric, of the feature's exchange or of the one given.
Getter = Callable[..., pd.Series]

DEFAULT_BUCKET = "1min"
PRICE_SOURCES = ("midpoint", "close", "vwap")
CYCLIC_COMPONENTS = ("sin", "cos")
WEIGHTINGS = ("volume", "equal")



def _whole(owner: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        msg = f"{owner}.{key} must be a whole number of buckets, 1 or more, got {key}={value!r}"
        raise ConfigError(msg)
    return int(value)


def _amount(owner: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0:
        msg = f"{owner}.{key} must be a finite number, 0 or more, got {key}={value!r}"
        raise ConfigError(msg)
    return float(value)


def _choice(allowed: tuple[str, ...]):
    def check(owner: str, key: str, value: Any) -> str:
        if value not in allowed:
            msg = f"{owner}.{key} must be one of {', '.join(map(repr, allowed))}, got {key}={value!r}"
            raise ConfigError(msg)
        return value
    return check


def _exchange(owner: str, key: str, value: Any) -> str:
    return Exchange.read(value).key  # the venue is checked where the store is known (FeatureLabelSet.build)


def _exchanges(owner: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str | Exchange):
        value = (value,)
    keys = tuple(Exchange.read(v).key for v in value)
    if len(set(keys)) != len(keys):
        msg = f"{owner}.exchanges must be different exchanges, got exchanges={list(keys)}"
        raise ConfigError(msg)
    return keys


def _weights(owner: str, key: str, value: Any) -> str | tuple[float, ...]:
    if isinstance(value, str):
        return _choice(WEIGHTINGS)(owner, key, value)
    numbers_ = tuple(value)
    if not numbers_ or not all(isinstance(w, numbers.Real) and not isinstance(w, bool) and math.isfinite(w)
                               and w > 0 for w in numbers_):
        msg = (f"{owner}.weights must be 'volume', 'equal' or positive numbers, one per exchange, "
               f"got weights={value!r}")
        raise ConfigError(msg)
    return tuple(float(w) for w in numbers_)


_NORMALIZE = {
    "exchange": _exchange,
    "exchanges": _exchanges,
    "bucket": lambda owner, key, value: width_name(value),
    "lookback": _whole,
    "lookforward": _whole,
    "window": _whole,
    "depth": _amount,
    "slippage": _amount,
    "price": _choice(PRICE_SOURCES),
    "cyclic": _choice(CYCLIC_COMPONENTS),
    "weights": _weights,
}


@dataclass(frozen=True, init=False, repr=False)
class Leaf(Feature):
    """A feature computed from metric series of one exchange, several, or none (calendar features).

    Subclasses set :attr:`kind`, :attr:`exchange_count` and :attr:`defaults`, and implement :meth:`_reads`,
    :meth:`_compute` and :meth:`_footprint`.

    Attributes:
        params: the parameters that differ from their defaults, exchange(s) and bucket first (bucket always).
    """

    params: tuple[tuple[str, Any], ...]

    #: The name's prefix, ``log_returns``.
    kind: ClassVar[str] = ""
    #: 0: reads no exchange; 1: one; 2: exactly two; -1: two or more.
    exchange_count: ClassVar[int] = 1
    #: The class's own parameters and their defaults, in the order names show them.
    defaults: ClassVar[dict[str, Any]] = {}
    #: Parameters the name shows even at their default (the horizon), unless ``lookforward`` is set.
    shown: ClassVar[tuple[str, ...]] = ()
    #: Pairs of parameters that cannot both be set.
    exclusive: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, *exchanges: str | Exchange, **params: Any) -> None:
        if exchanges:
            params = self._place_exchanges(exchanges, params)
        object.__setattr__(self, "params", self._canonical(params))
        self._check_common()
        self._check()

    def _place_exchanges(self, exchanges: tuple, params: dict[str, Any]) -> dict[str, Any]:
        """``Midpoint("bitstamp")``, ``InterExchangeSpread("bitstamp", "itbit")``: positional exchanges."""
        owner = type(self).__name__
        if self.exchange_count == 0:
            msg = f"{owner} reads no exchange, got {', '.join(map(repr, exchanges))}"
            raise ConfigError(msg)
        if "exchange" in params or "exchanges" in params:
            msg = f"{owner} got its exchange both positionally and by keyword; give it once"
            raise ConfigError(msg)
        if self.exchange_count == 1:
            if len(exchanges) > 1:
                msg = f"{owner} reads one exchange, got {len(exchanges)}: {', '.join(map(str, exchanges))}"
                raise ConfigError(msg)
            return {**params, "exchange": exchanges[0]}
        return {**params, "exchanges": exchanges}

    def _canonical(self, params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        """Each parameter checked and normalized, defaults left out (but the bucket), in name order."""
        owner = type(self).__name__
        allowed = self.parameter_names()
        given = {"bucket": DEFAULT_BUCKET}
        for key, value in params.items():
            if key not in allowed:
                hint = self._instead(key) or did_you_mean(key, allowed).lstrip("; ")
                msg = f"{owner} takes {', '.join(allowed)}; not {key}" + (f" ({hint})" if hint else "")
                raise ConfigError(msg)
            if value is not None:
                given[key] = _NORMALIZE[key](owner, key, value)
        defaults = {k: None if v is None else _NORMALIZE[k](owner, k, v) for k, v in self.defaults.items()}
        kept = [k for k in allowed if k in given and (k == "bucket" or given[k] != defaults.get(k))]
        return tuple((k, given[k]) for k in kept)

    def _check_common(self) -> None:
        owner = type(self).__name__
        for first, second in self.exclusive:
            if self.is_set(first) and self.is_set(second):
                msg = (f"{owner} takes {first} or {second}, not both: got {first}={self.get(first)}, "
                       f"{second}={self.get(second)}; a label reads only the future: write .{second}(n) "
                       "alone")
                raise ConfigError(msg)
        if self.exchange_count not in (0, 1) and self.is_set("exchanges"):
            count = len(self.get("exchanges"))
            if count < 2 or self.exchange_count == 2 and count != 2:
                wanted = "two" if self.exchange_count == 2 else "two or more"
                msg = f"{owner} reads {wanted} exchanges, got exchanges={list(self.get('exchanges'))}"
                raise ConfigError(msg)

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The parameters the class takes, in the order its name shows them."""
        exchange = {0: (), 1: ("exchange",)}.get(cls.exchange_count, ("exchanges",))
        return (*exchange, "bucket", *cls.defaults)

    def get(self, key: str) -> Any:
        """A parameter's value: as set, or its default."""
        return dict(self.params).get(key, self.defaults.get(key, DEFAULT_BUCKET if key == "bucket" else None))

    def is_set(self, key: str) -> bool:
        """Whether a parameter is set to something other than its default."""
        return any(k == key for k, _ in self.params)

    @classmethod
    def _instead(cls, key: str) -> str:
        """What to write instead of a parameter the class does not take."""
        if key in ("exchange", "exchanges"):
            if cls.exchange_count == 0:
                return "it reads no exchange"
            if cls.exchange_count == 1:
                return "it reads one exchange: call .bitstamp() or .exchange('kraken')"
            return (f"it reads several exchanges: write {cls.__name__}('bitstamp', 'itbit') or "
                    ".exchanges('bitstamp', 'itbit')")
        if key == "lookback" and "window" in cls.defaults:
            return "for the last n buckets write .window(n); for the value n buckets back, .lag(n)"
        if key == "lookback" and "lookforward" in cls.defaults:
            return "for the value n buckets back write .lag(n)"
        return ""

    def _check(self) -> None:
        """Checks across parameters, for subclasses."""

    def _set(self, **changes: Any) -> Feature:
        return type(self)(**{**dict(self.params), **changes})

    def _width(self) -> str:
        return self.get("bucket")

    def _with_bucket(self, width: str) -> Feature:
        return self._set(bucket=width)

    # names and dictionaries ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        parts = []
        if self.exchange_count == 1:
            parts.append(self.get("exchange") or "?")
        elif self.exchange_count != 0:
            parts.extend(self.get("exchanges") or ("?",))
        parts.append(self.get("bucket"))
        forward = self.is_set("lookforward")
        for key in self.defaults:
            if self.is_set(key) or key in self.shown and not forward:
                parts.append(f"{key}={_text(self.get(key))}")
        return f"{self.kind}({', '.join(parts)})"

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={_python(v)}" for k, v in self.params)
        return f"{type(self).__name__}({given})"

    def to_dict(self) -> dict[str, Any]:
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params}
        return {"type": type(self).__name__, **params}

    @classmethod
    def _from_dict(cls, description: dict[str, Any]) -> Feature:
        return cls(**description)

    # computing ----------------------------------------------------------------------------------------------

    @property
    def footprint(self) -> Footprint:
        return self._footprint()

    def series(self) -> frozenset[SeriesKey]:
        return frozenset(self._keys().values())

    def compute(self, data: Mapping[str, pd.Series], *, index: pd.DatetimeIndex | None = None) -> pd.Series:
        keys = self._keys()
        require(self.name, list(keys.values()), data)
        names = [key.name for key in keys.values()]
        grid = grid_of(self.name, self.get("bucket"), data, names, index)

        def get(metric: str, exchange: str | None = None) -> pd.Series:
            return data[keys[(exchange or self.get("exchange"), metric)].name].astype(float)

        values = self._compute(get, grid)
        return pd.Series(values.to_numpy(dtype=float), index=grid, name=self.name)

    def _keys(self) -> dict[tuple[str, str], SeriesKey]:
        if self.exchange_count == 1 and self.get("exchange") is None:
            msg = f"{type(self).__name__} has no exchange: call .bitstamp() or .exchange('kraken')"
            raise ConfigError(msg)
        if self.exchange_count not in (0, 1) and not self.get("exchanges"):
            owner = type(self).__name__
            msg = (f"{owner} has no exchanges: write {owner}('bitstamp', 'itbit') or "
                   ".exchanges('bitstamp', 'itbit')")
            raise ConfigError(msg)
        width = self.get("bucket")
        return {(e, m): SeriesKey.of(e, width, m) for e, m in self._reads()}

    def _reads(self) -> list[tuple[str, str]]:
        """(exchange key, metric) of every series read."""
        raise NotImplementedError

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        raise NotImplementedError

    def _footprint(self) -> Footprint:
        raise NotImplementedError


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return f"({', '.join(_text(v) for v in value)})"
    if isinstance(value, numbers.Real):
        return number_text(value)
    return str(value)


def _python(value: Any) -> str:
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, tuple):
        return f"({', '.join(_python(v) for v in value)}{',' if len(value) == 1 else ''})"
    return repr(value)


# shared shapes ---------------------------------------------------------------------------------------------


class Level(Leaf):
    """A value sampled or formed at ``t``; ``.lookforward(n)`` reads it at exactly ``t + n*width``."""

    def _footprint(self) -> Footprint:
        own = self._level_footprint()
        n = self.get("lookforward")
        return own.shifted(-n) if n else own

    def _level_footprint(self) -> Footprint:
        return Footprint()

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        value = self._level(get)
        n = self.get("lookforward")
        return value.shift(-n) if n else value

    def _level(self, get: Getter) -> pd.Series:
        raise NotImplementedError


class Aggregate(Leaf):
    """Sums over the last ``window`` buckets (``t`` included) or, as a label, the next ``lookforward``.

    ``window(n)`` at ``t`` covers ``(t - n*width, t]``; ``lookforward(n)`` covers ``(t, t + n*width]``. A
    window with a missing bucket gives NaN.
    """

    defaults: ClassVar[dict[str, Any]] = {"window": 1, "lookforward": None}
    exclusive = (("window", "lookforward"),)

    def _footprint(self) -> Footprint:
        n = self.get("lookforward")
        return Footprint(0, n) if n else Footprint(self.get("window") - 1, 0)

    def _total(self, values: pd.Series) -> pd.Series:
        n = self.get("lookforward")
        if n:
            return values.rolling(n, min_periods=n).sum().shift(-n)
        window = self.get("window")
        return values if window == 1 else values.rolling(window, min_periods=window).sum()
