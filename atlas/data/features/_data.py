"""A feature's series out of the data it is given: the grid check, and what to do when a series is missing."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from atlas.data.buckets import parse_width
from atlas.data.series import SeriesKey
from atlas.exceptions import ConfigError, MissingDataError

_BOOK = ("bid", "ask", "midpoint", "spread", "bid_strength", "ask_strength", "bid_strength_value",
         "ask_strength_value", "imbalance")
_TRADES = ("volume", "vwap", "trade_count", "buy_volume", "sell_volume")
_BARS = ("open", "high", "low", "close")


def grid_of(owner: str, width: str, data: Mapping[str, pd.Series], names: list[str],
            index: pd.DatetimeIndex | None) -> pd.DatetimeIndex:
    """The one complete grid that ``data``'s series (those named) and ``index`` share.

    Raises:
        ConfigError: no grid to compute on, or one that is not complete at ``width``.
    """
    if index is None:
        first = next(iter(names), None) or next(iter(data), None)
        if first is None:
            msg = f"{owner} reads no series: pass the bucket grid as compute(data, index=...)"
            raise ConfigError(msg)
        index = data[first].index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        msg = f"{owner} needs a timezone-aware (UTC) DatetimeIndex of buckets, got {type(index).__name__}"
        raise ConfigError(msg)
    step = parse_width(width).value
    if len(index) > 1 and not (np.diff(index.as_unit("ns").asi8) == step).all():
        msg = (f"{owner} computes on a complete grid of {width} buckets, but the index has gaps or another "
               f"spacing: reindex every series onto pd.date_range(first, last, freq={width!r}, tz='UTC')")
        raise ConfigError(msg)
    for name in names:
        if not data[name].index.equals(index):
            msg = (f"{owner}: series {name} is not on the same grid as the others; reindex every series onto "
                   "one complete grid of buckets")
            raise ConfigError(msg)
    return index


def require(owner: str, keys: list[SeriesKey], data: Mapping[str, pd.Series]) -> None:
    """Raises MissingDataError naming each key missing from ``data``, what makes it, what ``data`` holds."""
    missing = [key for key in keys if key.name not in data]
    if not missing:
        return
    lines = [f"{owner} needs {', '.join(k.name for k in missing)}, which the data lacks"]
    groups: dict[tuple[str, str, str], list[SeriesKey]] = {}
    for key in missing:
        groups.setdefault((_family(key.metric)[0], key.exchange.key, key.width), []).append(key)
    lines += [_producer(*where, group) for where, group in groups.items()]
    for prefix in sorted({f"{k.exchange.key}.{k.width}." for k in missing}):
        held = sorted(name[len(prefix):] for name in data if name.startswith(prefix))
        if held and set(held) <= {*_BARS, "volume"}:
            lines.append(f"{prefix[:-1]} holds OHLCV bars only ({', '.join(held)}): features that read bars "
                         "are Close(), Volume(), and returns of the close, e.g. LogReturns().price('close')")
        elif held:
            lines.append(f"the data holds {prefix[:-1]}: {', '.join(held)}")
        else:
            lines.append(f"the data holds no series of {prefix[:-1]} (`atlas data info` lists the store's)")
    raise MissingDataError("; ".join(lines))


def _family(metric: str) -> tuple[str, str]:
    """Which kind of data makes a metric (``book``, ``trades``, ``bars`` or ``other``), and its parameter."""
    base, _, parameter = metric.rpartition("_") if metric[-1].isdigit() else (metric, "", "")
    for family, bases in (("book", _BOOK), ("trades", _TRADES), ("bars", _BARS)):
        if base in bases:
            return family, parameter
    return "other", ""


def _producer(family: str, exchange: str, width: str, keys: list[SeriesKey]) -> str:
    """What makes the missing series of one family, exchange and width: the command to run."""
    names = ", ".join(k.name for k in keys)
    verb = "is" if len(keys) == 1 else "are"
    if family == "book":
        parameters = [_family(k.metric)[1] for k in keys]
        depths = sorted({p[1:] for p in parameters if p.startswith("d")}, key=float)
        slippages = sorted({p[1:] for p in parameters if p.startswith("s")}, key=float)
        option = (f" --depths 0,{','.join(depths)}" if depths else "") + (
            f" --slippages {','.join(slippages)}" if slippages else "")
        return (f"order-book features need order books: {names} {verb} not in the store; import order books "
                f"(`atlas data import gds` or `ob-analytics`) and run `atlas data metrics --bucket {width} "
                f"--exchanges {exchange}{option}` (add --start to recompute buckets already computed); "
                "bar-only data has open/high/low/close/volume")
    if family == "trades":
        return (f"trade features need trades: {names} {verb} not in the store; import trades (`atlas data "
                f"import trades`) and run `atlas data metrics --bucket {width} --exchanges {exchange}`")
    if family == "bars":
        return (f"bar features need OHLCV bars: {names} {verb} not in the store; import them with `atlas "
                f"data import bars FILE --exchange {exchange} --bucket {width}`")
    return f"{names} {verb} not in the store (`atlas data info` lists the series it holds)"
