"""Optuna supplies the trials: one persistent study per model spec, asked and told by the sweep's driver.

The study of a model spec is named after the work spec, the work unit, the model spec and a digest of its
definition (``quickstart.itbit_next_minute.dnn.3f2a9c1e``), and kept across executions: each execution's trials
carry its run id (the ``execution`` user attribute), so TPE learns from every execution of the same model spec,
while each execution runs its own grid, and a changed model spec starts a study of its own. A grid point is
created as its trial when asked (never through Optuna's shared queue, which another execution could pop), so
concurrent trials never share a point and a resumed execution runs only the points it has not finished. TPE and
random search ask the sampler over the spec's ranges and lists; TPE uses the constant liar, so trials running side
by side are not sampled at the same place. Each grid point is trained ``replicates`` times, with seeds
``seed + replicate``: the points of a grid share their seeds, so a comparison across the grid is not confounded by
them. The objective is named: ``val_loss``.

Only the driver touches the storage (Ray workers get plain values), so SQLite is safe as the default.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.infra._specs import ModelSpec, Search, WorkSpec, WorkUnit

_SCALARS = (type(None), bool, int, float, str)
#: Optuna trial states that count as done: a resumed sweep does not run their points again.
DONE = (TrialState.COMPLETE, TrialState.PRUNED)
#: The objective's name in the studies.
OBJECTIVE = "val_loss"


def spec_digest(spec: ModelSpec) -> str:
    """A short digest of a model spec's definition: a changed spec gets a study of its own."""
    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:8]


def study_name(work_spec: WorkSpec | str, unit: WorkUnit | str, spec: ModelSpec) -> str:
    """The study of one model spec in one work unit of a work spec, kept across its executions."""
    work_spec = getattr(work_spec, "name", work_spec)
    unit = getattr(unit, "name", unit)
    return f"{work_spec}.{unit}.{spec.name}.{spec_digest(spec)}"


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
    """The trials of one model spec in one work unit for one execution: asks for their parameters and records
    their outcomes in the model spec's persistent study.

    Attributes:
        study: the Optuna study (``study.trials`` holds every execution's trials, with their states and user
            attributes ``execution``, ``replicate`` and ``mlflow_run_id``).
        execution: the execution's run id; only its trials count as done here.
        planned: how many trials this execution gives the spec (the grid's size times the replicates, or the
            search's budget).
    """

    work_unit: str
    spec: ModelSpec
    study: optuna.Study
    execution: str
    planned: int
    strategy: str
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    decode: dict[str, dict[Any, Any]] = field(default_factory=dict)
    running: dict[int, optuna.Trial] = field(default_factory=dict)
    pending: list[tuple[dict[str, Any], int]] = field(default_factory=list)

    @classmethod
    def open(cls, storage: str, name: str, work_unit: str, spec: ModelSpec, search: Search, seed: int, *,
             execution: str, replicates: int = 1, resume: bool = False) -> ModelStudy:
        """Opens (or creates) the study ``name`` and plans what this execution has left to run.

        Args:
            execution: the execution run's id: this execution's trials are marked with it.
            replicates: trials per grid point, with seeds ``seed + 0 .. replicates - 1``.
            resume: the execution ran before: its trials left RUNNING by a driver that died are failed, so
                their points run again.
        """
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study_seed = (seed * 1_000_003 + zlib.crc32(f"{work_unit}/{spec.name}/{execution}".encode())) % 2**31
        if search.strategy == "tpe":
            sampler = optuna.samplers.TPESampler(seed=study_seed, constant_liar=True,
                                                 n_startup_trials=max(1, min(10, (search.n_trials or 10) // 3)))
        else:
            sampler = optuna.samplers.RandomSampler(seed=study_seed)
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", sampler=sampler,
                                    pruner=make_pruner(search.pruner), load_if_exists=True)
        if not study.user_attrs.get("model_spec"):
            study.set_user_attr("model_spec", json.dumps(spec.to_dict(), sort_keys=True))
            with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and what names the objective
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([OBJECTIVE])
        planned = spec.grid_size * replicates if search.strategy == "grid" else search.n_trials
        if search.strategy == "grid" and search.n_trials:
            planned = min(planned, search.n_trials)
        self = cls(work_unit, spec, study, execution, planned, search.strategy)
        for name_, values in spec.grid.items():
            choices = [_encode(v) for v in values]
            self.distributions[name_] = CategoricalDistribution(choices)
            self.decode[name_] = dict(zip(choices, values, strict=True))
        self.distributions.update(spec.ranges)
        if resume:
            self._recover()
        if search.strategy == "grid":
            self._plan_grid(replicates)
        return self

    def _mine(self, states: tuple[TrialState, ...]) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self.study.get_trials(deepcopy=False, states=states)
                if t.user_attrs.get("execution") == self.execution]

    def _recover(self) -> None:
        """This execution's trials left running by a driver that died are failed, so their points run again."""
        for trial in self._mine((TrialState.RUNNING,)):
            self.study._storage.set_trial_user_attr(trial._trial_id, "killed", True)
            self.study.tell(trial.number, state=TrialState.FAIL)

    def _key(self, params: dict[str, Any], replicate: int) -> str:
        return json.dumps({**{k: v for k, v in params.items() if k in self.distributions},
                           "_replicate": replicate}, sort_keys=True)

    def _plan_grid(self, replicates: int) -> None:
        done = {self._key(t.params, t.user_attrs.get("replicate", 0)) for t in self._mine(DONE)}
        budget = self.planned - len(done)
        for replicate in range(replicates):
            for point in self.spec.grid_points():
                encoded = {k: _encode(v) for k, v in point.items() if k in self.distributions}
                key = self._key(encoded, replicate)
                if key not in done and budget > 0:
                    self.pending.append((encoded, replicate))
                    done.add(key)
                    budget -= 1

    @property
    def done(self) -> int:
        """This execution's trials that finished or were pruned."""
        return len(self._mine(DONE))

    @property
    def remaining(self) -> int:
        """Trials still to start."""
        if self.strategy == "grid":
            return len(self.pending)
        return max(0, self.planned - self.done - len(self.running))

    def ask(self) -> tuple[int, dict[str, Any], int]:
        """The next trial: its number, its concrete parameters (fixed values, grid point, sampled ranges) and its
        replicate (the trial's seed is the sweep's seed plus it)."""
        if self.strategy == "grid":
            encoded, replicate = self.pending.pop(0)
            template = optuna.trial.create_trial(
                state=TrialState.RUNNING, params=encoded,
                distributions={k: self.distributions[k] for k in encoded},
                user_attrs={"execution": self.execution, "replicate": replicate})
            trial = optuna.trial.Trial(self.study, self.study._storage.create_new_trial(self.study._study_id,
                                                                                         template))
        else:
            replicate = 0
            trial = self.study.ask(self.distributions)
            trial.set_user_attr("execution", self.execution)
            trial.set_user_attr("replicate", replicate)
        self.running[trial.number] = trial
        fixed = {k: v for k, v in self.spec.params.items() if k not in self.distributions}
        params = {name: self.decode[name][value] if name in self.decode else value
                  for name, value in trial.params.items()}
        return trial.number, {**fixed, **params}, replicate

    def history(self) -> list[list[float]]:
        """The per-epoch validation losses of this execution's finished trials, for the pruner."""
        return [[t.intermediate_values[s] for s in sorted(t.intermediate_values)]
                for t in self._mine(DONE) if t.intermediate_values]

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


def check_resumable(recorded: dict | None, spec: WorkSpec) -> None:
    """Before a resumed sweep opens anything: every model spec is as the execution recorded it when it started
    (``recorded``: the ``work_spec.json`` of its execution run; None for an execution recorded without one).

    Raises:
        ConfigError: a model spec changed since the sweep started.
    """
    if recorded is None:
        return
    before = {(unit["name"], model["name"]): json.dumps(model, sort_keys=True)
              for unit in recorded.get("work_units", []) for model in unit.get("model_specs", [])}
    for unit in spec.work_units:
        for model_spec in unit.model_specs:
            now = json.dumps(json.loads(json.dumps(model_spec.to_dict(), default=str)), sort_keys=True)
            was = before.get((unit.name, model_spec.name), now)
            if was != now:
                msg = (f"cannot resume {unit.name}/{model_spec.name}: its model spec changed since the sweep "
                       f"started (was {was}, now {now}); start a new sweep without --resume")
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
