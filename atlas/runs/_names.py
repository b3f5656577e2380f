"""Names that travel: a work spec, work unit or model spec name becomes an MLflow experiment and run name, an
Optuna study name, part of a file path and a value in MLflow filter strings, so only a safe alphabet is
accepted, when the spec is made.

Example:
    >>> check_name("WorkSpec", "name", "june_2017")
    >>> quoted("it's")
    '"it\\'s"'
"""

from __future__ import annotations

import re
from typing import Any

from atlas.exceptions import ConfigError

#: The longest name: a study name joins four of them, and run names join three.
MAX_NAME = 64
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
ALLOWED = (f"1 to {MAX_NAME} letters, digits, '_', '-' and '.', starting with a letter, a digit or '_', "
           "without '..'")


def check_name(where: str, field_name: str, name: Any) -> None:
    """Raises ConfigError, naming ``where`` and ``field_name``, unless ``name`` is a safe name.

    Raises:
        ConfigError: not a string, empty, too long, a character outside the alphabet (a quote, a slash, a
            backslash, a space, a control character) or ``..``.
    """
    if isinstance(name, str) and len(name) <= MAX_NAME and _NAME.fullmatch(name) and ".." not in name:
        return
    msg = (f"{where}: {field_name} must be {ALLOWED} (it names MLflow runs, Optuna studies and artifact folders), "
           f"got {name!r}")
    raise ConfigError(msg)


def quoted(value: str) -> str:
    """``value`` as a string literal of an MLflow filter: in single quotes, or in double quotes when it holds a
    single quote (MLflow's filters have no escapes).

    Raises:
        ConfigError: the value holds both kinds of quotes, so no literal can carry it.
    """
    value = str(value)
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    msg = f"{value!r} holds both ' and \" and cannot be searched for in MLflow; no Atlas name or run id does"
    raise ConfigError(msg)
