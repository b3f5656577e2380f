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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from atlas.exceptions import ConfigError
from atlas.infra._model_spec import ModelSpec, fail
from atlas.runs import check_name

_SEARCHES = ("grid", "tpe", "random")
_PRUNERS = ("none", "median", "hyperband")


@dataclass(frozen=True)
class WorkUnit:
    """A feature-label set, its data options and the model specs trained on that data.

    Args:
        name: unique within its work spec.
        featureset: an ``atlas.data.FeatureLabelSet``.
        train: ``(start, end)`` of the training window. test: ``(start, end)`` of the test window, after it.
        model_specs: the models to train.
        classes: an ``atlas.data.dataset.ClassLabels`` for classifiers, or None for regressors; in a dict
            (``to_dict``) its own dict, ``{"method": "sign", "ties": "drop"}``.
        scaling, balance, window, embargo: as ``FeatureLabelSet.dataset``.
        validation: the fraction of the training samples, the latest ones, held out (after a purge of the
            label horizon) to watch each epoch: early stopping, pruning and the search's objective. The test
            window is never used to choose anything.
        allow_gaps: with a window, keep the windows whose buckets are not consecutive (a weekend, an outage);
            by default they are dropped (and counted in the work unit's ``data.*`` params). Serving follows the
            same rule, since the model's transforms record it.
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
    allow_gaps: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        from atlas.data.featureset import FeatureLabelSet

        check_name("WorkUnit", "name", self.name)
        where = f"WorkUnit {self.name!r}"
        object.__setattr__(self, "model_specs", tuple(self.model_specs))
        if not isinstance(self.featureset, FeatureLabelSet):
            fail(where, "featureset", f"must be a FeatureLabelSet, got {type(self.featureset).__name__}")
        for label, window in (("train", self.train), ("test", self.test)):
            if not isinstance(window, (tuple, list)) or len(window) != 2:
                fail(where, label, f"must be a (start, end) pair, got {window!r}")
        if not self.model_specs:
            fail(where, "model_specs", "is empty: give at least one ModelSpec")
        names = [m.name for m in self.model_specs]
        if len(set(names)) != len(names):
            fail(where, "model_specs", f"repeat a name: {sorted({n for n in names if names.count(n) > 1})}")
        if not isinstance(self.allow_gaps, bool):
            fail(where, "allow_gaps", f"must be True or False, got {self.allow_gaps!r}")
        if not isinstance(self.validation, (int, float)) or not 0 < self.validation < 0.9:
            fail(where, "validation", f"must be a fraction of the training samples in (0, 0.9), got "
                  f"{self.validation!r}")
        for spec in self.model_specs:
            if not isinstance(spec, ModelSpec):
                fail(where, "model_specs", f"must hold ModelSpec objects, got {type(spec).__name__}")
            cls = spec.model_class
            if cls.task == "classification" and self.classes is None:
                fail(where, "classes", f"is None but ModelSpec {spec.name!r} is a classifier ({spec.model}); "
                      "give classes=ClassLabels(...)")
            if cls.sequence and not self.window:
                fail(where, "window", f"is None but ModelSpec {spec.name!r} ({spec.model}) takes sequence "
                      "windows; give window=N")


    def to_dict(self) -> dict:
        return {"name": self.name, "featureset": self.featureset.to_dict(), "train": [str(t) for t in self.train],
                "test": [str(t) for t in self.test], "model_specs": [m.to_dict() for m in self.model_specs],
                "classes": None if self.classes is None else self.classes.to_dict(), "scaling": self.scaling,
                "balance": self.balance, "window": self.window, "embargo": self.embargo,
                "validation": self.validation, "allow_gaps": self.allow_gaps}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> WorkUnit:
        from atlas.data.dataset import ClassLabels
        from atlas.data.featureset import FeatureLabelSet

        values = dict(values)
        classes = values.pop("classes", None)
        where = f"WorkUnit {values.get('name')!r}"
        if classes is not None and not isinstance(classes, Mapping):
            fail(where, "classes", f"must be a dict such as {{'method': 'sign', 'ties': 'drop'}}, got {classes!r}")
        try:
            labels = None if classes is None else ClassLabels.from_dict(classes)
        except ConfigError as error:
            fail(where, "classes", str(error))
        return cls(**{**values, "featureset": FeatureLabelSet.from_dict(values["featureset"]),
                      "train": tuple(values["train"]), "test": tuple(values["test"]),
                      "model_specs": [ModelSpec.from_dict(m) for m in values["model_specs"]],
                      "classes": labels})


@dataclass(frozen=True)
class Search:
    """How trials are chosen: ``"grid"`` (every grid point once), ``"tpe"`` or ``"random"`` over ranges and grids,
    ``n_trials`` per model spec (grid: at most the grid's size), and a pruner on per-epoch validation loss."""

    strategy: str = "grid"
    n_trials: int | None = None
    pruner: str = "none"

    def __post_init__(self) -> None:
        if self.strategy not in _SEARCHES:
            fail("Search", "strategy", f"must be one of {_SEARCHES}, got {self.strategy!r}")
        if self.pruner not in _PRUNERS:
            fail("Search", "pruner", f"must be one of {_PRUNERS}, got {self.pruner!r}")
        if self.n_trials is not None and (not isinstance(self.n_trials, int) or self.n_trials < 1):
            fail("Search", "n_trials", f"must be a whole number >= 1 or None, got {self.n_trials!r}")
        if self.strategy != "grid" and self.n_trials is None:
            fail("Search", "n_trials", f"is required with strategy={self.strategy!r} (a trial budget)")

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "n_trials": self.n_trials, "pruner": self.pruner}


@dataclass(frozen=True)
class Resources:
    """What one trial gets: CPUs, a fraction of a GPU (0.25: four trials share one), and the GPU type.

    Trials on a shared GPU each grow their memory on demand (TensorFlow's memory growth, set in every worker), so
    four trials at 0.25 fit where each alone would have reserved the whole card.

    Attributes:
        cpu: CPUs per trial.
        gpu: GPUs per trial: a fraction in [0, 1], or a whole number.
        accelerator: the GPU type the trial must run on, as Ray names it (``"A100"``, ``"H100"``, ``"L4"``: a node
            started with ``--resources='{"accelerator_type:H100": 1}'`` or detected by Ray); None: any.
    """

    cpu: float = 1.0
    gpu: float = 0.0
    accelerator: str | None = None

    def __post_init__(self) -> None:
        if not self.cpu > 0:
            fail("Resources", "cpu", f"must be > 0, got {self.cpu!r}")
        if not 0 <= self.gpu <= 1 and not (self.gpu > 1 and float(self.gpu).is_integer()):
            fail("Resources", "gpu", f"must be a fraction in [0, 1] or a whole number of GPUs, got {self.gpu!r}")
        if self.accelerator is not None:
            if not isinstance(self.accelerator, str) or not self.accelerator.strip():
                fail("Resources", "accelerator", f"must be a GPU type such as 'A100', got {self.accelerator!r}")
            if not self.gpu:
                fail("Resources", "accelerator", f"asks for a {self.accelerator} GPU, but gpu is 0; give the GPUs a "
                     f"trial needs, e.g. Resources(gpu=0.5, accelerator={self.accelerator!r})")

    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "gpu": self.gpu, **({"accelerator": self.accelerator} if self.accelerator else {})}


@dataclass(frozen=True)
class Digest:
    """What the digest draws and assumes: baseball cards, trading costs and the market's calendar.

    Args:
        cards: a baseball card (``card.png``) for every trial (``"all"``, drawn by the worker that trained it),
            for the k trials with the lowest validation loss per model spec (a number, drawn at the end), or
            none (0).
        cost_bps: the cost of trading, in basis points per unit of turnover, netted from trading statistics.
        calendar: the market's trading year, for annualized Sharpe ratios: ``"crypto"`` (365 days of 24 hours,
            the default), ``"fx"`` (252 days of 24 hours), ``"equity"`` (252 days of 6.5 hours), or an
            ``atlas.stats.Calendar``.
        interval: the interval of accuracy over time (a pandas offset, one day by default).
    """

    cards: str | int = "all"
    cost_bps: float = 1.0
    calendar: Any = "crypto"
    interval: str = "1D"

    def __post_init__(self) -> None:
        from atlas.stats import Calendar

        if not (self.cards == "all" or (isinstance(self.cards, int) and not isinstance(self.cards, bool)
                                        and self.cards >= 0)):
            fail("Digest", "cards", f"must be 'all' or a number k (the top k by validation loss), got "
                 f"{self.cards!r}")
        if isinstance(self.cost_bps, bool) or not isinstance(self.cost_bps, (int, float)) or \
                not 0 <= self.cost_bps < 10_000:
            fail("Digest", "cost_bps", f"must be basis points per unit of turnover, 0 or more, got "
                 f"{self.cost_bps!r}")
        if isinstance(self.calendar, str):
            if self.calendar not in CALENDARS:
                fail("Digest", "calendar", f"must be one of {sorted(CALENDARS)} or an atlas.stats.Calendar, got "
                     f"{self.calendar!r}")
        elif not isinstance(self.calendar, Calendar):
            fail("Digest", "calendar", f"must be a calendar's name or an atlas.stats.Calendar, got "
                 f"{type(self.calendar).__name__}")
        try:
            import pandas as pd

            pd.Timedelta(self.interval)
        except (TypeError, ValueError):
            fail("Digest", "interval", f"must be a fixed pandas offset such as '1D' or '6h', got {self.interval!r}")

    @property
    def market_calendar(self):
        """The :class:`atlas.stats.Calendar` to annualize with."""
        from atlas.stats import Calendar

        if isinstance(self.calendar, Calendar):
            return self.calendar
        days, hours = CALENDARS[self.calendar]
        return Calendar(days_per_year=days, hours_per_day=hours)

    def to_dict(self) -> dict:
        calendar = self.calendar if isinstance(self.calendar, str) else {
            "days_per_year": self.calendar.days_per_year, "hours_per_day": self.calendar.hours_per_day}
        return {"cards": self.cards, "cost_bps": self.cost_bps, "calendar": calendar, "interval": self.interval}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Digest:
        from atlas.stats import Calendar

        values = dict(values)
        if isinstance(values.get("calendar"), Mapping):
            values["calendar"] = Calendar(**values["calendar"])
        return cls(**values)


#: Named calendars: days a year, hours a day.
CALENDARS = {"crypto": (365.0, 24.0), "fx": (252.0, 24.0), "equity": (252.0, 6.5)}


@dataclass(frozen=True)
class WorkSpec:
    """Work units, a search, per-trial resources, a concurrency limit and a seed.

    ``max_concurrent`` caps the trials running at once (None: as many as the cluster's resources allow);
    ``seed`` seeds the trials and the samplers: the points of a grid share their seed, and ``replicates`` trains
    each point ``k`` times with seeds ``seed + 0 .. k - 1`` (grid search), so a comparison across the grid is not
    confounded by seeds and the spread of a point is seen; ``log_models`` logs the pyfunc model of every trial
    (``"all"``) or of the k with the lowest validation loss per model spec (a number; 0: none); ``digest``
    says which baseball cards to draw, and the trading cost and calendar of the statistics.

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
    replicates: int = 1
    digest: Digest = field(default_factory=Digest)

    def __post_init__(self) -> None:
        check_name("WorkSpec", "name", self.name)
        where = f"WorkSpec {self.name!r}"
        object.__setattr__(self, "work_units", tuple(self.work_units))
        if not self.work_units:
            fail(where, "work_units", "is empty: give at least one WorkUnit")
        names = [u.name for u in self.work_units]
        if len(set(names)) != len(names):
            fail(where, "work_units", f"repeat a name: {sorted({n for n in names if names.count(n) > 1})}")
        if self.max_concurrent is not None and (not isinstance(self.max_concurrent, int)
                                                or self.max_concurrent < 1):
            fail(where, "max_concurrent", f"must be a whole number >= 1 or None, got {self.max_concurrent!r}")
        if not (self.log_models == "all" or (isinstance(self.log_models, int) and self.log_models >= 0)):
            fail(where, "log_models", f"must be 'all' or a number k (the top k by validation loss), got "
                  f"{self.log_models!r}")
        if isinstance(self.replicates, bool) or not isinstance(self.replicates, int) or self.replicates < 1:
            fail(where, "replicates", f"must be a whole number >= 1, got {self.replicates!r}")
        if self.replicates > 1 and self.search.strategy != "grid":
            fail(where, "replicates", f"is {self.replicates}, which needs Search('grid'): a sampled point is not "
                 "drawn twice; list the values to replicate as a grid")
        if not isinstance(self.digest, Digest):
            fail(where, "digest", f"must be a Digest(...), got {type(self.digest).__name__}")
        if self.search.strategy == "grid":
            ranged = [f"{u.name}/{m.name}" for u in self.work_units for m in u.model_specs if m.ranges]
            if ranged:
                fail(where, "search", f"is 'grid' but these model specs have ranges (Optuna distributions): "
                      f"{ranged}; use Search('tpe', n_trials=...) or give lists")

    def to_dict(self) -> dict:
        return {"name": self.name, "work_units": [u.to_dict() for u in self.work_units],
                "search": self.search.to_dict(), "resources": self.resources.to_dict(),
                "max_concurrent": self.max_concurrent, "seed": self.seed, "log_models": self.log_models,
                "replicates": self.replicates, "digest": self.digest.to_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> WorkSpec:
        return cls(**{**values, "work_units": [WorkUnit.from_dict(u) for u in values["work_units"]],
                      "search": Search(**values.get("search", {})),
                      "resources": Resources(**values.get("resources", {})),
                      "digest": Digest.from_dict(values.get("digest", {}))})

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
                count = spec.grid_size * self.replicates if self.search.strategy == "grid" else \
                    self.search.n_trials
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
