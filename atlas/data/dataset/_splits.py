"""Splits that respect time: a train/test pair and walk-forward folds, purged by the label horizon, embargoed.

Positions count rows of a time-ordered index. A label at row ``i`` reads rows ``i+1 .. i+horizon`` (its
lookforward). For a test block occupying rows ``a .. b``, a training row ``i`` is

* **purged** when its label reads into the test block, ``i < a <= i + horizon``, that is
  ``a - horizon <= i < a`` (a training row after the block, ``i > b``, cannot read into it);
* **embargoed** when it lies within ``embargo`` rows after the block, ``b < i <= b + embargo`` (de Prado's
  embargo: the test block's own labels read the rows after it), or within ``embargo`` rows before the purged
  rows, ``a - horizon - embargo <= i < a - horizon``.

So when training comes before testing, the last training row is at most ``a - horizon - embargo - 1``: between
it and the first test row lie ``horizon + embargo`` rows. When rows are missing from the grid (dropped gaps),
positions understate time, so purging by position drops at least the rows that must go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.data.dataset._common import check_count, check_method
from atlas.exceptions import ConfigError

WALK_FORWARD_MODES = ("expanding", "sliding")


@dataclass(frozen=True, eq=False)
class Split:
    """Positions of the training and test rows of one split, in increasing order.

    Example:
        >>> index = pd.date_range("2024-01-01", periods=10, freq="1min", tz="UTC")
        >>> split = train_test_split(index, train=(index[0], index[5]), test=(index[6], index[9]), horizon=2)
        >>> split.train.tolist(), split.test.tolist(), split.purged
        ([0, 1, 2, 3], [6, 7, 8, 9], 2)

    Attributes:
        train: positions of the training rows (after purge and embargo).
        test: positions of the test rows.
        purged: training rows dropped because their label read into the test rows.
        embargoed: training rows dropped by the embargo.
    """

    train: np.ndarray
    test: np.ndarray
    purged: int = 0
    embargoed: int = 0

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            positions = np.array(getattr(self, name), dtype=np.int64)
            positions.flags.writeable = False
            object.__setattr__(self, name, positions)

    def __eq__(self, other) -> bool:
        return isinstance(other, Split) and np.array_equal(self.train, other.train) and np.array_equal(
            self.test, other.test) and (self.purged, self.embargoed) == (other.purged, other.embargoed)

    __hash__ = None

    def to_dict(self) -> dict:
        return {"train": self.train.tolist(), "test": self.test.tolist(), "purged": self.purged,
                "embargoed": self.embargoed}

    @classmethod
    def from_dict(cls, values: dict) -> Split:
        return cls(np.asarray(values["train"]), np.asarray(values["test"]), values.get("purged", 0),
                   values.get("embargoed", 0))


def purge(train: np.ndarray, test_first: int, test_last: int, *, horizon: int, embargo: int = 0) -> Split:
    """Drops from ``train`` the rows purged and embargoed around the test rows ``test_first .. test_last``."""
    train = np.asarray(train, dtype=np.int64)
    purged = (train >= test_first - horizon) & (train < test_first)
    embargoed = ((train > test_last) & (train <= test_last + embargo)) | (
        (train >= test_first - horizon - embargo) & (train < test_first - horizon))
    inside = (train >= test_first) & (train <= test_last)
    if inside.any():
        msg = f"training rows {train[inside][:3].tolist()} lie inside the test rows {test_first}..{test_last}"
        raise ConfigError(msg)
    keep = ~(purged | embargoed)
    return Split(train[keep], np.arange(test_first, test_last + 1), int(purged.sum()), int(embargoed.sum()))


def train_test_split(index: pd.DatetimeIndex, *, train: tuple, test: tuple, horizon: int,
                     embargo: int = 0) -> Split:
    """The rows of a training window and a later test window, the training rows purged and embargoed.

    A window ``(start, end)`` selects the rows stamped ``start <= t <= end`` (both ends included). The
    training window must end before the test window starts. Naive window bounds are read in the index's zone.

    Args:
        index: the rows' timestamps, increasing and unique.
        train: ``(start, end)`` of the training window. test: ``(start, end)`` of the test window.
        horizon: the label's lookforward in rows (0 for a label that reads no future row).
        embargo: extra rows dropped between training and test rows (see the module docstring).

    Returns:
        A :class:`Split` of positions in ``index``.

    Raises:
        ConfigError: windows that overlap, a training window that does not end before the test window, a
            window with no rows, no training row left after the purge, or an index that is not increasing.
    """
    index = _check_index(index)
    horizon = check_count("horizon", horizon, minimum=0)
    embargo = check_count("embargo", embargo, minimum=0)
    train_start, train_end = _window(train, "train", index)
    test_start, test_end = _window(test, "test", index)
    if train_end >= test_start:
        overlap = "overlap" if train_start <= test_end else "are in the wrong order"
        msg = (f"the train window {train_start} .. {train_end} and the test window "
               f"{test_start} .. {test_end} {overlap}: "
               f"the training window must end before the test window starts")
        raise ConfigError(msg)
    stamps = index.as_unit("ns").asi8
    positions = {}
    for name, (start, end) in (("train", (train_start, train_end)), ("test", (test_start, test_end))):
        first = int(np.searchsorted(stamps, start.value, side="left"))
        stop = int(np.searchsorted(stamps, end.value, side="right"))
        if stop <= first:
            msg = (f"the {name} window {start} .. {end} holds no row; "
                   f"the data covers {index[0]} .. {index[-1]} ({len(index)} rows)")
            raise ConfigError(msg)
        positions[name] = np.arange(first, stop)
    split = purge(positions["train"], int(positions["test"][0]), int(positions["test"][-1]), horizon=horizon,
                  embargo=embargo)
    if not len(split.train):
        msg = (f"no training row is left after purging {split.purged} rows (horizon={horizon}) and an "
               f"embargo of {split.embargoed} rows: the training window needs more than horizon + embargo = "
               f"{horizon + embargo} rows before the test window; widen it or move it earlier")
        raise ConfigError(msg)
    return split


def walk_forward(index: pd.DatetimeIndex, *, n_folds: int, test_size: int, train_size: int | None = None,
                 mode: str = "expanding", horizon: int, embargo: int = 0) -> list[Split]:
    """Folds that move forward in time: contiguous test blocks, each trained on rows strictly before it.

    The ``n_folds`` test blocks of ``test_size`` rows each lie side by side at the end of the index, the last
    ending at the last row. Each fold trains on rows before its test block, ending ``horizon + embargo`` rows
    before it (the purge and the embargo). ``"expanding"`` training starts at row 0, so it grows fold by fold;
    ``"sliding"`` training keeps the ``train_size`` rows just before the gap.

    Example:
        >>> index = pd.date_range("2024-01-01", periods=20, freq="1h", tz="UTC")
        >>> folds = walk_forward(index, n_folds=2, test_size=4, train_size=6, mode="sliding", horizon=1)
        >>> [f.train[[0, -1]].tolist() + f.test[[0, -1]].tolist() for f in folds]
        [[5, 10, 12, 15], [9, 14, 16, 19]]

    Args:
        index: the rows' timestamps, increasing and unique.
        n_folds: how many folds. test_size: rows per test block.
        train_size: ``"sliding"``: the training rows of every fold (required); ``"expanding"``: the fewest
            training rows the first fold may have (default 1).
        mode: ``"expanding"`` or ``"sliding"``.
        horizon: the label's lookforward in rows. embargo: extra rows between training and test rows.

    Raises:
        ConfigError: an unknown mode, sizes below 1, sliding without train_size, or too few rows (the message
            says how many are needed).
    """
    index = _check_index(index)
    mode = check_method("walk_forward mode", mode, WALK_FORWARD_MODES)
    n_folds = check_count("n_folds", n_folds, minimum=1)
    test_size = check_count("test_size", test_size, minimum=1)
    horizon = check_count("horizon", horizon, minimum=0)
    embargo = check_count("embargo", embargo, minimum=0)
    if train_size is None and mode == "sliding":
        msg = "walk_forward mode='sliding' needs train_size, the training rows of every fold"
        raise ConfigError(msg)
    train_size = 1 if train_size is None else check_count("train_size", train_size, minimum=1)
    needed = train_size + horizon + embargo + n_folds * test_size
    if len(index) < needed:
        msg = (f"walk_forward needs at least train_size + horizon + embargo + n_folds * test_size = "
               f"{train_size} + {horizon} + {embargo} + {n_folds} * {test_size} = {needed} rows, "
               f"the index has {len(index)}; use fewer or smaller folds, or more data")
        raise ConfigError(msg)
    folds = []
    for fold in range(n_folds):
        first = len(index) - (n_folds - fold) * test_size
        end = first - horizon - embargo  # training rows are below this position
        start = 0 if mode == "expanding" else end - train_size
        split = purge(np.arange(start, first), first, first + test_size - 1, horizon=horizon, embargo=embargo)
        folds.append(split)
    return folds


def _check_index(index) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        msg = f"splits need a pandas DatetimeIndex of the rows' timestamps, got {type(index).__name__}"
        raise ConfigError(msg)
    if len(index) == 0:
        msg = "splits need rows: the index is empty"
        raise ConfigError(msg)
    if index.hasnans or not index.is_monotonic_increasing or not index.is_unique:
        msg = ("splits need an index of increasing, unique timestamps without NaT; "
               "sort the frame (frame.sort_index()) and drop repeated timestamps")
        raise ConfigError(msg)
    return index


def _window(window, name: str, index: pd.DatetimeIndex) -> tuple[pd.Timestamp, pd.Timestamp]:
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        msg = f"{name} must be a (start, end) pair of timestamps, got {name}={window!r}"
        raise ConfigError(msg)
    try:
        start, end = (pd.Timestamp(v) for v in window)
    except (TypeError, ValueError):
        msg = f"{name} must be a (start, end) pair of timestamps, got {name}={window!r}"
        raise ConfigError(msg) from None
    stamps = []
    for stamp in (start, end):
        if stamp.tzinfo is None and index.tz is not None:
            stamp = stamp.tz_localize(index.tz)
        elif stamp.tzinfo is not None and index.tz is None:
            msg = f"{name} window {window!r} has a time zone but the index is naive; give naive timestamps"
            raise ConfigError(msg)
        elif stamp.tzinfo is not None:
            stamp = stamp.tz_convert(index.tz)
        stamps.append(stamp.as_unit("ns"))
    if stamps[0] > stamps[1]:
        msg = f"the {name} window starts after it ends: {stamps[0]} > {stamps[1]}; write (start, end)"
        raise ConfigError(msg)
    return stamps[0], stamps[1]


__all__ = ["WALK_FORWARD_MODES", "Split", "purge", "train_test_split", "walk_forward"]
