"""The market store: GDS-compatible market tables and Atlas's metric series, on SQLite or PostgreSQL."""

from atlas.data.store._store import MarketStore, WriteReport

__all__ = ["MarketStore", "WriteReport"]
