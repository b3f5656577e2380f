"""``atlas data``: simulate, import, compute metrics, inspect and export market data."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from atlas.commands._common import (
    AFTER_METRICS,
    AFTER_SIMULATE,
    empty_is_none,
    numbers,
    open_store,
    split_list,
    store_option,
    time_range,
    write_output,
)
from atlas.commands.data_delete import delete
from atlas.commands.data_import import import_group


@click.group()
def data() -> None:
    """Market data: the store, the simulator, importers and the metric pipeline."""


data.add_command(import_group)
data.add_command(delete)


@data.command()
@click.option("--days", type=float, default=14.0, show_default=True, help="How many days to simulate.")
@click.option("--exchanges", default="bitstamp,itbit,coinbase", show_default=True,
              help="Comma-separated exchanges; the first leads the others.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--signal", type=float, default=0.0, show_default=True,
              help="How predictable a follower's next-bucket return is: the correlation of the best prediction "
              "with it; with the default lag of one bucket, the correlation with the leader's last return. 0: none.")
@click.option("--start", default="2024-01-01", show_default=True, help="First day (UTC).")
@click.option("--lag", default="1min", show_default=True, help="How far the followers lag the leader.")
@click.option("--snapshot-interval", default="10s", show_default=True, help="Time between order-book snapshots.")
@click.option("--levels", type=int, default=20, show_default=True, help="Order-book levels a side.")
@store_option
def simulate(days, exchanges, seed, signal, start, lag, snapshot_interval, levels, store_url) -> None:
    """Simulate several exchanges trading BTC/USD into the store, seeded and deterministic.

    Each day is written in one transaction. An interrupted run is finished by running the same command again:
    the days it wrote are kept and only the others are written, giving the same data as an uninterrupted run.
    """
    from atlas.data import Exchange
    from atlas.data.simulator import MarketSimulator, SimulatorConfig

    names = tuple(Exchange.read(name) for name in split_list(exchanges) or ())
    config = SimulatorConfig(exchanges=names, days=days, seed=seed, signal=signal,
                             start=start, lag=lag, snapshot_interval=snapshot_interval, levels=levels)
    simulator = MarketSimulator(config)
    with open_store(store_url, after_failure=AFTER_SIMULATE) as store:
        for exchange in config.exchanges:  # known if built in, in ATLAS_EXTRA_VENUES, or already in the store
            store.known_exchange(exchange)
        click.echo(simulator.resume_text(simulator.written_days(store)))
        report = simulator.simulate_into(store, progress=sys.stderr.isatty())
    click.echo(str(report))
    click.echo(f"lead-lag: {config.lead_lag_text()}")
    click.echo(f"best directional accuracy any model can reach on a follower's next {config.bucket} return: "
               f"{simulator.best_accuracy():.3f} (theory {simulator.theoretical_accuracy():.3f})")


@data.command()
@click.option("--bucket", default="1min", show_default=True, help="Bucket width: 1min, 5min, 10min, 1h, or any "
              "fixed pandas offset.")
@click.option("--exchanges", default=None, help="Comma-separated exchanges [default: all with data].")
@click.option("--depths", default="0,1,5", show_default=True, help="Market-order sizes (base units) for bid, ask "
              "and midpoint at depth; 0 is the top of book.")
@click.option("--slippages", default="0,10,50", show_default=True, help="Distances from the best price (quote "
              "units) for bid/ask strength and imbalance.")
@click.option("--start", default=None, help="Recompute from this time on (overwrites stored values).")
@click.option("--end", default=None, help="Compute no bucket after this time.")
@store_option
def metrics(bucket, exchanges, depths, slippages, start, end, store_url) -> None:
    """Bucket order books and trades into metric series; only buckets not yet computed."""
    from atlas.data.metrics import MetricPipeline

    start, end = time_range(start, end)
    with open_store(store_url, after_failure=AFTER_METRICS) as store:
        pipeline = MetricPipeline(store, bucket=bucket, depths=numbers(depths, "--depths"),
                                  slippages=numbers(slippages, "--slippages"))
        reports = pipeline.run(split_list(exchanges), start=start, end=end, progress=sys.stderr.isatty())
    for r in reports:
        span = f"{r.first} .. {r.last}" if r.buckets else "already up to date"
        skipped = f", skipped {r.skipped}" if r.skipped else ""
        click.echo(f"{r.exchange} {r.bucket}: {r.buckets:,} buckets ({span}), {r.values:,} values, "
                   f"{r.snapshots_read:,} snapshots read, {r.snapshots_parsed:,} parsed{skipped}, {r.seconds:.1f} s")


@data.command()
@click.option("--series/--no-series", "show_series", default=True, show_default=True,
              help="List every metric series, or only the market tables.")
@store_option
def info(show_series, store_url) -> None:
    """What the store holds: per exchange and series, first and last bucket, missing buckets, coverage."""
    import pandas as pd

    with open_store(store_url, read_only=True) as store:
        market = store.summary()
        series = store.series_summary() if show_series else None
        gaps = store.series_gaps() if show_series else None
    if market.empty and (series is None or series.empty):
        click.echo(f"The store at {store.url} is empty: try `atlas data simulate` or `atlas data import`.")
        return
    with pd.option_context("display.width", 200, "display.max_rows", 10_000, "display.max_columns", 20):
        if not market.empty:
            click.echo("Market tables")
            click.echo(market.to_string(index=False))
        if series is not None and not series.empty:
            click.echo("\nMetric series")
            largest = gaps.drop_duplicates("series").set_index("series")  # longest first: each series' longest
            shown = series.assign(coverage=(series["coverage"] * 100).map("{:.1f}%".format),
                                  largest_gap=series["series"].map(lambda name: _gap_text(largest, name)))
            click.echo(shown[["series", "first", "last", "values", "missing", "coverage", "largest_gap"]]
                       .rename(columns={"largest_gap": "largest gap"}).to_string(index=False))
            if not gaps.empty:
                click.echo("\nLargest gaps (first and last missing bucket)")
                click.echo(_largest_gaps(gaps, series).to_string(index=False))


def _stamp(value) -> str:
    """A bucket time, short: ``2024-01-06 00:00`` (seconds only when there are some)."""
    return f"{value:%Y-%m-%d %H:%M}" if value.second == 0 and value.microsecond == 0 else f"{value:%Y-%m-%d %H:%M:%S}"


def _duration(value) -> str:
    """A duration, short: ``2d``, ``1d 6h``, ``45min``."""
    seconds, parts = int(value.total_seconds()), []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts) or "0s"


def _gap_text(largest, name: str) -> str:
    if name not in largest.index:
        return "-"
    gap = largest.loc[name]
    return f"{gap['buckets']} ({_duration(gap['duration'])}) {_stamp(gap['start'])} .. {_stamp(gap['end'])}"


def _largest_gaps(gaps, series, top: int = 5):
    """The ``top`` longest gaps across series; a gap that several series of one exchange and width share is one
    row (``cme_es_usd.1h.*`` when all of them share it)."""
    import pandas as pd

    held = series.groupby(["exchange", "bucket_width"])["series"].nunique()
    rows = []
    for (exchange, width, start, end), group in gaps.groupby(["exchange", "bucket_width", "start", "end"],
                                                              sort=False):
        names = sorted(group["series"])
        prefix = ".".join(names[0].split(".", 2)[:2])  # exchange.width (a metric may hold a dot: midpoint_d0.5)
        if len(names) == 1:
            shown = names[0]
        elif len(names) == held.get((exchange, width), 0):
            shown = f"{prefix}.* ({len(names)} series)"
        else:
            shown = f"{prefix}.{{{','.join(n.split('.', 2)[2] for n in names)}}}"
        first = group.iloc[0]
        rows.append({"series": shown, "from": _stamp(start), "to": _stamp(end), "buckets": int(first["buckets"]),
                     "duration": _duration(first["duration"])})
    frame = pd.DataFrame(rows).sort_values(["buckets", "from"], ascending=[False, True], kind="stable")
    return frame.head(top)


@data.command("series")
@click.argument("name")
@click.option("--start", default=None, help="First bucket (UTC), inclusive.", callback=empty_is_none)
@click.option("--end", default=None, help="Last bucket (UTC), inclusive.", callback=empty_is_none)
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="File to write [default: "
              "standard output; parquet needs a file].")
@store_option
def series_command(name, start, end, fmt, output, store_url) -> None:
    """Read one metric series out, e.g. bitstamp_btc_usd.1min.midpoint."""
    start, end = time_range(start, end)
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a binary file: give --output FILE")
    with open_store(store_url, read_only=True) as store:
        values = store.read_series(name, start, end)
        if values.empty and (start is not None or end is not None):
            held = store.read_series(name)
            span = f"it holds {len(held):,} values from {held.index[0]} to {held.index[-1]}" if len(held) else \
                "it holds none"
            click.echo(f"No values of {name} from {start or 'the first'} to {end or 'the last'}: {span}.", err=True)
    frame = values.rename("value").to_frame()
    if fmt == "parquet":
        write_output(output, frame.to_parquet)
        return
    if fmt == "json":
        text = frame.reset_index().to_json(orient="records", date_format="iso", lines=True)
    else:
        text = frame.to_csv()
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, lambda path: Path(path).write_text(text))
