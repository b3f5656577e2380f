"""Reading CSV and Parquet files, and matching their columns to Atlas's through a column mapping.

A mapping names, for each Atlas column, the file's column that holds it: ``{"timestamp": "time", "price":
"px"}``, or ``timestamp=time,price=px`` on the command line. Atlas columns the mapping leaves out are found by
their own name, in any case (``Price`` for ``price``); nothing else is guessed, but a missing column's error
suggests the file's columns that look like it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

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


@dataclass(frozen=True)
class Table:
    """A file read into memory, with how to name its rows in messages."""

    frame: pd.DataFrame
    name: str
    csv: bool

    def where(self, row: int) -> str:
        """``row 5 (line 7)``: a data row by position, and for a CSV file its line, counting the header."""
        return f"{self.name} row {row}" + (f" (line {row + 2})" if self.csv else "")


def parse_columns(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """Reads a column mapping written as ``timestamp=time,price=px`` (the command line's ``--map``).

    Example:
        >>> parse_columns("timestamp=time, price=px")
        {'timestamp': 'time', 'price': 'px'}

    Raises:
        ConfigError: a pair is not ``atlas_column=file_column``.
    """
    if text is None or isinstance(text, Mapping):
        return dict(text or {})
    mapping: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in str(text).split(","))):
        atlas_name, sep, file_name = pair.partition("=")
        if not sep or not atlas_name.strip() or not file_name.strip():
            msg = (f"column mapping {pair!r} (in {text!r}) is not atlas_column=file_column; "
                   f"e.g. timestamp=time,price=px")
            raise ConfigError(msg)
        mapping[atlas_name.strip()] = file_name.strip()
    return mapping


def read_table(source: str | Path | pd.DataFrame) -> Table:
    """Reads a CSV (``.csv``, ``.csv.gz``, ``.txt``) or Parquet (``.parquet``, ``.pq``) file, or a frame.

    Raises:
        FileNotFoundError: there is no such file.
        ConfigError: the suffix is neither CSV nor Parquet.
    """
    if isinstance(source, pd.DataFrame):
        return Table(source, "frame", csv=False)
    path = Path(source)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not path.is_file():
        msg = f"no file at {str(path)!r}; give the path of a CSV or Parquet file"
        raise FileNotFoundError(msg)
    if suffixes.endswith((".parquet", ".pq")):
        return Table(pd.read_parquet(path), path.name, csv=False)
    if path.suffix.lower() in (".csv", ".txt") or suffixes.endswith((".csv.gz", ".csv.bz2", ".csv.xz")):
        return Table(pd.read_csv(path), path.name, csv=True)
    msg = (f"{path.name}: cannot tell the format from the suffix {path.suffix!r}; Atlas reads CSV (.csv, "
           ".csv.gz) and Parquet (.parquet) files: rename the file, or read it with pandas and pass the "
           "DataFrame")
    raise ConfigError(msg)


def resolve_columns(table: Table, mapping: Mapping[str, str] | str | None, required: Sequence[str],
                    optional: Sequence[str] = ()) -> dict[str, str]:
    """Which file column holds each Atlas column.

    Raises:
        ConfigError: the mapping names an Atlas column that this import does not take.
        DataValidationError: a required column is missing, or the mapping names a column the file lacks
            (rule ``missing_columns``); the message lists the file's columns and suggests a mapping.
    """
    mapping = parse_columns(mapping)
    wanted = (*required, *optional)
    unknown = sorted(set(mapping) - set(wanted))
    if unknown:
        msg = (f"the column mapping names {unknown}, which this import does not take; it takes "
               f"{', '.join(wanted)} ({', '.join(optional) or 'none'} optional). Map an Atlas column to a "
               f"file column: columns={{'timestamp': 'time'}} (--map timestamp=time)")
        raise ConfigError(msg)
    available = [str(c) for c in table.frame.columns]
    lowered: dict[str, list[str]] = {}
    for column in available:
        lowered.setdefault(column.lower(), []).append(column)
    resolved: dict[str, str] = {}
    for name in wanted:
        if name in mapping:
            if mapping[name] not in available:
                _missing(table, available, [name], mapped=mapping[name])
            resolved[name] = mapping[name]
        elif name in available:
            resolved[name] = name
        elif len(lowered.get(name, [])) == 1:
            resolved[name] = lowered[name][0]
    lacking = [name for name in required if name not in resolved]
    if lacking:
        _missing(table, available, lacking)
    return resolved


def _missing(table: Table, available: list[str], names: list[str], mapped: str | None = None) -> None:
    hints = []
    for name in names:
        looks = [c for c in available if _looks_like(name, c)]
        close = difflib.get_close_matches(mapped or name, available, n=3, cutoff=0.6)
        looks += [c for c in close if c not in looks]
        if looks:
            hints.append(f"{name}: did you mean {' or '.join(repr(c) for c in looks[:3])}?")
    example = {n: _suggest(n, available) for n in names}
    what = (f"the mapping names column {mapped!r} for {names[0]}, which the file lacks" if mapped
            else f"no column for {', '.join(names)}")
    msg = (f"{table.name}: {what} (rule missing_columns). The file's columns are {available}. "
           f"{' '.join(hints)} Map Atlas columns to the file's columns with columns={example!r}, or on the "
           f"command line --map {','.join(f'{k}={v}' for k, v in example.items())}")
    raise DataValidationError(msg.replace("  ", " "), rule="missing_columns")


def _looks_like(name: str, column: str) -> bool:
    lower = column.lower()
    tail = lower.replace("-", "_").replace(".", "_").split("_")[-1]
    return lower in _LOOKALIKES.get(name, ()) or (tail == name and lower != name)


def _suggest(name: str, available: list[str]) -> str:
    looks = [c for c in available if _looks_like(name, c)]
    return looks[0] if looks else f"<column of {name}>"


def parse_times(table: Table, column: str, *, tz: str | None, unit: str | None) -> pd.DatetimeIndex:
    """A file column read as UTC timestamps by the rule of :func:`atlas.data.timestamps.to_utc`.

    Numbers need a ``unit`` (seconds or milliseconds since the epoch cannot be told apart); naive text needs a
    ``tz``.

    Raises:
        DataValidationError: naming the column, the row and the rule.
    """
    values = table.frame[column]
    what = f"{table.name}: column {column!r}"
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    if unit is None and numeric:
        msg = (f"{what} holds numbers (row 0: {values.iloc[0] if len(values) else None}), not dates (rule "
               f"bad_timestamp); say what they count since the Unix epoch: unit='s', 'ms', 'us' or 'ns' "
               f"(--unit ms)")
        raise DataValidationError(msg, rule="bad_timestamp", row=0)
    try:
        return to_utc(values, tz=tz, unit=unit, what=what)
    except DataValidationError as error:
        if f"rule {error.rule}" in str(error):
            raise
        raise DataValidationError(f"{error} (rule {error.rule})", rule=error.rule, row=error.row) from None


def numbers(table: Table, column: str) -> np.ndarray:
    """A file column as floats; text that is not a number becomes NaN, which the value rules then catch."""
    return pd.to_numeric(table.frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
