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
           what: str = "timestamp") -> pd.DatetimeIndex:
    """Converts values to a UTC DatetimeIndex following the rule above.

    Args:
        values: strings, datetimes, or numbers of ``unit`` since the epoch.
        tz: the zone that naive values were written in; without it naive values are an error.
        unit: for numeric values, ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``.
        what: how to name the values in an error (a column name).

    Raises:
        DataValidationError: a value is not a timestamp (rule ``bad_timestamp``), is naive and no ``tz`` was
            given (``naive_timestamp``), is missing (``missing_timestamp``), or lies outside the years Atlas
            can hold (``out_of_range_timestamp``); the message names the first such row.
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
            index = pd.DatetimeIndex(_parse(series))
            if index.tz is None:
                if tz is None:
                    first = index[0] if len(index) else None
                    msg = (
                        f"{what} values are naive (no time zone), e.g. row 0: {first}; Atlas stores UTC and does not "
                        f"guess zones: say which zone the data was written in (tz='UTC', or --tz UTC on the command "
                        f"line), or give timezone-aware values"
                    )
                    raise DataValidationError(msg, rule="naive_timestamp", row=0)
                index = index.tz_localize(tz, ambiguous="raise", nonexistent="raise")
            index = index.tz_convert("UTC")
    except (ValueError, TypeError, OverflowError) as error:
        if isinstance(error, DataValidationError):
            raise
        raise _not_timestamps(series, what, error) from None
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


def _parse(series: pd.Series | pd.Index) -> pd.Series | pd.Index:
    text = pd.api.types.is_string_dtype(series.dtype) and pd.api.types.infer_dtype(series) not in (
        "datetime", "datetime64", "date")
    return pd.to_datetime(series, format="ISO8601") if text else pd.to_datetime(series)


def _not_timestamps(series, what: str, error: BaseException) -> DataValidationError:
    """The bad_timestamp error naming the first value that is not a timestamp (pandas' own hints left out)."""
    values = pd.Series(np.asarray(series, dtype=object))
    row = None
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        try:
            pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            row = i
            break
    if row is None:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        msg = (f"{what} values are not all timestamps ({detail}); expected ISO-8601 text such as "
               f"2024-01-31T12:00:00Z, datetimes, or epoch numbers with a unit (--unit)")
        return DataValidationError(msg, rule="bad_timestamp")
    msg = (f"{what} at row {row} is {values[row]!r}, not a timestamp (rule bad_timestamp); expected ISO-8601 text "
           f"such as 2024-01-31T12:00:00Z, datetimes, or epoch numbers with a unit (--unit)")
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
