"""OHLCV bars (or any subset of them: a close-only quote series) from CSV or Parquet files, as metric series.

Bars become series ``{exchange}.{width}.open`` (``high``, ``low``, ``close``, ``volume``): the ones the file
has. Atlas stamps a bucket by its end (bucket ``t`` covers ``(t - width, t]``), while bar files usually stamp a
bar by its start: with ``label="start"`` (the default) a bar stamped 00:00 is stored at 00:30 for 30-minute
bars. Prices are in the pair's quote currency, volume in its base currency; a bar without a volume has an
unknown volume (nothing is stored), never a volume of zero.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from atlas.data.buckets import parse_width, width_name
from atlas.data.exchanges import Exchange
from atlas.data.importers._columns import numbers, parse_times, resolve_columns
from atlas.data.importers._files import read_table
from atlas.data.importers._report import ImportReport, Tally, check_choice, parse_exchange
from atlas.data.importers._rules import Rules
from atlas.data.series import SeriesKey
from atlas.data.store import MarketStore
from atlas.exceptions import DataValidationError

BAR_METRICS = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")


def import_bars(store: MarketStore, source: str | Path | pd.DataFrame, *, exchange: str | Exchange,
                bucket: str, columns: Mapping[str, str | None] | str | None = None, label: str = "start",
                tz: str | None = None, unit: str | None = None, time_format: str | None = None,
                skip_rows: int = 0, sort: bool = False, keep: str | None = None, on_invalid: str = "raise",
                replace: bool = False, new_venue: bool = False) -> ImportReport:
    """Imports bars as metric series ``{exchange}.{width}.{open,high,low,close,volume}``: those the file has.

    Atlas stamps a bucket by its end; with ``label="start"`` each bar's stamp is moved forward by one width,
    so a 30-minute bar stamped 00:00 is stored as the bucket 00:30. Bars must lie on the bucket grid
    (multiples of the width since the Unix epoch), one per bucket. Every rule is checked in one pass: a file
    breaking several gets one error naming each, with its count, first rows and fix.

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
        exchange: the exchange, e.g. ``"bitstamp"``, or ``"oanda_eur_usd"`` with ``new_venue``.
        bucket: the bars' width: ``"1min"``, ``"30min"``, ``"1h"``, ...
        columns: Atlas column -> file column (``{"timestamp": "Date", "close": "BTC.close"}``); an Atlas column
            mapped to None (``--map volume=``) says the file has none. Columns left out are found by their own
            name in any case; one that looks like a bar column without being named so (``BTC.close``, or two
            volume columns) is refused, never guessed or dropped.
        label: whether the file stamps a bar by its ``"start"`` or its ``"end"``.
        tz: the zone naive timestamps were written in; without it naive timestamps are an error.
        unit: for numeric timestamps, ``"s"``, ``"ms"``, ``"us"`` or ``"ns"`` since the epoch.
        time_format: for timestamps written as text that is not ISO-8601, their ``strptime`` format
            (``"%Y-%m-%d %I-%p"``).
        skip_rows: lines above the header line to skip (a vendor's banner).
        sort: sort the bars by time first (newest-first files); otherwise a bar earlier than the one before it
            is an error.
        keep: of several bars for one bucket, keep the ``"first"`` or ``"last"`` in the file; otherwise they are
            an error. Either way the report counts them, and how many differed in value.
        on_invalid: ``"raise"`` on a bar that breaks a value rule (a price that is not positive or not a number,
            a high below the open or close, a low above them, a negative volume), or ``"skip"`` and count.
        replace: where the store already holds this exchange's bars at this width between the file's first and
            last bar, delete them and write the file's, in one transaction; without it such an import is
            refused, so two files are never mixed. What an earlier import of a file of the same name wrote is
            deleted whole, so a file imported again with other options (a corrected ``label``) leaves nothing of
            its first import behind.
        new_venue: accept a venue Atlas does not know.

    Returns:
        Values written per series name; bars skipped by rule; zero-volume bars, repeated bars and replaced
        values noted.

    Raises:
        DataValidationError: a column is missing or ambiguous, bars break rules (all of them named), or the store
            already holds bars in the file's range and ``replace`` is not set (rule ``already_stored``).
    """
    began = time.perf_counter()
    check_choice("label", label, ("start", "end"))
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    check_choice("keep", keep, (None, "first", "last"))
    exchange = parse_exchange(exchange, store, new_venue=new_venue)
    width = parse_width(bucket)
    name = width_name(width)
    table = read_table(source, skip_rows=skip_rows)
    cols = resolve_columns(table, columns, ("timestamp",), BAR_METRICS, any_of=PRICES, guarded=BAR_METRICS)
    stamps = parse_times(table, cols["timestamp"], tz=tz, unit=unit, time_format=time_format)
    labels = stamps + width if label == "start" else stamps
    given = [m for m in BAR_METRICS if m in cols]
    values = {m: numbers(table, cols[m]) for m in given}

    def describe(i: int) -> str:
        return f" ({stamps[i]}: " + ", ".join(f"{m} {values[m][i]:.10g}" for m in given) + ")"

    rules = Rules(table, describe)
    tally = Tally()
    order, repeats = _order_and_repeats(rules, labels, values, sort, keep, tally)
    off = labels.as_unit("ns").asi8 % width.value != 0
    rules.check("off_grid", off, f"is not on the {name} grid: Atlas buckets are multiples of {name} since the "
                f"Unix epoch, stamped by their end (label={label!r} gives the bucket's end)",
                fix=f"is bucket={name!r} (--bucket {name}) the bars' width, and label={label!r} (--label) right?",
                skippable=False)
    _value_rules(rules, values)
    bad = rules.settle(on_invalid, tally, "bars") | repeats
    rows = order[~bad[order]]
    index = labels[rows].rename("bucket")
    series = {SeriesKey(exchange, name, m): pd.Series(values[m][rows], index=index) for m in given}
    if "volume" in values:
        tally.note("bars.zero_volume", int((values["volume"][rows] == 0).sum()))
        tally.note("bars.unknown_volume", int(np.isnan(values["volume"][rows]).sum()))
    source = f"bars:{exchange.key}.{name}:{table.name}"
    with store.atomic():
        if len(index):
            _clear_range(store, exchange, name, index, series, replace, tally, table.name, source)
        store.write_series(series, owner="bars", source=source)
    for key, part in series.items():
        tally.wrote(key.name, int(part.notna().sum()), index, exchange)
    return tally.report(table.name, time.perf_counter() - began)


def _order_and_repeats(rules: Rules, labels: pd.DatetimeIndex, values: dict[str, np.ndarray], sort: bool,
                       keep: str | None, tally: Tally) -> tuple[np.ndarray, np.ndarray]:
    """The rows in time order, and the mask of repeated bars dropped by ``keep``; out-of-order rows and repeats
    without ``keep`` are recorded as broken rules."""
    stamps = labels.as_unit("ns").asi8
    order = np.arange(len(stamps))
    steps = np.diff(stamps)
    if sort:
        order = np.argsort(stamps, kind="stable")
    elif (steps < 0).any():
        newest_first = bool((steps < 0).all())
        words = ("runs newest first: every bar is earlier than the one before it" if newest_first
                 else "is earlier than the bar before it")
        rules.check("timestamps_out_of_order", np.r_[False, steps < 0], words,
                    fix="sort the bars by time with sort=True (--sort)", skippable=False)
    repeated = pd.Index(stamps).duplicated(keep=False)
    dropped = np.zeros(len(stamps), dtype=bool)
    if not repeated.any():
        return order, dropped
    frame = pd.DataFrame({"t": stamps, **values})
    differing = int((frame[repeated].groupby("t").nunique(dropna=False).max(axis=1) > 1).sum())
    if keep is None:
        extra = pd.Index(stamps).duplicated(keep="first")
        rules.check("duplicate_bar", extra, f"repeats the time of an earlier bar ({differing} of the repeated "
                    f"times have bars with different values)",
                    fix="keep one bar per time with keep='first' or 'last' (--keep first|last)", skippable=False)
        return order, dropped
    dropped = pd.Index(stamps).duplicated(keep=keep)
    tally.skip("bars", {f"duplicate_bar_{keep}_kept": int(dropped.sum())})
    tally.note("bars.duplicate_times_differing", differing)
    return order, dropped


def _value_rules(rules: Rules, values: dict[str, np.ndarray]) -> None:
    prices = [values[m] for m in PRICES if m in values]
    with np.errstate(invalid="ignore"):
        rules.check("non_positive_price", ~np.logical_and.reduce([p > 0 for p in prices]),
                    "has a price that is zero, negative, missing or not a number")
        if "volume" in values:
            rules.check("negative_volume", values["volume"] < 0, "has a negative volume")
        rules.check("out_of_range", np.logical_or.reduce([np.isinf(v) for v in values.values()]),
                    "has an infinite value; the store keeps finite numbers only")
        o, h, low, c = (values.get(m) for m in PRICES)
        body = [p for p in (o, c) if p is not None]
        wrong = np.zeros(len(prices[0]), dtype=bool)
        if h is not None and body:
            wrong |= h < np.maximum.reduce(body)
        if low is not None and body:
            wrong |= low > np.minimum.reduce(body)
        if h is not None and low is not None:
            wrong |= h < low
        rules.check("inconsistent_ohlc", wrong, "has a high below its open, close or low, or a low above its "
                    "open or close")


def _clear_range(store: MarketStore, exchange: Exchange, width: str, index: pd.DatetimeIndex,
                 series: dict[SeriesKey, pd.Series], replace: bool, tally: Tally, source: str, noted: str) -> None:
    """Refuses bars over a range the store already holds for this exchange and width, or (``replace``) deletes
    the stored range, and all that an earlier import of the same file wrote, so the store never mixes two
    imports."""
    store.require_owner(exchange, width, "bars")  # computed metrics at this width: that error first
    first, last = index.min(), index.max()
    names = [SeriesKey(exchange, width, m).name for m in BAR_METRICS]
    held = store.count_values(names, first, last)
    if not held:
        return
    if replace:
        earlier = store.written_span(exchange, noted)
        if earlier is not None:  # the same file imported before: replace all of it
            first, last = min(first, earlier[0]), max(last, earlier[1])
        cleared = store.clear_values(names, first, last)
        tally.note("bars.replaced", sum(cleared.values()))
        return
    same = _same_values(store, held, series, first, last)
    metrics = ", ".join(n.rsplit(".", 1)[1] for n in held)
    again = " They equal this file's values: it was imported before." if same else ""
    msg = (f"{source}: the store already holds {max(held.values()):,} {width} bars of {exchange.name} ({metrics}) "
           f"between this file's first and last bar, {first} and {last} (rule already_stored); importing would mix "
           f"two imports, so nothing was written.{again} To replace the stored bars in that range with this file's, "
           f"pass replace=True (--replace), or delete them first: atlas data delete {exchange.key}.{width}.* "
           f"--start '{first}' --end '{last}'")
    raise DataValidationError(msg, rule="already_stored")


def _same_values(store: MarketStore, held: dict[str, int], series: dict[SeriesKey, pd.Series], first, last) -> bool:
    mine = {key.name: part.dropna() for key, part in series.items()}
    if set(held) != {n for n, part in mine.items() if len(part)}:
        return False
    for name in held:
        stored = store.read_series(name, first, last)
        if not stored.index.equals(mine[name].index) or not np.array_equal(stored.to_numpy(), mine[name].to_numpy()):
            return False
    return True
