"""Live scoring: each served prediction scored against what happened once its label horizon has passed.

The runner records every prediction it publishes; when the feed has moved ``horizon`` buckets past one, the label
is computed from the same feed's history by the model's own label feature (the training label, computed as training
computes it: from the unfilled series) and turned into a class by the model's fitted class cut points. Rolling
statistics over the last ``window`` scored predictions:

* ``accuracy`` (a regressor: directional accuracy), and ``lift`` over the test window's baseline accuracy;
* ``hit_rate``: of the predictions that took a position, the share whose direction was right;
* ``ic``: a regressor's Pearson correlation of prediction and realized return;
* ``net_return``: the sign strategy's summed return (up = long, down = short, flat = out) net of ``cost_bps`` per
  unit of turnover.

**Drift.** The test window implies how low live accuracy may fall by chance: with test accuracy ``p`` and ``n``
live predictions scored, the one-sided lower bound ``p - z * sqrt(p (1 - p) / n)`` (``z`` 2.326: 1%). Once at least
``min_scored`` predictions are scored, live accuracy below it raises the alarm.

Example:
    >>> scorer = LiveScorer(class_names=("down", "up"), test_accuracy=0.6, baseline_accuracy=0.5, min_scored=2)
    >>> scorer.score(0, predicted="up", realized_class="up", realized_return=0.01)
    >>> scorer.score(1, predicted="down", realized_class="up", realized_return=0.02)
    >>> s = scorer.statistics()
    >>> s["scored"], s["accuracy"], round(s["lift"], 2), s["drift"]
    (2, 0.5, 0.0, 0.0)
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

#: The one-sided normal quantile of the drift alarm (1%).
DRIFT_Z = 2.326


class LiveScorer:
    """Rolling live statistics of one served model.

    Args:
        class_names: a classifier's classes (None for a regressor).
        test_accuracy: the accuracy on the model's test window (a regressor: directional accuracy), or None.
        baseline_accuracy: the baseline's accuracy on that window, or None.
        window: how many of the latest scored predictions the statistics cover.
        min_scored: scored predictions needed before the drift alarm may sound.
        cost_bps: the trading cost per unit of turnover, in basis points.
    """

    def __init__(self, *, class_names=None, test_accuracy: float | None = None,
                 baseline_accuracy: float | None = None, window: int = 500, min_scored: int = 100,
                 cost_bps: float = 1.0) -> None:
        self.class_names = tuple(class_names) if class_names is not None else None
        self.test_accuracy = _finite(test_accuracy)
        self.baseline_accuracy = _finite(baseline_accuracy)
        self.min_scored = int(min_scored)
        self.cost = float(cost_bps) / 1e4
        self._rows: deque[tuple] = deque(maxlen=int(window))  # right, position, pnl, prediction, return
        self.scored = 0
        self._position = 0.0

    def position(self, predicted) -> float:
        """The sign strategy's position: +1 up, -1 down, 0 otherwise (a regressor: the prediction's sign)."""
        if self.class_names is None:
            return float(np.sign(predicted))
        name = str(predicted).lower()
        return 1.0 if name == "up" else -1.0 if name == "down" else 0.0

    def score(self, bucket, *, predicted, realized_class=None, realized_return: float) -> None:
        """Scores one prediction (``predicted``: a class name, or a regressor's value) against what happened."""
        position = self.position(predicted)
        if self.class_names is None:
            right = float(np.sign(predicted) == np.sign(realized_return))
            value = float(predicted)
        else:
            right = float(str(predicted) == str(realized_class))
            value = np.nan
        pnl = position * realized_return - self.cost * abs(position - self._position)
        self._position = position
        self._rows.append((right, position, pnl, value, realized_return))
        self.scored += 1

    def statistics(self) -> dict[str, float]:
        """The rolling statistics (NaN where undefined), with ``drift`` 1.0 when the alarm holds."""
        rows = np.asarray(self._rows, dtype=np.float64).reshape(-1, 5)
        n = len(rows)
        accuracy = float(rows[:, 0].mean()) if n else math.nan
        taken = rows[:, 1] != 0
        hit = float(rows[taken, 0].mean()) if taken.any() else math.nan
        out = {"scored": self.scored, "window": n, "accuracy": accuracy,
               "lift": accuracy - self.baseline_accuracy if self.baseline_accuracy is not None else math.nan,
               "hit_rate": hit, "net_return": float(rows[:, 2].sum()) if n else 0.0,
               "lower_bound": self.lower_bound(n)}
        if self.class_names is None:
            ok = np.isfinite(rows[:, 3]) & np.isfinite(rows[:, 4])
            out["ic"] = (float(np.corrcoef(rows[ok, 3], rows[ok, 4])[0, 1])
                         if ok.sum() > 2 and rows[ok, 3].std() > 0 and rows[ok, 4].std() > 0 else math.nan)
        bound = out["lower_bound"]
        out["drift"] = float(n >= self.min_scored and math.isfinite(bound) and accuracy < bound)
        return out

    def lower_bound(self, n: int) -> float:
        """How low accuracy over ``n`` live predictions may fall by chance, given the test accuracy."""
        p = self.test_accuracy
        if p is None or n <= 0:
            return math.nan
        return p - DRIFT_Z * math.sqrt(p * (1 - p) / n)


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


__all__ = ["DRIFT_Z", "LiveScorer"]
