"""Model parameters: each one's default, the values it takes and what it means; checked with "did you mean".

A model type declares its parameters as :class:`Param` values; :func:`resolve_params` merges given values over
the defaults, rejects unknown names (with the closest valid ones and the whole list) and checks each value.

Example:
    >>> parameters = {"hidden_units": units_param([64, 32], "units per hidden layer"),
    ...               "dropout": fraction_param(0.0, "dropout rate")}
    >>> resolve_params("dnn_classifier", parameters, {"dropout": 0.1})
    {'hidden_units': [64, 32], 'dropout': 0.1}
    >>> resolve_params("dnn_classifier", parameters, {"hidden_unit": [8]})
    Traceback (most recent call last):
    ...
    atlas.exceptions.ConfigError: dnn_classifier has no parameter 'hidden_unit'; did you mean ...
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from atlas.exceptions import ConfigError

#: Keras activation names a parameter ``activation`` accepts (a test checks each one against Keras).
ACTIVATIONS = ("relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish", "tanh",
               "sigmoid", "hard_sigmoid", "softplus", "softsign", "exponential", "linear")
#: Optimizers by their Keras names.
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


@dataclass(frozen=True)
class Param:
    """One parameter of a model type.

    Attributes:
        default: the value when the model spec does not give one (plain JSON: numbers, strings, lists).
        help: what it means, one line.
        expected: what a valid value is, as a phrase ("a whole number of at least 1").
        convert: returns the value in its canonical form; raises ``ValueError`` or ``TypeError`` if invalid.
        choices: the allowed strings of a choice, for the "did you mean" hint.
    """

    default: Any
    help: str
    expected: str
    convert: Callable[[Any], Any]
    choices: tuple[str, ...] = ()


def did_you_mean(value: Any, choices) -> str:
    """``"; did you mean 'x'?"`` naming the closest of ``choices`` to ``value``, or ``""``.

    Example:
        >>> did_you_mean("adm", ["adam", "sgd"])
        "; did you mean 'adam'?"
    """
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def resolve_params(kind: str, parameters: Mapping[str, Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """The full parameters of a ``kind`` model: ``given`` over the defaults, each value checked.

    Raises:
        ConfigError: ``given`` is not a mapping of names, names an unknown parameter (with "did you mean" and
            the valid names with their defaults), or holds a value the parameter does not take.
    """
    if not isinstance(given, Mapping) or not all(isinstance(name, str) for name in given):
        msg = f"{kind} parameters must be a mapping of parameter names to values, got {given!r}"
        raise ConfigError(msg)
    listing = ", ".join(f"{name}={p.default!r}" for name, p in parameters.items()) or "none"
    for name in given:
        if name not in parameters:
            msg = (f"{kind} has no parameter {name!r}{did_you_mean(name, parameters)} "
                   f"Its parameters (with defaults) are: {listing}")
            raise ConfigError(msg)
    resolved = {}
    for name, param in parameters.items():
        value = given.get(name, param.default)
        try:
            resolved[name] = param.convert(value)
        except (TypeError, ValueError):
            msg = (f"{kind} parameter {name} must be {param.expected}, got {name}={value!r}"
                   f"{did_you_mean(value, param.choices)}; the default is {name}={param.default!r}")
            raise ConfigError(msg) from None
    return resolved


def describe_params(parameters: Mapping[str, Param]) -> str:
    """One line per parameter: ``name = default  help (expected)``."""
    if not parameters:
        return "  (no parameters)"
    width = max(len(f"{name} = {p.default!r}") for name, p in parameters.items())
    return "\n".join(f"  {f'{name} = {p.default!r}':<{width}}  {p.help} ({p.expected})"
                     for name, p in parameters.items())


# converters and the parameter factories built on them -------------------------------------------------------

def _whole(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(value)
    return int(value)


def _number(value: Any, low: float, high: float, *, low_closed: bool, high_closed: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(value)
    value = float(value)
    above = value >= low if low_closed else value > low
    below = value <= high if high_closed else value < high
    if not (above and below):
        raise ValueError(value)
    return value


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(value)
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _units(value: Any, *, empty: bool) -> list[int]:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TypeError(value)
    units = [_whole(v, 1) for v in value]
    if not units and not empty:
        raise ValueError(value)
    return units


def count_param(default: int, help: str, *, minimum: int = 1) -> Param:
    """A whole number of at least ``minimum``."""
    return Param(default, help, f"a whole number of at least {minimum}", lambda v: _whole(v, minimum))


def units_param(default: list[int], help: str, *, empty: bool = False) -> Param:
    """A list of positive whole numbers, one per layer (``empty``: the list may be empty)."""
    expected = "a list of positive whole numbers" + (" (or [])" if empty else ", at least one")
    return Param(list(default), help, expected, lambda v: _units(v, empty=empty))


def number_param(default: float, help: str, *, low: float, high: float = math.inf,
                 low_closed: bool = True, high_closed: bool = True) -> Param:
    """A finite number in a range, e.g. ``low=0, low_closed=False`` for a positive number."""
    expected = (f"a number in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
                if math.isfinite(high) else f"a number {'>=' if low_closed else '>'} {low:g}")
    return Param(default, help, expected,
                 lambda v: _number(v, low, high, low_closed=low_closed, high_closed=high_closed))


def fraction_param(default: float, help: str) -> Param:
    """A rate in [0, 1), such as a dropout rate."""
    return number_param(default, help, low=0.0, high=1.0, high_closed=False)


def choice_param(default: str, help: str, choices: tuple[str, ...]) -> Param:
    """One of ``choices``; a near miss gets "did you mean"."""
    expected = f"one of {', '.join(repr(c) for c in choices)}"
    return Param(default, help, expected, lambda v: _choice(v, choices), choices=choices)


def flag_param(default: bool, help: str) -> Param:
    """True or False."""
    return Param(default, help, "True or False", _flag)


def training_params(learning_rate: float = 0.001) -> dict[str, Param]:
    """``optimizer`` and ``learning_rate``: what every Keras model type takes."""
    return {"optimizer": choice_param("adam", "the Keras optimizer", OPTIMIZERS),
            "learning_rate": number_param(learning_rate, "the optimizer's learning rate", low=0.0, high=10.0,
                                          low_closed=False)}


def regularization_params() -> dict[str, Param]:
    """``l1`` and ``l2``: penalties on the dense layers' kernels."""
    return {"l1": number_param(0.0, "L1 penalty on the dense kernels", low=0.0),
            "l2": number_param(0.0, "L2 penalty on the dense kernels", low=0.0)}


__all__ = ["ACTIVATIONS", "OPTIMIZERS", "Param", "choice_param", "count_param", "describe_params",
           "did_you_mean", "flag_param", "fraction_param", "number_param", "regularization_params",
           "resolve_params", "training_params", "units_param"]
