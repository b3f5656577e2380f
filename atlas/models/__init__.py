"""The model zoo: Keras 3 models on TensorFlow, and the baselines every result is compared with.

One registry names every model type (:data:`MODELS`); :func:`make_model` builds one from a kind and its
parameters, checked with "did you mean". Importing this package does not import TensorFlow or Keras: a model
imports them when it is built, trained or loaded.

Example:
    >>> import numpy as np
    >>> from atlas.models import DataShape, FitOptions, make_model
    >>> model = make_model("dnn_classifier", {"hidden_units": [16]}, DataShape(n_features=3, n_classes=2))
    >>> x, y = np.random.default_rng(0).normal(size=(32, 3)).astype("float32"), np.arange(32) % 2
    >>> model.fit(x, y, options=FitOptions(epochs=1, seed=1)).epochs
    1
    >>> model.predict(x[:4]).shape
    (4,)
"""

from atlas.models._base import (
    STOP_REASONS,
    TASKS,
    DataShape,
    EpochCallback,
    FitOptions,
    History,
    Model,
    NotFittedError,
)
from atlas.models._baselines import (
    MajorityClassifier,
    NoChangeRegressor,
    PersistenceClassifier,
    PersistenceRegressor,
)
from atlas.models._dense import DnnClassifier, DnnRegressor, LinearRegressor, LogisticClassifier
from atlas.models._keras import KerasModel
from atlas.models._params import Param
from atlas.models._recurrent import GruClassifier, GruRegressor, LstmClassifier, LstmRegressor
from atlas.models._registry import (
    BASELINES,
    MODELS,
    describe,
    load_model,
    make_model,
    model_class,
    model_types,
)
from atlas.models._runtime import RuntimeReport, configure
from atlas.models._tcn import TcnClassifier, TcnRegressor
from atlas.models._transformer import TransformerClassifier, TransformerRegressor

__all__ = [
    "BASELINES",
    "MODELS",
    "STOP_REASONS",
    "TASKS",
    "DataShape",
    "DnnClassifier",
    "DnnRegressor",
    "EpochCallback",
    "FitOptions",
    "GruClassifier",
    "GruRegressor",
    "History",
    "KerasModel",
    "LinearRegressor",
    "LogisticClassifier",
    "LstmClassifier",
    "LstmRegressor",
    "MajorityClassifier",
    "Model",
    "NoChangeRegressor",
    "NotFittedError",
    "Param",
    "PersistenceClassifier",
    "PersistenceRegressor",
    "RuntimeReport",
    "TcnClassifier",
    "TcnRegressor",
    "TransformerClassifier",
    "TransformerRegressor",
    "configure",
    "describe",
    "load_model",
    "make_model",
    "model_class",
    "model_types",
]
