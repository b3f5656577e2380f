"""The MLflow pyfunc model: a model of the zoo with its FeatureLabelSet, fitted transforms and class names.

:class:`AtlasPyfunc` predicts from raw feature values, or from market data, building its own features. It reads
the folder that :func:`atlas.models._packaging.save_pyfunc` writes (an MLflow artifact)::

    model/            Model.save(folder): model.json ({"kind": ...}) and the weights; Model.load restores it
    dense.npz         the NumPy steps of a dense network (DenseNetwork.save), when the model is one
    featureset.json   FeatureLabelSet.to_dict()
    transforms.json   Dataset.transforms: the scaler fitted on the training rows, the class cut points, the window
    meta.json         task, class names, feature names, label, window, bucket, Atlas's version

With ``dense.npz`` the model serves without TensorFlow: only NumPy, pandas, MLflow and ``atlas.data`` are
imported. Otherwise the model class is looked up by its kind (the zoo's registry, or the ``models`` given) and
serves through its
``predictor()`` (one input at a time) or its ``predict_proba`` / ``predict`` (many inputs at once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from atlas.config import Settings
from atlas.data.buckets import parse_width
from atlas.data.dataset import apply_transforms, sequence_windows
from atlas.data.featureset import FeatureLabelSet
from atlas.data.store import MarketStore
from atlas.data.timestamps import utc_timestamp
from atlas.exceptions import ConfigError
from atlas.models._fast import Predictor
from atlas.models._manifest import read_manifest
from atlas.models._numpy_network import DenseNetwork
from atlas.models._registry import MODELS

#: The columns of a market request: one row per range; ``store_url`` may be left out (``ATLAS_STORE_URL``).
REQUEST_COLUMNS = ("store_url", "start", "end")
#: Below this many inputs, the fast predictor per input beats one Keras ``predict`` call (tens of milliseconds).
BATCH_FROM = 64


def _load_model(folder: Path, models: Mapping[str, type]):
    """The model that ``Model.save(folder)`` wrote: its class is ``models[kind]``, or the zoo's for that kind."""
    kind = read_manifest(folder)["kind"]
    if kind in models:
        return models[kind].load(folder)
    if kind not in MODELS:
        msg = (f"no model class of kind {kind!r}: it is not a model of the zoo ({', '.join(MODELS)}); give its "
               f"class with models={{{kind!r}: TheClass}} when saving the pyfunc")
        raise ConfigError(msg)
    return MODELS[kind].load(folder)


class AtlasPyfunc(mlflow.pyfunc.PythonModel):
    """An MLflow pyfunc model that predicts from raw feature values or from market data.

    Logged by :func:`atlas.models._packaging.log_pyfunc`; loaded with ``mlflow.pyfunc.load_model(uri)``, or
    here with :meth:`load` for a folder that ``save_pyfunc`` wrote.

    ``predict`` takes either

    * a frame of raw (unscaled) feature values, one column per feature of the set (extra columns are ignored),
      rows in time order: it predicts for each row with every feature (a windowed model: for each row that ends
      a window of such rows); or
    * a market request, a frame with the columns ``start``, ``end`` and optionally ``store_url`` (one row per
      range; the store ``ATLAS_STORE_URL`` names by default): it builds the features from the store and
      predicts for every bucket of the range.

    It returns a frame indexed like the rows that got a prediction: ``class`` (the class name) and ``p_<class>``
    per class for a classifier, ``prediction`` for a regressor.

    Example (with a model logged as in tests/models/test_pyfunc.py)::
            model = mlflow.pyfunc.load_model(uri)
            model.predict(raw_features)
            model.predict(pd.DataFrame({"start": ["2024-01-02 10:00"], "end": ["2024-01-02 11:00"]}))

    Args:
        models: kind -> Model class for model classes outside the zoo (the zoo's come from its registry,
            ``atlas.models.MODELS``); pickled with this object, so their module must import where the model loads.
    """

    def __init__(self, models: Mapping[str, type] | None = None) -> None:
        self.models = dict(models or {})
        self.meta: dict = {}

    # loading ----------------------------------------------------------------------------------------------------

    def load_context(self, context) -> None:
        self.load(context.artifacts["atlas"])

    def load(self, folder: Path | str) -> AtlasPyfunc:
        """Reads a folder written by ``save_pyfunc`` (its ``atlas`` artifact); returns self."""
        folder = Path(folder)
        self.meta = json.loads((folder / "meta.json").read_text())
        self.featureset = FeatureLabelSet.from_dict(json.loads((folder / "featureset.json").read_text()))
        self.transforms = json.loads((folder / "transforms.json").read_text())
        proba = self.task == "classification"
        self.model, self.network = None, None
        if (folder / "dense.npz").exists():  # NumPy only: no model class, no TensorFlow
            self.network = DenseNetwork.load(folder / "dense.npz")
            self.predictor = Predictor.from_network(self.network, proba=proba)
        else:
            self.model = _load_model(folder / "model", self.models)
            self.predictor = self.model.predictor()
        scaler = self.transforms["scaler"]
        if list(scaler["columns"]) != self.feature_names:
            msg = f"{folder}: transforms.json was fitted on {scaler['columns']}, not the features {self.feature_names}"
            raise ConfigError(msg)
        self._center = np.asarray(scaler["center"], dtype=np.float64)
        self._scale = np.asarray(scaler["scale"], dtype=np.float64)
        return self

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    @property
    def class_names(self) -> list[str] | None:
        return self.meta["class_names"]

    @property
    def window(self) -> int | None:
        return self.meta["window"]

    # predicting -------------------------------------------------------------------------------------------------

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """MLflow's entry point: a frame of raw feature values, or a market request (see the class).

        (A ``pd.DataFrame`` hint gives MLflow no schema of its own: the logged signature checks the input.)
        """
        if not isinstance(model_input, pd.DataFrame):
            msg = (f"the model takes a DataFrame of raw feature values or a market request "
                   f"(columns {list(REQUEST_COLUMNS)}), got {type(model_input).__name__}")
            raise ConfigError(msg)
        if "start" in model_input.columns:
            return self._predict_requests(model_input)
        return self.predict_frame(model_input)

    def predict_one(self, values: np.ndarray) -> np.ndarray:
        """The tick path: one row of raw feature values (or, windowed, the last ``window`` rows) -> a 1-d array.

        ``values`` hold the features in :attr:`feature_names` order, unscaled; they are scaled as
        ``apply_transforms`` scales them and go through the fast predictor: probabilities in
        :attr:`class_names` order, or the predicted value. Tens of microseconds for a dense network, against
        milliseconds for ``predict`` on a one-row frame (pandas and MLflow's schema checks).

        Raises:
            ConfigError: ``values`` do not have the predictor's shape.
        """
        scaled = (np.asarray(values, dtype=np.float64) - self._center) / self._scale
        return self.predictor(scaled.astype(np.float32))

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions from raw feature values, rows in time order (see the class).

        Rows with a missing feature value are dropped first, as when the training data was made; a windowed
        model's windows run over the rows kept.

        Raises:
            ConfigError: a feature column is missing, or a windowed model has fewer complete rows than its window.
        """
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            msg = (f"the input lacks {len(missing)} of the model's {len(self.feature_names)} feature columns: "
                   f"{missing}; send raw values of every feature {self.feature_names}, or a market request "
                   f"(columns {list(REQUEST_COLUMNS)})")
            raise ConfigError(msg)
        rows = apply_transforms(frame, self.transforms)
        complete = np.isfinite(rows).all(axis=1)
        rows, index = rows[complete], frame.index[complete]
        if self.window is not None:
            if len(rows) < self.window:
                msg = (f"a window of {self.window} rows needs at least {self.window} rows with every feature, "
                       f"got {len(rows)} (of {len(frame)}); send more history")
                raise ConfigError(msg)
            rows, index = sequence_windows(rows, self.window), index[self.window - 1:]
        return self._frame(self._outputs(rows), index)

    def predict_market(self, start, end, *, store: MarketStore) -> pd.DataFrame:
        """Predictions for every bucket ``start <= t <= end``, features built from ``store``.

        A windowed model reads ``window - 1`` buckets before ``start`` as the first window's history.
        """
        first = utc_timestamp(start, what="start")
        history = ((self.window or 1) - 1) * parse_width(self.featureset.bucket)
        frame = self.featureset.features_frame(first - history, end, store=store)
        out = self.predict_frame(frame)
        return out.loc[out.index >= first]

    def _predict_requests(self, requests: pd.DataFrame) -> pd.DataFrame:
        lacking = [c for c in ("start", "end") if c not in requests.columns]
        if lacking or not len(requests):
            msg = (f"a market request needs the columns start and end (and optionally store_url), one row per "
                   f"range; got columns {list(requests.columns)} and {len(requests)} row(s)")
            raise ConfigError(msg)
        frames = []
        for row in requests.to_dict("records"):
            url = row.get("store_url")
            # MLflow calls this adapter in any process: without a store_url, the settings of that process's
            # environment say where the market is (an entry point, as the commands are)
            store = MarketStore(url) if isinstance(url, str) and url else MarketStore.from_settings(
                Settings.from_env())
            with store:
                frames.append(self.predict_market(row["start"], row["end"], store=store))
        return pd.concat(frames) if len(frames) > 1 else frames[0]

    def _outputs(self, inputs: np.ndarray) -> np.ndarray:
        """(inputs, outputs): probabilities for a classifier, values for a regressor, as float64."""
        proba = self.task == "classification"
        if not len(inputs):
            return np.zeros((0, len(self.class_names) if proba else 1))
        if self.network is not None:
            out = self.network.forward(inputs).reshape(len(inputs), -1)
            return np.hstack([1.0 - out, out]) if proba and out.shape[1] == 1 else out
        if len(inputs) < BATCH_FROM:
            return np.stack([self.predictor(x) for x in inputs])
        out = self.model.predict_proba(inputs) if proba else self.model.predict(inputs)
        return np.asarray(out, dtype=np.float64).reshape(len(inputs), -1)

    def _frame(self, outputs: np.ndarray, index: pd.Index) -> pd.DataFrame:
        if self.task != "classification":
            names = ["prediction"] if outputs.shape[1] == 1 else [f"prediction_{k}" for k in range(outputs.shape[1])]
            return pd.DataFrame(outputs, index=index, columns=names)
        names = self.class_names
        frame = pd.DataFrame(outputs, index=index, columns=[f"p_{name}" for name in names])
        chosen = [names[k] for k in outputs.argmax(axis=1)] if len(outputs) else []
        frame.insert(0, "class", pd.Series(chosen, index=index, dtype=str))  # pandas' string dtype
        return frame


__all__ = ["BATCH_FROM", "REQUEST_COLUMNS", "AtlasPyfunc"]
