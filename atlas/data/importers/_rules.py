"""Checking every row of a file against every rule in one pass, and one error that lists all that are broken.

A file with several problems (newest first, two rows for one bar, a negative price) gets one message naming
each broken rule with its count, its first rows and its fix, instead of one rule per run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from atlas.data.importers._files import Table
from atlas.data.importers._report import Tally
from atlas.exceptions import DataValidationError

#: How many offending rows a broken rule shows.
SHOWN_ROWS = 3
SKIP_INVALID = "fix the file, or skip and count such rows with on_invalid='skip' (--skip-invalid)"


@dataclass(frozen=True)
class Broken:
    """One rule broken by some rows of a file.

    Attributes:
        rule: the rule's short name (``"non_positive_price"``).
        rows: positions of the offending rows, in file order.
        words: what such a row has (``"has a price that is zero, negative or not a number"``).
        fix: how to get past it, naming Atlas options (``"pass --sort"``).
        skippable: ``--skip-invalid`` drops and counts such rows; otherwise only the fix gets past it.
    """

    rule: str
    rows: np.ndarray
    words: str
    fix: str
    skippable: bool = True


class Rules:
    """The rules a file's rows break, collected in one pass: each check adds the rows that break it."""

    def __init__(self, table: Table, describe: Callable[[int], str]) -> None:
        self.table = table
        self.describe = describe
        self.broken: list[Broken] = []

    def check(self, rule: str, mask: np.ndarray, words: str, *, fix: str = SKIP_INVALID,
              skippable: bool = True) -> None:
        """Records the rows of ``mask`` as breaking ``rule`` (nothing when none does)."""
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows):
            self.broken.append(Broken(rule, rows, words, fix, skippable))

    def settle(self, on_invalid: str, tally: Tally, kind: str) -> np.ndarray:
        """Raises one error listing every broken rule, or (``on_invalid="skip"``) drops and counts the rows that
        break a skippable one; returns the mask of dropped rows.

        A row breaking several rules counts under the first. Rules that skipping cannot settle (time order,
        repeated bars) raise whatever ``on_invalid`` says.
        """
        blocking = [b for b in self.broken if not b.skippable or on_invalid == "raise"]
        if blocking:
            raise self.error(blocking if on_invalid == "skip" else self.broken)
        bad = np.zeros(len(self.table.frame), dtype=bool)
        for broken in self.broken:
            mine = np.zeros_like(bad)
            mine[broken.rows] = True
            mine &= ~bad
            tally.skip(kind, {broken.rule: int(mine.sum())})
            bad |= mine
        return bad

    def error(self, broken: list[Broken]) -> DataValidationError:
        """One error naming each broken rule: count, first rows, fix; its ``rule`` and ``row`` are the first's.

        A row breaking several rules is shown under the first (a negative close is not also an inconsistent bar),
        as ``on_invalid="skip"`` counts it.
        """
        seen = np.zeros(len(self.table.frame), dtype=bool)
        own = []
        for b in broken:
            rows = b.rows[~seen[b.rows]]
            seen[b.rows] = True
            if len(rows):
                own.append(Broken(b.rule, rows, b.words, b.fix, b.skippable))
        broken = own
        first = broken[0]
        if len(broken) == 1:
            head = f"{self._rows(first)} {first.words} (rule {first.rule}); {_count(first)}{self._others(first)}. "
            msg = f"{head}{_fix(first.fix)}; nothing was written"
        else:
            parts = [f"{self.table.name}: {len(broken)} rules are broken; nothing was written."]
            for k, b in enumerate(broken, 1):  # one line, as every command-line failure is
                count = f"{len(b.rows)} row{'s' * (len(b.rows) != 1)}"
                parts.append(f"({k}) rule {b.rule}, {count}: {self._rows(b)} {b.words}{self._others(b)}. "
                             f"{_fix(b.fix)}.")
            msg = " ".join(parts)
        return DataValidationError(msg, rule=first.rule, row=int(first.rows[0]))

    def _rows(self, broken: Broken) -> str:
        """The first offending row, described in full."""
        return f"{self.table.where(int(broken.rows[0]))}{self.describe(int(broken.rows[0]))}"

    def _others(self, broken: Broken) -> str:
        """`` (also rows 4, 9 and 12 more)``: where the next offending rows are."""
        if len(broken.rows) < 2:
            return ""
        rows = ", ".join(str(int(i)) for i in broken.rows[1:SHOWN_ROWS + 1])
        more = f" and {len(broken.rows) - SHOWN_ROWS - 1} more" if len(broken.rows) > SHOWN_ROWS + 1 else ""
        return f" (also row{'s' * (len(broken.rows) > 2)} {rows}{more})"


def _count(broken: Broken) -> str:
    n = len(broken.rows)
    return "1 row breaks it" if n == 1 else f"{n} rows break it"


def _fix(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text
