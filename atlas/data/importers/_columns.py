"""Matching a file's columns to Atlas's through a column mapping.

A mapping names, for each Atlas column, the file's column that holds it: ``{"timestamp": "time", "price":
"px"}``, or ``timestamp=time,price=px`` on the command line. Atlas columns the mapping leaves out are found by
their own name, in any case (``Price`` for ``price``); nothing else is guessed, but a missing column's error
suggests the file's columns that look like it.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from atlas.data.importers._files import Table
from atlas.data.timestamps import to_utc
from atlas.exceptions import ConfigError, DataValidationError

#: Column names that often hold an Atlas column; used only to suggest a mapping in an error, never to guess.
_LOOKALIKES = {
    "timestamp": ("time", "date", "datetime", "ts", "timestamp_utc", "open_time"),
    "price": ("px", "last", "trade_price"),
    "volume": ("amount", "size", "qty", "quantity", "vol"),
    "exchange_trade_id": ("trade_id", "tid", "id"),
    "open": ("o",), "high": ("h",), "low": ("l",), "close": ("c",),
}


def parse_columns(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """Reads a column mapping written as ``timestamp=time,price=px`` (the command line's ``--map``).

    Example:
        >>> parse_columns("timestamp=time, price=px")
        {'timestamp': 'time', 'price': 'px'}

    An optional Atlas column mapped to nothing (``volume=``; ``None`` in a dict) says that the file has none.

    Raises:
        ConfigError: a pair is not ``atlas_column=file_column``.
    """
    if text is None or isinstance(text, Mapping):
        return {k: (v if v else None) for k, v in dict(text or {}).items()}
    mapping: dict[str, str | None] = {}
    for pair in filter(None, (p.strip() for p in str(text).split(","))):
        atlas_name, sep, file_name = pair.partition("=")
        if not sep or not atlas_name.strip():
            msg = (f"column mapping {pair!r} (in {text!r}) is not atlas_column=file_column; "
                   f"e.g. timestamp=time,price=px (volume= says the file has no volume)")
            raise ConfigError(msg)
        mapping[atlas_name.strip()] = file_name.strip() or None
    return mapping


def resolve_columns(table: Table, mapping: Mapping[str, str | None] | str | None, required: Sequence[str],
                    optional: Sequence[str] = (), *, any_of: Sequence[str] = (), guarded: Sequence[str] = ()
                    ) -> dict[str, str]:
    """Which file column holds each Atlas column.

    Args:
        table: the file.
        mapping: Atlas column -> file column (see :func:`parse_columns`); an optional column mapped to None is
            absent.
        required: Atlas columns the file must have.
        optional: Atlas columns it may have.
        any_of: of these optional columns, at least one must be found (bars: one of open, high, low, close).
        guarded: optional columns that are never left out silently: when one is not mapped and the file has a
            column that looks like it (``BTC.close`` for ``close``), or has several candidates (``Volume BTC``
            and ``Volume USDT`` for ``volume``), the import is refused and the message names them.

    Raises:
        ConfigError: the mapping names an Atlas column that this import does not take.
        DataValidationError: a required column is missing, or the mapping names a column the file lacks
            (rule ``missing_columns``), or a guarded column is ambiguous (``ambiguous_columns``); the message
            lists the file's columns and suggests a mapping.
    """
    mapping = parse_columns(mapping)
    wanted = (*required, *optional)
    unknown = sorted(set(mapping) - set(wanted))
    if unknown:
        msg = (f"the column mapping names {unknown}, which this import does not take; it takes "
               f"{', '.join(wanted)} ({', '.join(optional) or 'none'} optional). Map an Atlas column to a "
               f"file column: columns={{'timestamp': 'time'}} (--map timestamp=time)")
        raise ConfigError(msg)
    absent_required = [name for name in required if name in mapping and mapping[name] is None]
    if absent_required:
        msg = (f"the column mapping says the file has no {absent_required[0]}, which this import needs; map it to "
               f"a column of the file (--map {absent_required[0]}=COLUMN)")
        raise ConfigError(msg)
    available = [str(c) for c in table.frame.columns]
    lowered: dict[str, list[str]] = {}
    for column in available:
        lowered.setdefault(column.lower(), []).append(column)
    resolved: dict[str, str] = {}
    for name in wanted:
        if name in mapping:
            if mapping[name] is None:
                continue
            if mapping[name] not in available:
                _missing(table, available, [name], mapped=mapping[name])
            resolved[name] = mapping[name]
        elif name in available:
            resolved[name] = name
        elif len(lowered.get(name, [])) == 1:
            resolved[name] = lowered[name][0]
    taken = set(resolved.values())
    lacking = [name for name in required if name not in resolved]
    if lacking:  # with the guarded columns that look misnamed too: one mapping fixes all
        also = [n for n in guarded if n not in mapping and n not in resolved
                and any(_looks_like(n, c) and c not in taken for c in available)]
        _missing(table, available, [*lacking, *also])
    for name in guarded:
        if name in mapping:
            continue
        candidates = [c for c in available if c == resolved.get(name) or (_looks_like(name, c) and c not in taken)]
        if len(candidates) > 1 or (candidates and name not in resolved):
            _ambiguous(table, available, name, candidates)
    if any_of and not any(name in resolved for name in any_of):
        _missing(table, available, list(any_of), any_of=True)
    return resolved


_UNITS = ("Atlas stores volume in the pair's base currency (BTC of BTC/USD) and prices in its quote currency "
          "(USD)")


def _ambiguous(table: Table, available: list[str], name: str, candidates: list[str]) -> None:
    if len(candidates) > 1:
        what = (f"{len(candidates)} columns could hold {name}: {', '.join(repr(c) for c in candidates)}, and "
                f"Atlas does not guess which (rule ambiguous_columns)")
        fix = f"map the one that holds it: --map {name}={candidates[0]}"
    else:
        what = (f"column {candidates[0]!r} looks like {name}, but is not named so, and Atlas does not guess "
                f"(rule ambiguous_columns)")
        fix = f"map it (--map {name}={candidates[0]})"
    units = f" {_UNITS}." if name in ("volume", "open", "high", "low", "close", "price") else ""
    msg = (f"{table.name}: {what}.{units} To import, {fix}, or say the file has no {name} (--map {name}=). The "
           f"file's columns are {available}")
    raise DataValidationError(msg, rule="ambiguous_columns")


def _missing(table: Table, available: list[str], names: list[str], mapped: str | None = None,
             any_of: bool = False) -> None:
    hints = []
    for name in names:
        looks = [c for c in available if _looks_like(name, c)]
        close = difflib.get_close_matches(mapped or name, available, n=3, cutoff=0.6)
        looks += [c for c in close if c not in looks]
        if len(looks) > 1 and all(_looks_like(name, c) for c in looks[:2]):
            hints.append(f"{name}: {' and '.join(repr(c) for c in looks[:3])} could each hold it, and Atlas does "
                         f"not guess which;")
        elif looks:
            hints.append(f"{name}: did you mean {' or '.join(repr(c) for c in looks[:3])}?")
    example = {n: _suggest(n, available) for n in names}
    what = (f"the mapping names column {mapped!r} for {names[0]}, which the file lacks" if mapped
            else f"no column for any of {', '.join(names)} (it needs at least one)" if any_of
            else f"no column for {', '.join(names)}")
    units = f" {_UNITS}." if set(names) & {"volume", "price", "open", "high", "low", "close"} else ""
    pairs = ",".join(f"{k}={v}" for k, v in example.items())
    msg = (f"{table.name}: {what} (rule missing_columns). The file's columns are {available}. "
           f"{' '.join(hints)}{units} Map Atlas columns to the file's columns with columns={example!r}, or on the "
           f"command line --map {shlex.quote(pairs)}")
    raise DataValidationError(msg.replace("  ", " "), rule="missing_columns")


#: Words that make a column a time, not a price, whatever else its name holds (``close_time``).
_TIME_WORDS = {"time", "date", "datetime", "timestamp", "ts"}


def _looks_like(name: str, column: str) -> bool:
    """Whether a column's name suggests it holds Atlas column ``name`` without being named so (``BTC.close``
    for ``close``, ``Volume USDT`` for ``volume``)."""
    lower = column.lower()
    if lower == name:
        return False
    words = set(re.split(r"[^a-z0-9]+", lower)) - {""}
    if name != "timestamp" and words & _TIME_WORDS:
        return False
    aliases = {a for a in _LOOKALIKES.get(name, ()) if len(a) > 1}
    return lower in _LOOKALIKES.get(name, ()) or name in words or bool(words & aliases)


def _suggest(name: str, available: list[str]) -> str:
    looks = [c for c in available if _looks_like(name, c)]
    return looks[0] if looks else f"<column of {name}>"


def parse_times(table: Table, column: str, *, tz: str | None, unit: str | None,
                time_format: str | None = None) -> pd.DatetimeIndex:
    """A file column read as UTC timestamps by the rule of :func:`atlas.data.timestamps.to_utc`.

    Numbers need a ``unit`` (seconds or milliseconds since the epoch cannot be told apart); naive text needs a
    ``tz``; text that is not ISO-8601 needs its ``time_format`` (``--format``).

    Raises:
        DataValidationError: naming the column, the row and the rule.
    """
    values = table.frame[column]
    what = f"{table.name}: column {column!r}"
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    if time_format is not None and unit is not None:
        msg = ("--format reads dates written as text and --unit epoch numbers; a timestamp column is one or the "
               "other: give one of them")
        raise ConfigError(msg)
    if unit is None and numeric and time_format is None:
        msg = (f"{what} holds numbers (row 0: {values.iloc[0] if len(values) else None}), not dates (rule "
               f"bad_timestamp); say what they count since the Unix epoch: unit='s', 'ms', 'us' or 'ns' "
               f"(--unit ms)")
        raise DataValidationError(msg, rule="bad_timestamp", row=0)
    try:
        if numeric and time_format is not None:  # 20240131 read as a number: a format reads it as text
            values = values.astype(str)
        return to_utc(values, tz=tz, unit=unit, time_format=time_format, what=what)
    except DataValidationError as error:
        message = str(error)
        if error.row is not None and table.csv:  # the line too, as an editor shows it
            line = table.line(error.row)
            message = message.replace(f"at row {error.row}", f"at row {error.row} (line {line})", 1)
            message = message.replace(f"e.g. row {error.row}:", f"e.g. row {error.row} (line {line}):", 1)
        if f"rule {error.rule}" not in message:
            message = f"{message} (rule {error.rule})"
        raise DataValidationError(message, rule=error.rule, row=error.row) from None


def numbers(table: Table, column: str) -> np.ndarray:
    """A file column as floats; text that is not a number becomes NaN, which the value rules then catch."""
    return pd.to_numeric(table.frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
