"""Reading the series a set of features needs onto one bucket grid, computing them, and cleaning the result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.data.buckets import parse_width
from atlas.data.series import SeriesKey
from atlas.data.store import MarketStore


@dataclass(frozen=True)
class BuildReport:
    """What cleaning did to a built frame.

    Attributes:
        buckets: buckets in the asked range.
        trimmed: buckets cut at either end to realign every column to the common valid range.
        filled: values filled forward (at most ``max_interpolate`` buckets in a row, never from the future).
        dropped: rows still missing a value after that, dropped.
        rows: rows left.
    """

    buckets: int
    trimmed: int
    filled: int
    dropped: int
    rows: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def grid(start, end, bucket: str) -> pd.DatetimeIndex:
    """The bucket labels ``t`` with ``start <= t <= end`` (labels on multiples of the width)."""
    width = parse_width(bucket)
    first = pd.Timestamp(start).ceil(width) if pd.Timestamp(start).value % width.value else pd.Timestamp(start)
    last = pd.Timestamp(end).floor(width)
    return pd.date_range(first, last, freq=width, name="bucket").as_unit("ns")


def read_series(store: MarketStore, keys: Sequence[SeriesKey], index: pd.DatetimeIndex) -> dict[str, pd.Series]:
    """Each stored series on ``index``, NaN where a bucket has no value; series the store lacks are left out
    (the features that need them say what is missing)."""
    stored = set(store.series_registry()["name"])
    return {key.name: store.read_series(key, index[0], index[-1]).reindex(index)
            for key in sorted(keys, key=lambda k: k.name) if key.name in stored}


def fill_forward(data: dict[str, pd.Series], limit: int) -> tuple[dict[str, pd.Series], int]:
    """Gaps of up to ``limit`` buckets filled with the last value before them; returns the count filled.

    Filling forward repeats the last observation, which the bucket convention already means by a sampled value;
    it never reads a later value, so features stay free of lookahead. Labels are computed from the unfilled
    series: a label over a gap is unknown, not zero.
    """
    if not limit:
        return data, 0
    filled = {name: values.ffill(limit=limit) for name, values in data.items()}
    count = sum(int(data[name].isna().sum() - filled[name].isna().sum()) for name in data)
    return filled, count


def clean(frame: pd.DataFrame, filled: int) -> tuple[pd.DataFrame, BuildReport]:
    """Realigns to the range where every column has values, then drops rows still missing one."""
    valid = frame.notna().all(axis=1).to_numpy()
    if not valid.any():
        return frame.iloc[0:0], BuildReport(len(frame), len(frame), filled, 0, 0)
    first, last = int(np.argmax(valid)), len(valid) - int(np.argmax(valid[::-1])) - 1
    inner = frame.iloc[first:last + 1]
    kept = inner.dropna()
    report = BuildReport(len(frame), len(frame) - len(inner), filled, len(inner) - len(kept), len(kept))
    return kept, report
