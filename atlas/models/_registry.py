"""The one registry of model types: a kind ("dnn_classifier") names a class; its parameters are checked.

Example:
    >>> from atlas.models import DataShape
    >>> model_types(task="regression", sequence=False)
    ['linear_regressor', 'dnn_regressor', 'no_change_regressor', 'persistence_regressor']
    >>> model = make_model("dnn_classifier", {"hidden_units": [8]}, DataShape(n_features=2, n_classes=2))
    >>> model.params["hidden_units"], model.params["dropout"]
    ([8], 0.0)
    >>> make_model("dnn_clasifier", {}, DataShape(n_features=2, n_classes=2))
    Traceback (most recent call last):
    ...
    atlas.exceptions.ConfigError: unknown model type 'dnn_clasifier'; did you mean 'dnn_classifier'...
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from atlas.exceptions import ConfigError
from atlas.models._base import TASKS, DataShape, Model
from atlas.models._baselines import (
    MajorityClassifier,
    NoChangeRegressor,
    PersistenceClassifier,
    PersistenceRegressor,
)
from atlas.models._dense import DnnClassifier, DnnRegressor, LinearRegressor, LogisticClassifier
from atlas.models._manifest import read_manifest
from atlas.models._params import did_you_mean
from atlas.models._recurrent import GruClassifier, GruRegressor, LstmClassifier, LstmRegressor
from atlas.models._tcn import TcnClassifier, TcnRegressor
from atlas.models._transformer import TransformerClassifier, TransformerRegressor

#: Every model type by its kind, read-only.
MODELS: Mapping[str, type[Model]] = MappingProxyType({cls.kind: cls for cls in (
    LinearRegressor, LogisticClassifier, DnnRegressor, DnnClassifier,
    LstmRegressor, LstmClassifier, GruRegressor, GruClassifier,
    TcnRegressor, TcnClassifier, TransformerRegressor, TransformerClassifier,
    MajorityClassifier, NoChangeRegressor, PersistenceClassifier, PersistenceRegressor,
)})

#: The baseline a result of each task is compared with by default.
BASELINES: Mapping[str, str] = MappingProxyType({"classification": "majority_classifier",
                                                 "regression": "no_change_regressor"})


def model_types(*, task: str | None = None, sequence: bool | None = None,
                baseline: bool | None = None) -> list[str]:
    """The registered kinds, in registry order, optionally only those of one task, input or role.

    Args:
        task: ``"classification"`` or ``"regression"``.
        sequence: True: the kinds that take windows (baselines take both); False: those that take rows.
        baseline: True: only the baselines; False: only the trainable models.
    """
    if task is not None and task not in TASKS:
        msg = f"task must be one of {TASKS}, got task={task!r}{did_you_mean(task, TASKS)}"
        raise ConfigError(msg)
    return [kind for kind, cls in MODELS.items()
            if (task is None or cls.task == task) and (baseline is None or cls.baseline == baseline)
            and (sequence is None or cls.sequence is None or cls.sequence == sequence)]


def model_class(kind: str) -> type[Model]:
    """The class registered as ``kind``; ``model_class(kind).describe()`` lists its parameters.

    Raises:
        ConfigError: an unknown kind, with "did you mean" and every valid kind.
    """
    if not isinstance(kind, str) or kind not in MODELS:
        msg = (f"unknown model type {kind!r}{did_you_mean(kind, MODELS)} "
               f"The model types are: {', '.join(MODELS)}")
        raise ConfigError(msg)
    return MODELS[kind]


def make_model(kind: str, params: Mapping[str, Any], shape: DataShape) -> Model:
    """A new, unfitted model of type ``kind`` with ``params`` (over its defaults), built for ``shape``.

    Raises:
        ConfigError: an unknown kind or parameter (with "did you mean" and the valid ones), a bad value, or a
            shape the kind cannot take (a classifier without ``n_classes``, a sequence model without a
            ``window``).
    """
    return model_class(kind)(params, shape)


def load_model(folder: Path) -> Model:
    """The model saved in ``folder``, of whatever kind its ``model.json`` names.

    Raises:
        ConfigError: the folder holds no saved model, or one of a kind this Atlas does not know.
    """
    return model_class(read_manifest(Path(folder))["kind"]).load(Path(folder))


def describe(kind: str | None = None) -> str:
    """Every model type's description and parameters (or ``kind``'s alone), for people and ``--help``."""
    kinds = list(MODELS) if kind is None else [kind]
    return "\n\n".join(model_class(k).describe() for k in kinds)


__all__ = ["BASELINES", "MODELS", "describe", "load_model", "make_model", "model_class", "model_types"]
