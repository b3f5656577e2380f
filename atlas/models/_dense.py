"""Row models: linear and logistic regression, and fully connected networks (DNN)."""

from __future__ import annotations

from typing import ClassVar

from atlas.models._keras import KerasModel
from atlas.models._params import (
    ACTIVATIONS,
    Param,
    choice_param,
    flag_param,
    fraction_param,
    regularization_params,
    training_params,
    units_param,
)


class _Linear(KerasModel):
    sequence: ClassVar[bool | None] = False
    parameters: ClassVar[dict[str, Param]] = {**regularization_params(),
                                              **training_params(learning_rate=0.01)}

    def body(self, keras, inputs):
        return inputs  # the head alone: one linear layer (a softmax over classes for the classifier)


class LinearRegressor(_Linear):
    """Linear regression: one linear unit over the features, trained on the mean squared error.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("linear_regressor", {"l2": 0.01}, DataShape(n_features=4)).params["l2"]
        0.01
    """

    kind = "linear_regressor"
    task = "regression"
    summary = "linear regression (one linear unit), optional L1/L2 penalties"


class LogisticClassifier(_Linear):
    """Multinomial logistic regression: a softmax over the classes of one linear layer.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("logistic_classifier", {}, DataShape(n_features=4, n_classes=3)).task
        'classification'
    """

    kind = "logistic_classifier"
    task = "classification"
    summary = "multinomial logistic regression (softmax of one linear layer), optional L1/L2 penalties"


class _Dnn(KerasModel):
    sequence: ClassVar[bool | None] = False
    parameters: ClassVar[dict[str, Param]] = {
        "hidden_units": units_param([64, 32], "units of each hidden layer, first to last"),
        "activation": choice_param("relu", "the hidden layers' Keras activation", ACTIVATIONS),
        "dropout": fraction_param(0.0, "dropout rate after each hidden layer"),
        "batch_normalization": flag_param(False, "batch normalization before each hidden activation"),
        **regularization_params(),
        **training_params(),
    }

    def body(self, keras, inputs):
        x = inputs
        params = self.params
        for units in params["hidden_units"]:
            batch_norm = params["batch_normalization"]
            x = keras.layers.Dense(units, use_bias=not batch_norm,
                                   kernel_regularizer=self.regularizer(keras))(x)
            if batch_norm:
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation(params["activation"])(x)
            if params["dropout"]:
                x = keras.layers.Dropout(params["dropout"])(x)
        return x


class DnnRegressor(_Dnn):
    """A fully connected network with one linear output unit.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> model = make_model("dnn_regressor", {"hidden_units": [16]}, DataShape(n_features=4))
        >>> model.params["hidden_units"], model.params["dropout"]
        ([16], 0.0)
    """

    kind = "dnn_regressor"
    task = "regression"
    summary = "a fully connected network: hidden layers, activation, dropout, L1/L2, batch normalization"


class DnnClassifier(_Dnn):
    """A fully connected network ending in a softmax over the classes.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> model = make_model("dnn_classifier", {"hidden_units": [32, 16], "dropout": 0.2},
        ...                    DataShape(n_features=4, n_classes=3))
        >>> model.params["activation"], model.params["optimizer"]
        ('relu', 'adam')
    """

    kind = "dnn_classifier"
    task = "classification"
    summary = "a fully connected network: hidden layers, activation, dropout, L1/L2, batch normalization"


__all__ = ["DnnClassifier", "DnnRegressor", "LinearRegressor", "LogisticClassifier"]
