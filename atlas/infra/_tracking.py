"""MLflow records a sweep: an experiment per work spec, a run per execution, a child per work unit, a grandchild
per trial.

Only the sweep's driver writes to MLflow, through one ``MlflowClient``: workers send their results back, so
concurrent trials never contend for the default SQLite store. Each trial's parameters, tags and per-epoch
metrics go in one ``log_batch`` (MLflow splits it within its limits).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import (
    DatasetInput,
    InputTag,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunTag,
)
from mlflow.tracking import MlflowClient

from atlas.exceptions import ConfigError

#: Tag names, in one place; harvest and the stats read them back.
LEVEL, WORK_SPEC, WORK_UNIT, MODEL_SPEC, TRIAL, STATE = ("atlas.level", "atlas.work_spec", "atlas.work_unit",
                                                          "atlas.model_spec", "atlas.trial", "atlas.state")
DATA_HASH, CODE_VERSION, EXECUTION, PARENT, RUN_NAME = ("atlas.data_hash", "atlas.code_version", "atlas.execution",
                                                        "mlflow.parentRunId", "mlflow.runName")
_STATUS = {"finished": "FINISHED", "pruned": "FINISHED", "failed": "FAILED", "killed": "KILLED"}


def code_version() -> str:
    """The git commit of the working tree (with ``-dirty`` when it has changes), else Atlas's version."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, check=True)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        import atlas

        return f"atlas-{getattr(atlas, '__version__', 'unknown')}"


def flat_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Parameters as MLflow strings: lists and mappings as JSON, nested names joined by dots."""
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return {k: v[:6000] for k, v in out.items()}


class Tracker:
    """The sweep's MLflow client: experiments, nested runs, batched metrics, models, datasets."""

    def __init__(self, tracking_uri: str, artifact_root: str) -> None:
        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.artifact_root = artifact_root

    def experiment(self, name: str) -> str:
        """The id of the experiment ``name``, created (artifacts under the artifact root) when missing.

        Raises:
            ConfigError: the tracking store cannot be reached, or the experiment was deleted.
        """
        try:
            found = self.client.get_experiment_by_name(name)
        except Exception as error:
            msg = f"cannot reach the MLflow tracking store {self.uri!r} (MLFLOW_TRACKING_URI): {error}"
            raise ConfigError(msg) from error
        if found is not None:
            if found.lifecycle_stage == "deleted":
                msg = (f"the MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore "
                       f"--experiment-id {found.experiment_id}) or rename the work spec")
                raise ConfigError(msg)
            return found.experiment_id
        root = self.artifact_root
        location = root if "://" in root else Path(root).resolve().joinpath(name).as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def start(self, experiment_id: str, name: str, tags: Mapping[str, str], parent: str | None = None) -> str:
        """A new RUNNING run; ``parent`` nests it."""
        tags = {RUN_NAME: name, **tags, **({PARENT: parent} if parent else {})}
        return self.client.create_run(experiment_id, tags=tags, run_name=name).info.run_id

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def latest_execution(self, experiment_id: str, work_spec: str) -> str | None:
        """The newest execution run of ``work_spec``, or None."""
        query = f"tags.`{LEVEL}` = 'execution' and tags.`{WORK_SPEC}` = '{work_spec}'"
        runs = self.client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"],
                                       max_results=1)
        return runs[0].info.run_id if runs else None

    def children(self, experiment_id: str, parent: str) -> dict[str, str]:
        """Run name -> run id of the runs nested directly under ``parent``."""
        runs = self.client.search_runs([experiment_id], f"tags.`{PARENT}` = '{parent}'", max_results=50000)
        return {run.data.tags.get(RUN_NAME, run.info.run_name): run.info.run_id for run in runs}

    def log(self, run_id: str, *, params: Mapping[str, str] = {}, metrics: Mapping[str, float] = {},
            series: Mapping[str, list[float]] = {}, tags: Mapping[str, str] = {}) -> None:
        """Parameters, final metrics, per-step series and tags in one batch."""
        now = int(time.time() * 1000)
        rows = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
        rows += [Metric(name, float(v), now, step) for name, values in series.items()
                 for step, v in enumerate(values)]
        self.client.log_batch(run_id, metrics=rows, params=[Param(k, str(v)) for k, v in params.items()],
                              tags=[RunTag(k, str(v)[:8000]) for k, v in tags.items()], synchronous=True)

    def end(self, run_id: str, state: str, *, tagged: bool = False) -> None:
        """Ends a run: ``finished`` and ``pruned`` as FINISHED, ``failed`` as FAILED, ``killed`` as KILLED
        (``tagged``: the ``atlas.state`` tag was already logged)."""
        if not tagged:
            self.client.set_tag(run_id, STATE, state)
        self.client.set_terminated(run_id, _STATUS[state])

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_dataset(self, run_id: str, dataset, featureset, store_url: str, context: str = "training") -> None:
        """The work unit's data as an MLflow dataset input: the set's name and key, the store, the content hash."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types import ColSpec, Schema

        source = CodeDatasetSource({"featureset": featureset.key, "store": _redacted(store_url),
                                    "train": f"{dataset.index_train[0]} .. {dataset.index_train[-1]}",
                                    "test": f"{dataset.index_test[0]} .. {dataset.index_test[-1]}"})
        schema = Schema([ColSpec("double", name) for name in dataset.feature_names])
        meta = MetaDataset(source, name=featureset.title or featureset.key, digest=dataset.content_hash[:36],
                           schema=schema)
        self.client.log_inputs(run_id, datasets=[DatasetInput(meta._to_mlflow_entity(),
                                                              [InputTag("mlflow.data.context", context)])])

    def log_model(self, run_id: str, experiment_id: str, package: bytes, *, name: str = "model",
                  tags: Mapping[str, str] | None = None) -> str:
        """Logs a packaged pyfunc model (from a worker) as the run's logged model; returns its model id."""
        from mlflow.models import Model

        from atlas.infra._trial import unpack_model

        logged = self.client.create_logged_model(experiment_id, name=name, source_run_id=run_id,
                                                 tags=dict(tags or {}), model_type="atlas")
        with tempfile.TemporaryDirectory(prefix="atlas-log-") as staging:
            folder = unpack_model(package, Path(staging))
            mlmodel = Model.load(folder / "MLmodel")
            mlmodel.model_id, mlmodel.run_id, mlmodel.model_uuid = logged.model_id, run_id, logged.model_id
            mlmodel.artifact_path = logged.artifact_location
            mlmodel.save(folder / "MLmodel")
            self.client.log_model_artifacts(logged.model_id, str(folder))
        self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return logged.model_id


def _redacted(url: str) -> str:
    """A store URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL: keep it as given
        return url
