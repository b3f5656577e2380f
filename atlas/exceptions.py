"""Atlas's own errors. Each one subclasses the built-in error it refines, so callers may catch either."""

from __future__ import annotations


class AtlasError(Exception):
    """Base class of every error Atlas raises on purpose."""


class ConfigError(AtlasError, ValueError):
    """A setting or an argument has a value Atlas cannot use."""


class UnknownExchangeError(ConfigError, KeyError):
    """An exchange name that Atlas does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


class DataValidationError(AtlasError, ValueError):
    """Market data that breaks a rule: the message names the row and the rule.

    Attributes:
        rule: a short name of the rule that was broken (``"crossed_book"``, ``"non_positive_volume"``, ...).
        row: the position of the offending row in the input, when there is one.
    """

    def __init__(self, message: str, *, rule: str, row: int | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.row = row


class StoreError(AtlasError, RuntimeError):
    """The market store cannot do what was asked (a read-only source, a missing table, ...)."""


class MissingDataError(AtlasError, LookupError):
    """The store lacks the data that was asked for; the message says what is missing."""


class LeakageError(AtlasError, ValueError):
    """A feature that reads the future was used as a model input: only a label may read the future."""


class NotFittedError(AtlasError, RuntimeError):
    """A model was asked to predict or save before it was fitted or loaded."""
