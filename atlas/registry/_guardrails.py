"""The four guardrails a challenger must pass before it takes the ``production`` alias, each with its numbers.

1. It beats the production version on the challenger's own test window, both scored by Atlas from the store.
2. It is significant against its baseline after its sweep's multiple-testing correction (``significance.json``).
3. It is not degenerate (one class, constant probabilities or a constant prediction) on that window.
4. Its features read only series that the feed it will serve from carries.

Example:
    >>> Guardrail(3, "not degenerate", True, "predicts 2 classes").line()
    'guardrail 3 (not degenerate): passed: predicts 2 classes'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from atlas.exceptions import AtlasError

#: The feeds a model serves from: Gryphon's Redis (live order books only) or the market store (replay).
FEEDS = ("redis", "store")
#: Order-book metrics (atlas.data.metrics): spread; bid, ask, midpoint at a depth; strength, strength value and
#: imbalance at a slippage. The only series Gryphon's Redis can feed.
ORDER_BOOK_METRIC = re.compile(r"^(spread|(bid|ask|midpoint)(_d[0-9.e+-]+)?|"
                               r"(bid_strength|ask_strength|bid_strength_value|ask_strength_value|imbalance)"
                               r"_s[0-9.e+-]+)$")
#: Trade metrics, and the exchanges' reported volume: only the store has them.
TRADE_METRICS = ("volume", "vwap", "trade_count", "buy_volume", "sell_volume", "exchange_volume")


@dataclass(frozen=True)
class Guardrail:
    """One guardrail's outcome.

    Attributes:
        number: 1 to 4, in the order above.
        name: what it checks, in a few words.
        passed: whether the challenger passed it.
        detail: the numbers behind the outcome, in words.
        numbers: the same numbers as plain values (recorded with the move).
    """

    number: int
    name: str
    passed: bool
    detail: str
    numbers: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"guardrail {self.number} ({self.name}): {'passed' if self.passed else 'FAILED'}: {self.detail}"

    def to_dict(self) -> dict:
        return {"number": self.number, "name": self.name, "passed": self.passed, "detail": self.detail,
                "numbers": self.numbers}


class PromotionRefused(AtlasError, RuntimeError):
    """A challenger failed a guardrail; nothing was moved. ``guardrails`` holds every outcome."""

    def __init__(self, message: str, guardrails: list[Guardrail]) -> None:
        super().__init__(message)
        self.guardrails = guardrails


def beats_production(challenger, production, *, version: str | None, window: str, why_not: str | None = None
                     ) -> Guardrail:
    """Guardrail 1 from the two :class:`~atlas.registry._scoring.Score` s (``production`` None: no production)."""
    name = "beats production"
    if version is None:
        return Guardrail(1, name, True, f"no production version yet; the challenger scores {challenger.describe()} "
                         f"on {window} ({challenger.buckets} buckets)", {"challenger": challenger.values})
    if why_not is not None:
        return Guardrail(1, name, False, f"not comparable with production version {version}: {why_not}; promote "
                         f"with --force --reason if the change of target is intended", {"production": version})
    key, ours, higher = challenger.primary
    _, theirs, _ = production.primary
    tie_key, tie_ours, tie_higher = challenger.secondary
    _, tie_theirs, _ = production.secondary
    better = _better(ours, theirs, higher)
    if better is None:
        better = bool(_better(tie_ours, tie_theirs, tie_higher))
    sign = ">" if better else "<=" if ours == theirs else "<"
    detail = (f"{key.replace('_', ' ')} {ours:.4f} {sign} production version {version}'s {theirs:.4f} on {window} "
              f"({challenger.buckets} and {production.buckets} buckets; {tie_key.replace('_', ' ')} {tie_ours:.4f} "
              f"against {tie_theirs:.4f}{', the tie-breaker' if ours == theirs else ''})")
    numbers = {"metric": key, "challenger": challenger.values, "production": production.values,
               "production_version": version, "buckets": challenger.buckets}
    return Guardrail(1, name, better, detail, numbers)


def _better(ours: float, theirs: float, higher: bool) -> bool | None:
    if not math.isfinite(ours):
        return False
    if not math.isfinite(theirs) or ours != theirs:
        return (ours > theirs) if higher else (ours < theirs) if math.isfinite(theirs) else True
    return None


def significant(document: dict | None, run_id: str, *, execution: str | None, why_missing: str | None = None
                ) -> Guardrail:
    """Guardrail 2 from the execution's ``significance.json`` (None: the sweep has no verdict)."""
    name = "significant after the sweep's correction"
    if document is None:
        return Guardrail(2, name, False, f"its sweep (execution {execution}) has no verdict: {why_missing}; run the "
                         "digest (atlas report, or train it again) or promote with --force --reason")
    alpha = document.get("alpha")
    adjustment = document.get("adjustment") or "romano_wolf"
    rows = [row for row in document.get("table") or [] if row.get("run_id") == run_id]
    trials = document.get("trials")
    if not rows:
        return Guardrail(2, name, False, f"run {run_id} is not in the verdict of execution {execution} "
                         f"({trials} trials judged; a trial without stored predictions is left out)",
                         {"alpha": alpha, "trials": trials})
    row = rows[0]
    adjusted = row.get(f"{adjustment}_p")
    who = adjustment.replace("_", "-").title()
    if adjusted is None or alpha is None or not math.isfinite(float(adjusted)):
        return Guardrail(2, name, False, f"the verdict has no {who} p-value for run {run_id}", {"alpha": alpha})
    adjusted = float(adjusted)
    passed = adjusted < float(alpha)
    lift = row.get("lift")
    detail = (f"{who} adjusted p {adjusted:.4g} {'<' if passed else '>='} alpha {float(alpha):g} over {trials} "
              f"trials (lift {float(lift):+.4f} over its baseline, unadjusted p {float(row.get('p_value')):.4g})"
              if lift is not None and row.get("p_value") is not None else
              f"{who} adjusted p {adjusted:.4g} {'<' if passed else '>='} alpha {float(alpha):g} over {trials} trials")
    return Guardrail(2, name, passed, detail, {"adjusted_p_value": adjusted, "alpha": float(alpha),
                                               "adjustment": adjustment, "trials": trials, "lift": lift})


def not_degenerate(score) -> Guardrail:
    """Guardrail 3: ``atlas.stats.is_degenerate`` on the predictions Atlas just scored."""
    import numpy as np

    from atlas.stats import is_degenerate

    degenerate = bool(is_degenerate(score.predictions))
    y_pred = np.asarray(score.predictions.y_pred)
    if score.task == "classification":
        values, counts = np.unique(y_pred, return_counts=True)
        detail = (f"predicts {len(values)} of its classes over {score.buckets} buckets "
                  f"(most frequent: {counts.max() if len(counts) else 0} of {score.buckets})")
        numbers = {"classes_predicted": len(values), "buckets": score.buckets}
    else:
        spread = float(np.std(y_pred)) if len(y_pred) else 0.0
        detail = f"prediction standard deviation {spread:.3g} over {score.buckets} buckets"
        numbers = {"prediction_std": spread, "buckets": score.buckets}
    if degenerate:
        detail = "degenerate: " + detail + " (one class, constant probabilities or a constant prediction)"
    return Guardrail(3, "not degenerate", not degenerate, detail, numbers)


def servable(featureset, feed: str, *, stored: set[str] | None = None) -> Guardrail:
    """Guardrail 4: every series the features read comes from ``feed`` (``stored``: the store's series names)."""
    name = f"features from the {feed} feed"
    keys = sorted({key for feature in featureset.features for key in feature.series()}, key=lambda k: k.name)
    if feed == "redis":
        lacking = [key.name for key in keys if not ORDER_BOOK_METRIC.match(key.metric)]
        why = "Gryphon's Redis carries order books only, not trades or exchange volume"
    else:
        lacking = [key.name for key in keys if key.name not in (stored or set())]
        why = "the market store does not hold them; compute them first (atlas data metrics)"
    if lacking:
        return Guardrail(4, name, False, f"{len(lacking)} of {len(keys)} series the features read cannot come from "
                         f"the {feed} feed: {', '.join(lacking)} ({why})", {"lacking": lacking})
    return Guardrail(4, name, True, f"all {len(keys)} series the features read come from the {feed} feed",
                     {"series": [key.name for key in keys]})
