"""Statistics of a classifier on held-out samples: accuracy, per-class PV / PR / LR, F1, MCC, log loss, ROC AUC.

Atlas's own words, kept from the original Atlas, for each class ``c``:

* **PV** (predictive value, precision): of the samples predicted ``c``, the share that are ``c``. NaN when the
  model never predicts ``c``.
* **PR** (positive rate, recall): of the samples that are ``c``, the share predicted ``c``. NaN when ``c`` is
  absent from the truth.
* **LR** (likelihood ratio, as the original Atlas defined it): ``PR / (1 - PV)``. It is ``+inf`` when PV is 1
  (every prediction of ``c`` was right) and NaN when PV is NaN.

A class absent from the truth has NaN PR and ROC AUC; the balanced accuracy and the macro ROC AUC average over the
classes where they are defined, and macro F1 over the classes that are in the truth or predicted (as scikit-learn
with ``zero_division=np.nan``). MCC is 0 where it is undefined (a constant model), as scikit-learn defines it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from atlas.stats._checks import average_ranks, check_classes, check_labels

#: Probabilities are clipped to ``[eps, 1 - eps]`` before the log loss, as scikit-learn does for float64.
_EPSILON = float(np.finfo(np.float64).eps)
PER_CLASS_COLUMNS = ("pv", "pr", "lr", "f1", "roc_auc", "prevalence", "predicted_share", "bias")


@dataclass(frozen=True, eq=False)
class ClassificationStatistics:
    """What :func:`classification_statistics` finds; :meth:`headline` flattens it for MLflow.

    Attributes:
        class_names: the classes, lowest id first.
        samples: how many samples were scored.
        accuracy: the share of samples predicted right.
        balanced_accuracy: the mean PR over the classes present in the truth.
        f1_macro: the mean F1 over the classes present in the truth or the predictions.
        mcc: the Matthews correlation coefficient (multiclass, from the confusion matrix); 0 where undefined.
        log_loss: the mean negative log probability of the true class.
        roc_auc_macro: the mean one-vs-rest ROC AUC over the classes where it is defined; NaN if none is.
        per_class: a frame indexed by class name with the columns ``pv``, ``pr``, ``lr``, ``f1``, ``roc_auc``,
            ``prevalence`` (share of the truth), ``predicted_share`` and ``bias`` (predicted share minus
            prevalence).
        confusion: counts, rows the true class and columns the predicted class, both indexed by class name.
    """

    class_names: tuple[str, ...]
    samples: int
    accuracy: float
    balanced_accuracy: float
    f1_macro: float
    mcc: float
    log_loss: float
    roc_auc_macro: float
    per_class: pd.DataFrame
    confusion: pd.DataFrame

    @property
    def confusion_normalized(self) -> pd.DataFrame:
        """The confusion matrix, each row divided by its total (NaN rows for a class absent from the truth)."""
        totals = self.confusion.sum(axis=1).replace(0, np.nan)
        return self.confusion.div(totals, axis=0)

    def headline(self) -> dict[str, float]:
        """Flat metric names for MLflow: ``accuracy``, ``balanced_accuracy``, ``mcc``, ``f1_macro``, ``log_loss``,
        ``roc_auc_macro``, then for each class ``pv_<class>``, ``pr_<class>``, ``lr_<class>``, ``f1_<class>``,
        ``roc_auc_<class>``, ``prevalence_<class>`` and ``bias_<class>``.

        Values are floats; NaN where undefined and ``inf`` for an LR whose PV is 1 (MLflow stores both).
        """
        out = {"accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy, "mcc": self.mcc,
               "f1_macro": self.f1_macro, "log_loss": self.log_loss, "roc_auc_macro": self.roc_auc_macro}
        for column in ("pv", "pr", "lr", "f1", "roc_auc", "prevalence", "bias"):
            out.update({f"{column}_{name}": float(value) for name, value in self.per_class[column].items()})
        return out


def classification_statistics(y_true, proba, class_names, *, y_pred=None) -> ClassificationStatistics:
    """Scores a classifier's class probabilities against the true classes.

    Example:
        >>> proba = np.array([[.8, .2], [.3, .7], [.4, .6], [.6, .4]])
        >>> stats = classification_statistics(np.array([0, 1, 1, 1]), proba, ("down", "up"))
        >>> stats.accuracy, stats.balanced_accuracy, float(stats.per_class.loc["up", "pv"])
        (0.75, 0.8333333333333333, 1.0)
        >>> stats.headline()["lr_up"], round(stats.headline()["lr_down"], 3)  # PV 1: an infinite LR
        (inf, 2.0)

    Args:
        y_true: the true class ids, 0..classes-1.
        proba: the class probabilities, (samples, classes), each row summing to 1.
        class_names: the classes' names, lowest id first.
        y_pred: the predicted class ids; by default the most probable class (the lowest id on a tie).

    Returns:
        A :class:`ClassificationStatistics`.

    Raises:
        ConfigError: no sample, shapes that do not fit, class ids out of range, or NaN (or otherwise invalid)
            probabilities; the message names the rows.
    """
    y_true, proba, names = check_classes(y_true, proba, class_names)
    k, n = len(names), len(y_true)
    y_pred = proba.argmax(axis=1) if y_pred is None else check_labels("y_pred", y_pred, k)
    if len(y_pred) != n:
        msg = f"y_pred must hold one class id per sample: {len(y_pred)} for {n} samples"
        raise ConfigError(msg)
    confusion = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    hits = np.diag(confusion).astype(np.float64)
    truth, predicted = confusion.sum(axis=1).astype(np.float64), confusion.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pv = np.where(predicted > 0, hits / predicted, np.nan)
        pr = np.where(truth > 0, hits / truth, np.nan)
        lr = np.where(pv == 1, np.inf, pr / (1 - pv))
        f1 = np.where(truth + predicted > 0, 2 * hits / (truth + predicted), np.nan)
    auc = _roc_auc(y_true, proba)
    per_class = pd.DataFrame({"pv": pv, "pr": pr, "lr": lr, "f1": f1, "roc_auc": auc, "prevalence": truth / n,
                              "predicted_share": predicted / n, "bias": (predicted - truth) / n},
                             index=pd.Index(names, name="class"))
    true_class = np.clip(proba[np.arange(n), y_true], _EPSILON, 1 - _EPSILON)
    return ClassificationStatistics(
        class_names=names, samples=n, accuracy=float(hits.sum() / n), balanced_accuracy=_nanmean(pr),
        f1_macro=_nanmean(f1), mcc=_mcc(hits.sum(), n, truth, predicted),
        log_loss=float(-np.log(true_class).mean()), roc_auc_macro=_nanmean(auc), per_class=per_class,
        confusion=pd.DataFrame(confusion, index=pd.Index(names, name="true"),
                               columns=pd.Index(names, name="predicted")))


def _roc_auc(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC AUC per class by the rank-sum (Mann-Whitney) formula: ties count one half."""
    n = len(y_true)
    out = np.full(proba.shape[1], np.nan)
    for c in range(proba.shape[1]):
        positive = y_true == c
        n_pos = int(positive.sum())
        if 0 < n_pos < n:
            ranks = average_ranks(proba[:, c])
            out[c] = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
    return out


def _mcc(correct: float, n: int, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Gorodkin's multiclass MCC from the confusion matrix's margins; 0 where a margin is constant."""
    covariance = correct * n - truth @ predicted
    spread = math.sqrt(n * n - predicted @ predicted) * math.sqrt(n * n - truth @ truth)
    return float(covariance / spread) if spread > 0 else 0.0


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else math.nan
