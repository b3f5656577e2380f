"""Trading calendars (how many buckets make a year) and intervals of buckets (a day of buckets).

A market's year is never assumed: crypto trades 365 days of 24 hours, an FX or futures market about 252 days of
24 hours, a stock exchange about 252 days of 6.5 hours. Annualized statistics take a :class:`Calendar`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.data.buckets import bucket_labels, parse_width
from atlas.exceptions import ConfigError
from atlas.stats._checks import check_number


@dataclass(frozen=True)
class Calendar:
    """The trading time of a market's year: ``days_per_year`` days of ``hours_per_day`` hours each.

    Example:
        >>> Calendar().periods_per_year("1h")  # crypto, the default: 365 days of 24 hours
        8760.0
        >>> Calendar(days_per_year=252, hours_per_day=6.5).periods_per_year("30min")  # an equity session
        3276.0

    Attributes:
        days_per_year: trading days in a year (365 for crypto, about 252 for FX, futures and stocks).
        hours_per_day: trading hours in a trading day (24, or 6.5 for a stock exchange's regular session).

    Raises:
        ConfigError: days or hours that are not positive, or more hours than a day has.
    """

    days_per_year: float = 365.0
    hours_per_day: float = 24.0

    def __post_init__(self) -> None:
        days = check_number("days_per_year", self.days_per_year, low=0, high=366)
        hours = check_number("hours_per_day", self.hours_per_day, low=0, high=24)
        if days == 0 or hours == 0:
            msg = f"a Calendar needs positive days and hours, got days_per_year={days}, hours_per_day={hours}"
            raise ConfigError(msg)
        object.__setattr__(self, "days_per_year", days)
        object.__setattr__(self, "hours_per_day", hours)

    def periods_per_year(self, bucket_width: str | pd.Timedelta) -> float:
        """How many buckets of ``bucket_width`` a year of trading holds."""
        seconds = parse_width(bucket_width).total_seconds()
        return self.days_per_year * self.hours_per_day * 3600.0 / seconds

    def to_dict(self) -> dict:
        return {"days_per_year": self.days_per_year, "hours_per_day": self.hours_per_day}

    @classmethod
    def from_dict(cls, values: dict) -> Calendar:
        return cls(values["days_per_year"], values["hours_per_day"])


#: 365 days of 24 hours: the default, for crypto markets that never close.
CRYPTO = Calendar()


def interval_starts(buckets: pd.DatetimeIndex, interval: str | pd.Timedelta = "1D") -> pd.DatetimeIndex:
    """The start of the interval each bucket falls in, by the bucket convention.

    A bucket stamped ``t`` covers ``(t - width, t]``, so it belongs to the interval ``(end - interval, end]``
    whose end is the first multiple of ``interval`` (from the Unix epoch) at or after ``t``: the one-minute
    bucket stamped midnight holds the last minute of the day before. Intervals are named by their start.

    Example:
        >>> stamps = pd.DatetimeIndex(["2024-01-01 23:59", "2024-01-02 00:00", "2024-01-02 00:01"], tz="UTC")
        >>> [str(t.date()) for t in interval_starts(stamps)]
        ['2024-01-01', '2024-01-01', '2024-01-02']
    """
    width = parse_width(interval)
    ns = np.asarray(buckets.as_unit("ns").asi8)
    return pd.DatetimeIndex(bucket_labels(ns, width) - width.value, tz=buckets.tz).as_unit("ns")
