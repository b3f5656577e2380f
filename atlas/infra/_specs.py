"""ModelSpec, WorkUnit and WorkSpec: hundreds of models described at once, checked when they are made.

A ModelSpec names a model type and its parameters; each parameter is a value, a list (a grid: every value is
tried) or an Optuna distribution (a range for TPE or random search). A WorkUnit pairs a feature-label set and its
data options with model specs; a WorkSpec groups work units with a search strategy, a trial budget and the
resources of each trial.

Example:
    >>> from optuna.distributions import FloatDistribution
    >>> spec = ModelSpec("dnn", "dnn_classifier", {"hidden_units": [[32], [64, 32]], "dropout": [0.0, 0.2],
    ...                                              "learning_rate": FloatDistribution(1e-4, 1e-2, log=True)})
    >>> spec.grid_size, sorted(spec.ranges)
    (4, ['learning_rate'])
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from atlas.exceptions import ConfigError
from atlas.infra._names import check_name

_SEARCHES = ("grid", "tpe", "random")
_PRUNERS = ("none", "median", "hyperband")


def _distribution(value: Any) -> bool:
    from optuna.distributions import BaseDistribution

    return isinstance(value, BaseDistribution)


def _model_class(model: Any, where: str) -> type:
    from atlas.models import Model, model_class

    if isinstance(model, type):
        if not issubclass(model, Model) or not isinstance(getattr(model, "kind", None), str):
            _fail(where, "model", f"must be a model type's name or an atlas.models.Model subclass with a kind, "
                  f"got {model.__name__}")
        return model
    return model_class(model)


def _fail(where: str, field_name: str, problem: str) -> None:
    msg = f"{where}: {field_name} {problem}"
    raise ConfigError(msg)


def _check_fit(where: str, fit: Mapping[str, Any]) -> None:
    """The fit options, checked as every trial's FitOptions will check them, so a wrong one fails the spec, not
    every trial."""
    from atlas.models import FitOptions

    try:
        FitOptions(**fit)
    except ConfigError as error:
        msg = f"{where}: fit: {error}"
        raise ConfigError(msg) from None


@dataclass(frozen=True)
class ModelSpec:
    """A model type and its parameters: values, lists (grids) and Optuna distributions (ranges).

    Args:
        name: unique within its work unit; names the runs.
        model: a model type of :mod:`atlas.models` (``"dnn_classifier"``; a typo gets "did you mean"), or your
            own :class:`atlas.models.Model` subclass (its module must import on the workers, or be registered
            with ``cloudpickle.register_pickle_by_value``).
        params: parameter name -> a value, a list of values to grid over, or an Optuna distribution. A parameter
            whose value is itself a list (``hidden_units``) is gridded as a list of lists.
        fit: training options: ``epochs``, ``batch_size``, ``patience``.
    """

    name: str
    model: str | type
    params: Mapping[str, Any] = field(default_factory=dict)
    fit: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from atlas.models._params import resolve_params

        check_name("ModelSpec", "name", self.name)
        where = f"ModelSpec {self.name!r}"
        cls = _model_class(self.model, where)  # unknown type: did you mean, and the list
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "fit", dict(self.fit))
        # a parameter whose values are lists (hidden_units=[64, 32]) is gridded only by a list of lists
        listed = {name for name, param in getattr(cls, "parameters", {}).items()
                  if isinstance(param.default, list)}
        object.__setattr__(self, "_listed", frozenset(listed))
        for name, value in self.params.items():
            if isinstance(value, list) and not value:
                _fail(where, f"params[{name!r}]", "is an empty grid: give at least one value")
        for name, values in self.grid.items():
            keys = [json.dumps(v, sort_keys=True, default=str) for v in values]
            if len(set(keys)) != len(keys):
                _fail(where, f"params[{name!r}]", f"repeats a value in its grid {values}: each point would run "
                      "twice; list each value once")
        try:  # names, and every fixed value and grid value, checked as the model will check them
            for point in self.grid_points():
                example = {**point, **{k: self._example(k) for k in self.ranges}}
                cls.check_params(resolve_params(cls.kind, cls.parameters, example))
        except ConfigError as error:
            msg = f"{where}: {error}"
            raise ConfigError(msg) from None
        unknown = set(self.fit) - {"epochs", "batch_size", "patience"}
        if unknown:
            _fail(where, "fit", f"has unknown options {sorted(unknown)}; allowed: epochs, batch_size, patience")
        _check_fit(where, self.fit)

    @property
    def model_class(self) -> type:
        """The :class:`atlas.models.Model` class this spec trains."""
        return _model_class(self.model, f"ModelSpec {self.name!r}")

    @property
    def kind(self) -> str:
        """The model's kind: the zoo's name, or the custom class's ``kind``."""
        return self.model_class.kind

    def _is_grid(self, name: str) -> bool:
        value = self.params[name]
        if not isinstance(value, list):
            return False
        return name not in self._listed or (bool(value) and all(isinstance(v, list) for v in value))

    def _example(self, name: str) -> Any:
        value = self.params[name]
        if self._is_grid(name):
            return value[0]
        low = getattr(value, "low", None)
        return low if low is not None else value.choices[0]

    @property
    def grid(self) -> dict[str, list]:
        """The gridded parameters and their values."""
        return {k: v for k, v in self.params.items() if self._is_grid(k)}

    @property
    def ranges(self) -> dict[str, Any]:
        """The parameters searched over a range (Optuna distributions)."""
        return {k: v for k, v in self.params.items() if _distribution(v)}

    @property
    def grid_size(self) -> int:
        size = 1
        for values in self.grid.values():
            size *= len(values)
        return size

    def grid_points(self) -> Iterator[dict[str, Any]]:
        """Every combination of the gridded values, with the fixed parameters."""
        fixed = {k: v for k, v in self.params.items() if k not in self.grid and k not in self.ranges}
        names = list(self.grid)
        for combination in itertools.product(*(self.grid[n] for n in names)):
            yield {**fixed, **dict(zip(names, combination))}

    def to_dict(self) -> dict:
        from optuna.distributions import distribution_to_json

        params = {k: ({"distribution": json.loads(distribution_to_json(v))} if _distribution(v) else v)
                  for k, v in self.params.items()}
        model = self.model if isinstance(self.model, str) else f"{self.model.__module__}:{self.model.__qualname__}"
        return {"name": self.name, "model": model, "params": params, "fit": dict(self.fit)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelSpec:
        from optuna.distributions import json_to_distribution

        params = {k: (json_to_distribution(json.dumps(v["distribution"]))
                      if isinstance(v, dict) and "distribution" in v else v)
                  for k, v in values.get("params", {}).items()}
        model = values["model"]
        if ":" in model:  # a custom class, "module:qualname"
            import importlib

            module, _, qualname = model.partition(":")
            target = importlib.import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)
            model = target
        return cls(values["name"], model, params, values.get("fit", {}))


@dataclass(frozen=True)
class WorkUnit:
    """A feature-label set, its data options and the model specs trained on that data.

    Args:
        name: unique within its work spec.
        featureset: an ``atlas.data.FeatureLabelSet``.
        train: ``(start, end)`` of the training window. test: ``(start, end)`` of the test window, after it.
        model_specs: the models to train.
        classes: an ``atlas.data.dataset.ClassLabels`` for classifiers, or None for regressors.
        scaling, balance, window, embargo: as ``FeatureLabelSet.dataset``.
        validation: the fraction of the training samples, the latest ones, held out (after a purge of the
            label horizon) to watch each epoch: early stopping, pruning and the search's objective. The test
            window is never used to choose anything.
    """

    name: str
    featureset: Any
    train: tuple
    test: tuple
    model_specs: Sequence[ModelSpec]
    classes: Any = None
    scaling: str = "zscore"
    balance: str = "none"
    window: int | None = None
    embargo: int = 0
    validation: float = 0.2

    def __post_init__(self) -> None:
        from atlas.data.featureset import FeatureLabelSet

        check_name("WorkUnit", "name", self.name)
        where = f"WorkUnit {self.name!r}"
        object.__setattr__(self, "model_specs", tuple(self.model_specs))
        if not isinstance(self.featureset, FeatureLabelSet):
            _fail(where, "featureset", f"must be a FeatureLabelSet, got {type(self.featureset).__name__}")
        for label, window in (("train", self.train), ("test", self.test)):
            if not isinstance(window, (tuple, list)) or len(window) != 2:
                _fail(where, label, f"must be a (start, end) pair, got {window!r}")
        if not self.model_specs:
            _fail(where, "model_specs", "is empty: give at least one ModelSpec")
        names = [m.name for m in self.model_specs]
        if len(set(names)) != len(names):
            _fail(where, "model_specs", f"repeat a name: {sorted({n for n in names if names.count(n) > 1})}")
        if not isinstance(self.validation, (int, float)) or not 0 < self.validation < 0.9:
            _fail(where, "validation", f"must be a fraction of the training samples in (0, 0.9), got "
                  f"{self.validation!r}")
        for spec in self.model_specs:
            if not isinstance(spec, ModelSpec):
                _fail(where, "model_specs", f"must hold ModelSpec objects, got {type(spec).__name__}")
            cls = spec.model_class
            if cls.task == "classification" and self.classes is None:
                _fail(where, "classes", f"is None but ModelSpec {spec.name!r} is a classifier ({spec.model}); "
                      "give classes=ClassLabels(...)")
            if cls.sequence and not self.window:
                _fail(where, "window", f"is None but ModelSpec {spec.name!r} ({spec.model}) takes sequence "
                      "windows; give window=N")


    def to_dict(self) -> dict:
        return {"name": self.name, "featureset": self.featureset.to_dict(), "train": [str(t) for t in self.train],
                "test": [str(t) for t in self.test], "model_specs": [m.to_dict() for m in self.model_specs],
                "classes": None if self.classes is None else self.classes.to_dict(), "scaling": self.scaling,
                "balance": self.balance, "window": self.window, "embargo": self.embargo,
                "validation": self.validation}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> WorkUnit:
        from atlas.data.dataset import ClassLabels
        from atlas.data.featureset import FeatureLabelSet

        values = dict(values)
        classes = values.pop("classes", None)
        return cls(**{**values, "featureset": FeatureLabelSet.from_dict(values["featureset"]),
                      "train": tuple(values["train"]), "test": tuple(values["test"]),
                      "model_specs": [ModelSpec.from_dict(m) for m in values["model_specs"]],
                      "classes": None if classes is None else ClassLabels.from_dict(classes)})


@dataclass(frozen=True)
class Search:
    """How trials are chosen: ``"grid"`` (every grid point once), ``"tpe"`` or ``"random"`` over ranges and grids,
    ``n_trials`` per model spec (grid: at most the grid's size), and a pruner on per-epoch validation loss."""

    strategy: str = "grid"
    n_trials: int | None = None
    pruner: str = "none"

    def __post_init__(self) -> None:
        if self.strategy not in _SEARCHES:
            _fail("Search", "strategy", f"must be one of {_SEARCHES}, got {self.strategy!r}")
        if self.pruner not in _PRUNERS:
            _fail("Search", "pruner", f"must be one of {_PRUNERS}, got {self.pruner!r}")
        if self.n_trials is not None and (not isinstance(self.n_trials, int) or self.n_trials < 1):
            _fail("Search", "n_trials", f"must be a whole number >= 1 or None, got {self.n_trials!r}")
        if self.strategy != "grid" and self.n_trials is None:
            _fail("Search", "n_trials", f"is required with strategy={self.strategy!r} (a trial budget)")

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "n_trials": self.n_trials, "pruner": self.pruner}


@dataclass(frozen=True)
class Resources:
    """What one trial gets: CPUs and a fraction of a GPU (0.25: four trials share one)."""

    cpu: float = 1.0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        if not self.cpu > 0:
            _fail("Resources", "cpu", f"must be > 0, got {self.cpu!r}")
        if not 0 <= self.gpu <= 1 and not (self.gpu > 1 and float(self.gpu).is_integer()):
            _fail("Resources", "gpu", f"must be a fraction in [0, 1] or a whole number of GPUs, got {self.gpu!r}")

    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "gpu": self.gpu}


@dataclass(frozen=True)
class WorkSpec:
    """Work units, a search, per-trial resources, a concurrency limit and a seed.

    ``max_concurrent`` caps the trials running at once (None: as many as the cluster's resources allow);
    ``seed`` seeds every trial (its trial number added) and the samplers; ``log_models`` logs the pyfunc model
    of every trial (``"all"``) or of the k with the lowest validation loss per model spec (a number; 0: none).

    Example:
        >>> from atlas.data import FeatureLabelSet, LogReturns
        >>> fls = FeatureLabelSet([LogReturns().bitstamp()], [LogReturns().bitstamp().lookforward(1)])
        >>> unit = WorkUnit("next_minute", fls, ("2024-01-01", "2024-01-09"), ("2024-01-09 00:05", "2024-01-14"),
        ...                 [ModelSpec("linear", "linear_regressor", {"l2": [0.0, 0.001]})])
        >>> WorkSpec("example", [unit]).trials()
        [('next_minute', 'linear', 2)]
    """

    name: str
    work_units: Sequence[WorkUnit]
    search: Search = field(default_factory=Search)
    resources: Resources = field(default_factory=Resources)
    max_concurrent: int | None = None
    seed: int = 0
    log_models: str | int = "all"

    def __post_init__(self) -> None:
        check_name("WorkSpec", "name", self.name)
        where = f"WorkSpec {self.name!r}"
        object.__setattr__(self, "work_units", tuple(self.work_units))
        if not self.work_units:
            _fail(where, "work_units", "is empty: give at least one WorkUnit")
        names = [u.name for u in self.work_units]
        if len(set(names)) != len(names):
            _fail(where, "work_units", f"repeat a name: {sorted({n for n in names if names.count(n) > 1})}")
        if self.max_concurrent is not None and (not isinstance(self.max_concurrent, int)
                                                or self.max_concurrent < 1):
            _fail(where, "max_concurrent", f"must be a whole number >= 1 or None, got {self.max_concurrent!r}")
        if not (self.log_models == "all" or (isinstance(self.log_models, int) and self.log_models >= 0)):
            _fail(where, "log_models", f"must be 'all' or a number k (the top k by validation loss), got "
                  f"{self.log_models!r}")
        if self.search.strategy == "grid":
            ranged = [f"{u.name}/{m.name}" for u in self.work_units for m in u.model_specs if m.ranges]
            if ranged:
                _fail(where, "search", f"is 'grid' but these model specs have ranges (Optuna distributions): "
                      f"{ranged}; use Search('tpe', n_trials=...) or give lists")

    def to_dict(self) -> dict:
        return {"name": self.name, "work_units": [u.to_dict() for u in self.work_units],
                "search": self.search.to_dict(), "resources": self.resources.to_dict(),
                "max_concurrent": self.max_concurrent, "seed": self.seed, "log_models": self.log_models}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> WorkSpec:
        return cls(**{**values, "work_units": [WorkUnit.from_dict(u) for u in values["work_units"]],
                      "search": Search(**values.get("search", {})),
                      "resources": Resources(**values.get("resources", {}))})

    def unit(self, name: str) -> WorkUnit:
        """The work unit called ``name``."""
        for unit in self.work_units:
            if unit.name == name:
                return unit
        msg = f"WorkSpec {self.name!r} has no work unit {name!r}; it has {[u.name for u in self.work_units]}"
        raise ConfigError(msg)

    def trials(self) -> list[tuple[str, str, int]]:
        """(work unit, model spec, trials) for every model spec: the sweep's plan."""
        plan = []
        for unit in self.work_units:
            for spec in unit.model_specs:
                count = spec.grid_size if self.search.strategy == "grid" else self.search.n_trials
                if self.search.strategy == "grid" and self.search.n_trials:
                    count = min(count, self.search.n_trials)
                plan.append((unit.name, spec.name, count))
        return plan

    @property
    def n_trials(self) -> int:
        return sum(count for _, _, count in self.trials())


def ship_by_value(module) -> None:
    """Sends ``module``'s classes and functions to Ray workers (and into pickled models) by value, so a model
    class defined in an experiment file or a notebook needs no installed package on the workers."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    try:
        import ray.cloudpickle  # Ray pickles tasks with its own copy of cloudpickle
    except ImportError:
        return
    ray.cloudpickle.register_pickle_by_value(module)


def load_spec(path: str) -> WorkSpec:
    """Imports a Python file that defines ``SPEC`` (a WorkSpec); every error names the file.

    Raises:
        ConfigError: the file is missing, fails to import, lacks SPEC, or SPEC is not a WorkSpec.
    """
    import importlib.util
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        msg = (f"spec file {path} does not exist; spec files are Python modules defining SPEC, "
               "e.g. experiments/quickstart.py")
        raise ConfigError(msg)
    import sys

    name = f"atlas_spec_{file.stem}"
    module_spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # classes defined in the file (a custom Model) pickle by value to the workers
    try:
        module_spec.loader.exec_module(module)
    except ConfigError as error:
        msg = f"{path}: {error}"
        raise ConfigError(msg) from None
    except Exception as error:
        msg = f"{path} failed to import: {type(error).__name__}: {error}"
        raise ConfigError(msg) from error
    ship_by_value(module)
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, WorkSpec):
        found = type(spec).__name__ if spec is not None else "nothing"
        msg = f"{path} must define SPEC = WorkSpec(...), got {found}"
        raise ConfigError(msg)
    return spec
