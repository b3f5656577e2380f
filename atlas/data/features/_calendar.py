"""Calendar features: the time of day and the day of the week of each bucket, in UTC.

They read no series: the value at ``t`` depends on the bucket stamp ``t`` alone, the end of the bucket
``(t - width, t]``. ``.cyclic("sin")`` and ``.cyclic("cos")`` place the value on a circle, so that 23:59 lies
next to 00:00 and Sunday next to Monday; a model takes both components, as two features.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from atlas.data.features._base import Footprint
from atlas.data.features._leaf import Getter, Leaf

_DAY_NS = 86_400 * 10**9
_HOUR_NS = 3_600 * 10**9


class _Calendar(Leaf):
    exchange_count = 0
    defaults: ClassVar[dict[str, Any]] = {"cyclic": None}
    period: ClassVar[float] = 1.0

    def _reads(self):
        return []

    def _footprint(self) -> Footprint:
        return Footprint()

    def _compute(self, get: Getter, grid: pd.DatetimeIndex) -> pd.Series:
        value = self._value(grid.tz_convert("UTC"))
        component = self.get("cyclic")
        if component is not None:
            angle = 2 * np.pi * value / self.period
            value = np.sin(angle) if component == "sin" else np.cos(angle)
        return pd.Series(value, index=grid)

    def _value(self, grid: pd.DatetimeIndex) -> np.ndarray:
        raise NotImplementedError


class TimeOfDay(_Calendar):
    """Hours since midnight UTC of the bucket stamp, in ``[0, 24)``; cyclic: sin or cos of ``2 pi h / 24``.

    Example:
        >>> grid = pd.date_range("2024-01-01 06:00", periods=3, freq="30min", tz="UTC")
        >>> TimeOfDay().bucket("30min").compute({}, index=grid).tolist()
        [6.0, 6.5, 7.0]
        >>> TimeOfDay().cyclic("sin").name
        'time_of_day(1min, cyclic=sin)'
    """

    kind = "time_of_day"
    period = 24.0

    def _value(self, grid: pd.DatetimeIndex) -> np.ndarray:
        return (grid.as_unit("ns").asi8 % _DAY_NS) / _HOUR_NS


class DayOfWeek(_Calendar):
    """The day of the week of the bucket stamp in UTC, Monday 0 to Sunday 6; cyclic: of ``2 pi d / 7``.

    Example:
        >>> grid = pd.date_range("2024-01-06", periods=3, freq="1D", tz="UTC")  # Saturday, Sunday, Monday
        >>> DayOfWeek().bucket("1D").compute({}, index=grid).tolist()
        [5.0, 6.0, 0.0]
    """

    kind = "day_of_week"
    period = 7.0

    def _value(self, grid: pd.DatetimeIndex) -> np.ndarray:
        return grid.day_of_week.to_numpy(dtype=float)
