"""Order-book snapshots per second through the whole metric pipeline (read, parse, compute, write).

Atlas's MetricPipeline against a plain pandas reference that computes the same numbers from the same SQLite store:
`pd.read_sql`, `json.loads` per snapshot, one long frame of levels, groupby arithmetic, `resample(...).last()`, and
`DataFrame.to_sql` into a table of the same shape. Both run in this process, pinned to one core, on the same data;
the script checks that they agree and prints both rates and their ratio.

Two cadences:
* gds:   a snapshot every 3 s (the GDS Bitstamp poller's rate), one-minute buckets: 20 snapshots per bucket.
* dense: one snapshot per one-minute bucket: every snapshot is parsed and written.

Usage: python benchmarks/metric_pipeline.py [--snapshots 100000] [--levels 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from atlas.data import BookBatch, MarketStore
from atlas.data.metrics import MetricPipeline

DEPTHS = (0.0, 1.0, 5.0)
SLIPPAGES = (0.0, 10.0, 50.0)
START = pd.Timestamp("2024-01-01", tz="UTC")


def make_books(n: int, levels: int, interval_s: float, seed: int) -> BookBatch:
    """Random-walk books with `levels` levels a side, snapshot times jittered inside their interval."""
    rng = np.random.default_rng(seed)
    seconds = (np.arange(1, n + 1) * interval_s - rng.uniform(0.001, interval_s * 0.9, n)).round(3)
    times = START + pd.to_timedelta(seconds, unit="s")
    mid = 10_000 * np.exp(np.cumsum(rng.normal(0, 2e-4 * np.sqrt(interval_s / 3), n)))
    half = rng.uniform(0.5, 5.0, n)
    gaps = rng.uniform(0.01, 4.0, (n, levels, 2)).cumsum(axis=1) - rng.uniform(0, 0.01, (n, 1, 2))
    bid_price = np.round(mid[:, None] - half[:, None] - gaps[:, :, 0] + gaps[:, :1, 0], 2)
    ask_price = np.round(mid[:, None] + half[:, None] + gaps[:, :, 1] - gaps[:, :1, 1], 2)
    volume = np.round(rng.gamma(1.5, 0.4 * (1 + np.arange(levels)[:, None] / 3), (n, levels, 2)), 8) + 1e-8
    offsets = np.arange(0, n * levels + 1, levels, dtype=np.int64)
    from atlas.data import BookSide

    return BookBatch(pd.DatetimeIndex(times), BookSide(bid_price.ravel(), volume[:, :, 0].ravel(), offsets),
                     BookSide(ask_price.ravel(), volume[:, :, 1].ravel(), offsets))


# --- the plain pandas reference -------------------------------------------------------------------------------

def reference(db: Path, exchange: str, bucket: str) -> pd.DataFrame:
    con = sqlite3.connect(db)
    frame = pd.read_sql("SELECT timestamp, bids, asks FROM orderbook WHERE exchange = ? ORDER BY timestamp",
                        con, params=(exchange,))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.tz_localize("UTC")
    records = []
    for snap, (bids, asks) in enumerate(zip(frame["bids"], frame["asks"])):
        for side, text in (("bid", bids), ("ask", asks)):
            for price, volume, _ in json.loads(text):
                records.append((snap, side, float(price), float(volume)))
    levels = pd.DataFrame(records, columns=["snap", "side", "price", "volume"])
    bid = levels[levels.side == "bid"].sort_values(["snap", "price"], ascending=[True, False])
    ask = levels[levels.side == "ask"].sort_values(["snap", "price"], ascending=[True, True])
    out = pd.DataFrame(index=frame.index)
    for name, side in (("bid", bid), ("ask", ask)):
        best = side.groupby("snap")["price"].first()
        for depth in DEPTHS:
            if depth == 0:
                out[name] = best
                continue
            before = side.groupby("snap")["volume"].cumsum() - side["volume"]
            take = (depth - before).clip(lower=0).clip(upper=side["volume"])
            cost = (take * side["price"]).groupby(side["snap"]).sum()
            filled = take.groupby(side["snap"]).sum()
            out[f"{name}_d{depth:g}"] = (cost / filled).where(filled >= depth * (1 - 1e-12))
        best_of_level = side["snap"].map(best)
        for slip in SLIPPAGES:
            near = (side["price"] >= best_of_level - slip - 1e-9) if name == "bid" else (
                side["price"] <= best_of_level + slip + 1e-9)
            out[f"{name}_strength_s{slip:g}"] = side["volume"].where(near, 0).groupby(side["snap"]).sum()
            out[f"{name}_strength_value_s{slip:g}"] = (side["volume"] * side["price"]).where(near, 0).groupby(
                side["snap"]).sum()
    for depth in DEPTHS:
        suffix = "" if depth == 0 else f"_d{depth:g}"
        out[f"midpoint{suffix}"] = (out[f"bid{suffix}"] + out[f"ask{suffix}"]) / 2
    out["spread"] = out["ask"] - out["bid"]
    for slip in SLIPPAGES:
        b, a = out[f"bid_strength_s{slip:g}"], out[f"ask_strength_s{slip:g}"]
        out[f"imbalance_s{slip:g}"] = (b - a) / (b + a)
    out.index = frame["timestamp"]
    # bucket t covers (t - width, t]: label each snapshot by the grid point at or after it, keep the last one
    # (not resample().last(), which would take the last non-missing value of each column separately)
    labels = out.index.ceil(bucket)
    sampled = out[~labels.duplicated(keep="last")].set_axis(labels[~labels.duplicated(keep="last")])
    last_complete = frame["timestamp"].iloc[-1].floor(bucket)
    sampled = sampled[sampled.index <= last_complete]
    long = sampled.stack().rename("value").reset_index()
    long.columns = ["bucket", "metric", "value"]
    long["series"] = f"{exchange.lower()}.{bucket}." + long["metric"]
    long["bucket"] = long["bucket"].dt.tz_localize(None)
    long[["series", "bucket", "value"]].to_sql("reference_metric", con, if_exists="replace", index=False)
    con.close()
    return sampled


def run(n: int, levels: int, interval_s: float, seed: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    db = folder / "market.db"
    store = MarketStore(f"sqlite:///{db}")
    store.write_orderbooks("bitstamp", make_books(n, levels, interval_s, seed))
    began = time.perf_counter()
    [report] = MetricPipeline(store, bucket="1min", depths=DEPTHS, slippages=SLIPPAGES).run()
    atlas_s = time.perf_counter() - began
    began = time.perf_counter()
    expected = reference(db, "BITSTAMP_BTC_USD", "1min")
    reference_s = time.perf_counter() - began
    for metric in ("midpoint", "midpoint_d5", "spread", "bid_strength_value_s10", "imbalance_s50"):
        got = store.read_series(f"bitstamp_btc_usd.1min.{metric}")
        want = expected[metric].dropna()
        pd.testing.assert_index_equal(got.index, want.index.as_unit("ns"), check_names=False)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, err_msg=metric)
    store.close()
    return {"snapshots": n, "buckets": report.buckets, "parsed": report.snapshots_parsed, "values": report.values,
            "atlas_s": atlas_s, "reference_s": reference_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=100_000)
    parser.add_argument("--levels", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the aim says
    print(f"metric pipeline: {args.snapshots:,} snapshots, {args.levels} levels a side, one core, SQLite")
    for cadence, interval in (("gds", 3.0), ("dense", 60.0)):
        r = run(args.snapshots, args.levels, interval, args.seed)
        atlas_rate, reference_rate = r["snapshots"] / r["atlas_s"], r["snapshots"] / r["reference_s"]
        print(f"{cadence:5s} snapshot every {interval:g}s: {r['buckets']:,} buckets, {r['parsed']:,} parsed, "
              f"{r['values']:,} values written")
        print(f"      atlas     {r['atlas_s']:7.2f} s  {atlas_rate:11,.0f} snapshots/s")
        print(f"      reference {r['reference_s']:7.2f} s  {reference_rate:11,.0f} snapshots/s")
        print(f"      ratio (atlas rate / reference rate): {atlas_rate / reference_rate:.1f}x; results agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
