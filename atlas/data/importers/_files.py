"""Reading CSV and Parquet files as vendors ship them, checked before pandas reads them: empty, binary, another
format than the name says, cut short, ragged, or with a banner line above the header."""

from __future__ import annotations

import csv
import gzip
import lzma
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError, DataValidationError


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
