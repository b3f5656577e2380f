"""Leak-free train and test data: time splits with purge and embargo; scaling, classes fitted on train only.

The simple use is :func:`make_dataset`; its parts can be used alone:

* :class:`Scaler` (z-score, robust) and :class:`ClassLabels` (sign, percentile, basis points, triple-barrier
  outcomes; under sign, ``ties`` says where a return of exactly 0 goes) learn from training rows and serialize
  what they learned (``to_dict`` / ``from_dict``);
* :func:`triple_barrier_labels` makes labels from prices and a volatility;
* :func:`train_test_split` and :func:`walk_forward` give positions of purged, embargoed splits;
* :func:`balance` under- or oversamples training rows, or weights them;
* :func:`sequence_windows` gives windows for recurrent and convolutional models as views, not copies;
  :func:`window_gaps` finds the windows whose buckets are not consecutive (dropped unless ``allow_gaps``);
* :class:`Transforms` (a :class:`Dataset`'s ``transforms``) rebuilds a model's inputs at serving time with
  ``Transforms.inputs``; :func:`apply_transforms` does the same from their JSON form.
"""

from atlas.data.dataset._balance import BALANCE_METHODS, balance
from atlas.data.dataset._build import make_dataset
from atlas.data.dataset._dataset import Dataset
from atlas.data.dataset._labels import (
    LABEL_METHODS,
    TIES,
    ClassLabels,
    FittedClassLabels,
    default_class_names,
    triple_barrier_labels,
)
from atlas.data.dataset._scaling import SCALING_METHODS, FittedScaler, Scaler
from atlas.data.dataset._splits import WALK_FORWARD_MODES, Split, purge, train_test_split, walk_forward
from atlas.data.dataset._transforms import Transforms, apply_transforms
from atlas.data.dataset._windows import sequence_windows, window_gaps, window_targets

__all__ = [
    "BALANCE_METHODS",
    "LABEL_METHODS",
    "SCALING_METHODS",
    "TIES",
    "WALK_FORWARD_MODES",
    "ClassLabels",
    "Dataset",
    "FittedClassLabels",
    "FittedScaler",
    "Scaler",
    "Split",
    "Transforms",
    "apply_transforms",
    "balance",
    "default_class_names",
    "make_dataset",
    "purge",
    "sequence_windows",
    "train_test_split",
    "triple_barrier_labels",
    "walk_forward",
    "window_gaps",
    "window_targets",
]
