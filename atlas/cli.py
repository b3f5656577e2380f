"""The ``atlas`` command. Subcommands import their heavy libraries when they run, so ``atlas --help`` is quick."""

from __future__ import annotations

import sys

import click

from atlas import __version__


class _Group(click.Group):
    """Turns Atlas's own errors into one clear line and exit status 2, instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from atlas.exceptions import AtlasError

        try:
            return super().invoke(ctx)
        except AtlasError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(2)
        except KeyError as error:  # lookups that name what exists, e.g. an unknown series
            if error.args and isinstance(error.args[0], str):
                click.echo(f"Error: {error.args[0]}", err=True)
                sys.exit(2)
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="atlas")
def main() -> None:
    """Atlas: Gryphon market data to trading-signal models, and the best one into production.

    Settings come from ATLAS_* environment variables; with none set, everything lives under ./.atlas/.
    """


from atlas.commands.data import data  # noqa: E402 (click only: heavy imports wait for a command to run)
from atlas.commands.featureset import featureset  # noqa: E402
from atlas.commands.train import harvest, train  # noqa: E402

main.add_command(data)
main.add_command(featureset)
main.add_command(train)
main.add_command(harvest)

if __name__ == "__main__":
    main()
