"""Harvest: every trial of a sweep, read back from MLflow as one Results DataFrame (no pickles, no scp).

One row per trial: its work unit, model spec and trial number, its state (finished, pruned, failed, killed),
its parameters (``param.*``), its final metrics (``test_accuracy``, ``best_val_loss``, ...), where it ran, and
the ids that find it again in MLflow (run, work unit run, execution run, logged model).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from atlas.config import Settings, mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.infra._names import quoted
from atlas.infra._stores import probe_tracking
from atlas.infra._tracking import (
    CODE_VERSION,
    DATA_HASH,
    EXECUTION,
    LEVEL,
    MODEL_SPEC,
    PARENT,
    STATE,
    TRIAL,
    WORK_SPEC,
    WORK_UNIT,
)

#: The leading columns of a Results frame, in order; parameters and metrics follow.
COLUMNS = ["work_spec", "work_unit", "model_spec", "trial", "model", "state", "best_val_loss", "run_id",
           "work_unit_run_id", "execution_run_id", "model_id", "start_time", "end_time", "host", "node",
           "attempts", "data_hash", "code_version", "error"]
_PAGE = 1000


def harvest(work_spec: str, *, settings: Settings | None = None, execution: str = "latest") -> pd.DataFrame:
    """The trials of ``work_spec`` (a name) as a Results DataFrame, sorted by work unit, model spec, trial.

    Example (after ``atlas train experiments/quickstart.py``)::

        results = harvest("quickstart")
        results.groupby("model_spec")["test_accuracy"].max()

    Args:
        execution: ``"latest"`` (the newest execution of the work spec), ``"all"``, or an execution run id.

    Raises:
        ConfigError: no experiment or no execution of that name in the tracking store, or the store cannot be
            reached (MLFLOW_TRACKING_URI).
    """
    from mlflow.tracking import MlflowClient

    settings = settings or Settings.from_env()
    uri = mask_url(settings.tracking.mlflow_uri)
    probe_tracking(settings.tracking.mlflow_uri)  # seconds, not MLflow's minutes of retries
    client = MlflowClient(settings.tracking.mlflow_uri)
    try:
        experiment = client.get_experiment_by_name(work_spec)
    except Exception as error:  # noqa: BLE001 - any failure to read it; the cause, masked, is in the message
        msg = f"cannot read the MLflow tracking store {uri} (MLFLOW_TRACKING_URI): {mask_text(str(error))}"
        raise ConfigError(msg) from None
    if experiment is None:
        msg = (f"the MLflow store {uri} has no experiment {work_spec!r}; train it first "
               f"(atlas train experiments/{work_spec}.py) or set MLFLOW_TRACKING_URI to the store that has it")
        raise ConfigError(msg)
    query = f"tags.`{LEVEL}` = 'trial' and tags.`{WORK_SPEC}` = {quoted(work_spec)}"
    if execution == "latest":
        runs = client.search_runs([experiment.experiment_id], f"tags.`{LEVEL}` = 'execution'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            msg = f"work spec {work_spec!r} has no execution in {uri}"
            raise ConfigError(msg)
        execution = runs[0].info.run_id
    if execution != "all":
        query += f" and tags.`{EXECUTION}` = {_execution_literal(execution, work_spec)}"
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
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
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
    row = {"work_spec": tags.get(WORK_SPEC), "work_unit": tags.get(WORK_UNIT), "model_spec": tags.get(MODEL_SPEC),
           "trial": int(tags.get(TRIAL, -1)), "model": tags.get("atlas.model"),
           "state": tags.get(STATE, info.status.lower()), "run_id": info.run_id,
           "work_unit_run_id": tags.get(PARENT), "execution_run_id": tags.get(EXECUTION),
           "model_id": models[0].model_id if models else None,
           "start_time": pd.Timestamp(info.start_time, unit="ms", tz="UTC"),
           "end_time": pd.Timestamp(info.end_time, unit="ms", tz="UTC") if info.end_time else pd.NaT,
           "host": tags.get("atlas.host"), "node": tags.get("atlas.node"),
           "attempts": int(tags.get("atlas.attempts", 1)), "data_hash": tags.get(DATA_HASH),
           "code_version": tags.get(CODE_VERSION), "error": tags.get("atlas.error")}
    if row["state"] == "running":  # a driver that died without marking its trials
        row["state"] = "unfinished"
    row.update({f"param.{k}": v for k, v in run.data.params.items()})
    row.update(run.data.metrics)
    return row


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
