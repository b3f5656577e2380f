"""Saving and logging a model of the zoo as an MLflow pyfunc model that serves without Ray, Optuna or matplotlib.

The logged model is MLflow's "models from code": its code is the small file ``_pyfunc_model.py`` (which names
:class:`atlas.models._pyfunc.AtlasPyfunc`), and its one artifact, ``atlas``, is the versioned
:class:`~atlas.models._artifact.ModelArtifact` folder: the model, its FeatureLabelSet, the fitted transforms and
the class names. Nothing is pickled and no copy of Atlas travels with it: the requirements name the installed
``gryphon-atlas`` and the serving distributions (NumPy, pandas, MLflow, the market store's libraries, plus
TensorFlow and Keras only when the model is not a dense network that runs in NumPy). A signature and an input
example of raw feature rows complete it::

    MLmodel, requirements.txt, python_env.yaml, conda.yaml, input_example.json, serving_input_example.json
    _pyfunc_model.py     the code MLflow runs to get the model (set_model(AtlasPyfunc()))
    artifacts/atlas/     the ModelArtifact folder: meta.json, featureset.json, transforms.json, model/, dense.npz
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from collections.abc import Mapping
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import ColSpec, Schema

import atlas
from atlas.data.dataset import Transforms
from atlas.data.featureset import FeatureLabelSet
from atlas.exceptions import ConfigError
from atlas.models._artifact import REQUEST_COLUMNS, ModelArtifact
from atlas.models._base import Model

#: Distributions a serving process needs beside Atlas itself and the ones a model adds (TensorFlow, Keras): what
#: atlas.data, the market store and the pyfunc import. Never Ray, Optuna or matplotlib.
SERVING_DISTRIBUTIONS = ("mlflow", "cloudpickle", "numpy", "pandas", "pyarrow", "SQLAlchemy", "psycopg[binary]",
                         "orjson")
#: The code file of a logged model ("models from code").
PYFUNC_MODEL_FILE = Path(__file__).with_name("_pyfunc_model.py")


def save_pyfunc(path: Path | str, model: Model, featureset: FeatureLabelSet, transforms: Transforms | dict, *,
                class_names=None, label: str | None = None, input_example: pd.DataFrame | None = None,
                models: Mapping[str, type] | None = None) -> None:
    """Saves ``model`` as an MLflow pyfunc model in the new folder ``path``.

    Example:
        >>> import tempfile
        >>> from atlas.data import FeatureLabelSet, LogReturns
        >>> from atlas.data.dataset import Scaler, Transforms
        >>> from atlas.models import DataShape, FitOptions, make_model
        >>> fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)],
        ...                       labels=[LogReturns().bitstamp().lookforward(1)])
        >>> raw = pd.DataFrame({fls.feature_names[0]: [-2e-4, 0.0, 3e-4]})
        >>> transforms = Transforms(Scaler("zscore").fit(raw))
        >>> model = make_model("logistic_classifier", {}, DataShape(n_features=1, n_classes=2))
        >>> _ = model.fit(np.array([[-1.0], [1.0]], np.float32), np.array([0, 1]), options=FitOptions(epochs=1))
        >>> folder = f"{tempfile.mkdtemp()}/model"
        >>> save_pyfunc(folder, model, fls, transforms)
        >>> served = mlflow.pyfunc.load_model(folder)
        >>> served.predict(raw).columns.tolist()
        ['class', 'p_down', 'p_up']
        >>> sorted(p.name for p in Path(folder).iterdir() if p.suffix in (".pkl", ".py") or p.is_dir())
        ['_pyfunc_model.py', 'artifacts']

    With market data: ``served.predict(pd.DataFrame({"start": [...], "end": [...], "store_url": [...]}))``.

    Args:
        path: a folder that does not exist yet (or is empty).
        model: a fitted model of the zoo.
        featureset: the set its data was built from.
        transforms: the fitted transforms of that data (``Dataset.transforms``).
        class_names: the classes' names, lowest class number first; by default the ones in ``transforms``.
        label: the label the model predicts (the set's first label by default).
        input_example: a few rows of raw feature values (extra columns are dropped); by default rows made from
            the fitted scaler (its centers, plus and minus its scales).
        models: kind -> Model class for classes outside the zoo: recorded as ``"module:QualName"`` in the
            artifact's ``meta.json`` and imported where the model loads (see :class:`ModelArtifact`).

    Raises:
        ConfigError: the transforms, the set and the model do not fit together (the message says which part).
    """
    with tempfile.TemporaryDirectory(prefix="atlas-pyfunc-") as staging:
        kwargs = _stage(Path(staging), model, featureset, transforms, class_names=class_names, label=label,
                        input_example=input_example, models=models)
        mlflow.pyfunc.save_model(path=str(path), **kwargs)


def log_pyfunc(model: Model, featureset: FeatureLabelSet, transforms: Transforms | dict, *, name: str = "model",
               class_names=None, label: str | None = None, input_example: pd.DataFrame | None = None,
               registered_model_name: str | None = None, models: Mapping[str, type] | None = None):
    """Logs ``model`` as an MLflow pyfunc model; inside an active run, the model is linked to that run.

    Example (with a model logged as in tests/models/test_pyfunc.py)::
            with mlflow.start_run():
                info = log_pyfunc(model, featureset, dataset.transforms, registered_model_name="btc_next_minute")
            mlflow.pyfunc.load_model(info.model_uri).predict(raw_features)

    Args:
        name: the model's name in the run (MLflow 3's ``name``, formerly ``artifact_path``).
        registered_model_name: also registers a new version of this registered model.
        The others: as :func:`save_pyfunc`.

    Returns:
        MLflow's ``ModelInfo`` (``model_uri``, ``model_id``, ``registered_model_version``, ...).
    """
    with tempfile.TemporaryDirectory(prefix="atlas-pyfunc-") as staging:
        kwargs = _stage(Path(staging), model, featureset, transforms, class_names=class_names, label=label,
                        input_example=input_example, models=models)
        return mlflow.pyfunc.log_model(name=name, registered_model_name=registered_model_name, **kwargs)


def write_artifacts(folder: Path, model: Model, featureset: FeatureLabelSet, transforms: Transforms | dict, *,
                    class_names=None, label: str | None = None, models: Mapping[str, type] | None = None) -> dict:
    """Writes the ``atlas`` artifact folder (``ModelArtifact(...).save(folder)``); returns its ``meta.json``."""
    artifact = ModelArtifact(model, featureset, transforms, class_names=class_names, label=label, models=models)
    artifact.save(folder)
    return artifact.meta


def serving_requirements(*, tensorflow: bool) -> list[str]:
    """The pip requirements of a serving process, pinned to the versions installed here: Atlas itself
    (``gryphon-atlas``, the version that saves the model) first."""
    wanted = list(SERVING_DISTRIBUTIONS)
    if tensorflow:
        flavour = next((d for d in ("tensorflow", "tensorflow-cpu") if _version(d)), "tensorflow")
        wanted += [flavour, "keras"]
    own = f"gryphon-atlas=={_version('gryphon-atlas') or atlas.__version__}"
    return [own, *(f"{name}=={_version(name)}" if _version(name) else name for name in wanted)]


def _version(requirement: str) -> str | None:
    try:
        return importlib.metadata.version(requirement.split("[")[0])
    except importlib.metadata.PackageNotFoundError:
        return None


def _stage(staging: Path, model, featureset, transforms, *, class_names, label, input_example, models) -> dict:
    """Writes the artifact folder; returns the pyfunc save/log arguments (the model from code)."""
    artifact = ModelArtifact(model, featureset, transforms, class_names=class_names, label=label, models=models)
    folder = artifact.save(staging / "atlas")
    example = _input_example(artifact, input_example)
    inferred = infer_signature(example, artifact.predict_frame(example))
    inputs = [ColSpec("double", name, required=False) for name in artifact.feature_names]
    inputs += [ColSpec("string", name, required=False) for name in REQUEST_COLUMNS]
    return {"python_model": str(PYFUNC_MODEL_FILE), "artifacts": {"atlas": str(folder)},
            "signature": ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs),
            "input_example": example,
            "pip_requirements": serving_requirements(tensorflow=artifact.meta["needs_tensorflow"])}


def _input_example(artifact: ModelArtifact, given: pd.DataFrame | None) -> pd.DataFrame:
    names = artifact.feature_names
    if given is not None:
        if not isinstance(given, pd.DataFrame) or [n for n in names if n not in given.columns]:
            msg = f"input_example must be a DataFrame of raw feature values with the columns {names}"
            raise ConfigError(msg)
        return given[names].astype(np.float64).reset_index(drop=True)
    rows = (artifact.window or 1) + 2
    scaler = artifact.transforms.scaler
    steps = np.linspace(-1.0, 1.0, rows)[:, None]
    return pd.DataFrame(np.asarray(scaler.center) + steps * np.asarray(scaler.scale), columns=names)


__all__ = ["PYFUNC_MODEL_FILE", "SERVING_DISTRIBUTIONS", "log_pyfunc", "save_pyfunc", "serving_requirements", "write_artifacts"]
