"""The metric pipeline while data arrives, and two pipelines at once: driven deterministically by a hook that
runs the other side at the critical point, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas.data import MarketStore
from atlas.data.metrics import MetricPipeline
from atlas.data.store import _series

T0 = pd.Timestamp("2024-03-01 00:00:00", tz="UTC")


def trades(start: pd.Timestamp, n: int, prefix: str, step: str = "20s") -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.date_range(start, periods=n, freq=step).as_unit("ns"),
                         "price": 100.0 + np.arange(n) % 5, "volume": np.full(n, 0.5),
                         "exchange_trade_id": [f"{prefix}{i}" for i in range(n)]})


def trade_count(store: MarketStore) -> float:
    return store.read_series("bitstamp_btc_usd.1min.trade_count").sum()


def assert_as_uninterrupted(store: MarketStore, folder, *parts: pd.DataFrame) -> None:
    """The store's trade metrics equal one run over all the trades in a fresh store."""
    with MarketStore(f"sqlite:///{folder / 'uninterrupted.db'}") as fresh:
        fresh.write_trades("bitstamp", pd.concat(parts).sort_values("timestamp", kind="stable"))
        MetricPipeline(fresh, bucket="1min", depths=(0,), slippages=()).run()
        for metric in ("trade_count", "volume", "vwap"):
            name = f"bitstamp_btc_usd.1min.{metric}"
            pd.testing.assert_series_equal(store.read_series(name), fresh.read_series(name))


def test_trades_imported_while_metrics_are_computed_reach_the_metrics(store_url, tmp_path, monkeypatch):
    """Fault: a metrics run overwrote the watermark that a concurrent import lowered, so the imported trades
    never reached the metrics and later runs said "already up to date"."""
    store = MarketStore(store_url)
    store.write_trades("bitstamp", trades(T0, 360, "a"))                      # two hours, 3 a minute
    pipeline = MetricPipeline(store, bucket="1min", depths=(0,), slippages=())
    real = MetricPipeline._compute
    late = trades(T0 + pd.Timedelta("30min"), 60, "late", step="10s")           # arrives mid-run, earlier in time

    def import_meanwhile(self, exchange, grid):
        result = real(self, exchange, grid)  # the run has read its data: now the import commits
        if not getattr(import_meanwhile, "done", False):
            import_meanwhile.done = True
            with MarketStore(store_url) as other:
                other.write_trades("bitstamp", late)
        return result

    monkeypatch.setattr(MetricPipeline, "_compute", import_meanwhile)
    first = pipeline.run()[0]
    assert first.buckets > 0
    assert store.watermark("bitstamp", "1min") < T0 + pd.Timedelta("30min")  # the late minutes stay dirty
    monkeypatch.setattr(MetricPipeline, "_compute", real)
    second = pipeline.run()[0]
    assert second.buckets > 0 and second.first <= T0 + pd.Timedelta("30min")
    assert trade_count(store) == 360 + 60 - 2  # the last two trades lie in a bucket that has not ended
    assert_as_uninterrupted(store, tmp_path, trades(T0, 360, "a"), late)
    assert pipeline.run()[0].buckets == 0  # and now it is up to date
    store.close()


def test_an_import_after_a_run_planned_but_before_it_wrote_lowers_the_watermark_it_sets(store_url, tmp_path,
                                                                                        monkeypatch):
    """The same race for data arriving inside the chunk being computed (the watermark had not moved yet)."""
    store = MarketStore(store_url)
    store.write_trades("bitstamp", trades(T0, 180, "a"))
    pipeline = MetricPipeline(store, bucket="1min", depths=(0,), slippages=())
    pipeline.run()
    store.write_trades("bitstamp", trades(T0 + pd.Timedelta("1h"), 180, "b"))  # the next hour
    real = MetricPipeline._compute

    def import_meanwhile(self, exchange, grid):
        result = real(self, exchange, grid)
        with MarketStore(store_url) as other:  # a trade inside the range this run is computing
            other.write_trades("bitstamp", trades(T0 + pd.Timedelta("75min"), 1, "inside"))
        return result

    monkeypatch.setattr(MetricPipeline, "_compute", import_meanwhile)
    pipeline.run()
    monkeypatch.setattr(MetricPipeline, "_compute", real)
    pipeline.run()
    assert_as_uninterrupted(store, tmp_path, trades(T0, 180, "a"), trades(T0 + pd.Timedelta("1h"), 180, "b"),
                            trades(T0 + pd.Timedelta("75min"), 1, "inside"))
    store.close()


def test_two_metrics_runs_at_once_both_register_the_same_series_without_a_crash(store_url, tmp_path, monkeypatch):
    """Fault: two runs at once crashed with UNIQUE constraint failed: atlas_series.name."""
    with MarketStore(store_url) as store:
        store.write_trades("bitstamp", trades(T0, 120, "a"))
    real = _series._lookup
    calls = {"n": 0}

    def other_run_registers_first(conn, names):
        found = real(conn, names)
        calls["n"] += 1
        if calls["n"] == 1:  # run A looked the series up and found none: run B registers them all and commits
            monkeypatch.setattr(_series, "_lookup", real)
            with MarketStore(store_url) as b:
                MetricPipeline(b, bucket="1min", depths=(0,), slippages=()).run()
            monkeypatch.setattr(_series, "_lookup", other_run_registers_first)
        return found

    monkeypatch.setattr(_series, "_lookup", other_run_registers_first)
    with MarketStore(store_url) as a:
        report = MetricPipeline(a, bucket="1min", depths=(0,), slippages=()).run()[0]
        assert report.buckets > 0
        registry = a.series_registry()
        assert registry["name"].is_unique and len(registry) == 5  # trade metrics: no books here
        assert_as_uninterrupted(a, tmp_path, trades(T0, 120, "a"))


@pytest.mark.parametrize("first", ["import", "metrics"])
def test_a_run_and_an_import_agree_whichever_commits_first(store_url, tmp_path, first, monkeypatch):
    """Whichever side commits first, the metrics end up equal to a run over all the data."""
    store = MarketStore(store_url)
    store.write_trades("bitstamp", trades(T0, 180, "a"))
    pipeline = MetricPipeline(store, bucket="1min", depths=(0,), slippages=())
    late = trades(T0 + pd.Timedelta("10min"), 30, "late", step="7s")
    if first == "import":
        real = MetricPipeline._compute

        def import_first(self, exchange, grid):
            with MarketStore(store_url) as other:
                other.write_trades("bitstamp", late)
            monkeypatch.setattr(MetricPipeline, "_compute", real)
            return real(self, exchange, grid)

        monkeypatch.setattr(MetricPipeline, "_compute", import_first)
        pipeline.run()
    else:
        pipeline.run()
        store.write_trades("bitstamp", late)
    pipeline.run()
    assert_as_uninterrupted(store, tmp_path, trades(T0, 180, "a"), late)
    store.close()
