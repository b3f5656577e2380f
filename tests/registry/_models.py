"""Closed-form classifiers for the promotion tests: trained in a millisecond, loaded back from MLflow by value.

``SignClassifier`` is ridge regression on -1/+1 targets over the features it is told to ``use`` (on the simulated
market, the leader's return alone predicts best; both returns a little worse), or against them (``sign=-1``: a
contrarian, worse than the baseline but not degenerate); ``ConstantClassifier`` always says ``up`` (degenerate). Tests ship this module by value, so Ray
workers and ``mlflow.pyfunc.load_model`` get the classes themselves.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from atlas.models._base import History
from atlas.models._baselines import MajorityClassifier
from atlas.models._params import Param, count_param, number_param


class _Closed(MajorityClassifier):
    baseline = False

    def fit(self, x, y, *, validation=None, callbacks=(), **_) -> History:
        self._state = self.learn(np.asarray(y))
        self._state.update(self.solve(np.asarray(x, dtype=np.float64), np.asarray(y)))
        losses = {}
        for prefix, part in (("", (x, y)), ("val_", validation)):
            if part is not None and len(part[0]):
                proba = self.predict_proba(part[0])[np.arange(len(part[1])), np.asarray(part[1])]
                losses[f"{prefix}loss"] = [float(-np.log(np.clip(proba, 1e-7, 1)).mean())]
        return History(losses)

    def solve(self, x, y) -> dict:
        return {}

    def predict(self, x):
        return self.predict_proba(x).argmax(axis=1)


class SignClassifier(_Closed):
    """Ridge on -1/+1 targets over the first ``use`` features (0: all); ``sign=-1`` predicts the opposite."""

    kind = "sign_classifier"
    summary = "a test double: ridge regression on -1/+1 targets over some of the features"
    parameters: ClassVar[dict[str, Param]] = {"l2": number_param(0.01, "the ridge penalty, per sample", low=0.0),
                                              "use": count_param(0, "features used, from the first (0: all)", minimum=0),
                                              "sign": number_param(1.0, "the score's sign", low=-1.0, high=1.0)}

    def solve(self, x, y) -> dict:
        use = self.params["use"] or x.shape[1]
        x = x[:, :use]
        target = np.where(y == 1, 1.0, -1.0)
        weights = np.linalg.solve(x.T @ x + self.params["l2"] * len(x) * np.eye(use), x.T @ target)
        return {"weights": weights.tolist()}

    def predict_proba(self, x):
        weights = np.asarray(self._state["weights"])
        score = np.asarray(x, dtype=np.float64)[:, :len(weights)] @ weights
        up = 1 / (1 + np.exp(-4 * self.params["sign"] * score))
        return np.column_stack([1 - up, up]).astype(np.float32)


class ConstantClassifier(_Closed):
    """Degenerate: always ``up``, with the same probabilities in every row."""

    kind = "constant_classifier"
    summary = "a test double: one class, always"
    parameters: ClassVar[dict[str, Param]] = {"up": number_param(0.6, "the probability of up", low=0.5, high=1.0)}

    def predict_proba(self, x):
        rows = len(np.asarray(x))
        return np.tile(np.array([1 - self.params["up"], self.params["up"]], dtype=np.float32), (rows, 1))
