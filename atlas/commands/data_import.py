"""``atlas data import``: a GDS database, CSV or Parquet trades and bars, and ob-analytics' Bitstamp events."""

from __future__ import annotations

import sys

import click

from atlas.commands._common import (
    AFTER_IMPORT,
    empty_is_none,
    mapping,
    open_store,
    split_list,
    store_option,
    time_option,
)

_tz = click.option("--tz", default=None, help="Zone that naive timestamps were written in, e.g. UTC. Atlas stores "
                   "UTC and refuses to guess.")
_unit = click.option("--unit", type=click.Choice(["s", "ms", "us", "ns"]), default=None,
                     help="Numeric timestamps are this unit since the Unix epoch.")
_map = click.option("--map", "columns", default=None, metavar="ATLAS=FILE,...",
                    help="Column mapping, Atlas name = file name, e.g. timestamp=time,price=px.")
_venue = click.option("--new-venue", "new_venue", is_flag=True, default=False,
                      help="Accept a venue Atlas does not know (e.g. cme for cme_es_usd).")
_format = click.option("--format", "time_format", default=None, metavar="STRPTIME",
                       help="Format of timestamps written as text that is not ISO-8601, e.g. '%Y-%m-%d %I-%p' or "
                            "'%d/%m/%Y %H:%M %z'. ISO-8601 needs none (offsets may change within the file).")
_skip_rows = click.option("--skip-rows", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
                          help="Lines above the header line to skip (a vendor's banner or title).")
_sort = click.option("--sort", is_flag=True, default=False,
                     help="Sort the rows by time first (newest-first files); otherwise going back in time is an error.")
_replace = click.option("--replace", is_flag=True, default=False,
                        help="Delete what the store holds for this exchange (and bar width) between the file's first "
                             "and last row, and write the file's, in one transaction; without it such an import is "
                             "refused, so two imports are never mixed.")
_skip_invalid = click.option("--skip-invalid", is_flag=True,
                             help="Skip rows that break a rule (counted) instead of failing.")


@click.group("import")
def import_group() -> None:
    """Import market data into the store. A failed import leaves the store as it was."""


@import_group.command("gds")
@click.option("--url", required=True, envvar="ATLAS_GDS_IMPORT_URL", metavar="URL",
              help="SQLAlchemy URL of the Gryphon Data Service database [env ATLAS_GDS_IMPORT_URL, which keeps its "
                   "password out of shell history and MLflow params].")
@click.option("--start", default=None, help="Copy from this time (UTC), exclusive.", callback=empty_is_none)
@click.option("--end", default=None, help="Copy up to this time (UTC), inclusive.", callback=empty_is_none)
@click.option("--exchanges", default=None, help="Comma-separated exchanges [default: all].")
@click.option("--skip-invalid", is_flag=True, help="Skip rows that break a rule (counted) instead of failing.")
@click.option("--skip-existing", is_flag=True, help="Skip rows already in the store (counted) instead of failing.")
@store_option
def import_gds_command(url, start, end, exchanges, skip_invalid, skip_existing, store_url) -> None:
    """Copy a time range of a GDS database (orderbook, trade, exchange_volume) into the store.

    To read a GDS database in place instead, set ATLAS_GDS_URL to it: market tables are then read from it and
    only metric series are written to the store.
    """
    from atlas.data.importers import import_gds

    start, end = time_option(start, "--start"), time_option(end, "--end")
    with open_store(store_url, after_failure=AFTER_IMPORT) as store:
        report = import_gds(store, url, start=start, end=end, exchanges=split_list(exchanges),
                            on_invalid="skip" if skip_invalid else "raise",
                            on_duplicate="skip" if skip_existing else "raise", progress=sys.stderr.isatty())
    click.echo(str(report))


@import_group.command("trades")
@click.argument("path", type=click.Path(exists=True))
@click.option("--exchange", required=True, help="e.g. bitstamp, or bitstamp_btc_eur.")
@_map
@_tz
@_unit
@_format
@_skip_rows
@_sort
@_skip_invalid
@click.option("--skip-existing", is_flag=True, help="Skip trades already in the store instead of failing.")
@_replace
@_venue
@store_option
def import_trades_command(path, exchange, columns, tz, unit, time_format, skip_rows, sort, skip_invalid,
                          skip_existing, replace, new_venue, store_url) -> None:
    """Import trades from a CSV or Parquet file: timestamp, price, volume[, exchange_trade_id].

    Prices are in the pair's quote currency (USD of bitstamp_btc_usd), volumes in its base currency (BTC).
    """
    from atlas.data.importers import import_trades

    with open_store(store_url, after_failure=AFTER_IMPORT) as store:
        report = import_trades(store, path, exchange=exchange, columns=mapping(columns), tz=tz, unit=unit,
                               time_format=time_format, skip_rows=skip_rows, sort=sort,
                               on_invalid="skip" if skip_invalid else "raise",
                               on_duplicate="skip" if skip_existing else "raise", replace=replace,
                               new_venue=new_venue)
    click.echo(str(report))


@import_group.command("bars")
@click.argument("path", type=click.Path(exists=True))
@click.option("--exchange", required=True, help="e.g. bitstamp.")
@click.option("--bucket", required=True, help="The bars' width, e.g. 30min, 1h.")
@click.option("--label", type=click.Choice(["start", "end"]), default="start", show_default=True,
              help="Whether a bar's timestamp is its start or its end (Atlas labels buckets by their end).")
@_map
@_tz
@_unit
@_format
@_skip_rows
@_sort
@click.option("--keep", type=click.Choice(["first", "last"]), default=None,
              help="Of several bars for one time, keep the first or the last in the file (counted); otherwise "
                   "they are an error.")
@_skip_invalid
@_replace
@_venue
@store_option
def import_bars_command(path, exchange, bucket, label, columns, tz, unit, time_format, skip_rows, sort, keep,
                        skip_invalid, replace, new_venue, store_url) -> None:
    """Import bars from a CSV or Parquet file as metric series open, high, low, close, volume.

    Any subset of open, high, low and close imports (a close-only quote series); volume is optional, and a
    missing volume is unknown, not zero. Prices are in the pair's quote currency, volume in its base currency.
    """
    from atlas.data.importers import import_bars

    with open_store(store_url, after_failure=AFTER_IMPORT) as store:
        report = import_bars(store, path, exchange=exchange, bucket=bucket, columns=mapping(columns), label=label,
                             tz=tz, unit=unit, time_format=time_format, skip_rows=skip_rows, sort=sort, keep=keep,
                             on_invalid="skip" if skip_invalid else "raise", replace=replace,
                             new_venue=new_venue)
    click.echo(str(report))


@import_group.command("ob-analytics")
@click.argument("path", required=False, type=click.Path(exists=True))
@click.option("--exchange", default="bitstamp", show_default=True)
@click.option("--interval", default="1s", show_default=True, help="Time between rebuilt snapshots.")
@click.option("--levels", type=int, default=100, show_default=True, help="Price levels kept a side.")
@click.option("--skip-existing", is_flag=True, help="Skip rows already in the store (counted) instead of failing.")
@store_option
def import_ob_analytics_command(path, exchange, interval, levels, skip_existing, store_url) -> None:
    """Rebuild order-book snapshots from ob-analytics' Bitstamp order events, and import its trades.

    PATH is a folder with orders.csv.gz and trades.csv [default: the sample bundled with ob-analytics 0.1.0].
    """
    from atlas.data.importers import import_ob_analytics

    with open_store(store_url, after_failure=AFTER_IMPORT) as store:
        report = import_ob_analytics(store, path, exchange=exchange, interval=interval, levels=levels,
                                     on_duplicate="skip" if skip_existing else "raise")
    click.echo(str(report))
