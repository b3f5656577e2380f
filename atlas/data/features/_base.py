"""The feature base class: an immutable value with a canonical name, a footprint and a fluent interface.

**The bucket convention.** A bucket stamped ``t`` covers ``(t - width, t]``. Every feature value at ``t`` is
computed from the metric series on one complete grid of buckets (a UTC index with one row per bucket, NaN
where a value is missing), and every shift is by position on that grid: ``lookback(n)`` reads ``t - n*width``
and ``lookforward(n)`` reads exactly ``t + n*width``, the next ``n`` buckets, not ``n + 1``.

**Footprints and leakage.** Each feature declares its :class:`Footprint`: how many buckets of past and of
future it reads. A feature with any future in its footprint is a label; :func:`check_inputs` refuses it as an
input (:class:`LeakageError`), and :func:`check_labels` refuses a label that reads no future.

Example:
    >>> from atlas.data.features import LogReturns
    >>> label = LogReturns().bitstamp().lookforward(5)
    >>> label.name, label.footprint, label.is_label
    ('log_returns(bitstamp_btc_usd, 1min, lookforward=5)', Footprint(lookback=0, lookforward=5), True)
    >>> label.lag(5).is_label  # the same returns, five buckets later: they end at t
    False
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from atlas.data.exchanges import DEFAULT_PAIR, KNOWN_VENUES, Exchange
from atlas.data.series import SeriesKey
from atlas.exceptions import ConfigError, LeakageError


@dataclass(frozen=True)
class Footprint:
    """How many buckets of the past and of the future a feature reads, beside the bucket ``t`` itself.

    Attributes:
        lookback: buckets before ``t`` (a warm-up of this many buckets gives the first full value).
        lookforward: buckets after ``t``; more than 0 makes the feature a label.
    """

    lookback: int = 0
    lookforward: int = 0

    def union(self, other: Footprint) -> Footprint:
        """The footprint of a feature that reads both: the larger reach each way."""
        return Footprint(max(self.lookback, other.lookback), max(self.lookforward, other.lookforward))

    def shifted(self, n: int) -> Footprint:
        """The footprint of the same values read ``n`` buckets later (``n < 0``: earlier, into the future)."""
        return Footprint(max(self.lookback + n, 0), max(self.lookforward - n, 0))

    def widened(self, lookback: int = 0, lookforward: int = 0) -> Footprint:
        """The footprint of a window reaching ``lookback`` more buckets back, ``lookforward`` more ahead."""
        return Footprint(self.lookback + lookback, self.lookforward + lookforward)


def did_you_mean(given: str, choices: Iterable[str]) -> str:
    """``"; did you mean x?"`` with the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(given, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def number_text(value: float) -> str:
    """A number as canonical names write it: ``2``, ``0.5``, ``-1``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


class BucketWidth(str):
    """A feature's bucket width (``'1min'``) that also sets it: ``f.bucket == '1min'``, ``f.bucket('5min')``.

    It is a plain string in every other respect (hash, comparison, formatting, JSON).
    """

    def __new__(cls, width: str, feature: Feature) -> BucketWidth:
        text = super().__new__(cls, width)
        text._feature = feature
        return text

    def __call__(self, width: str) -> Feature:
        """The same feature on buckets of ``width`` (``"30min"``, ``"1h"``, any fixed pandas offset)."""
        return self._feature._with_bucket(width)

    def __repr__(self) -> str:
        return repr(str(self))

    def __reduce__(self):
        return str, (str(self),)


@dataclass(frozen=True, repr=False)
class Feature:
    """One column of model input or label, computed from metric series on a bucket grid.

    Features are immutable and hashable: every fluent call returns a new feature, and equal features have
    equal names and hashes, so a feature is its own cache key. ``str(feature)`` is its canonical name.

    Example:
        >>> from atlas.data.features import LogReturns, Volume
        >>> momentum = LogReturns().kraken().five_min().lookback(3)
        >>> str(momentum)
        'log_returns(kraken_btc_usd, 5min, lookback=3)'
        >>> momentum.bucket, momentum.footprint.lookback
        ('5min', 3)

        Arithmetic and rolling windows make new features, with their footprints:

        >>> surprise = (Volume().kraken().five_min() / 2).zscore(12)
        >>> surprise.name
        'zscore((volume(kraken_btc_usd, 5min) / 2), 12)'
        >>> surprise.footprint
        Footprint(lookback=11, lookforward=0)
    """

    # numpy defers to the operators below instead of treating a feature as an array element
    __array_ufunc__ = None

    # what every feature answers -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The canonical name: the column name and the cache key."""
        raise NotImplementedError

    @property
    def footprint(self) -> Footprint:
        """Buckets of past and future that one value reads."""
        raise NotImplementedError

    @property
    def is_label(self) -> bool:
        """Whether the feature reads the future (then it may only be a label)."""
        return self.footprint.lookforward > 0

    @property
    def bucket(self) -> BucketWidth:
        """The bucket width's canonical name (``'1min'``); call it to set another: ``f.bucket("30min")``."""
        return BucketWidth(self._width(), self)

    def series(self) -> frozenset[SeriesKey]:
        """The metric series the feature reads."""
        raise NotImplementedError

    def compute(self, data: Mapping[str, pd.Series], *, index: pd.DatetimeIndex | None = None) -> pd.Series:
        """The feature's values on the bucket grid of ``data``.

        Args:
            data: metric series by series name, each on the same complete grid: a UTC index with one row per
                bucket of this feature's width, NaN where a value is missing. Extra series are ignored.
            index: the grid, for features that read no series (calendar features); by default the index of
                the series in ``data``.

        Returns:
            A float Series on the grid, named :attr:`name`, NaN where the feature is undefined.

        Raises:
            MissingDataError: a series the feature reads is not in ``data`` (the message says what makes it).
            ConfigError: the feature lacks an exchange, or the series are not on one complete grid.
        """
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable description with a ``"type"`` key; :meth:`from_dict` restores it."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, description: Mapping[str, Any]) -> Feature:
        """The feature that ``to_dict`` described (see :func:`~atlas.data.features.feature_from_dict`)."""
        from atlas.data.features._registry import feature_from_dict

        restored = feature_from_dict(description)
        if not isinstance(restored, cls):
            msg = f"{cls.__name__}.from_dict got a description of a {type(restored).__name__}: " \
                  f"{description!r}"
            raise ConfigError(msg)
        return restored

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        msg = (f"the truth value of a feature is ambiguous ({self.name}): features compare by value with ==, "
               "combine with + - * /, and tell whether they read the future with .is_label")
        raise TypeError(msg)

    # hooks for subclasses -----------------------------------------------------------------------------------

    def _width(self) -> str:
        raise NotImplementedError

    def _with_bucket(self, width: str) -> Feature:
        raise NotImplementedError

    def _set(self, **changes: Any) -> Feature:
        key = next(iter(changes))
        msg = (f"{self.name} combines other features and takes no {key}: set .{key}(...) on the features "
               "inside it (only .bucket(...) applies to every feature inside a combination)")
        raise ConfigError(msg)

    # exchanges ----------------------------------------------------------------------------------------------

    def exchange(self, name: str | Exchange, pair: str = DEFAULT_PAIR, *, new_venue: bool = False) -> Feature:
        """The same feature on another exchange: a venue (``"kraken"``) or a full name (``"kraken_btc_eur"``).

        Any well-formed name is taken here, a venue of your own too (``"cme_es_usd"``): whether its venue is known
        (built in, configured in ``ATLAS_EXTRA_VENUES``, or with data in the store) is decided where the store is
        known, by :meth:`FeatureLabelSet.build <atlas.data.FeatureLabelSet.build>`, which names the closest
        venues of a misspelled one.

        Args:
            name: the venue, or venue, base and quote joined by underscores; or an :class:`Exchange`.
            pair: the pair when ``name`` is a venue only, as ``base_quote``.
            new_venue: kept for code written when only built-in venues were taken here; it changes nothing.

        Raises:
            UnknownExchangeError: the name is not a venue nor ``venue_base_quote``.
        """
        return self._set(exchange=Exchange.read(name, pair=pair))

    def exchanges(self, *names: str | Exchange, new_venue: bool = False) -> Feature:
        """The exchanges of a feature that reads several (``InterExchangeSpread``, ``FairValue``, ...); names are
        taken as :meth:`exchange` takes them (``new_venue`` changes nothing)."""
        return self._set(exchanges=tuple(Exchange.read(n) for n in names))

    def bitstamp(self) -> Feature:
        """On BITSTAMP_BTC_USD (``.bitstamp_btc_eur()`` and the like name another pair)."""
        return self.exchange("bitstamp")

    def bitfinex(self) -> Feature:
        """On BITFINEX_BTC_USD."""
        return self.exchange("bitfinex")

    def kraken(self) -> Feature:
        """On KRAKEN_BTC_USD."""
        return self.exchange("kraken")

    def itbit(self) -> Feature:
        """On ITBIT_BTC_USD."""
        return self.exchange("itbit")

    def okcoin(self) -> Feature:
        """On OKCOIN_BTC_USD."""
        return self.exchange("okcoin")

    def coinbase(self) -> Feature:
        """On COINBASE_BTC_USD."""
        return self.exchange("coinbase")

    def gemini(self) -> Feature:
        """On GEMINI_BTC_USD."""
        return self.exchange("gemini")

    # buckets ------------------------------------------------------------------------------------------------

    def one_min(self) -> Feature:
        """On one-minute buckets (the default)."""
        return self._with_bucket("1min")

    def five_min(self) -> Feature:
        """On five-minute buckets."""
        return self._with_bucket("5min")

    def ten_min(self) -> Feature:
        """On ten-minute buckets."""
        return self._with_bucket("10min")

    def one_hour(self) -> Feature:
        """On one-hour buckets."""
        return self._with_bucket("1h")

    # parameters (each class takes some; the others raise ConfigError naming the ones it takes) --------------

    def lookback(self, n: int) -> Feature:
        """Read ``n`` buckets back: returns over ``(t - n*width, t]``."""
        return self._set(lookback=n)

    def lookforward(self, n: int) -> Feature:
        """Read exactly the next ``n`` buckets: returns over ``(t, t + n*width]``. Makes a label."""
        return self._set(lookforward=n)

    def window(self, n: int) -> Feature:
        """Aggregate over the last ``n`` buckets, ``t`` included."""
        return self._set(window=n)

    def depth(self, size: float) -> Feature:
        """Prices of a market order of ``size`` base units (0: the best price)."""
        return self._set(depth=size)

    def slippage(self, distance: float) -> Feature:
        """Book volume within ``distance`` quote units of the best price."""
        return self._set(slippage=distance)

    def price(self, source: str) -> Feature:
        """The price returns are computed from: ``"midpoint"``, ``"close"`` (bars), ``"vwap"`` (trades)."""
        return self._set(price=source)

    def weights(self, weights: str | Iterable[float]) -> Feature:
        """How exchanges are weighted: ``"volume"``, ``"equal"``, or one number per exchange."""
        return self._set(weights=weights)

    def cyclic(self, component: str) -> Feature:
        """A calendar feature as ``"sin"`` or ``"cos"`` of its angle on the day's or the week's circle."""
        return self._set(cyclic=component)

    # transforms ---------------------------------------------------------------------------------------------

    def lag(self, n: int = 1) -> Feature:
        """The value ``n`` buckets earlier (``x[t - n]``)."""
        return _transform("lag", self, n)

    def diff(self, n: int = 1) -> Feature:
        """``x[t] - x[t - n]``."""
        return _transform("diff", self, n)

    def rolling_mean(self, n: int) -> Feature:
        """The mean of the last ``n`` values, ``t`` included; NaN unless all ``n`` are present."""
        return _transform("rolling_mean", self, n)

    def rolling_std(self, n: int) -> Feature:
        """The sample standard deviation (ddof 1) of the last ``n`` values; NaN unless all are present."""
        return _transform("rolling_std", self, n)

    def zscore(self, n: int) -> Feature:
        """``(x - rolling_mean(n)) / rolling_std(n)``, over the last ``n`` values, ``t`` included."""
        return _transform("zscore", self, n)

    def pipe(self, function: Callable[[pd.Series], pd.Series] | str, *, lookback: int = 0,
             lookforward: int = 0) -> Feature:
        """A step of your own: ``function(series)`` must return a Series on the same index.

        The function must be importable by name (a module-level ``def``, or ``"module:function"``), so that
        the feature keeps a name, a cache key and a ``to_dict``; a lambda or a local function is refused.

        Args:
            function: the step, or its ``"module:qualname"``.
            lookback: buckets of past the function reads beyond ``t`` (``s.rolling(5)`` reads 4).
            lookforward: buckets of future it reads; declare them, or the leakage guard cannot see them.
        """
        from atlas.data.features._ops import Pipe, function_reference

        return Pipe(self, function_reference(function), Footprint(lookback, lookforward))

    # arithmetic ---------------------------------------------------------------------------------------------

    def __add__(self, other):
        return _arithmetic("+", self, other)

    def __radd__(self, other):
        return _arithmetic("+", other, self)

    def __sub__(self, other):
        return _arithmetic("-", self, other)

    def __rsub__(self, other):
        return _arithmetic("-", other, self)

    def __mul__(self, other):
        return _arithmetic("*", self, other)

    def __rmul__(self, other):
        return _arithmetic("*", other, self)

    def __truediv__(self, other):
        return _arithmetic("/", self, other)

    def __rtruediv__(self, other):
        return _arithmetic("/", other, self)

    def __neg__(self):
        return _transform("neg", self, 1)

    # pair shortcuts and did-you-mean ------------------------------------------------------------------------

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        exchange = _shortcut_exchange(name)
        if exchange is not None:
            return lambda: self.exchange(exchange)
        tokens = name.split("_")
        venues = difflib.get_close_matches(tokens[0], KNOWN_VENUES, n=2) if len(tokens) == 3 else []
        if venues:
            hint = f"; did you mean {' or '.join(f'{v}_{tokens[1]}_{tokens[2]}' for v in venues)}?"
        else:
            hint = did_you_mean(name, sorted({n for n in dir(type(self)) if not n.startswith("_")} | set(
                KNOWN_VENUES)))
        msg = f"{type(self).__name__} has no attribute {name!r}" + (hint or (
            "; exchanges are set with .bitstamp(), .exchange('kraken') or venue_base_quote such as "
            ".bitstamp_btc_eur()"))
        raise AttributeError(msg)


def _shortcut_exchange(name: str) -> Exchange | None:
    """``bitstamp_btc_eur`` (any known venue and any pair), or a known venue alone: its exchange."""
    tokens = name.split("_")
    if tokens[0] not in KNOWN_VENUES or len(tokens) not in (1, 3) or not all(t.isalnum() for t in tokens):
        return None
    return Exchange.parse(name)


def _arithmetic(op: str, left, right):
    from atlas.data.features._ops import Arithmetic, is_operand

    if not (is_operand(left) and is_operand(right)):
        return NotImplemented
    return Arithmetic(op, left, right)


def _transform(op: str, feature: Feature, n: int) -> Feature:
    from atlas.data.features._ops import Transform

    return Transform(op, feature, n)


def check_inputs(features: Feature | Iterable[Feature]) -> None:
    """Refuses model inputs that read the future.

    Raises:
        LeakageError: naming every feature whose footprint reaches past ``t``, and by how much.

    Example:
        >>> from atlas.data.features import LogReturns
        >>> check_inputs([LogReturns().bitstamp()])  # reads the past only: fine
        >>> check_inputs([LogReturns().bitstamp().lookforward(1).rolling_mean(3)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        atlas...LeakageError: inputs must not read the future, but rolling_mean(...) reads 1 bucket(s)...
    """
    leaks = [f for f in _features(features, "inputs") if f.is_label]
    if leaks:
        listed = "; ".join(f"{f.name} reads {f.footprint.lookforward} bucket(s) ahead" for f in leaks)
        msg = (f"inputs must not read the future, but {listed}: use such a feature as a label, or .lag(n) it "
               "by at least its lookforward")
        raise LeakageError(msg)


def check_labels(labels: Feature | Iterable[Feature]) -> None:
    """Refuses labels that read no future: a label predicts what happens after ``t``.

    Raises:
        ConfigError: naming every label with no lookforward.
    """
    flat = [f for f in _features(labels, "labels") if not f.is_label]
    if flat:
        msg = (f"labels must read the future, but {', '.join(f.name for f in flat)} read(s) none: build "
               "labels with .lookforward(n), e.g. LogReturns().bitstamp().lookforward(1)")
        raise ConfigError(msg)


def _features(given, what: str) -> list[Feature]:
    items = [given] if isinstance(given, Feature) else list(given)
    strangers = [repr(f) for f in items if not isinstance(f, Feature)]
    if strangers:
        msg = f"{what} must be features, got {', '.join(strangers)}"
        raise ConfigError(msg)
    return items
