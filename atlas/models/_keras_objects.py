"""The Keras classes Atlas defines: a learned positional embedding, and the bridge to per-epoch callbacks.

Importing this module imports Keras (and TensorFlow), so only code that builds, trains or loads a Keras model
imports it. Its layers are registered as serializable under the package ``"atlas"``, so a saved ``.keras``
file that holds one loads in a fresh process once this module is imported (``KerasModel.load`` does that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from atlas.models._base import EpochCallback


@keras.saving.register_keras_serializable(package="atlas")
class PositionalEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to a sequence: ``x[:, t, :] + embedding[t]``.

    Example:
        >>> layer = PositionalEmbedding(sequence_length=5)
        >>> tuple(layer(keras.ops.zeros((2, 5, 3))).shape)
        (2, 5, 3)

    Args:
        sequence_length: positions per sequence (the window).
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``).
    """

    def __init__(self, sequence_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)

    def build(self, input_shape) -> None:
        self.embedding = self.add_weight(name="embedding", shape=(self.sequence_length, input_shape[-1]),
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, inputs):
        return inputs + keras.ops.expand_dims(keras.ops.cast(self.embedding, inputs.dtype), 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sequence_length": self.sequence_length}


class EpochBridge(keras.callbacks.Callback):
    """Calls each :data:`~atlas.models.EpochCallback` after every epoch; stops training when one returns True.

    Example:
        >>> seen = []
        >>> bridge = EpochBridge([lambda epoch, logs: seen.append(epoch) or epoch >= 1])
        >>> bridge.stopped
        False

    Args:
        callbacks: called as ``callback(epoch, logs)`` with plain float logs (``loss``, ``val_loss``, ...).
    """

    def __init__(self, callbacks: Sequence[EpochCallback]) -> None:
        super().__init__()
        self.callbacks = tuple(callbacks)
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        values = {name: float(value) for name, value in (logs or {}).items()}
        for callback in self.callbacks:
            if callback(epoch, dict(values)):
                self.stopped = True
        if self.stopped:
            self.model.stop_training = True


__all__ = ["EpochBridge", "PositionalEmbedding"]
