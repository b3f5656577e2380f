"""``atlas data delete``: remove a time range of a series, of the series matching a pattern, or of an exchange."""

from __future__ import annotations

import sys

import click

from atlas.commands._common import empty_is_none, open_store, store_option, time_range


@click.command("delete")
@click.argument("target")
@click.option("--start", default=None, callback=empty_is_none, help="First time to delete (UTC), inclusive "
              "[default: the first stored].")
@click.option("--end", default=None, callback=empty_is_none, help="Last time to delete (UTC), inclusive "
              "[default: the last stored].")
@click.option("--yes", "-y", is_flag=True, default=False, help="Delete without asking (needed when not at a "
              "terminal).")
@store_option
def delete(target, start, end, yes, store_url) -> None:
    """Delete stored data in a time range, in one transaction, after showing what goes.

    TARGET is a series (bitstamp_btc_usd.30min.close), a pattern of series (bitstamp_btc_usd.30min.*: every bar
    series of one width), or an exchange (bitstamp, cme_es_usd: its order books, trades, exchange volume and
    every one of its series). Cached feature frames over the range are rebuilt on the next build, and
    `atlas data metrics` computes the range's buckets again.
    """
    start, end = time_range(start, end)
    with open_store(store_url, read_only=True) as store:
        plan = store.plan_delete(target, start, end)
        if not plan.total:
            click.echo(f"Nothing to delete: {plan}.")
            return
        click.echo(f"Would delete {plan}.")
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("deleting needs a confirmation: pass --yes to delete what is listed above")
            click.confirm("Delete them?", abort=True)
        done = store.delete(target, start, end)
    click.echo(f"Deleted {done}.")
