"""Order-book snapshots rebuilt from ob-analytics order events, and its trades.

ob-analytics records Bitstamp's ``live_orders`` channel as one row per order event: ``id``, ``timestamp``
(local receive time, ms), ``exchange_timestamp`` (ms), ``price``, ``volume`` (what remains of the order after
the event), ``action`` (``created``, ``changed``, ``deleted``) and ``direction`` (``bid``, ``ask``). The
capture starts with a synthetic ``created`` row for every order of a REST book snapshot and ends with
synthetic deletes.

The events are replayed in file order, keeping each live order's price and remaining volume. Every
``interval`` on the epoch grid a snapshot is taken: the book after every event stamped at or before that time,
aggregated by price level, the best ``levels`` levels per side. Time is the ``exchange_timestamp``: it never
goes back, while the local receive time does once (the REST snapshot arrives about 2.7 s after the live stream
has started).

Rules of the replay:

* ``deleted``, or a remaining volume of zero, removes the order; ``changed`` of an order not seen before adds
  it (the event gives its current state).
* Orders with a price of zero or less are left out of the book and counted (``orders.non_positive_price``).
* Live feeds are briefly crossed between messages: snapshots whose best bid is at or above the best ask (and
  ones with an empty side) are skipped and counted with ``on_invalid="skip"``, the default.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from atlas.data.buckets import parse_width
from atlas.data.exchanges import Exchange
from atlas.data.importers._report import (
    ImportReport,
    Tally,
    already_stored,
    check_choice,
    check_writable,
    overlap_message,
    parse_exchange,
    stored_range,
)
from atlas.data.importers._samples import sample_path
from atlas.data.orderbooks import RULES, BookBatch, BookSide
from atlas.data.store import MarketStore
from atlas.exceptions import ConfigError, DataValidationError

_ORDER_COLUMNS = ("id", "exchange_timestamp", "price", "volume", "action", "direction")
_TRADE_COLUMNS = ("trade_id", "exchange_timestamp", "price", "amount")
_ACTIONS = {"created": 0, "changed": 1, "deleted": 2}
_DIRECTIONS = {"bid": 0, "ask": 1}


def import_ob_analytics(store: MarketStore, path: str | Path | None = None, *,
                        exchange: str | Exchange = "bitstamp", interval: str = "1s", levels: int = 100,
                        stale_after: str | None = "1s", on_invalid: str = "skip",
                        on_duplicate: str = "raise") -> ImportReport:
    """Rebuilds order-book snapshots from ob-analytics order events and imports them with its trades.

    Example:
        >>> from atlas.data import MarketStore
        >>> report = import_ob_analytics(MarketStore("sqlite://"))
        >>> report.written["orderbook"], report.skipped["orderbook.crossed_book"]
        (1798, 2)

    Args:
        store: the destination store.
        path: a folder holding ``orders.csv.gz`` (or ``orders.csv``) and ``trades.csv``, or the orders file
            itself; the sample bundled with ob-analytics 0.1.0 by default. A missing ``trades.csv`` imports
            books only.
        exchange: the exchange the capture is of.
        interval: time between snapshots, on the epoch grid.
        levels: price levels kept per side, best first.
        stale_after: how long a crossing may last before the older of the crossing orders is taken for a
            phantom and removed (``orders.stale_order``); ``None`` keeps every order until the feed deletes
            it.
        on_invalid: snapshots that are crossed or have an empty side, and trades that break a rule: ``"skip"``
            and count them (the default: real feeds are briefly crossed), or ``"raise"``.
        on_duplicate: trades already in the store, and snapshots within the time range the store already holds
            for the exchange: ``"raise"`` or ``"skip"`` and count.

    Returns:
        Snapshots and trades written, and what was skipped by rule.

    Raises:
        DataValidationError: a row is malformed (the message names the row and the rule), or with
            ``on_invalid="raise"`` a snapshot is crossed (naming the event after which it was).
        MissingDataError: no path was given and ob-analytics is not installed (with the install line).
    """
    began = time.perf_counter()
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    check_choice("on_duplicate", on_duplicate, ("raise", "skip"))
    check_writable(store)
    exchange = parse_exchange(exchange, store)
    orders_path, trades_path = _locate(path)
    events = read_order_events(orders_path)
    tally = Tally()
    books, after_event, dropped = _replay(events, interval=interval, levels=levels, stale_after=stale_after)
    tally.skip("orders", dropped)
    invalid = books.invalid_rows()
    if len(invalid) and on_invalid == "raise":
        row, rule = int(invalid.index[0]), invalid.iloc[0]
        event = int(after_event[row])
        msg = (f"the snapshot at {books.times[row]}, after order event row {event} (line {event + 2} of "
               f"{orders_path.name}, order id {events['id'].iloc[event]}), {RULES[rule]} (rule {rule}): best "
               f"bid {books.best_bid[row]}, best ask {books.best_ask[row]}; {len(invalid)} of {len(books)} "
               f"snapshots break a rule. Live feeds are briefly crossed between messages: import with "
               f"on_invalid='skip' to drop and count such snapshots")
        raise DataValidationError(msg, rule=rule, row=event)
    tally.skip("orderbook", invalid.value_counts().to_dict())
    books = books.take(np.setdiff1d(np.arange(len(books)), invalid.index.to_numpy()))
    trades = read_trades(trades_path) if trades_path is not None else None
    with store.atomic() as conn:
        stored = stored_range(conn, "orderbook", exchange)
        seen = already_stored(books.times, stored)
        if seen.any() and on_duplicate == "raise":
            first = int(np.flatnonzero(seen)[0])
            where = f"the snapshot from {orders_path.name}"
            msg = overlap_message(where, exchange, books.times[first], stored, int(seen.sum()))
            raise DataValidationError(msg, rule="already_stored", row=first)
        tally.skip("orderbook", {"already_stored": int(seen.sum())})
        books = books.take(np.flatnonzero(~seen))
        if len(books):
            store.write_orderbooks(exchange, books, source=f"ob-analytics {orders_path.parent.name}")
        tally.wrote("orderbook", len(books), books.times, exchange)
        if trades is not None and len(trades):
            report = store.write_trades(exchange, trades, on_invalid=on_invalid, on_duplicate=on_duplicate,
                                        source=f"ob-analytics {trades_path.name}")
            tally.skip("trade", report.skipped)
            tally.wrote("trade", report.written, pd.DatetimeIndex(trades["timestamp"]), exchange)
    return tally.report(str(orders_path.parent), time.perf_counter() - began)


def _locate(path) -> tuple[Path, Path | None]:
    folder = sample_path("ob-analytics") if path is None else Path(path)
    if folder.is_dir():
        found = [folder / name for name in ("orders.csv.gz", "orders.csv") if (folder / name).is_file()]
        if not found:
            msg = (f"{folder} holds no orders.csv.gz or orders.csv; give the folder of an ob-analytics "
                   f"capture or its orders file")
            raise FileNotFoundError(msg)
        orders = found[0]
    elif folder.is_file():
        orders = folder
    else:
        msg = (f"no file or folder at {str(folder)!r}; give the folder of an ob-analytics capture or its "
               f"orders file")
        raise FileNotFoundError(msg)
    trades = orders.parent / "trades.csv"
    return orders, trades if trades.is_file() else None


def _header_check(path: Path, wanted: tuple[str, ...], what: str) -> None:
    header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    missing = [c for c in wanted if c not in header]
    if missing:
        msg = (f"{path.name} lacks the columns {missing} (rule missing_columns); its columns are {header}. "
               f"Expected ob-analytics {what} with {list(wanted)}")
        raise DataValidationError(msg, rule="missing_columns")


def read_order_events(path: str | Path) -> pd.DataFrame:
    """Reads and checks an ob-analytics orders file: coded actions and directions, time in file order.

    Returns:
        Columns ``id``, ``time`` (int64 ns since the epoch, from ``exchange_timestamp``), ``price``,
        ``volume``, ``action`` (0 created, 1 changed, 2 deleted) and ``side`` (0 bid, 1 ask), in file order.

    Raises:
        DataValidationError: a column is missing, an action or direction is unknown, a value is missing, or
            the time goes back; naming the row and the rule.
    """
    path = Path(path)
    _header_check(path, _ORDER_COLUMNS, "order events")
    raw = pd.read_csv(path, usecols=list(_ORDER_COLUMNS))
    for column in ("id", "exchange_timestamp", "price", "volume"):
        if raw[column].isna().any():
            row = int(np.flatnonzero(raw[column].isna().to_numpy())[0])
            msg = (f"{path.name} row {row} (line {row + 2}) has no {column} (rule missing_value); every "
                   f"event needs one")
            raise DataValidationError(msg, rule="missing_value", row=row)
    codes = {}
    for column, allowed, rule in (("action", _ACTIONS, "unknown_action"), ("direction", _DIRECTIONS,
                                                                          "unknown_direction")):
        coded = raw[column].map(allowed)
        if coded.isna().any():
            row = int(np.flatnonzero(coded.isna().to_numpy())[0])
            msg = (f"{path.name} row {row} (line {row + 2}) has {column} {raw[column].iloc[row]!r} (rule "
                   f"{rule}); expected one of {', '.join(allowed)}")
            raise DataValidationError(msg, rule=rule, row=row)
        codes[column] = coded.to_numpy(dtype=np.int8)
    nanos = raw["exchange_timestamp"].to_numpy(dtype=np.int64) * 1_000_000
    back = np.flatnonzero(np.diff(nanos) < 0)
    if len(back):
        row = int(back[0]) + 1
        msg = (f"{path.name} row {row} (line {row + 2}) has exchange_timestamp "
               f"{raw['exchange_timestamp'].iloc[row]}, earlier than the row before it (rule "
               f"timestamps_out_of_order); events are replayed in file order, which must be time order: sort "
               f"the file by exchange_timestamp, keeping the order of equal times")
        raise DataValidationError(msg, rule="timestamps_out_of_order", row=row)
    return pd.DataFrame({"id": raw["id"].to_numpy(dtype=np.int64), "time": nanos,
                         "price": raw["price"].to_numpy(dtype=np.float64),
                         "volume": raw["volume"].to_numpy(dtype=np.float64),
                         "action": codes["action"], "side": codes["direction"]})


def read_trades(path: str | Path) -> pd.DataFrame:
    """Reads an ob-analytics trades file as Atlas trades: time from ``exchange_timestamp``, volume from
    ``amount``, ``exchange_trade_id`` from ``trade_id``."""
    path = Path(path)
    _header_check(path, _TRADE_COLUMNS, "trades")
    raw = pd.read_csv(path, usecols=list(_TRADE_COLUMNS))
    return pd.DataFrame({
        "timestamp": pd.to_datetime(raw["exchange_timestamp"].to_numpy(dtype=np.int64), unit="ms", utc=True),
        "price": raw["price"].to_numpy(dtype=np.float64),
        "volume": raw["amount"].to_numpy(dtype=np.float64),
        "exchange_trade_id": raw["trade_id"].astype(str).to_numpy(dtype=object),
    })


def rebuild_books(events: pd.DataFrame, *, interval: str = "1s", levels: int = 100,
                  stale_after: str | None = "1s") -> BookBatch:
    """Snapshots of the book every ``interval``, replaying events from :func:`read_order_events`.

    Example:
        >>> events = pd.DataFrame({"id": [1, 2, 1], "time": [0, 0, 2 * 10**9],
        ...                        "price": [99.0, 101.0, 99.0], "volume": [1.0, 2.0, 0.0],
        ...                        "action": [0, 0, 2], "side": [0, 1, 0]})
        >>> books = rebuild_books(events, interval="1s")
        >>> books.times.size, books.best_bid.tolist(), books.best_ask.tolist()
        (3, [99.0, 99.0, nan], [101.0, 101.0, 101.0])

    Returns:
        Every snapshot, crossed or empty ones included (see :meth:`BookBatch.invalid_rows`).
    """
    return _replay(events, interval=interval, levels=levels, stale_after=stale_after)[0]


def _replay(events: pd.DataFrame, *, interval: str, levels: int, stale_after: str | None
            ) -> tuple[BookBatch, np.ndarray, dict[str, int]]:
    """The snapshots, the last event row applied before each, and the orders left out by rule."""
    if int(levels) < 1:
        msg = f"levels must be a positive number of price levels per side, got levels={levels!r}"
        raise ConfigError(msg)
    width = parse_width(interval).value
    grace = None if stale_after is None else parse_width(stale_after).value
    nanos = events["time"].to_numpy(dtype=np.int64)
    if not len(nanos):
        empty = BookSide(np.array([]), np.array([]), np.zeros(1, dtype=np.int64))
        return BookBatch(pd.DatetimeIndex([], tz="UTC"), empty, empty), np.array([], dtype=np.int64), {}
    grid = np.arange(-(-nanos[0] // width) * width, nanos[-1] // width * width + 1, width, dtype=np.int64)
    stops = np.searchsorted(nanos, grid, side="right")
    columns = [events[c].tolist() for c in ("id", "time", "action", "price", "volume", "side")]
    book = _LiveOrders()
    sides: tuple[list, list] = ([], [])
    start = 0
    for now, stop in zip(grid.tolist(), stops.tolist()):
        book.apply(*(column[start:stop] for column in columns))
        start = stop
        if grace is not None:
            book.evict_stale(now, grace)
        for side in (0, 1):
            sides[side].append(book.levels(side, levels))
    bids, asks = (_side(parts) for parts in sides)
    dropped = {"non_positive_price": book.nonpositive, "stale_order": book.stale}
    return BookBatch(pd.DatetimeIndex(grid, tz="UTC"), bids, asks), stops - 1, dropped


def _side(parts: list[tuple[np.ndarray, np.ndarray]]) -> BookSide:
    counts = np.fromiter((len(p) for p, _ in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    price = np.concatenate([p for p, _ in parts]) if parts else np.array([])
    volume = np.concatenate([v for _, v in parts]) if parts else np.array([])
    return BookSide(price, volume, offsets)


class _LiveOrders:
    """Live orders in reusable slots of flat arrays, so a snapshot is a few vectorized steps over them."""

    def __init__(self) -> None:
        self.slot_of: dict[int, int] = {}
        self.free: list[int] = []
        self.used = 0
        self.price = np.zeros(1024)
        self.volume = np.zeros(1024)
        self.side = np.full(1024, -1, dtype=np.int8)
        self.updated = np.zeros(1024, dtype=np.int64)
        self.nonpositive = 0
        self.stale = 0

    def apply(self, ids, times, actions, prices, volumes, sides) -> None:
        slot_of, free = self.slot_of, self.free
        price, volume, side, updated = self.price, self.volume, self.side, self.updated
        for oid, t, action, p, v, s in zip(ids, times, actions, prices, volumes, sides):
            if action == 2 or not v > 0 or not p > 0:
                slot = slot_of.pop(oid, None)
                if slot is not None:
                    side[slot] = -1
                    free.append(slot)
                if action != 2 and not p > 0:
                    self.nonpositive += 1
                continue
            slot = slot_of.get(oid)
            if slot is None:
                if free:
                    slot = free.pop()
                else:
                    if self.used == len(price):
                        self._grow()
                        price, volume, side, updated = self.price, self.volume, self.side, self.updated
                    slot = self.used
                    self.used += 1
                slot_of[oid] = slot
            price[slot] = p
            volume[slot] = v
            side[slot] = s
            updated[slot] = t

    def _grow(self) -> None:
        size = 2 * len(self.price)
        self.price = np.resize(self.price, size)
        self.volume = np.resize(self.volume, size)
        self.updated = np.resize(self.updated, size)
        self.side = np.concatenate([self.side, np.full(size - len(self.side), -1, dtype=np.int8)])

    def levels(self, side: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``count`` price levels of one side, best first: prices and the summed remaining volume."""
        live = np.flatnonzero(self.side[:self.used] == side)
        price = self.price[live]
        order = np.argsort(-price if side == 0 else price, kind="stable")
        price, volume = price[order], self.volume[live][order]
        if not len(price):
            return price, volume
        starts = np.flatnonzero(np.r_[True, price[1:] != price[:-1]])
        return price[starts][:count], np.add.reduceat(volume, starts)[:count]

    def evict_stale(self, now: int, grace: int) -> None:
        """Removes orders that a newer order of the other side has crossed, resting ``grace`` ns or more.

        A bid and an ask that cross cannot both rest on an exchange: they match within milliseconds, and the
        feed says so with changes and deletes. A crossing that outlives ``grace`` means the older order is a
        phantom whose delete the capture missed (orders deleted between the REST snapshot and the start of the
        stream).
        """
        live = self.side[:self.used]
        bids, asks = np.flatnonzero(live == 0), np.flatnonzero(live == 1)
        if not len(bids) or not len(asks):
            return
        bid_price, ask_price = self.price[bids], self.price[asks]
        if bid_price.max() < ask_price.min():
            return
        bid_time, ask_time = self.updated[bids], self.updated[asks]
        settled = now - grace
        stale = []
        for slots, prices, times, other_prices, other_times, crossed_by in (
                (asks, ask_price, ask_time, bid_price, bid_time, np.greater_equal),
                (bids, bid_price, bid_time, ask_price, ask_time, np.less_equal)):
            extreme = other_prices.max() if crossed_by is np.greater_equal else other_prices.min()
            for k in np.flatnonzero(crossed_by(extreme, prices)).tolist():
                newer = ((other_times > times[k]) & (other_times <= settled)
                         & crossed_by(other_prices, prices[k]))
                if newer.any():
                    stale.append(int(slots[k]))
        if stale:
            gone = set(stale)
            for oid in [oid for oid, slot in self.slot_of.items() if slot in gone]:
                del self.slot_of[oid]
            self.side[stale] = -1
            self.free.extend(stale)
            self.stale += len(stale)
