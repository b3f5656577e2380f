"""Single-input inference fit for serving a tick: no Keras ``predict`` overhead.

Keras' ``model.predict`` builds a data adapter, an iterator and a callback list on every call: tens of
milliseconds for one row. :func:`compile_predictor` gives a plain callable instead:

* a network of dense layers (``Dense``, ``BatchNormalization``, ``Dropout``, ``Activation``, ``Flatten``) runs as
  a few NumPy steps (:class:`~atlas.models._numpy_network.DenseNetwork`): tens of microseconds a row;
* any other network (LSTM, GRU, Conv1D, attention) runs as a TensorFlow graph traced once for one input of a
  fixed shape, called directly: no Keras ``predict``, no retracing.

``benchmarks/inference_latency.py`` measures both paths against ``model.predict`` and ``model(x)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from atlas.exceptions import ConfigError
from atlas.models._numpy_network import DenseNetwork, _fixed_input_shape

#: What ``Predictor.path`` says: the NumPy steps, or a traced TensorFlow graph.
PATHS = ("numpy", "graph")
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")
_RECURRENT_LAYERS = {"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D"}


class Predictor:
    """One input in, a 1-d array out: class probabilities (``proba=True``) or the network's output values.

    Made by :func:`compile_predictor` or :meth:`from_network`; call it with one input of :attr:`input_shape`.

    Example:
        >>> import numpy as np
        >>> from atlas.models._numpy_network import DenseNetwork, _fixed_input_shape
        >>> network = DenseNetwork([{"kind": "affine", "weights": np.eye(2), "bias": np.zeros(2)},
        ...                         {"kind": "activation", "name": "softmax", "options": {}}], input_shape=(2,))
        >>> predictor = Predictor.from_network(network, proba=True)
        >>> predictor.path, predictor(np.array([0.0, 0.0])).tolist()
        ('numpy', [0.5, 0.5])

    Attributes:
        path: ``"numpy"`` or ``"graph"``.
        input_shape: one input's shape, ``(n_features,)`` or ``(window, n_features)``.
        proba: whether it returns class probabilities (a one-unit sigmoid becomes ``[1 - p, p]``).
        network: the :class:`DenseNetwork` of the NumPy path (None on the graph path): save it to serve the
            model without TensorFlow.
    """

    __slots__ = ("_function", "input_shape", "network", "path", "proba")

    def __init__(self, function: Callable[[np.ndarray], np.ndarray], *, path: str, input_shape: tuple[int, ...],
                 proba: bool, network: DenseNetwork | None = None) -> None:
        self._function = function
        self.path, self.input_shape, self.proba, self.network = path, tuple(input_shape), proba, network

    @classmethod
    def from_network(cls, network: DenseNetwork, *, proba: bool) -> Predictor:
        """The NumPy path of a saved or read :class:`DenseNetwork` (no Keras, no TensorFlow)."""
        if proba:
            _check_probabilities(network.output_activation)
        return cls(network.predictor(proba=proba), path="numpy", input_shape=network.input_shape, proba=proba,
                   network=network)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._function(x)

    def __repr__(self) -> str:
        return f"Predictor(path={self.path!r}, input_shape={self.input_shape}, proba={self.proba})"


def compile_predictor(keras_model, *, proba: bool, jit_compile: bool | None = None, check: bool = True
                      ) -> Predictor:
    """A fast callable for one input of a Keras model: what serving calls on every tick.

    A network of dense layers runs in NumPy (float64); any other runs as a TensorFlow graph traced for one input.
    Both give what ``keras_model(x[None], training=False)[0]`` gives (as float64, flattened to 1-d); with
    ``check``, the NumPy path is compared with Keras once on random inputs here and, if they differ (a layer
    it misreads), the graph path is used instead.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
        ...                           keras.layers.Dense(3, activation="softmax")])
        >>> predictor = compile_predictor(model, proba=True)
        >>> x = np.arange(4.0)
        >>> predictor.path, np.allclose(predictor(x), model(x[None], training=False)[0], atol=1e-6)
        ('numpy', True)

    Args:
        keras_model: a built Keras model with one input of a fixed shape (``keras.Input(shape=...)``).
        proba: the model outputs class probabilities (a softmax, or a sigmoid for one unit, which becomes
            ``[1 - p, p]``); False returns the output values (regression).
        jit_compile: compile the graph path with XLA; None: for recurrent networks only (see
            :func:`graph_predictor`).
        check: compare the NumPy path with Keras once before trusting it.

    Returns:
        A :class:`Predictor`; its ``path`` says which path it took.

    Raises:
        ConfigError: the model has no fixed input shape, several inputs or outputs, or ``proba`` is asked of a
            model whose last activation is not a softmax or a sigmoid.
    """
    try:
        network = DenseNetwork.from_keras(keras_model)
    except ConfigError:
        network = None
    if network is not None and (not check or _agrees(network, keras_model)):
        return Predictor.from_network(network, proba=proba)
    return graph_predictor(keras_model, proba=proba, jit_compile=jit_compile)


def graph_predictor(keras_model, *, proba: bool, jit_compile: bool | None = None) -> Predictor:
    """The graph path for any Keras model: a ``tf.function`` traced once for one input, called directly.

    Calling the traced graph (a concrete function) skips the argument matching of a ``tf.function`` call and
    all of Keras' ``predict``. One call on zeros here traces (and compiles) it, so the first tick does not pay.
    TensorFlow's thread pools are process settings: a serving process that wants one core sets
    ``tf.config.threading.set_intra_op_parallelism_threads(1)`` (and inter-op) before its first TensorFlow op.

    Args:
        keras_model: a built Keras model with one input of a fixed shape.
        proba: as :func:`compile_predictor`.
        jit_compile: compile with XLA; None: for recurrent networks (LSTM, GRU), whose step loop XLA fuses
            (about 4x faster for one window), and not for others; when XLA cannot compile the model, the plain
            graph is used.
    """
    import tensorflow as tf

    input_shape = _fixed_input_shape(keras_model)
    if proba:
        _check_probabilities(_last_activation(keras_model))
    dtype = np.dtype(keras_model.inputs[0].dtype or "float32")
    if jit_compile is None:
        jit_compile = any(type(layer).__name__ in _RECURRENT_LAYERS for layer in _all_layers(keras_model))
    spec = tf.TensorSpec((1, *input_shape), dtype=dtype.name)

    def trace(xla: bool):
        graph = tf.function(lambda x: keras_model(x, training=False), input_signature=[spec], autograph=False,
                            jit_compile=xla).get_concrete_function()
        graph(tf.zeros((1, *input_shape), dtype=dtype.name))  # traces, and compiles with XLA
        return graph

    try:
        graph = trace(jit_compile)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        if not jit_compile:
            raise
        graph = trace(False)  # an op XLA cannot compile

    def predict_one(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=dtype)
        if x.shape != input_shape:
            msg = f"the predictor takes one input of shape {input_shape}, got shape {x.shape}"
            raise ConfigError(msg)
        out = graph(tf.constant(x[None])).numpy().astype(np.float64).reshape(-1)
        return np.concatenate([1.0 - out, out]) if proba and out.shape[0] == 1 else out

    return Predictor(predict_one, path="graph", input_shape=input_shape, proba=proba)


def _all_layers(keras_model) -> list:
    """Every layer, those of nested models and those wrapped (``Bidirectional``, ``TimeDistributed``) included."""
    found = []
    for layer in getattr(keras_model, "layers", []):
        wrapped = [getattr(layer, name) for name in ("layer", "forward_layer", "backward_layer") if
                   hasattr(layer, name)]
        found += [layer, *_all_layers(layer), *wrapped]
    return found


def _last_activation(keras_model) -> str | None:
    """The name of the last layer's Keras activation, when it has one (None: unknown, trusted)."""
    function = getattr(keras_model.layers[-1], "activation", None) if keras_model.layers else None
    if not (getattr(function, "__module__", None) or "").startswith("keras"):
        return None  # no activation, or one of the user's own
    return "silu" if function.__name__ == "swish" else function.__name__


def _check_probabilities(activation: str | None) -> None:
    if activation is not None and activation not in _PROBABILITY_ACTIVATIONS:
        msg = (f"proba=True needs a model whose output is class probabilities (a softmax, or a sigmoid for one "
               f"unit); its last activation is {activation!r}: end it with activation='softmax', or pass "
               f"proba=False for its raw output")
        raise ConfigError(msg)


def _agrees(network: DenseNetwork, keras_model, *, samples: int = 8) -> bool:
    """Whether the NumPy steps give Keras' numbers on a few random inputs (seeded: the same every time)."""
    x = np.random.default_rng(0).normal(size=(samples, *network.input_shape)).astype(np.float32)
    expected = np.asarray(keras_model(x, training=False), dtype=np.float64)
    got = network.forward(x)
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=1e-4, atol=1e-5))


__all__ = ["PATHS", "Predictor", "compile_predictor", "graph_predictor"]
