"""ModelSpec: a model type and its parameters, each a value, a list (a grid) or an Optuna distribution (a range).

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from atlas.exceptions import ConfigError
from atlas.runs import check_name


def _distribution(value: Any) -> bool:
    from optuna.distributions import BaseDistribution

    return isinstance(value, BaseDistribution)


def _model_class(model: Any, where: str) -> type:
    from atlas.models import Model, model_class

    if isinstance(model, type):
        if not issubclass(model, Model) or not isinstance(getattr(model, "kind", None), str):
            fail(where, "model", f"must be a model type's name or an atlas.models.Model subclass with a kind, "
                  f"got {model.__name__}")
        return model
    return model_class(model)


def fail(where: str, field_name: str, problem: str) -> None:
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
                fail(where, f"params[{name!r}]", "is an empty grid: give at least one value")
        for name, values in self.grid.items():
            keys = [json.dumps(v, sort_keys=True, default=str) for v in values]
            if len(set(keys)) != len(keys):
                fail(where, f"params[{name!r}]", f"repeats a value in its grid {values}: each point would run "
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
            fail(where, "fit", f"has unknown options {sorted(unknown)}; allowed: epochs, batch_size, patience")
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
