"""Order-book snapshots held column-wise, and the GDS JSON format they are stored in.

GDS stores each side of a snapshot as JSON text, a list of ``[price, volume, order_id]`` levels, prices and volumes
as numbers or numeric strings (Bitstamp's ``["0.0902", 1704.1, ""]``). :class:`BookBatch` holds N snapshots as flat
NumPy arrays with offsets (the CSR layout), so metrics run vectorized over every level of every snapshot at once.

Example:
    >>> import pandas as pd
    >>> books = BookBatch.from_levels(
    ...     pd.DatetimeIndex(["2024-01-01 00:00:10"], tz="UTC"),
    ...     bids=[[(100.0, 1.0), (99.0, 2.0)]],
    ...     asks=[[(101.0, 1.5)]],
    ... )
    >>> books.best_bid.tolist(), books.best_ask.tolist()
    ([100.0], [101.0])
    >>> BookBatch.from_json(books.times, *books.to_json()).bids.volume.tolist()
    [1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import orjson
import pandas as pd

from atlas.exceptions import DataValidationError

#: Why a snapshot is unusable, by rule name; the values are the messages' wording.
RULES = {
    "malformed_json": "is not a JSON list of [price, volume, order_id] levels",
    "non_positive_price": "has a price that is zero, negative or not a number",
    "non_positive_volume": "has a volume that is zero, negative or not a number",
    "crossed_book": "is crossed: the best bid is at or above the best ask",
    "empty_side": "has no bids or no asks",
}


@dataclass(frozen=True)
class BookSide:
    """One side of N snapshots: level ``j`` of snapshot ``i`` is at ``offsets[i] + j``.

    Bids are ordered best (highest) first, asks best (lowest) first.
    """

    price: np.ndarray
    volume: np.ndarray
    offsets: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """Levels per snapshot."""
        return np.diff(self.offsets)

    @property
    def rows(self) -> np.ndarray:
        """The snapshot of every level."""
        return np.repeat(np.arange(len(self.offsets) - 1), self.counts)

    def best(self) -> np.ndarray:
        """The first level's price of each snapshot, NaN where a side is empty."""
        out = np.full(len(self.offsets) - 1, np.nan)
        has = self.counts > 0
        out[has] = self.price[self.offsets[:-1][has]]
        return out

    def take(self, index: np.ndarray) -> BookSide:
        """The snapshots at ``index``, in that order."""
        counts = self.counts[index]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        starts = np.repeat(self.offsets[:-1][index] - offsets[:-1], counts)
        positions = starts + np.arange(offsets[-1])
        return BookSide(self.price[positions], self.volume[positions], offsets)


@dataclass(frozen=True)
class BookBatch:
    """N order-book snapshots of one exchange, in time order.

    Attributes:
        times: when each snapshot was taken (UTC).
        bids: the bid side, highest price first.
        asks: the ask side, lowest price first.
    """

    times: pd.DatetimeIndex
    bids: BookSide
    asks: BookSide

    def __len__(self) -> int:
        return len(self.times)

    @property
    def best_bid(self) -> np.ndarray:
        return self.bids.best()

    @property
    def best_ask(self) -> np.ndarray:
        return self.asks.best()

    def take(self, index: np.ndarray) -> BookBatch:
        """The snapshots at ``index`` (positions), in that order."""
        index = np.asarray(index, dtype=np.int64)
        return BookBatch(self.times[index], self.bids.take(index), self.asks.take(index))

    @classmethod
    def from_levels(cls, times, bids: Sequence[Sequence], asks: Sequence[Sequence]) -> BookBatch:
        """Builds a batch from Python levels, ``(price, volume[, order_id])`` per level; sorts each side."""
        return cls(_ns(times), _side_from_levels(bids, descending=True),
                   _side_from_levels(asks, descending=False))

    @classmethod
    def from_json(cls, times, bids: Sequence[str], asks: Sequence[str]) -> BookBatch:
        """Parses GDS JSON text; levels are sorted best first. Rule checks are :meth:`invalid_rows`'s.

        Raises:
            DataValidationError: a text is not JSON levels (rule ``malformed_json``), naming its row.
        """
        return cls(_ns(times), _decode_side(bids, "bids", descending=True),
                   _decode_side(asks, "asks", descending=False))

    def to_json(self) -> tuple[list[str], list[str]]:
        """GDS JSON text of each side, ``[[price, volume, ""], ...]``."""
        return _encode_side(self.bids), _encode_side(self.asks)

    def invalid_rows(self) -> pd.Series:
        """The rule each unusable snapshot breaks, indexed by position; empty when all are valid."""
        n = len(self)
        reason = np.full(n, None, dtype=object)
        for side in (self.bids, self.asks):
            rows = side.rows
            bad_price = rows[~(side.price > 0) | ~np.isfinite(side.price)]
            bad_volume = rows[~(side.volume > 0) | ~np.isfinite(side.volume)]
            reason[bad_volume] = "non_positive_volume"
            reason[bad_price] = "non_positive_price"
        empty = (self.bids.counts == 0) | (self.asks.counts == 0)
        crossed = ~empty & (self.best_bid >= self.best_ask)
        for mask, rule in ((empty, "empty_side"), (crossed, "crossed_book")):
            reason[mask & (reason == None)] = rule  # noqa: E711 (element-wise)
        bad = np.flatnonzero(reason != None)  # noqa: E711
        return pd.Series(reason[bad], index=bad, dtype=object)

    def validate(self) -> None:
        """Raises on the first unusable snapshot or on timestamps out of order.

        Raises:
            DataValidationError: naming the row, its time and the rule.
        """
        order = np.diff(self.times.asi8)
        if (order < 0).any():
            row = int(np.flatnonzero(order < 0)[0]) + 1
            msg = (f"order book row {row} at {self.times[row]} is earlier than row {row - 1} at "
                   f"{self.times[row - 1]}: timestamps must not go back; sort the snapshots by time")
            raise DataValidationError(msg, rule="timestamps_out_of_order", row=row)
        invalid = self.invalid_rows()
        if len(invalid):
            row, rule = int(invalid.index[0]), invalid.iloc[0]
            msg = (f"order book row {row} at {self.times[row]} {RULES[rule]} (rule {rule}); "
                   f"{len(invalid)} of {len(self)} snapshots break a rule. Fix the data, or import with "
                   f"on_invalid='skip' (--skip-invalid) to drop them and count them")
            raise DataValidationError(msg, rule=rule, row=row)


def _ns(times) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(times)
    return index.as_unit("ns")


def _side_from_levels(levels: Sequence[Sequence], *, descending: bool) -> BookSide:
    counts = np.fromiter((len(book) for book in levels), dtype=np.int64, count=len(levels))
    flat = list(chain.from_iterable(levels))
    price = np.array([lvl[0] for lvl in flat], dtype=np.float64)
    volume = np.array([lvl[1] for lvl in flat], dtype=np.float64)
    return _sorted(price, volume, counts, descending=descending)


def _sorted(price: np.ndarray, volume: np.ndarray, counts: np.ndarray, *, descending: bool) -> BookSide:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if len(price) > 1:
        step = np.diff(price)
        inside = np.ones(len(step), dtype=bool)
        inside[offsets[1:-1][(offsets[1:-1] > 0) & (offsets[1:-1] < len(price))] - 1] = False
        wrong = (step > 0) if descending else (step < 0)
        if (wrong & inside).any():  # rare: sort each snapshot's levels best first, keeping snapshots apart
            rows = np.repeat(np.arange(len(counts)), counts)
            order = np.lexsort((-price if descending else price, rows))
            price, volume = price[order], volume[order]
    return BookSide(price, volume, offsets)


# After quotes and blanks are removed: a list of levels, each [price,volume] or [price,volume,order_id].
_LEVEL = r"\[[^\[\],]+,[^\[\],]+(,[^\[\]]*)?\]"
_SIDE = rf"^\[({_LEVEL}(,{_LEVEL})*)?\]\n?$"


def _decode_fast(texts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Prices, volumes and level counts of a page of sides, with Arrow's vectorized string kernels.

    Checks the whole page against the GDS grammar at once and parses every number in one cast, instead of making a
    Python object of each. Returns None when it is not sure (a text off the grammar, a value that is not a plain
    number): the exact JSON path then decides, errors included.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not texts or not all(type(t) is str for t in texts):
        return None
    joined = "\n".join(texts).encode()
    if joined.count(b"\n") != len(texts) - 1:  # a text with a line break of its own
        return None
    cleaned = joined.translate(None, b'" \t\r')  # order ids lose their quotes too: they are not read
    data = np.frombuffer(cleaned, dtype=np.uint8)
    offsets = np.concatenate([[0], np.flatnonzero(data == 10) + 1, [len(data)]]).astype(np.int64)
    sides = pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offsets), pa.py_buffer(cleaned))
    if not pc.all(pc.match_substring_regex(sides, _SIDE)).as_py():
        return None
    inner = pc.utf8_trim(sides, "[]\n")
    empty = pc.equal(pc.binary_length(inner), 0).to_numpy(zero_copy_only=False)
    levels = pc.split_pattern(inner, "],[")
    counts = pc.list_value_length(levels).to_numpy(zero_copy_only=False).astype(np.int64)
    counts[empty] = 0
    fields = pc.split_pattern(pc.list_flatten(pc.filter(levels, pa.array(~empty))), ",", max_splits=2)
    try:
        price = pc.cast(pc.list_element(fields, 0), pa.float64()).to_numpy(zero_copy_only=False)
        volume = pc.cast(pc.list_element(fields, 1), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not a plain number: true, null, text
        return None
    return np.ascontiguousarray(price), np.ascontiguousarray(volume), counts


def _decode_side(texts: Sequence[str], side: str, *, descending: bool) -> BookSide:
    texts = [t.decode() if isinstance(t, bytes) else t for t in texts] if texts and not isinstance(texts[0], str) \
        else list(texts)
    decoded = _decode_fast(texts) or _decode_json(texts, side)
    return _sorted(*decoded, descending=descending)


def _decode_json(texts: list, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact path: ``orjson`` parses the page; a malformed text is found and named."""
    try:
        books = orjson.loads("[" + ",".join(texts) + "]") if texts else []
        if len(books) != len(texts) or not all(type(b) is list for b in books):
            raise ValueError
        counts = np.fromiter(map(len, books), dtype=np.int64, count=len(books))
        flat = list(chain.from_iterable(books))
        if flat and (set(map(type, flat)) != {list} or min(map(len, flat)) < 2):
            raise ValueError
        price = np.array([level[0] for level in flat], dtype=np.float64)
        volume = np.array([level[1] for level in flat], dtype=np.float64)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        row = _first_malformed(texts)
        msg = (f"order book row {row}: {side} {RULES['malformed_json']} (rule malformed_json); got "
               f"{str(texts[row])[:80]!r}. Expected e.g. [[\"9500.1\", 0.5, \"\"], [9500.0, 1.2, \"\"]]")
        raise DataValidationError(msg, rule="malformed_json", row=row) from None
    return price, volume, counts


def _first_malformed(texts: Sequence[str]) -> int:
    for row, text in enumerate(texts):
        try:
            levels = orjson.loads(text)
            if type(levels) is not list:
                return row
            for level in levels:
                if type(level) is not list or len(level) < 2:
                    return row
                float(level[0]), float(level[1])
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return row
    return 0


def _encode_side(side: BookSide) -> list[str]:
    pairs = np.ascontiguousarray(np.column_stack([side.price, side.volume]))
    offsets = side.offsets.tolist()
    dumps, option = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    # [[p,v],[p,v]] -> [[p,v,""],[p,v,""]]: every "]" but the last closes a level.
    return [
        (dumps(pairs[a:b], option=option)[:-1].replace(b"]", b',""]') + b"]").decode()
        for a, b in zip(offsets[:-1], offsets[1:])
    ]
