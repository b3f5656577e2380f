"""Recurrent sequence models: stacked LSTM and GRU layers over windows (samples, window, n_features).

Every layer but the last returns its whole sequence to the next; the last one's final state feeds the head. A
window ends at the row it predicts for (``atlas.data.dataset.sequence_windows``), so it holds no later row.
"""

from __future__ import annotations

from typing import ClassVar

from atlas.models._keras import KerasModel
from atlas.models._params import Param, fraction_param, training_params, units_param


class _Recurrent(KerasModel):
    sequence: ClassVar[bool | None] = True
    #: The Keras layer class name: "LSTM" or "GRU".
    cell: ClassVar[str]
    parameters: ClassVar[dict[str, Param]] = {
        "units": units_param([32], "units of each stacked recurrent layer, first to last"),
        "dropout": fraction_param(0.0, "dropout rate of each layer's inputs"),
        "recurrent_dropout": fraction_param(0.0, "dropout rate of the recurrent state (> 0: no cuDNN)"),
        **training_params(),
    }

    def body(self, keras, inputs):
        layer = getattr(keras.layers, self.cell)
        x = inputs
        units = self.params["units"]
        for position, size in enumerate(units):
            x = layer(size, return_sequences=position < len(units) - 1, dropout=self.params["dropout"],
                      recurrent_dropout=self.params["recurrent_dropout"])(x)
        return x


class LstmRegressor(_Recurrent):
    """Stacked LSTM layers over a window, then one linear unit.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("lstm_regressor", {"units": [32, 16]}, DataShape(n_features=3, window=30)).sequence
        True
    """

    kind = "lstm_regressor"
    task = "regression"
    cell = "LSTM"
    summary = "stacked LSTM layers over sequence windows; the last layer's final state feeds the head"


class LstmClassifier(_Recurrent):
    """Stacked LSTM layers over a window, then a softmax over the classes.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("lstm_classifier", {}, DataShape(n_features=3, n_classes=2, window=30)).params["units"]
        [32]
    """

    kind = "lstm_classifier"
    task = "classification"
    cell = "LSTM"
    summary = "stacked LSTM layers over sequence windows; the last layer's final state feeds the head"


class GruRegressor(_Recurrent):
    """Stacked GRU layers over a window, then one linear unit.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("gru_regressor", {"dropout": 0.1}, DataShape(3, window=30)).params["dropout"]
        0.1
    """

    kind = "gru_regressor"
    task = "regression"
    cell = "GRU"
    summary = "stacked GRU layers over sequence windows; the last layer's final state feeds the head"


class GruClassifier(_Recurrent):
    """Stacked GRU layers over a window, then a softmax over the classes.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("gru_classifier", {}, DataShape(n_features=3, n_classes=3, window=30)).kind
        'gru_classifier'
    """

    kind = "gru_classifier"
    task = "classification"
    cell = "GRU"
    summary = "stacked GRU layers over sequence windows; the last layer's final state feeds the head"


__all__ = ["GruClassifier", "GruRegressor", "LstmClassifier", "LstmRegressor"]
