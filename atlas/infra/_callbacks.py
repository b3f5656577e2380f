"""What happens around the sweep's loop, as callbacks: the driver announces each trial's start and end and the
sweep's, and each concern reacts to the events it needs.

- :class:`Recorder` writes a trial's parameters, statistics, tags, traceback and data into its MLflow run, and at
  the end the summaries and the ``best`` pointers of the work unit and execution runs.
- :class:`ModelLogger` logs each trial's pyfunc model (or the top k at the end), named after the trial, with its
  parameters and test statistics linked.
- :class:`Evidence` stores each trial's predictions and its baseball card.
- :class:`Teller` tells Optuna each trial's outcome. :class:`Reporter` updates the live progress.
- ``atlas.infra._digest.Digest`` draws the overview and judges the sweep at the end.

The events, in order: ``trial_started`` (its run exists, its task is sent); ``trial_finished`` (its result is back:
record it, while its run is open); the driver ends the run; ``trial_closed`` (after it); ``sweep_finished`` or
``sweep_aborted``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from atlas.runs import CARD_ARTIFACT, PREDICTIONS_ARTIFACT, TRACEBACK_ARTIFACT, Tag, flat_params

if TYPE_CHECKING:
    from atlas.infra._driver import Sweep, TrialRun
    from atlas.infra._progress import Progress
    from atlas.infra._trial import TrialResult


class SweepCallback:
    """The events of a sweep; each method does nothing unless overridden."""

    def trial_started(self, sweep: Sweep, trial: TrialRun) -> None:
        """A trial's run was created and its task sent to a worker."""

    def trial_finished(self, sweep: Sweep, trial: TrialRun, result: TrialResult) -> None:
        """A trial's result came back; its run is still open."""

    def trial_closed(self, sweep: Sweep, trial: TrialRun, result: TrialResult) -> None:
        """A trial's run was ended."""

    def sweep_finished(self, sweep: Sweep) -> None:
        """Every trial was recorded; the work unit and execution runs are still open."""

    def tick(self, sweep: Sweep) -> None:
        """The driver's loop went round (about twice a second while trials run)."""

    def sweep_aborted(self, sweep: Sweep, state: str) -> None:
        """The sweep stopped (``"killed"`` by Ctrl-C, or ``"failed"``); its open runs are being ended."""


#: Headline statistics copied to a work unit's and an execution's run as the ``best_*`` pointer.
_BEST = ("best_val_loss", "test_accuracy", "test_accuracy_lift", "test_balanced_accuracy", "test_mcc",
         "test_sharpe", "test_p_value", "test_rmse", "test_directional_accuracy", "test_ic")


class Recorder(SweepCallback):
    """A trial's record in its MLflow run; at the end, the summaries and best pointers."""

    def trial_finished(self, sweep: Sweep, trial: TrialRun, result: TrialResult) -> None:
        from atlas.models import FitOptions

        task, spec, writer = trial.task, trial.study.spec, sweep.writer
        metrics = {**result.scores, "fit_seconds": result.fit_seconds, "trial_seconds": result.seconds,
                   "epochs": len(result.history.get("loss", [])), "best_val_loss": result.objective}
        defaults = FitOptions()
        fit = {"epochs": defaults.epochs, "batch_size": defaults.batch_size, "patience": defaults.patience,
               **task.fit}
        params = flat_params({"model": spec.kind, **task.params, "fit": fit, "seed": task.seed,
                              "replicate": task.replicate, "digest": sweep.spec.digest.to_dict()})
        tags = {Tag.HOST: result.host, Tag.PID: str(result.pid), Tag.NODE: result.node,
                Tag.GPUS: ",".join(result.gpus), Tag.ATTEMPTS: str(result.attempts), Tag.STATE: result.state}
        if result.started:
            tags[Tag.STARTED] = str(result.started)
        if result.stopped:
            tags[Tag.STOPPED] = result.stopped
        if result.error:
            tags[Tag.ERROR] = result.error.strip().splitlines()[-1][:500]
        writer.log(trial.run_id, params=params, metrics=metrics, series=result.history, tags=tags)
        if result.error:
            writer.log_text(trial.run_id, result.error, TRACEBACK_ARTIFACT)
        dataset = trial.unit.data[trial.unit.window_for(spec)]
        writer.log_dataset(trial.run_id, dataset, trial.unit.unit.featureset, sweep.store_url)
        writer.log_dataset(trial.run_id, dataset, trial.unit.unit.featureset, sweep.store_url, context="testing")

    def sweep_finished(self, sweep: Sweep) -> None:
        """Each work unit run and the execution run get their counts and a pointer to their best trial (lowest
        validation loss) with its headline statistics."""
        results = sweep.results_frame()
        finished = results[results["state"] == "finished"] if len(results) else results
        for name, unit in sweep.units.items():
            studies = [s for s in sweep.studies if s.work_unit == name]
            rows = results[results["work_unit"] == name] if len(results) else results
            metrics = {"trials_done": sum(s.done for s in studies),
                       "trials_failed": int((rows["state"] == "failed").sum()) if len(rows) else 0}
            tags = {}
            best = _best(finished[finished["work_unit"] == name] if len(finished) else finished)
            if best is not None:
                metrics |= {f"best_{k.removeprefix('best_')}": best[k] for k in _BEST if k in best.index}
                tags = {Tag.BEST_RUN: best["run_id"], Tag.BEST_TRIAL: str(best["run_name"])}
            sweep.writer.log(unit.run_id, metrics=metrics, tags=tags)
        metrics = {"trials_done": sweep.already, "trials_failed": int((results["state"] == "failed").sum())
                   if len(results) else 0}
        best = _best(finished)
        tags = {}
        if best is not None:
            metrics |= {f"best_{k.removeprefix('best_')}": best[k] for k in _BEST if k in best.index}
            tags = {Tag.BEST_RUN: best["run_id"], Tag.BEST_TRIAL: f"{best['work_unit']}/{best['run_name']}"}
        sweep.writer.log(sweep.execution, metrics=metrics, tags=tags)


def _best(frame):
    """The row with the lowest validation loss, or None."""
    if frame is None or not len(frame) or "best_val_loss" not in frame or frame["best_val_loss"].isna().all():
        return None
    return frame.loc[frame["best_val_loss"].idxmin()]


class ModelLogger(SweepCallback):
    """Every trial's pyfunc model (``log_models="all"``), or the k with the lowest validation loss per model spec,
    logged at the end from a stash on disk (``log_models=k``)."""

    def __init__(self, stash: Path) -> None:
        self.stash = stash

    def trial_finished(self, sweep: Sweep, trial: TrialRun, result: TrialResult) -> None:
        if result.model is None:
            return
        if sweep.spec.log_models == "all":
            _log_model(sweep, trial.run_id, trial.run_name, trial.study, result.model, result.scores,
                       trial.task.params)
        else:
            self.stash.mkdir(parents=True, exist_ok=True)
            (self.stash / f"{trial.run_id}.tar").write_bytes(result.model)
            (self.stash / f"{trial.run_id}.json").write_text(json.dumps(
                {"name": trial.run_name, "scores": result.scores, "params": trial.task.params}, default=str))
        result.model = None  # logged or stashed: do not keep every model in memory

    def sweep_finished(self, sweep: Sweep) -> None:
        k = sweep.spec.log_models
        if isinstance(k, int) and not isinstance(k, bool) and k > 0:
            from optuna.trial import TrialState

            for study in sweep.studies:
                finished = [t for t in study.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                            if "mlflow_run_id" in t.user_attrs and t.user_attrs.get("execution") == sweep.execution]
                for trial in sorted(finished, key=lambda t: t.value)[:k]:
                    run_id = trial.user_attrs["mlflow_run_id"]
                    package = self.stash / f"{run_id}.tar"
                    if package.exists():
                        about = json.loads((self.stash / f"{run_id}.json").read_text())
                        _log_model(sweep, run_id, about["name"], study, package.read_bytes(), about["scores"],
                                   about["params"])
        shutil.rmtree(self.stash, ignore_errors=True)


def _log_model(sweep: Sweep, run_id: str, name: str, study, package: bytes, scores: dict, params: dict) -> None:
    tags = {Tag.WORK_UNIT: study.work_unit, Tag.MODEL_SPEC: study.spec.name, Tag.WORK_SPEC: sweep.spec.name}
    metrics = {k: v for k, v in scores.items() if k.startswith("test_")}
    sweep.writer.log_model(run_id, sweep.experiment_id, package, name=_model_name(study.work_unit, name),
                           tags=tags, params=flat_params(params), metrics=metrics)


def _model_name(work_unit: str, run_name: str) -> str:
    """A logged model's name: the work unit and the trial's run name, in the characters MLflow takes in a model
    name (no ``/ : . %`` or quotes: ``first-learning_rate_0_01-dnn_1``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "_", f"{work_unit}-{run_name}").strip("_")[:200]


class Evidence(SweepCallback):
    """A finished trial's predictions (``predictions.parquet``) and, when drawn in the worker, its card."""

    def trial_finished(self, sweep: Sweep, trial: TrialRun, result: TrialResult) -> None:
        if result.predictions is not None:
            sweep.writer.log_bytes(trial.run_id, result.predictions, PREDICTIONS_ARTIFACT)
            sweep.predictions[trial.run_id] = result.predictions
            result.predictions = None
        if result.card is not None:
            sweep.writer.log_bytes(trial.run_id, result.card, CARD_ARTIFACT)
            result.card = None


class Teller(SweepCallback):
    """Optuna learns each trial's outcome (its per-epoch losses too, with a pruner)."""

    def trial_closed(self, sweep: Sweep, trial: TrialRun, result: TrialResult) -> None:
        losses = result.history.get("val_loss", []) if sweep.spec.search.pruner != "none" else []
        trial.study.tell(trial.task.number, result.state, losses, result.objective)


class Reporter(SweepCallback):
    """The live progress bar (or one line per trial)."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    def trial_closed(self, sweep: Sweep, trial: TrialRun, result: TrialResult) -> None:
        self.bar.update(result, running=len(sweep.running))

    def tick(self, sweep: Sweep) -> None:
        self.bar.refresh(running=len(sweep.running))
