"""A registered model scored by Atlas on a window of the market store: its predictions against the truth of its own
label, rebuilt from the store (never copied from a run's metrics), and the evidence frame the guardrails judge."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError, MissingDataError


def _load(uri: str):
    """The model behind ``uri`` (``models:/NAME/VERSION``, ``models:/MODEL_ID``): what has ``predict_market``,
    ``featureset``, ``class_names`` and ``task``. (One line to change for ``atlas.models.load_artifact``.)"""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    return getattr(model, "artifact", model)  # the ModelArtifact inside the pyfunc, where it holds one


@dataclass(frozen=True)
class Score:
    """How a model did over one window.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        label: the label the model predicts (its canonical name) and, for a classifier, its classes.
        buckets: the buckets scored (with a prediction and a known label).
        values: ``accuracy`` and ``log_loss`` for a classifier, ``ic`` and ``rmse`` for a regressor.
        predictions: the scored rows as ``atlas.stats.Predictions`` (part ``"test"``), for the degeneracy check.
    """

    task: str
    label: str
    buckets: int
    values: dict
    predictions: object

    @property
    def primary(self) -> tuple[str, float, bool]:
        """The number that decides, its value, and whether higher is better: accuracy, or IC for a regressor."""
        if self.task == "classification":
            return "accuracy", self.values["accuracy"], True
        return "ic", self.values["ic"], True

    @property
    def secondary(self) -> tuple[str, float, bool]:
        """The tie-breaker: log loss, or RMSE for a regressor (lower is better)."""
        if self.task == "classification":
            return "log_loss", self.values["log_loss"], False
        return "rmse", self.values["rmse"], False

    def describe(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in self.values.items())


def score_model(model, start, end, *, store) -> Score:
    """Scores ``model`` on every bucket ``start <= t <= end`` of ``store``: its predictions (features built from
    the store) against its label, built from the store and cut into classes by the model's own fitted cut points.

    Raises:
        MissingDataError: no bucket of the window has both a prediction and a known label.
    """
    from atlas.data.dataset import FittedClassLabels
    from atlas.stats import check_predictions, classification_scores, regression_scores

    featureset = model.featureset
    label = _label_name(model)
    predicted = model.predict_market(start, end, store=store)
    truth = featureset.build(start, end, store=store)[label].rename("_truth")
    joined = predicted.join(truth, how="inner")
    joined = joined[joined["_truth"].notna()]
    if not len(joined):
        msg = (f"no bucket of {start} .. {end} has both a prediction and a known label {label!r} in the market "
               f"store; compute its metrics first (atlas data metrics) or point ATLAS_STORE_URL at the store the "
               f"model was trained on")
        raise MissingDataError(msg)
    raw = joined["_truth"].to_numpy(np.float64)
    frame = pd.DataFrame({"bucket": joined.index, "part": "test", "forward_return": raw})
    if model.task == "classification":
        names = list(model.class_names)
        fitted = FittedClassLabels.from_dict(_transforms(model)["labels"])
        classes = fitted.transform(joined["_truth"])
        known = classes.notna().to_numpy()  # a tie under ties="drop" has no class: scored as training left it out
        joined, raw, frame = joined[known], raw[known], frame[known].reset_index(drop=True)
        y = classes[known].to_numpy(np.int64)
        proba = joined[[f"p_{name}" for name in names]].to_numpy(np.float64)
        scores = classification_scores(y, proba, y_train=y)
        values = {"accuracy": scores["accuracy"], "log_loss": scores["log_loss"]}
        frame["y_true"], frame["y_pred"] = y, proba.argmax(axis=1)
        for k, name in enumerate(names):
            frame[f"proba_{name}"] = proba[:, k]
        label_text = f"{label} as {'/'.join(names)}"
    else:
        prediction = joined[[c for c in joined.columns if c.startswith("prediction")][0]].to_numpy(np.float64)
        scores = regression_scores(raw, prediction, y_train=raw)
        values = {"ic": scores["correlation"], "rmse": math.sqrt(scores["mse"])}
        frame["y_true"], frame["y_pred"] = raw, prediction
        names, label_text = None, label
    columns = ["bucket", "part", "y_true", "forward_return", "y_pred", *(f"proba_{n}" for n in names or ())]
    predictions = check_predictions(frame[columns], task=model.task, class_names=names,
                                    bucket_width=featureset.bucket, horizon=featureset.horizon)
    return Score(model.task, label_text, len(joined), values, predictions)


def comparable(challenger, production) -> str | None:
    """None when both models predict the same thing (task, label, classes), else what differs."""
    if challenger.task != production.task:
        return f"production is a {production.task} model, the challenger a {challenger.task} model"
    ours, theirs = _label_name(challenger), _label_name(production)
    if ours != theirs:
        return f"production predicts {theirs}, the challenger {ours}"
    if list(challenger.class_names or []) != list(production.class_names or []):
        return f"production predicts the classes {production.class_names}, the challenger {challenger.class_names}"
    return None


def _label_name(model) -> str:
    label = getattr(model, "label", None)
    if isinstance(label, str):
        return label
    meta = getattr(model, "meta", None) or {}
    if "label" not in meta:
        msg = "the model does not say which label it predicts (no 'label' in its meta.json); log it again"
        raise ConfigError(msg)
    return meta["label"]


def _transforms(model) -> dict:
    transforms = model.transforms
    return transforms.to_dict() if hasattr(transforms, "to_dict") else dict(transforms)
