"""Scoring a model trained with ClassLabels("sign", ties="drop") on fresh data: a tie has no class, and is left out
of the score as training left it out (it once crashed converting <NA> to an integer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas.data import MarketStore
from atlas.data.dataset import ClassLabels
from atlas.data.features import Close, LogReturns
from atlas.data.featureset import FeatureLabelSet
from atlas.models import ModelArtifact, make_model
from atlas.models._base import DataShape
from atlas.registry._scoring import score_model

FLS = FeatureLabelSet(features=[LogReturns().bitstamp().bucket("1h").price("close").lookback(1),
                                Close().bitstamp().bucket("1h")],
                      labels=[LogReturns().bitstamp().bucket("1h").price("close").lookforward(1)], title="ties")


@pytest.fixture
def store():
    store = MarketStore("sqlite://")
    index = pd.date_range("2024-01-01", "2024-01-10", freq="1h", tz="UTC")
    rng = np.random.default_rng(5)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(index)))), index=index)
    for at in ("2024-01-03 10:00", "2024-01-08 15:00", "2024-01-09 04:00"):  # the next close repeats this one
        position = close.index.get_loc(pd.Timestamp(at, tz="UTC"))
        close.iloc[position + 1] = close.iloc[position]
    store.write_series({"bitstamp_btc_usd.1h.close": close})
    return store


def test_a_tie_is_left_out_of_the_score_of_a_model_trained_with_ties_dropped(store):
    train, test = ("2024-01-01 02:00", "2024-01-06"), ("2024-01-06 02:00", "2024-01-09 22:00")
    data = FLS.dataset(train, test, store=store, classes=ClassLabels("sign", ties="drop"))
    assert data.report["test"]["ties_dropped"] == 2
    model = make_model("majority_classifier", {}, DataShape(n_features=data.X_train.shape[1], n_classes=2))
    model.fit(data.X_train, data.y_train)
    artifact = ModelArtifact(model, FLS, data.transforms)
    score = score_model(artifact, *test, store=store)
    assert score.buckets == len(data.y_test)  # the two ties are out, as in the test part
    np.testing.assert_array_equal(score.predictions.frame["y_true"].to_numpy(), data.y_test)
