"""The one interface every model shares: built from parameters and the data's shape, fitted, saved, served."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

#: Called after every epoch with (epoch, {"loss": ..., "val_loss": ..., ...}); return True to stop training
#: (a pruner's verdict). Tracking (MLflow) and pruning (Optuna) plug in here.
EpochCallback = Callable[[int, Mapping[str, float]], bool | None]


@dataclass(frozen=True)
class DataShape:
    """What a model is built for.

    Attributes:
        n_features: inputs per row.
        n_classes: classes for a classifier, None for a regressor.
        window: rows per input sequence for sequence models (LSTM, GRU, TCN, Transformer), None otherwise.
    """

    n_features: int
    n_classes: int | None = None
    window: int | None = None


@dataclass(frozen=True)
class FitOptions:
    """How to train.

    Attributes:
        epochs: the most epochs. batch_size: rows per step.
        patience: early stopping on the validation loss, restoring the best weights (None: off).
        seed: makes a CPU run reproducible (same seed, same predictions).
        threads: TensorFlow intra- and inter-op threads (0: TensorFlow's choice); trials side by side use 1.
        verbose: Keras' progress output.
    """

    epochs: int = 20
    batch_size: int = 256
    patience: int | None = 3
    seed: int = 0
    threads: int = 0
    verbose: int = 0


@dataclass(frozen=True)
class History:
    """Per-epoch metrics, by name (``loss``, ``val_loss``, ``accuracy``, ...), and why training stopped."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    stopped: str = "epochs"  # "epochs", "early_stopping" or "callback"

    @property
    def epochs(self) -> int:
        return len(next(iter(self.metrics.values()), []))


class Model(ABC):
    """A model of the zoo. Subclasses set ``kind`` (the registry's name), ``task`` and ``sequence``.

    Args:
        params: the model's parameters, checked against :attr:`defaults` (unknown names get "did you mean").
        shape: the data's shape.
    """

    kind: ClassVar[str]
    task: ClassVar[str]  # "classification" or "regression"
    sequence: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: Mapping[str, Any], shape: DataShape) -> None:
        self.params = dict(params)
        self.shape = shape

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, *, validation: tuple[np.ndarray, np.ndarray] | None = None,
            sample_weight: np.ndarray | None = None, options: FitOptions = FitOptions(),
            callbacks: Sequence[EpochCallback] = ()) -> History:
        """Trains on ``x`` (rows, or windows for sequence models) and ``y`` (class ids, or values)."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class ids for a classifier, values for a regressor."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, one column per class (classifiers only)."""
        msg = f"{self.kind} is a {self.task} model: it has no class probabilities; use predict"
        raise TypeError(msg)

    @abstractmethod
    def predictor(self) -> Callable[[np.ndarray], np.ndarray]:
        """A fast path for one row (or one window): no Keras ``predict`` overhead; what serving calls per tick.

        The callable takes one input (``(n_features,)``, or ``(window, n_features)``) and returns what
        ``predict_proba`` (classifiers) or ``predict`` (regressors) returns for it, as a 1-d array.
        """

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Writes everything needed to :meth:`load` the model into ``folder``."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> Model:
        """The model saved in ``folder``."""
