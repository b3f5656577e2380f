"""The one interface every model shares: built from parameters and the data's shape, fitted, saved, served."""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from atlas.exceptions import ConfigError, NotFittedError
from atlas.models._params import Param, describe_params, resolve_params

#: Called after every epoch with (epoch, {"loss": ..., "val_loss": ..., ...}); return True to stop training
#: (a pruner's verdict). Tracking (MLflow) and pruning (Optuna) plug in here. Epochs count from 0.
EpochCallback = Callable[[int, Mapping[str, float]], bool | None]

TASKS = ("classification", "regression")
STOP_REASONS = ("epochs", "early_stopping", "callback")


def _count(owner: str, name: str, value: Any, minimum: int, *, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        none = " or None" if optional else ""
        msg = f"{owner}.{name} must be a whole number of at least {minimum}{none}, got {name}={value!r}"
        raise ConfigError(msg)
    return int(value)


@dataclass(frozen=True)
class DataShape:
    """What a model is built for.

    Example:
        >>> DataShape(n_features=4, n_classes=2)
        DataShape(n_features=4, n_classes=2, window=None)
        >>> DataShape.from_dict(DataShape(3, window=60).to_dict())
        DataShape(n_features=3, n_classes=None, window=60)

    Attributes:
        n_features: inputs per row.
        n_classes: classes for a classifier (2 or more), None for a regressor.
        window: rows per input sequence for sequence models (LSTM, GRU, TCN, Transformer), None otherwise.

    Raises:
        ConfigError: a count that is not a whole number, or too small.
    """

    n_features: int
    n_classes: int | None = None
    window: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # a frozen dataclass sets its own fields through object
        set_(self, "n_features", _count("DataShape", "n_features", self.n_features, 1))
        set_(self, "n_classes", _count("DataShape", "n_classes", self.n_classes, 2, optional=True))
        set_(self, "window", _count("DataShape", "window", self.window, 1, optional=True))

    def to_dict(self) -> dict[str, int | None]:
        """Plain values, for ``model.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DataShape:
        """The shape :meth:`to_dict` wrote.

        Raises:
            ConfigError: a key that is not a field, or a bad count.
        """
        unknown = sorted(set(values) - {"n_features", "n_classes", "window"})
        if unknown:
            msg = f"DataShape has no field(s) {unknown}; the fields are n_features, n_classes, window"
            raise ConfigError(msg)
        return cls(**values)


@dataclass(frozen=True)
class FitOptions:
    """How to train.

    Example:
        >>> FitOptions(epochs=5, patience=None, seed=7, threads=1).batch_size
        256

    Attributes:
        epochs: the most epochs. batch_size: rows per step.
        patience: early stopping on the validation loss after this many epochs without improvement, restoring
            the best weights (None: off; it needs validation data).
        seed: makes a CPU run reproducible (same seed, same predictions).
        threads: TensorFlow intra- and inter-op threads (0: TensorFlow's choice); trials side by side use 1.
            They apply once per process, before TensorFlow's first operation (see ``atlas.models.configure``).
        verbose: Keras' progress output.

    Raises:
        ConfigError: a count that is not a whole number, or too small.
    """

    epochs: int = 20
    batch_size: int = 256
    patience: int | None = 3
    seed: int = 0
    threads: int = 0
    verbose: int = 0

    def __post_init__(self) -> None:
        for name, minimum, optional in (("epochs", 1, False), ("batch_size", 1, False), ("patience", 0, True),
                                        ("seed", 0, False), ("threads", 0, False), ("verbose", 0, False)):
            object.__setattr__(self, name, _count("FitOptions", name, getattr(self, name), minimum,
                                                  optional=optional))


@dataclass(frozen=True)
class History:
    """Per-epoch metrics, by name (``loss``, ``val_loss``, ``accuracy``, ...), and why training stopped.

    Example:
        >>> History({"loss": [0.7, 0.6]}, stopped="callback").epochs
        2

    Attributes:
        metrics: one value per epoch run, by metric name.
        stopped: ``"epochs"`` (all ran), ``"early_stopping"`` (the validation loss stopped improving) or
            ``"callback"`` (an :data:`EpochCallback` returned True).
        best_epoch: with early stopping, the epoch (from 0) whose weights the model kept; else None.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    stopped: str = "epochs"
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        return len(next(iter(self.metrics.values()), []))


class Model(ABC):
    """A model of the zoo: built from parameters and the data's shape, fitted, saved, served.

    Build one with ``atlas.models.make_model(kind, params, shape)``; ``Model.describe()`` lists a type's
    parameters. Subclasses set ``kind`` (the registry's name), ``task``, ``sequence`` and ``parameters``.

    Example:
        >>> from atlas.models import make_model
        >>> model = make_model("majority_classifier", {}, DataShape(n_features=2, n_classes=2))
        >>> _ = model.fit(np.zeros((3, 2), np.float32), np.array([1, 1, 0]))
        >>> model.predict(np.zeros((2, 2), np.float32)).tolist()
        [1, 1]

    Args:
        params: the model's parameters, checked against :attr:`parameters` (unknown names get "did you mean");
            the missing ones take their defaults, and :attr:`params` holds them all.
        shape: the data's shape.

    Raises:
        ConfigError: an unknown parameter or a bad value, or a shape the model type cannot take (a classifier
            needs ``n_classes``, a regressor none; a sequence model needs ``window``, a row model none).
    """

    kind: ClassVar[str]
    task: ClassVar[str]  # "classification" or "regression"
    #: True: takes windows (samples, window, n_features); False: rows (samples, n_features); None: either.
    sequence: ClassVar[bool | None] = False
    #: True for the baselines that every result is compared with.
    baseline: ClassVar[bool] = False
    #: One line on what the model is, for :meth:`describe`.
    summary: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Param]] = {}
    #: The default parameters, derived from :attr:`parameters`.
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = {name: param.default for name, param in cls.parameters.items()}

    def __init__(self, params: Mapping[str, Any], shape: DataShape) -> None:
        if not isinstance(shape, DataShape):
            msg = (f"{self.kind} needs a DataShape, got shape={shape!r}; "
                   f"e.g. DataShape(n_features=4, n_classes=2)")
            raise ConfigError(msg)
        self.params = resolve_params(self.kind, self.parameters, params)
        self.check_params(self.params)
        self.shape = shape
        self._check_shape()

    @classmethod  # noqa: B027 - a hook: most models check nothing more
    def check_params(cls, params: dict[str, Any]) -> None:
        """Checks that span several parameters (each value alone is already checked); raises ConfigError."""

    @classmethod
    def describe(cls) -> str:
        """The model type in words: its kind, task, inputs, and every parameter with its default.

        Example:
            >>> from atlas.models import MODELS
            >>> print(MODELS["persistence_classifier"].describe())  # doctest: +ELLIPSIS
            persistence_classifier: classification on rows or windows, a baseline: ...
              horizon = 1  ...
        """
        inputs = {True: "windows", False: "rows", None: "rows or windows"}[cls.sequence]
        base = ", a baseline" if cls.baseline else ""
        return f"{cls.kind}: {cls.task} on {inputs}{base}: {cls.summary}\n{describe_params(cls.parameters)}"

    @property
    def is_fitted(self) -> bool:
        """Whether the model was fitted (or loaded) and can predict."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, params={self.params}, shape={self.shape})"

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, *, validation: tuple[np.ndarray, np.ndarray] | None = None,
            sample_weight: np.ndarray | None = None, class_weight: Mapping[int, float] | None = None,
            options: FitOptions = FitOptions(), callbacks: Sequence[EpochCallback] = ()) -> History:
        """Trains on ``x`` (rows, or windows for sequence models) and ``y`` (class ids, or values).

        Args:
            x: the inputs, float32: (samples, n_features), or (samples, window, n_features) for sequences.
            y: one target per sample: class ids 0 .. n_classes - 1 (int), or values (float).
            validation: ``(x, y)`` to monitor (``val_loss``) and to stop early on.
            sample_weight: one weight per sample (a ``Dataset.sample_weight`` already holds class weights).
            class_weight: ``{class id: weight}``, multiplied into ``sample_weight``; missing classes weigh 1.
            options: epochs, batch size, patience, seed, threads.
            callbacks: called after every epoch; one returning True stops training.
        """

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class ids (int64) for a classifier, values (float32) for a regressor: one per sample."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 (samples, n_classes) (classifiers only)."""
        msg = f"{self.kind} is a {self.task} model: it has no class probabilities; use predict"
        raise TypeError(msg)

    @abstractmethod
    def predictor(self) -> Callable[[np.ndarray], np.ndarray]:
        """A fast path for one row (or one window), without Keras ``predict`` overhead: what serving calls.

        The callable takes one input (``(n_features,)``, or ``(window, n_features)``) and returns what
        ``predict_proba`` (classifiers) or ``predict`` (regressors) returns for it, as a 1-d array.
        """

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Writes everything needed to :meth:`load` the model into ``folder`` (created if missing)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> Model:
        """The model saved in ``folder``."""

    # checks shared by the implementations ------------------------------------------------------------------

    def _check_shape(self) -> None:
        shape = self.shape
        if self.task == "classification" and shape.n_classes is None:
            msg = (f"{self.kind} is a classifier: its DataShape needs n_classes (2 or more), got {shape}; "
                   f"e.g. DataShape(n_features={shape.n_features}, n_classes=2), or use a regressor")
            raise ConfigError(msg)
        if self.task == "regression" and shape.n_classes is not None:
            msg = (f"{self.kind} is a regressor: its DataShape takes n_classes=None, got {shape}; "
                   f"use a classifier, or drop n_classes")
            raise ConfigError(msg)
        if self.sequence and shape.window is None:
            msg = (f"{self.kind} reads sequence windows: its DataShape needs a window, got {shape}; "
                   f"build the data with window=<rows per window> (Dataset.windows) and pass it to DataShape")
            raise ConfigError(msg)
        if self.sequence is False and shape.window is not None:
            msg = (f"{self.kind} reads rows, not windows: its DataShape takes window=None, got {shape}; "
                   f"use a sequence model (lstm, gru, tcn, transformer), or data without a window")
            raise ConfigError(msg)

    def _check_x(self, x: Any) -> np.ndarray:
        """``x`` as a float32 array, after checking it against the shape."""
        x = np.asarray(x, dtype=np.float32)
        shape = self.shape
        expected = (shape.n_features,) if shape.window is None else (shape.window, shape.n_features)
        if x.ndim != len(expected) + 1 or x.shape[1:] != expected:
            what = "rows" if shape.window is None else "windows"
            dims = ", ".join(map(str, expected))
            msg = (f"{self.kind} takes {what} of shape (samples, {dims}), got an array of shape {x.shape}; "
                   + ("pass Dataset.inputs(part)" if shape.window else "pass Dataset.X_train / X_test"))
            raise ConfigError(msg)
        return x

    def _check_y(self, y: Any, samples: int, what: str = "y") -> np.ndarray:
        """``y`` as int64 class ids or float32 values, one per sample."""
        y = np.asarray(y)
        if y.shape != (samples,):
            msg = f"{self.kind}: {what} needs one target per sample, shape ({samples},), got shape {y.shape}"
            raise ConfigError(msg)
        if self.task == "regression":
            return y.astype(np.float32)
        n_classes = self.shape.n_classes
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= n_classes)):
            msg = (f"{self.kind}: {what} must hold class ids 0..{n_classes - 1} (whole numbers), got values "
                   f"from {y.min() if len(y) else None} to {y.max() if len(y) else None} ({y.dtype}); "
                   f"turn returns into classes with atlas.data.dataset.ClassLabels")
            raise ConfigError(msg)
        return y.astype(np.int64)

    def _weights(self, y: np.ndarray, sample_weight: Any, class_weight: Mapping[int, float] | None
                 ) -> np.ndarray | None:
        """One weight per sample: ``sample_weight`` times ``class_weight[y]``; None when neither is given."""
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float32)
            if weights.shape != y.shape or not np.all(np.isfinite(weights)) or np.any(weights < 0):
                msg = (f"{self.kind}: sample_weight needs one finite weight >= 0 per sample, "
                       f"shape {y.shape}, got shape {weights.shape}")
                raise ConfigError(msg)
        if class_weight:
            if self.task != "classification":
                msg = f"{self.kind} is a regressor: class_weight applies to classifiers; use sample_weight"
                raise ConfigError(msg)
            table = np.ones(self.shape.n_classes, dtype=np.float32)
            for key, value in class_weight.items():
                if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not \
                        0 <= key < len(table) or not isinstance(value, numbers.Real) or value < 0:
                    msg = (f"{self.kind}: class_weight maps class ids 0..{len(table) - 1} to weights >= 0, "
                           f"got {key!r}: {value!r}")
                    raise ConfigError(msg)
                table[int(key)] = value
            weights = table[y] if weights is None else weights * table[y]
        return weights

    def _require_fitted(self, what: str) -> None:
        if not self.is_fitted:
            msg = f"{self.kind} cannot {what} before it is fitted: call fit(x, y) first, or load a saved one"
            raise NotFittedError(msg)


__all__ = ["STOP_REASONS", "TASKS", "DataShape", "EpochCallback", "FitOptions", "History", "Model",
           "NotFittedError"]
