"""Trades and OHLCV bars from CSV or Parquet files, with a column mapping.

Trades go to the GDS ``trade`` table. Bars become metric series ``{exchange}.{width}.open`` (``high``,
``low``, ``close``, ``volume``). Atlas stamps a bucket by its end (bucket ``t`` covers ``(t - width, t]``),
while bar files usually stamp a bar by its start: with ``label="start"`` (the default) a bar stamped 00:00 is
stored at 00:30 for 30-minute bars.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from atlas.data.buckets import parse_width, width_name
from atlas.data.exchanges import Exchange
from atlas.data.importers._columns import Table, numbers, parse_times, read_table, resolve_columns
from atlas.data.importers._report import ImportReport, Tally, check_choice, check_writable, parse_exchange
from atlas.data.series import SeriesKey
from atlas.data.store import MarketStore
from atlas.data.store._market import TRADE_RULES, trade_problems
from atlas.exceptions import DataValidationError

_SKIP_HINT = "Fix the file, or import with on_invalid='skip' (--skip-invalid) to drop and count such rows"
BAR_METRICS = ("open", "high", "low", "close", "volume")


def import_trades(store: MarketStore, source: str | Path | pd.DataFrame, *, exchange: str | Exchange,
                  columns: Mapping[str, str] | str | None = None, tz: str | None = None,
                  unit: str | None = None, on_invalid: str = "raise", on_duplicate: str = "raise",
                  sort: bool = False, new_venue: bool = False) -> ImportReport:
    """Imports trades from a CSV or Parquet file (or a DataFrame) into the ``trade`` table.

    The file needs a timestamp, a price and a volume per trade, and may have an ``exchange_trade_id``. Without
    one, each trade gets a deterministic id made from its timestamp, price, volume and occurrence number (the
    n-th identical row), so importing the same file twice is caught as a duplicate and identical trades stay
    distinct.

    Example:
        >>> import pandas as pd
        >>> from atlas.data import MarketStore
        >>> trades = pd.DataFrame({"time": ["2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z"],
        ...                        "px": [42000.0, 42001.5], "volume": [0.1, 0.25]})
        >>> report = import_trades(MarketStore("sqlite://"), trades, exchange="bitstamp",
        ...                        columns={"timestamp": "time", "price": "px"})
        >>> report.written["trade"]
        2

    Args:
        store: the destination store.
        source: a ``.csv``/``.csv.gz``/``.parquet`` path, or a DataFrame.
        exchange: the exchange, e.g. ``"bitstamp"`` or ``"BITSTAMP_BTC_EUR"``.
        columns: Atlas column -> file column (``{"timestamp": "time"}`` or ``"timestamp=time,price=px"``);
            columns left out are found by their own name in any case.
        tz: the zone naive timestamps were written in (``"UTC"``); without it naive timestamps are an error.
        unit: for numeric timestamps, what they count since the epoch: ``"s"``, ``"ms"``, ``"us"`` or
            ``"ns"``.
        on_invalid: ``"raise"`` on the first row with a price or volume that is zero, negative or not a
            number, or an id repeated in the file; ``"skip"`` to drop and count such rows.
        on_duplicate: trades already in the store: ``"raise"`` (nothing is written) or ``"skip"`` and count.
        sort: sort the rows by time first; otherwise a row earlier than the one before it is an error.
        new_venue: accept a venue Atlas does not know (``cme`` of ``cme_es_usd``); the store's
            ``extra_venues`` (``ATLAS_EXTRA_VENUES``) are accepted anyway.

    Returns:
        Rows written (``written["trade"]``) and skipped by rule.

    Raises:
        DataValidationError: a column is missing, or a row breaks a rule; the message names the row and the
            rule.
        UnknownExchangeError: the venue is unknown (and says how to add it).
    """
    began = time.perf_counter()
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    check_choice("on_duplicate", on_duplicate, ("raise", "skip"))
    check_writable(store)
    exchange = parse_exchange(exchange, store, new_venue=new_venue)
    table = read_table(source)
    cols = resolve_columns(table, columns, ("timestamp", "price", "volume"), ("exchange_trade_id",))
    times = parse_times(table, cols["timestamp"], tz=tz, unit=unit)
    price, volume = numbers(table, cols["price"]), numbers(table, cols["volume"])
    if "exchange_trade_id" in cols:
        ids = table.frame[cols["exchange_trade_id"]].astype(str).to_numpy(dtype=object)
    else:
        ids = trade_ids(times, price, volume)
    rows = np.arange(len(times))
    backwards = np.flatnonzero(np.diff(times.asi8) < 0)
    if len(backwards) and sort:
        rows = np.argsort(times.asi8, kind="stable")
    elif len(backwards):
        i = int(backwards[0]) + 1
        msg = (f"{table.where(i)} at {times[i]} is earlier than the row before it at {times[i - 1]} (rule "
               f"timestamps_out_of_order); {len(backwards)} rows go back in time. Sort the file by time, or "
               f"pass sort=True (--sort)")
        raise DataValidationError(msg, rule="timestamps_out_of_order", row=i)
    checks = {rule: (mask, TRADE_RULES[rule]) for rule, mask in trade_problems(price, volume, ids).items()}
    tally = Tally()
    bad = _apply_rules(table, checks, on_invalid, tally, "trade",
                       describe=lambda i: f" ({times[i]}, id {ids[i]!r})")
    rows = rows[~bad[rows]]
    frame = pd.DataFrame({"timestamp": times[rows], "price": price[rows], "volume": volume[rows],
                          "exchange_trade_id": ids[rows]})
    with store.atomic():
        try:
            written = store.write_trades(exchange, frame, on_duplicate=on_duplicate, source=table.name)
        except DataValidationError as error:
            if error.rule != "duplicate_trade" or error.row is None:
                raise
            i = int(rows[error.row])
            msg = (f"{table.where(i)} ({times[i]}, exchange_trade_id {ids[i]!r}) is already in the store "
                   f"for {exchange.name} (rule duplicate_trade); nothing was written. Importing the same "
                   f"file again? Pass on_duplicate='skip' (--skip-existing) to skip and count trades already "
                   f"stored")
            raise DataValidationError(msg, rule="duplicate_trade", row=i) from None
    tally.skip("trade", written.skipped)
    tally.wrote("trade", written.written, pd.DatetimeIndex(frame["timestamp"]), exchange)
    return tally.report(table.name, time.perf_counter() - began)


def trade_ids(times: pd.DatetimeIndex, price: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Deterministic trade ids from (timestamp, price, volume, occurrence): the same rows get the same ids.

    Example:
        >>> t = pd.DatetimeIndex(["2024-01-01", "2024-01-01"], tz="UTC")
        >>> a, b = trade_ids(t, np.array([1.0, 1.0]), np.array([2.0, 2.0]))
        >>> a != b, a == trade_ids(t[:1], np.array([1.0]), np.array([2.0]))[0]
        (True, True)
    """
    nanos = pd.DatetimeIndex(times).as_unit("ns").asi8  # the same ids whatever unit the times came in
    keys = pd.DataFrame({"t": nanos, "p": price, "v": volume})
    occurrence = keys.groupby(["t", "p", "v"], sort=False, dropna=False).cumcount().to_numpy()
    blake = hashlib.blake2b
    return np.array([
        "h" + blake(f"{t}|{p!r}|{v!r}|{k}".encode(), digest_size=16).hexdigest()
        for t, p, v, k in zip(nanos.tolist(), price.tolist(), volume.tolist(), occurrence.tolist())
    ], dtype=object)


def import_bars(store: MarketStore, source: str | Path | pd.DataFrame, *, exchange: str | Exchange,
                bucket: str, columns: Mapping[str, str] | str | None = None, label: str = "start",
                tz: str | None = None, unit: str | None = None, on_invalid: str = "raise",
                new_venue: bool = False) -> ImportReport:
    """Imports OHLCV bars as metric series ``{exchange}.{width}.open``, ``high``, ``low``, ``close``,
    ``volume``.

    Atlas stamps a bucket by its end; with ``label="start"`` each bar's stamp is moved forward by one width,
    so a 30-minute bar stamped 00:00 is stored as the bucket 00:30. Bars must lie on the bucket grid
    (multiples of the width since the Unix epoch) and strictly increase in time. Importing the same bars again
    overwrites them.

    Example:
        >>> import pandas as pd
        >>> from atlas.data import MarketStore
        >>> bars = pd.DataFrame({"timestamp": ["2024-01-01 00:00"], "open": [100.0], "high": [101.0],
        ...                      "low": [99.0], "close": [100.5], "volume": [3.0]})
        >>> store = MarketStore("sqlite://")
        >>> _ = import_bars(store, bars, exchange="bitstamp", bucket="30min", tz="UTC")
        >>> store.read_series("bitstamp_btc_usd.30min.close").index[0]
        Timestamp('2024-01-01 00:30:00+0000', tz='UTC')

    Args:
        store: the destination store.
        source: a ``.csv``/``.csv.gz``/``.parquet`` path, or a DataFrame.
        exchange: the exchange, e.g. ``"bitstamp"``.
        bucket: the bars' width: ``"1min"``, ``"30min"``, ``"1h"``, ...
        columns: Atlas column -> file column (``{"timestamp": "Date", "open": "BTC.open"}``).
        label: whether the file stamps a bar by its ``"start"`` or its ``"end"``.
        tz: the zone naive timestamps were written in; without it naive timestamps are an error.
        unit: for numeric timestamps, ``"s"``, ``"ms"``, ``"us"`` or ``"ns"`` since the epoch.
        on_invalid: ``"raise"`` on the first bar that breaks a value rule (a price that is not positive, a
            high below the open or close, a low above them, a negative volume), or ``"skip"`` and count.
        new_venue: accept a venue Atlas does not know; the store's ``extra_venues`` are accepted anyway.

    Returns:
        Values written per series name, and bars skipped by rule.

    Raises:
        DataValidationError: a column is missing, a bar is off the grid or out of order, or breaks a value
            rule.
    """
    began = time.perf_counter()
    check_choice("label", label, ("start", "end"))
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    exchange = parse_exchange(exchange, store, new_venue=new_venue)
    width = parse_width(bucket)
    name = width_name(width)
    table = read_table(source)
    cols = resolve_columns(table, columns, ("timestamp", *BAR_METRICS))
    stamps = parse_times(table, cols["timestamp"], tz=tz, unit=unit)
    labels = stamps + width if label == "start" else stamps
    _check_grid(table, stamps, labels, width, name, label)
    o, h, low, c, v = (numbers(table, cols[m]) for m in BAR_METRICS)
    with np.errstate(invalid="ignore"):
        checks = {
            "non_positive_price": (~((o > 0) & (h > 0) & (low > 0) & (c > 0)),
                                   "has an open, high, low or close that is zero, negative or not a number"),
            "negative_volume": (~(v >= 0), "has a volume that is negative or not a number"),
            "out_of_range": (np.isinf(o) | np.isinf(h) | np.isinf(low) | np.isinf(c) | np.isinf(v),
                             "has an infinite value; the store keeps finite numbers only"),
            "inconsistent_ohlc": (~((h >= np.maximum(o, c)) & (low <= np.minimum(o, c))),
                                  "has a high below its open or close, or a low above them"),
        }
    tally = Tally()
    bad = _apply_rules(table, checks, on_invalid, tally, "bars",
                       describe=lambda i: (f" ({stamps[i]}: open {o[i]}, high {h[i]}, low {low[i]}, "
                                           f"close {c[i]}, volume {v[i]})"))
    index = labels[~bad].rename("bucket")
    series = {SeriesKey(exchange, name, metric): pd.Series(values[~bad], index=index)
              for metric, values in zip(BAR_METRICS, (o, h, low, c, v))}
    with store.atomic():
        store.write_series(series, owner="bars")
    for key, values in series.items():
        tally.wrote(key.name, len(values), index, exchange)
    return tally.report(table.name, time.perf_counter() - began)


def _check_grid(table: Table, stamps: pd.DatetimeIndex, labels: pd.DatetimeIndex, width: pd.Timedelta,
                name: str, label: str) -> None:
    steps = np.diff(labels.asi8)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        what = "repeats" if steps[i - 1] == 0 else "is earlier than"
        msg = (f"{table.where(i)} at {stamps[i]} {what} the bar before it at {stamps[i - 1]} (rule "
               f"timestamps_out_of_order); bar timestamps must strictly increase: sort the file and drop "
               f"repeats")
        raise DataValidationError(msg, rule="timestamps_out_of_order", row=i)
    off = np.flatnonzero(labels.as_unit("ns").asi8 % width.value)
    if len(off):
        i = int(off[0])
        msg = (f"{table.where(i)} at {stamps[i]} is not on the {name} grid (rule off_grid): Atlas buckets "
               f"are multiples of {name} since the Unix epoch, stamped by their end, and this bar's bucket "
               f"would end at {labels[i]} (label={label!r}); {len(off)} bars are off the grid. Is "
               f"bucket={name!r} the bars' width?")
        raise DataValidationError(msg, rule="off_grid", row=i)


def _apply_rules(table: Table, checks: dict, on_invalid: str, tally: Tally, kind: str,
                 describe) -> np.ndarray:
    """Raises on the first row breaking a rule, or counts each bad row under the first rule it breaks."""
    bad = np.zeros(len(table.frame), dtype=bool)
    for rule, (mask, words) in checks.items():
        mask = np.asarray(mask, dtype=bool) & ~bad
        if mask.any() and on_invalid == "raise":
            i = int(np.flatnonzero(mask)[0])
            msg = (f"{table.where(i)}{describe(i)} {words} (rule {rule}); {int(mask.sum())} rows break it. "
                   f"{_SKIP_HINT}")
            raise DataValidationError(msg, rule=rule, row=i)
        tally.skip(kind, {rule: int(mask.sum())})
        bad |= mask
    return bad
