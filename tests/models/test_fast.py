"""The single-input fast path: NumPy steps for dense networks, a traced graph for the others, both equal to Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from atlas.exceptions import ConfigError
from atlas.models._fast import Predictor, compile_predictor
from atlas.models._numpy_network import ACTIVATIONS, DenseNetwork

layers = keras.layers
RNG = np.random.default_rng(0)


def keras_output(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x[None].astype(np.float32), training=False), dtype=np.float64)[0].reshape(-1)


def randomize_batch_norm(model) -> None:
    """Moving statistics and scales far from the defaults, so that folding them is really tested."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(RNG.normal(size=n))
            layer.moving_variance.assign(RNG.uniform(0.5, 2.0, size=n))
            if layer.scale:
                layer.gamma.assign(RNG.uniform(0.5, 1.5, size=n))
            if layer.center:
                layer.beta.assign(RNG.normal(size=n))


def dnn(activation: str = "relu", n_features: int = 20, n_classes: int = 3):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((n_features,)),
        layers.Dense(64, activation=activation), layers.BatchNormalization(), layers.Dropout(0.3),
        layers.Dense(32), layers.BatchNormalization(), layers.Activation(activation),
        layers.Dense(n_classes, activation="softmax"),
    ])
    randomize_batch_norm(model)
    return model


KERAS_ACTIVATIONS = ["relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "silu", "linear", "leaky_relu",
                     "softplus", "softsign", "relu6", "hard_sigmoid", "hard_silu", "mish", "log_softmax"]


@pytest.mark.parametrize("activation", KERAS_ACTIVATIONS)
def test_a_dense_network_runs_in_numpy_and_gives_keras_numbers(activation):
    model = dnn(activation)
    predictor = compile_predictor(model, proba=True)
    assert predictor.path == "numpy" and predictor.input_shape == (20,)
    for x in RNG.normal(size=(5, 20)) * 3:
        got = predictor(x)
        assert got.shape == (3,) and got.dtype == np.float64
        np.testing.assert_allclose(got, keras_output(model, x), rtol=1e-5, atol=1e-6)
        assert got.sum() == pytest.approx(1.0)


def test_every_activation_of_the_numpy_path_is_tested():
    assert set(ACTIVATIONS) - {"exponential", "softmax"} == set(KERAS_ACTIVATIONS) - {"swish"}


def test_batch_normalization_and_dense_layers_fold_into_few_steps():
    network = DenseNetwork.from_keras(dnn("relu"))
    kinds = [s["kind"] if s["kind"] != "activation" else s["name"] for s in network.steps]
    # Dense, BN (folded into it), Dropout (gone), Dense + BN (one affine), relu, Dense + softmax
    assert kinds == ["affine", "relu", "affine", "relu", "affine", "softmax"]


def test_a_functional_chain_with_activation_layers_and_normalization_first():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((12,))
    x = layers.BatchNormalization()(inputs)  # a scale before a Dense folds into its weights
    x = layers.Dense(16)(x)
    x = layers.LeakyReLU(negative_slope=0.1)(x)
    x = layers.Dense(8)(x)
    x = layers.ReLU(max_value=1.5, threshold=0.1, negative_slope=0.05)(x)
    x = layers.GaussianNoise(0.5)(x)
    outputs = layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    randomize_batch_norm(model)
    predictor = compile_predictor(model, proba=False)
    assert predictor.path == "numpy"
    for x in RNG.normal(size=(5, 12)):
        np.testing.assert_allclose(predictor(x), keras_output(model, x), rtol=1e-5, atol=1e-6)
        assert predictor(x).shape == (1,)


def test_a_windowed_dense_network_flattens_its_window():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((10, 4)), layers.Dense(6, activation="tanh"), layers.Flatten(),
                              layers.Dense(3, activation="softmax")])
    predictor = compile_predictor(model, proba=True)
    assert predictor.path == "numpy" and predictor.input_shape == (10, 4)
    x = RNG.normal(size=(10, 4))
    np.testing.assert_allclose(predictor(x), keras_output(model, x), rtol=1e-5, atol=1e-6)


def test_one_sigmoid_unit_gives_two_class_probabilities():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(4, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    x = RNG.normal(size=5)
    p = keras_output(model, x)[0]
    np.testing.assert_allclose(compile_predictor(model, proba=True)(x), [1 - p, p], rtol=1e-5)
    np.testing.assert_allclose(compile_predictor(model, proba=False)(x), [p], rtol=1e-5)


def test_probabilities_of_a_network_without_softmax_are_refused():
    model = keras.Sequential([keras.Input((5,)), layers.Dense(3)])
    with pytest.raises(ConfigError, match="proba=True needs .* last activation is 'linear'"):
        compile_predictor(model, proba=True)
    lstm = keras.Sequential([keras.Input((4, 2)), layers.LSTM(3), layers.Dense(2)])
    with pytest.raises(ConfigError, match="activation='softmax'"):
        compile_predictor(lstm, proba=True)


def test_a_saved_network_loads_with_numpy_alone_and_predicts_the_same(tmp_path):
    model = dnn("gelu")
    predictor = compile_predictor(model, proba=True)
    predictor.network.save(tmp_path / "dense.npz")
    loaded = Predictor.from_network(DenseNetwork.load(tmp_path / "dense.npz"), proba=True)
    x = RNG.normal(size=(7, 20))
    assert all(np.array_equal(loaded(row), predictor(row)) for row in x)
    assert np.array_equal(loaded.network.forward(x), predictor.network.forward(x))


@pytest.mark.parametrize("kind", ["lstm", "gru", "conv1d"])
def test_other_networks_run_as_a_traced_graph_and_give_keras_numbers(kind):
    keras.utils.set_random_seed(5)
    body = {"lstm": [layers.LSTM(16)], "gru": [layers.GRU(8, return_sequences=True), layers.GRU(8)],
            "conv1d": [layers.Conv1D(8, 3, activation="relu"), layers.GlobalAveragePooling1D()]}[kind]
    model = keras.Sequential([keras.Input((30, 6)), *body, layers.Dense(3, activation="softmax")])
    predictor = compile_predictor(model, proba=True)
    assert predictor.path == "graph" and predictor.input_shape == (30, 6)
    for x in RNG.normal(size=(3, 30, 6)):
        np.testing.assert_allclose(predictor(x), keras_output(model, x), rtol=1e-5, atol=1e-6)
    without_xla = compile_predictor(model, proba=True, jit_compile=False)
    np.testing.assert_allclose(without_xla(x), keras_output(model, x), rtol=1e-5, atol=1e-6)


def test_a_branching_network_or_a_custom_activation_takes_the_graph_path():
    keras.utils.set_random_seed(6)
    inputs = keras.Input((8,))
    hidden = layers.Dense(8, activation="relu")(inputs)
    outputs = layers.Dense(2, activation="softmax")(layers.Add()([inputs, hidden]))
    residual = keras.Model(inputs, outputs)
    custom = keras.Sequential([keras.Input((8,)), layers.Dense(4, activation=lambda v: v * 0.5),
                               layers.Dense(2, activation="softmax")])
    x = RNG.normal(size=8)
    for model in (residual, custom):
        predictor = compile_predictor(model, proba=True)
        assert predictor.path == "graph"
        np.testing.assert_allclose(predictor(x), keras_output(model, x), rtol=1e-5, atol=1e-6)


def test_inputs_of_the_wrong_shape_and_models_without_one_are_errors():
    predictor = compile_predictor(dnn(), proba=True)
    with pytest.raises(ConfigError, match=r"one input of shape \(20,\), got shape \(1, 20\)"):
        predictor(np.zeros((1, 20)))
    graph = compile_predictor(keras.Sequential([keras.Input((4, 2)), layers.LSTM(2)]), proba=False)
    with pytest.raises(ConfigError, match=r"shape \(4, 2\), got shape \(2, 4\)"):
        graph(np.zeros((2, 4)))
    with pytest.raises(ConfigError, match="fixed input shape"):
        compile_predictor(keras.Sequential([keras.Input((None, 3)), layers.LSTM(2)]), proba=False)
    with pytest.raises(ConfigError, match=r"keras.Input\(shape="):
        compile_predictor(keras.Sequential([layers.Dense(2)]), proba=False)
