"""Classification statistics against scikit-learn on random inputs, and on hand-made degenerate cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics

from atlas.exceptions import ConfigError
from atlas.stats import classification_statistics


def reference(y_true, proba, y_pred):
    """scikit-learn's numbers for the same inputs (its warnings about undefined ratios silenced)."""
    k = proba.shape[1]
    labels = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auc = []
        for c in labels:
            positive = y_true == c
            auc.append(metrics.roc_auc_score(positive, proba[:, c]) if 0 < positive.sum() < len(y_true)
                       else np.nan)
        return {
            "accuracy": metrics.accuracy_score(y_true, y_pred),
            "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
            "f1_macro": metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=np.nan),
            "mcc": metrics.matthews_corrcoef(y_true, y_pred),
            "log_loss": metrics.log_loss(y_true, proba, labels=labels),
            "pv": metrics.precision_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan),
            "pr": metrics.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan),
            "f1": metrics.f1_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan),
            "roc_auc": np.array(auc),
            "confusion": metrics.confusion_matrix(y_true, y_pred, labels=labels),
        }


def assert_matches_sklearn(y_true, proba, names, y_pred=None):
    stats = classification_statistics(y_true, proba, names, y_pred=y_pred)
    expected = reference(y_true, proba, proba.argmax(axis=1) if y_pred is None else y_pred)
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "mcc", "log_loss"):
        assert getattr(stats, name) == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    for column in ("pv", "pr", "f1", "roc_auc"):
        np.testing.assert_allclose(stats.per_class[column].to_numpy(), expected[column], rtol=1e-9,
                                   err_msg=column)
    np.testing.assert_array_equal(stats.confusion.to_numpy(), expected["confusion"])
    present = ~np.isnan(expected["roc_auc"])
    assert stats.roc_auc_macro == pytest.approx(expected["roc_auc"][present].mean())
    return stats


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_inputs_match_sklearn(k, seed):
    rng = np.random.default_rng(seed)
    n = 500
    y_true = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), size=n)
    proba[np.arange(n), y_true] += rng.uniform(0, 0.5, n) * (rng.random(n) < 0.6)  # some skill
    proba /= proba.sum(axis=1, keepdims=True)
    stats = assert_matches_sklearn(y_true, proba, tuple(f"c{j}" for j in range(k)))
    normalized = metrics.confusion_matrix(y_true, proba.argmax(axis=1), labels=list(range(k)), normalize="true")
    np.testing.assert_allclose(stats.confusion_normalized.to_numpy(), normalized)
    if k > 2:
        macro = metrics.roc_auc_score(y_true, proba, multi_class="ovr", average="macro")
        assert stats.roc_auc_macro == pytest.approx(macro)
    else:
        assert stats.roc_auc_macro == pytest.approx(metrics.roc_auc_score(y_true, proba[:, 1]))


def test_prevalence_bias_and_likelihood_ratio_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 2, 2, 2, 0, 0])
    proba = np.eye(3)[y_pred] * 0.7 + 0.1
    stats = classification_statistics(y_true, proba, ("down", "flat", "up"))
    table = stats.per_class
    np.testing.assert_allclose(table["prevalence"], [0.3, 0.2, 0.5])
    np.testing.assert_allclose(table["predicted_share"], [0.4, 0.3, 0.3])
    np.testing.assert_allclose(table["bias"], [0.1, 0.1, -0.2])
    np.testing.assert_allclose(table["pv"], [0.5, 2 / 3, 1.0])
    np.testing.assert_allclose(table["pr"], [2 / 3, 1.0, 0.6])
    # LR = PR / (1 - PV); PV = 1 gives an infinite LR
    np.testing.assert_allclose(table["lr"], [(2 / 3) / 0.5, 1.0 / (1 / 3), np.inf])
    headline = stats.headline()
    assert headline["lr_up"] == np.inf and headline["pv_flat"] == pytest.approx(2 / 3)
    assert {"accuracy", "balanced_accuracy", "mcc", "f1_macro", "log_loss", "roc_auc_macro", "pv_down",
            "pr_up", "lr_flat", "roc_auc_up", "prevalence_down", "bias_up"} <= set(headline)
    assert all(isinstance(v, float) for v in headline.values())


def test_a_constant_model():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, 200)
    proba = np.tile([0.2, 0.5, 0.3], (200, 1))  # always "flat", with the same probabilities
    stats = assert_matches_sklearn(y_true, proba, ("down", "flat", "up"))
    assert stats.mcc == 0.0  # undefined: defined as 0, as scikit-learn does
    assert np.isnan(stats.per_class.loc["down", "pv"]) and np.isnan(stats.per_class.loc["down", "lr"])
    assert stats.per_class.loc["flat", "pr"] == 1.0
    np.testing.assert_allclose(stats.per_class["roc_auc"], 0.5)  # all scores tied
    np.testing.assert_allclose(stats.per_class["bias"], [-np.mean(y_true == 0), 1 - np.mean(y_true == 1),
                                                         -np.mean(y_true == 2)])


def test_a_class_absent_from_the_truth():
    rng = np.random.default_rng(4)
    y_true = rng.choice([0, 2], 300)
    proba = rng.dirichlet(np.ones(3), size=300)
    stats = assert_matches_sklearn(y_true, proba, ("down", "flat", "up"))
    assert np.isnan(stats.per_class.loc["flat", "pr"]) and np.isnan(stats.per_class.loc["flat", "roc_auc"])
    assert stats.per_class.loc["flat", "prevalence"] == 0.0
    assert np.isfinite(stats.roc_auc_macro) and np.isfinite(stats.balanced_accuracy)
    # never predicted either: its F1 is undefined and left out of the macro average
    proba[:, 1] = 0.0
    proba /= proba.sum(axis=1, keepdims=True)
    stats = assert_matches_sklearn(y_true, proba, ("down", "flat", "up"))
    assert np.isnan(stats.per_class.loc["flat", "f1"])


def test_ties_in_probabilities():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 2, 400)
    proba = np.round(rng.uniform(0, 1, 400) * 4) / 4  # five distinct values: many ties, some rows 0.5 / 0.5
    proba = np.column_stack([1 - proba, proba])
    stats = assert_matches_sklearn(y_true, proba, ("down", "up"))
    tied = proba[:, 0] == proba[:, 1]
    assert tied.any()  # a tie predicts the lowest class, as argmax does
    assert stats.confusion.to_numpy()[:, 0].sum() == int((proba[:, 0] >= proba[:, 1]).sum())


def test_given_predictions_replace_the_argmax():
    rng = np.random.default_rng(6)
    y_true = rng.integers(0, 3, 100)
    proba = rng.dirichlet(np.ones(3), size=100)
    y_pred = rng.integers(0, 3, 100)
    assert_matches_sklearn(y_true, proba, ("a", "b", "c"), y_pred=y_pred)


def test_extreme_probabilities_are_clipped_in_the_log_loss():
    y_true = np.array([0, 1, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert_matches_sklearn(y_true, proba, ("down", "up"))


@pytest.mark.parametrize(("y_true", "proba", "message"), [
    ([0, 1], [[0.5, 0.5], [np.nan, np.nan]], "proba has 1 of 2 rows that are NaN .*row 1"),
    ([0, 1], [[0.5, 0.5], [0.7, 0.7]], "sum to 1"),
    ([0, 3], [[0.5, 0.5], [0.5, 0.5]], "y_true must be class ids 0..1"),
    ([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]], "proba must be \\(samples, classes\\) = \\(3, 2\\)"),
    ([], np.zeros((0, 2)), "proba must be"),
    ([0.5, 1], [[0.5, 0.5], [0.5, 0.5]], "whole class ids"),
])
def test_invalid_inputs_raise_a_clear_config_error(y_true, proba, message):
    with pytest.raises(ConfigError, match=message):
        classification_statistics(np.array(y_true), np.array(proba, dtype=float), ("down", "up"))
