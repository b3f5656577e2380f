"""``atlas report``: one self-contained HTML file of a sweep's execution, also logged on its execution run."""

from __future__ import annotations

import click

from atlas.commands._common import command_settings, tracking_option


@click.command()
@click.argument("spec", metavar="SPEC")
@click.option("--execution", default="latest", show_default=True, metavar="latest|RUN_ID",
              help="Which execution of the spec.")
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=0), metavar="N",
              help="Cards of the N trials with the lowest validation loss.")
@click.option("--output", "-o", default=None, metavar="FILE",
              help="The HTML file [default: $ATLAS_HOME/reports/SPEC-EXECUTION.html].")
@click.option("--server", default=None, metavar="URL", envvar="ATLAS_MLFLOW_UI",
              help="An MLflow UI to link each run to [env ATLAS_MLFLOW_UI; default: the tracking server, when "
                   "MLFLOW_TRACKING_URI is one].")
@tracking_option
def report(spec: str, execution: str, top: int, output: str | None, server: str | None,
           tracking_uri: str | None) -> None:
    """Write the report of SPEC (a spec file or a work spec's name): the sweep, its overview, the verdict on it and
    the cards of its best trials, in one HTML file that opens from disk."""
    from pathlib import Path

    from atlas.stats._report import write_report

    settings = command_settings(tracking_uri=tracking_uri, read_only=True)
    name = _spec_name(spec)
    results, described, verdict, cards = _gather(name, execution, top, settings.tracking.mlflow_uri)
    uri = settings.tracking.mlflow_uri
    server = server or (uri if uri.startswith(("http://", "https://")) else None)
    path = Path(output) if output else settings.home / "reports" / f"{name}-{described['run_id'][:8]}.html"
    written = write_report(results, path, execution=described, top=top, server=server, verdict=verdict,
                           cards=cards)
    _log(uri, settings.tracking.artifact_root, described["run_id"], written)
    click.echo(f"{name}: report of execution {described['run_id']} ({len(results)} trials) written to {written}")
    click.echo(f"Open it in a browser: file://{written.resolve()}")


def _spec_name(spec: str) -> str:
    from pathlib import Path

    if spec.endswith(".py") or Path(spec).is_file():
        from atlas.infra import load_spec

        return load_spec(spec).name
    return spec


def _gather(name: str, execution: str, top: int, uri: str):
    """The execution's trials, its description, its logged verdict and the cards logged for its best trials."""
    import json
    import tempfile

    from atlas.exceptions import ConfigError, MissingDataError
    from atlas.runs import CARD_ARTIFACT, SIGNIFICANCE_ARTIFACT, describe_execution, fetch_artifact
    from atlas.stats import harvest
    from atlas.stats._report import StoredVerdict

    if execution == "all":
        msg = "a report covers one execution: give --execution latest or an execution run id"
        raise ConfigError(msg)
    results = harvest(name, tracking_uri=uri, execution=execution)
    if results.empty:
        msg = f"work spec {name!r} has no trial in execution {execution!r}: nothing to report"
        raise MissingDataError(msg)
    described = describe_execution(uri, str(results["execution_run_id"].iloc[0]))
    verdict, cards = None, {}
    with tempfile.TemporaryDirectory(prefix="atlas-report-") as folder:
        try:
            with open(fetch_artifact(uri, described["run_id"], SIGNIFICANCE_ARTIFACT, folder)) as handle:
                verdict = StoredVerdict(json.load(handle))
        except MissingDataError:
            pass  # an execution stopped before its digest: the report judges it from the stored predictions
        finished = results[results["state"] == "finished"].sort_values("best_val_loss").head(top)
        for run_id in finished["run_id"]:
            try:
                cards[run_id] = fetch_artifact(uri, run_id, CARD_ARTIFACT, folder).read_bytes()
            except MissingDataError:
                continue  # drawn from its predictions instead
    return results, described, verdict, cards


def _log(uri: str, artifact_root: str | None, execution: str, path) -> None:
    from atlas.runs import REPORT_ARTIFACT, RunWriter

    RunWriter(uri, artifact_root).log_bytes(execution, path.read_bytes(), REPORT_ARTIFACT)
