"""The sweep's driver: a WorkSpec's trials, asked of Optuna, run on Ray, recorded in MLflow.

:func:`train` builds each work unit's data once and puts it in Ray's object store, opens one Optuna study
per model spec, and keeps every worker busy: it asks a study for the next trial, creates the trial's MLflow
run (nested under its work unit's run, under the execution's run), sends the task to an idle worker, and
records each result as it comes back. Ctrl-C kills the running trials, marks their runs KILLED, and leaves
the studies so that ``resume=True`` finishes the sweep without running any point twice. The loop itself is
``atlas.infra._driver.Sweep``; this module sets it up and tears it down.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import TextIO

from atlas.config import Settings, mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.infra._driver import Sweep, SweepReport, build_all, build_data, study_name
from atlas.infra._interrupts import Interrupts, SweepInterrupted
from atlas.infra._lease import ExecutionLease
from atlas.infra._pool import WorkerPool, connect, slots
from atlas.infra._progress import Progress
from atlas.infra._search import check_resumable
from atlas.infra._specs import WorkSpec
from atlas.infra._stores import initialize_stores, preflight
from atlas.infra._tracking import CODE_VERSION, LEVEL, WORK_SPEC, Tracker, code_version, flat_params

__all__ = ["SweepInterrupted", "SweepReport", "plan", "train"]


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
        resume: finish the newest execution of this work spec: run only what it has not finished. Its runs that
            a driver killed with ``kill -9`` left RUNNING are marked KILLED first.
        progress: show live progress on ``out`` (stderr by default).

    Returns:
        The report; ``interrupted`` when Ctrl-C or SIGTERM stopped the trials (their runs are KILLED).

    Raises:
        ConfigError: nothing to resume, a changed model spec on resume, another driver on the execution, an
            unreachable store or cluster, resources the cluster lacks. Runs opened before it are FAILED.
        MissingDataError: a work unit's features are not in the store.
        SweepInterrupted: Ctrl-C or SIGTERM before the first trial; every run opened is KILLED.
    """
    started = time.perf_counter()
    with Interrupts() as interrupts:
        driver = _Driver(spec, settings or Settings.from_env(), resume, out or sys.stderr, interrupts)
        try:
            report = driver.drive(address, max_concurrent, progress)
        except BaseException as error:
            with interrupts.quiet():
                driver.stop(error)
            if _interrupt(error) and not isinstance(error, SweepInterrupted):
                raise SweepInterrupted(driver.execution) from None
            raise
    report.wall_seconds = time.perf_counter() - started
    return report


class _Driver:
    """One :func:`train` call: what it has opened, so that it can end all of it, whenever it stops.

    The work is ordered so that nothing is recorded before the checks: the locations are probed and the stores
    set up; on resume the execution's lease is taken and the runs a dead driver left RUNNING are KILLED; then
    the data is built while Ray starts, the cluster's slots are counted, and only then are runs opened.
    """

    def __init__(self, spec: WorkSpec, settings: Settings, resume: bool, out: TextIO,
                 interrupts: Interrupts) -> None:
        self.spec, self.settings, self.resume, self.out, self.interrupts = spec, settings, resume, out, interrupts
        self.tracker: Tracker | None = None
        self.lease: ExecutionLease | None = None
        self.execution: str | None = None
        self.sweep: Sweep | None = None
        self.pool: WorkerPool | None = None
        self.background = None
        self.cancel = threading.Event()
        self.ray_owned = False

    def drive(self, address: str | None, max_concurrent: int | None, progress: bool) -> SweepReport:
        from concurrent.futures import ThreadPoolExecutor

        spec, settings = self.spec, self.settings
        address = address or settings.compute.ray_address
        settings.home.mkdir(parents=True, exist_ok=True)
        preflight(settings, address)
        initialize_stores(settings, on_wait=self._waiting)
        self.tracker = Tracker(settings.tracking.mlflow_uri, settings.tracking.artifact_root,
                               atomic=self.interrupts.deferred)
        experiment_id = self.tracker.experiment(spec.name)
        if self.resume:
            self._claim(experiment_id)
        # the data is built while Ray starts and its workers import TensorFlow
        self.background = ThreadPoolExecutor(1, thread_name_prefix="atlas-prepare")
        building = self.background.submit(build_all, spec, settings, self.cancel)
        import ray

        self.ray_owned = not ray.is_initialized()
        connect(address)
        self.interrupts.install()  # ray.init put in its own SIGTERM handler
        size = slots(spec.resources, max_concurrent or spec.max_concurrent)
        # a queued trial takes its pruning snapshot when sent: with a pruner, send one only to an idle worker
        depth = 1 if spec.search.pruner != "none" else 2
        self.pool = WorkerPool(min(size, spec.n_trials), spec.resources, packaging=spec.log_models != 0,
                               depth=depth)
        data = building.result()
        version = code_version()
        if self.execution is None:
            self._start(experiment_id, version)
        else:
            self.tracker.reopen(self.execution)
        sweep = self.sweep = Sweep(spec, self.tracker, experiment_id, self.execution, version, settings,
                                   lease=self.lease)
        sweep.open(data, self.resume)
        report = sweep.share(self.pool)
        bar = Progress(sweep.planned, sweep.already, out=self.out, enabled=progress)
        try:
            sweep.run(bar)
        except KeyboardInterrupt:
            with self.interrupts.quiet():
                sweep.abort("killed")
            report.interrupted = True
        finally:
            bar.close()
        if not report.interrupted:
            sweep.finish()
        with self.interrupts.quiet():  # all is recorded: a Ctrl-C now only waits for Ray to stop
            self._close()
        return report

    def _waiting(self, lock) -> None:
        print(f"waiting for another Atlas process to set up the stores (lock {lock})", file=self.out, flush=True)

    def _claim(self, experiment_id: str) -> None:
        """Resume: the newest execution, its lease, and the runs its dead driver left RUNNING marked KILLED."""
        spec, tracker = self.spec, self.tracker
        execution = tracker.latest_execution(experiment_id, spec.name)
        if execution is None:
            msg = (f"nothing to resume: the MLflow store {mask_url(tracker.uri)} has no execution of work spec "
                   f"{spec.name!r}; run without --resume to start one")
            raise ConfigError(msg)
        storage = self.settings.tracking.optuna_storage
        self.lease = ExecutionLease.acquire(storage, execution, spec.name)
        self.execution = execution
        check_resumable(storage, {study_name(spec, execution, unit, model_spec): (unit.name, model_spec)
                                  for unit in spec.work_units for model_spec in unit.model_specs})
        driver = self.lease.previous.describe() if self.lease.previous else "a driver"
        reason = f"its driver ({driver}) stopped before ending it; marked KILLED when the sweep was resumed"
        for run_id in tracker.unfinished(experiment_id, execution):
            tracker.end(run_id, "killed", error=reason)

    def _start(self, experiment_id: str, version: str) -> None:
        """A new execution run, and its lease."""
        self.execution = _execution(self.tracker, experiment_id, self.spec, version)
        try:
            self.lease = ExecutionLease.acquire(self.settings.tracking.optuna_storage, self.execution,
                                                self.spec.name)
        except ConfigError:  # a --resume took this new execution over the moment it appeared: it is that one's
            self.tracker.opened.clear()
            raise

    def stop(self, error: BaseException) -> None:
        """After an interrupt or an error: every run opened here and not ended becomes KILLED or FAILED."""
        try:
            self.cancel.set()
            if self.background is not None:
                self.background.shutdown(wait=True)
            lost = self.lease is not None and self.lease.lost  # the runs are another driver's now
            if self.tracker is not None and not lost:
                state = "killed" if _interrupt(error) else "failed"
                reason = None if state == "killed" else mask_text(f"{type(error).__name__}: {error}")
                if self.sweep is not None:
                    self.sweep.abort(state, reason)
                else:
                    self.tracker.end_open(state, error=reason)
        except Exception as failure:  # noqa: BLE001 - e.g. the tracking store went away: report the first error
            error.add_note(f"Atlas could not mark this sweep's open runs ended: {mask_text(str(failure))}")
        finally:
            self._close()

    def _close(self) -> None:
        if self.background is not None:
            self.cancel.set()
            self.background.shutdown(wait=True)
        if self.lease is not None:
            self.lease.release()
        if self.pool is not None:
            try:
                self.pool.shutdown()
            except Exception:  # noqa: BLE001 - Ray may be gone (Ctrl-C reaches its processes too)
                pass
            self.pool = None
        if self.ray_owned:
            import ray

            ray.shutdown()
            self.ray_owned = False


def _interrupt(error: BaseException) -> bool:
    """Ctrl-C, or SIGTERM (as ours, or as the handler ``ray.init`` installs, which exits with the signal)."""
    return isinstance(error, KeyboardInterrupt) or (isinstance(error, SystemExit) and error.code == signal.SIGTERM)


def _execution(tracker: Tracker, experiment_id: str, spec: WorkSpec, version: str) -> str:
    """A new execution run (or ``mlflow run``'s own run, if it is in the work spec's experiment)."""
    tags = {LEVEL: "execution", WORK_SPEC: spec.name, CODE_VERSION: version}
    project_run = os.environ.get("MLFLOW_RUN_ID")
    if project_run and tracker.client.get_run(project_run).info.experiment_id == experiment_id:
        run_id = project_run
        tracker.adopt(run_id)
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
