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
import time
from typing import TextIO

from atlas.config import Settings
from atlas.exceptions import ConfigError
from atlas.infra._driver import Sweep, SweepReport, build_data
from atlas.infra._pool import WorkerPool, connect, slots
from atlas.infra._progress import Progress
from atlas.infra._search import check_storage
from atlas.infra._specs import WorkSpec
from atlas.infra._tracking import CODE_VERSION, LEVEL, WORK_SPEC, Tracker, code_version, flat_params

__all__ = ["SweepReport", "plan", "train"]


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
        except KeyboardInterrupt:  # before the first trial: the runs made so far are marked KILLED too
            background.shutdown(wait=True)
            if prepared.done() and prepared.exception() is None:
                prepared.result().kill()
            raise
        finally:
            if pool is not None:
                pool.shutdown()
            if started_ray:
                import ray

                ray.shutdown()
    report.wall_seconds = time.perf_counter() - started
    return report


def _prepare(spec: WorkSpec, settings: Settings, resume: bool) -> Sweep:
    """Everything of a sweep that needs no Ray: the execution's and units' MLflow runs, the data, the studies."""
    from atlas.data import MarketStore

    tracker = Tracker(settings.tracking.mlflow_uri, settings.tracking.artifact_root)
    experiment_id = tracker.experiment(spec.name)
    version = code_version()
    execution = _execution(tracker, experiment_id, spec, version, resume)
    sweep = Sweep(spec, tracker, experiment_id, execution, version, settings)
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
