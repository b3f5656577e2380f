"""The timestamp rule: Atlas stores UTC, and never guesses the zone of a naive timestamp.

* A timezone-aware timestamp is converted to UTC.
* A naive timestamp is an error unless the caller says which zone it was written in (``tz="UTC"`` for data that
  is already UTC, such as a Gryphon Data Service database).
* Integers are seconds (or ``unit``) since the Unix epoch, which is UTC by definition.

In the database, timestamps are naive UTC ``DateTime`` values, as GDS writes them. In Python they are pandas
timestamps with ``tz="UTC"``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from atlas.exceptions import DataValidationError


def to_utc(values: Iterable | pd.Series | pd.Index, *, tz: str | None = None, unit: str | None = None,
           what: str = "timestamp") -> pd.DatetimeIndex:
    """Converts values to a UTC DatetimeIndex following the rule above.

    Args:
        values: strings, datetimes, or numbers of ``unit`` since the epoch.
        tz: the zone that naive values were written in; without it naive values are an error.
        unit: for numeric values, ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``.
        what: how to name the values in an error (a column name).

    Raises:
        DataValidationError: a value is not a timestamp, or is naive and no ``tz`` was given.
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
    try:
        if unit is not None:
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(series), unit=unit, utc=True))
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            index = pd.DatetimeIndex(series).tz_convert("UTC")
        else:
            text = pd.api.types.is_string_dtype(series.dtype) and pd.api.types.infer_dtype(series) not in (
                "datetime", "datetime64", "date")
            parsed = pd.to_datetime(series, format="ISO8601") if text else pd.to_datetime(series)
            index = pd.DatetimeIndex(parsed)
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
        msg = f"{what} values are not all timestamps ({error}); expected ISO-8601 text, datetimes or epoch numbers"
        raise DataValidationError(msg, rule="bad_timestamp") from None
    if index.hasnans:
        row = int(np.flatnonzero(index.isna())[0])
        msg = f"{what} is missing at row {row}; every row needs a timestamp"
        raise DataValidationError(msg, rule="missing_timestamp", row=row)
    return index.as_unit("ns")


def utc_timestamp(value, *, what: str = "time") -> pd.Timestamp:
    """One timestamp by the same rule, except that a naive value is taken as UTC (arguments such as ``--start``).

    Command-line ranges are written by people for whom "2024-01-01" means UTC in Atlas; data is held to the
    stricter rule of :func:`to_utc`.
    """
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        msg = f"{what} {value!r} is not a timestamp; write e.g. 2024-01-31 or 2024-01-31T12:00Z"
        raise DataValidationError(msg, rule="bad_timestamp") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
