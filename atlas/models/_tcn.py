"""Temporal convolutional networks: residual blocks of dilated causal convolutions over windows.

Block ``i`` holds two ``Conv1D(filters, kernel_size, padding="causal", dilation_rate=2**i)`` layers, each
followed by the activation and dropout, and adds its input back (through a 1x1 convolution when the number of
channels changes), as in Bai, Kolter and Koltun (2018). Causal padding means an output at step ``t`` reads
steps ``<= t`` only; the last step's output feeds the head. The receptive field is
``1 + 2 * (kernel_size - 1) * (2**num_blocks - 1)`` steps: 61 with the defaults.
"""

from __future__ import annotations

from typing import ClassVar

from atlas.models._keras import KerasModel
from atlas.models._params import (
    ACTIVATIONS,
    Param,
    choice_param,
    count_param,
    fraction_param,
    training_params,
)


class _Tcn(KerasModel):
    sequence: ClassVar[bool | None] = True
    parameters: ClassVar[dict[str, Param]] = {
        "filters": count_param(32, "channels of every convolution"),
        "kernel_size": count_param(3, "steps each convolution reads, at its dilation", minimum=2),
        "num_blocks": count_param(4, "residual blocks; block i dilates by 2**i"),
        "dropout": fraction_param(0.0, "dropout rate after each convolution"),
        "activation": choice_param("relu", "the convolutions' Keras activation", ACTIVATIONS),
        **training_params(),
    }

    @property
    def receptive_field(self) -> int:
        """How many steps the last output reads: ``1 + 2 * (kernel_size - 1) * (2**num_blocks - 1)``."""
        return 1 + 2 * (self.params["kernel_size"] - 1) * (2 ** self.params["num_blocks"] - 1)

    def body(self, keras, inputs):
        layers, params = keras.layers, self.params
        x = inputs
        channels = self.shape.n_features
        for block in range(params["num_blocks"]):
            y = x
            for _ in range(2):
                y = layers.Conv1D(params["filters"], params["kernel_size"], padding="causal",
                                  dilation_rate=2**block)(y)
                y = layers.Activation(params["activation"])(y)
                if params["dropout"]:
                    y = layers.Dropout(params["dropout"])(y)
            skip = x if channels == params["filters"] else layers.Conv1D(params["filters"], 1)(x)
            x = layers.Activation(params["activation"])(layers.Add()([y, skip]))
            channels = params["filters"]
        last = layers.Cropping1D((self.shape.window - 1, 0))(x)  # the last step: (batch, 1, filters)
        return layers.Flatten()(last)


class TcnRegressor(_Tcn):
    """A temporal convolutional network over a window, then one linear unit.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("tcn_regressor", {}, DataShape(n_features=3, window=60)).receptive_field
        61
    """

    kind = "tcn_regressor"
    task = "regression"
    summary = "a temporal convolutional network: residual blocks of dilated causal Conv1D; the last step"


class TcnClassifier(_Tcn):
    """A temporal convolutional network over a window, then a softmax over the classes.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("tcn_classifier", {"num_blocks": 2}, DataShape(3, 2, window=16)).receptive_field
        13
    """

    kind = "tcn_classifier"
    task = "classification"
    summary = "a temporal convolutional network: residual blocks of dilated causal Conv1D; the last step"


__all__ = ["TcnClassifier", "TcnRegressor"]
