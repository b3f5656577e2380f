"""A small Transformer encoder over windows: projection, learned positions, pre-norm attention, pooling.

The window's rows are projected to ``d_model`` channels, a learned embedding per position is added, and
``num_layers`` blocks follow, each self-attention (``num_heads`` heads) and a feed-forward layer, both with a
residual connection and layer normalization before them. Every position may attend to every other: the whole
window is the past of the row it predicts for. ``pooling`` turns the sequence into one vector: the mean over
positions (``"average"``) or the last position (``"last"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from atlas.exceptions import ConfigError
from atlas.models._keras import KerasModel
from atlas.models._params import Param, choice_param, count_param, fraction_param, training_params


class _Transformer(KerasModel):
    sequence: ClassVar[bool | None] = True
    parameters: ClassVar[dict[str, Param]] = {
        "d_model": count_param(32, "channels of the encoder (a multiple of num_heads)"),
        "num_heads": count_param(2, "attention heads, each with d_model // num_heads channels"),
        "feedforward_units": count_param(64, "units of each block's feed-forward layer"),
        "num_layers": count_param(1, "encoder blocks"),
        "dropout": fraction_param(0.0, "dropout rate of the attention weights and after each block's parts"),
        "pooling": choice_param("average", "sequence to vector: mean over positions, or the last one",
                                ("average", "last")),
        **training_params(),
    }

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["d_model"] % params["num_heads"]:
            d_model, heads = params["d_model"], params["num_heads"]
            msg = (f"{cls.kind}: d_model must be a multiple of num_heads, got d_model={d_model} and "
                   f"num_heads={heads}; e.g. d_model={heads * 16}")
            raise ConfigError(msg)

    def body(self, keras, inputs):
        from atlas.models._keras_objects import PositionalEmbedding

        layers, params = keras.layers, self.params
        d_model, rate = params["d_model"], params["dropout"]
        x = layers.Dense(d_model)(inputs)
        x = PositionalEmbedding(self.shape.window)(x)
        for _ in range(params["num_layers"]):
            h = layers.LayerNormalization(epsilon=1e-6)(x)
            heads = params["num_heads"]
            h = layers.MultiHeadAttention(heads, d_model // heads, dropout=rate)(h, h)
            x = layers.Add()([x, layers.Dropout(rate)(h)])
            h = layers.LayerNormalization(epsilon=1e-6)(x)
            h = layers.Dense(params["feedforward_units"], activation="gelu")(h)
            h = layers.Dense(d_model)(layers.Dropout(rate)(h))
            x = layers.Add()([x, layers.Dropout(rate)(h)])
        x = layers.LayerNormalization(epsilon=1e-6)(x)
        if params["pooling"] == "average":
            return layers.GlobalAveragePooling1D()(x)
        return layers.Flatten()(layers.Cropping1D((self.shape.window - 1, 0))(x))


class TransformerRegressor(_Transformer):
    """A small Transformer encoder over a window, then one linear unit.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> make_model("transformer_regressor", {"d_model": 16}, DataShape(3, window=30)).params["d_model"]
        16
    """

    kind = "transformer_regressor"
    task = "regression"
    summary = "a small Transformer encoder: learned positions, pre-norm self-attention blocks, pooling"


class TransformerClassifier(_Transformer):
    """A small Transformer encoder over a window, then a softmax over the classes.

    Example:
        >>> from atlas.models import DataShape, make_model
        >>> model = make_model("transformer_classifier", {"pooling": "last"}, DataShape(3, 2, window=30))
        >>> model.params["pooling"], model.params["d_model"]
        ('last', 32)
    """

    kind = "transformer_classifier"
    task = "classification"
    summary = "a small Transformer encoder: learned positions, pre-norm self-attention blocks, pooling"


__all__ = ["TransformerClassifier", "TransformerRegressor"]
