"""The timestamp rule: Atlas stores UTC, and never guesses the zone of a naive timestamp.

* A timezone-aware timestamp is converted to UTC.
* A naive timestamp is an error unless the caller says which zone it was written in (``tz="UTC"`` for data that
  is already UTC, such as a Gryphon Data Service database).
* Integers are seconds (or ``unit``) since the Unix epoch, which is UTC by definition.
* Every timestamp lies between :data:`FIRST` and :data:`LAST` (1677-09-22 to 2262-04-11): Atlas computes in
  nanoseconds since the epoch in 64 bits, which hold no other times. A time outside is an error naming the row.

In the database, timestamps are naive UTC ``DateTime`` values, as GDS writes them. In Python they are pandas
timestamps with ``tz="UTC"``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from atlas.exceptions import DataValidationError

#: The first and last instant Atlas can hold (nanoseconds since the epoch in 64 bits).
FIRST = pd.Timestamp.min.ceil("s").tz_localize("UTC")
LAST = pd.Timestamp.max.floor("s").tz_localize("UTC")
_RANGE = (f"{FIRST.ceil('D'):%Y-%m-%d} to {LAST:%Y-%m-%d}: Atlas counts nanoseconds since 1970 in 64 bits, "
          f"as pandas does")
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
#: Years that epoch numbers of market data plausibly fall in, to suggest a unit.
_PLAUSIBLE_YEARS = (1990, 2100)


def to_utc(values: Iterable | pd.Series | pd.Index, *, tz: str | None = None, unit: str | None = None,
           time_format: str | None = None, what: str = "timestamp") -> pd.DatetimeIndex:
    """Converts values to a UTC DatetimeIndex following the rule above.

    Args:
        values: strings, datetimes, or numbers of ``unit`` since the epoch.
        tz: the zone that naive values were written in; without it naive values are an error.
        unit: for numeric values, ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``.
        time_format: for text that is not ISO-8601, its ``strptime`` format (``"%Y-%m-%d %I-%p"``,
            ``"%d/%m/%Y %H:%M %z"``); ISO-8601 text needs none.
        what: how to name the values in an error (a column name).

    Text whose UTC offset changes from row to row (every file that crosses a daylight-saving change) is
    converted row by row; a mix of rows with and without an offset is an error, as a naive row's zone would be
    a guess. Naive text with ``tz`` set to a zone with daylight saving is localized in order: the hour that a
    fall-back change repeats is read as the first, then the second occurrence.

    Example:
        >>> to_utc(["2024-03-10T01:30:00-05:00", "2024-03-10T03:30:00-04:00"]).tolist()
        [Timestamp('2024-03-10 06:30:00+0000', tz='UTC'), Timestamp('2024-03-10 07:30:00+0000', tz='UTC')]
        >>> to_utc(["2024-01-02 01-PM"], time_format="%Y-%m-%d %I-%p", tz="UTC")[0]
        Timestamp('2024-01-02 13:00:00+0000', tz='UTC')

    Raises:
        DataValidationError: a value is not a timestamp (rule ``bad_timestamp``), is naive and no ``tz`` was
            given (``naive_timestamp``), is missing (``missing_timestamp``), or lies outside the years Atlas
            can hold (``out_of_range_timestamp``); the message names the first such row and its value.
    """
    if isinstance(values, (pd.Series, pd.Index)):
        series = values
    else:
        series = pd.Index(values if isinstance(values, np.ndarray) else list(values))
    if unit is None and len(series) and pd.api.types.is_numeric_dtype(series.dtype) and \
            not pd.api.types.is_bool_dtype(series.dtype):
        msg = (f"{what} values are numbers ({series[0]} at row 0): say their unit since the Unix epoch "
               f"(unit='s', 'ms', 'us' or 'ns'; --unit on the command line)")
        raise DataValidationError(msg, rule="bad_timestamp", row=0)
    if unit is not None:
        _check_epoch_numbers(series, unit, what)
    try:
        if unit is not None:
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(series), unit=unit, utc=True))
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            index = pd.DatetimeIndex(series).tz_convert("UTC")
        else:
            index = pd.DatetimeIndex(_parse(series, time_format, what))
            if index.tz is None:
                if tz is None:
                    first = series[0] if len(series) else None
                    msg = (
                        f"{what} values are naive (no time zone), e.g. row 0: {first!r}; Atlas stores UTC and does "
                        f"not guess zones: say which zone the data was written in (tz='UTC', or --tz UTC on the "
                        f"command line), or give timezone-aware values"
                    )
                    raise DataValidationError(msg, rule="naive_timestamp", row=0)
                index = _localize(index, series, tz, what)
            index = index.tz_convert("UTC")
    except (ValueError, TypeError, OverflowError) as error:
        if isinstance(error, DataValidationError):
            raise
        raise _not_timestamps(series, what, error, time_format) from None
    if index.hasnans:
        row = int(np.flatnonzero(index.isna())[0])
        msg = f"{what} is missing at row {row}; every row needs a timestamp"
        raise DataValidationError(msg, rule="missing_timestamp", row=row)
    _check_range(index, what)
    return index.as_unit("ns")


def utc_timestamp(value, *, what: str = "time") -> pd.Timestamp:
    """One timestamp by the same rule, except that a naive value is taken as UTC (arguments such as ``--start``).

    Command-line ranges are written by people for whom "2024-01-01" means UTC in Atlas; data is held to the
    stricter rule of :func:`to_utc`.

    Raises:
        DataValidationError: the value is not a timestamp (rule ``bad_timestamp``), or lies outside the years
            Atlas can hold (``out_of_range_timestamp``).
    """
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        msg = f"{what} {value!r} is not a timestamp; write e.g. 2024-01-31 or 2024-01-31T12:00Z"
        raise DataValidationError(msg, rule="bad_timestamp") from None
    if stamp is pd.NaT:
        msg = f"{what} {value!r} is not a timestamp; write e.g. 2024-01-31 or 2024-01-31T12:00Z"
        raise DataValidationError(msg, rule="bad_timestamp")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not FIRST <= stamp <= LAST:
        msg = (f"{what} {value!r} is outside the times Atlas can hold ({_RANGE}; rule out_of_range_timestamp); "
               f"give a time in that range, e.g. 2024-01-31")
        raise DataValidationError(msg, rule="out_of_range_timestamp")
    return stamp.as_unit("ns")


#: A UTC offset (or Z) ending a timestamp's text: ``Z``, ``+01:00``, ``-0500``, ``+02``.
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_EXPECTED = ("expected ISO-8601 text such as 2024-01-31T12:00:00Z, datetimes, or epoch numbers with a unit "
             "(--unit); for dates written another way give their format, e.g. --format '%d/%m/%Y %H:%M'")


def _parse(series: pd.Series | pd.Index, time_format: str | None, what: str) -> pd.Series | pd.Index:
    text = pd.api.types.is_string_dtype(series.dtype) and pd.api.types.infer_dtype(series) not in (
        "datetime", "datetime64", "date")
    if not text:
        if time_format is not None:
            msg = (f"{what} values are already dates, not text: a format (--format {time_format!r}) only reads "
                   f"text; leave it out")
            raise DataValidationError(msg, rule="bad_timestamp")
        return pd.to_datetime(series)
    fmt = time_format or "ISO8601"
    try:
        return pd.to_datetime(series, format=fmt)
    except ValueError as error:
        if "mixed time" not in str(error).lower():
            raise
    # offsets that change within the file (daylight saving): convert each row, unless some rows have none
    strings = pd.Series(np.asarray(series, dtype=object)).astype(str).str.strip()
    with_offset = strings.str.contains(_OFFSET) if time_format is None or "%z" not in time_format else None
    if with_offset is not None and not with_offset.all():
        naive, aware = int(np.flatnonzero(~with_offset.to_numpy())[0]), int(np.flatnonzero(with_offset.to_numpy())[0])
        msg = (f"{what} at row {naive} is {strings[naive]!r}, with no UTC offset, while row {aware} has one "
               f"({strings[aware]!r}) (rule naive_timestamp); Atlas does not guess the zone of a row without an "
               f"offset: give every row an offset, or none and say their zone with --tz")
        raise DataValidationError(msg, rule="naive_timestamp", row=naive)
    return pd.to_datetime(series, format=fmt, utc=True)


def _localize(index: pd.DatetimeIndex, series, tz: str, what: str) -> pd.DatetimeIndex:
    """Naive times written in zone ``tz``, made aware; a daylight-saving change is read in order."""
    try:
        return index.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except (KeyError, LookupError) as error:  # zoneinfo's ZoneInfoNotFoundError is a KeyError
        msg = (f"unknown time zone {tz!r} ({error}); give an IANA zone such as UTC, Europe/London or "
               f"America/New_York (--tz)")
        raise DataValidationError(msg, rule="unknown_zone") from None
    except ValueError as error:
        if "nonexistent" in f"{type(error).__name__} {error}".lower() or "does not exist" in str(error).lower():
            row, value = _first_unplaced(index, series, tz)
            msg = (f"{what} at row {row} is {value!r}, a time that does not exist in {tz} (the clocks jumped forward "
                   f"over it; rule bad_timestamp); is --tz {tz} the zone the file was written in? Files in UTC "
                   f"need --tz UTC")
            raise DataValidationError(msg, rule="bad_timestamp", row=row) from None
    try:  # a repeated hour at a fall-back change: the order of the rows tells which is which
        return index.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except ValueError:
        row, value = _first_unplaced(index, series, tz)
        msg = (f"{what} at row {row} is {value!r}, a time that occurs twice in {tz} (the clocks went back; rule "
               f"ambiguous_timestamp), and the rows' order does not tell which; export the file with UTC offsets, "
               f"or in UTC (--tz UTC)")
        raise DataValidationError(msg, rule="ambiguous_timestamp", row=row) from None


def _first_unplaced(index: pd.DatetimeIndex, series, tz: str) -> tuple[int, object]:
    """The first row whose local time ``tz`` cannot place (skipped or repeated by a clock change), as written."""
    unplaced = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").isna()
    row = int(np.flatnonzero(unplaced)[0])
    return row, np.asarray(series, dtype=object)[row]


def _not_timestamps(series, what: str, error: BaseException, time_format: str | None = None
                    ) -> DataValidationError:
    """The bad_timestamp error naming the first value that is not a timestamp (pandas' own hints left out)."""
    values = pd.Series(np.asarray(series, dtype=object))
    present = values.notna().to_numpy()
    fmt = time_format or "ISO8601"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values.astype(str).str.strip(), format=fmt, errors="coerce", utc=True)
    failed = np.flatnonzero(present & parsed.isna().to_numpy())
    if not len(failed):
        msg = f"{what} values are not all timestamps (rule bad_timestamp); {_EXPECTED}"
        return DataValidationError(msg, rule="bad_timestamp")
    row = int(failed[0])
    if time_format is not None:
        msg = (f"{what} at row {row} is {values[row]!r}, which does not match --format {time_format!r} (rule "
               f"bad_timestamp); {len(failed)} rows do not. Correct the format (strptime codes: %Y year, %m "
               f"month, %d day, %H hour, %I hour of 12 with %p AM/PM, %M minute, %S second, %z UTC offset)")
    else:
        msg = (f"{what} at row {row} is {values[row]!r}, not a timestamp (rule bad_timestamp); {len(failed)} rows "
               f"are not. {_EXPECTED[0].upper()}{_EXPECTED[1:]}")
    return DataValidationError(msg, rule="bad_timestamp", row=row)


def _check_epoch_numbers(series, unit: str, what: str) -> None:
    """Epoch numbers whose nanoseconds overflow 64 bits: name the row, and the unit that would fit."""
    if unit not in _UNIT_NS:
        return  # pandas names the units it takes
    numbers = pd.to_numeric(pd.Series(np.asarray(series)), errors="coerce").to_numpy(dtype=np.float64)
    scale = _UNIT_NS[unit]
    with np.errstate(invalid="ignore", over="ignore"):
        outside = (numbers * scale < FIRST.value) | (numbers * scale > LAST.value)
    if not outside.any():
        return
    row = int(np.flatnonzero(outside)[0])
    value = np.asarray(series)[row]
    value = value.item() if isinstance(value, np.generic) else value
    raise _out_of_range(what, row, f"{value!r} {unit} since the epoch", _unit_hint(value, unit))


def _check_range(index: pd.DatetimeIndex, what: str) -> None:
    if not len(index):
        return
    outside = (index < FIRST) | (index > LAST)
    if not outside.any():
        return
    row = int(np.flatnonzero(outside)[0])
    raise _out_of_range(what, row, f"{index[row]}", "correct or remove the row")


def _out_of_range(what: str, row: int, shown: str, fix: str) -> DataValidationError:
    msg = f"{what} at row {row} is {shown}, outside the times Atlas can hold ({_RANGE}; rule out_of_range_timestamp); {fix}"
    return DataValidationError(msg, rule="out_of_range_timestamp", row=row)


def _unit_hint(number, unit: str) -> str:
    """Which unit makes an epoch number a plausible market time, as an option to pass."""
    low, high = (pd.Timestamp(f"{year}-01-01", tz="UTC").value for year in _PLAUSIBLE_YEARS)
    try:
        number = int(number) if float(number).is_integer() else float(number)
    except (TypeError, ValueError, OverflowError):
        return "check the unit (--unit s, ms, us or ns), or correct or remove the row"
    fits = [u for u, scale in _UNIT_NS.items() if u != unit and low <= number * scale <= high]
    if fits:
        shown = pd.Timestamp(int(number * _UNIT_NS[fits[0]]), tz="UTC")
        return f"as {fits[0]} it is {shown}: pass unit='{fits[0]}' (--unit {fits[0]})"
    return "check the unit (--unit s, ms, us or ns), or correct or remove the row"
