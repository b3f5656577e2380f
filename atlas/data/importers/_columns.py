"""Reading CSV and Parquet files, and matching their columns to Atlas's through a column mapping.

A mapping names, for each Atlas column, the file's column that holds it: ``{"timestamp": "time", "price":
"px"}``, or ``timestamp=time,price=px`` on the command line. Atlas columns the mapping leaves out are found by
their own name, in any case (``Price`` for ``price``); nothing else is guessed, but a missing column's error
suggests the file's columns that look like it.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import lzma
import re
import shlex
import zlib
from collections import Counter
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
    skipped_lines: int = 0

    def where(self, row: int) -> str:
        """``row 5 (line 7)``: a data row by position, and for a CSV file its line, counting the header and the
        lines skipped above it."""
        return f"{self.name} row {row}" + (f" (line {self.line(row)})" if self.csv else "")

    def line(self, row: int) -> int:
        """The line of a CSV file that holds data row ``row`` (1-based, as an editor counts)."""
        return row + 2 + self.skipped_lines


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


def read_table(source: str | Path | pd.DataFrame, *, skip_rows: int = 0) -> Table:
    """Reads a CSV (``.csv``, ``.csv.gz``, ``.txt``) or Parquet (``.parquet``, ``.pq``) file, or a frame.

    The file is checked before pandas reads it, so that a wrong file gets a message about the file, not a
    parser's traceback: empty, not text, another format than its name says, cut short, rows with more fields
    than the header, or a banner line above the header (a vendor's URL or title).

    Args:
        source: the file, or a DataFrame.
        skip_rows: lines of a CSV file to skip before its header line (``--skip-rows``).

    Raises:
        FileNotFoundError: there is no such file.
        ConfigError: the path is a folder, or the suffix is neither CSV nor Parquet.
        DataValidationError: the file cannot be read as its suffix says (rules ``empty_file``, ``wrong_format``,
            ``not_text``, ``truncated_file``, ``ragged_row``, ``unreadable_file``, ``banner_line``), naming the
            file and the fix.
    """
    if isinstance(skip_rows, bool) or not isinstance(skip_rows, (int, np.integer)) or skip_rows < 0:
        msg = f"skip_rows (--skip-rows) is {skip_rows!r}; give the number of lines above the header, 0 or more"
        raise ConfigError(msg)
    if isinstance(source, pd.DataFrame):
        if skip_rows:
            msg = "skip_rows (--skip-rows) skips lines of a CSV file; a DataFrame has none: leave it out"
            raise ConfigError(msg)
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
        if skip_rows:
            msg = f"{path.name} is Parquet: skip_rows (--skip-rows) skips lines of a CSV file; leave it out"
            raise ConfigError(msg)
        return Table(_read_parquet(path), path.name, csv=False)
    frame = _read_csv(path, head, skip_rows)
    return Table(frame, path.name, csv=True, skipped_lines=skip_rows)


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


def _read_csv(path: Path, head: bytes, skip_rows: int) -> pd.DataFrame:
    compressed = path.name.lower().endswith(_COMPRESSED_CSV)
    if not compressed:
        _check_text(path, head)
        _check_banner(path, head.decode("utf-8", errors="replace"), skip_rows)
    try:
        frame = pd.read_csv(path, skiprows=skip_rows, encoding="utf-8-sig")
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
    if compressed:
        with _open_text(path) as file:
            _check_banner(path, file.read(_HEAD_BYTES), skip_rows)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _open_text(path: Path):
    opener = {".gz": gzip.open, ".bz2": __import__("bz2").open, ".xz": lzma.open}[path.suffix.lower()]
    return opener(path, "rt", encoding="utf-8-sig", errors="replace")


#: Lines of a file's head looked at to find a banner above the header.
_BANNER_LINES = 40


def _check_banner(path: Path, head: str, skip_rows: int) -> None:
    """Refuses a file whose first line (after ``skip_rows``) has fewer fields than the lines below it: a
    vendor's banner (a URL, a title) above the header, which pandas would otherwise read as the header."""
    lines = [line for line in head.lstrip("\ufeff").splitlines()[skip_rows:skip_rows + _BANNER_LINES + 1]
             if line.strip()]
    if len(head.encode()) >= _HEAD_BYTES:
        lines = lines[:-1]  # the last line may be cut at the head's end
    if len(lines) < 3:
        return
    fields = [len(row) for row in csv.reader(lines)]
    body = Counter(fields[1:]).most_common(1)[0][0]
    if fields[0] >= body or body < 2:
        return
    header = next(k for k, n in enumerate(fields) if n == body)
    skip = skip_rows + header
    above = "line 1" if header == 1 else f"lines 1 to {header}"
    if skip_rows:
        above = f"line {skip_rows + 1}" if header == 1 else f"lines {skip_rows + 1} to {skip}"
    msg = (f"{path.name}: {above} ({lines[0][:60]!r}) has {fields[0]} field{'s' * (fields[0] != 1)} where the "
           f"lines below have {body}: it looks like a banner above the header on line {skip + 1} "
           f"({lines[header][:80]!r}) (rule banner_line). Skip the lines above the header with skip_rows={skip} "
           f"(--skip-rows {skip})")
    raise DataValidationError(msg, rule="banner_line", row=None)


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
