"""The driver's loop: it keeps every worker busy and records each trial as it comes back.

``Sweep`` holds one sweep's state: its work units (data built once, shared through Ray's object store), one
Optuna study per model spec, and the trials in flight. It asks a study for the next trial, creates the trial's
MLflow run (nested under its work unit's run, under the execution's run), sends the task to a free worker,
and records each result: MLflow (one batch), then Optuna. Ctrl-C kills the trials in flight and marks their
runs KILLED; the studies keep what finished, so a resumed sweep runs nothing twice.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas.config import Settings, mask_url
from atlas.infra._lease import ExecutionLease
from atlas.infra._pool import ATTEMPTS, WorkerPool
from atlas.infra._progress import Progress
from atlas.infra._search import ModelStudy
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
    flat_params,
)
from atlas.infra._trial import TrialResult, TrialTask
from atlas.models import FitOptions


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
    """The unit's datasets, one per input form its model specs need: rows (None) and/or windows.

    Raises:
        MissingDataError, ConfigError: the data cannot be built; the message starts with the work unit's name.
    """
    from atlas.exceptions import ConfigError, MissingDataError

    try:
        return _build_data(unit, store, seed)
    except (MissingDataError, ConfigError) as error:
        msg = f"work unit {unit.name!r} (train {unit.train[0]} .. {unit.train[1]}): {error}"
        raise type(error)(msg) from error


def study_name(spec: WorkSpec, execution: str, unit: WorkUnit, model_spec: ModelSpec) -> str:
    """The Optuna study of one model spec in one work unit of one execution."""
    return f"{spec.name}.{execution}.{unit.name}.{model_spec.name}"


def build_all(spec: WorkSpec, settings: Settings, cancel: threading.Event) -> dict[str, dict]:
    """Every work unit's datasets (:func:`build_data`), by unit name; stops early when ``cancel`` is set."""
    from atlas.data import MarketStore

    built = {}
    with MarketStore.from_settings(settings) as store:
        for unit in spec.work_units:
            if cancel.is_set():
                break
            built[unit.name] = build_data(unit, store, spec.seed)
    return built


def _build_data(unit: WorkUnit, store, seed: int) -> dict:
    windows = {unit.window if spec.model_class.sequence is not False and unit.window else None
               for spec in unit.model_specs}
    return {window: unit.featureset.dataset(unit.train, unit.test, store=store, scaling=unit.scaling,
                                            classes=unit.classes, balance=unit.balance, window=window,
                                            embargo=unit.embargo, seed=seed)
            for window in sorted(windows, key=lambda w: w or 0)}



class Sweep:
    """The driver's state: studies, units, running trials; one instance per :func:`train` call."""

    def __init__(self, spec: WorkSpec, tracker: Tracker, experiment_id: str, execution: str, version: str,
                 settings: Settings, lease: ExecutionLease | None = None) -> None:
        self.spec, self.tracker, self.experiment_id, self.execution = spec, tracker, experiment_id, execution
        self.version, self.settings, self.lease = version, settings, lease
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

    def open(self, data: dict[str, dict], resume: bool) -> None:
        """Opens each unit's run (given its data, from :func:`build_all`) and its model specs' studies."""
        existing = self.tracker.children(self.experiment_id, self.execution) if resume else {}
        for unit in self.spec.work_units:
            run_id = existing.get(unit.name)
            if run_id is None:
                run_id = self._start_unit(unit, data[unit.name], self.store_url)
            else:
                self.tracker.reopen(run_id)
            self.units[unit.name] = _Unit(unit, run_id, data[unit.name])
            for model_spec in unit.model_specs:
                name = study_name(self.spec, self.execution, unit, model_spec)
                self.studies.append(ModelStudy.open(self.settings.tracking.optuna_storage, name, unit.name,
                                                    model_spec, self.spec.search, self.spec.seed, resume=resume))

    def share(self, pool: WorkerPool) -> SweepReport:
        """Puts each unit's data in Ray's object store (once; every trial reads it there) and takes the pool."""
        import ray

        for unit in self.units.values():
            unit.refs = {window: ray.put(dataset) for window, dataset in unit.data.items()}
        self.pool = pool
        self.report = SweepReport(self.spec.name, self.experiment_id, self.execution, mask_url(self.tracker.uri),
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
            if self.lease is not None:
                self.lease.check()
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
        with self.tracker.atomic():  # asked, run created and sent, or none of these
            self._submit_now(worker, study)

    def _submit_now(self, worker, study: ModelStudy) -> None:
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
        with self.tracker.atomic():  # MLflow and Optuna both, or neither
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
        defaults = FitOptions()
        fit = {"epochs": defaults.epochs, "batch_size": defaults.batch_size, "patience": defaults.patience,
               **task.fit}
        params = flat_params({"model": spec.kind, **task.params, "fit": fit, "seed": task.seed})
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

    def abort(self, state: str = "killed", error: str | None = None) -> None:
        """Stops the sweep where it is: every run it opened and did not end becomes KILLED (Ctrl-C) or FAILED
        (``state="failed"``, ``error`` says why), and every Optuna trial it asked fails (resume reruns them)."""
        for running in self.running.values():
            self.tracker.end(running.run_id, state, error=error)
        self.running.clear()
        for study in self.studies:
            for number in list(study.running):  # sent or only asked
                study.tell(number, "killed" if state == "killed" else "failed", [], None)
        self.tracker.end_open(state, error=error)

    def finish(self) -> None:
        """Logs the top k models (``log_models=k``), then summarizes and ends the unit and execution runs."""
        if self.lease is not None:
            self.lease.check()
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
        shutil.rmtree(self.stash, ignore_errors=True)
