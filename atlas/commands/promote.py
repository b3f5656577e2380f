"""``atlas promote``, ``atlas rollback`` and ``atlas models``: the MLflow Model Registry, through atlas.registry."""

from __future__ import annotations

import re
import shlex

import click

from atlas.commands._common import command_settings, store_option, tracking_option

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@click.command()
@click.argument("target", metavar="RUN_ID|SPEC|NAME")
@click.option("--name", default=None, metavar="NAME", help="Register as a new version of the model NAME.")
@click.option("--metric", default=None, metavar="M",
              help="With SPEC: choose its best trial by M (lower is better for losses, errors and p-values, higher "
                   "for accuracy, lift, Sharpe, IC) [default: best_val_loss, the validation objective].")
@click.option("--work-unit", default=None, metavar="W", help="With SPEC: choose among the trials of W only.")
@click.option("--to", "to", default=None, type=click.Choice(["production"]),
              help="Move this alias of the model NAME to its challenger, if every guardrail passes.")
@click.option("--feed", default="redis", show_default=True, type=click.Choice(["redis", "store"]),
              help="What the model will serve from: Gryphon's Redis (order books only) or the market store.")
@click.option("--force", is_flag=True, help="Move even if a guardrail fails (needs --reason).")
@click.option("--reason", default=None, metavar="TEXT", help="Why, recorded with the move (required with --force).")
@store_option
@tracking_option
def promote(target: str, name: str | None, metric: str | None, work_unit: str | None, to: str | None, feed: str,
            force: bool, reason: str | None, store_url: str | None, tracking_uri: str | None) -> None:
    """Register a trial's model as the challenger of NAME, or move production to NAME's challenger.

    \b
    atlas promote RUN_ID --name NAME                  register the trial's logged model (alias challenger)
    atlas promote SPEC --name NAME [--metric M]       the same for the latest execution's best trial
    atlas promote NAME --to production [--feed F]     move production if the four guardrails pass
    atlas promote NAME --to production --force --reason TEXT
    """
    from atlas.registry import PromotionRefused, Registry

    registry = Registry(command_settings(store_url, tracking_uri, read_only=True))
    if to is None:
        if name is None:
            raise click.UsageError("give --name NAME to register, or --to production to promote NAME")
        if force or reason:
            raise click.UsageError("--force and --reason go with --to production")
        _register(registry, target, name, metric, work_unit)
        return
    if name is not None or metric is not None or work_unit is not None:
        raise click.UsageError("with --to, give the model's name as the argument; --name, --metric and --work-unit "
                               "are for registering")
    command = ["atlas", "promote", target, "--to", to, "--feed", feed] + (["--force"] if force else []) + (
        ["--reason", reason] if reason else [])
    try:
        promotion = registry.promote(target, feed=feed, force=force, reason=reason, by=_who(),
                                     command=shlex.join(command))
    except PromotionRefused as refused:
        for guardrail in refused.guardrails:
            click.echo(guardrail.line())
        raise
    for guardrail in promotion.guardrails:
        click.echo(guardrail.line())
    before = f"was version {promotion.previous}" if promotion.previous else "the first production version"
    forced = f"; FORCED: {reason}" if force and any(not g.passed for g in promotion.guardrails) else ""
    click.echo(f"{target}: {to} -> version {promotion.version} ({before}){forced}")


def _register(registry, target: str, name: str, metric: str | None, work_unit: str | None) -> None:
    if _RUN_ID.match(target):
        if metric or work_unit:
            raise click.UsageError("--metric and --work-unit choose a trial of a SPEC, not of a run id")
        run_id = target
    else:
        from atlas.commands.report import _spec_name

        spec = _spec_name(target)
        run_id = registry.best_run(spec, metric=metric or "best_val_loss", work_unit=work_unit)
        chosen = metric or "best_val_loss"
        click.echo(f"{spec}: best trial of the latest execution by {chosen}: run {run_id}")
    version = registry.register(run_id, name, by=_who())
    click.echo(f"{name}: registered run {run_id} as version {version.version} (alias challenger); promote it with "
               f"atlas promote {name} --to production")


@click.command()
@click.argument("name", metavar="NAME")
@tracking_option
def rollback(name: str, tracking_uri: str | None) -> None:
    """Move NAME's production alias back to the version that held it before."""
    from atlas.registry import Registry

    promotion = Registry(command_settings(tracking_uri=tracking_uri, read_only=True)).rollback(name, by=_who(), command=shlex.join(["atlas", "rollback",
                                                                                              name]))
    click.echo(f"{name}: production -> version {promotion.version} (rolled back from version {promotion.previous})")


@click.command()
@click.argument("name", metavar="NAME")
@tracking_option
def models(name: str, tracking_uri: str | None) -> None:
    """List NAME's versions (version, run id, created, test accuracy, aliases) and its alias history."""
    from atlas.registry import Registry

    registry = Registry(command_settings(tracking_uri=tracking_uri, read_only=True))
    rows = registry.versions(name)
    click.echo(f"{name}: {len(rows)} version(s)")
    click.echo(f"  {'version':>7}  {'run id':32}  {'created (UTC)':19}  {'test acc.':>9}  aliases")
    for row in rows:
        accuracy = "" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        click.echo(f"  {row['version']:>7}  {row['run_id'] or '':32}  {row['created']:19}  {accuracy:>9}  "
                   f"{', '.join(row['aliases'])}")
    moves = registry.history(name)
    click.echo(f"alias history, newest first ({len(moves)} move(s)):")
    for move in moves:
        click.echo(f"  {move.line()}")


def _who() -> str:
    """``user@host`` of whoever runs the command."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
