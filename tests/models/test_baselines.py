"""The baselines, and the zoo against them on simulated data with a planted signal of known strength."""

from __future__ import annotations

import math

import numpy as np
import pytest

from atlas.exceptions import ConfigError
from atlas.models import BASELINES, MODELS, DataShape, FitOptions, NotFittedError, load_model, make_model


def test_majority_predicts_the_commonest_training_class_with_its_frequencies():
    model = make_model("majority_classifier", {}, DataShape(n_features=2, n_classes=3))
    history = model.fit(np.zeros((5, 2)), np.array([2, 0, 2, 1, 2]), sample_weight=np.array([9, 9, 1, 1, 1]),
                        validation=(np.zeros((2, 2)), np.array([2, 0])))
    assert history.metrics == {"accuracy": [0.6], "val_accuracy": [0.5]}  # weights do not change the rule
    assert model.predict(np.ones((3, 2))).tolist() == [2, 2, 2]
    np.testing.assert_allclose(model.predict_proba(np.ones((1, 2))), [[0.2, 0.2, 0.6]], rtol=1e-6)
    tie = make_model("majority_classifier", {}, DataShape(n_features=2, n_classes=2))
    tie.fit(np.zeros((2, 2)), np.array([1, 0]))
    assert tie.predict(np.zeros((1, 2))).tolist() == [0]  # a tie goes to the lowest class id


def test_no_change_predicts_a_zero_return():
    model = make_model("no_change_regressor", {}, DataShape(n_features=2))
    history = model.fit(np.zeros((2, 2)), np.array([0.5, -0.5]))
    assert history.metrics == {"loss": [0.25]}
    out = model.predict(np.ones((3, 2)))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.0, 0.0]


def test_persistence_repeats_the_newest_realized_label():
    model = make_model("persistence_classifier", {"horizon": 2}, DataShape(n_features=1, n_classes=2))
    model.fit(np.zeros((4, 1)), np.array([0, 0, 1, 0]))
    # row k gets the label of row k - 2; the first two rows take the last two training labels
    assert model.predict_from_labels(np.array([1, 1, 0, 1, 0])).tolist() == [1, 0, 1, 1, 0]
    assert model.predict_proba_from_labels(np.array([1, 0])).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert model.predict(np.zeros((2, 1))).tolist() == [0, 0]  # no labels to hand: the newest training one
    regressor = make_model("persistence_regressor", {}, DataShape(n_features=1, window=3))
    regressor.fit(np.zeros((2, 3, 1)), np.array([0.25, -0.5]))
    assert regressor.predict_from_labels(np.array([1.0, 2.0])).tolist() == [-0.5, 1.0]
    assert regressor.predictor()(np.zeros((3, 1))).tolist() == [-0.5]


def test_baselines_take_rows_or_windows_save_as_json_and_need_fitting(tmp_path):
    for kind, cls in MODELS.items():
        if not cls.baseline:
            continue
        shape = DataShape(n_features=2, n_classes=2 if cls.task == "classification" else None, window=4)
        model = make_model(kind, {}, shape)
        with pytest.raises(NotFittedError):
            model.save(tmp_path / kind)
        y = np.array([1, 1, 0]) if shape.n_classes else np.array([0.1, 0.2, 0.3])
        model.fit(np.zeros((3, 4, 2)), y)
        model.save(tmp_path / kind)
        assert sorted(p.name for p in (tmp_path / kind).iterdir()) == ["model.json"]
        loaded = load_model(tmp_path / kind)
        np.testing.assert_array_equal(loaded.predict(np.zeros((2, 4, 2))), model.predict(np.zeros((2, 4, 2))))
        with pytest.raises(ConfigError, match=r"takes windows of shape \(samples, 4, 2\)"):
            model.predict(np.zeros((2, 2)))
        with pytest.raises(ConfigError, match="no training samples"):
            make_model(kind, {}, shape).fit(np.zeros((0, 4, 2)), y[:0])
    assert BASELINES == {"classification": "majority_classifier", "regression": "no_change_regressor"}


# the planted signal -----------------------------------------------------------------------------------------


def simulated_dataset(folder, signal: float):
    """Five days on two exchanges, bitstamp leading itbit by one bucket; to predict: itbit's next sign."""
    from atlas.data import (
        FeatureLabelSet,
        LogReturns,
        MarketSimulator,
        MarketStore,
        MetricPipeline,
        SimulatorConfig,
    )
    from atlas.data.dataset import ClassLabels

    simulator = MarketSimulator(SimulatorConfig(days=5, exchanges=("bitstamp", "itbit"), seed=11,
                                                signal=signal, snapshot_interval="30s", levels=10))
    with MarketStore(f"sqlite:///{folder / f'market_{signal}.db'}") as store:
        simulator.simulate_into(store)
        MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
        features = FeatureLabelSet(features=[LogReturns().bitstamp().one_min().lookback(1),
                                             LogReturns().itbit().one_min().lookback(1)],
                                   labels=[LogReturns().itbit().one_min().lookforward(1)])
        data = features.dataset(train=("2024-01-01 00:10", "2024-01-04 12:00"),
                                test=("2024-01-04 12:10", "2024-01-05 23:50"), store=store,
                                classes=ClassLabels("sign"), cache=False)
    return simulator, data


def test_a_dnn_beats_the_majority_baseline_only_where_there_is_a_signal(tmp_path):
    for signal in (0.3, 0.0):
        simulator, data = simulated_dataset(tmp_path, signal)
        shape = DataShape(n_features=data.n_features, n_classes=data.n_classes)
        # the last 1000 training rows validate; one row between them and the rest is the label's horizon
        x, y = data.X_train, data.y_train
        model = make_model("dnn_classifier", {"hidden_units": [16, 8], "learning_rate": 0.003}, shape)
        model.fit(x[:-1001], y[:-1001], validation=(x[-1000:], y[-1000:]),
                  options=FitOptions(epochs=30, batch_size=128, patience=3, seed=0))
        baseline = make_model("majority_classifier", {}, shape)
        baseline.fit(x, y)
        accuracy = float(np.mean(model.predict(data.X_test) == data.y_test))
        base = float(np.mean(baseline.predict(data.X_test) == data.y_test))
        z = (accuracy - base) / math.sqrt(base * (1 - base) / len(data.y_test))
        # nothing beats the oracle, the sign of the best possible prediction, on the whole run or these rows
        # (scored as best_accuracy scores it: a prediction of 0 is a coin flip); 3 standard errors of slack
        truth = simulator.truth().loc[data.index_test]
        agreement = np.sign(truth["prediction_itbit_btc_usd"]) * np.sign(truth["next_return_itbit_btc_usd"])
        oracle = float(np.mean(np.where(agreement > 0, 1.0, np.where(agreement < 0, 0.0, 0.5))))
        slack = 3 * math.sqrt(0.25 / len(data.y_test))
        assert accuracy <= min(simulator.best_accuracy(), oracle) + slack, (accuracy, oracle)
        if signal:
            assert z > 3 and accuracy > 0.55, (accuracy, base, z)
        else:
            assert z < 3 and abs(accuracy - 0.5) < 0.04, (accuracy, base, z)
