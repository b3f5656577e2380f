"""The sweep's driver: a WorkSpec's trials, asked of Optuna, run on Ray, recorded in MLflow.

:func:`train` builds each work unit's data once and puts it in Ray's object store, opens one Optuna study
per model spec, and keeps every worker busy: it asks a study for the next trial, creates the trial's MLflow
run (nested under its work unit's run, under the execution's run), sends the task to an idle worker, and
records each result as it comes back. Ctrl-C kills the running trials, marks their runs KILLED, and leaves
the studies so that ``resume=True`` finishes the sweep without running any point twice.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from atlas.config import Settings
from atlas.exceptions import ConfigError
from atlas.infra._pool import ATTEMPTS, WorkerPool, connect, slots
from atlas.infra._progress import Progress
from atlas.infra._search import ModelStudy, check_storage
from atlas.infra._specs import ModelSpec, WorkSpec, WorkUnit
from atlas.infra._tracking import (
    CODE_VERSION,
    DATA_HASH,
    EXECUTION,
    LEVEL,
    MODEL_SPEC,
    STATE,
    TRIAL,
    WORK_SPEC,
    WORK_UNIT,
    Tracker,
    code_version,
    flat_params,
)
from atlas.infra._trial import TrialResult, TrialTask


@dataclass
class SweepReport:
    """What a sweep did.

    Attributes:
        results: every trial that ran in this call, in the order they ended.
        execution_run_id, experiment_id, tracking_uri: where MLflow holds it.
        wall_seconds: from the call to the end, Ray's start included. slots: trials run at once.
        interrupted: stopped by Ctrl-C (resume with ``resume=True``).
    """

    work_spec: str
    experiment_id: str
    execution_run_id: str
    tracking_uri: str
    slots: int
    results: list[TrialResult] = field(default_factory=list)
    wall_seconds: float = 0.0
    interrupted: bool = False

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.results)


@dataclass
class _Unit:
    unit: WorkUnit
    run_id: str
    data: dict  # window (or None) -> Dataset
    refs: dict = field(default_factory=dict)  # window (or None) -> Ray object ref

    def window_for(self, spec: ModelSpec) -> int | None:
        return self.unit.window if spec.model_class.sequence is not False and self.unit.window else None


@dataclass
class _Running:
    task: TrialTask
    study: ModelStudy
    unit: _Unit
    run_id: str
    worker: Any
    attempts: int = 1


def build_data(unit: WorkUnit, store, seed: int) -> dict:
    """The unit's datasets, one per input form its model specs need: rows (None) and/or windows."""
    windows = {unit.window if spec.model_class.sequence is not False and unit.window else None
               for spec in unit.model_specs}
    return {window: unit.featureset.dataset(unit.train, unit.test, store=store, scaling=unit.scaling,
                                            classes=unit.classes, balance=unit.balance, window=window,
                                            embargo=unit.embargo, seed=seed)
            for window in sorted(windows, key=lambda w: w or 0)}


def plan(spec: WorkSpec, *, settings: Settings | None = None) -> list[dict]:
    """The sweep without running it: per model spec, its trials and its data's sizes (the data is built).

    Raises:
        MissingDataError: a work unit's features are not in the store (the message says what produces them).
    """
    from atlas.data import MarketStore

    counts = {(unit, model): trials for unit, model, trials in spec.trials()}
    rows = []
    for unit in spec.work_units:
        with MarketStore.from_settings(settings or Settings.from_env()) as store:
            data = build_data(unit, store, spec.seed)
        for model_spec in unit.model_specs:
            window = unit.window if model_spec.model_class.sequence is not False and unit.window else None
            dataset = data[window]
            rows.append({"work_unit": unit.name, "model_spec": model_spec.name, "model": model_spec.kind,
                         "trials": counts[unit.name, model_spec.name], "window": window,
                         "train_samples": len(dataset.y_train), "test_samples": len(dataset.y_test),
                         "data_hash": dataset.content_hash[:12]})
    return rows


def train(spec: WorkSpec, *, settings: Settings | None = None, address: str | None = None,
          max_concurrent: int | None = None, resume: bool = False, progress: bool = True,
          out: TextIO | None = None) -> SweepReport:
    """Runs every trial of ``spec`` on Ray and records them in MLflow.

    Example (what ``atlas train experiments/quickstart.py`` does)::

        report = train(load_spec("experiments/quickstart.py"))
        report.count("finished"), report.execution_run_id

    Args:
        settings: where the market store, MLflow, Optuna and Ray are (``Settings.from_env()`` by default).
        address: a Ray cluster's address (``ray://`` or ``host:port``); by default ``ATLAS_RAY_ADDRESS``, or a
            local Ray started here and stopped at the end.
        max_concurrent: at most this many trials at once (over ``spec.max_concurrent``).
        resume: finish the newest execution of this work spec: run only what it has not finished.
        progress: show live progress on ``out`` (stderr by default).

    Raises:
        ConfigError: nothing to resume, a changed model spec on resume, an unreachable store or cluster.
        MissingDataError: a work unit's features are not in the store.
    """
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    settings = settings or Settings.from_env()
    out = out or sys.stderr
    settings.home.mkdir(parents=True, exist_ok=True)
    check_storage(settings.tracking.optuna_storage)
    with ThreadPoolExecutor(1, thread_name_prefix="atlas-prepare") as background:
        # MLflow's runs, the data and the studies are made ready while Ray starts and its workers import TensorFlow
        prepared = background.submit(_prepare, spec, settings, resume)
        started_ray = connect(address or settings.compute.ray_address)
        pool = None
        try:
            size = slots(spec.resources, max_concurrent or spec.max_concurrent)
            # a queued trial takes its pruning snapshot when sent: with a pruner, send one only to an idle worker
            depth = 1 if spec.search.pruner != "none" else 2
            pool = WorkerPool(min(size, spec.n_trials), spec.resources, packaging=spec.log_models != 0,
                              depth=depth)
            sweep = prepared.result()
            report = sweep.share(pool)
            bar = Progress(sweep.planned, sweep.already, out=out, enabled=progress)
            try:
                with _interrupt_on_sigterm():
                    sweep.run(bar)
            except KeyboardInterrupt:
                sweep.kill()
                report.interrupted = True
            finally:
                bar.close()
            if not report.interrupted:
                sweep.finish()
        finally:
            if pool is not None:
                pool.shutdown()
            if started_ray:
                import ray

                ray.shutdown()
    report.wall_seconds = time.perf_counter() - started
    return report


def _prepare(spec: WorkSpec, settings: Settings, resume: bool) -> _Sweep:
    """Everything of a sweep that needs no Ray: the execution's and units' MLflow runs, the data, the studies."""
    from atlas.data import MarketStore

    tracker = Tracker(settings.tracking.mlflow_uri, settings.tracking.artifact_root)
    experiment_id = tracker.experiment(spec.name)
    version = code_version()
    execution = _execution(tracker, experiment_id, spec, version, resume)
    sweep = _Sweep(spec, tracker, experiment_id, execution, version, settings)
    with MarketStore.from_settings(settings) as store:
        sweep.open(store, resume)
    return sweep


def _execution(tracker: Tracker, experiment_id: str, spec: WorkSpec, version: str, resume: bool) -> str:
    """The execution run: the newest one on resume; else a new one (or ``mlflow run``'s own run, if it is in
    the work spec's experiment)."""
    if resume:
        run_id = tracker.latest_execution(experiment_id, spec.name)
        if run_id is None:
            msg = (f"nothing to resume: the MLflow store {tracker.uri} has no execution of work spec "
                   f"{spec.name!r}; run without --resume to start one")
            raise ConfigError(msg)
        tracker.reopen(run_id)
        return run_id
    tags = {LEVEL: "execution", WORK_SPEC: spec.name, CODE_VERSION: version}
    project_run = os.environ.get("MLFLOW_RUN_ID")
    if project_run and tracker.client.get_run(project_run).info.experiment_id == experiment_id:
        run_id = project_run
        tracker.log(run_id, tags=tags)
    else:
        run_id = tracker.start(experiment_id, spec.name, tags)
        if project_run:  # `mlflow run` in another experiment: point its run at this one
            tracker.log(project_run, tags={"atlas.execution_run_id": run_id, "atlas.experiment_id": experiment_id})
    described = {"search": spec.search.to_dict(), "resources": spec.resources.to_dict(),
                 "max_concurrent": spec.max_concurrent, "seed": spec.seed, "log_models": spec.log_models,
                 "n_trials": spec.n_trials, "work_units": [u.name for u in spec.work_units]}
    tracker.log(run_id, params=flat_params({"work_spec": described}))  # prefixed: `mlflow run` logs its own
    tracker.log_text(run_id, json.dumps(spec.to_dict(), indent=2, default=str), "work_spec.json")
    return run_id


class _Sweep:
    """The driver's state: studies, units, running trials; one instance per :func:`train` call."""

    def __init__(self, spec: WorkSpec, tracker: Tracker, experiment_id: str, execution: str, version: str,
                 settings: Settings) -> None:
        self.spec, self.tracker, self.experiment_id, self.execution = spec, tracker, experiment_id, execution
        self.version, self.settings = version, settings
        self.pool: WorkerPool | None = None
        self.report: SweepReport | None = None
        self.units: dict[str, _Unit] = {}
        self.store_url = settings.store.url
        self.studies: list[ModelStudy] = []
        self.running: dict[Any, _Running] = {}
        self.stash = Path(settings.home) / "sweeps" / execution / "models"

    @property
    def planned(self) -> int:
        return sum(s.planned for s in self.studies)

    @property
    def already(self) -> int:
        return sum(s.done for s in self.studies)

    def open(self, store, resume: bool) -> None:
        """Builds each unit's data (once), opens its runs and its model specs' studies."""
        existing = self.tracker.children(self.experiment_id, self.execution) if resume else {}
        for unit in self.spec.work_units:
            data = build_data(unit, store, self.spec.seed)
            run_id = existing.get(unit.name)
            if run_id is None:
                run_id = self._start_unit(unit, data, store.url)
            else:
                self.tracker.reopen(run_id)
            self.units[unit.name] = _Unit(unit, run_id, data)
            for model_spec in unit.model_specs:
                name = f"{self.spec.name}.{self.execution}.{unit.name}.{model_spec.name}"
                self.studies.append(ModelStudy.open(self.settings.tracking.optuna_storage, name, unit.name,
                                                    model_spec, self.spec.search, self.spec.seed, resume=resume))

    def share(self, pool: WorkerPool) -> SweepReport:
        """Puts each unit's data in Ray's object store (once; every trial reads it there) and takes the pool."""
        import ray

        for unit in self.units.values():
            unit.refs = {window: ray.put(dataset) for window, dataset in unit.data.items()}
        self.pool = pool
        self.report = SweepReport(self.spec.name, self.experiment_id, self.execution, self.tracker.uri,
                                  len(pool.workers))
        return self.report

    def _start_unit(self, unit: WorkUnit, data: dict, store_url: str) -> str:
        rows = next(iter(data.values()))
        tags = {LEVEL: "work_unit", WORK_SPEC: self.spec.name, EXECUTION: self.execution, WORK_UNIT: unit.name,
                DATA_HASH: rows.content_hash, CODE_VERSION: self.version, "atlas.featureset": unit.featureset.key}
        run_id = self.tracker.start(self.experiment_id, unit.name, tags, parent=self.execution)
        summary = {k: v for k, v in rows.summary().items() if k != "content_hash"}
        options = {"scaling": unit.scaling, "balance": unit.balance, "window": unit.window,
                   "embargo": unit.embargo, "validation": unit.validation, "train": list(unit.train),
                   "test": list(unit.test),
                   "classes": None if unit.classes is None else unit.classes.to_dict()}
        self.tracker.log(run_id, params=flat_params({"featureset": unit.featureset.key, "data": summary,
                                                     **options}))
        self.tracker.log_text(run_id, json.dumps(unit.featureset.to_dict(), indent=2), "featureset.json")
        self.tracker.log_dataset(run_id, rows, unit.featureset, store_url)
        return run_id

    # the loop ---------------------------------------------------------------------------------------------

    def run(self, bar: Progress) -> None:
        import ray

        while True:
            self._fill()
            if not self.running:
                return
            done, _ = ray.wait(list(self.running), num_returns=1, timeout=0.5)
            for ref in done:
                result = self._collect(ref)
                if result is not None:
                    bar.update(result, running=len(self.running))
            bar.refresh(running=len(self.running))

    def _fill(self) -> None:
        """Sends trials until every worker has its queue full or no study has a trial left to start."""
        while (worker := self.pool.free()) is not None and (study := self._next_study()) is not None:
            self._submit(worker, study)

    def _next_study(self) -> ModelStudy | None:
        return next((s for s in self.studies if s.remaining > 0), None)

    def _submit(self, worker, study: ModelStudy) -> None:
        number, params = study.ask()
        unit = self.units[study.work_unit]
        spec = study.spec
        tags = {LEVEL: "trial", WORK_SPEC: self.spec.name, EXECUTION: self.execution, WORK_UNIT: unit.unit.name,
                MODEL_SPEC: spec.name, TRIAL: str(number), CODE_VERSION: self.version, "atlas.model": spec.kind,
                DATA_HASH: unit.data[unit.window_for(spec)].content_hash}
        run_id = self.tracker.start(self.experiment_id, f"{unit.unit.name}.{spec.name}.{number}", tags,
                                    parent=unit.run_id)
        study.set_run(number, run_id)
        task = TrialTask(work_unit=unit.unit.name, model_spec=spec.name, number=number, model=spec.model,
                         params=params, fit=spec.fit, seed=self.spec.seed + number,
                         validation=unit.unit.validation,
                         horizon=unit.unit.featureset.horizon, featureset=unit.unit.featureset,
                         pruner=self.spec.search.pruner, history=study.history(),
                         save_model=self.spec.log_models != 0, threads=self.pool.threads)
        self._send(_Running(task, study, unit, run_id, worker))

    def _send(self, running: _Running) -> None:
        ref = self.pool.submit(running.worker, running.task, running.unit.refs[running.unit.window_for(
            running.study.spec)])
        self.running[ref] = running

    def _collect(self, ref) -> TrialResult | None:
        import ray

        running = self.running.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as error:  # the worker died: a fresh one retries the trial
            self.pool.replace(running.worker)
            if running.attempts < ATTEMPTS:
                running.attempts += 1
                running.worker = self.pool.free() or min(self.pool.workers, key=lambda w: w.outstanding)
                self._send(running)
                return None
            result = self._failure(running, f"its worker died {ATTEMPTS} times; the last time: {error}")
        except ray.exceptions.RayError as error:  # e.g. the task could not be unpickled on the worker
            self.pool.release(running.worker)
            result = self._failure(running, str(error))
        else:
            self.pool.release(running.worker)
        if self.spec.search.pruner == "none":  # the freed worker gets its next trial before this one is recorded
            self._fill()  # (with a pruner, only after: the next trial's snapshot must include this one)
        result.attempts = running.attempts
        self._record(running, result)
        self.report.results.append(result)
        return result

    @staticmethod
    def _failure(running: _Running, error: str) -> TrialResult:
        task = running.task
        return TrialResult(task.work_unit, task.model_spec, task.number, "failed", params=dict(task.params),
                           error=error)

    def _record(self, running: _Running, result: TrialResult) -> None:
        task, spec = running.task, running.study.spec
        metrics = {**result.scores, "fit_seconds": result.fit_seconds, "trial_seconds": result.seconds,
                   "epochs": len(result.history.get("loss", [])), "best_val_loss": result.objective}
        params = flat_params({"model": spec.kind, **task.params, "fit": {"epochs": 20, "batch_size": 256,
                                                                          "patience": 3, **task.fit},
                              "seed": task.seed})
        tags = {"atlas.host": result.host, "atlas.pid": str(result.pid), "atlas.node": result.node,
                "atlas.gpus": ",".join(result.gpus), "atlas.attempts": str(result.attempts)}
        if result.stopped:
            tags["atlas.stopped"] = result.stopped
        if result.error:
            tags["atlas.error"] = result.error.strip().splitlines()[-1][:500]
        tags[STATE] = result.state
        self.tracker.log(running.run_id, params=params, metrics=metrics, series=result.history, tags=tags)
        if result.error:
            self.tracker.log_text(running.run_id, result.error, "traceback.txt")
        if result.model is not None:
            if self.spec.log_models == "all":
                self.tracker.log_model(running.run_id, self.experiment_id, result.model,
                                       tags={WORK_UNIT: task.work_unit, MODEL_SPEC: task.model_spec})
            else:
                self.stash.mkdir(parents=True, exist_ok=True)
                (self.stash / f"{running.run_id}.tar").write_bytes(result.model)
            result.model = None  # logged or stashed: do not keep every model in memory
        self.tracker.log_dataset(running.run_id, running.unit.data[running.unit.window_for(spec)],
                                 running.unit.unit.featureset, self.store_url)
        self.tracker.end(running.run_id, result.state, tagged=True)
        losses = result.history.get("val_loss", []) if self.spec.search.pruner != "none" else []
        running.study.tell(task.number, result.state, losses, result.objective)

    def kill(self) -> None:
        """Ctrl-C: the running trials' runs become KILLED and their Optuna trials fail (resume reruns them)."""
        for running in self.running.values():
            self.tracker.end(running.run_id, "killed")
            running.study.tell(running.task.number, "killed", [], None)
        self.running.clear()
        for unit in self.units.values():
            self.tracker.end(unit.run_id, "killed")
        self.tracker.end(self.execution, "killed")

    def finish(self) -> None:
        """Logs the top k models (``log_models=k``), then summarizes and ends the unit and execution runs."""
        if isinstance(self.spec.log_models, int) and self.spec.log_models > 0:
            self._log_top_models(self.spec.log_models)
        results = self.report.results
        for name, unit in self.units.items():
            studies = [s for s in self.studies if s.work_unit == name]
            values = [t.value for s in studies for t in s.study.trials if t.value is not None]
            failed = sum(r.state == "failed" and r.work_unit == name for r in results)
            metrics = {"trials_done": sum(s.done for s in studies), "trials_failed": failed}
            if values:
                metrics["best_val_loss"] = min(values)
            self.tracker.log(unit.run_id, metrics=metrics)
            self.tracker.end(unit.run_id, "finished")
        self.tracker.log(self.execution, metrics={"trials_done": self.already,
                                                  "trials_failed": self.report.count("failed")})
        self.tracker.end(self.execution, "finished")

    def _log_top_models(self, k: int) -> None:
        from optuna.trial import TrialState

        for study in self.studies:
            finished = [t for t in study.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                        if "mlflow_run_id" in t.user_attrs]
            for trial in sorted(finished, key=lambda t: t.value)[:k]:
                package = self.stash / f"{trial.user_attrs['mlflow_run_id']}.tar"
                if package.exists():
                    self.tracker.log_model(trial.user_attrs["mlflow_run_id"], self.experiment_id,
                                           package.read_bytes(), tags={WORK_UNIT: study.work_unit,
                                                                       MODEL_SPEC: study.spec.name})
        import shutil

        shutil.rmtree(self.stash, ignore_errors=True)


class _interrupt_on_sigterm:
    """SIGTERM stops a sweep as Ctrl-C does (runs marked KILLED, resumable)."""

    def __enter__(self):
        self._previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    @staticmethod
    def _handle(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False
