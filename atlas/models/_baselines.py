"""Baselines that every result is compared with: the majority class, no change, persistence of the last label.

They implement the :class:`~atlas.models.Model` interface (rows or windows alike: they read only how many
samples there are), so a trial runs one exactly as it runs a network; they save as ``model.json`` alone.
Sample and class weights are ignored: a baseline is what a model must beat, so it stays the plain rule.

* ``majority_classifier``: the most frequent training class; its probabilities are the training class
  frequencies.
* ``no_change_regressor``: a return of 0 (Atlas labels are returns: no change in price).
* ``persistence_classifier`` / ``persistence_regressor``: the label of ``horizon`` rows before. A label
  ``lookforward(h)`` at row ``t`` is realized at ``t + h``, so at ``t`` the newest realized label is that of
  row ``t - h``: no leak. Use :meth:`~PersistenceRegressor.predict_from_labels` with the realized labels of
  the rows being predicted; :meth:`predict` (no labels to hand) repeats the newest training label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from atlas.exceptions import ConfigError
from atlas.models._base import DataShape, EpochCallback, FitOptions, History, Model
from atlas.models._manifest import read_manifest, write_manifest
from atlas.models._params import Param, count_param


class _Baseline(Model):
    sequence: ClassVar[bool | None] = None
    baseline: ClassVar[bool] = True

    def __init__(self, params: Mapping[str, Any], shape: DataShape) -> None:
        super().__init__(params, shape)
        self._state: dict[str, Any] | None = None

    @property
    def is_fitted(self) -> bool:
        return self._state is not None

    def learn(self, y: np.ndarray) -> dict[str, Any]:
        """The baseline's state (plain JSON values) from the training targets."""
        return {}

    def fit(self, x: np.ndarray, y: np.ndarray, *, validation: tuple[np.ndarray, np.ndarray] | None = None,
            sample_weight: np.ndarray | None = None, class_weight: Mapping[int, float] | None = None,
            options: FitOptions = FitOptions(),  # noqa: B008 (frozen)
            callbacks: Sequence[EpochCallback] = ()) -> History:
        """Learns the rule from ``y`` (weights, options and callbacks have no effect); reports one "epoch".

        The history holds ``accuracy`` (classifiers) or ``loss`` (the mean squared error, regressors) on the
        training data, and ``val_accuracy`` / ``val_loss`` on ``validation`` when given.
        """
        x = self._check_x(x)
        y = self._check_y(y, len(x))
        if not len(y):
            msg = f"{self.kind}: no training samples; widen the training window"
            raise ConfigError(msg)
        self._state = self.learn(y)
        metrics = {}
        for prefix, part in (("", (x, y)), ("val_", validation)):
            if part is not None and len(part[0]):
                part_x = self._check_x(part[0])
                metrics.update(self._score(prefix, self.predict(part_x), self._check_y(part[1], len(part_x))))
        for callback in callbacks:
            callback(0, dict(metrics))
        return History(metrics={name: [value] for name, value in metrics.items()})

    def _score(self, prefix: str, predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if self.task == "classification":
            return {f"{prefix}accuracy": float(np.mean(predicted == y))} if len(y) else {}
        return {f"{prefix}loss": float(np.mean((predicted - y) ** 2))} if len(y) else {}

    def _rows(self, x: np.ndarray) -> int:
        self._require_fitted("predict")
        return len(self._check_x(x))

    def predictor(self) -> Callable[[np.ndarray], np.ndarray]:
        self._require_fitted("predict")

        def predict_one(x: np.ndarray) -> np.ndarray:
            batch = np.asarray(x, dtype=np.float32)[None]
            return self.predict_proba(batch)[0] if self.task == "classification" else self.predict(batch)

        return predict_one

    def save(self, folder: Path) -> None:
        """Writes ``model.json``: kind, params, shape and the learned state."""
        self._require_fitted("save")
        write_manifest(folder, self, state=self._state)

    @classmethod
    def load(cls, folder: Path) -> Model:
        manifest = read_manifest(folder, expected=cls.kind)
        model = cls(manifest["params"], DataShape.from_dict(manifest["shape"]))
        model._state = dict(manifest["state"])
        return model


class MajorityClassifier(_Baseline):
    """Predicts the most frequent training class (the lowest id on a tie); probabilities are its frequencies.

    Example:
        >>> model = MajorityClassifier({}, DataShape(n_features=2, n_classes=3))
        >>> _ = model.fit(np.zeros((4, 2)), np.array([2, 0, 2, 1]))
        >>> model.predict(np.zeros((2, 2))).tolist(), model.predict_proba(np.zeros((1, 2))).tolist()
        ([2, 2], [[0.25, 0.25, 0.5]])
    """

    kind = "majority_classifier"
    task = "classification"
    summary = "the most frequent training class; probabilities are the training class frequencies"

    def learn(self, y: np.ndarray) -> dict[str, Any]:
        counts = np.bincount(y, minlength=self.shape.n_classes)
        return {"frequencies": (counts / max(1, counts.sum())).tolist()}

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        frequencies = np.asarray(self._state["frequencies"] if self.is_fitted else [], dtype=np.float32)
        return np.tile(frequencies, (self._rows(x), 1))

    def predict(self, x: np.ndarray) -> np.ndarray:
        rows = self._rows(x)
        return np.full(rows, int(np.argmax(self._state["frequencies"])), dtype=np.int64)


class NoChangeRegressor(_Baseline):
    """Predicts a return of 0: no change in price.

    Example:
        >>> model = NoChangeRegressor({}, DataShape(n_features=2))
        >>> _ = model.fit(np.zeros((3, 2)), np.array([0.1, -0.2, 0.3]))
        >>> model.predict(np.ones((2, 2))).tolist()
        [0.0, 0.0]
    """

    kind = "no_change_regressor"
    task = "regression"
    summary = "a return of 0 (no change in price)"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(self._rows(x), dtype=np.float32)


class _Persistence(_Baseline):
    parameters: ClassVar[dict[str, Param]] = {
        "horizon": count_param(1, "rows until a label is realized: the label's lookforward, in rows"),
    }

    def learn(self, y: np.ndarray) -> dict[str, Any]:
        tail = y[-self.params["horizon"]:]
        return {"tail": [int(v) if self.task == "classification" else float(v) for v in tail]}

    def _tail(self) -> np.ndarray:
        self._require_fitted("predict")
        dtype = np.int64 if self.task == "classification" else np.float32
        return np.asarray(self._state["tail"], dtype=dtype)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The newest training label for every sample (no realized labels to hand: predict_from_labels)."""
        rows, tail = self._rows(x), self._tail()
        return np.full(rows, tail[-1], dtype=tail.dtype)

    def predict_from_labels(self, y: np.ndarray) -> np.ndarray:
        """Persistence along a series: for row ``k``, the label of row ``k - horizon``.

        Args:
            y: the labels of consecutive rows being predicted, in time order (they are realized later: row
                ``k``'s label is known from row ``k + horizon`` on, when it is used).

        Returns:
            One prediction per row; the first ``horizon`` rows take the last ``horizon`` training labels.
        """
        tail, horizon = self._tail(), self.params["horizon"]
        y = self._check_y(y, len(np.asarray(y)))
        if len(tail) < horizon:  # fitted on fewer rows than the horizon: the oldest label stands in
            tail = np.concatenate([np.full(horizon - len(tail), tail[0], dtype=tail.dtype), tail])
        return np.concatenate([tail, y])[:len(y)]


class PersistenceRegressor(_Persistence):
    """Predicts the label of ``horizon`` rows before (the newest realized one).

    Example:
        >>> model = PersistenceRegressor({"horizon": 1}, DataShape(n_features=1))
        >>> _ = model.fit(np.zeros((3, 1)), np.array([0.1, -0.2, 0.3]))
        >>> model.predict_from_labels(np.array([0.5, -0.5, 0.25])).tolist()
        [0.30000001192092896, 0.5, -0.5]
    """

    kind = "persistence_regressor"
    task = "regression"
    summary = "the label of horizon rows before, the newest realized one (predict_from_labels)"


class PersistenceClassifier(_Persistence):
    """Predicts the class of ``horizon`` rows before: with ``ClassLabels("sign")``, the last sign persists.

    Example:
        >>> model = PersistenceClassifier({}, DataShape(n_features=1, n_classes=2))
        >>> _ = model.fit(np.zeros((3, 1)), np.array([0, 1, 1]))
        >>> model.predict_from_labels(np.array([0, 0, 1])).tolist(), model.predict(np.zeros((2, 1))).tolist()
        ([1, 0, 0], [1, 1])
    """

    kind = "persistence_classifier"
    task = "classification"
    summary = "the class of horizon rows before, the newest realized one (predict_from_labels)"

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability 1 on the class :meth:`predict` gives."""
        return self._one_hot(self.predict(x))

    def predict_proba_from_labels(self, y: np.ndarray) -> np.ndarray:
        """Probability 1 on the class :meth:`predict_from_labels` gives."""
        return self._one_hot(self.predict_from_labels(y))

    def _one_hot(self, classes: np.ndarray) -> np.ndarray:
        return np.eye(self.shape.n_classes, dtype=np.float32)[classes]


__all__ = ["MajorityClassifier", "NoChangeRegressor", "PersistenceClassifier", "PersistenceRegressor"]
