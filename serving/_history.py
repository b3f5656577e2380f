"""The runner's rolling history: the last N buckets of every series its models read, on one bucket grid.

The feed appends one bucket at a time; a bucket that does not follow the last one leaves the buckets between as
missing values (a gap), never as a join; a bucket at or before the last one is refused (a replayed or repeated
bucket is not applied twice). :meth:`History.series` gives the trailing buckets as pandas series on a bucket index,
the form ``FeatureLabelSet.compute_features`` reads, so the served features are the training features.

Example:
    >>> import pandas as pd
    >>> history = History(["a"], width=pd.Timedelta("1min"), length=3)
    >>> t = pd.Timestamp("2024-01-01", tz="UTC")
    >>> history.append(t, {"a": 1.0}), history.append(t + pd.Timedelta("2min"), {"a": 3.0})
    (0, 1)
    >>> history.series(3)["a"].tolist()
    [1.0, nan, 3.0]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd


class History:
    """The last ``length`` buckets of each named series (NaN where a bucket had no value).

    Args:
        names: the series names (``exchange.width.metric``).
        width: the bucket width.
        length: how many buckets to keep.
    """

    def __init__(self, names: Iterable[str], *, width: pd.Timedelta, length: int) -> None:
        self.names = sorted(set(names))
        self.width = pd.Timedelta(width)
        self.length = int(length)
        self._buckets: deque[int] = deque(maxlen=self.length)
        self._values: dict[str, deque[float]] = {n: deque(maxlen=self.length) for n in self.names}

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def last(self) -> pd.Timestamp | None:
        """The newest bucket, or None before the first."""
        return pd.Timestamp(self._buckets[-1], tz="UTC") if self._buckets else None

    def append(self, bucket: pd.Timestamp, values: Mapping[str, float]) -> int | None:
        """Adds one bucket's values; returns how many buckets were missing before it, or None when refused.

        A series the values lack gets NaN for this bucket. A bucket at or before the newest one is refused.
        """
        stamp = pd.Timestamp(bucket).value
        missing = 0
        if self._buckets:
            last = self._buckets[-1]
            if stamp <= last:
                return None
            missing = (stamp - last) // self.width.value - 1
            for k in range(1, min(missing, self.length) + 1):
                self._push(last + k * self.width.value, {})
        self._push(stamp, values)
        return int(missing)

    def extend(self, frame: pd.DataFrame) -> None:
        """Appends every row of a frame indexed by bucket (warming up from the store)."""
        for bucket, row in zip(frame.index, frame.to_dict("records"), strict=True):
            self.append(bucket, row)

    def _push(self, stamp: int, values: Mapping[str, float]) -> None:
        self._buckets.append(stamp)
        for name, column in self._values.items():
            value = values.get(name)
            column.append(np.nan if value is None else float(value))

    def series(self, n: int | None = None) -> dict[str, pd.Series]:
        """The trailing ``n`` buckets (all by default) of every series, on a bucket index named ``bucket``."""
        n = len(self._buckets) if n is None else min(int(n), len(self._buckets))
        stamps = list(self._buckets)[-n:] if n else []
        index = pd.DatetimeIndex(np.asarray(stamps, dtype="datetime64[ns]"), name="bucket").tz_localize("UTC")
        return {name: pd.Series(np.fromiter((column[i] for i in range(len(column) - n, len(column))),
                                            dtype=np.float64, count=n), index=index)
                for name, column in self._values.items()}


__all__ = ["History"]
