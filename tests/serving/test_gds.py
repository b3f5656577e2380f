"""GDS order books in Redis: written as Gryphon Data Service writes them, read and checked as the store checks them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from atlas.data.orderbooks import BookBatch
from atlas.exceptions import DataValidationError
from serving.gds import (
    MAX_BOOK_AGE,
    OrderBook,
    is_stale,
    orderbook_key,
    parse_orderbook,
    read_orderbooks,
    write_orderbook,
)

T0 = datetime(2024, 1, 1, 0, 10, 0, 250000, tzinfo=UTC)
BIDS = [(100.0, 1.0), (99.5, 2.0), (99.0, 0.5)]
ASKS = [(100.5, 1.5), (101.0, 3.0)]


def gds_text(exchange="ITBIT_BTC_USD", timestamp=1704067800.25, bids=None, asks=None) -> str:
    bids = [["100", "1", ""]] if bids is None else bids
    asks = [["101", "1", ""]] if asks is None else asks
    return json.dumps({"timestamp": timestamp, exchange: {"bids": bids, "asks": asks}})


def test_the_key_is_gryphons():
    assert orderbook_key("bitstamp") == "bitstamp_btc_usd_orderbook"
    assert orderbook_key("BITSTAMP_BTC_EUR") == "bitstamp_btc_eur_orderbook"
    assert orderbook_key("itbit_btc_usd") == "itbit_btc_usd_orderbook"


def test_a_book_written_as_gds_writes_it_reads_back(redis_client):
    key = write_orderbook(redis_client, "bitstamp", T0, BIDS[::-1], ASKS)
    raw = json.loads(redis_client.get(key))
    assert set(raw) == {"timestamp", "BITSTAMP_BTC_USD"} and raw["timestamp"] == T0.timestamp()
    assert raw["BITSTAMP_BTC_USD"]["bids"][0] == ["99.0", "0.5", ""]  # strings, an empty order id: as GDS
    books = read_orderbooks(redis_client, ["bitstamp", "itbit"])
    assert books == {"BITSTAMP_BTC_USD": OrderBook("BITSTAMP_BTC_USD", T0, tuple(BIDS), tuple(ASKS)),
                     "ITBIT_BTC_USD": None}
    book = books["BITSTAMP_BTC_USD"]
    assert (book.best_bid, book.best_ask, book.midpoint, book.spread) == (100.0, 100.5, 100.25, 0.5)


def test_a_venue_the_user_added_is_read_from_redis_too(redis_client):
    """The names come from a model, whose venue the store accepted: serving checks their form only."""
    assert orderbook_key("binance_btc_usdt") == "binance_btc_usdt_orderbook"
    write_orderbook(redis_client, "binance_btc_usdt", T0, BIDS, ASKS)
    book = read_orderbooks(redis_client, ["binance_btc_usdt"])["BINANCE_BTC_USDT"]
    assert book is not None and book.best_bid == 100.0


def test_numbers_unsorted_levels_and_order_ids_are_read_as_gryphons_pollers_write_them():
    """A websocket poller writes levels in dict order; Kraken's third element is a timestamp; some APIs give numbers."""
    text = gds_text(bids=[["99", 2, ""], [100, "1.5", 1442880257]], asks=[["102", "1", ""], ["101.5", "2", "x"]])
    book = parse_orderbook(text.encode(), "itbit")
    assert book.bids == ((100.0, 1.5), (99.0, 2.0)) and book.asks == ((101.5, 2.0), (102.0, 1.0))
    assert book.timestamp == datetime(2024, 1, 1, 0, 10, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize("raw, rule", [
    (b"not json", "malformed_json"),
    (b"[1, 2]", "malformed_json"),
    (json.dumps({"ITBIT_BTC_USD": {"bids": [], "asks": []}}), "bad_timestamp"),
    (gds_text(timestamp="soon"), "bad_timestamp"),
    (gds_text(exchange="BITSTAMP_BTC_USD"), "missing_exchange"),
    (json.dumps({"timestamp": 1, "ITBIT_BTC_USD": {"bids": []}}), "malformed_json"),
    (gds_text(bids=[["abc", "1", ""]]), "bad_level"),
    (gds_text(bids=[["100"]]), "bad_level"),
    (gds_text(asks=[[None, "1", ""]]), "bad_level"),
    (gds_text(bids=[["101.5", "1", ""]]), "crossed_book"),
    (gds_text(bids=[["-1", "1", ""]]), "non_positive_price"),
    (gds_text(asks=[["101", "0", ""]]), "non_positive_volume"),
    (gds_text(asks=[]), "empty_side"),
])
def test_a_broken_book_is_an_error_naming_its_rule(raw, rule):
    with pytest.raises(DataValidationError, match=f"ITBIT_BTC_USD order book in Redis .*rule {rule}") as caught:
        parse_orderbook(raw, "itbit")
    assert caught.value.rule == rule


def test_reading_skips_and_reports_broken_books_without_raising(redis_client):
    write_orderbook(redis_client, "bitstamp", T0, BIDS, ASKS)
    redis_client.set(orderbook_key("itbit"), gds_text(bids=[["102", "1", ""]]))
    redis_client.set(orderbook_key("coinbase"), b"\xff garbage")
    errors = {}
    books = read_orderbooks(redis_client, ["bitstamp", "itbit", "coinbase", "gemini"], errors=errors)
    assert books["BITSTAMP_BTC_USD"] is not None
    assert [books[name] for name in ("ITBIT_BTC_USD", "COINBASE_BTC_USD", "GEMINI_BTC_USD")] == [None] * 3
    assert {name: error.rule for name, error in errors.items()} == {"ITBIT_BTC_USD": "crossed_book",
                                                                   "COINBASE_BTC_USD": "malformed_json"}
    assert read_orderbooks(redis_client, []) == {}


def test_a_book_is_stale_from_ten_seconds_as_gryphon_rules():
    book = parse_orderbook(gds_text(), "itbit")
    assert MAX_BOOK_AGE == timedelta(seconds=10)
    assert not is_stale(book, book.timestamp + timedelta(seconds=9.999))
    assert is_stale(book, book.timestamp + timedelta(seconds=10))
    assert is_stale(book)  # the clock's now: the book is from 2024


@pytest.mark.parametrize("bids, asks", [
    ([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.5)]),
    ([(101.0, 1.0)], [(100.0, 1.0)]),
    ([(100.0, 0.0)], [(101.0, 1.0)]),
    ([(0.0, 1.0)], [(101.0, 1.0)]),
    ([], [(101.0, 1.0)]),
])
def test_the_store_and_the_redis_reader_agree_on_every_book(bids, asks):
    """A book the market store accepts is accepted here with the same levels; one it refuses, for the same rule."""
    batch = BookBatch.from_levels(pd.DatetimeIndex([T0]), [bids], [asks])
    store_rule = batch.invalid_rows().tolist()
    bids_json, asks_json = batch.to_json()
    text = gds_text(bids=json.loads(bids_json[0]), asks=json.loads(asks_json[0]))
    if not store_rule:
        book = parse_orderbook(text, "itbit")
        assert book.bids == tuple(zip(batch.bids.price, batch.bids.volume)) and book.asks == tuple(asks)
    else:
        with pytest.raises(DataValidationError) as caught:
            parse_orderbook(text, "itbit")
        assert [caught.value.rule] == store_rule
