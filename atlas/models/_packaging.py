"""Saving and logging a model of the zoo as an MLflow pyfunc model that serves without Ray, Optuna or matplotlib.

The pyfunc (:class:`atlas.models._pyfunc.AtlasPyfunc`) carries the model, its FeatureLabelSet, the fitted
transforms and the class names in one ``atlas`` artifact folder, a signature, an input example of raw feature
rows, the ``atlas`` package itself (``code_paths``: a fresh environment imports the Atlas the model was saved
with, installed or not) and its serving requirements: NumPy, pandas, MLflow and the market store's libraries,
plus TensorFlow and Keras only when the model is not a dense network that runs in NumPy.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import ColSpec, Schema

import atlas
from atlas.data.dataset import default_class_names
from atlas.data.featureset import FeatureLabelSet
from atlas.exceptions import ConfigError
from atlas.models._base import Model
from atlas.models._manifest import read_manifest
from atlas.models._pyfunc import REQUEST_COLUMNS, AtlasPyfunc

#: Distributions a serving process needs beside the ones a model adds (TensorFlow, Keras): what atlas.data,
#: the market store and the pyfunc import. Never Ray, Optuna or matplotlib.
SERVING_DISTRIBUTIONS = ("mlflow", "cloudpickle", "numpy", "pandas", "pyarrow", "SQLAlchemy", "psycopg[binary]",
                         "orjson")


def save_pyfunc(path: Path | str, model: Model, featureset: FeatureLabelSet, transforms: dict, *,
                class_names=None, label: str | None = None, input_example: pd.DataFrame | None = None,
                models: Mapping[str, type] | None = None) -> None:
    """Saves ``model`` as an MLflow pyfunc model in the new folder ``path``.

    Example:
        >>> import tempfile
        >>> from atlas.data import FeatureLabelSet, LogReturns
        >>> from atlas.data.dataset import Scaler
        >>> from atlas.models import DataShape, FitOptions, make_model
        >>> fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)],
        ...                       labels=[LogReturns().bitstamp().lookforward(1)])
        >>> raw = pd.DataFrame({fls.feature_names[0]: [-2e-4, 0.0, 3e-4]})
        >>> transforms = {"scaler": Scaler("zscore").fit(raw).to_dict(), "labels": None, "window": None}
        >>> model = make_model("logistic_classifier", {}, DataShape(n_features=1, n_classes=2))
        >>> _ = model.fit(np.array([[-1.0], [1.0]], np.float32), np.array([0, 1]), options=FitOptions(epochs=1))
        >>> folder = f"{tempfile.mkdtemp()}/model"
        >>> save_pyfunc(folder, model, fls, transforms)
        >>> served = mlflow.pyfunc.load_model(folder)
        >>> served.predict(raw).columns.tolist()
        ['class', 'p_down', 'p_up']

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
        models: kind -> Model class for classes outside the zoo, pickled with the pyfunc (see ``AtlasPyfunc``).

    Raises:
        ConfigError: the transforms, the set and the model do not fit together (the message says which part).
    """
    with tempfile.TemporaryDirectory(prefix="atlas-pyfunc-") as staging:
        kwargs = _stage(Path(staging), model, featureset, transforms, class_names=class_names, label=label,
                        input_example=input_example, models=models)
        mlflow.pyfunc.save_model(path=str(path), **kwargs)


def log_pyfunc(model: Model, featureset: FeatureLabelSet, transforms: dict, *, name: str = "model",
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


def write_artifacts(folder: Path, model: Model, featureset: FeatureLabelSet, transforms: dict, *,
                    class_names=None, label: str | None = None) -> dict:
    """Writes the ``atlas`` artifact folder that :class:`AtlasPyfunc` reads; returns its ``meta.json``."""
    if not isinstance(model, Model):
        msg = f"model must be a model of the zoo (atlas.models.Model), got {type(model).__name__}"
        raise ConfigError(msg)
    if not isinstance(featureset, FeatureLabelSet):
        msg = f"featureset must be a FeatureLabelSet, got {type(featureset).__name__}"
        raise ConfigError(msg)
    names = featureset.feature_names
    scaler = transforms.get("scaler") if isinstance(transforms, dict) else None
    if not isinstance(scaler, dict) or list(scaler.get("columns", ())) != names:
        fitted = None if not isinstance(scaler, dict) else list(scaler.get("columns", ()))
        msg = (f"the transforms must be fitted on the set's features, in order: {names}; they were fitted on "
               f"{fitted}; pass the Dataset.transforms of data built from this set")
        raise ConfigError(msg)
    window = transforms.get("window")
    if model.shape.n_features != len(names) or model.shape.window != window:
        msg = (f"the model was built for {model.shape.n_features} features and window={model.shape.window}, the "
               f"data has {len(names)} features and window={window}: build the model from the data's shape")
        raise ConfigError(msg)
    label = label or featureset.label_names[0]
    if label not in featureset.label_names:
        msg = f"label {label!r} is not a label of the set; its labels are {featureset.label_names}"
        raise ConfigError(msg)
    class_names = _class_names(model, transforms, class_names)

    model_folder = folder / "model"
    model_folder.mkdir(parents=True)
    model.save(model_folder)
    read_manifest(model_folder, expected=model.kind)  # what load_model reads back
    predictor = model.predictor()
    network = getattr(predictor, "network", None)
    if network is not None:
        network.save(folder / "dense.npz")
    meta = {"kind": model.kind, "task": model.task, "class_names": class_names, "feature_names": names,
            "label": label, "window": window, "bucket": str(featureset.bucket), "featureset": featureset.name,
            "fast_path": getattr(predictor, "path", "model"),
            "needs_tensorflow": network is None and not model.baseline,
            "atlas_version": atlas.__version__}
    (folder / "featureset.json").write_text(json.dumps(featureset.to_dict(), indent=1))
    (folder / "transforms.json").write_text(json.dumps(transforms, indent=1))
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def serving_requirements(*, tensorflow: bool) -> list[str]:
    """The pip requirements of a serving process, pinned to the versions installed here."""
    wanted = list(SERVING_DISTRIBUTIONS)
    if tensorflow:
        flavour = next((d for d in ("tensorflow", "tensorflow-cpu") if _version(d)), "tensorflow")
        wanted += [flavour, "keras"]
    return [f"{name}=={_version(name)}" if _version(name) else name for name in wanted]


def _version(requirement: str) -> str | None:
    try:
        return importlib.metadata.version(requirement.split("[")[0])
    except importlib.metadata.PackageNotFoundError:
        return None


def _class_names(model: Model, transforms: dict, given) -> list[str] | None:
    if model.task != "classification":
        if given is not None:
            msg = f"class_names are for classifiers; {model.kind} is a {model.task} model"
            raise ConfigError(msg)
        return None
    labels = transforms.get("labels") or {}
    names = given if given is not None else labels.get("class_names")
    n_classes = model.shape.n_classes
    names = list(default_class_names(n_classes) if names is None else (str(n) for n in names))
    if len(names) != n_classes or len(set(names)) != n_classes:
        msg = f"a {n_classes}-class model needs {n_classes} distinct class names, got class_names={names}"
        raise ConfigError(msg)
    return names


def _stage(staging: Path, model, featureset, transforms, *, class_names, label, input_example, models) -> dict:
    """Writes the artifact folder and a copy of the atlas package; returns the pyfunc save/log arguments."""
    folder = staging / "atlas_model"
    meta = write_artifacts(folder, model, featureset, transforms, class_names=class_names, label=label)
    example = _input_example(meta, transforms, input_example)
    pyfunc = AtlasPyfunc(models).load(folder)
    output = pyfunc.predict_frame(example)
    inferred = infer_signature(example, output)
    inputs = [ColSpec("double", name, required=False) for name in meta["feature_names"]]
    inputs += [ColSpec("string", name, required=False) for name in REQUEST_COLUMNS]
    code = staging / "code" / "atlas"
    shutil.copytree(Path(atlas.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return {"python_model": AtlasPyfunc(models), "artifacts": {"atlas": str(folder)},
            "signature": ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs),
            "input_example": example, "code_paths": [str(code)],
            "pip_requirements": serving_requirements(tensorflow=meta["needs_tensorflow"])}


def _input_example(meta: dict, transforms: dict, given: pd.DataFrame | None) -> pd.DataFrame:
    names = meta["feature_names"]
    if given is not None:
        if not isinstance(given, pd.DataFrame) or [n for n in names if n not in given.columns]:
            msg = f"input_example must be a DataFrame of raw feature values with the columns {names}"
            raise ConfigError(msg)
        return given[names].astype(np.float64).reset_index(drop=True)
    rows = (meta["window"] or 1) + 2
    center = np.asarray(transforms["scaler"]["center"], dtype=np.float64)
    scale = np.asarray(transforms["scaler"]["scale"], dtype=np.float64)
    steps = np.linspace(-1.0, 1.0, rows)[:, None]
    return pd.DataFrame(center + steps * scale, columns=names)


__all__ = ["SERVING_DISTRIBUTIONS", "log_pyfunc", "save_pyfunc", "serving_requirements", "write_artifacts"]
