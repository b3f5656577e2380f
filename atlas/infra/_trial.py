"""One trial, as a worker runs it: build the model, fit with per-epoch validation and pruning, score, package.

:func:`run_trial` is a plain function of a :class:`TrialTask` and the work unit's data, so it runs the same in
a Ray worker and in a test. It never raises for a failure of the trial itself: the traceback comes back in
the :class:`TrialResult` and the sweep goes on.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
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
    result.scores = _scores(model, dataset, x, y, fit_part)
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


def _package(model, task: TrialTask, dataset) -> bytes:
    """The pyfunc model folder as an uncompressed tar: it travels back through Ray, to be logged by the driver."""
    from atlas.models import save_pyfunc

    with tempfile.TemporaryDirectory(prefix="atlas-trial-") as staging:
        folder = Path(staging) / "model"
        models = {model.kind: type(model)} if isinstance(task.model, type) else None
        save_pyfunc(folder, model, task.featureset, dataset.transforms, models=models)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(folder, arcname="model")
        return buffer.getvalue()


def unpack_model(data: bytes, into: Path) -> Path:
    """Unpacks a packaged model into ``into``; returns the model folder."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(into, filter="data")
    return Path(into) / "model"
