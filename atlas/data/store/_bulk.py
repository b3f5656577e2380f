"""Bulk writes and fast reads, per database dialect.

SQLite gets one ``executemany`` of plain tuples; PostgreSQL gets ``COPY ... FROM STDIN`` (through a temporary table
when rows may conflict); other databases fall back to SQLAlchemy Core's ``executemany``. Timestamps travel as
naive-UTC text in SQLAlchemy's own SQLite format, so rows written here read back through SQLAlchemy unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import IntegrityError

_SQL_TIME_UNIT = "us"


def sql_times(times: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """UTC timestamps as naive text, ``'2024-01-31 12:00:00.000000'`` (SQLAlchemy's SQLite format)."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    text = np.datetime_as_string(index.values.astype(f"datetime64[{_SQL_TIME_UNIT}]"), unit=_SQL_TIME_UNIT)
    return np.strings.replace(text, "T", " ").astype(object)


def time_range_clause(column: str, start, end, params: dict, *, include_start: bool) -> str:
    """`` AND column > :start AND column <= :end`` for the bounds given (``>=`` with ``include_start``)."""
    clause = ""
    if start is not None:
        clause += f" AND {column} {'>=' if include_start else '>'} :start"
        params["start"] = str(sql_times(pd.DatetimeIndex([start]))[0])
    if end is not None:
        clause += f" AND {column} <= :end"
        params["end"] = str(sql_times(pd.DatetimeIndex([end]))[0])
    return clause


def fetch_columns(conn: Connection, sql: str, params: dict, width: int) -> list[list]:
    """Runs a query and returns its result column by column, skipping SQLAlchemy's row objects (hot reads)."""
    result = conn.execute(text(sql), params)
    try:
        rows = result.cursor.fetchall() if result.cursor is not None else []
    finally:
        result.close()
    return [[row[i] for row in rows] for i in range(width)]


def parse_sql_times(values: Sequence) -> pd.DatetimeIndex:
    """The inverse of :func:`sql_times`, also accepting the datetimes that PostgreSQL drivers return."""
    if len(values) and isinstance(values[0], str):
        try:  # NumPy reads 'YYYY-MM-DD HH:MM:SS.ffffff' a few times faster than pandas
            index = pd.DatetimeIndex(np.array(values, dtype="datetime64[us]"))
        except ValueError:
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(values, dtype=object), format="ISO8601"))
    else:
        index = pd.DatetimeIndex(pd.to_datetime(list(values)))
    index = index.as_unit("ns")
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame | dict, *, conflict: str | None = None,
                 keys: Sequence[str] = (), update: Sequence[str] = ()) -> None:
    """Inserts every row of ``frame`` (columns named as the table's) in one statement.

    Args:
        conn: a connection inside a transaction.
        table: the target table.
        frame: the rows, a DataFrame or a dict of equally long columns (NumPy arrays are cheapest);
            timestamp columns already as :func:`sql_times` text.
        conflict: ``None`` (a conflict raises), ``"nothing"`` (skip conflicting rows) or ``"update"``.
        keys: the unique columns that define a conflict.
        update: the columns to overwrite on conflict, with ``conflict="update"``.
    """
    columns = list(frame.keys()) if isinstance(frame, dict) else list(frame.columns)
    if not len(frame[columns[0]]):
        return
    name = conn.dialect.identifier_preparer.format_table(table)
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    clause = _conflict_clause(conflict, keys, update)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        rows = list(zip(*(_values(frame[c]) for c in columns)))
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {name} ({quoted}) VALUES ({marks}) {clause}", rows)
    elif dialect == "postgresql":
        _copy_postgres(conn, name, quoted, pd.DataFrame(frame), clause)
    else:
        conn.execute(table.insert(), pd.DataFrame(frame).to_dict("records"))


def _values(column) -> list:
    if isinstance(column, np.ndarray):
        return column.tolist()
    if isinstance(column, pd.Series):
        return column.tolist()
    return list(column)


def _conflict_clause(conflict: str | None, keys: Sequence[str], update: Sequence[str]) -> str:
    if conflict is None:
        return ""
    target = f"({', '.join(keys)})"
    if conflict == "nothing":
        return f"ON CONFLICT {target} DO NOTHING"
    sets = ", ".join(f"{c} = excluded.{c}" for c in update)
    return f"ON CONFLICT {target} DO UPDATE SET {sets}"


def _copy_postgres(conn: Connection, name: str, quoted: str, frame: pd.DataFrame, clause: str) -> None:
    payload = io.StringIO()
    frame.to_csv(payload, index=False, header=False, na_rep="")
    import psycopg

    raw = conn.connection.driver_connection
    try:
        _copy(raw, name, quoted, payload, clause)
    except psycopg.errors.IntegrityError as error:  # raised by the raw cursor: give it SQLAlchemy's type
        raise IntegrityError(f"COPY {name}", None, error) from error


def _copy(raw, name: str, quoted: str, payload: io.StringIO, clause: str) -> None:
    with raw.cursor() as cursor:
        target = name
        if clause:
            target = "atlas_bulk_staging"
            cursor.execute(f"CREATE TEMPORARY TABLE {target} (LIKE {name} INCLUDING DEFAULTS) ON COMMIT DROP")
        with cursor.copy(f"COPY {target} ({quoted}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(payload.getvalue())
        if clause:
            cursor.execute(f"INSERT INTO {name} ({quoted}) SELECT {quoted} FROM {target} {clause}")
            cursor.execute(f"DROP TABLE {target}")
