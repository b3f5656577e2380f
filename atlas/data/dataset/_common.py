"""Argument checks shared by the dataset modules: a choice among names, with a did-you-mean hint."""

from __future__ import annotations

import difflib
import numbers

from atlas.exceptions import ConfigError


def check_method(name: str, value, allowed: tuple[str, ...]) -> str:
    """Returns ``value`` when it is one of ``allowed``; otherwise raises ConfigError with a did-you-mean hint.

    Example:
        >>> check_method("method", "zscore", ("zscore", "robust"))
        'zscore'
    """
    if isinstance(value, str) and value in allowed:
        return value
    close = difflib.get_close_matches(str(value), allowed, n=2, cutoff=0.5) if isinstance(value, str) else []
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    msg = f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {name}={value!r}{hint}"
    raise ConfigError(msg)


def check_count(name: str, value, *, minimum: int) -> int:
    """``value`` as an int when it is a whole number of at least ``minimum``; else raises ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        msg = f"{name} must be a whole number of at least {minimum}, got {name}={value!r}"
        raise ConfigError(msg)
    return int(value)


def check_columns(what: str, given, available) -> None:
    """Raises ConfigError naming the columns of ``given`` missing from ``available``, with hints."""
    available = [str(c) for c in available]
    missing = [c for c in given if c not in set(available)]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(str(name), available, n=2, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        hints.append(f"{name!r}{hint}")
    shown = available[:12] + (["..."] if len(available) > 12 else [])
    msg = f"{what}: no column {', '.join(hints)}; the frame has {shown}"
    raise ConfigError(msg)
