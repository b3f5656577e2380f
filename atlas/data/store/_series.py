"""Reading and writing Atlas's metric series, and the watermarks that make the metric pipeline incremental."""

from __future__ import annotations

import importlib

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
        # two writers may register the same series at once: the second keeps the first's row
        insert_frame(conn, schema.series, frame, conflict="nothing", keys=("name",))
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


def exchanges(conn: Connection) -> list[str]:
    """The exchanges that have registered series (GDS names): bars imported for a venue make it known."""
    return sorted(conn.execute(select(schema.series.c.exchange).distinct()).scalars())


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


GAP_COLUMNS = ["series", "exchange", "bucket_width", "start", "end", "buckets", "duration"]


def gaps(conn: Connection, names: list[str] | None = None) -> pd.DataFrame:
    """Every run of missing buckets inside each series' span, longest first.

    A gap lies between two stored buckets more than one width apart: ``start`` and ``end`` are its first and last
    missing bucket, ``buckets`` how many are missing, ``duration`` the time they cover (``buckets`` widths). Only
    the bucket column of a series that lacks buckets is read (:func:`summary` tells which), never its values.

    Args:
        names: only these series (by name); all by default.
    """
    spans = summary(conn)
    spans = spans[spans["missing"] > 0]
    if names is not None:
        spans = spans[spans["series"].isin(list(names))]
    ids = _lookup(conn, spans["series"].tolist())
    found: list[tuple] = []
    for name, exchange, width in spans[["series", "exchange", "bucket_width"]].itertuples(index=False):
        step = parse_width(width).value
        (buckets,) = fetch_columns(conn, "SELECT bucket FROM atlas_metric WHERE series_id = :id ORDER BY bucket",
                                   {"id": ids[name]}, 1)
        times = parse_sql_times(buckets).asi8
        steps = np.diff(times)
        after = np.flatnonzero(steps > step)
        missing = -(-steps[after] // step) - 1  # buckets strictly between two stored ones
        found += [(name, exchange, width, first, first + (count - 1) * step, count, count * step)
                  for first, count in zip((times[after] + step).tolist(), missing.tolist(), strict=True)]
    frame = pd.DataFrame(found, columns=GAP_COLUMNS)
    frame = frame.astype({"start": "int64", "end": "int64", "buckets": "int64", "duration": "int64"})
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    frame["duration"] = pd.to_timedelta(frame["duration"], unit="ns")
    return frame.sort_values(["buckets", "series", "start"], ascending=[False, True, True], ignore_index=True,
                             kind="stable")


#: The series of imported OHLCV bars; at a width where they exist, the metric pipeline never writes.
BAR_METRICS = ("open", "high", "low", "close", "volume")
#: Who may write the series of an exchange at a width: bars imported there, or the metric pipeline.
OWNERS = ("bars", "metrics")


def width_owner(conn: Connection, exchange: str, width: str) -> str | None:
    """Who wrote the series of ``exchange`` at ``width``: ``"bars"`` (imported OHLCV bars), ``"metrics"`` (the
    pipeline: it keeps a watermark there, or wrote a metric that bars do not have), or None (nothing yet)."""
    s, w = schema.series.c, schema.watermark.c
    metrics = set(conn.execute(select(s.metric).where(s.exchange == exchange, s.bucket_width == width)).scalars())
    if metrics & {"open", "high", "low", "close"}:
        return "bars"
    if metrics - set(BAR_METRICS) or conn.execute(select(w.exchange).where(
            w.exchange == exchange, w.bucket_width == width)).first() is not None:
        return "metrics"
    return None


def get_watermark(conn: Connection, exchange: str, width: str) -> pd.Timestamp | None:
    w = schema.watermark.c
    value = conn.execute(select(w.computed_through).where(w.exchange == exchange, w.bucket_width == width)).scalar()
    return None if value is None else pd.Timestamp(value).tz_localize("UTC")


#: The kinds of write that lower watermarks: new market data.
MARKET_KINDS = ("orderbook", "trade", "exchange_volume")
#: PostgreSQL advisory lock key serializing the ingest log of market data with watermark moves.
_WATERMARK_LOCK = 0x41544C53  # "ATLS"


def lock_watermarks(conn: Connection) -> None:
    """Serializes, until the transaction ends, logging market data against reading or moving watermarks.

    SQLite has one writer at a time already; PostgreSQL takes a transaction-scoped advisory lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WATERMARK_LOCK})


def set_watermark(conn: Connection, exchange: str, width: str, through: pd.Timestamp) -> None:
    """Sets a watermark in one statement (an upsert: two first runs at once do not collide)."""
    w = schema.watermark
    values = {"exchange": exchange, "bucket_width": width,
              "computed_through": through.tz_convert("UTC").tz_localize(None).to_pydatetime()}
    if conn.dialect.name in ("postgresql", "sqlite"):
        dialect = importlib.import_module(f"sqlalchemy.dialects.{conn.dialect.name}")
        statement = dialect.insert(w).values(**values)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["exchange", "bucket_width"],
            set_={"computed_through": statement.excluded.computed_through}))
        return
    updated = conn.execute(w.update().where(w.c.exchange == exchange, w.c.bucket_width == width).values(
        computed_through=values["computed_through"])).rowcount
    if not updated:
        conn.execute(w.insert().values(**values))


def first_dirty_bucket(since: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """The first bucket of width ``step`` whose value data at ``since`` changes: the one holding it."""
    return pd.Timestamp(-((-since.value) // step.value) * step.value, tz="UTC")


def lower_watermarks(conn: Connection, exchange: str, since: pd.Timestamp) -> None:
    """New data from ``since`` on: every bucket width must recompute the buckets from the one holding ``since``."""
    w = schema.watermark
    rows = conn.execute(select(w.c.bucket_width, w.c.computed_through).where(w.c.exchange == exchange)).all()
    for width, through in rows:
        step = parse_width(width)
        first_dirty = first_dirty_bucket(since, step)
        if pd.Timestamp(through).tz_localize("UTC") >= first_dirty:
            set_watermark(conn, exchange, width, first_dirty - step)


def market_version(conn: Connection, exchange: str) -> int:
    """The id of the newest market-data write of ``exchange`` (0 if none)."""
    i = schema.ingest.c
    query = select(func.coalesce(func.max(i.ingest_id), 0)).where(i.exchange == exchange,
                                                                   i.kind.in_(MARKET_KINDS))
    return int(conn.execute(query).scalar())


def advance_watermark(conn: Connection, exchange: str, width: str, through: pd.Timestamp, read: int
                      ) -> pd.Timestamp:
    """Moves the watermark to ``through``, but no further than what a run that read the market data as of write
    ``read`` actually saw: market data written since then, at an earlier time, keeps its buckets dirty.

    Call it inside the transaction that writes the computed values, after :func:`lock_watermarks`.

    Returns:
        The watermark set.
    """
    set_watermark(conn, exchange, width, through)  # first a write: on SQLite, the writer's lock is now ours
    i = schema.ingest.c
    since = conn.execute(select(func.min(i.first_timestamp)).where(
        i.exchange == exchange, i.kind.in_(MARKET_KINDS), i.ingest_id > read)).scalar()
    if since is not None:
        step = parse_width(width)
        dirty = first_dirty_bucket(pd.Timestamp(since).tz_localize("UTC"), step) - step
        if dirty < through:
            set_watermark(conn, exchange, width, dirty)
            return dirty
    return through


def newest_write(conn: Connection, exchanges: list[str] | None = None, start=None, end=None,
                 kinds: tuple[str, ...] | None = None) -> tuple[int, object]:
    """The id and time of the newest ingest-log row matching the filters; ``(0, None)`` when none does.

    Args:
        exchanges: only writes of these exchanges. kinds: only these kinds (``"trade"``, ``"series"``, ...).
        start: only writes reaching at or after this time. end: only writes reaching at or before it.
    """
    i = schema.ingest.c
    newest = select(func.max(i.ingest_id))
    if exchanges is not None:
        newest = newest.where(i.exchange.in_(exchanges))
    if kinds is not None:
        newest = newest.where(i.kind.in_(kinds))
    if start is not None:
        newest = newest.where(i.last_timestamp >= start.tz_convert("UTC").tz_localize(None).to_pydatetime())
    if end is not None:
        newest = newest.where(i.first_timestamp <= end.tz_convert("UTC").tz_localize(None).to_pydatetime())
    found = conn.execute(select(i.ingest_id, i.created_at).where(i.ingest_id == newest.scalar_subquery())).first()
    return (0, None) if found is None else (int(found[0]), found[1])


def ingest_sources(conn: Connection, prefix: str) -> list[str]:
    i = schema.ingest.c
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = select(i.source).where(i.source.like(f"{escaped}%", escape="\\")).distinct()
    return sorted(conn.execute(query).scalars())


def data_version(conn: Connection, exchanges: list[str] | None = None, start=None, end=None) -> int:
    return newest_write(conn, exchanges, start, end)[0]
