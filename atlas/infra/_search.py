"""Optuna supplies the trials: one persistent study per model spec, asked and told by the sweep's driver.

A grid is put in the study's queue (``enqueue_trial``) once, point by point; each ``ask`` pops one point, so
concurrent trials never share a point, and a resumed sweep enqueues only the points that have no finished
(or queued) trial. TPE and random search ask the sampler over the spec's ranges and lists; TPE uses the
constant liar, so trials running side by side are not sampled at the same place.

Only the driver touches the storage (Ray workers get plain values), so SQLite is safe as the default.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.infra._specs import ModelSpec, Search

_SCALARS = (type(None), bool, int, float, str)
#: Optuna trial states that count as done: a resumed sweep does not run their points again.
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Optuna's pruner for ``"none"``, ``"median"`` or ``"hyperband"`` (on per-epoch validation loss)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _encode(value: Any) -> Any:
    """An Optuna categorical choice for ``value``: itself if a scalar, else its JSON (lists like [32, 16])."""
    return value if isinstance(value, _SCALARS) else json.dumps(value)


@dataclass
class ModelStudy:
    """The study of one model spec in one work unit: asks for trials' parameters and records their outcomes.

    Attributes:
        study: the Optuna study (``study.trials`` holds every trial with its state and user attributes).
        planned: how many trials the spec gets in all (the grid's size, or the search's budget).
    """

    work_unit: str
    spec: ModelSpec
    study: optuna.Study
    planned: int
    strategy: str
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    decode: dict[str, dict[Any, Any]] = field(default_factory=dict)
    running: dict[int, optuna.Trial] = field(default_factory=dict)

    @classmethod
    def open(cls, storage: str, name: str, work_unit: str, spec: ModelSpec, search: Search, seed: int, *,
             resume: bool) -> ModelStudy:
        """Creates the study ``name`` (or loads it with ``resume``) and queues what is left to run.

        Raises:
            ConfigError: resuming a study whose model spec changed since it was started.
        """
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study_seed = (seed * 1_000_003 + zlib.crc32(f"{work_unit}/{spec.name}".encode())) % 2**31
        if search.strategy == "tpe":
            sampler = optuna.samplers.TPESampler(seed=study_seed, constant_liar=True,
                                                 n_startup_trials=max(1, min(10, (search.n_trials or 10) // 3)))
        else:
            sampler = optuna.samplers.RandomSampler(seed=study_seed)
        described = json.dumps(spec.to_dict(), sort_keys=True)
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", sampler=sampler,
                                    pruner=make_pruner(search.pruner), load_if_exists=resume)
        if resume:
            _check_unchanged(study.user_attrs, work_unit, spec)
        study.set_user_attr("model_spec", described)
        grid = spec.grid
        planned = spec.grid_size if search.strategy == "grid" else search.n_trials
        if search.strategy == "grid" and search.n_trials:
            planned = min(planned, search.n_trials)
        self = cls(work_unit, spec, study, planned, search.strategy)
        for name_, values in grid.items():
            choices = [_encode(v) for v in values]
            self.distributions[name_] = CategoricalDistribution(choices)
            self.decode[name_] = dict(zip(choices, values, strict=True))
        self.distributions.update(spec.ranges)
        self._recover()
        if search.strategy == "grid":
            self._queue_grid()
        return self

    def _recover(self) -> None:
        """Trials left running by a driver that died are failed, so their points run again."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study._storage.set_trial_user_attr(trial._trial_id, "killed", True)
            self.study.tell(trial.number, state=TrialState.FAIL)

    def _queue_grid(self) -> None:
        trials = self.study.get_trials(deepcopy=False, states=(*DONE, TrialState.WAITING))
        seen = {json.dumps(t.params or t.system_attrs.get("fixed_params", {}), sort_keys=True) for t in trials}
        budget = self.planned - len(trials)
        for point in self.spec.grid_points():
            encoded = {k: _encode(v) for k, v in point.items() if k in self.distributions}
            key = json.dumps(encoded, sort_keys=True)
            if key not in seen and budget > 0:
                self.study.enqueue_trial(encoded)
                seen.add(key)
                budget -= 1

    @property
    def done(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=DONE))

    @property
    def remaining(self) -> int:
        """Trials still to start."""
        if self.strategy == "grid":
            return len(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        return max(0, self.planned - self.done - len(self.running))

    def ask(self) -> tuple[int, dict[str, Any]]:
        """The next trial: its number and its concrete parameters (fixed values, grid point, sampled ranges)."""
        trial = self.study.ask(self.distributions)
        self.running[trial.number] = trial
        fixed = {k: v for k, v in self.spec.params.items() if k not in self.distributions}
        params = {name: self.decode[name][value] if name in self.decode else value
                  for name, value in trial.params.items()}
        return trial.number, {**fixed, **params}

    def history(self) -> list[list[float]]:
        """The per-epoch validation losses of the finished trials, for the pruner."""
        return [[t.intermediate_values[s] for s in sorted(t.intermediate_values)]
                for t in self.study.get_trials(deepcopy=False, states=DONE) if t.intermediate_values]

    def tell(self, number: int, state: str, losses: list[float], objective: float | None, *,
             attrs: dict[str, Any] | None = None) -> None:
        """Records a trial's outcome: ``"finished"``, ``"pruned"``, ``"failed"`` or ``"killed"``."""
        trial = self.running.pop(number)
        for step, loss in enumerate(losses):
            if loss == loss:  # not NaN
                trial.report(float(loss), step)
        for key, value in (attrs or {}).items():
            trial.set_user_attr(key, value)
        if state == "finished" and objective is not None:
            self.study.tell(trial, objective)
        elif state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            if state == "killed":
                trial.set_user_attr("killed", True)
            self.study.tell(trial, state=TrialState.FAIL)

    def set_run(self, number: int, run_id: str) -> None:
        self.running[number].set_user_attr("mlflow_run_id", run_id)


def check_resumable(storage: str, studies: dict[str, tuple[str, ModelSpec]]) -> None:
    """Before a resumed sweep opens anything: each study (name -> work unit, model spec) that exists was
    started with the same model spec.

    Raises:
        ConfigError: a model spec changed since the sweep started.
    """
    rdb = optuna.storages.RDBStorage(storage)
    try:
        for name, (work_unit, spec) in studies.items():
            try:
                study_id = rdb.get_study_id_from_name(name)
            except KeyError:  # never opened: the resumed sweep creates it
                continue
            _check_unchanged(rdb.get_study_user_attrs(study_id), work_unit, spec)
    finally:
        rdb.engine.dispose()


def _check_unchanged(user_attrs: dict[str, Any], work_unit: str, spec: ModelSpec) -> None:
    described = json.dumps(spec.to_dict(), sort_keys=True)
    if user_attrs.get("model_spec", described) != described:
        msg = (f"cannot resume {work_unit}/{spec.name}: its model spec changed since the sweep started "
               f"(was {user_attrs['model_spec']}, now {described}); start a new sweep without --resume")
        raise ConfigError(msg)


def check_storage(storage: str) -> None:
    """Fails early, naming the setting, when the Optuna storage URL cannot be opened (it creates Optuna's tables
    in a new database: call it under the stores' lock, as ``initialize_stores`` does).

    Raises:
        ConfigError: the storage cannot be opened; its URL and the cause are shown without a password.
    """
    try:
        optuna.storages.RDBStorage(storage)
    except Exception as error:  # noqa: BLE001 - any failure to open it; the cause, masked, is in the message
        msg = (f"cannot open the Optuna storage {mask_url(storage)} (ATLAS_OPTUNA_STORAGE): "
               f"{mask_text(str(error))}")
        raise ConfigError(msg) from None
