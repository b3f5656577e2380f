"""One trial, as a worker runs it: build the model, fit with per-epoch validation and pruning, score, package.

:func:`run_trial` is a plain function of a :class:`TrialTask` and the work unit's data, so it runs the same in
a Ray worker and in a test. It never raises for a failure of the trial itself: the traceback comes back in
the :class:`TrialResult` and the sweep goes on.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: What a trial became: trained to the end (or stopped early), stopped by the pruner, or failed.
STATES = ("finished", "pruned", "failed")


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to run one trial besides the data.

    Attributes:
        work_unit, model_spec, number: which trial (``number`` is the Optuna trial number in its study).
        model: the model type's name, or a Model subclass. params: concrete parameter values.
        fit: ``epochs``, ``batch_size``, ``patience``. seed: the trial's seed.
        validation: the fraction of training samples held out to watch each epoch. horizon: the label's
            lookforward in buckets: training samples within it of the validation block are purged.
        pruner: ``"none"``, ``"median"`` or ``"hyperband"``. history: the per-epoch validation losses of the
            study's finished trials, for the pruner to compare with (a snapshot taken when the trial started).
        featureset: the work unit's FeatureLabelSet, packaged with the model. save_model: package the pyfunc.
        threads: TensorFlow threads for this worker (applied once per process).
        run_id: the trial's MLflow run (its card is titled with it). replicate: which of the point's seeds.
        card: draw the trial's baseball card here, in the worker. cost_bps, calendar, interval: as
            ``atlas.infra.Digest``, for the trading statistics and the card.
    """

    work_unit: str
    model_spec: str
    number: int
    model: Any
    params: Mapping[str, Any]
    fit: Mapping[str, Any]
    seed: int
    validation: float
    horizon: int
    featureset: Any
    pruner: str = "none"
    history: Sequence[Sequence[float]] = ()
    save_model: bool = True
    threads: int = 1
    run_id: str = ""
    replicate: int = 0
    card: bool = False
    cost_bps: float = 1.0
    calendar: Any = None
    interval: str = "1D"

    @property
    def title(self) -> str:
        """How a card names the trial: model spec, work unit, trial (and replicate), run id."""
        replicate = f" (replicate {self.replicate})" if self.replicate else ""
        return (f"{self.model_spec} in {self.work_unit}, trial {self.number}{replicate}"
                + (f"; run {self.run_id}" if self.run_id else ""))


@dataclass
class TrialResult:
    """What a trial produced.

    Attributes:
        state: one of :data:`STATES`. error: the traceback of a failed trial.
        history: per-epoch metrics (``loss``, ``val_loss``, ``accuracy``, ...). stopped, best_epoch: as
            ``atlas.models.History``. objective: the lowest validation loss (what the search minimizes).
        scores: test-window statistics (``test_accuracy``, ``test_mse``, ...) and training-window ones.
        fit_seconds: time inside ``fit``. seconds: the whole trial in the worker. started: when it began (epoch
            seconds). model: the pyfunc model
            folder as an uncompressed tar, or None.
        host, pid, node, gpus: where it ran (the host name, the process, the Ray node id, the GPU ids Ray gave
            its worker).
        predictions: the test-window and validation-block predictions, a Parquet file's bytes (see
            ``atlas.stats.Predictions``), for every finished trial. card: its baseball card, a PNG's bytes, when
            the task asked for it.
    """

    work_unit: str
    model_spec: str
    number: int
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    stopped: str | None = None
    best_epoch: int | None = None
    objective: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    model: bytes | None = None
    host: str = ""
    pid: int = 0
    node: str = ""
    gpus: list[str] = field(default_factory=list)
    started: float = 0.0
    attempts: int = 1
    predictions: bytes | None = None
    card: bytes | None = None


def split_validation(n_samples: int, fraction: float, horizon: int) -> tuple[slice, slice]:
    """The training and validation slices of ``n_samples`` time-ordered samples: the latest ``fraction`` is
    validation, and the ``horizon`` samples before it are dropped, since their labels read into it.

    Example:
        >>> split_validation(100, 0.2, 3)
        (slice(0, 77, None), slice(80, 100, None))
    """
    n_validation = max(1, int(round(n_samples * fraction)))
    end_train = n_samples - n_validation - max(0, horizon)
    if end_train < 1:
        msg = (f"{n_samples} training samples are too few to hold out {fraction:.0%} for validation after a "
               f"purge of {horizon}; lengthen the training window or lower WorkUnit.validation")
        from atlas.exceptions import ConfigError

        raise ConfigError(msg)
    return slice(0, end_train), slice(n_samples - n_validation, n_samples)


def run_trial(task: TrialTask, dataset: Any) -> TrialResult:
    """Runs ``task`` on ``dataset`` (an ``atlas.data.dataset.Dataset``); failures come back as results."""
    started = time.perf_counter()
    result = TrialResult(task.work_unit, task.model_spec, task.number, "failed", params=dict(task.params),
                         host=socket.gethostname(), pid=os.getpid(), started=time.time())
    try:
        _train(task, dataset, result)
    except Exception:  # noqa: BLE001 - the trial failed; the sweep records why and goes on
        result.state, result.error = "failed", traceback.format_exc()
    result.seconds = time.perf_counter() - started
    return result


def _train(task: TrialTask, dataset: Any, result: TrialResult) -> None:
    from atlas.models import DataShape, FitOptions, configure
    from atlas.models import model_class as zoo_class

    cls = task.model if isinstance(task.model, type) else zoo_class(task.model)
    configure(seed=task.seed, threads=task.threads)
    window = dataset.window if cls.sequence is not False and dataset.window else None
    shape = DataShape(n_features=dataset.n_features, n_classes=dataset.n_classes if dataset.class_names else None,
                      window=window)
    model = cls(dict(task.params), shape)
    x = dataset.inputs("train")
    y = dataset.y_train
    fit_part, val_part = split_validation(len(y), task.validation, task.horizon)
    weights = None if dataset.sample_weight is None else dataset.sample_weight[fit_part]
    options = FitOptions(**task.fit, seed=task.seed, threads=task.threads)  # fit: epochs, batch_size, patience
    callbacks = [_Pruner(task)] if task.pruner != "none" else []
    fit_started = time.perf_counter()
    history = model.fit(x[fit_part], y[fit_part], validation=(x[val_part], y[val_part]), sample_weight=weights,
                        options=options, callbacks=callbacks)
    result.fit_seconds = time.perf_counter() - fit_started
    result.history = {name: [float(v) for v in values] for name, values in history.metrics.items()}
    result.stopped, result.best_epoch = history.stopped, history.best_epoch
    losses = [v for v in result.history.get("val_loss", []) if np.isfinite(v)]
    result.objective = min(losses) if losses else None
    pruned = bool(callbacks) and callbacks[0].pruned
    if not pruned:
        evidence = _evidence(model, task, dataset, x[val_part], y[val_part], y[fit_part], val_part)
        result.scores = _scores(model, dataset, x, y, fit_part) | _digest(task, evidence, result, y[fit_part])
    if task.save_model and not pruned:
        result.model = _package(model, task, dataset)
    result.state = "pruned" if pruned else "finished"


class _Pruner:
    """An epoch callback asking an Optuna pruner, over a snapshot of the study's finished trials, to stop."""

    def __init__(self, task: TrialTask) -> None:
        import optuna

        from atlas.infra._search import make_pruner

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction="minimize", pruner=make_pruner(task.pruner))
        distribution = optuna.distributions.FloatDistribution(0, 1)
        for losses in task.history:
            if losses:
                self.study.add_trial(optuna.trial.create_trial(
                    value=min(losses), params={"_": 0.5}, distributions={"_": distribution},
                    intermediate_values=dict(enumerate(losses))))
        self.trial = self.study.ask()
        self.pruned = False

    def __call__(self, epoch: int, logs: Mapping[str, float]) -> bool:
        value = logs.get("val_loss")
        if value is None or not np.isfinite(value):
            return False
        self.trial.report(float(value), epoch)
        self.pruned = self.trial.should_prune()
        return self.pruned


def _scores(model, dataset, x_train, y_train, fit_part: slice) -> dict[str, float]:
    from atlas.stats import classification_scores, regression_scores

    scores = {}
    x_test = dataset.inputs("test")
    for part, x, y in (("test", x_test, dataset.y_test), ("train", x_train[fit_part], y_train[fit_part])):
        if not len(y):
            continue
        if model.task == "classification":
            values = classification_scores(y, model.predict_proba(x), y_train=y_train[fit_part])
        else:
            values = regression_scores(y, model.predict(x), y_train=y_train[fit_part])
        scores.update({f"{part}_{name}": value for name, value in values.items()})
    return scores


def _evidence(model, task: TrialTask, dataset, x_validation, y_validation, y_fit, val_part: slice):
    """The trial's predictions on the test window and the validation block, as ``atlas.stats.Predictions``."""
    import pandas as pd

    from atlas.stats import check_predictions

    raw_train = dataset.raw_train if dataset.raw_train is not None else np.full(len(dataset.y_train), np.nan)
    raw_test = dataset.raw_test if dataset.raw_test is not None else np.full(len(dataset.y_test), np.nan)
    parts = []
    for part, x, y, index, raw in (("validation", x_validation, y_validation, dataset.index_train[val_part],
                                    raw_train[val_part]),
                                   ("test", dataset.inputs("test"), dataset.y_test, dataset.index_test, raw_test)):
        if not len(y):
            continue
        frame = pd.DataFrame({"bucket": index, "part": part, "y_true": y, "forward_return": raw})
        if model.task == "classification":
            proba = np.asarray(model.predict_proba(x), dtype=np.float64)
            frame["y_pred"] = proba.argmax(axis=1)
            for k, name in enumerate(dataset.class_names):
                frame[f"proba_{name}"] = proba[:, k]
        else:
            frame["y_pred"] = np.asarray(model.predict(x), dtype=np.float64).ravel()
        parts.append(frame)
    frame = pd.concat(parts, ignore_index=True)
    if model.task == "classification":
        majority = int(np.bincount(np.asarray(y_fit), minlength=len(dataset.class_names)).argmax())
        return check_predictions(frame, class_names=dataset.class_names, bucket_width=task.featureset.bucket,
                                 horizon=max(1, task.horizon), baseline_class=majority)
    return check_predictions(frame, task="regression", bucket_width=task.featureset.bucket,
                             horizon=max(1, task.horizon), train_mean=float(np.mean(y_fit)))


def _digest(task: TrialTask, evidence, result: TrialResult, y_fit: np.ndarray) -> dict[str, float]:
    """The trial's headline statistics on the test window (``test_*``: what MLflow's table and charts show), its
    significance against its baseline, its stored predictions and, when asked, its card."""
    from atlas.stats import CRYPTO, card_png, headline_metrics, lift_differential, trial_significance

    calendar = task.calendar or CRYPTO
    test = evidence.part("test")
    scores = headline_metrics(evidence, part="test", calendar=calendar, cost_bps=task.cost_bps,
                              interval=task.interval)
    significance = trial_significance(lift_differential(evidence, part="test"), horizon=test.horizon,
                                      seed=task.seed)
    scores |= {"p_value": significance.p_value, "lift": significance.lift, "lift_ci_low": significance.ci_low,
               "lift_ci_high": significance.ci_high}
    if test.task == "classification":  # the baseline's log loss: the training classes' frequencies as forecast
        counts = np.bincount(np.asarray(y_fit), minlength=test.n_classes).astype(float)
        prior = (counts + 1) / (counts.sum() + test.n_classes)
        scores["baseline_log_loss"] = float(-np.log(prior[test.y_true]).mean())
    result.predictions = evidence.to_bytes()
    if task.card:
        result.card = card_png(test, title=task.title, significance=significance, calendar=calendar,
                               cost_bps=task.cost_bps, interval=task.interval)
    return {f"test_{name}": value for name, value in scores.items()}


def _package(model, task: TrialTask, dataset) -> bytes:
    """The pyfunc model folder as an uncompressed tar: it travels back through Ray, to be logged by the driver."""
    from atlas.models import save_pyfunc
    from atlas.runs import pack_model

    with tempfile.TemporaryDirectory(prefix="atlas-trial-") as staging:
        folder = Path(staging) / "model"
        models = {model.kind: type(model)} if isinstance(task.model, type) else None
        save_pyfunc(folder, model, task.featureset, dataset.transforms, models=models)
        return pack_model(folder)
