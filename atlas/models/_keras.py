"""KerasModel: the base of every Keras model type; it builds, trains, predicts, saves and loads.

A model type only says how its body turns the inputs into features (:meth:`KerasModel.body`); this base
adds the head (a softmax over the classes, or one linear unit), the loss, the optimizer and everything around
training.
Keras and TensorFlow are imported inside the methods, so defining a model type does not load them.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from atlas.exceptions import ConfigError
from atlas.models._base import DataShape, EpochCallback, FitOptions, History, Model
from atlas.models._manifest import read_manifest, write_manifest
from atlas.models._runtime import configure

KERAS_FILE = "model.keras"


class KerasModel(Model):
    """A model whose network is a ``keras.Model``, built on the first :meth:`fit` from its params and shape.

    Classifiers end in a softmax over ``n_classes``, trained with sparse categorical cross-entropy (metric
    ``accuracy``); regressors end in one linear unit, trained with the mean squared error (metric ``mae``).
    Every type takes ``optimizer`` and ``learning_rate``.

    Example:
        >>> from atlas.models import DataShape, FitOptions, make_model
        >>> model = make_model("logistic_classifier", {}, DataShape(n_features=3, n_classes=2))
        >>> x, y = np.random.default_rng(0).normal(size=(64, 3)).astype("float32"), np.arange(64) % 2
        >>> history = model.fit(x, y, validation=(x, y), options=FitOptions(epochs=2, patience=1))
        >>> history.epochs, model.predict_proba(x[:2]).shape
        (2, (2, 2))

    Subclasses define :meth:`body`, and the class attributes of :class:`~atlas.models.Model`.
    """

    #: Samples per batch in :meth:`predict`.
    predict_batch_size: int = 4096

    def __init__(self, params: Mapping[str, Any], shape: DataShape) -> None:
        super().__init__(params, shape)
        self._keras = None

    # what a model type defines ------------------------------------------------------------------------------

    def body(self, keras, inputs):
        """The network from the inputs up to (not including) the head; returns a 2-d tensor (batch, features).

        Args:
            keras: the ``keras`` module.
            inputs: the ``keras.Input``: (batch, n_features), or (batch, window, n_features) for sequences.
        """
        raise NotImplementedError

    def regularizer(self, keras):
        """The kernel regularizer of the dense layers from the ``l1`` and ``l2`` parameters, or None."""
        l1, l2 = self.params.get("l1", 0.0), self.params.get("l2", 0.0)
        return keras.regularizers.L1L2(l1=l1, l2=l2) if l1 or l2 else None

    # the network --------------------------------------------------------------------------------------------

    @property
    def keras_model(self):
        """The ``keras.Model`` (after :meth:`fit` or :meth:`load`)."""
        if self._keras is None:
            self._require_fitted("give its Keras model")
        return self._keras

    @property
    def is_fitted(self) -> bool:
        return self._keras is not None

    def build_network(self):
        """A new, compiled ``keras.Model`` for this model's params and shape (seed first: fixed weights)."""
        import keras

        shape = self.shape
        dims = (shape.n_features,) if shape.window is None else (shape.window, shape.n_features)
        inputs = keras.Input(shape=dims, name="inputs")
        features = self.body(keras, inputs)
        if self.task == "classification":
            outputs = keras.layers.Dense(shape.n_classes, activation="softmax", dtype="float32",
                                         kernel_regularizer=self.regularizer(keras),
                                         name="probabilities")(features)
            loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        else:
            outputs = keras.layers.Dense(1, dtype="float32", kernel_regularizer=self.regularizer(keras),
                                         name="value")(features)
            loss, metrics = "mean_squared_error", ["mae"]
        network = keras.Model(inputs=inputs, outputs=outputs, name=self.kind)
        network.compile(optimizer=self._optimizer(keras), loss=loss, metrics=metrics)
        return network

    def _optimizer(self, keras):
        optimizers = keras.optimizers
        classes = {"adam": optimizers.Adam, "adamw": optimizers.AdamW, "sgd": optimizers.SGD,
                   "rmsprop": optimizers.RMSprop}
        return classes[self.params["optimizer"]](learning_rate=self.params["learning_rate"])

    # training -----------------------------------------------------------------------------------------------

    def fit(self, x: np.ndarray, y: np.ndarray, *, validation: tuple[np.ndarray, np.ndarray] | None = None,
            sample_weight: np.ndarray | None = None, class_weight: Mapping[int, float] | None = None,
            options: FitOptions = FitOptions(),  # noqa: B008 (frozen)
            callbacks: Sequence[EpochCallback] = ()) -> History:
        """Trains the network (built on the first call); see :meth:`atlas.models.Model.fit`.

        Seeds and threads are set first (:func:`atlas.models.configure`), so the same seed gives the same
        weights. With ``options.patience`` and ``validation``, training stops when ``val_loss`` has not
        improved for ``patience`` epochs, and the best epoch's weights are restored (also when a callback
        stops it). A second call continues training from the current weights.

        Raises:
            ConfigError: inputs, targets or weights that do not fit the model's shape and task.
        """
        import keras

        from atlas.models._keras_objects import EpochBridge

        x = self._check_x(x)
        y = self._check_y(y, len(x))
        if not len(x):
            msg = f"{self.kind}: no training samples; widen the training window"
            raise ConfigError(msg)
        weights = self._weights(y, sample_weight, class_weight)
        validation_data = self._validation(validation)
        configure(options.seed, options.threads)
        network = self._keras if self._keras is not None else self.build_network()
        early = None
        if options.patience is not None and validation_data is not None:
            early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience,
                                                  restore_best_weights=True)
        bridge = EpochBridge(callbacks)
        result = network.fit(x, y, batch_size=options.batch_size, epochs=options.epochs,
                             verbose=options.verbose, callbacks=[c for c in (early, bridge) if c is not None],
                             validation_data=validation_data, sample_weight=weights, shuffle=True)
        self._keras = network
        stopped = "callback" if bridge.stopped else (
            "early_stopping" if early is not None and early.stopped_epoch > 0 else "epochs")
        return History(metrics={name: [float(v) for v in values] for name, values in result.history.items()},
                       stopped=stopped, best_epoch=None if early is None else int(early.best_epoch))

    def _validation(self, validation) -> tuple[np.ndarray, np.ndarray] | None:
        if validation is None:
            return None
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            msg = f"{self.kind}: validation must be a pair (x, y), got {type(validation).__name__}"
            raise ConfigError(msg)
        x = self._check_x(validation[0])
        y = self._check_y(validation[1], len(x), "the validation y")
        return (x, y) if len(x) else None

    # prediction ---------------------------------------------------------------------------------------------

    def _outputs(self, x: np.ndarray) -> np.ndarray:
        self._require_fitted("predict")
        x = self._check_x(x)
        if not len(x):
            return np.zeros((0, self.shape.n_classes or 1), dtype=np.float32)
        # direct calls in chunks: the same numbers as Keras' predict, without building its loop for each model
        # (a tenth of the time on a sweep's test window)
        step = self.predict_batch_size
        return np.concatenate([np.asarray(self._keras(x[i:i + step], training=False), dtype=np.float32)
                               for i in range(0, len(x), step)])

    def predict(self, x: np.ndarray) -> np.ndarray:
        outputs = self._outputs(x)
        if self.task == "classification":
            return np.argmax(outputs, axis=1).astype(np.int64)
        return outputs[:, 0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.task != "classification":
            return super().predict_proba(x)
        return self._outputs(x)

    def predictor(self) -> Callable[[np.ndarray], np.ndarray]:
        """The single-input fast path: ``atlas.models._fast.compile_predictor`` on the Keras model."""
        from atlas.models._fast import compile_predictor

        return compile_predictor(self.keras_model, proba=self.task == "classification")

    # files --------------------------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Writes ``model.keras`` (Keras' native format) and ``model.json`` (kind, params, shape)."""
        import keras

        self._require_fitted("save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # Keras 3.15 with NumPy 2 warns for every variable saved: not ours
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    message="__array__ implementation doesn't accept a copy keyword")
            self._keras.save(folder / KERAS_FILE)
        write_manifest(folder, self, files=[KERAS_FILE], versions={"keras": keras.__version__})

    @classmethod
    def load(cls, folder: Path) -> KerasModel:
        """The model saved in ``folder`` by :meth:`save`; it loads in a fresh process too.

        Raises:
            ConfigError: the folder holds no model, or a model of another type.
        """
        import keras

        importlib.import_module("atlas.models._keras_objects")  # registers Atlas's layers for the .keras file
        folder = Path(folder)
        manifest = read_manifest(folder, expected=cls.kind)
        model = cls(manifest["params"], DataShape.from_dict(manifest["shape"]))
        path = folder / KERAS_FILE
        if not path.is_file():
            msg = f"{folder} has model.json but no {KERAS_FILE}: save the model again"
            raise ConfigError(msg)
        model._keras = keras.saving.load_model(path)
        return model


__all__ = ["KERAS_FILE", "KerasModel"]
