"""Training: seeds, early stopping, per-epoch callbacks, class and sample weights, the runtime settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atlas.exceptions import ConfigError
from atlas.models import DataShape, FitOptions, configure, make_model

ROOT = Path(__file__).resolve().parents[2]


def noise(samples: int, *, seed: int, features: int = 4, window: int | None = None,
          share_of_ones: float = 0.5):
    """Random inputs and random two-class labels: nothing to learn, so a model can only overfit."""
    rng = np.random.default_rng(seed)
    dims = (features,) if window is None else (window, features)
    x = rng.normal(size=(samples, *dims)).astype(np.float32)
    return x, (rng.random(samples) < share_of_ones).astype(np.int64)


@pytest.mark.parametrize(("kind", "params", "window"), [
    ("dnn_classifier", {"hidden_units": [16, 8], "dropout": 0.3, "batch_normalization": True}, None),
    ("gru_regressor", {"units": [8, 8], "dropout": 0.2}, 5),
])
def test_one_seed_gives_the_same_predictions_and_another_seed_others(kind, params, window):
    x, y = noise(128, seed=1, window=window)
    if kind.endswith("regressor"):
        y = y.astype(np.float32) - 0.5
    shape = DataShape(4, 2 if kind.endswith("classifier") else None, window)
    runs = []
    for seed in (5, 5, 6):
        model = make_model(kind, params, shape)
        model.fit(x, y, options=FitOptions(epochs=2, batch_size=32, seed=seed))
        runs.append(model.predict_proba(x) if model.task == "classification" else model.predict(x))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_early_stopping_stops_when_validation_loss_rises_and_keeps_the_best_weights():
    x, y = noise(64, seed=2)
    val_x, val_y = noise(256, seed=3)
    model = make_model("dnn_classifier", {"hidden_units": [64, 64], "learning_rate": 0.01}, DataShape(4, 2))
    history = model.fit(x, y, validation=(val_x, val_y),
                        options=FitOptions(epochs=60, batch_size=16, patience=2, seed=0))
    val_loss = history.metrics["val_loss"]
    assert history.stopped == "early_stopping" and history.epochs < 60
    assert history.best_epoch == int(np.argmin(val_loss)) and history.epochs == history.best_epoch + 3
    assert val_loss[-1] > val_loss[history.best_epoch]  # it rose, and the model went back to the best epoch
    restored = model.keras_model.evaluate(val_x, val_y, batch_size=256, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(min(val_loss), rel=1e-5)


def test_early_stopping_needs_validation_data_and_patience():
    x, y = noise(64, seed=2)
    model = make_model("logistic_classifier", {}, DataShape(4, 2))
    history = model.fit(x, y, options=FitOptions(epochs=4, patience=1))
    assert (history.epochs, history.stopped, history.best_epoch) == (4, "epochs", None)
    history = model.fit(x, y, validation=(x, y), options=FitOptions(epochs=3, patience=None))
    assert (history.epochs, history.stopped, history.best_epoch) == (3, "epochs", None)


def test_epoch_callbacks_see_every_epoch_and_one_returning_true_stops_training():
    x, y = noise(64, seed=4)
    seen, also = [], []

    def tracker(epoch, logs):
        seen.append((epoch, dict(logs)))

    def pruner(epoch, logs):
        also.append(epoch)
        return epoch == 2

    model = make_model("dnn_classifier", {"hidden_units": [8]}, DataShape(4, 2))
    history = model.fit(x, y, validation=(x, y), callbacks=[tracker, pruner],
                        options=FitOptions(epochs=10, patience=None, seed=0))
    assert history.stopped == "callback" and history.epochs == 3
    assert [epoch for epoch, _ in seen] == also == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(seen[0][1])
    assert all(isinstance(value, float) for _, logs in seen for value in logs.values())
    assert [logs["val_loss"] for _, logs in seen] == history.metrics["val_loss"]


def test_class_weights_change_the_fit_and_equal_the_same_sample_weights():
    x, y = noise(256, seed=5, share_of_ones=0.25)
    options = FitOptions(epochs=5, batch_size=32, seed=1)
    shape = DataShape(4, 2)

    def predictions(**weights):
        model = make_model("dnn_classifier", {"hidden_units": [16]}, shape)
        model.fit(x, y, options=options, **weights)
        return model.predict_proba(x)

    plain = predictions()
    weighted = predictions(class_weight={1: 3.0})
    as_samples = predictions(sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_array_equal(weighted, as_samples)
    assert weighted[:, 1].mean() > plain[:, 1].mean() + 0.05  # the rare class gets more of the probability
    assert np.mean(np.argmax(weighted, axis=1) == 1) > np.mean(np.argmax(plain, axis=1) == 1)
    with pytest.raises(ConfigError, match="class_weight applies to classifiers"):
        make_model("dnn_regressor", {}, DataShape(4)).fit(x, y.astype(np.float32), class_weight={1: 2.0})


def test_a_second_fit_continues_from_the_current_weights():
    x, y = noise(64, seed=6)
    model = make_model("logistic_classifier", {}, DataShape(4, 2))
    first = model.fit(x, y, options=FitOptions(epochs=3, patience=None, seed=0)).metrics["loss"]
    again = model.fit(x, y, options=FitOptions(epochs=1, patience=None, seed=0)).metrics["loss"]
    assert again[0] < first[0]


def test_configure_sets_threads_once_per_process_and_warns_when_it_cannot():
    code = """
import warnings
import tensorflow as tf
from atlas.models import configure
report = configure(seed=3, threads=1)
assert (report.intra_op_threads, report.inter_op_threads, report.gpus) == (1, 1, ()), report
tf.constant(1.0) + 1.0  # TensorFlow starts its thread pools
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    configure(seed=3, threads=1)  # what is in force already: nothing to do, no warning
    assert not caught, [str(w.message) for w in caught]
    report = configure(seed=3, threads=2)
assert len(caught) == 1 and caught[0].category is RuntimeWarning, caught
message = str(caught[0].message)
assert "threads=2 cannot apply" in message and "intra-op 1, inter-op 1" in message, message
assert (report.intra_op_threads, report.inter_op_threads) == (1, 1)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.stdout.strip() == "ok", result.stderr[-3000:]


def test_configure_checks_its_arguments():
    with pytest.raises(ConfigError, match="threads must be a whole number >= 0, got threads=-1"):
        configure(seed=0, threads=-1)
    with pytest.raises(ConfigError, match="seed must be a whole number >= 0"):
        configure(seed=1.5)
