"""Scores of a model's predictions on held-out data, each with the baseline it must beat.

Baselines are fitted on the training labels only (the majority class, the training mean): a score never
compares a model with something that saw the test window.
"""

from __future__ import annotations

import numpy as np

from atlas.exceptions import ConfigError

_EPSILON = 1e-7


def classification_scores(y_true: np.ndarray, proba: np.ndarray, *, y_train: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, log loss and the majority baseline of a classifier on held-out samples.

    Example:
        >>> proba = np.array([[.8, .2], [.3, .7], [.4, .6], [.6, .4]])
        >>> scores = classification_scores(np.array([0, 1, 1, 1]), proba, y_train=np.array([0, 0, 1]))
        >>> scores["accuracy"], scores["majority_accuracy"], scores["accuracy_lift"]
        (0.75, 0.25, 0.5)

    Args:
        y_true: class ids of the held-out samples.
        proba: the model's class probabilities, (samples, classes).
        y_train: the training class ids: the majority baseline predicts their most frequent class.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``log_loss``, ``majority_accuracy`` (the baseline) and
        ``accuracy_lift`` (accuracy minus the baseline's), all floats.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(y_true) or not len(y_true):
        msg = (f"proba must be (samples, classes) with one row per label, got {proba.shape} for {len(y_true)} "
               "labels")
        raise ConfigError(msg)
    n_classes = proba.shape[1]
    predicted = proba.argmax(axis=1)
    correct = predicted == y_true
    recalls = [correct[y_true == c].mean() for c in range(n_classes) if (y_true == c).any()]
    clipped = np.clip(proba[np.arange(len(y_true)), y_true], _EPSILON, 1.0)
    majority = np.bincount(np.asarray(y_train), minlength=n_classes).argmax()
    accuracy, majority_accuracy = float(correct.mean()), float((y_true == majority).mean())
    return {"accuracy": accuracy, "balanced_accuracy": float(np.mean(recalls)),
            "log_loss": float(-np.log(clipped).mean()), "majority_accuracy": majority_accuracy,
            "accuracy_lift": accuracy - majority_accuracy}


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray, *, y_train: np.ndarray) -> dict[str, float]:
    """Errors, out-of-sample R², correlation and directional accuracy of a regressor on held-out samples.

    Example:
        >>> scores = regression_scores(np.array([1.0, -1.0, 2.0]), np.array([0.5, -0.5, 1.0]),
        ...                            y_train=np.array([0.0, 0.0]))
        >>> round(scores["r2"], 3), scores["directional_accuracy"]
        (0.75, 1.0)

    Returns:
        ``mse``, ``mae``, ``r2`` (against the training mean as forecast, so it can be negative out of sample),
        ``correlation`` and ``directional_accuracy`` (sign agreement where the truth is not zero).
    """
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if len(y_pred) != len(y_true) or not len(y_true):
        msg = f"y_pred must hold one value per label, got {len(y_pred)} for {len(y_true)} labels"
        raise ConfigError(msg)
    error = y_pred - y_true
    baseline = ((y_true - float(np.mean(y_train))) ** 2).sum()
    moving = y_true != 0
    spread = y_pred.std() * y_true.std()
    return {"mse": float((error ** 2).mean()), "mae": float(np.abs(error).mean()),
            "r2": float(1 - (error ** 2).sum() / baseline) if baseline > 0 else float("nan"),
            "correlation": float(np.mean((y_pred - y_pred.mean()) * (y_true - y_true.mean())) / spread)
            if spread > 0 else float("nan"),
            "directional_accuracy": float((np.sign(y_pred[moving]) == np.sign(y_true[moving])).mean())
            if moving.any() else float("nan")}
