"""``atlas doctor``: is every configured part there, writable, and of the right version? One line each."""

from __future__ import annotations

import sys

import click

from atlas.commands._common import command_settings, store_option, tracking_option


@click.command()
@store_option
@tracking_option
def doctor(store_url: str | None, tracking_uri: str | None) -> None:
    """Check every configured part: the market store, a GDS database read in place, MLflow tracking and its
    artifact root (S3 included), Optuna's storage, Redis and the Ray cluster; one line each, naming the setting
    to fix. Exits with 1 when any part fails.

    Settings come from the environment over the config file (ATLAS_CONFIG, ./atlas.toml, or [tool.atlas] in
    ./pyproject.toml) over the defaults under ATLAS_HOME.
    """
    from atlas.infra._doctor import FAIL, diagnose

    settings = command_settings(store_url, tracking_uri)
    where = next((o for o in settings.origins.values() if o not in ("environment", "default")), None)
    click.echo(f"Settings: home {settings.home}" + (f"; config file {where}" if where else "; no config file"))
    checks = diagnose(settings)
    for check in checks:
        click.echo(check.line())
    failed = [c.part for c in checks if c.status == FAIL]
    if failed:
        click.echo(f"{len(failed)} of {len(checks)} parts fail: {', '.join(failed)}", err=True)
        sys.exit(1)
