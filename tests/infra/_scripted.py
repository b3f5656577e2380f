"""A classifier whose training is scripted by its parameters, so sweep tests can make trials fail, die, run
slowly or converge badly on purpose. It trains as the majority baseline and reports made-up validation losses.

Sweep tests register this module with ``cloudpickle.register_pickle_by_value``, so Ray workers receive the
class itself, as they would a model class defined in an experiment file.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import ClassVar

from atlas.models._base import History
from atlas.models._baselines import MajorityClassifier
from atlas.models._params import Param, choice_param, count_param, number_param


class ScriptedClassifier(MajorityClassifier):
    """``behaviour``: "train", "raise" (fit raises), "die_once" (the first attempt kills its own process; the
    ``marker`` file records that it did). ``loss``: the first epoch's validation loss, falling 5% an epoch."""

    kind = "scripted_classifier"
    baseline = False
    summary = "a test double: scripted validation losses, failures and deaths"
    parameters: ClassVar[dict[str, Param]] = {
        "loss": number_param(1.0, "the first epoch's validation loss", low=0.0),
        "epochs": count_param(4, "epochs to report"),
        "seconds": number_param(0.0, "seconds each epoch takes", low=0.0),
        "behaviour": choice_param("train", "what fit does", ("train", "raise", "die_once", "mark")),
        "marker": Param("", "a file that die_once creates before dying, or mark appends its node id to", "a path",
                        str),
    }

    def fit(self, x, y, *, validation=None, callbacks=(), **_) -> History:
        if self.params["behaviour"] == "raise":
            msg = "scripted failure: this trial raises on purpose"
            raise RuntimeError(msg)
        marker = Path(self.params["marker"])
        if self.params["behaviour"] == "mark":  # where this trial runs, for a test to act on (kill that node)
            import ray

            with marker.open("a") as file:
                file.write(ray.get_runtime_context().get_node_id() + "\n")
        if self.params["behaviour"] == "die_once" and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        super().fit(x, y)
        losses = []
        for epoch in range(self.params["epochs"]):
            time.sleep(self.params["seconds"])
            losses.append(self.params["loss"] * (1 - 0.05 * epoch))
            if any(callback(epoch, {"loss": losses[-1], "val_loss": losses[-1]}) for callback in callbacks):
                return History({"loss": losses, "val_loss": list(losses)}, stopped="callback")
        return History({"loss": losses, "val_loss": list(losses)})


class RidgeClassifier(MajorityClassifier):
    """A two-class linear classifier fitted in closed form (ridge regression on -1/+1 targets, NumPy only): as good
    as a logistic model at finding a lead-lag sign, in a millisecond, so a test can train 50 of them quickly."""

    kind = "ridge_classifier"
    baseline = False
    summary = "a test double: ridge regression on -1/+1 targets, a sigmoid of its score as probabilities"
    parameters: ClassVar[dict[str, Param]] = {"l2": number_param(1.0, "the ridge penalty, per sample", low=0.0)}

    def fit(self, x, y, *, validation=None, callbacks=(), **_) -> History:
        import numpy as np

        self._state = self.learn(np.asarray(y))
        x = np.asarray(x, dtype=np.float64)
        target = np.where(np.asarray(y) == 1, 1.0, -1.0)
        gram = x.T @ x + self.params["l2"] * len(x) * np.eye(x.shape[1])
        self._state["weights"] = np.linalg.solve(gram, x.T @ target).tolist()
        losses = {}
        for prefix, part in (("", (x, y)), ("val_", validation)):
            if part is not None and len(part[0]):
                proba = self.predict_proba(part[0])[np.arange(len(part[1])), np.asarray(part[1])]
                losses[f"{prefix}loss"] = [float(-np.log(np.clip(proba, 1e-7, 1)).mean())]
        return History(losses)

    def predict_proba(self, x):
        import numpy as np

        score = np.asarray(x, dtype=np.float64) @ np.asarray(self._state["weights"])
        up = 1 / (1 + np.exp(-4 * score))
        return np.column_stack([1 - up, up]).astype(np.float32)

    def predict(self, x):
        return self.predict_proba(x).argmax(axis=1)
