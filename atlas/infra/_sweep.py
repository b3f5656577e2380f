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
import signal
import sys
import threading
import time
from typing import TextIO

from atlas.config import Settings, mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.infra._callbacks import Evidence, ModelLogger, Recorder, Reporter, Teller
from atlas.infra._digest import Digest
from atlas.infra._driver import Sweep, SweepReport, build_all, build_data
from atlas.infra._interrupts import Interrupts, SweepInterrupted
from atlas.infra._lease import ExecutionLease
from atlas.infra._pool import WorkerPool, connect, slots
from atlas.infra._progress import Progress
from atlas.infra._search import check_resumable
from atlas.infra._specs import WorkSpec
from atlas.infra._stores import initialize_stores, preflight
from atlas.runs import WORK_SPEC_ARTIFACT, Level, RunWriter, Tag, code_version, context_tags, flat_params

__all__ = ["SweepInterrupted", "SweepReport", "harvest", "plan", "train"]


def harvest(work_spec: str, *, settings: Settings, execution: str = "latest"):
    """The trials of ``work_spec`` as ``atlas.stats.Results`` (see ``atlas.runs.harvest``), from the tracking store
    of ``settings``: one row per trial, with the digest as methods."""
    from atlas.stats import harvest as read

    return read(work_spec, tracking_uri=settings.tracking.mlflow_uri, execution=execution)


def plan(spec: WorkSpec, *, settings: Settings) -> list[dict]:
    """The sweep without running it: per model spec, its trials and its data's sizes (the data is built).

    Raises:
        MissingDataError: a work unit's features are not in the store (the message says what produces them).
    """
    from atlas.data import MarketStore

    counts = {(unit, model): trials for unit, model, trials in spec.trials()}
    rows = []
    for unit in spec.work_units:
        with MarketStore.from_settings(settings) as store:
            data = build_data(unit, store, spec.seed)
        for model_spec in unit.model_specs:
            window = unit.window if model_spec.model_class.sequence is not False and unit.window else None
            dataset = data[window]
            rows.append({"work_unit": unit.name, "model_spec": model_spec.name, "model": model_spec.kind,
                         "trials": counts[unit.name, model_spec.name], "window": window,
                         "train_samples": len(dataset.y_train), "test_samples": len(dataset.y_test),
                         "data_hash": dataset.content_hash[:12], "report": dataset.report})
    return rows


def train(spec: WorkSpec, *, settings: Settings, address: str | None = None,
          max_concurrent: int | None = None, resume: bool = False, progress: bool = True,
          out: TextIO | None = None, source: str | None = None, project_run: str | None = None) -> SweepReport:
    """Runs every trial of ``spec`` on Ray and records them in MLflow.

    Example (what ``atlas train experiments/quickstart.py`` does)::

        report = train(load_spec("experiments/quickstart.py"), settings=Settings.from_env())
        report.count("finished"), report.execution_run_id

    Args:
        settings: where the market store, MLflow, Optuna and Ray are (``Settings.from_env()`` reads them from
            the environment, as the ``atlas`` command does).
        address: a Ray cluster's address (``ray://`` or ``host:port``); by default ``ATLAS_RAY_ADDRESS``, or a
            local Ray started here and stopped at the end.
        max_concurrent: at most this many trials at once (over ``spec.max_concurrent``).
        resume: finish the newest execution of this work spec: run only what it has not finished. Its runs that
            a driver killed with ``kill -9`` left RUNNING are marked KILLED first.
        progress: show live progress on ``out`` (stderr by default).
        source: what started the sweep, for MLflow's ``mlflow.source.name`` (the spec file, by the command).
        project_run: the run of an ``mlflow run`` that started this sweep (``MLFLOW_RUN_ID``, read by the
            command): in the work spec's experiment it becomes the execution run; elsewhere it points at it.

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
        driver = _Driver(spec, settings, resume, out or sys.stderr, interrupts, source or spec.name, project_run)
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
                 interrupts: Interrupts, source: str, project_run: str | None) -> None:
        self.spec, self.settings, self.resume, self.out, self.interrupts = spec, settings, resume, out, interrupts
        self.source, self.project_run = source, project_run
        self.tracker: RunWriter | None = None
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
        self.tracker = RunWriter(settings.tracking.mlflow_uri, settings.tracking.artifact_root,
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
        # one trial per worker: its run is created when it starts, so the run's duration is the trial's
        self.pool = WorkerPool(min(size, spec.n_trials), spec.resources, packaging=spec.log_models != 0,
                               depth=1)
        data = building.result()
        self.pool.ready()
        version = code_version()
        self.tracker.context = context_tags(self.source, version)
        if self.execution is None:
            self._start(experiment_id, version)
        else:
            self.tracker.reopen(self.execution)
        stash = settings.home / "sweeps" / self.execution / "models"
        digest = Digest(self.out)
        sweep = self.sweep = Sweep(spec, self.tracker, experiment_id, self.execution, version, settings,
                                   lease=self.lease)
        sweep.open(data, self.resume)
        report = sweep.share(self.pool)
        bar = Progress(sweep.planned, sweep.already, out=self.out, enabled=progress)
        sweep.callbacks = [Recorder(), Evidence(), ModelLogger(stash), Teller(), Reporter(bar),
                           _Guarded(digest, self.out)]
        try:
            sweep.run()
        except KeyboardInterrupt:
            with self.interrupts.quiet():
                sweep.abort("killed")
            report.interrupted = True
        finally:
            bar.close()
        if not report.interrupted:
            sweep.finish()
            report.verdict = digest.verdict
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
        check_resumable(_recorded_spec(tracker, execution), spec)
        driver = self.lease.previous.describe() if self.lease.previous else "a driver"
        reason = f"its driver ({driver}) stopped before ending it; marked KILLED when the sweep was resumed"
        for run_id in tracker.unfinished(experiment_id, execution):
            tracker.end(run_id, "killed", error=reason)

    def _start(self, experiment_id: str, version: str) -> None:
        """A new execution run, and its lease."""
        self.execution = _execution(self.tracker, experiment_id, self.spec, version, self.source,
                                    self.project_run)
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


def _execution(tracker: RunWriter, experiment_id: str, spec: WorkSpec, version: str, source: str,
               project_run: str | None) -> str:
    """A new execution run, named after the work spec and its start (or ``mlflow run``'s own run, if it is in
    the work spec's experiment)."""
    tags = {Tag.LEVEL: Level.EXECUTION, Tag.WORK_SPEC: spec.name, Tag.CODE_VERSION: version,
            **context_tags(source, version)}
    if project_run and tracker.client.get_run(project_run).info.experiment_id == experiment_id:
        run_id = project_run
        tracker.adopt(run_id)
        tracker.log(run_id, tags={k: v for k, v in tags.items() if not k.startswith("mlflow.source")})
    else:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        run_id = tracker.start(experiment_id, f"{spec.name} {started}", tags)
        if project_run:  # `mlflow run` in another experiment: point its run at this one
            tracker.log(project_run, tags={Tag.EXECUTION_RUN: run_id, Tag.EXPERIMENT: experiment_id})
    described = {"search": spec.search.to_dict(), "resources": spec.resources.to_dict(),
                 "max_concurrent": spec.max_concurrent, "seed": spec.seed, "log_models": spec.log_models,
                 "replicates": spec.replicates, "digest": spec.digest.to_dict(),
                 "n_trials": spec.n_trials, "work_units": [u.name for u in spec.work_units]}
    tracker.log(run_id, params=flat_params({"work_spec": described}))  # prefixed: `mlflow run` logs its own
    tracker.log_text(run_id, json.dumps(spec.to_dict(), indent=2, default=str), WORK_SPEC_ARTIFACT)
    return run_id


def _recorded_spec(tracker: RunWriter, execution: str) -> dict | None:
    """The work spec an execution recorded when it started (``work_spec.json``), or None."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="atlas-spec-") as folder:
            path = tracker.client.download_artifacts(execution, WORK_SPEC_ARTIFACT, folder)
            with open(path) as handle:
                return json.load(handle)
    except Exception:  # noqa: BLE001 - an execution recorded without it: nothing to compare with
        return None


class _Guarded:
    """Runs a callback's end of sweep so that its failure is said and recorded, never losing the sweep: every
    trial is already recorded when the digest is drawn."""

    def __init__(self, callback, out: TextIO) -> None:
        self.callback, self.out = callback, out

    def __getattr__(self, name: str):
        return getattr(self.callback, name)

    def sweep_finished(self, sweep: Sweep) -> None:
        try:
            self.callback.sweep_finished(sweep)
        except Exception as error:  # noqa: BLE001 - any failure of the digest: say it, record it, go on
            text = mask_text(f"{type(error).__name__}: {error}")
            print(f"warning: the sweep's digest could not be drawn: {text}", file=self.out, flush=True)
            sweep.writer.log(sweep.execution, tags={Tag.ERROR: f"digest: {text}"[:500]})
