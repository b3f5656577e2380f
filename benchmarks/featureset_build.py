"""Building the README's example set over one year of one-minute buckets on two exchanges.

Atlas's FeatureLabelSet.build against a hand-written pandas equivalent (one SQL read per series, the same
arithmetic, the same cleaning), in one process, on the same SQLite store: cold (no cache) and cached. The script
checks that both give the same frame, and prints the times, the ratio and the peak memory of each (tracemalloc,
measured in a separate pass so that it does not slow the timed ones).

Usage: python benchmarks/featureset_build.py [--days 365]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")
SERIES = ("bitstamp_btc_usd.1min.midpoint", "bitstamp_btc_usd.1min.bid_strength_s0",
          "bitstamp_btc_usd.1min.ask_strength_s0", "itbit_btc_usd.1min.midpoint")


def fill_store(store, days: int, seed: int) -> None:
    """Metric series as the pipeline would write them, with a few gaps, for two exchanges."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=days * 1440, freq="1min", name="bucket")
    mid = 10_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, len(index))))
    values = {
        SERIES[0]: mid,
        SERIES[1]: rng.gamma(1.5, 0.5, len(index)),
        SERIES[2]: rng.gamma(1.5, 0.5, len(index)),
        SERIES[3]: mid * np.exp(rng.normal(0, 2e-4, len(index))),
    }
    for name, column in values.items():
        series = pd.Series(column, index=index)
        gaps = rng.choice(len(index), size=len(index) // 500, replace=False)  # 0.2% missing buckets
        store.write_series({name: series.drop(series.index[gaps])})


def hand_written(db: Path, start: pd.Timestamp, end: pd.Timestamp, fill: int) -> pd.DataFrame:
    """What a careful researcher writes with pandas alone."""
    con = sqlite3.connect(db)
    width = pd.Timedelta("1min")
    first, last = start - (1 + fill) * width, end + width
    raw = {}
    for name in SERIES:
        frame = pd.read_sql(
            "SELECT m.bucket, m.value FROM atlas_metric m JOIN atlas_series s ON s.series_id = m.series_id "
            "WHERE s.name = ? AND m.bucket >= ? AND m.bucket <= ? ORDER BY m.bucket", con,
            params=(name, f"{first:%Y-%m-%d %H:%M:%S}.000000", f"{last:%Y-%m-%d %H:%M:%S}.000000"))
        index = pd.to_datetime(frame["bucket"], format="ISO8601").dt.tz_localize("UTC")
        raw[name] = pd.Series(frame["value"].to_numpy(), index=index)
    con.close()
    grid = pd.date_range(first, last, freq=width)
    raw = {k: v.reindex(grid) for k, v in raw.items()}
    filled = {k: v.ffill(limit=fill) for k, v in raw.items()}  # features: the last value; labels: never filled
    mid, itbit, true_mid = filled[SERIES[0]], filled[SERIES[3]], raw[SERIES[0]]
    out = pd.DataFrame({
        "bid": filled[SERIES[1]], "ask": filled[SERIES[2]], "ret": np.log(mid / mid.shift(1)),
        "spread": mid - itbit, "label": np.log(true_mid.shift(-1) / true_mid)}).loc[start:end]
    valid = out.notna().all(axis=1).to_numpy()
    first_row, last_row = int(np.argmax(valid)), len(valid) - int(np.argmax(valid[::-1])) - 1
    return out.iloc[first_row:last_row + 1].dropna()


def timed(function):
    began = time.perf_counter()
    result = function()
    return result, time.perf_counter() - began


def peak_mib(function) -> float:
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="atlas-bench-fls-"))
    os.environ["ATLAS_HOME"] = str(home)  # the cache lives under it

    from atlas.data import MarketStore
    from atlas.data.featureset.presets import example_set

    db = home / "market.db"
    store = MarketStore(f"sqlite:///{db}")
    began = time.perf_counter()
    fill_store(store, args.days, args.seed)
    print(f"featureset build: {args.days} days of one-minute buckets on two exchanges "
          f"({args.days * 1440:,} buckets; store filled in {time.perf_counter() - began:.0f} s)")
    fls = example_set()
    start, end = START + pd.Timedelta("1h"), START + pd.Timedelta(days=args.days) - pd.Timedelta("1h")

    reference, reference_s = timed(lambda: hand_written(db, start, end, fls.max_interpolate))
    cold, cold_s = timed(lambda: fls.build(start, end, store=store, cache=False))
    _, first_cached_s = timed(lambda: fls.build(start, end, store=store))  # computes and writes the cache
    cached, cached_s = timed(lambda: fls.build(start, end, store=store))
    np.testing.assert_allclose(cold.to_numpy(), reference.to_numpy(), rtol=1e-12)
    pd.testing.assert_frame_equal(cached, cold, check_freq=False)
    memory = {"atlas": peak_mib(lambda: fls.build(start, end, store=store, cache=False)),
              "hand-written": peak_mib(lambda: hand_written(db, start, end, fls.max_interpolate))}
    print(f"rows {len(cold):,} x {cold.shape[1]} columns; results agree")
    print(f"hand-written pandas  {reference_s:6.2f} s   peak {memory['hand-written']:7.1f} MiB")
    print(f"atlas cold           {cold_s:6.2f} s   peak {memory['atlas']:7.1f} MiB   "
          f"ratio {cold_s / reference_s:.2f}x the hand-written time")
    print(f"atlas first cached   {first_cached_s:6.2f} s   (build and write the Parquet file)")
    print(f"atlas cached         {cached_s:6.2f} s   ratio {cached_s / reference_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
