"""Gaps are visible: the store names every run of missing buckets, and `atlas data info` the largest ones."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.data import MarketStore
from atlas.data.store import _series

HOURS = pd.date_range("2024-01-04 00:00", "2024-01-09 23:00", freq="1h", tz="UTC")  # Thursday to Tuesday
WEEKEND = (HOURS >= "2024-01-06 00:00") & (HOURS <= "2024-01-07 23:00")  # Saturday and Sunday: 48 buckets
DROPPED = HOURS == pd.Timestamp("2024-01-08 13:00", tz="UTC")  # one bucket on Monday


@pytest.fixture
def gapped(store_url) -> Iterator[MarketStore]:
    """Three hourly series on each store backend: a weekend and one more bucket missing, the weekend only, none."""
    store = MarketStore(store_url)
    store.write_series({
        "cme_es_usd.1h.close": pd.Series(4000.0, index=HOURS[~WEEKEND & ~DROPPED]),
        "cme_es_usd.1h.open": pd.Series(4000.0, index=HOURS[~WEEKEND]),
        "cme_es_usd.1h.volume": pd.Series(3.0, index=HOURS),  # complete
    })
    yield store
    store.close()


def test_a_planted_weekend_gap_is_reported_exactly(gapped):
    gaps = gapped.series_gaps()

    weekend = gaps.iloc[0]
    assert (weekend["start"], weekend["end"]) == (pd.Timestamp("2024-01-06 00:00", tz="UTC"),
                                                  pd.Timestamp("2024-01-07 23:00", tz="UTC"))
    assert weekend["buckets"] == 48 and weekend["duration"] == pd.Timedelta("2D")
    assert gaps[["series", "buckets"]].values.tolist() == [
        ["cme_es_usd.1h.close", 48], ["cme_es_usd.1h.open", 48], ["cme_es_usd.1h.close", 1]]
    monday = gaps.iloc[2]
    assert monday["start"] == monday["end"] == pd.Timestamp("2024-01-08 13:00", tz="UTC")
    assert monday["duration"] == pd.Timedelta("1h")
    summary = gapped.series_summary().set_index("series")["missing"]
    assert gaps.groupby("series")["buckets"].sum().to_dict() == summary[summary > 0].to_dict()
    assert gapped.series_gaps(["cme_es_usd.1h.volume"]).empty


def test_only_the_bucket_column_of_series_that_lack_buckets_is_read(gapped, monkeypatch):
    queries = []
    fetch = _series.fetch_columns

    def counted(conn, sql, params, width):
        queries.append((sql, width))
        return fetch(conn, sql, params, width)

    monkeypatch.setattr(_series, "fetch_columns", counted)
    gapped.series_gaps()
    assert len(queries) == 2 and all(width == 1 and "SELECT bucket FROM" in sql for sql, width in queries)


def test_atlas_data_info_names_the_largest_gaps(gapped):
    result = CliRunner().invoke(main, ["data", "info", "--store", gapped.url], prog_name="atlas")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    close = next(line for line in lines if line.lstrip().startswith("cme_es_usd.1h.close"))
    assert close.rstrip().endswith("48 (2d) 2024-01-06 00:00 .. 2024-01-07 23:00")
    volume = next(line for line in lines if line.lstrip().startswith("cme_es_usd.1h.volume"))
    assert volume.rstrip().endswith("-")
    table = lines[lines.index("Largest gaps (first and last missing bucket)") + 1:]
    assert table[0].split() == ["series", "from", "to", "buckets", "duration"]
    assert table[1].split() == ["cme_es_usd.1h.{close,open}", "2024-01-06", "00:00", "2024-01-07", "23:00", "48",
                                "2d"]
    assert table[2].split() == ["cme_es_usd.1h.close", "2024-01-08", "13:00", "2024-01-08", "13:00", "1", "1h"]
