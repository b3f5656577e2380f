"""The work unit the sweep tests share, importable by name from the spec files they write (a module named
``conftest`` would be whichever folder's conftest was imported last)."""

from __future__ import annotations

from atlas.data import FeatureLabelSet, LogReturns
from atlas.data.dataset import ClassLabels
from atlas.infra import ModelSpec, WorkUnit

TRAIN = ("2024-01-01 00:30", "2024-01-01 16:00")
TEST = ("2024-01-01 16:10", "2024-01-01 23:50")


def next_minute_unit(name: str = "itbit", *specs: ModelSpec, **options) -> WorkUnit:
    """A work unit predicting itbit's next one-minute return (down/up) from both exchanges' last returns."""
    featureset = FeatureLabelSet(features=[LogReturns().bitstamp().one_min().lookback(1),
                                           LogReturns().itbit().one_min().lookback(1)],
                                 labels=[LogReturns().itbit().one_min().lookforward(1)], title="itbit_next_minute")
    specs = specs or (ModelSpec("dnn", "dnn_classifier", {"hidden_units": [8], "learning_rate": [0.001, 0.01]},
                                fit={"epochs": 2, "patience": None}),)
    return WorkUnit(name, featureset, TRAIN, TEST, specs, classes=ClassLabels("sign"), **options)
