"""The run writer: how a sweep is recorded in MLflow. An experiment per work spec, a run per execution, a child per
work unit, a grandchild per trial.

Only the sweep's driver writes to MLflow, through one ``MlflowClient``: workers send their results back, so
concurrent trials never contend for the default SQLite store. A tracking server that restarts mid-sweep is
ridden out by MLflow's client, which retries each request for minutes; what a retry writes twice is made
harmless: metrics, params and tags are idempotent, and a run or logged model created twice (the server made it,
then died before answering) is found by its request key and deleted (:meth:`RunWriter.remove_duplicates`). Each trial's parameters, tags and per-epoch
metrics go in one ``log_batch`` (MLflow splits it within its limits). Every run carries the record's schema
version and MLflow's context tags (who, from what source, at which commit of Atlas).
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import tarfile
import tempfile
import time
import uuid
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
from atlas.runs._names import check_name, quoted
from atlas.runs._tags import SCHEMA_VERSION, STATES, Level, Tag


def code_version() -> str:
    """The git commit of the Atlas package that runs (with ``-dirty`` when its tree has changes), wherever the
    command was started from; else Atlas's version (an installed release)."""
    import atlas

    folder = os.path.dirname(os.path.abspath(atlas.__file__))
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return f"atlas-{getattr(atlas, '__version__', 'unknown')}"


def context_tags(source: str, version: str) -> dict[str, str]:
    """MLflow's own context tags for a run: the user, the source (the spec file and command), its type, and the
    git commit of the Atlas package (not of the folder the command ran in)."""
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        user = str(os.getuid())
    tags = {"mlflow.user": user, "mlflow.source.name": source, "mlflow.source.type": "LOCAL"}
    if version and not version.startswith("atlas-"):
        tags["mlflow.source.git.commit"] = version.removesuffix("-dirty")
    return tags


def finite_metrics(values: Mapping[str, float | None]) -> dict[str, float]:
    """The metrics MLflow can store: numbers that are finite (an infinite likelihood ratio, a NaN AUC of a class
    the test window lacks, are left out: absent reads better than a made-up number)."""
    out = {}
    for name, value in values.items():
        if value is None or isinstance(value, bool):
            continue
        number = float(value)
        if math.isfinite(number):
            out[name] = number
    return out


def pack_model(folder: Path) -> bytes:
    """A pyfunc model folder as an uncompressed tar: how a worker sends a model back to the driver."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(folder, arcname="model")
    return buffer.getvalue()


def unpack_model(data: bytes, into: Path) -> Path:
    """Unpacks :func:`pack_model`'s bytes into ``into``; returns the model folder."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(into, filter="data")
    return Path(into) / "model"


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


class RunWriter:
    """The sweep's MLflow client: experiments, nested runs, batched metrics, artifacts, models, datasets.

    It keeps the runs it opened (started or reopened) and has not ended, so a sweep that stops at any moment
    ends them all (:meth:`end_open`). ``atomic`` makes a block that a Ctrl-C does not split (the sweep's
    signal handling); a run is never created without being kept, or ended without being forgotten.
    """

    def __init__(self, tracking_uri: str, artifact_root: str | None, *,
                 atomic: Callable[[], AbstractContextManager] = nullcontext) -> None:
        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.artifact_root = artifact_root
        self.atomic = atomic
        self.opened: dict[str, None] = {}  # insertion-ordered: the execution first, trials last
        self.context: dict[str, str] = {}  # MLflow's context tags, on every run started (see context_tags)
        self.requests: dict[str, str] = {}  # request key (Tag.REQUEST) -> the run id created for it
        self.models: dict[str, tuple[str, str]] = {}  # logged model id -> (its name, its run)

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
        if not root:
            location = None  # the tracking server's: its artifact proxy (S3 behind it), or its default root
        elif "://" in root:  # s3://bucket/prefix: the experiment's own folder under it, as for a local root
            location = f"{root.rstrip('/')}/{name}"
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

    def start(self, experiment_id: str, name: str, tags: Mapping[str, str], parent: str | None = None, *,
              start_time: float | None = None) -> str:
        """A new RUNNING run; ``parent`` nests it; ``start_time`` (epoch seconds) when it began, if not now."""
        request = uuid.uuid4().hex
        tags = {**self.context, Tag.RUN_NAME: name, Tag.SCHEMA: str(SCHEMA_VERSION), **tags,
                **({Tag.PARENT: parent} if parent else {}), Tag.REQUEST: request}
        started = None if start_time is None else int(start_time * 1000)
        with self.atomic():
            run_id = self.client.create_run(experiment_id, tags=tags, run_name=name,
                                            start_time=started).info.run_id
            self.opened[run_id] = None
            self.requests[request] = run_id
        return run_id

    def remove_duplicates(self, experiment_id: str, execution: str) -> int:
        """Deletes the runs and logged models of ``execution`` that a retried request created a second time: a run
        carrying the request key of a run created here, with another id, left RUNNING; a logged model named as one
        logged here for the same run, with another id, left PENDING. Returns how many were deleted.

        A tracking server killed after it wrote a run and before it answered makes the client retry the request,
        and the retry writes a second run; the harvest, the digest and MLflow's UI would count that trial twice.
        """
        runs = self.client.search_runs(
            [experiment_id], f"tags.`{Tag.EXECUTION}` = {quoted(execution)} and attributes.status = 'RUNNING'",
            max_results=50000)
        own = next((key for key, run_id in self.requests.items() if run_id == execution), None)
        if own:  # the execution run itself, created twice (when this writer created it)
            runs += self.client.search_runs(
                [experiment_id], f"tags.`{Tag.REQUEST}` = {quoted(own)} and attributes.status = 'RUNNING'",
                max_results=10)
        removed = 0
        for run in runs:
            key = run.data.tags.get(Tag.REQUEST)
            if key in self.requests and self.requests[key] != run.info.run_id:
                self.client.delete_run(run.info.run_id)
                removed += 1
        if self.models:
            ours = {(name, run_id) for name, run_id in self.models.values()}
            for model in self._pending_models(experiment_id):
                if (model.name, model.source_run_id) in ours and model.model_id not in self.models:
                    self.client.delete_logged_model(model.model_id)
                    removed += 1
        return removed

    def _pending_models(self, experiment_id: str) -> list:
        found, token = [], None
        while True:
            page = self.client.search_logged_models([experiment_id], max_results=1000, page_token=token)
            found += [m for m in page if m.status == LoggedModelStatus.PENDING]  # a status filter finds none
            token = page.token
            if not token:
                return found

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
        query = f"tags.`{Tag.LEVEL}` = '{Level.EXECUTION}' and tags.`{Tag.WORK_SPEC}` = {quoted(work_spec)}"
        runs = self.client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"],
                                       max_results=1)
        return runs[0].info.run_id if runs else None

    def children(self, experiment_id: str, parent: str) -> dict[str, str]:
        """Run name -> run id of the runs nested directly under ``parent``."""
        runs = self.client.search_runs([experiment_id], f"tags.`{Tag.PARENT}` = {quoted(parent)}",
                                       max_results=50000)
        return {run.data.tags.get(Tag.RUN_NAME, run.info.run_name): run.info.run_id for run in runs}

    def unfinished(self, experiment_id: str, execution: str) -> list[str]:
        """The RUNNING runs of an execution: the execution's own, its work units' and its trials'."""
        query = f"tags.`{Tag.EXECUTION}` = {quoted(execution)} and attributes.status = 'RUNNING'"
        runs = [run.info.run_id for run in self.client.search_runs([experiment_id], query, max_results=50000)]
        if self.client.get_run(execution).info.status == "RUNNING":
            runs.append(execution)
        return runs

    def log(self, run_id: str, *, params: Mapping[str, str] = {}, metrics: Mapping[str, float] = {},
            series: Mapping[str, list[float]] = {}, tags: Mapping[str, str] = {}) -> None:
        """Parameters, final metrics, per-step series and tags in one batch (metrics that are not finite numbers
        are left out: MLflow cannot compare them)."""
        now = int(time.time() * 1000)
        rows = [Metric(k, v, now, 0) for k, v in finite_metrics(metrics).items()]
        rows += [Metric(name, float(v), now, step) for name, values in series.items()
                 for step, v in enumerate(values) if v is not None and math.isfinite(v)]
        self.client.log_batch(run_id, metrics=rows, params=[Param(k, str(v)) for k, v in params.items()],
                              tags=[RunTag(k, str(v)[:8000]) for k, v in tags.items()], synchronous=True)

    def end(self, run_id: str, state: str, *, tagged: bool = False, error: str | None = None,
            end_time: float | None = None) -> None:
        """Ends a run: ``finished`` and ``pruned`` as FINISHED, ``failed`` as FAILED, ``killed`` as KILLED
        (``tagged``: the ``atlas.state`` tag was already logged; ``error``: why, as the ``atlas.error`` tag;
        ``end_time``: when it ended, epoch seconds, if not now)."""
        with self.atomic():
            tags = {} if tagged else {Tag.STATE: state}
            if error:
                tags[Tag.ERROR] = mask_text(error)[:500]
            if tags:
                self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)
            ended = None if end_time is None else int(end_time * 1000)
            self.client.set_terminated(run_id, STATES[state], end_time=ended)
            self.opened.pop(run_id, None)

    def end_open(self, state: str, *, error: str | None = None) -> None:
        """Ends every run opened here and not yet ended (a sweep that stopped), the newest first."""
        for run_id in reversed(list(self.opened)):
            self.end(run_id, state, error=error)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_bytes(self, run_id: str, data: bytes, path: str) -> None:
        """An artifact from bytes in memory (a Parquet file, a PNG drawn in a worker), at ``path`` in the run."""
        with tempfile.TemporaryDirectory(prefix="atlas-artifact-") as staging:
            local = Path(staging) / Path(path).name
            local.write_bytes(data)
            folder = str(Path(path).parent) if Path(path).parent != Path(".") else None
            self.client.log_artifact(run_id, str(local), folder)

    def log_dataset(self, run_id: str, dataset, featureset, store_url: str, context: str = "training") -> None:
        """The work unit's data as an MLflow dataset input: the set's name and key, the store, the content hash.
        ``context`` ``"training"`` describes the training window, ``"testing"`` the test window beside it."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types import ColSpec, Schema

        window = "test" if context == "testing" else "train"
        index = getattr(dataset, f"index_{window}")
        source = CodeDatasetSource({"featureset": featureset.key, "store": mask_url(store_url), "window": window,
                                    "train": f"{dataset.index_train[0]} .. {dataset.index_train[-1]}",
                                    "test": f"{dataset.index_test[0]} .. {dataset.index_test[-1]}",
                                    "samples": str(len(index))})
        schema = Schema([ColSpec("double", name) for name in dataset.feature_names])
        name = f"{featureset.title or featureset.key}-{window}"
        meta = MetaDataset(source, name=name, digest=dataset.content_hash[:36], schema=schema)
        self.client.log_inputs(run_id, datasets=[DatasetInput(meta._to_mlflow_entity(),
                                                              [InputTag("mlflow.data.context", context)])])

    def log_model(self, run_id: str, experiment_id: str, package: bytes, *, name: str = "model",
                  tags: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
                  metrics: Mapping[str, float] | None = None) -> str:
        """Logs a packaged pyfunc model (from a worker) as the run's logged model, named ``name`` (the trial's run
        name), with the trial's parameters and test metrics linked so MLflow's Models view can rank it; returns
        its model id."""
        from mlflow.models import Model

        logged = self.client.create_logged_model(
            experiment_id, name=name, source_run_id=run_id, tags=dict(tags or {}), model_type="atlas",
            params={k: str(v) for k, v in (params or {}).items()} or None)
        self.models[logged.model_id] = (name, run_id)
        with tempfile.TemporaryDirectory(prefix="atlas-log-") as staging:
            folder = unpack_model(package, Path(staging))
            mlmodel = Model.load(folder / "MLmodel")
            mlmodel.model_id, mlmodel.run_id, mlmodel.model_uuid = logged.model_id, run_id, logged.model_id
            mlmodel.artifact_path = logged.artifact_location
            mlmodel.save(folder / "MLmodel")
            self.client.log_model_artifacts(logged.model_id, str(folder))
        self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        if metrics:  # linked to the model: the Models view shows and sorts them
            now = int(time.time() * 1000)
            rows = [Metric(k, v, now, 0, model_id=logged.model_id, run_id=run_id)
                    for k, v in finite_metrics(metrics).items()]
            for start in range(0, len(rows), 1000):
                self.client.log_batch(run_id, metrics=rows[start:start + 1000], synchronous=True)
        return logged.model_id
