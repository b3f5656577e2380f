"""The order books that Gryphon Data Service keeps in Redis, read the way Gryphon's exchanges read them.

GDS's pollers (``gryphon/data_service/pollers/orderbook/orderbook_poller.py`` and the websocket ones) SET one key per
exchange, ``'%s_orderbook' % exchange_name.lower()`` (``bitstamp_btc_usd_orderbook``), to the JSON text::

    {"timestamp": 1704067200.123, "BITSTAMP_BTC_USD": {"bids": [["42000.5", "0.75", ""], ...], "asks": [...]}}

``timestamp`` is when GDS fetched the book (epoch seconds); each level is ``[price, volume, order_id]`` as the
exchange's API gave it (numeric strings mostly, numbers sometimes; the id often ``""``); a websocket poller may
write the levels unsorted. Gryphon refuses a cached book 10 seconds old or older
(``gryphon/lib/exchange/base.pyx``, ``cached_orderbook``): :data:`MAX_BOOK_AGE` and :func:`is_stale`.

A book is checked with the rules of the market store (``atlas.data.orderbooks``), so a book valid in the store is
valid here, plus the rules of the Redis record itself (:data:`RULES`).

Example:
    >>> raw = ('{"timestamp": 1704067200.5, "ITBIT_BTC_USD": {"bids": [["99", "2", ""], ["100", "1", ""]],'
    ...        ' "asks": [["101", "1.5", ""]]}}')
    >>> book = parse_orderbook(raw, "itbit")
    >>> book.bids, book.asks, book.midpoint
    (((100.0, 1.0), (99.0, 2.0)), ((101.0, 1.5),), 100.5)
    >>> parse_orderbook(raw.replace('"101"', '"99.5"'), "itbit")
    Traceback (most recent call last):
    ...
    atlas.exceptions.DataValidationError: ITBIT_BTC_USD order book in Redis is crossed: ... (rule crossed_book)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import pandas as pd

from atlas.data.exchanges import Exchange
from atlas.data.orderbooks import RULES as STORE_RULES
from atlas.data.orderbooks import BookBatch
from atlas.exceptions import DataValidationError

logger = logging.getLogger(__name__)

#: Gryphon's rule: a cached order book this old or older is not used.
MAX_BOOK_AGE = timedelta(seconds=10)

#: Why a Redis order book is unusable, by rule name: the store's rules and those of the Redis record.
RULES = {
    **STORE_RULES,
    "malformed_json": "is not a JSON object {timestamp, <EXCHANGE>: {bids, asks}}",
    "bad_timestamp": "has no 'timestamp' of epoch seconds",
    "missing_exchange": "has no entry named after its exchange",
    "bad_level": "has a level that is not [price, volume, order_id] of numbers or numeric strings",
}


@dataclass(frozen=True)
class OrderBook:
    """One exchange's order book as GDS last wrote it.

    Attributes:
        exchange: the GDS name (``BITSTAMP_BTC_USD``).
        timestamp: when GDS fetched it (UTC).
        bids: ``(price, volume)`` levels, highest price first; asks: lowest price first.
    """

    exchange: str
    timestamp: datetime
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]

    @property
    def best_bid(self) -> float:
        return self.bids[0][0]

    @property
    def best_ask(self) -> float:
        return self.asks[0][0]

    @property
    def midpoint(self) -> float:
        return (self.best_bid + self.best_ask) / 2

    @property
    def spread(self) -> float:
        return self.best_ask - self.best_bid

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(UTC)) - self.timestamp


def orderbook_key(exchange: str | Exchange) -> str:
    """GDS's Redis key of an exchange's book: ``orderbook_key("bitstamp") == "bitstamp_btc_usd_orderbook"``."""
    return f"{Exchange.read(exchange).key}_orderbook"


def is_stale(book: OrderBook, now: datetime | None = None) -> bool:
    """Whether Gryphon would refuse the book: fetched :data:`MAX_BOOK_AGE` (10 s) ago or earlier."""
    return book.age(now) >= MAX_BOOK_AGE


def encode_orderbook(exchange: str | Exchange, timestamp: datetime | float, bids: Sequence[Sequence],
                     asks: Sequence[Sequence]) -> str:
    """The JSON text GDS writes: levels as ``[price, volume, order_id]``, numbers as strings, the id ``""``."""
    name = Exchange.read(exchange).name
    seconds = timestamp.timestamp() if isinstance(timestamp, datetime) else float(timestamp)

    def levels(side: Sequence[Sequence]) -> list[list[str]]:
        return [[str(level[0]), str(level[1]), str(level[2]) if len(level) > 2 else ""] for level in side]

    return json.dumps({"timestamp": seconds, name: {"bids": levels(bids), "asks": levels(asks)}},
                      ensure_ascii=False)


def write_orderbook(client, exchange: str | Exchange, timestamp: datetime | float, bids: Sequence[Sequence],
                    asks: Sequence[Sequence]) -> str:
    """SETs a book the way GDS does (for tests and demos; GDS itself writes them in production).

    Args:
        client: a ``redis.Redis``.
        timestamp: when the book was fetched: a timezone-aware datetime or epoch seconds.
        bids, asks: ``(price, volume[, order_id])`` levels.

    Returns:
        The key written.
    """
    key = orderbook_key(exchange)
    client.set(key, encode_orderbook(exchange, timestamp, bids, asks))
    return key


def parse_orderbook(raw: bytes | str, exchange: str | Exchange) -> OrderBook:
    """Reads one GDS order book record; pure.

    Raises:
        DataValidationError: the record breaks a rule of :data:`RULES`; ``error.rule`` names it, so a caller can
            count the books it skips.
    """
    name = Exchange.read(exchange).name
    try:
        record = json.loads(raw)
    except (ValueError, TypeError):
        record = None
    if not isinstance(record, dict):
        _invalid(name, "malformed_json", f"got {_excerpt(raw)}")
    stamp = record.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float | str) or not _finite(stamp):
        _invalid(name, "bad_timestamp", f"got timestamp={stamp!r}")
    if name not in record:
        _invalid(name, "missing_exchange", f"expected key {name!r}, got keys {sorted(record)}")
    book = record[name]
    sides = [book.get(side) if isinstance(book, dict) else None for side in ("bids", "asks")]
    if not all(isinstance(side, list) for side in sides):
        _invalid(name, "malformed_json", f"{name} must hold lists 'bids' and 'asks', got {_excerpt(book)}")
    for side, levels in zip(("bids", "asks"), sides):
        for position, level in enumerate(levels):
            if not (isinstance(level, list | tuple) and len(level) >= 2 and _number(level[0]) and _number(level[1])):
                _invalid(name, "bad_level", f"{side}[{position}] is {level!r}")
    timestamp = datetime.fromtimestamp(float(stamp), UTC)
    batch = BookBatch.from_levels(pd.DatetimeIndex([timestamp]), [sides[0]], [sides[1]])
    broken = batch.invalid_rows()
    if len(broken):
        rule = broken.iloc[0]
        _invalid(name, rule, f"best bid {batch.best_bid[0]}, best ask {batch.best_ask[0]}")
    return OrderBook(name, timestamp, _levels(batch.bids), _levels(batch.asks))


def read_orderbooks(client, exchanges: Iterable[str | Exchange], *,
                    errors: dict[str, DataValidationError] | None = None) -> dict[str, OrderBook | None]:
    """Every exchange's current book from GDS's keys, in one ``MGET``.

    A missing key and a book that breaks a rule both give None: the caller skips it. A broken one is logged, and
    recorded in ``errors`` (GDS name -> the error, whose ``rule`` names the rule) when given.

    Returns:
        GDS name (``BITSTAMP_BTC_USD``) -> its book, or None.
    """
    parsed = [Exchange.read(exchange) for exchange in exchanges]
    if not parsed:
        return {}
    raws = client.mget([orderbook_key(exchange) for exchange in parsed])
    books: dict[str, OrderBook | None] = {}
    for exchange, raw in zip(parsed, raws):
        books[exchange.name] = None
        if raw is None:
            continue
        try:
            books[exchange.name] = parse_orderbook(raw, exchange)
        except DataValidationError as error:
            logger.warning("skipping %s: %s", orderbook_key(exchange), error)
            if errors is not None:
                errors[exchange.name] = error
    return books


def _invalid(name: str, rule: str, detail: str) -> NoReturn:
    msg = f"{name} order book in Redis {RULES[rule]}: {detail} (rule {rule})"
    raise DataValidationError(msg, rule=rule)


def _excerpt(value) -> str:
    return repr(value if isinstance(value, dict | list) else str(value)[:80])[:120]


def _number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _finite(value) -> bool:
    return _number(value) and math.isfinite(float(value))


def _levels(side) -> tuple[tuple[float, float], ...]:
    return tuple(zip(side.price.tolist(), side.volume.tolist()))
