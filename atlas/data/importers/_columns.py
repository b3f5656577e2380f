"""Reading CSV and Parquet files, and matching their columns to Atlas's through a column mapping.

A mapping names, for each Atlas column, the file's column that holds it: ``{"timestamp": "time", "price":
"px"}``, or ``timestamp=time,price=px`` on the command line. Atlas columns the mapping leaves out are found by
their own name, in any case (``Price`` for ``price``); nothing else is guessed, but a missing column's error
suggests the file's columns that look like it.
"""

from __future__ import annotations

import difflib
import gzip
import lzma
import re
import zlib
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

    The file is checked before pandas reads it, so that a wrong file gets a message about the file, not a
    parser's traceback: empty, not text, another format than its name says, cut short, or rows with more fields
    than the header.

    Raises:
        FileNotFoundError: there is no such file.
        ConfigError: the path is a folder, or the suffix is neither CSV nor Parquet.
        DataValidationError: the file cannot be read as its suffix says (rules ``empty_file``, ``wrong_format``,
            ``not_text``, ``truncated_file``, ``ragged_row``, ``unreadable_file``), naming the file and the fix.
    """
    if isinstance(source, pd.DataFrame):
        return Table(source, "frame", csv=False)
    path = Path(source)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.is_dir():
        msg = (f"{str(path)!r} is a folder, not a file; give the path of a CSV (.csv, .csv.gz) or Parquet "
               f"(.parquet) file")
        raise ConfigError(msg)
    if not path.is_file():
        msg = f"no file at {str(path)!r}; give the path of a CSV or Parquet file"
        raise FileNotFoundError(msg)
    if suffixes.endswith((".parquet", ".pq")):
        kind = "parquet"
    elif path.suffix.lower() in (".csv", ".txt") or suffixes.endswith(_COMPRESSED_CSV):
        kind = "csv"
    else:
        msg = (f"{path.name}: cannot tell the format from the suffix {path.suffix!r}; Atlas reads CSV (.csv, "
               ".csv.gz) and Parquet (.parquet) files: rename the file, or read it with pandas and pass the "
               "DataFrame")
        raise ConfigError(msg)
    head = _check_file(path, kind)
    if kind == "parquet":
        return Table(_read_parquet(path), path.name, csv=False)
    return Table(_read_csv(path, head), path.name, csv=True)


_COMPRESSED_CSV = (".csv.gz", ".csv.bz2", ".csv.xz")
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_HEAD_BYTES = 1 << 16


def _check_file(path: Path, kind: str) -> bytes:
    """Refuses a file that is empty, or in another format than its suffix says; returns its first bytes."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(_HEAD_BYTES)
    except OSError as error:
        msg = f"cannot read {str(path)!r}: {error.strerror or error}; check the path and its permissions"
        raise ConfigError(msg) from None
    if size == 0:
        msg = (f"{str(path)!r} is empty (0 bytes; rule empty_file); expected a {_KINDS[kind]} with a timestamp "
               f"column and one row per record: was it written completely?")
        raise DataValidationError(msg, rule="empty_file")
    looks = _file_format(head)
    if kind == "parquet" and looks != "parquet":
        rename = f" If it is CSV, name it {path.stem}.csv." if looks == "CSV text" else ""
        msg = (f"{str(path)!r} is not a Parquet file: it does not start with Parquet's marker PAR1, and looks "
               f"like {looks} (rule wrong_format).{rename} Atlas reads CSV (.csv, .csv.gz) and Parquet (.parquet)")
        raise DataValidationError(msg, rule="wrong_format")
    if kind == "csv" and looks == "parquet":
        msg = (f"{str(path)!r} is a Parquet file, not CSV (rule wrong_format); name it {_stem(path)}.parquet "
               f"and import that")
        raise DataValidationError(msg, rule="wrong_format")
    if kind == "csv" and looks == "gzip data" and not path.name.lower().endswith(".gz"):
        msg = (f"{str(path)!r} is gzip-compressed CSV named {path.suffix} (rule wrong_format); name it "
               f"{_stem(path)}.csv.gz and import that")
        raise DataValidationError(msg, rule="wrong_format")
    if kind == "csv" and looks == "JSON":
        msg = (f"{str(path)!r} holds JSON, not CSV (rule wrong_format); Atlas reads CSV (.csv, .csv.gz) and "
               f"Parquet (.parquet): convert it, e.g. with pandas.read_json(...).to_csv(...)")
        raise DataValidationError(msg, rule="wrong_format")
    return head


_KINDS = {"csv": "CSV file (a header line, then rows)", "parquet": "Parquet file"}


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*_COMPRESSED_CSV, ".csv", ".txt", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return path.stem


def _file_format(head: bytes) -> str:
    """What the first bytes of a file look like: ``parquet``, ``gzip data``, ``JSON``, ``CSV text``, ``binary
    data``."""
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_GZIP_MAGIC):
        return "gzip data"
    if b"\x00" in head:
        return "binary data"
    if head.lstrip()[:1] in (b"{", b"["):  # no CSV header starts so
        return "JSON"
    return "CSV text"


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        msg = (f"{str(path)!r} cannot be read as Parquet ({detail}; rule unreadable_file): is it complete? "
               f"Copy it again, or write it again with DataFrame.to_parquet")
        raise DataValidationError(msg, rule="unreadable_file") from None


_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _read_csv(path: Path, head: bytes) -> pd.DataFrame:
    compressed = path.name.lower().endswith(_COMPRESSED_CSV)
    if not compressed:
        _check_text(path, head)
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        msg = (f"{str(path)!r} holds no header line and no rows (only blank lines; rule empty_file); expected a "
               f"CSV file with a header line, then one row per record")
        raise DataValidationError(msg, rule="empty_file") from None
    except pd.errors.ParserError as error:
        ragged = _RAGGED.search(str(error))
        if ragged:
            expected, line, saw = ragged.groups()
            msg = (f"{str(path)!r} line {line} has {saw} fields, but the header line has {expected} (rule "
                   f"ragged_row): a field holds an unquoted comma, or the row has a column the header lacks; "
                   f"quote such fields (\"1,5\"), or name the extra column in the header")
            raise DataValidationError(msg, rule="ragged_row") from None
        detail = str(error).strip().splitlines()[0]
        msg = f"{str(path)!r} cannot be read as CSV ({detail}; rule unreadable_file); fix the file's layout"
        raise DataValidationError(msg, rule="unreadable_file") from None
    except UnicodeDecodeError as error:
        msg = (f"{str(path)!r} is not UTF-8 text: it holds byte {error.object[error.start]:#04x} (rule not_text); "
               f"save it as UTF-8 CSV, or is it binary data?")
        raise DataValidationError(msg, rule="not_text") from None
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as error:
        msg = (f"{str(path)!r} ends in the middle of its compressed data, or is damaged ({error}; rule "
               f"truncated_file): was it copied or downloaded completely? Fetch it again (gzip -t checks a .gz "
               f"file)")
        raise DataValidationError(msg, rule="truncated_file") from None
    except OSError as error:  # bz2 says "Invalid data stream", gzip "Not a gzipped file": damaged or not compressed
        if getattr(error, "errno", None) is not None:
            msg = f"cannot read {str(path)!r}: {error.strerror or error}; check the path and its permissions"
            raise ConfigError(msg) from None
        msg = (f"{str(path)!r} is not valid {path.suffix} compressed data ({error}; rule truncated_file): is "
               f"it complete, and compressed as its name says? Fetch it again")
        raise DataValidationError(msg, rule="truncated_file") from None


def _check_text(path: Path, head: bytes) -> None:
    """Binary data in a file named CSV: name the first byte that is not text."""
    zero = head.find(b"\x00")
    if zero >= 0:
        msg = (f"{str(path)!r} is not text: byte 0x00 at offset {zero} (rule not_text); it is binary data, not "
               f"CSV. Is it the file you meant?")
        raise DataValidationError(msg, rule="not_text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if len(head) < _HEAD_BYTES or error.start < len(head) - 4:  # not a character cut at the head's end
            msg = (f"{str(path)!r} is not UTF-8 text: byte {head[error.start]:#04x} at offset {error.start} "
                   f"(rule not_text); save it as UTF-8 CSV, or is it binary data?")
            raise DataValidationError(msg, rule="not_text") from None


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
        message = str(error)
        if error.row is not None and table.csv:  # the line too, as an editor shows it
            message = message.replace(f"at row {error.row}", f"at row {error.row} (line {error.row + 2})", 1)
            message = message.replace(f"e.g. row {error.row}:", f"e.g. row {error.row} (line {error.row + 2}):", 1)
        if f"rule {error.rule}" not in message:
            message = f"{message} (rule {error.rule})"
        raise DataValidationError(message, rule=error.rule, row=error.row) from None


def numbers(table: Table, column: str) -> np.ndarray:
    """A file column as floats; text that is not a number becomes NaN, which the value rules then catch."""
    return pd.to_numeric(table.frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
