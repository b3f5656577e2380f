"""Reading and writing Atlas's metric series, and the watermarks that make the metric pipeline incremental."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select, text

from atlas.data.buckets import parse_width
from atlas.data.series import SeriesKey
from atlas.data.store import _schema as schema
from atlas.data.store._bulk import fetch_columns, insert_frame, parse_sql_times, sql_times, time_range_clause


def series_ids(conn: Connection, keys: list[SeriesKey], *, create: bool) -> dict[str, int]:
    """The id of each series, registering the missing ones when ``create``."""
    names = [k.name for k in keys]
    found = _lookup(conn, names)
    missing = [k for k in keys if k.name not in found]
    if missing and create:
        frame = pd.DataFrame({"name": [k.name for k in missing], "exchange": [k.exchange.name for k in missing],
                              "bucket_width": [k.width for k in missing], "metric": [k.metric for k in missing]})
        insert_frame(conn, schema.series, frame)
        found |= _lookup(conn, [k.name for k in missing])
    return found


def _lookup(conn: Connection, names: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        rows = conn.execute(select(schema.series.c.name, schema.series.c.series_id).where(
            schema.series.c.name.in_(chunk)))
        found |= dict(rows.all())
    return found


def write_values(conn: Connection, values: dict[SeriesKey, pd.Series]) -> int:
    """Upserts each series' values (NaN values are not stored); returns the number of values written."""
    values = {k: v.dropna() for k, v in values.items()}
    values = {k: v for k, v in values.items() if len(v)}
    if not values:
        return 0
    ids = series_ids(conn, list(values), create=True)
    texts: dict = {}  # series of one exchange share their bucket index: format it once
    frame = {
        "series_id": np.concatenate([np.full(len(v), ids[k.name], dtype=np.int64) for k, v in values.items()]),
        "bucket": np.concatenate([_times(v.index, texts) for v in values.values()]),
        "value": np.concatenate([v.to_numpy(dtype=np.float64) for v in values.values()]),
    }
    insert_frame(conn, schema.metric, frame, conflict="update", keys=("series_id", "bucket"), update=("value",))
    return len(frame["value"])


def _times(index: pd.DatetimeIndex, cache: dict) -> np.ndarray:
    key = (len(index), index[0], index[-1]) if len(index) else None
    hit = cache.get(key)
    if hit is None or not hit[0].equals(index):
        hit = cache[key] = (index, sql_times(index))
    return hit[1]


def read_values(conn: Connection, name: str, start=None, end=None) -> pd.Series:
    """One series' values with ``start <= bucket <= end``."""
    params: dict = {"name": name}
    clause = time_range_clause("m.bucket", start, end, params, include_start=True)
    sql = ("SELECT m.bucket, m.value FROM atlas_metric m JOIN atlas_series s ON s.series_id = m.series_id "
           f"WHERE s.name = :name{clause} ORDER BY m.bucket")
    buckets, values = fetch_columns(conn, sql, params, 2)
    if not buckets:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="bucket").as_unit("ns"), dtype=float,
                         name=name)
    index = parse_sql_times(buckets).rename("bucket")
    return pd.Series(np.asarray(values, dtype=np.float64), index=index, name=name)


def registry(conn: Connection) -> pd.DataFrame:
    rows = conn.execute(select(schema.series.c.name, schema.series.c.exchange, schema.series.c.bucket_width,
                               schema.series.c.metric).order_by(schema.series.c.name)).all()
    return pd.DataFrame(rows, columns=["name", "exchange", "bucket_width", "metric"])


def summary(conn: Connection) -> pd.DataFrame:
    """Per series: first and last bucket, values, expected buckets between them, missing ones and coverage."""
    sql = ("SELECT s.name, s.exchange, s.bucket_width, s.metric, MIN(m.bucket), MAX(m.bucket), COUNT(*) "
           "FROM atlas_metric m JOIN atlas_series s ON s.series_id = m.series_id "
           "GROUP BY s.name, s.exchange, s.bucket_width, s.metric ORDER BY s.name")
    rows = conn.execute(text(sql)).all()
    columns = ["series", "exchange", "bucket_width", "metric", "first", "last", "values"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame.assign(expected=[], missing=[], coverage=[])
    frame["first"] = parse_sql_times(frame["first"].tolist())
    frame["last"] = parse_sql_times(frame["last"].tolist())
    widths = frame["bucket_width"].map(lambda w: parse_width(w).value)
    frame["expected"] = (frame["last"].astype("int64") - frame["first"].astype("int64")) // widths + 1
    frame["missing"] = frame["expected"] - frame["values"]
    frame["coverage"] = frame["values"] / frame["expected"]
    return frame


def get_watermark(conn: Connection, exchange: str, width: str) -> pd.Timestamp | None:
    w = schema.watermark.c
    value = conn.execute(select(w.computed_through).where(w.exchange == exchange, w.bucket_width == width)).scalar()
    return None if value is None else pd.Timestamp(value).tz_localize("UTC")


def set_watermark(conn: Connection, exchange: str, width: str, through: pd.Timestamp) -> None:
    w = schema.watermark
    naive = through.tz_convert("UTC").tz_localize(None).to_pydatetime()
    updated = conn.execute(w.update().where(w.c.exchange == exchange, w.c.bucket_width == width).values(
        computed_through=naive)).rowcount
    if not updated:
        conn.execute(w.insert().values(exchange=exchange, bucket_width=width, computed_through=naive))


def lower_watermarks(conn: Connection, exchange: str, since: pd.Timestamp) -> None:
    """New data from ``since`` on: every bucket width must recompute the buckets from the one holding ``since``."""
    w = schema.watermark
    rows = conn.execute(select(w.c.bucket_width, w.c.computed_through).where(w.c.exchange == exchange)).all()
    for width, through in rows:
        step = parse_width(width)
        first_dirty = pd.Timestamp(-((-since.value) // step.value) * step.value, tz="UTC")
        if pd.Timestamp(through).tz_localize("UTC") >= first_dirty:
            set_watermark(conn, exchange, width, first_dirty - step)


def data_version(conn: Connection, exchanges: list[str] | None = None, start=None, end=None) -> int:
    i = schema.ingest.c
    query = select(func.coalesce(func.max(i.ingest_id), 0))
    if exchanges is not None:
        query = query.where(i.exchange.in_(exchanges))
    if start is not None:
        query = query.where(i.last_timestamp >= start.tz_convert("UTC").tz_localize(None).to_pydatetime())
    if end is not None:
        query = query.where(i.first_timestamp <= end.tz_convert("UTC").tz_localize(None).to_pydatetime())
    return int(conn.execute(query).scalar())
