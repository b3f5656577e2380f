"""The record of alias moves: each move as version tags on the version moved to, and the whole history as JSON
on the registered model (``Tag.ALIAS_HISTORY``), from which rollback knows where production was before."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from atlas.runs import Tag

#: The alias the serving runtime reads (``models:/NAME@production``), and the one a registration sets.
PRODUCTION = "production"
CHALLENGER = "challenger"
#: The most moves the registered model's history keeps (the oldest are dropped).
MAX_MOVES = 500


@dataclass(frozen=True)
class Move:
    """One move of an alias.

    Attributes:
        alias: the alias moved (``production``).
        version: the version it points at now.
        previous: the version it pointed at before, or None.
        at: when (UTC, ISO 8601).
        by: who (``user@host``).
        command: what moved it (the command line).
        reason: why: the ``--reason``, "guardrails passed: ..." with the numbers, or "rollback".
        forced: whether ``--force`` overrode the guardrails.
        kind: ``"promote"`` or ``"rollback"``.
    """

    alias: str
    version: str
    previous: str | None
    at: str
    by: str
    command: str
    reason: str
    forced: bool
    kind: str = "promote"

    def tags(self, guardrails: list | None = None) -> dict[str, str]:
        """The version tags that record this move on the version moved to."""
        tags = {Tag.PROMOTED_FROM: self.previous or "none", Tag.PROMOTED_AT: self.at, Tag.PROMOTED_BY: self.by,
                Tag.PROMOTION_COMMAND: self.command, Tag.PROMOTION_REASON: self.reason,
                Tag.PROMOTION_FORCED: "true" if self.forced else "false"}
        if guardrails is not None:
            tags[Tag.GUARDRAILS] = json.dumps([g.to_dict() for g in guardrails], default=str)
        return tags

    def line(self) -> str:
        before = f"from version {self.previous}" if self.previous else "first"
        forced = ", FORCED" if self.forced else ""
        return (f"{self.at}  {self.alias} -> version {self.version} ({before}; {self.kind}{forced}) by {self.by}: "
                f"{self.reason}")


def read_history(model) -> list[Move]:
    """The moves recorded on a registered model (``client.get_registered_model(name)``), oldest first."""
    text = (model.tags or {}).get(Tag.ALIAS_HISTORY)
    if not text:
        return []
    try:
        return [Move(**entry) for entry in json.loads(text)]
    except (TypeError, ValueError):
        return []  # a history edited by hand: moves still carry their own version tags


def history_text(moves: list[Move]) -> str:
    return json.dumps([asdict(move) for move in moves[-MAX_MOVES:]])


def production_stack(moves: list[Move]) -> list[str]:
    """The versions production went through, a promotion pushing and a rollback popping: the last is production
    now, the one before it is where a rollback goes."""
    stack: list[str] = []
    for move in moves:
        if move.alias != PRODUCTION:
            continue
        if move.kind == "rollback" and len(stack) >= 2 and stack[-2] == move.version:
            stack.pop()
        else:
            stack.append(move.version)
    return stack
