"""The MLflow pyfunc adapter: MLflow's entry points onto a :class:`~atlas.models._artifact.ModelArtifact`.

The logged model is "models from code": its code file (``_pyfunc_model.py``) names :class:`AtlasPyfunc`, and
its ``atlas`` artifact is the artifact folder (see ``atlas.models._artifact``). ``load_context`` loads that
folder, ``predict`` delegates to it; nothing here scales, predicts or unpickles on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from atlas.config import Settings
from atlas.data.featureset import FeatureLabelSet
from atlas.data.store import MarketStore
from atlas.exceptions import ConfigError
from atlas.models._artifact import REQUEST_COLUMNS, ModelArtifact


class AtlasPyfunc(mlflow.pyfunc.PythonModel):
    """An MLflow pyfunc model that predicts from raw feature values or from market data.

    Logged by :func:`atlas.models._packaging.log_pyfunc`; loaded with ``mlflow.pyfunc.load_model(uri)``, or
    here with :meth:`load` for an artifact folder. A model runner needs none of this: ``atlas.models.load_artifact``
    gives the :class:`ModelArtifact` itself.

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
        models: kind -> Model class, for a model class outside the zoo that its ``meta.json`` does not name.
    """

    def __init__(self, models: Mapping[str, type] | None = None) -> None:
        self.models = dict(models or {})
        self.artifact: ModelArtifact | None = None

    def load_context(self, context) -> None:
        self.load(context.artifacts["atlas"])

    def load(self, folder: Path | str) -> AtlasPyfunc:
        """Reads an artifact folder (the ``atlas`` artifact of a logged model); returns self."""
        self.artifact = ModelArtifact.load(folder, models=self.models)
        return self

    @property
    def task(self) -> str:
        return self.artifact.task

    @property
    def feature_names(self) -> list[str]:
        return self.artifact.feature_names

    @property
    def class_names(self) -> list[str] | None:
        names = self.artifact.class_names
        return None if names is None else list(names)

    @property
    def window(self) -> int | None:
        return self.artifact.window

    @property
    def featureset(self) -> FeatureLabelSet:
        return self.artifact.featureset

    @property
    def meta(self) -> dict:
        return self.artifact.meta

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
        return self.artifact.predict_frame(model_input)

    def predict_one(self, values: np.ndarray) -> np.ndarray:
        """The tick path (see :meth:`ModelArtifact.predict_one`)."""
        return self.artifact.predict_one(values)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions from raw feature values (see :meth:`ModelArtifact.predict_frame`)."""
        return self.artifact.predict_frame(frame)

    def predict_market(self, start, end, *, store: MarketStore) -> pd.DataFrame:
        """Predictions for every bucket of a range, features built from ``store``."""
        return self.artifact.predict_market(start, end, store=store)

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
                frames.append(self.artifact.predict_market(row["start"], row["end"], store=store))
        return pd.concat(frames) if len(frames) > 1 else frames[0]


__all__ = ["REQUEST_COLUMNS", "AtlasPyfunc"]
