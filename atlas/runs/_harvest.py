"""Harvest: every trial of a sweep, read back from MLflow as one Results DataFrame (no pickles, no scp), and the
artifacts of any run (its stored predictions) fetched back.

One row per trial: its work unit, model spec and trial number, its state (finished, pruned, failed, killed),
its parameters (``param.*``), its final metrics (``test_accuracy``, ``best_val_loss``, ...), where it ran, and
the ids that find it again in MLflow (run, work unit run, execution run, logged model).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError, MissingDataError
from atlas.runs._names import quoted
from atlas.runs._probe import probe_tracking
from atlas.runs._tags import PREDICTIONS_ARTIFACT, Level, Tag

#: The leading columns of a Results frame, in order; parameters and metrics follow.
COLUMNS = ["work_spec", "work_unit", "model_spec", "trial", "replicate", "model", "state", "best_val_loss",
           "run_id", "run_name", "work_unit_run_id", "execution_run_id", "model_id", "start_time", "end_time",
           "host", "node", "attempts", "data_hash", "code_version", "schema", "error", "artifact_uri"]
_PAGE = 1000


def harvest(work_spec: str, *, tracking_uri: str, execution: str = "latest") -> pd.DataFrame:
    """The trials of ``work_spec`` (a name) as a Results DataFrame, sorted by work unit, model spec, trial.

    Example (after ``atlas train experiments/quickstart.py``)::

        results = harvest("quickstart", tracking_uri=settings.tracking.mlflow_uri)
        results.groupby("model_spec")["test_accuracy"].max()

    Args:
        tracking_uri: the MLflow tracking store (``Settings.tracking.mlflow_uri``).
        execution: ``"latest"`` (the newest execution of the work spec), ``"all"``, or an execution run id.

    Raises:
        ConfigError: no experiment or no execution of that name in the tracking store, or the store cannot be
            reached (MLFLOW_TRACKING_URI).
    """
    from mlflow.tracking import MlflowClient

    uri = mask_url(tracking_uri)
    probe_tracking(tracking_uri)  # seconds, not MLflow's minutes of retries
    client = MlflowClient(tracking_uri)
    try:
        experiment = client.get_experiment_by_name(work_spec)
    except Exception as error:  # noqa: BLE001 - any failure to read it; the cause, masked, is in the message
        msg = f"cannot read the MLflow tracking store {uri} (MLFLOW_TRACKING_URI): {mask_text(str(error))}"
        raise ConfigError(msg) from None
    if experiment is None:
        msg = (f"the MLflow store {uri} has no experiment {work_spec!r}; train it first "
               f"(atlas train experiments/{work_spec}.py) or set MLFLOW_TRACKING_URI to the store that has it")
        raise ConfigError(msg)
    query = f"tags.`{Tag.LEVEL}` = '{Level.TRIAL}' and tags.`{Tag.WORK_SPEC}` = {quoted(work_spec)}"
    if execution == "latest":
        runs = client.search_runs([experiment.experiment_id], f"tags.`{Tag.LEVEL}` = '{Level.EXECUTION}'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            msg = f"work spec {work_spec!r} has no execution in {uri}"
            raise ConfigError(msg)
        execution = runs[0].info.run_id
    if execution != "all":
        query += f" and tags.`{Tag.EXECUTION}` = {_execution_literal(execution, work_spec)}"
    rows, token = [], None
    while True:
        page = client.search_runs([experiment.experiment_id], query, max_results=_PAGE, page_token=token)
        rows.extend(_row(run) for run in page)
        token = page.token
        if not token:
            break
    if execution != "all" and not rows and client.search_runs(
            [experiment.experiment_id], f"attributes.run_id = {quoted(execution)}", max_results=1) == []:
        msg = (f"{execution!r} is not an execution run of work spec {work_spec!r}; give one of its execution run "
               f"ids, 'latest' or 'all'")
        raise ConfigError(msg)
    frame = pd.DataFrame(rows)
    frame.attrs["atlas.tracking_uri"] = tracking_uri
    if frame.empty:
        empty = pd.DataFrame(columns=COLUMNS)
        empty.attrs["atlas.tracking_uri"] = tracking_uri
        return empty
    extra = sorted(c for c in frame.columns if c not in COLUMNS)
    # reindex, not select: a sweep whose trials all failed has no best_val_loss column to select
    frame = frame.reindex(columns=COLUMNS + [c for c in extra if c.startswith("param.")] +
                          [c for c in extra if not c.startswith("param.")])
    return frame.sort_values(["work_unit", "model_spec", "trial", "start_time"]).reset_index(drop=True)


def _execution_literal(execution: str, work_spec: str) -> str:
    try:
        return quoted(execution)
    except ConfigError:
        msg = (f"{execution!r} is not an execution run of work spec {work_spec!r}; give one of its execution run "
               f"ids, 'latest' or 'all'")
        raise ConfigError(msg) from None


def _row(run) -> dict:
    tags, info = run.data.tags, run.info
    models = run.outputs.model_outputs if run.outputs else []
    row = {"work_spec": tags.get(Tag.WORK_SPEC), "work_unit": tags.get(Tag.WORK_UNIT),
           "model_spec": tags.get(Tag.MODEL_SPEC), "trial": int(tags.get(Tag.TRIAL, -1)),
           "replicate": int(tags.get(Tag.REPLICATE, 0)), "model": tags.get(Tag.MODEL),
           "state": tags.get(Tag.STATE, info.status.lower()), "run_id": info.run_id,
           "run_name": tags.get(Tag.RUN_NAME, info.run_name), "work_unit_run_id": tags.get(Tag.PARENT),
           "execution_run_id": tags.get(Tag.EXECUTION), "model_id": models[0].model_id if models else None,
           "start_time": pd.Timestamp(info.start_time, unit="ms", tz="UTC"),
           "end_time": pd.Timestamp(info.end_time, unit="ms", tz="UTC") if info.end_time else pd.NaT,
           "host": tags.get(Tag.HOST), "node": tags.get(Tag.NODE), "attempts": int(tags.get(Tag.ATTEMPTS, 1)),
           "data_hash": tags.get(Tag.DATA_HASH), "code_version": tags.get(Tag.CODE_VERSION),
           "schema": int(tags.get(Tag.SCHEMA, 1)), "error": tags.get(Tag.ERROR),
           "artifact_uri": info.artifact_uri}
    if row["state"] == "running":  # a driver that died without marking its trials
        row["state"] = "unfinished"
    row.update({f"param.{k}": v for k, v in run.data.params.items()})
    row.update(run.data.metrics)
    return row


def read_artifact(tracking_uri: str, run_id: str, path: str, artifact_uri: str | None = None) -> bytes:
    """The bytes of the artifact ``path`` of run ``run_id``: read in place when the run's artifacts are local
    files (``artifact_uri``, as harvest gives it: no MLflow round trip), downloaded otherwise.

    Raises:
        MissingDataError: the run has no such artifact (the message names the run and why).
    """
    from urllib.parse import unquote, urlsplit

    if artifact_uri and artifact_uri.startswith("file:"):
        local = Path(unquote(urlsplit(artifact_uri).path)) / path
        if local.is_file():
            return local.read_bytes()
    with tempfile.TemporaryDirectory(prefix="atlas-artifact-") as folder:
        return fetch_artifact(tracking_uri, run_id, path, folder).read_bytes()


def fetch_artifact(tracking_uri: str, run_id: str, path: str, into: str | Path) -> Path:
    """Downloads the artifact ``path`` of the run ``run_id`` into the folder ``into``; returns the local path.

    Raises:
        MissingDataError: the run has no such artifact; the message names the run and what is missing.
        ConfigError: the tracking store cannot be reached (MLFLOW_TRACKING_URI).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        msg = f"no run {run_id!r} in the MLflow store {mask_url(tracking_uri)} (MLFLOW_TRACKING_URI)"
        raise MissingDataError(msg) from None
    names = {item.path for item in client.list_artifacts(run_id, str(Path(path).parent))
             if not item.is_dir} if Path(path).parent != Path(".") else \
        {item.path for item in client.list_artifacts(run_id) if not item.is_dir}
    if path not in names:
        state = run.data.tags.get(Tag.STATE, run.info.status.lower())
        name = run.data.tags.get(Tag.RUN_NAME, run.info.run_name)
        why = {"failed": "it failed", "pruned": "it was pruned before its test window was scored",
               "killed": "it was stopped before it finished"}.get(state)
        if path == PREDICTIONS_ARTIFACT:
            why = why or ("it was recorded before Atlas kept predictions (schema 1)"
                          if int(run.data.tags.get(Tag.SCHEMA, 1)) < 2 else "it has none")
            msg = (f"run {run_id} ({name}) has no stored predictions ({PREDICTIONS_ARTIFACT}): {why}; only "
                   f"finished trials recorded by this version of Atlas have them")
        else:
            msg = f"run {run_id} ({name}) has no artifact {path!r}" + (f": {why}" if why else "")
        raise MissingDataError(msg)
    return Path(client.download_artifacts(run_id, path, str(into)))


def describe_execution(tracking_uri: str, execution: str) -> dict:
    """An execution run and its work unit runs, as plain values: what a report says about the sweep.

    Returns:
        ``{"run_id", "run_name", "experiment_id", "status", "start_time", "end_time", "params", "metrics",
        "tags", "work_units": [{"run_id", "name", "params", "metrics", "tags"}, ...]}``, times as UTC timestamps.

    Raises:
        ConfigError: there is no such run in the tracking store.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        run = client.get_run(execution)
    except MlflowException:
        msg = f"no execution run {execution!r} in the MLflow store {mask_url(tracking_uri)} (MLFLOW_TRACKING_URI)"
        raise ConfigError(msg) from None
    units = client.search_runs([run.info.experiment_id], f"tags.`{Tag.PARENT}` = {quoted(execution)}",
                               max_results=1000)

    def when(ms):
        return pd.Timestamp(ms, unit="ms", tz="UTC") if ms else None

    return {"run_id": run.info.run_id, "run_name": run.info.run_name, "experiment_id": run.info.experiment_id,
            "status": run.info.status, "start_time": when(run.info.start_time), "end_time": when(run.info.end_time),
            "params": dict(run.data.params), "metrics": dict(run.data.metrics), "tags": dict(run.data.tags),
            "work_units": sorted(({"run_id": u.info.run_id, "name": u.data.tags.get(Tag.WORK_UNIT, u.info.run_name),
                                   "params": dict(u.data.params), "metrics": dict(u.data.metrics),
                                   "tags": dict(u.data.tags)} for u in units), key=lambda u: u["name"])}


def write_results(frame: pd.DataFrame, path: str | Path) -> Path:
    """Writes a Results frame as Parquet (``.parquet``) or CSV (``.csv``); returns the path.

    Raises:
        ConfigError: another extension.
    """
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        msg = f"results are written as .parquet or .csv, got {path.name!r}; e.g. --output results.parquet"
        raise ConfigError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
