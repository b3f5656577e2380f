"""A feed-forward Keras network as a few NumPy steps: serving a dense model without Keras, or TensorFlow.

:class:`DenseNetwork` reads the weights of a network made of ``Dense``, ``BatchNormalization``, ``Dropout``,
``Activation``, ``Flatten`` and ``InputLayer`` layers once, folds every affine part it can into its neighbour
(a batch normalization in inference mode is a per-column scale and shift), and runs the forward pass with NumPy
in float64. It saves to one ``.npz`` file that loads with NumPy alone, so a dense model serves in a process that
never imports TensorFlow. This module imports no Keras: :meth:`DenseNetwork.from_keras` reads the layers it is
given by their class names and attributes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from atlas.exceptions import ConfigError

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return np.maximum(x, 0.0)
    out = np.where(x >= threshold, x, negative_slope * (x - threshold))
    return out if max_value is None else np.minimum(out, max_value)


#: The activations the NumPy path runs, by Keras' name (Keras' defaults for the options).
ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "linear": lambda x: x,
    "relu": _relu,
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "leaky_relu": lambda x, negative_slope=0.2: np.where(x >= 0, x, negative_slope * x),
    "elu": lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))).astype(np.float64)),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "silu": lambda x: x * _sigmoid(x),
    "hard_silu": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "mish": lambda x: x * np.tanh(np.logaddexp(0.0, x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "exponential": np.exp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}
_ALIASES = {"swish": "silu"}
_IDENTITY_LAYERS = {"InputLayer", "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise",
                    "SpatialDropout1D", "ActivityRegularization"}


class DenseNetwork:
    """A feed-forward network as NumPy steps: affine maps, per-column scales, activations and flattening.

    Example:
        >>> import numpy as np
        >>> steps = [{"kind": "affine", "weights": np.array([[1.0, -1.0]]), "bias": np.zeros(2)},
        ...          {"kind": "activation", "name": "relu", "options": {}}]
        >>> network = DenseNetwork(steps, input_shape=(1,))
        >>> network.forward(np.array([[2.0], [-3.0]])).tolist()
        [[2.0, 0.0], [0.0, 3.0]]
        >>> network.predictor(proba=False)(np.array([2.0])).tolist()
        [2.0, 0.0]

    A Keras network: ``DenseNetwork.from_keras(keras_model)``; to serve it without TensorFlow,
    ``network.save("dense.npz")`` and later ``DenseNetwork.load("dense.npz")``.

    Args:
        steps: in order, dicts of ``kind`` ``"affine"`` (``weights`` (in, out), ``bias`` (out,)), ``"scale"``
            (``scale``, ``shift``, per column), ``"activation"`` (``name`` among :data:`ACTIVATIONS`,
            ``options``) or ``"flatten"``.
        input_shape: one input's shape, ``(n_features,)`` or ``(window, n_features)``.
    """

    def __init__(self, steps: list[dict], input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(int(n) for n in input_shape)
        self.steps = _fold([dict(step) for step in steps])
        self._functions = tuple(_function(step) for step in self.steps)

    @property
    def output_activation(self) -> str:
        """The name of the last activation ("linear" when an affine step comes after it, or there is none)."""
        for step in reversed(self.steps):
            if step["kind"] == "activation":
                return step["name"]
            if step["kind"] in ("affine", "scale"):
                return "linear"
        return "linear"

    @classmethod
    def from_keras(cls, keras_model) -> DenseNetwork:
        """Reads a Keras ``Sequential``, or a functional chain, of dense layers.

        Raises:
            ConfigError: a layer the NumPy path cannot run (its name and class), a branching graph, or an
                input shape that is not fixed; ``compile_predictor`` then uses the TensorFlow graph path.
        """
        input_shape = _fixed_input_shape(keras_model)
        layers = list(keras_model.layers)
        _check_chain(keras_model, layers)
        steps = []
        for layer in layers:
            steps.extend(_layer_steps(layer))
        return cls(steps, input_shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's output for a batch, ``(n, *input_shape)``, computed in float64."""
        x = np.asarray(x, dtype=np.float64)
        for function in self._functions:
            x = function(x)
        return x

    def predictor(self, *, proba: bool) -> Callable[[np.ndarray], np.ndarray]:
        """A callable for one input of :attr:`input_shape`, returning a 1-d array.

        With ``proba``, a one-unit output (a sigmoid) becomes the two columns ``[1 - p, p]``.
        """
        functions, shape = self._functions, self.input_shape

        def predict_one(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, dtype=np.float64)
            if x.shape != shape:
                msg = f"the predictor takes one input of shape {shape}, got shape {x.shape}"
                raise ConfigError(msg)
            x = x[None]
            for function in functions:
                x = function(x)
            x = x.reshape(-1)
            return np.concatenate([1.0 - x, x]) if proba and x.shape[0] == 1 else x

        return predict_one

    def save(self, path: Path | str) -> None:
        """Writes the network to one ``.npz`` file (arrays, and the steps' description as JSON text)."""
        arrays, described = {}, []
        for number, step in enumerate(self.steps):
            entry = {key: value for key, value in step.items() if not isinstance(value, np.ndarray)}
            entry["arrays"] = {key: f"{number}_{key}" for key, value in step.items()
                               if isinstance(value, np.ndarray)}
            arrays.update({name: step[key] for key, name in entry["arrays"].items()})
            described.append(entry)
        spec = {"format": 1, "input_shape": list(self.input_shape), "steps": described}
        with open(path, "wb") as file:  # np.savez would add ".npz" to a name without it
            np.savez(file, spec=np.array(json.dumps(spec)), **arrays)

    @classmethod
    def load(cls, path: Path | str) -> DenseNetwork:
        """The network saved by :meth:`save` (NumPy only; nothing is unpickled)."""
        with np.load(path, allow_pickle=False) as data:
            spec = json.loads(str(data["spec"]))
            steps = [{**{key: value for key, value in step.items() if key != "arrays"},
                      **{key: data[name] for key, name in step["arrays"].items()}} for step in spec["steps"]]
        return cls(steps, tuple(spec["input_shape"]))

    def __repr__(self) -> str:
        kinds = ", ".join(s["name"] if s["kind"] == "activation" else s["kind"] for s in self.steps)
        return f"DenseNetwork(input_shape={self.input_shape}, steps=[{kinds}])"


def _fixed_input_shape(keras_model) -> tuple[int, ...]:
    try:
        shape = tuple(keras_model.inputs[0].shape[1:])
        several = len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1
    except (AttributeError, ValueError, TypeError, IndexError):
        msg = (f"the fast path needs a built model with a fixed input shape; {type(keras_model).__name__} "
               f"has none: start it with keras.Input(shape=(n_features,)) or (window, n_features)")
        raise ConfigError(msg) from None
    if several:
        msg = "the fast path takes a model with one input and one output"
        raise ConfigError(msg)
    if any(n is None for n in shape):
        msg = f"the fast path needs a fixed input shape, got {shape}; give keras.Input every size but the batch"
        raise ConfigError(msg)
    return tuple(int(n) for n in shape)


def _check_chain(keras_model, layers) -> None:
    """A Sequential is a chain; a functional model is one when each layer reads the one before it."""
    if type(keras_model).__name__ == "Sequential":
        return
    for before, layer in zip(layers, layers[1:], strict=False):
        nodes = getattr(layer, "_inbound_nodes", [])
        sources = [t._keras_history.operation for t in nodes[0].input_tensors] if len(nodes) == 1 else []
        if len(sources) != 1 or sources[0] is not before:
            msg = f"layer {layer.name!r} does not read the layer before it: the NumPy path runs chains only"
            raise ConfigError(msg)


def _activation_step(function, where: str) -> dict:
    name = "linear" if function is None else getattr(function, "__name__", "")
    name = _ALIASES.get(name, name)
    module = "keras" if function is None else getattr(function, "__module__", "") or ""
    if name not in ACTIVATIONS or not module.startswith("keras"):
        msg = f"{where}: activation {function!r} is not one the NumPy path runs ({sorted(ACTIVATIONS)})"
        raise ConfigError(msg)
    return {"kind": "activation", "name": name, "options": {}}


def _array(value) -> np.ndarray:
    return np.array(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)


def _layer_steps(layer) -> list[dict]:
    kind, where = type(layer).__name__, f"layer {layer.name!r} ({type(layer).__name__})"
    if kind in _IDENTITY_LAYERS:
        return []
    if kind == "Dense":
        if getattr(layer, "quantization_mode", None) is not None:
            msg = f"{where} is quantized; the NumPy path runs float weights only"
            raise ConfigError(msg)
        weights = _array(layer.kernel)
        bias = _array(layer.bias) if layer.use_bias else np.zeros(weights.shape[1])
        return [{"kind": "affine", "weights": weights, "bias": bias}, _activation_step(layer.activation, where)]
    if kind == "BatchNormalization":
        rank = len(layer.input.shape) if getattr(layer, "_inbound_nodes", None) else None
        if not isinstance(layer.axis, int) or layer.axis not in (-1, (rank or 0) - 1):
            msg = f"{where} normalizes axis {layer.axis}; the NumPy path folds the last axis only"
            raise ConfigError(msg)
        scale = 1.0 / np.sqrt(_array(layer.moving_variance) + layer.epsilon)
        if layer.scale:
            scale = scale * _array(layer.gamma)
        shift = -_array(layer.moving_mean) * scale + (_array(layer.beta) if layer.center else 0.0)
        return [{"kind": "scale", "scale": scale, "shift": shift}]
    if kind == "Activation":
        return [_activation_step(layer.activation, where)]
    if kind == "ReLU":
        options = {"negative_slope": float(layer.negative_slope), "threshold": float(layer.threshold),
                   "max_value": None if layer.max_value is None else float(layer.max_value)}
        return [{"kind": "activation", "name": "relu", "options": options}]
    if kind == "LeakyReLU":
        return [{"kind": "activation", "name": "leaky_relu", "options": {"negative_slope": float(
            layer.negative_slope)}}]
    if kind == "Flatten" and getattr(layer, "data_format", "channels_last") == "channels_last":
        return [{"kind": "flatten"}]
    msg = f"{where} is not a layer the NumPy path runs (Dense, BatchNormalization, Dropout, Activation, Flatten)"
    raise ConfigError(msg)


def _fold(steps: list[dict]) -> list[dict]:
    """Merges neighbouring affine maps and scales into one affine map; drops identity activations."""
    out: list[dict] = []
    for step in steps:
        if step["kind"] == "activation" and step["name"] == "linear":
            continue
        last = out[-1] if out else None
        if last is None or step["kind"] not in ("affine", "scale") or last["kind"] not in ("affine", "scale"):
            out.append(step)
            continue
        if last["kind"] == "affine" and step["kind"] == "scale":  # (x W + b) s + t
            merged = {"kind": "affine", "weights": last["weights"] * step["scale"],
                      "bias": last["bias"] * step["scale"] + step["shift"]}
        elif last["kind"] == "scale" and step["kind"] == "affine":  # (x s + t) W + b
            merged = {"kind": "affine", "weights": last["scale"][:, None] * step["weights"],
                      "bias": last["shift"] @ step["weights"] + step["bias"]}
        elif last["kind"] == "scale":  # (x s1 + t1) s2 + t2
            merged = {"kind": "scale", "scale": last["scale"] * step["scale"],
                      "shift": last["shift"] * step["scale"] + step["shift"]}
        else:  # (x W1 + b1) W2 + b2
            merged = {"kind": "affine", "weights": last["weights"] @ step["weights"],
                      "bias": last["bias"] @ step["weights"] + step["bias"]}
        out[-1] = merged
    return out


def _function(step: dict) -> Callable[[np.ndarray], np.ndarray]:
    kind = step["kind"]
    if kind == "affine":
        weights = np.ascontiguousarray(step["weights"], dtype=np.float64)
        bias = np.asarray(step["bias"], dtype=np.float64)
        return lambda x: x @ weights + bias
    if kind == "scale":
        scale, shift = np.asarray(step["scale"], np.float64), np.asarray(step["shift"], np.float64)
        return lambda x: x * scale + shift
    if kind == "flatten":
        return lambda x: x.reshape(x.shape[0], -1)
    if kind == "activation":
        if step["name"] not in ACTIVATIONS:
            msg = f"unknown activation {step['name']!r}; the NumPy path runs {sorted(ACTIVATIONS)}"
            raise ConfigError(msg)
        function, options = ACTIVATIONS[step["name"]], dict(step.get("options") or {})
        return (lambda x: function(x, **options)) if options else function
    msg = f"unknown step kind {kind!r}; expected affine, scale, activation or flatten"
    raise ConfigError(msg)


__all__ = ["ACTIVATIONS", "DenseNetwork"]
