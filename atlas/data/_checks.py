"""Argument checks shared across atlas.data."""

from __future__ import annotations

from atlas.exceptions import ConfigError


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raises ConfigError unless ``value`` is one of ``allowed``, naming the argument and the allowed values."""
    if value not in allowed:
        msg = f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {name}={value!r}"
        raise ConfigError(msg)
