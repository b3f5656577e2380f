"""Helpers of scripts/fault-drills.sh: the drills' files, and what a store holds, as one checksum.

    python scripts/fault_drills.py files DIR           bad files, good small files and a big trades file
    python scripts/fault_drills.py checksum DB         every row of every table (unchanged means unchanged)
    python scripts/fault_drills.py content DB          the data apart from random ids and times of writing
    python scripts/fault_drills.py integrity DB        PRAGMA integrity_check, and no day half-written
    python scripts/fault_drills.py wait-log DB TEXT S  waits up to S seconds for an ingest-log source holding TEXT
    python scripts/fault_drills.py copy SRC DST        a consistent copy of a store (SQLite's backup)

DB is the path of a SQLite store. Only the standard library and pandas are used, so that the checks do not
depend on the code they check.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import sys
import time
from pathlib import Path

#: The columns that are the data: no row ids, random unique ids, or times of writing.
CONTENT = {
    "orderbook": "exchange, timestamp, bids, asks",
    "trade": "exchange, timestamp, exchange_trade_id, source, price, price_currency, volume, volume_currency",
    "exchange_volume": "exchange, timestamp, exchange_volume",
    "atlas_ingest": "exchange, kind, first_timestamp, last_timestamp, rows, source",
    "atlas_watermark": "exchange, bucket_width, computed_through",
}
METRICS = ("SELECT s.name, m.bucket, m.value FROM atlas_metric m JOIN atlas_series s "
           "ON s.series_id = m.series_id")


def _connect(db: str) -> sqlite3.Connection:
    if not Path(db).is_file():
        raise SystemExit(f"no store at {db}")
    return sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True, timeout=60)


def _digest(rows_by_table: dict[str, list]) -> str:
    blob = json.dumps({name: sorted(map(repr, rows)) for name, rows in rows_by_table.items()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16] + f" {sum(map(len, rows_by_table.values()))} rows"


def checksum(db: str) -> str:
    with _connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return _digest({t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables})


def content(db: str) -> str:
    with _connect(db) as conn:
        rows = {t: conn.execute(f"SELECT {columns} FROM {t}").fetchall() for t, columns in CONTENT.items()}
        rows["atlas_metric"] = conn.execute(METRICS).fetchall()
        return _digest(rows)


def integrity(db: str) -> str:
    """``ok``, or what is wrong: SQLite's own check, and a simulated day logged for some exchanges only."""
    if not Path(db).exists():
        return "ok"  # killed before it made the store: nothing to be wrong
    with _connect(db) as conn:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            return f"integrity_check: {result}"
        logged = conn.execute("SELECT source, COUNT(DISTINCT exchange || kind) FROM atlas_ingest "
                              "WHERE source LIKE 'simulator:%' GROUP BY source").fetchall()
        counts = {count for _, count in logged}
        if len(counts) > 1:
            return f"simulated days logged unevenly: {sorted(logged)}"
        return "ok"


def wait_log(db: str, text: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Path(db).is_file():
            try:
                with _connect(db) as conn:
                    found = conn.execute("SELECT 1 FROM atlas_ingest WHERE source LIKE ?", (f"%{text}%",)).fetchone()
                if found:
                    return 0
            except sqlite3.Error:
                pass  # the store is being created
        time.sleep(0.02)
    return 1


def copy(source: str, target: str) -> None:
    with _connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def files(folder: str) -> None:
    """The drills' input files: good small trades and bars, a big trades file, and every kind of bad file."""
    import pandas as pd

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    trades = pd.DataFrame({"timestamp": pd.date_range("2030-01-01", periods=3, freq="s", tz="UTC")
                          .strftime("%Y-%m-%dT%H:%M:%SZ"), "price": [100.0, 101.0, 102.0], "volume": [1.0, 0.5, 2.0]})
    bars = pd.DataFrame({"timestamp": ["2030-01-01T00:00:00Z", "2030-01-01T01:00:00Z"], "open": [1.0, 1.0],
                         "high": [2.0, 2.0], "low": [0.5, 0.5], "close": [1.5, 1.5], "volume": [1.0, 1.0]})
    trades.to_csv(out / "good_trades.csv", index=False)
    bars.to_csv(out / "good_bars.csv", index=False)
    n = 150_000  # seconds to import: long enough to kill half-way
    big = pd.DataFrame({"timestamp": pd.date_range("2031-01-01", periods=n, freq="100ms", tz="UTC")
                       .strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "price": 100.0 + (pd.RangeIndex(n) % 997) / 100,
                        "volume": 0.01 + (pd.RangeIndex(n) % 13) / 100})
    big.to_csv(out / "big_trades.csv", index=False)
    for kind, frame in (("trades", trades), ("bars", bars)):
        bad = out / kind
        bad.mkdir(exist_ok=True)
        (bad / "empty.csv").write_bytes(b"")
        (bad / "binary.csv").write_bytes(bytes(range(256)) * 16)
        text = frame.to_csv(index=False)
        (bad / "ragged.csv").write_text(text + text.splitlines()[1] + ",7\n")
        packed = gzip.compress(pd.concat([frame] * 2000).to_csv(index=False).encode())
        (bad / "truncated.csv.gz").write_bytes(packed[:len(packed) // 2])
        frame.to_parquet(bad / "parquet_named.csv")
        frame.to_csv(bad / "csv_named.parquet", index=False)
        frame.to_json(bad / "records.json", orient="records")
        frame.to_json(bad / "json_named.csv", orient="records")
        (bad / "folder.csv").mkdir(exist_ok=True)
        for year, row in (("3000", 1), ("1500", 0)):
            odd = frame.copy()
            odd.loc[row, "timestamp"] = f"{year}-01-01T00:00:00Z"
            odd.to_csv(bad / f"year{year}.csv", index=False)
    pd.DataFrame({"timestamp": [1893456000123], "price": [1.0], "volume": [1.0]}).to_csv(
        out / "trades" / "epoch_ms.csv", index=False)


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "files":
        files(args[0])
    elif command == "checksum":
        print(checksum(args[0]))
    elif command == "content":
        print(content(args[0]))
    elif command == "integrity":
        print(integrity(args[0]))
    elif command == "wait-log":
        return wait_log(args[0], args[1], float(args[2]))
    elif command == "copy":
        copy(args[0], args[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
