"""Leak-free datasets: fitted on train only, purged splits, balancing, windows, hashing, serving inputs."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas.data.dataset import (
    ClassLabels,
    Dataset,
    FittedClassLabels,
    FittedScaler,
    Scaler,
    Split,
    Transforms,
    apply_transforms,
    balance,
    make_dataset,
    purge,
    sequence_windows,
    train_test_split,
    triple_barrier_labels,
    walk_forward,
    window_targets,
)
from atlas.exceptions import ConfigError

T0 = pd.Timestamp("2024-03-01", tz="UTC")
N = 600
FEATURES = ["x1", "x2", "flat"]


def synthetic_frame(n: int = N, seed: int = 7) -> pd.DataFrame:
    """Three features on a one-minute grid; the label is a planted, exact function of x1 at the same row."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(T0, periods=n, freq="1min", name="bucket")
    x1 = rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": rng.normal(5.0, 3.0, size=n), "flat": np.full(n, 2.5),
                         "ret": 0.001 * x1}, index=index)


def windows_of(frame: pd.DataFrame, train_rows: int = 400) -> dict:
    index = frame.index
    return {"train": (index[0], index[train_rows - 1]), "test": (index[train_rows], index[-1])}


def build(frame: pd.DataFrame | None = None, **options) -> Dataset:
    frame = synthetic_frame() if frame is None else frame
    arguments = {"features": FEATURES, "label": "ret", "horizon": 3, **windows_of(frame),
                 "labels": ClassLabels("percentile", thresholds=(0.33, 0.67))}
    arguments.update(options)
    return make_dataset(frame, **arguments)


# --- fitted on the training window only ---------------------------------------------------------------------

def test_changing_only_test_data_leaves_every_fitted_transform_unchanged():
    frame = synthetic_frame()
    base = build(frame)
    changed = frame.copy()
    test_rows = changed.index >= windows_of(frame)["test"][0]
    changed.loc[test_rows, ["x1", "x2", "ret"]] = changed.loc[test_rows, ["x1", "x2", "ret"]] * 50 + 3
    other = build(changed)
    assert other.transforms == base.transforms
    np.testing.assert_array_equal(other.X_train, base.X_train)
    np.testing.assert_array_equal(other.y_train, base.y_train)
    assert not np.array_equal(other.X_test, base.X_test)

    changed_train = frame.copy()
    changed_train.iloc[10, changed_train.columns.get_indexer(["x1", "x2"])] = [40.0, -30.0]
    changed_train.iloc[:100, changed_train.columns.get_loc("ret")] += 0.01
    moved = build(changed_train)
    assert moved.transforms.scaler.center != base.transforms.scaler.center
    assert moved.transforms.labels.cut_points != base.transforms.labels.cut_points


def test_scaler_and_cut_points_are_the_training_rows_statistics():
    frame = synthetic_frame()
    ds = build(frame)
    train_rows = frame.loc[ds.index_train]  # the training rows after the purge
    assert len(train_rows) == 400 - 3  # the last 3 training rows' labels read into the test window
    scaler = ds.transforms.scaler
    assert scaler.center[:2] == pytest.approx(train_rows[["x1", "x2"]].mean().tolist(), rel=1e-12)
    assert scaler.scale[:2] == pytest.approx(train_rows[["x1", "x2"]].std(ddof=0).tolist(), rel=1e-12)
    cut_points = np.quantile(train_rows["ret"], [0.33, 0.67])
    assert ds.transforms.labels.cut_points == pytest.approx(cut_points, rel=1e-12)
    assert np.bincount(ds.y_train).tolist() == [131, 135, 131]  # 33% / 34% / 33% of 397 training labels


# --- scaling ------------------------------------------------------------------------------------------------

def test_scalers_by_hand_and_constant_columns_without_warnings():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0], "b": [7.0] * 5, "c": [0.1] * 5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zscore = Scaler("zscore").fit(frame)
        robust = Scaler("robust").fit(frame)
        scaled = zscore.transform(frame)
    assert zscore.center[0] == pytest.approx(22.0) and zscore.scale[0] == pytest.approx(np.std(frame["a"]))
    assert (robust.center[0], robust.scale[0]) == (3.0, 2.0)  # median 3, IQR 4 - 2
    assert zscore.scale[1:] == (1.0, 1.0) and robust.scale[1:] == (1.0, 1.0)
    assert scaled["b"].tolist() == [0.0] * 5 and scaled["c"].abs().max() < 1e-15
    assert Scaler("none").fit(frame).transform(frame).equals(frame)
    np.testing.assert_allclose(zscore.inverse_transform(scaled), frame)


def test_scaler_ignores_missing_values_and_keeps_them_missing():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0]})
    fitted = Scaler("zscore").fit(frame)
    assert (fitted.center, fitted.scale) == ((2.0,), (1.0,))
    assert np.isnan(fitted.transform(frame)["a"][1])


def test_scaler_round_trip_through_json_and_column_checks():
    fitted = Scaler("robust").fit(pd.DataFrame({"a": [1.0, 2.0, 5.0], "b": [3.0, 1.0, 0.0]}))
    again = FittedScaler.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again == fitted
    swapped = pd.DataFrame({"b": [1.0], "a": [1.0]})  # columns by name, not by position
    assert fitted.transform(swapped).columns.tolist() == ["a", "b"]
    with pytest.raises(ConfigError, match=r"missing \['b'\], unexpected \['bb'\]"):
        fitted.transform(pd.DataFrame({"a": [1.0], "bb": [1.0]}))
    with pytest.raises(ConfigError, match="no finite value"):
        Scaler().fit(pd.DataFrame({"a": [np.nan, np.nan]}))
    with pytest.raises(ConfigError, match="infinite"):
        Scaler().fit(pd.DataFrame({"a": [1.0, np.inf]}))


# --- label classes ------------------------------------------------------------------------------------------

def test_sign_labels_and_zero_by_boundary():
    y = pd.Series([-0.2, 0.0, 0.3, -1e-9])
    assert ClassLabels("sign").fit(y).transform(y).tolist() == [0, 0, 1, 0]
    upper = ClassLabels("sign", boundary="upper").fit(y)
    assert upper.transform(y).tolist() == [0, 1, 1, 0]
    assert upper.class_names == ("down", "up") and upper.cut_points == (0.0,)


def test_bps_thresholds_on_hand_picked_values_and_both_boundaries():
    values = pd.Series([-0.001, -0.0005, -0.0004999, 0.0, 0.0005, 0.00050001, 0.01])
    lower = ClassLabels("bps", thresholds=(-5, 5)).fit(values)
    upper = ClassLabels("bps", thresholds=(-5, 5), boundary="upper").fit(values)
    assert lower.cut_points == (-0.0005, 0.0005) and lower.class_names == ("down", "flat", "up")
    assert lower.transform(values).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert upper.transform(values).tolist() == [0, 1, 1, 1, 2, 2, 2]
    # bps cut points do not learn from data: other training labels give the same classes
    assert ClassLabels("bps", thresholds=(-5, 5)).fit(values * 100).cut_points == lower.cut_points


def test_percentile_thresholds_are_quantiles_of_the_training_labels():
    rng = np.random.default_rng(3)
    y_train = pd.Series(rng.normal(size=1001))
    fitted = ClassLabels("percentile", thresholds=(0.33, 0.67)).fit(y_train)
    assert fitted.cut_points == tuple(np.quantile(y_train, [0.33, 0.67]))
    on_cut = pd.Series([fitted.cut_points[0], fitted.cut_points[1]])
    assert fitted.transform(on_cut).tolist() == [0, 1]
    upper = ClassLabels("percentile", thresholds=(0.33, 0.67), boundary="upper").fit(y_train)
    assert upper.transform(on_cut).tolist() == [1, 2]
    with pytest.raises(ConfigError, match="equal cut points"):
        ClassLabels("percentile", thresholds=(0.3, 0.6)).fit(pd.Series([0.0] * 50 + [1.0, -1.0]))


def test_missing_labels_stay_missing_and_regression_passes_through():
    y = pd.Series([0.1, np.nan, -0.1], index=list("abc"), name="ret")
    classes = ClassLabels("sign").fit(y).transform(y)
    assert classes.dtype == "Int64" and classes.isna().tolist() == [False, True, False]
    assert classes.index.tolist() == ["a", "b", "c"] and classes.name == "ret"
    passed = ClassLabels("none").fit(y)
    assert passed.class_names is None and passed.transform(y).equals(y)


def test_barrier_labels_become_three_classes_and_labels_round_trip():
    fitted = ClassLabels("barrier").fit(pd.Series([-1.0, 0.0, 1.0, 1.0]))
    assert fitted.transform(pd.Series([1.0, -1.0, 0.0])).tolist() == [2, 0, 1]
    with pytest.raises(ConfigError, match="-1, 0, 1"):
        fitted.transform(pd.Series([0.5]))
    spec = ClassLabels("percentile", thresholds=(0.2, 0.5, 0.8), class_names=("a", "b", "c", "d"))
    assert ClassLabels.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    fitted = spec.fit(pd.Series(np.arange(100.0)))
    assert FittedClassLabels.from_dict(json.loads(json.dumps(fitted.to_dict()))) == fitted


@pytest.mark.parametrize("arguments, message", [
    ({"method": "percentil"}, "did you mean 'percentile'"),
    ({"method": "bps"}, "strictly increasing thresholds"),
    ({"method": "bps", "thresholds": (5, -5)}, "strictly increasing"),
    ({"method": "percentile", "thresholds": (0.5, 1.5)}, "strictly between 0 and 1"),
    ({"method": "sign", "thresholds": (1,)}, "takes no thresholds"),
    ({"method": "sign", "boundary": "uper"}, "did you mean 'upper'"),
    ({"method": "sign", "class_names": ("a", "b", "c")}, "2 distinct names"),
])
def test_label_configuration_errors(arguments, message):
    with pytest.raises(ConfigError, match=message):
        ClassLabels(**arguments)


# --- triple barrier -----------------------------------------------------------------------------------------

def test_triple_barrier_on_a_hand_made_path():
    prices = pd.Series([100.0, 101.0, 102.5, 99.0, 97.0, 97.5, 98.0, 98.5, 98.0])
    vol = pd.Series(0.02, index=prices.index)  # barriers at +-2%
    labels = triple_barrier_labels(prices, vol, horizon=3)
    # t=0: 102.5 >= 102 (upper first); t=1: 99 <= 98.98 no, 97 (lower first); t=2: 99 < 100.45 (lower first);
    # t=3: 97 <= 97.02 (lower); t=4: 97.5, 98, 98.5 < 98.94 and > 95.06 (neither); t=5: neither; last 3: NaN
    assert labels.iloc[:6].tolist() == [1.0, -1.0, -1.0, -1.0, 0.0, 0.0]
    assert labels.iloc[6:].isna().all() and labels.index.equals(prices.index)
    # a wider upper barrier: t=0 sees no touch within 3 buckets
    assert triple_barrier_labels(prices, vol, horizon=3, upper=2.0).iloc[0] == 0.0


def slow_triple_barrier(prices, vol, horizon, upper, lower):
    out = np.full(len(prices), np.nan)
    for t in range(len(prices) - horizon):
        top, bottom = prices[t] * (1 + upper * vol[t]), prices[t] * (1 - lower * vol[t])
        out[t] = 0.0
        for price in prices[t + 1:t + horizon + 1]:
            if price >= top and price <= bottom:
                break
            if price >= top:
                out[t] = 1.0
                break
            if price <= bottom:
                out[t] = -1.0
                break
    return out


@pytest.mark.parametrize("horizon, upper, lower", [(1, 1.0, 1.0), (5, 1.0, 2.0), (20, 0.5, 1.5)])
def test_triple_barrier_matches_a_slow_reference_loop(horizon, upper, lower):
    rng = np.random.default_rng(horizon)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=700)))
    vol = np.abs(rng.normal(0.01, 0.005, size=700))
    fast = triple_barrier_labels(pd.Series(prices), pd.Series(vol), horizon=horizon, upper=upper, lower=lower)
    slow = slow_triple_barrier(prices, vol, horizon, upper, lower)
    np.testing.assert_array_equal(fast.to_numpy(), slow)
    assert set(np.unique(slow[:-horizon])) == {-1.0, 0.0, 1.0}


def test_triple_barrier_missing_values_and_errors():
    prices = pd.Series([100.0, np.nan, 103.0, 100.0, 100.0])
    labels = triple_barrier_labels(prices, pd.Series(0.01, index=prices.index), horizon=1)
    assert labels.isna().tolist() == [True, True, False, False, True]  # t=0's path holds a missing price
    with pytest.raises(ConfigError, match="horizon"):
        triple_barrier_labels(prices, 0.01, horizon=0)
    with pytest.raises(ConfigError, match="negative"):
        triple_barrier_labels(prices, -0.01, horizon=1)
    with pytest.raises(ConfigError, match="another index"):
        triple_barrier_labels(prices, pd.Series(0.01, index=prices.index + 1), horizon=1)


# --- splits -------------------------------------------------------------------------------------------------

INDEX = pd.date_range(T0, periods=100, freq="1min")


@pytest.mark.parametrize("horizon, embargo", [(0, 0), (1, 0), (5, 0), (5, 3)])
def test_purge_and_embargo(horizon, embargo):
    split = train_test_split(INDEX, train=(INDEX[0], INDEX[59]), test=(INDEX[60], INDEX[89]), horizon=horizon,
                             embargo=embargo)
    assert split.test.tolist() == list(range(60, 90))  # both ends included
    assert split.train.tolist() == list(range(0, 60 - horizon - embargo))
    assert (split.purged, split.embargoed) == (horizon, embargo)
    # no training row's label window (i+1 .. i+horizon) reaches a test row
    assert np.all(split.train + horizon < split.test[0])


def test_purge_only_bites_where_labels_reach_the_test_window():
    split = train_test_split(INDEX, train=(INDEX[0], INDEX[49]), test=(INDEX[60], INDEX[89]), horizon=5,
                             embargo=2)
    assert split.train.tolist() == list(range(50)) and (split.purged, split.embargoed) == (0, 0)
    naive_bounds = train_test_split(INDEX, train=("2024-03-01 00:00", "2024-03-01 00:49"),
                                    test=("2024-03-01 01:00", "2024-03-01 01:29"), horizon=5)
    assert naive_bounds == split


def test_embargo_after_a_test_block_and_split_round_trip():
    # training rows on both sides of the test rows 40..59, as in purged cross-validation
    cut = purge(np.r_[0:40, 60:100], 40, 59, horizon=3, embargo=4)
    assert cut.train.tolist() == list(range(0, 33)) + list(range(64, 100))
    assert (cut.purged, cut.embargoed) == (3, 8)
    assert Split.from_dict(json.loads(json.dumps(cut.to_dict()))) == cut
    assert not cut.train.flags.writeable


@pytest.mark.parametrize("train, test, message", [
    ((INDEX[0], INDEX[60]), (INDEX[60], INDEX[80]), "overlap"),
    ((INDEX[50], INDEX[60]), (INDEX[0], INDEX[20]), "wrong order"),
    ((INDEX[0], INDEX[2]), (INDEX[3], INDEX[20]), "no training row is left"),
    ((INDEX[0], INDEX[20]), (INDEX[-1] + pd.Timedelta("1h"), INDEX[-1] + pd.Timedelta("2h")), "holds no row"),
    ((INDEX[20], INDEX[0]), (INDEX[30], INDEX[40]), "starts after it ends"),
    ((INDEX[0],), (INDEX[30], INDEX[40]), r"\(start, end\) pair"),
])
def test_split_errors(train, test, message):
    with pytest.raises(ConfigError, match=message):
        train_test_split(INDEX, train=train, test=test, horizon=5)


def test_split_needs_a_sorted_datetime_index():
    with pytest.raises(ConfigError, match="increasing, unique"):
        train_test_split(INDEX[::-1], train=(INDEX[0], INDEX[10]), test=(INDEX[20], INDEX[30]), horizon=1)
    with pytest.raises(ConfigError, match="DatetimeIndex"):
        train_test_split(pd.RangeIndex(10), train=(0, 3), test=(5, 9), horizon=1)


def test_walk_forward_expanding_and_sliding():
    expanding = walk_forward(INDEX, n_folds=4, test_size=10, mode="expanding", horizon=2, embargo=1)
    sliding = walk_forward(INDEX, n_folds=4, test_size=10, train_size=30, mode="sliding", horizon=2,
                           embargo=1)
    for folds in (expanding, sliding):
        tests = np.concatenate([f.test for f in folds])
        assert tests.tolist() == list(range(60, 100))  # contiguous, non-overlapping, ending at the last row
        for fold in folds:
            assert len(fold.test) == 10
            assert fold.train[-1] + 2 + 1 < fold.test[0]  # strictly before, beyond horizon and embargo
            assert fold.test[0] - fold.train[-1] - 1 == 3  # the gap is exactly horizon + embargo rows
    assert [f.train[0] for f in expanding] == [0, 0, 0, 0]
    assert [len(f.train) for f in expanding] == [57, 67, 77, 87]
    assert [len(f.train) for f in sliding] == [30] * 4
    assert [int(f.train[0]) for f in sliding] == [27, 37, 47, 57]


def test_walk_forward_errors_say_how_much_data_is_needed():
    with pytest.raises(ConfigError, match="= 106 rows, the index has 100"):
        walk_forward(INDEX, n_folds=5, test_size=15, train_size=30, mode="sliding", horizon=1)
    with pytest.raises(ConfigError, match="needs train_size"):
        walk_forward(INDEX, n_folds=2, test_size=10, mode="sliding", horizon=1)
    with pytest.raises(ConfigError, match="did you mean 'sliding'"):
        walk_forward(INDEX, n_folds=2, test_size=10, mode="slidng", horizon=1)
    with pytest.raises(ConfigError, match="n_folds"):
        walk_forward(INDEX, n_folds=0, test_size=10, horizon=1)


# --- balancing ----------------------------------------------------------------------------------------------

Y = np.array([0] * 60 + [1] * 25 + [2] * 15)
np.random.default_rng(0).shuffle(Y)
X = np.arange(len(Y) * 2, dtype=float).reshape(-1, 2)


@pytest.mark.parametrize("method, counts", [("undersample", [15, 15, 15]), ("oversample", [60, 60, 60])])
def test_resampling_counts_time_order_and_seed(method, counts):
    X_out, y_out, weights = balance(X, Y, method, seed=5)
    assert weights is None and np.bincount(y_out).tolist() == counts
    rows = X_out[:, 0] / 2  # X's first column encodes the row position
    assert np.all(np.diff(rows) >= 0)  # time order kept
    np.testing.assert_array_equal(y_out, Y[rows.astype(int)])  # rows and labels stay together
    again = balance(X, Y, method, seed=5)
    other = balance(X, Y, method, seed=6)
    np.testing.assert_array_equal(again[0], X_out)
    assert not np.array_equal(other[0], X_out)


def test_class_weights_formula_and_frames():
    X_out, y_out, weights = balance(pd.DataFrame(X), Y, "class_weights")
    assert X_out is not None and y_out is Y
    expected = {0: 100 / (3 * 60), 1: 100 / (3 * 25), 2: 100 / (3 * 15)}
    np.testing.assert_allclose(weights, [expected[c] for c in Y])
    assert weights.sum() == pytest.approx(100)
    frame_out, _, _ = balance(pd.DataFrame(X, index=np.arange(100) * 10), Y, "undersample", seed=1)
    assert isinstance(frame_out, pd.DataFrame) and frame_out.index.is_monotonic_increasing
    with pytest.raises(ConfigError, match="class numbers"):
        balance(X, np.linspace(0, 1, 100), "undersample")
    with pytest.raises(ConfigError, match="did you mean 'oversample'"):
        balance(X, Y, "oversampling")


# --- sequence windows ---------------------------------------------------------------------------------------

def test_sequence_windows_are_views_that_end_at_their_row():
    rows = np.arange(30, dtype=np.float32).reshape(10, 3)
    windows = sequence_windows(rows, 4)
    assert windows.shape == (7, 4, 3)
    assert np.shares_memory(windows, rows) and not windows.flags.writeable
    for k in range(7):
        np.testing.assert_array_equal(windows[k], rows[k:k + 4])
        np.testing.assert_array_equal(windows[k, -1], rows[k + 3])
    targets = window_targets(np.arange(10), 4)
    assert targets.tolist() == list(range(3, 10)) and len(targets) == len(windows)
    assert sequence_windows(np.arange(5.0), 2).shape == (4, 2)
    with pytest.raises(ConfigError, match="at least 11 rows"):
        sequence_windows(rows, 11)


# --- make_dataset, end to end -------------------------------------------------------------------------------

def test_make_dataset_keeps_the_planted_relation_row_by_row():
    frame = synthetic_frame()
    ds = build(frame, labels=ClassLabels("sign"))
    scaler = ds.transforms.scaler
    zero = -scaler.center[0] / scaler.scale[0]  # where raw x1 = 0 lands after scaling
    for X_part, y_part in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        np.testing.assert_array_equal(y_part, (X_part[:, 0] > zero).astype(int))  # the label is sign(x1) at t
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.index_test.equals(frame.index[400:]) and ds.feature_names == tuple(FEATURES)
    down, up = np.bincount(ds.y_test).tolist()
    assert ds.summary()["test_classes"] == {"down": down, "up": up}
    frames = ds.to_frames()
    assert frames["test"]["x1"].to_numpy().tolist() == ds.X_test[:, 0].tolist()


def test_regression_labels_stay_numbers():
    ds = build(labels=None)
    assert ds.class_names is None and ds.y_test.dtype == np.float32
    np.testing.assert_allclose(ds.y_test, 0.001 * synthetic_frame()["x1"].iloc[400:], rtol=1e-6)
    with pytest.raises(ConfigError, match="regression"):
        build(labels=None, balance="undersample")


def test_transforms_round_trip_and_rebuild_test_inputs_exactly():
    frame = synthetic_frame()
    ds = build(frame, scaling="robust")
    transforms = json.loads(json.dumps(ds.transforms.to_dict()))
    assert Transforms.from_dict(transforms) == ds.transforms and transforms == ds.transforms.to_dict()
    assert FittedScaler.from_dict(transforms["scaler"]) == ds.transforms.scaler
    assert FittedClassLabels.from_dict(transforms["labels"]) == ds.transforms.labels
    serving_frame = frame.loc[ds.index_test, ["ret", "flat", "x2", "x1"]]  # other columns, other order
    rebuilt = apply_transforms(serving_frame, transforms)
    assert rebuilt.dtype == np.float32
    np.testing.assert_array_equal(rebuilt, ds.X_test)
    np.testing.assert_array_equal(apply_transforms(serving_frame, ds.transforms), ds.X_test)
    ticks = np.stack([ds.transforms.inputs(row) for row in serving_frame[list(ds.feature_names)].to_numpy()])
    np.testing.assert_array_equal(ticks, ds.X_test)  # one tick at a time: the same bits
    with pytest.raises(ConfigError, match=r"no column 'x2' \(did you mean 'x_2'\?\)"):
        apply_transforms(frame.rename(columns={"x2": "x_2"}), transforms)


def test_content_hash_is_deterministic_and_sees_one_changed_value():
    frame = synthetic_frame()
    first, second = build(frame), build(synthetic_frame())
    assert first.content_hash == second.content_hash and len(first.content_hash) == 64
    changed = frame.copy()
    changed.iloc[450, 1] += 1e-6  # one test value
    assert build(changed).content_hash != first.content_hash
    assert build(frame, scaling="robust").content_hash != first.content_hash
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import test_dataset as t; "
              "print(t.build().content_hash)")
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True,
                         text=True, env=environment, check=True, timeout=120)
    assert out.stdout.strip() == first.content_hash


def test_sequence_windows_in_a_dataset():
    frame = synthetic_frame()
    ds = build(frame, window=5, balance="class_weights")
    assert len(ds.rows_train) == 397 and len(ds.y_train) == len(ds.index_train) == 397 - 4
    assert len(ds.y_test) == 200 - 4 and ds.index_test[0] == frame.index[404]
    windows = ds.windows("test")
    assert windows.shape == (196, 5, 3) and np.shares_memory(windows, ds.rows_test)
    np.testing.assert_array_equal(windows[:, -1], ds.X_test)  # each window ends at its sample's row
    np.testing.assert_array_equal(ds.inputs("train"), ds.windows("train"))
    assert ds.sample_weight.shape == ds.y_train.shape
    unwindowed = build(frame)
    np.testing.assert_array_equal(ds.X_test, unwindowed.X_test[4:])
    np.testing.assert_array_equal(ds.y_test, unwindowed.y_test[4:])
    with pytest.raises(ConfigError, match="class_weights"):
        build(frame, window=5, balance="oversample")
    with pytest.raises(ConfigError, match="has no sequence window"):
        unwindowed.windows("train")


def test_raw_label_values_stand_behind_every_sample_through_windows_and_balancing():
    """The realized forward return behind each class label is kept, so trading statistics need no rebuild."""
    frame = synthetic_frame()
    for options in ({}, {"window": 5, "balance": "class_weights"}, {"balance": "undersample", "seed": 3}):
        ds = build(frame, **options)
        for part in ("train", "test"):
            raw, index = getattr(ds, f"raw_{part}"), getattr(ds, f"index_{part}")
            np.testing.assert_array_equal(raw, frame.loc[index, "ret"].to_numpy())
            assert raw.dtype == np.float64 and not raw.flags.writeable
    changed = frame.copy()
    changed.iloc[450, 3] *= 1.5  # the raw return moves, its class does not
    assert np.array_equal(build(changed).y_test, build(frame).y_test)
    assert build(changed).content_hash != build(frame).content_hash


def test_balancing_touches_training_data_only():
    plain = build()
    under = build(balance="undersample", seed=3)
    assert len(set(np.bincount(under.y_train).tolist())) == 1
    assert under.index_train.is_monotonic_increasing
    np.testing.assert_array_equal(under.X_test, plain.X_test)
    np.testing.assert_array_equal(under.y_test, plain.y_test)
    assert build(balance="undersample", seed=3).content_hash == under.content_hash


def test_embargo_and_missing_rows_in_make_dataset():
    frame = synthetic_frame()
    frame.iloc[5, 0] = np.nan  # a feature missing in a training row
    frame.iloc[-2:, 3] = np.nan  # labels that read past the data
    ds = build(frame, embargo=4)
    assert frame.index[5] not in ds.index_train
    assert ds.index_train[-1] == frame.index[400 - 3 - 4 - 1]
    assert len(ds.y_test) == 198 and not np.isnan(ds.X_train).any()


def test_dataset_arrays_are_read_only_also_after_pickling():
    ds = build(balance="class_weights", window=3)
    again = pickle.loads(pickle.dumps(ds))
    assert again.content_hash == ds.content_hash and again.transforms == ds.transforms
    for dataset in (ds, again):
        arrays = (dataset.rows_train, dataset.y_train, dataset.X_test, dataset.y_test, dataset.sample_weight)
        for array in arrays:
            with pytest.raises(ValueError):
                array[0] = 0


@pytest.mark.parametrize("options, message", [
    ({"scaling": "zscor"}, "did you mean 'zscore'"),
    ({"balance": "undersampel"}, "did you mean 'undersample'"),
    ({"labels": "percentil"}, "did you mean 'percentile'"),
    ({"features": ["x1", "x_2"]}, "did you mean 'x2'"),
    ({"features": ["x1", "ret"]}, "also a feature"),
    ({"window": 300}, "needs at least 300"),
    ({"train": (T0, T0 + pd.Timedelta("500min"))}, "overlap"),
    ({"horizon": -1}, "horizon"),
])
def test_make_dataset_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        build(**options)
