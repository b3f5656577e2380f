"""``atlas train`` and ``atlas harvest``: run a work spec's sweep, and read its trials back as a table."""

from __future__ import annotations

import sys

import click

from atlas.commands._common import command_settings, empty_is_none, store_option, tracking_option


@click.command()
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Build the data and print the plan; train nothing.")
@click.option("--address", default=None, metavar="ADDR", envvar="ATLAS_RAY_ADDRESS", callback=empty_is_none,
              help="An existing Ray cluster [env ATLAS_RAY_ADDRESS; default: start a local Ray].")
@click.option("--max-concurrent", type=click.IntRange(min=0), default=None, metavar="N",
              help="At most N trials at once (default or 0: the spec's max_concurrent, else what the cluster "
                   "fits).")
@click.option("--resume", is_flag=True, envvar="ATLAS_RESUME",
              help="Finish the newest execution of this spec; nothing runs twice [env ATLAS_RESUME=true].")
@click.option("--quiet", is_flag=True, help="No live progress.")
@store_option
@tracking_option
def train(spec_file: str, dry_run: bool, address: str | None, max_concurrent: int | None, resume: bool,
          quiet: bool, store_url: str | None, tracking_uri: str | None) -> None:
    """Train every model of the work spec in SPEC (a Python file defining SPEC), recorded in MLflow.

    \b
    Example:
      atlas train experiments/quickstart.py --dry-run
      atlas train experiments/quickstart.py --max-concurrent 2
      atlas train experiments/quickstart.py --resume     # after Ctrl-C
    """
    import os

    from atlas.infra import load_spec

    spec = load_spec(spec_file)
    settings = command_settings(store_url, tracking_uri)
    if dry_run:
        _print_plan(spec, settings)
        return
    from atlas.config import mask_url
    from atlas.infra import SweepInterrupted
    from atlas.infra import train as run

    try:
        report = run(spec, settings=settings, address=address, max_concurrent=max_concurrent or None,
                     resume=resume, progress=not quiet, source=f"atlas train {spec_file}",
                     project_run=os.environ.get("MLFLOW_RUN_ID"))
    except SweepInterrupted as stopped:
        if stopped.execution_run_id is None:
            again = f"atlas train {spec_file}" + (" --resume" if resume else "")
            click.echo(f"Interrupted before the sweep recorded anything; run it again with: {again}", err=True)
        else:
            click.echo(f"Interrupted before the first trial: the runs of execution {stopped.execution_run_id} "
                       f"are marked KILLED. Finish the sweep with: atlas train {spec_file} --resume", err=True)
        sys.exit(130)
    finished, pruned, failed = (report.count(s) for s in ("finished", "pruned", "failed"))
    click.echo(f"{spec.name}: {len(report.results)} trials in {report.wall_seconds:.0f} s on {report.slots} "
               f"slots: {finished} finished, {pruned} pruned, {failed} failed. Execution run "
               f"{report.execution_run_id} in experiment {spec.name!r}.")
    best = min((r for r in report.results if r.objective is not None and r.state == "finished"),
               key=lambda r: r.objective, default=None)
    if best is not None:
        click.echo(f"Lowest validation loss: {best.work_unit}/{best.model_spec}#{best.number} "
                   f"({best.objective:.4f}); on the test window: {summarize_test(best.scores)}.")
    if report.verdict is not None:
        click.echo(f"Verdict: {report.verdict}")
    if report.duplicates:
        click.echo(f"The tracking server restarted during the sweep: {report.duplicates} record(s) that MLflow's "
                   "retried requests wrote twice were deleted; every trial is recorded once.")
    for result in [r for r in report.results if r.state == "failed"][:3]:
        last = (result.error or "").strip().splitlines()[-1:] or ["?"]
        click.echo(f"Failed: {result.work_unit}/{result.model_spec}#{result.number}: {last[0]}", err=True)
    uri = mask_url(settings.tracking.mlflow_uri)
    click.echo(f"Results: atlas harvest {spec_file} --output results.parquet; report: atlas report {spec_file}")
    if uri.startswith(("http://", "https://")):  # a tracking server is its own UI
        click.echo(f"MLflow UI: {runs_view(uri.rstrip('/'), report.experiment_id)}")
    else:
        click.echo(f"MLflow UI: mlflow ui --backend-store-uri {uri} --port 5000, then open "
                   f"{runs_view('http://127.0.0.1:5000', report.experiment_id)}")
    if report.interrupted:
        click.echo(f"Interrupted: unfinished trials are marked KILLED. Finish the sweep with: "
                   f"atlas train {spec_file} --resume", err=True)
        sys.exit(130)
    if report.results and failed == len(report.results):
        click.echo("Error: every trial failed; see the traceback.txt artifact of any trial run", err=True)
        sys.exit(1)


def runs_view(server: str, experiment_id: str) -> str:
    """The MLflow UI's runs view of an experiment (a fresh browser opens MLflow 3's GenAI view otherwise)."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def summarize_test(scores) -> str:
    """A trial's test window in one phrase: accuracy with the lift over the baseline and its 95% interval, log
    loss beside the baseline's, the p-value and the Sharpe ratio (or a regressor's errors)."""
    def get(name):
        value = scores.get(name)
        return None if value is None or value != value else float(value)

    parts = []
    if get("test_accuracy") is not None:
        part = f"accuracy {get('test_accuracy'):.4f}"
        if get("test_lift") is not None:
            interval = (f" [{get('test_lift_ci_low'):+.4f}, {get('test_lift_ci_high'):+.4f}]"
                        if get("test_lift_ci_low") is not None else "")
            part += f", lift {get('test_lift'):+.4f}{interval}"
        parts.append(part)
        if get("test_log_loss") is not None:
            baseline = f" (baseline {get('test_baseline_log_loss'):.4f})" if get("test_baseline_log_loss") else ""
            parts.append(f"log loss {get('test_log_loss'):.4f}{baseline}")
    elif get("test_rmse") is not None:
        parts.append(f"RMSE {get('test_rmse'):.6g}, directional accuracy {get('test_directional_accuracy'):.4f}")
        if get("test_lift") is not None:
            parts.append(f"error reduction {get('test_lift'):+.3g} [{get('test_lift_ci_low'):+.3g}, "
                         f"{get('test_lift_ci_high'):+.3g}]")
    if get("test_p_value") is not None:
        parts.append(f"p {get('test_p_value'):.3g}")
    if get("test_sharpe") is not None:
        parts.append(f"Sharpe {get('test_sharpe'):.2f}")
    return ", ".join(parts) or "no statistics"


def _print_plan(spec, settings) -> None:
    from atlas.infra import plan

    rows = plan(spec, settings=settings)
    click.echo(f"{spec.name}: {spec.n_trials} trials, search {spec.search.strategy}, {spec.resources.cpu} CPU and "
               f"{spec.resources.gpu} GPU per trial, seed {spec.seed}")
    width = max(len(f"{r['work_unit']}/{r['model_spec']}") for r in rows)
    for row in rows:
        name = f"{row['work_unit']}/{row['model_spec']}"
        click.echo(f"  {name:<{width}}  {row['model']:<22} {row['trials']:>4} trials  "
                   f"train {row['train_samples']:>7}  test {row['test_samples']:>7}  data {row['data_hash']}")
        notes = _data_notes(row.get("report") or {})
        if notes:
            click.echo(f"  {'':<{width}}  {notes}")


def _data_notes(report: dict) -> str:
    """What the dataset left out or joined, per part: windows across gaps, exact-zero labels (ties)."""
    def per_part(key: str) -> str | None:
        counts = {part: (report.get(part) or {}).get(key) for part in ("train", "test")}
        if not any(counts.values()):
            return None
        return ", ".join(f"{part} {n or 0}" for part, n in counts.items())

    notes = []
    for key, words in (("windows_dropped", "windows across a gap dropped"),
                       ("windows_across_gaps", "windows across a gap"),
                       ("zero_labels", "exact-zero labels (ties)"),
                       ("ties_dropped", "ties dropped")):
        shown = per_part(key)
        if shown and not (key == "windows_across_gaps" and per_part("windows_dropped")):
            notes.append(f"{words}: {shown}")
    return "; ".join(notes)


@click.command()
@click.argument("spec", metavar="SPEC")
@click.option("--output", "-o", default=None, metavar="FILE", help="Write the table as .parquet or .csv.")
@click.option("--execution", default="latest", show_default=True, metavar="latest|all|RUN_ID",
              help="Which execution of the spec.")
@click.option("--top", default=10, show_default=True, metavar="N", help="Print the N lowest validation losses.")
@store_option
@tracking_option
def harvest(spec: str, output: str | None, execution: str, top: int, store_url: str | None,
            tracking_uri: str | None) -> None:
    """Every trial of SPEC (a spec file or a work spec's name) as one table: params, metrics, states, run ids."""
    from pathlib import Path

    from atlas.infra import harvest as read
    from atlas.infra import load_spec
    from atlas.runs import write_results

    name = load_spec(spec).name if spec.endswith(".py") or Path(spec).is_file() else spec
    frame = read(name, settings=command_settings(store_url, tracking_uri, read_only=True), execution=execution)
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    click.echo(f"{name}: {len(frame)} trials " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if len(frame) and "best_val_loss" in frame:
        shown = frame.sort_values("best_val_loss").head(top)
        for _, row in shown.iterrows():
            click.echo(f"  {row['work_unit']}/{row['model_spec']}#{row['trial']} {row['state']}: val_loss "
                       f"{row['best_val_loss']:.4f}; {summarize_test(row.to_dict())}")
    if output:
        click.echo(f"Wrote {write_results(frame, output)}")
