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
from atlas.models._fast import Predictor, compile_predictor
from atlas.models._keras import KerasModel
from atlas.models._numpy_network import DenseNetwork
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
    "ARTIFACT_FORMAT",
    "AtlasPyfunc",
    "DataShape",
    "DenseNetwork",
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
    "ModelArtifact",
    "MajorityClassifier",
    "Model",
    "NoChangeRegressor",
    "NotFittedError",
    "Param",
    "PersistenceClassifier",
    "PersistenceRegressor",
    "Predictor",
    "RuntimeReport",
    "TcnClassifier",
    "TcnRegressor",
    "TransformerClassifier",
    "TransformerRegressor",
    "compile_predictor",
    "configure",
    "describe",
    "load_artifact",
    "load_model",
    "log_pyfunc",
    "make_model",
    "model_class",
    "model_types",
    "save_pyfunc",
]


_LAZY = {"AtlasPyfunc": "atlas.models._pyfunc", "save_pyfunc": "atlas.models._packaging",
         "log_pyfunc": "atlas.models._packaging", "ModelArtifact": "atlas.models._artifact",
         "ARTIFACT_FORMAT": "atlas.models._artifact", "load_artifact": "atlas.models._fetch"}


def __getattr__(name: str):
    """The artifact and MLflow packaging load on first use: importing atlas.models stays free of mlflow,
    TensorFlow and the feature set machinery."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'atlas.models' has no attribute {name!r}")
