"""The bucket convention, in one place.

A bucket stamped ``t`` covers the half-open interval ``(t - width, t]``. Labels lie on a grid of multiples of the
width counted from the Unix epoch, so the same data always falls in the same buckets, whichever run computes it.
Sampled values (a midpoint) are the last observation at or before ``t``; aggregates (volume) cover the bucket.

Example:
    >>> width_name(parse_width("60s"))
    '1min'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError

_UNITS = (("D", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3))


def parse_width(width: str | pd.Timedelta) -> pd.Timedelta:
    """Reads a fixed bucket width: ``"1min"``, ``"5min"``, ``"1h"``, ``"30s"``, or any fixed pandas offset.

    Raises:
        ConfigError: the text is not a pandas offset, or has no fixed length (months, business days).
    """
    if isinstance(width, pd.Timedelta):
        delta = width
    else:
        try:
            offset = pd.tseries.frequencies.to_offset(str(width))
        except ValueError as error:
            msg = f"bucket width {width!r} is not a pandas offset ({error}); write e.g. '1min', '5min', '1h', '30s'"
            raise ConfigError(msg) from None
        try:
            delta = pd.Timedelta(offset)
        except (ValueError, TypeError):
            msg = f"bucket width {width!r} has no fixed length; use a fixed one such as '1min', '1h' or '1D'"
            raise ConfigError(msg) from None
    if delta <= pd.Timedelta(0):
        msg = f"bucket width must be positive, got {width!r}"
        raise ConfigError(msg)
    return delta


def width_name(width: str | pd.Timedelta) -> str:
    """The canonical name of a width: the largest whole unit, ``'1min'``, ``'90s'``, ``'1h'``, ``'1D'``."""
    nanos = parse_width(width).value
    for unit, size in _UNITS:
        if nanos % size == 0:
            return f"{nanos // size}{unit}"
    return f"{nanos}ns"


def bucket_labels(times_ns: np.ndarray, width: pd.Timedelta) -> np.ndarray:
    """Labels each time (int64 nanoseconds since the epoch) with its bucket: the grid point at or after it."""
    w = width.value
    return -((-np.asarray(times_ns, dtype=np.int64)) // w) * w


def bucket_floor(time_ns: int, width: pd.Timedelta) -> int:
    """The last grid point at or before ``time_ns``: the newest bucket that has ended by then."""
    return (int(time_ns) // width.value) * width.value
