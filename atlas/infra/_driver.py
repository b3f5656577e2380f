"""The driver's loop: it keeps every worker busy and announces each trial's events to the sweep's callbacks.

``Sweep`` holds one sweep's state: its work units (data built once, shared through Ray's object store), one
Optuna study per model spec, and the trials in flight. It asks a study for the next trial, creates the trial's
MLflow run (nested under its work unit's run, under the execution's run) the moment it sends the task to an idle
worker (so a run's duration is its trial's), and when the result comes back, announces it: the callbacks
(``atlas.infra._callbacks``) record it in MLflow, store its evidence, log its model and tell Optuna. Ctrl-C kills
the trials in flight and marks their runs KILLED; the studies keep what finished, so a resumed sweep runs nothing
twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from atlas.config import Settings, mask_url
from atlas.infra._callbacks import SweepCallback
from atlas.infra._lease import ExecutionLease
from atlas.infra._model_spec import ModelSpec
from atlas.infra._pool import ATTEMPTS, WorkerPool
from atlas.infra._search import ModelStudy, study_name
from atlas.infra._specs import WorkSpec, WorkUnit
from atlas.infra._trial import TrialResult, TrialTask
from atlas.runs import FEATURESET_ARTIFACT, Level, RunWriter, Tag, flat_params


@dataclass
class SweepReport:
    """What a sweep did.

    Attributes:
        results: every trial that ran in this call, in the order they ended.
        execution_run_id, experiment_id, tracking_uri: where MLflow holds it.
        wall_seconds: from the call to the end, Ray's start included. slots: trials run at once.
        interrupted: stopped by Ctrl-C (resume with ``resume=True``).
        duplicates: runs and logged models that a request retried by MLflow's client (a tracking server that
            restarted) created twice, deleted when the sweep finished.
        verdict: the ``atlas.stats.SweepVerdict`` on the whole execution (None when interrupted, or when no trial
            finished).
    """

    work_spec: str
    experiment_id: str
    execution_run_id: str
    tracking_uri: str
    slots: int
    results: list[TrialResult] = field(default_factory=list)
    wall_seconds: float = 0.0
    interrupted: bool = False
    verdict: Any = None
    duplicates: int = 0

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
class TrialRun:
    """A trial in flight: its task, its study, its work unit, its MLflow run and the worker running it."""

    task: TrialTask
    study: ModelStudy
    unit: _Unit
    run_id: str
    run_name: str
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
                                            embargo=unit.embargo, seed=seed, allow_gaps=unit.allow_gaps)
            for window in sorted(windows, key=lambda w: w or 0)}



class Sweep:
    """The driver's state: studies, units, running trials, callbacks; one instance per :func:`train` call."""

    def __init__(self, spec: WorkSpec, writer: RunWriter, experiment_id: str, execution: str, version: str,
                 settings: Settings, lease: ExecutionLease | None = None,
                 callbacks: Sequence[SweepCallback] = ()) -> None:
        self.spec, self.writer, self.experiment_id, self.execution = spec, writer, experiment_id, execution
        self.version, self.settings, self.lease = version, settings, lease
        self.callbacks = list(callbacks)
        self.pool: WorkerPool | None = None
        self.report: SweepReport | None = None
        self.units: dict[str, _Unit] = {}
        self.store_url = settings.store.url
        self.studies: list[ModelStudy] = []
        self.running: dict[Any, TrialRun] = {}
        self.predictions: dict[str, bytes] = {}  # run id -> this process's trials' predictions, for the digest
        self._results = None

    @property
    def planned(self) -> int:
        return sum(s.planned for s in self.studies)

    @property
    def already(self) -> int:
        return sum(s.done for s in self.studies)

    def open(self, data: dict[str, dict], resume: bool) -> None:
        """Opens each unit's run (given its data, from :func:`build_all`) and its model specs' studies."""
        existing = self.writer.children(self.experiment_id, self.execution) if resume else {}
        for unit in self.spec.work_units:
            run_id = existing.get(unit.name)
            if run_id is None:
                run_id = self._start_unit(unit, data[unit.name])
            else:
                self.writer.reopen(run_id)
            self.units[unit.name] = _Unit(unit, run_id, data[unit.name])
            for model_spec in unit.model_specs:
                self.studies.append(ModelStudy.open(
                    self.settings.tracking.optuna_storage, study_name(self.spec, unit, model_spec), unit.name,
                    model_spec, self.spec.search, self.spec.seed, execution=self.execution,
                    replicates=self.spec.replicates, resume=resume))

    def share(self, pool: WorkerPool) -> SweepReport:
        """Puts each unit's data in Ray's object store (once; every trial reads it there) and takes the pool."""
        import ray

        for unit in self.units.values():
            unit.refs = {window: ray.put(dataset) for window, dataset in unit.data.items()}
        self.pool = pool
        self.report = SweepReport(self.spec.name, self.experiment_id, self.execution, mask_url(self.writer.uri),
                                  len(pool.workers))
        return self.report

    def _start_unit(self, unit: WorkUnit, data: dict) -> str:
        rows = next(iter(data.values()))
        tags = {Tag.LEVEL: Level.WORK_UNIT, Tag.WORK_SPEC: self.spec.name, Tag.EXECUTION: self.execution,
                Tag.WORK_UNIT: unit.name, Tag.DATA_HASH: rows.content_hash, Tag.CODE_VERSION: self.version,
                Tag.FEATURESET: unit.featureset.key}
        run_id = self.writer.start(self.experiment_id, unit.name, tags, parent=self.execution)
        summary = {k: v for k, v in rows.summary().items() if k != "content_hash"}
        for dataset in data.values():  # the windows' counts (across gaps, dropped) when rows came first
            summary |= {k: v for k, v in dataset.summary().items() if "windows_" in k}
        options = {"scaling": unit.scaling, "balance": unit.balance, "window": unit.window,
                   "allow_gaps": unit.allow_gaps,
                   "embargo": unit.embargo, "validation": unit.validation, "train": list(unit.train),
                   "test": list(unit.test), "classes": None if unit.classes is None else unit.classes.to_dict()}
        self.writer.log(run_id, params=flat_params({"featureset": unit.featureset.key, "data": summary,
                                                    **options}))
        self.writer.log_text(run_id, json.dumps(unit.featureset.to_dict(), indent=2), FEATURESET_ARTIFACT)
        self.writer.log_dataset(run_id, rows, unit.featureset, self.store_url)
        self.writer.log_dataset(run_id, rows, unit.featureset, self.store_url, context="testing")
        return run_id

    def results_frame(self):
        """This execution's trials as ``atlas.stats.Results`` (harvested once, after the last trial), holding the
        predictions of this process's trials so the digest does not download them again."""
        if self._results is None:
            from atlas.stats import harvest

            self._results = harvest(self.spec.name, tracking_uri=self.writer.uri, execution=self.execution)
            self._results.use_predictions(self.predictions)
        return self._results

    # the loop ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        import ray

        while True:
            if self.lease is not None:
                self.lease.check()
            self._fill()
            if not self.running:
                return
            refs = list(self.running)
            done, rest = ray.wait(refs, num_returns=1, timeout=0.5)
            if done and rest:  # and every other trial that is back too
                done += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            finished = [self._collect(ref) for ref in done]  # every free worker gets its next trial first
            for trial, result in finished:
                if result is not None:
                    with self.writer.atomic():  # MLflow and Optuna both, or neither
                        self._record(trial, result)
            for callback in self.callbacks:
                callback.tick(self)

    def _fill(self) -> None:
        """Sends trials until every worker has its queue full or no study has a trial left to start."""
        while (worker := self.pool.free()) is not None and (study := self._next_study()) is not None:
            self._submit(worker, study)

    def _next_study(self) -> ModelStudy | None:
        return next((s for s in self.studies if s.remaining > 0), None)

    def _submit(self, worker, study: ModelStudy) -> None:
        with self.writer.atomic():  # asked, run created and sent, or none of these
            self._submit_now(worker, study)

    def _submit_now(self, worker, study: ModelStudy) -> None:
        number, params, replicate = study.ask()
        unit = self.units[study.work_unit]
        spec = study.spec
        name = run_name(spec, params, number, replicate, self.spec.replicates)
        tags = {Tag.LEVEL: Level.TRIAL, Tag.WORK_SPEC: self.spec.name, Tag.EXECUTION: self.execution,
                Tag.WORK_UNIT: unit.unit.name, Tag.MODEL_SPEC: spec.name, Tag.TRIAL: str(number),
                Tag.REPLICATE: str(replicate), Tag.CODE_VERSION: self.version, Tag.MODEL: spec.kind,
                Tag.DATA_HASH: unit.data[unit.window_for(spec)].content_hash}
        run_id = self.writer.start(self.experiment_id, name, tags, parent=unit.run_id)
        study.set_run(number, run_id)
        digest = self.spec.digest
        task = TrialTask(work_unit=unit.unit.name, model_spec=spec.name, number=number, model=spec.model,
                         params=params, fit=spec.fit, seed=self.spec.seed + replicate,
                         validation=unit.unit.validation,
                         horizon=unit.unit.featureset.horizon, featureset=unit.unit.featureset,
                         pruner=self.spec.search.pruner, history=study.history(),
                         save_model=self.spec.log_models != 0, threads=self.pool.threads, run_id=run_id,
                         replicate=replicate, card=digest.cards == "all", cost_bps=digest.cost_bps,
                         calendar=digest.market_calendar, interval=digest.interval)
        trial = TrialRun(task, study, unit, run_id, name, worker)
        self._send(trial)
        for callback in self.callbacks:
            callback.trial_started(self, trial)

    def _send(self, trial: TrialRun) -> None:
        ref = self.pool.submit(trial.worker, trial.task, trial.unit.refs[trial.unit.window_for(trial.study.spec)])
        self.running[ref] = trial

    def _collect(self, ref) -> tuple[TrialRun, TrialResult | None]:
        """A result back from a worker (None when its worker died and the trial was sent again); the freed
        worker gets its next trial before this one is recorded (with a pruner, only after: the next trial's
        snapshot must include this one)."""
        import ray

        trial = self.running.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as error:  # the worker died: a fresh one retries the trial
            self.pool.replace(trial.worker)
            if trial.attempts < ATTEMPTS:
                trial.attempts += 1
                trial.worker = self.pool.free() or self.pool.least_loaded()
                self._send(trial)
                return trial, None
            result = self._failure(trial, f"its worker died {ATTEMPTS} times; the last time: {error}")
        except ray.exceptions.RayError as error:  # e.g. the task could not be unpickled on the worker
            self.pool.release(trial.worker)
            result = self._failure(trial, str(error))
        else:
            self.pool.release(trial.worker)
        if self.spec.search.pruner == "none":
            self._fill()
        result.attempts = trial.attempts
        return trial, result

    @staticmethod
    def _failure(trial: TrialRun, error: str) -> TrialResult:
        task = trial.task
        return TrialResult(task.work_unit, task.model_spec, task.number, "failed", params=dict(task.params),
                           error=error)

    def _record(self, trial: TrialRun, result: TrialResult) -> None:
        """Announces a result: the callbacks record it, the run ends, then the callbacks that follow its end."""
        for callback in self.callbacks:
            callback.trial_finished(self, trial, result)
        ended = result.started + result.seconds if result.started else None
        self.writer.end(trial.run_id, result.state, tagged=True, end_time=ended)
        for callback in self.callbacks:
            callback.trial_closed(self, trial, result)
        self.report.results.append(result)
        if self.spec.search.pruner != "none":
            self._fill()

    def abort(self, state: str = "killed", error: str | None = None) -> None:
        """Stops the sweep where it is: every run it opened and did not end becomes KILLED (Ctrl-C) or FAILED
        (``state="failed"``, ``error`` says why), and every Optuna trial it asked fails (resume reruns them)."""
        for callback in self.callbacks:
            callback.sweep_aborted(self, state)
        for running in self.running.values():
            self.writer.end(running.run_id, state, error=error)
        self.running.clear()
        for study in self.studies:
            for number in list(study.running):  # sent or only asked
                study.tell(number, "killed" if state == "killed" else "failed", [], None)
        self.writer.end_open(state, error=error)

    def finish(self) -> None:
        """Announces the end (the callbacks summarize, log top models, draw the digest), then ends the unit and
        execution runs."""
        if self.lease is not None:
            self.lease.check()
        self.report.duplicates = self.writer.remove_duplicates(self.experiment_id, self.execution)
        for callback in self.callbacks:
            callback.sweep_finished(self)
        for unit in self.units.values():
            self.writer.end(unit.run_id, "finished")
        self.writer.end(self.execution, "finished")


def run_name(spec: ModelSpec, params: dict, number: int, replicate: int, replicates: int) -> str:
    """A trial run's name, leading with what differs between the trials of its model spec: the gridded and
    sampled parameters' values, then the model spec and trial number (``learning_rate=0.01 | dnn #3``)."""
    varying = [name for name in params if name in spec.grid or name in spec.ranges]
    parts = []
    for name in varying:
        value = params[name]
        text = f"{value:.4g}" if isinstance(value, float) else json.dumps(value, default=str).replace(" ", "")
        parts.append(f"{name}={text}")
    lead = " ".join(parts)
    seed = f" r{replicate}" if replicates > 1 else ""
    tail = f"{spec.name} #{number}{seed}"
    return f"{lead} | {tail}"[:240] if lead else tail
