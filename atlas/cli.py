"""The ``atlas`` command. Subcommands import their heavy libraries when they run, so ``atlas --help`` is quick."""

from __future__ import annotations

import errno
import os
import sys

import click

from atlas import __version__


class _Group(click.Group):
    """Turns every expected failure into one line ``Error: ...`` on stderr, instead of a traceback or "Aborted!".

    Atlas's own errors, lookups that name what exists, usage mistakes and OS errors (a full disk, a read-only
    folder) exit with status 2; Ctrl-C in ``atlas data`` says what the store holds and exits with 130.
    """

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:  # `atlas --bogus`: an option of atlas itself
            path = error.ctx.command_path if error.ctx is not None else info_name
            _fail(f"{error.format_message()} Try '{path} --help' for help.", error.exit_code)

    def invoke(self, ctx: click.Context):
        from atlas.exceptions import AtlasError

        try:
            return super().invoke(ctx)
        except AtlasError as error:
            _fail(str(error))
        except KeyError as error:  # lookups that name what exists, e.g. an unknown series
            if error.args and isinstance(error.args[0], str):
                _fail(error.args[0])
            raise
        except click.exceptions.NoArgsIsHelpError:
            raise  # `atlas data` alone: the help, as asked
        except click.UsageError as error:
            path = error.ctx.command_path if error.ctx is not None else ctx.command_path
            _fail(f"{error.format_message()} Try '{path} --help' for help.", error.exit_code)
        except OSError as error:
            if error.errno == errno.EPIPE:  # `atlas data series ... | head`: the reader has all it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(1)
            from atlas.commands._common import AFTER_FAILURE_KEY, STORE_KEY, os_error_text

            _fail(os_error_text(error, store=ctx.meta.get(STORE_KEY), after=ctx.meta.get(AFTER_FAILURE_KEY)))
        except EOFError as error:
            _fail(f"unexpected end of input ({error or 'EOF'}); is a file or a pipe cut short?")
        except KeyboardInterrupt:
            if ctx.invoked_subcommand == "train":  # a sweep that had begun says so itself, and exits with 130
                _fail("interrupted before the sweep began (loading the spec); nothing was recorded", 130)
            _fail(_interrupted(ctx), 130)


def _interrupted(ctx: click.Context) -> str:
    from atlas.commands._common import AFTER_FAILURE_KEY, STORE_KEY

    if ctx.invoked_subcommand != "data":
        return "interrupted; run the command again"
    after = ctx.meta.get(AFTER_FAILURE_KEY)
    if after is None:
        return "interrupted; nothing half-written: this command writes nothing to the store"
    return f"interrupted; nothing half-written: {after.format(store=ctx.meta.get(STORE_KEY) or '')}"


def _fail(message: str, status: int = 2) -> None:
    """Prints ``Error: message`` as one line on stderr and exits with ``status``."""
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    click.echo(f"Error: {line}", err=True)
    sys.exit(status)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="atlas")
def main() -> None:
    """Atlas: Gryphon market data to trading-signal models, and the best one into production.

    Settings come from ATLAS_* environment variables; with none set, everything lives under ./.atlas/.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not the command's output
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # a server's run links: ours say where


from atlas.commands.data import data  # noqa: E402 (click only: heavy imports wait for a command to run)
from atlas.commands.doctor import doctor  # noqa: E402
from atlas.commands.featureset import featureset  # noqa: E402
from atlas.commands.promote import models, promote, rollback  # noqa: E402
from atlas.commands.report import report  # noqa: E402
from atlas.commands.serve import serve  # noqa: E402
from atlas.commands.train import harvest, train  # noqa: E402

main.add_command(data)
main.add_command(featureset)
main.add_command(train)
main.add_command(harvest)
main.add_command(report)
main.add_command(doctor)
main.add_command(promote)
main.add_command(rollback)
main.add_command(models)
main.add_command(serve)

# MLflow draws a progress bar for every artifact it downloads (a report fetches a dozen): not on Atlas's console
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

if __name__ == "__main__":
    main()
