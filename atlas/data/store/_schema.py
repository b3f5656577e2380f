"""Table definitions: the Gryphon Data Service market tables, and Atlas's own metric-series tables.

The three GDS tables keep GDS's table and column names and its ``(timestamp, exchange)`` index, so Atlas reads a
real GDS database by URL. Index names are prefixed by table because PostgreSQL wants them unique per schema.
Atlas adds an ``(exchange, timestamp)`` index to its own copy for per-exchange range reads.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Unicode,
    UnicodeText,
    UniqueConstraint,
)

#: The GDS tables (market data).
gds_metadata = MetaData()
#: Atlas's own tables (metric series, watermarks, the ingest log).
atlas_metadata = MetaData()

orderbook = Table(
    "orderbook",
    gds_metadata,
    Column("orderbook_id", Integer, primary_key=True),
    Column("unique_id", Unicode(64), nullable=False),
    Column("exchange", Unicode(64), nullable=False),
    Column("timestamp", DateTime, nullable=True),
    Column("time_created", DateTime, nullable=False),
    Column("bids", UnicodeText),
    Column("asks", UnicodeText),
    Index("idx_orderbook_timestamp_exchange", "timestamp", "exchange"),
    Index("idx_orderbook_exchange_timestamp", "exchange", "timestamp"),
)

trade = Table(
    "trade",
    gds_metadata,
    Column("trade_id", Integer, primary_key=True),
    Column("unique_id", Unicode(64), nullable=False),
    Column("exchange", Unicode(64), nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("time_created", DateTime, nullable=False),
    Column("exchange_trade_id", Unicode(64), nullable=True),
    Column("source", Unicode(64), nullable=False),
    Column("price", Numeric(precision=20, scale=10, asdecimal=False)),
    Column("price_currency", Unicode(3)),
    Column("volume", Numeric(precision=20, scale=10, asdecimal=False)),
    Column("volume_currency", Unicode(3)),
    UniqueConstraint("exchange", "exchange_trade_id", name="uniq_exchange_exchange_trade_id"),
    Index("idx_trade_timestamp_exchange", "timestamp", "exchange"),
    Index("idx_trade_exchange_timestamp", "exchange", "timestamp"),
)

exchange_volume = Table(
    "exchange_volume",
    gds_metadata,
    Column("exchange_volume_id", Integer, primary_key=True),
    Column("unique_id", Unicode(64), nullable=False),
    Column("exchange", Unicode(64), nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("time_created", DateTime, nullable=False),
    Column("exchange_volume", Numeric(precision=20, scale=10, asdecimal=False)),
    Index("idx_exchange_volume_timestamp_exchange", "timestamp", "exchange"),
)

series = Table(
    "atlas_series",
    atlas_metadata,
    Column("series_id", Integer, primary_key=True),
    Column("name", Unicode(255), nullable=False, unique=True),
    Column("exchange", Unicode(64), nullable=False),
    Column("bucket_width", Unicode(16), nullable=False),
    Column("metric", Unicode(128), nullable=False),
)

metric = Table(
    "atlas_metric",
    atlas_metadata,
    Column("series_id", Integer, ForeignKey("atlas_series.series_id"), nullable=False),
    Column("bucket", DateTime, nullable=False),
    Column("value", Float, nullable=False),
    PrimaryKeyConstraint("series_id", "bucket", name="pk_atlas_metric"),
    sqlite_with_rowid=False,
)

watermark = Table(
    "atlas_watermark",
    atlas_metadata,
    Column("exchange", Unicode(64), nullable=False),
    Column("bucket_width", Unicode(16), nullable=False),
    Column("computed_through", DateTime, nullable=False),
    PrimaryKeyConstraint("exchange", "bucket_width", name="pk_atlas_watermark"),
)

#: The store's own facts, written once when it is created: ``store_id`` (a random identity that a cache can key
#: by, so a store deleted and made again at the same URL is never taken for the old one).
store_facts = Table(
    "atlas_store",
    atlas_metadata,
    Column("key", Unicode(64), primary_key=True),
    Column("value", Unicode(255), nullable=False),
)

ingest = Table(
    "atlas_ingest",
    atlas_metadata,
    Column("ingest_id", Integer, primary_key=True),
    Column("exchange", Unicode(64), nullable=False),
    Column("kind", Unicode(32), nullable=False),
    Column("first_timestamp", DateTime, nullable=False),
    Column("last_timestamp", DateTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("source", Unicode(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

MARKET_TABLES = {"orderbook": orderbook, "trade": trade, "exchange_volume": exchange_volume}
