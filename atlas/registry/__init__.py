"""Promotion through the MLflow Model Registry, with guardrails.

A trial's logged model is registered as a version of a named model and gets the alias ``challenger``; the alias
``production`` (what serving loads, ``models:/NAME@production``) moves to it only when four guardrails pass:
it beats production on its own test window (both scored here from the market store), it is significant after
its sweep's multiple-testing correction, it is not degenerate, and its features come from the feed it will serve.
Every move is recorded on the version moved to and in the model's alias history; ``rollback`` undoes the last.

It imports ``atlas.config``, ``atlas.exceptions``, ``atlas.data``, ``atlas.models``, ``atlas.runs`` and
``atlas.stats``, never ``atlas.infra``; settings are passed in.

Example (after ``atlas train experiments/quickstart.py``)::

    from atlas.registry import Registry

    registry = Registry(settings)
    registry.register(registry.best_run("quickstart"), "itbit-next-minute", by="ana@desk")
    promotion = registry.promote("itbit-next-minute", feed="redis", by="ana@desk", command="notebook")
    print([g.line() for g in promotion.guardrails])
"""

from atlas.registry._guardrails import FEEDS, Guardrail, PromotionRefused
from atlas.registry._history import CHALLENGER, PRODUCTION, Move
from atlas.registry._registry import Promotion, Registry
from atlas.registry._runs import lower_is_better

__all__ = ["CHALLENGER", "FEEDS", "PRODUCTION", "Guardrail", "Move", "Promotion", "PromotionRefused", "Registry",
           "lower_is_better"]
