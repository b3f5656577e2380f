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
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
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
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.infra._names import check_name, quoted

#: Tag names, in one place; harvest and the stats read them back.
LEVEL, WORK_SPEC, WORK_UNIT, MODEL_SPEC, TRIAL, STATE = ("atlas.level", "atlas.work_spec", "atlas.work_unit",
                                                          "atlas.model_spec", "atlas.trial", "atlas.state")
DATA_HASH, CODE_VERSION, EXECUTION, PARENT, RUN_NAME = ("atlas.data_hash", "atlas.code_version", "atlas.execution",
                                                        "mlflow.parentRunId", "mlflow.runName")
ERROR = "atlas.error"
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
    """The sweep's MLflow client: experiments, nested runs, batched metrics, models, datasets.

    It keeps the runs it opened (started or reopened) and has not ended, so a sweep that stops at any moment
    ends them all (:meth:`end_open`). ``atomic`` makes a block that a Ctrl-C does not split (the sweep's
    signal handling); a run is never created without being kept, or ended without being forgotten.
    """

    def __init__(self, tracking_uri: str, artifact_root: str, *,
                 atomic: Callable[[], AbstractContextManager] = nullcontext) -> None:
        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.artifact_root = artifact_root
        self.atomic = atomic
        self.opened: dict[str, None] = {}  # insertion-ordered: the execution first, trials last

    def experiment(self, name: str) -> str:
        """The id of the experiment ``name``, created (artifacts under the artifact root) when missing.

        Raises:
            ConfigError: the tracking store cannot be reached, the experiment was deleted, or ``name`` cannot
                name a folder under the artifact root.
        """
        check_name("WorkSpec", "name", name)
        found = self._find(name)
        if found is not None:
            return found
        root = self.artifact_root
        if "://" in root:
            location = root
        else:
            folder = Path(root).resolve().joinpath(name).resolve()
            if not folder.is_relative_to(Path(root).resolve()):  # check_name forbids it; never write outside
                msg = f"the experiment {name!r} would keep its artifacts outside ATLAS_ARTIFACT_ROOT {root}"
                raise ConfigError(msg)
            location = folder.as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self._find(name)  # another sweep of this work spec created it a moment ago

    def _find(self, name: str) -> str | None:
        try:
            found = self.client.get_experiment_by_name(name)
        except Exception as error:  # noqa: BLE001 - any failure to reach it; the cause, masked, is in the message
            msg = (f"cannot reach the MLflow tracking store {mask_url(self.uri)} (MLFLOW_TRACKING_URI): "
                   f"{mask_text(str(error))}")
            raise ConfigError(msg) from None
        if found is not None and found.lifecycle_stage == "deleted":
            msg = (f"the MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore "
                   f"--experiment-id {found.experiment_id}) or rename the work spec")
            raise ConfigError(msg)
        return None if found is None else found.experiment_id

    def start(self, experiment_id: str, name: str, tags: Mapping[str, str], parent: str | None = None) -> str:
        """A new RUNNING run; ``parent`` nests it."""
        tags = {RUN_NAME: name, **tags, **({PARENT: parent} if parent else {})}
        with self.atomic():
            run_id = self.client.create_run(experiment_id, tags=tags, run_name=name).info.run_id
            self.opened[run_id] = None
        return run_id

    def reopen(self, run_id: str) -> None:
        """Sets a run RUNNING again (a resumed sweep's execution and work units)."""
        with self.atomic():
            self.client.update_run(run_id, status="RUNNING")
            self.opened[run_id] = None

    def adopt(self, run_id: str) -> None:
        """Counts a RUNNING run that someone else started (``mlflow run``'s) as opened here."""
        self.opened[run_id] = None

    def latest_execution(self, experiment_id: str, work_spec: str) -> str | None:
        """The newest execution run of ``work_spec``, or None."""
        query = f"tags.`{LEVEL}` = 'execution' and tags.`{WORK_SPEC}` = {quoted(work_spec)}"
        runs = self.client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"],
                                       max_results=1)
        return runs[0].info.run_id if runs else None

    def children(self, experiment_id: str, parent: str) -> dict[str, str]:
        """Run name -> run id of the runs nested directly under ``parent``."""
        runs = self.client.search_runs([experiment_id], f"tags.`{PARENT}` = {quoted(parent)}", max_results=50000)
        return {run.data.tags.get(RUN_NAME, run.info.run_name): run.info.run_id for run in runs}

    def unfinished(self, experiment_id: str, execution: str) -> list[str]:
        """The RUNNING runs of an execution: the execution's own, its work units' and its trials'."""
        query = f"tags.`{EXECUTION}` = {quoted(execution)} and attributes.status = 'RUNNING'"
        runs = [run.info.run_id for run in self.client.search_runs([experiment_id], query, max_results=50000)]
        if self.client.get_run(execution).info.status == "RUNNING":
            runs.append(execution)
        return runs

    def log(self, run_id: str, *, params: Mapping[str, str] = {}, metrics: Mapping[str, float] = {},
            series: Mapping[str, list[float]] = {}, tags: Mapping[str, str] = {}) -> None:
        """Parameters, final metrics, per-step series and tags in one batch."""
        now = int(time.time() * 1000)
        rows = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
        rows += [Metric(name, float(v), now, step) for name, values in series.items()
                 for step, v in enumerate(values)]
        self.client.log_batch(run_id, metrics=rows, params=[Param(k, str(v)) for k, v in params.items()],
                              tags=[RunTag(k, str(v)[:8000]) for k, v in tags.items()], synchronous=True)

    def end(self, run_id: str, state: str, *, tagged: bool = False, error: str | None = None) -> None:
        """Ends a run: ``finished`` and ``pruned`` as FINISHED, ``failed`` as FAILED, ``killed`` as KILLED
        (``tagged``: the ``atlas.state`` tag was already logged; ``error``: why, as the ``atlas.error`` tag)."""
        with self.atomic():
            tags = {} if tagged else {STATE: state}
            if error:
                tags[ERROR] = mask_text(error)[:500]
            if tags:
                self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)
            self.client.set_terminated(run_id, _STATUS[state])
            self.opened.pop(run_id, None)

    def end_open(self, state: str, *, error: str | None = None) -> None:
        """Ends every run opened here and not yet ended (a sweep that stopped), the newest first."""
        for run_id in reversed(list(self.opened)):
            self.end(run_id, state, error=error)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_dataset(self, run_id: str, dataset, featureset, store_url: str, context: str = "training") -> None:
        """The work unit's data as an MLflow dataset input: the set's name and key, the store, the content hash."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types import ColSpec, Schema

        source = CodeDatasetSource({"featureset": featureset.key, "store": mask_url(store_url),
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
