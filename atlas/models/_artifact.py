"""The model artifact: a fitted model with its FeatureLabelSet, fitted transforms and class names, versioned.

A :class:`ModelArtifact` is what training hands to serving. It saves to a folder, and MLflow's pyfunc
(:class:`atlas.models._pyfunc.AtlasPyfunc`) only adapts it; a model runner loads it with :func:`load_artifact`
without going through MLflow's pyfunc at all. The folder::

    meta.json         format (ARTIFACT_FORMAT), kind, model class (outside the zoo), task, class names,
                      feature names, label, window, bucket, Atlas's version
    featureset.json   FeatureLabelSet.to_dict()
    transforms.json   Transforms.to_dict(): the scaler fitted on the training rows, the class cut points, the window
    model/            Model.save(folder): model.json ({"kind": ...}) and the weights; Model.load restores it
    dense.npz         the NumPy steps of a dense network (DenseNetwork.save), when the model is one

Nothing in it is a pickle: loading reads JSON, NumPy arrays (``allow_pickle=False``) and Keras files. With
``dense.npz`` the model serves without TensorFlow: only NumPy, pandas and ``atlas.data`` are imported. Every input
is scaled by ``Transforms.inputs``, the path the training data went through.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import atlas
from atlas.data.buckets import parse_width
from atlas.data.dataset import Transforms, sequence_windows, window_gaps
from atlas.data.featureset import FeatureLabelSet
from atlas.data.timestamps import utc_timestamp
from atlas.exceptions import ConfigError
from atlas.models._artifact_checks import (
    ARTIFACT_FORMAT,
    META_FILE,
    _class_names,
    _class_path,
    _model_class,
    _read_meta,
    _transforms,
)
from atlas.models._base import Model
from atlas.models._fast import Predictor
from atlas.models._manifest import read_manifest
from atlas.models._numpy_network import DenseNetwork

#: The columns of a market request to the pyfunc: one row per range.
REQUEST_COLUMNS = ("store_url", "start", "end")


class ModelArtifact:
    """A fitted model with everything serving needs: its FeatureLabelSet, fitted transforms and class names.

    Example:
        >>> import tempfile
        >>> from atlas.data import FeatureLabelSet, LogReturns
        >>> from atlas.data.dataset import Scaler, Transforms
        >>> from atlas.models import DataShape, FitOptions, make_model
        >>> fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)],
        ...                       labels=[LogReturns().bitstamp().lookforward(1)])
        >>> raw = pd.DataFrame({fls.feature_names[0]: [-2e-4, 0.0, 3e-4]})
        >>> model = make_model("logistic_classifier", {}, DataShape(n_features=1, n_classes=2))
        >>> _ = model.fit(np.array([[-1.0], [1.0]], np.float32), np.array([0, 1]), options=FitOptions(epochs=1))
        >>> artifact = ModelArtifact(model, fls, Transforms(Scaler("zscore").fit(raw)))
        >>> folder = artifact.save(f"{tempfile.mkdtemp()}/atlas")
        >>> loaded = ModelArtifact.load(folder)
        >>> loaded.predict_frame(raw).equals(artifact.predict_frame(raw)), loaded.class_names
        (True, ('down', 'up'))
        >>> loaded.predict_one(raw.iloc[-1].to_numpy()).shape  # the tick path: probabilities
        (2,)

    Args:
        model: a fitted model of the zoo (or of a class given in ``models``).
        featureset: the set its data was built from.
        transforms: the fitted transforms of that data (``Dataset.transforms``, or their dict form).
        class_names: the classes' names, lowest class number first; by default the ones in ``transforms``.
        label: the label the model predicts (the set's first label by default).
        models: kind -> Model class for a model class outside the zoo: recorded as ``"module:QualName"`` and
            imported when the artifact loads, so its module must import there.

    Raises:
        ConfigError: the transforms, the set and the model do not fit together (the message says which part),
            or a model class outside the zoo that is not in ``models``.
    """

    def __init__(self, model: Model, featureset: FeatureLabelSet, transforms: Transforms | dict, *,
                 class_names=None, label: str | None = None, models: Mapping[str, type] | None = None) -> None:
        if not isinstance(model, Model):
            msg = f"model must be a model of the zoo (atlas.models.Model), got {type(model).__name__}"
            raise ConfigError(msg)
        if not isinstance(featureset, FeatureLabelSet):
            msg = f"featureset must be a FeatureLabelSet, got {type(featureset).__name__}"
            raise ConfigError(msg)
        names = list(featureset.feature_names)
        transforms = _transforms(transforms, names)
        if model.shape.n_features != len(names) or model.shape.window != transforms.window:
            msg = (f"the model was built for {model.shape.n_features} features and window={model.shape.window}, "
                   f"the data has {len(names)} features and window={transforms.window}: build the model from the "
                   f"data's shape")
            raise ConfigError(msg)
        label = label or featureset.label_names[0]
        if label not in featureset.label_names:
            msg = f"label {label!r} is not a label of the set; its labels are {featureset.label_names}"
            raise ConfigError(msg)
        predictor = model.predictor()
        network = getattr(predictor, "network", None)
        meta = {"format": ARTIFACT_FORMAT, "kind": model.kind, "model_class": _class_path(model, models, network),
                "task": model.task, "class_names": _class_names(model, transforms, class_names),
                "feature_names": names, "label": label, "window": transforms.window,
                "bucket": str(featureset.bucket), "featureset": featureset.name,
                "fast_path": getattr(predictor, "path", "model"),
                "needs_tensorflow": network is None and not model.baseline, "atlas_version": atlas.__version__}
        self._assemble(meta, featureset, transforms, model=model, network=network, predictor=predictor)

    def _assemble(self, meta: dict, featureset: FeatureLabelSet, transforms: Transforms, *, model: Model | None,
                  network: DenseNetwork | None, predictor, source: Path | None = None) -> None:
        self._meta, self._featureset, self._transforms = meta, featureset, transforms
        self.model, self.network, self.predictor, self._source = model, network, predictor, source

    # saving and loading -----------------------------------------------------------------------------------------

    def save(self, folder: Path | str) -> Path:
        """Writes the artifact into ``folder`` (new, or empty); returns it.

        Raises:
            ConfigError: ``folder`` exists and is not empty.
        """
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            msg = f"{folder} exists and is not empty; save a model artifact into a new folder"
            raise ConfigError(msg)
        folder.mkdir(parents=True, exist_ok=True)
        if self.model is not None:
            self.model.save(folder / "model")
            read_manifest(folder / "model", expected=self.kind)  # what load reads back
        elif self._source is not None and (self._source / "model").is_dir():  # loaded as NumPy steps only
            shutil.copytree(self._source / "model", folder / "model")
        if self.network is not None:
            self.network.save(folder / "dense.npz")
        (folder / "featureset.json").write_text(json.dumps(self._featureset.to_dict(), indent=1))
        (folder / "transforms.json").write_text(json.dumps(self._transforms.to_dict(), indent=1))
        (folder / META_FILE).write_text(json.dumps(self._meta, indent=1))
        return folder

    write = save

    @classmethod
    def load(cls, folder: Path | str, *, models: Mapping[str, type] | None = None) -> ModelArtifact:
        """The artifact saved in ``folder``; nothing is unpickled.

        A dense network loads as its NumPy steps (no TensorFlow, no model class); any other model loads through
        its class: the zoo's for its kind, the one its ``meta.json`` names (``"module:QualName"``, imported), or
        ``models[kind]``.

        Raises:
            ConfigError: the folder is not an Atlas model artifact, has a newer format than this Atlas reads, or
                names a model class that does not import.
        """
        folder = Path(folder)
        meta = _read_meta(folder)
        try:
            featureset = FeatureLabelSet.from_dict(json.loads((folder / "featureset.json").read_text()))
            transforms = Transforms.from_dict(json.loads((folder / "transforms.json").read_text()))
        except (OSError, ValueError) as error:
            msg = f"{folder} is not a complete Atlas model artifact ({error}); save the model again"
            raise ConfigError(msg) from None
        if list(transforms.feature_names) != list(meta["feature_names"]):
            msg = (f"{folder}: transforms.json was fitted on {list(transforms.feature_names)}, not the features "
                   f"{meta['feature_names']}")
            raise ConfigError(msg)
        proba = meta["task"] == "classification"
        model = network = None
        if (folder / "dense.npz").exists():  # NumPy only: no model class, no TensorFlow
            network = DenseNetwork.load(folder / "dense.npz")
            predictor = Predictor.from_network(network, proba=proba)
        else:
            model = _model_class(folder, meta, models or {}).load(folder / "model")
            predictor = model.predictor()
        artifact = cls.__new__(cls)
        artifact._assemble(meta, featureset, transforms, model=model, network=network, predictor=predictor,
                           source=folder)
        return artifact

    # what it is -------------------------------------------------------------------------------------------------

    @property
    def meta(self) -> dict[str, Any]:
        """A copy of ``meta.json``."""
        return json.loads(json.dumps(self._meta))

    @property
    def kind(self) -> str:
        return self._meta["kind"]

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self._meta["task"]

    @property
    def feature_names(self) -> list[str]:
        """The raw feature columns the model reads, in input order."""
        return list(self._meta["feature_names"])

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The classes' names, lowest class number first; None for a regressor."""
        names = self._meta["class_names"]
        return None if names is None else tuple(names)

    @property
    def label(self) -> str:
        return self._meta["label"]

    @property
    def window(self) -> int | None:
        """Rows per input window, or None for a model of single rows."""
        return self._meta["window"]

    @property
    def bucket(self) -> str:
        return self._meta["bucket"]

    @property
    def featureset(self) -> FeatureLabelSet:
        return self._featureset

    @property
    def transforms(self) -> Transforms:
        return self._transforms

    def __repr__(self) -> str:
        return (f"ModelArtifact(kind={self.kind!r}, task={self.task!r}, features={len(self.feature_names)}, "
                f"window={self.window}, classes={self.class_names})")

    # predicting -------------------------------------------------------------------------------------------------

    def predict_one(self, values: np.ndarray) -> np.ndarray:
        """The tick path: one row of raw feature values (or, windowed, the last ``window`` rows) -> a 1-d array.

        ``values`` hold the features in :attr:`feature_names` order, unscaled, as an array ``(features,)`` or
        ``(window, features)``; they are scaled by ``Transforms.inputs`` and go through the fast predictor:
        probabilities in :attr:`class_names` order, or the predicted value. Tens of microseconds for a dense
        network, against milliseconds for a one-row frame through pandas and MLflow.

        Raises:
            ConfigError: ``values`` do not have the predictor's shape.
        """
        return self.predictor(self._transforms.inputs(values))

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions from raw feature values, rows in time order.

        Rows with a missing feature value are dropped first, as when the training data was made; a windowed
        model predicts for each row that ends a window of the rows kept. Extra columns are ignored.

        Windows across gaps follow the rule the model was trained under (``transforms.allow_gaps``). By default
        (False) a window whose rows are not consecutive buckets (a missing bucket, or a row dropped for a missing
        value) gets no prediction: its row is left out of the result, as the training data left such windows
        out, and counted. With ``allow_gaps=True`` it is predicted as if the buckets were consecutive. On a
        DatetimeIndex a gap is a step longer than the model's bucket; on another index, a row dropped between
        two rows. The result's ``attrs`` hold the counts: ``windows_across_gaps`` (rows whose window spans a
        gap) and ``windows_dropped`` (those without a prediction); both 0 for a model of single rows.

        Returns:
            A frame indexed like the rows that got a prediction: ``class`` (the class name) and ``p_<class>``
            per class for a classifier, ``prediction`` for a regressor.

        Raises:
            ConfigError: a feature column is missing, a windowed model has fewer complete rows than its window, or
                a windowed model's rows are not in time order.
        """
        out, across = self._predict(frame)
        return self._counted(out, across)

    def _predict(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
        """The predictions, and the rows whose window spans a gap."""
        if not isinstance(frame, pd.DataFrame):
            msg = f"predict_frame takes a DataFrame of raw feature values, got {type(frame).__name__}"
            raise ConfigError(msg)
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            msg = (f"the input lacks {len(missing)} of the model's {len(self.feature_names)} feature columns: "
                   f"{missing}; send raw values of every feature {self.feature_names}, or a market request "
                   f"(columns {list(REQUEST_COLUMNS)})")
            raise ConfigError(msg)
        rows = self._transforms.inputs(frame)
        complete = np.isfinite(rows).all(axis=1)
        rows, index = rows[complete], frame.index[complete]
        across = index[:0]
        if self.window is not None:
            if len(rows) < self.window:
                msg = (f"a window of {self.window} rows needs at least {self.window} rows with every feature, "
                       f"got {len(rows)} (of {len(frame)}); send more history")
                raise ConfigError(msg)
            stamps = index if isinstance(index, pd.DatetimeIndex) else np.flatnonzero(complete)
            gaps = window_gaps(stamps, self.window, bucket=self.bucket)
            index = index[self.window - 1:]
            across = index[gaps]
            keep = None if self._transforms.allow_gaps else ~gaps
            rows = sequence_windows(rows, self.window, keep=keep)
            index = index if keep is None else index[keep]
        return self._frame(self._outputs(rows), index), across

    def _counted(self, out: pd.DataFrame, across: pd.Index) -> pd.DataFrame:
        out.attrs["windows_across_gaps"] = len(across)
        out.attrs["windows_dropped"] = 0 if self._transforms.allow_gaps else len(across)
        return out

    def predict_market(self, start, end, *, store) -> pd.DataFrame:
        """Predictions for every bucket ``start <= t <= end``, features built from ``store`` (a MarketStore).

        A windowed model reads ``window - 1`` buckets before ``start`` as the first window's history; a bucket
        whose window spans a gap is predicted or not as :meth:`predict_frame` says, and counted in ``attrs``.
        """
        first = utc_timestamp(start, what="start")
        history = ((self.window or 1) - 1) * parse_width(self._featureset.bucket)
        frame = self._featureset.features_frame(first - history, end, store=store)
        out, across = self._predict(frame)
        return self._counted(out.loc[out.index >= first], across[across >= first])

    def _outputs(self, inputs: np.ndarray) -> np.ndarray:
        """(inputs, outputs): probabilities for a classifier, values for a regressor, as float64.

        Every input goes through the tick path, one at a time: a batch prediction is then the served prediction,
        bit for bit (one matrix product over many rows and one over a single row may round differently in the
        last bit). A dense network takes tens of microseconds an input, a traced graph a few hundred.
        """
        proba = self.task == "classification"
        if not len(inputs):
            return np.zeros((0, len(self.class_names) if proba else 1))
        return np.stack([np.asarray(self.predictor(x), dtype=np.float64).reshape(-1) for x in inputs])

    def _frame(self, outputs: np.ndarray, index: pd.Index) -> pd.DataFrame:
        if self.task != "classification":
            names = ["prediction"] if outputs.shape[1] == 1 else [f"prediction_{k}" for k in range(outputs.shape[1])]
            return pd.DataFrame(outputs, index=index, columns=names)
        names = self.class_names
        frame = pd.DataFrame(outputs, index=index, columns=[f"p_{name}" for name in names])
        chosen = [names[k] for k in outputs.argmax(axis=1)] if len(outputs) else []
        frame.insert(0, "class", pd.Series(chosen, index=index, dtype=str))  # pandas' string dtype
        return frame


__all__ = ["ARTIFACT_FORMAT", "META_FILE", "REQUEST_COLUMNS", "ModelArtifact"]
