"""The predictions frame: its contract, its clear errors, and the Parquet round trip with the metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import atlas.stats._predictions as predictions_module
from atlas.exceptions import ConfigError
from atlas.stats import MAX_ROWS_PER_PART, Predictions, check_predictions


def classifier_frame(rows: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), size=rows)
    buckets = pd.date_range("2024-03-01", periods=rows, freq="1min", tz="UTC")
    frame = pd.DataFrame({"bucket": buckets, "part": np.where(np.arange(rows) < rows // 2, "validation", "test"),
                          "y_true": rng.integers(0, 3, rows), "forward_return": rng.normal(0, 1e-3, rows),
                          "y_pred": proba.argmax(axis=1)})
    for k, name in enumerate(("down", "flat", "up")):
        frame[f"proba_{name}"] = proba[:, k]
    frame.loc[rows - 1, "forward_return"] = np.nan  # the last label's return is unknown
    return frame


def regressor_frame(rows: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"bucket": pd.date_range("2024-03-01", periods=rows, freq="5min", tz="UTC"),
                         "part": "test", "y_true": rng.normal(size=rows), "forward_return": rng.normal(size=rows),
                         "y_pred": rng.normal(size=rows)})


def test_a_classifier_frame_is_checked_and_reads_its_classes_from_the_probability_columns():
    predictions = check_predictions(classifier_frame(), bucket_width="60s", horizon=5, baseline_class=2)
    assert predictions.task == "classification"
    assert predictions.class_names == ("down", "flat", "up")
    assert predictions.bucket_width == "1min" and predictions.horizon == 5
    assert predictions.parts == ("test", "validation")
    assert str(predictions.frame["bucket"].dtype) == "datetime64[ns, UTC]"
    assert list(predictions.frame.columns) == ["bucket", "part", "y_true", "forward_return", "y_pred",
                                               "proba_down", "proba_flat", "proba_up"]
    test = predictions.part("test")
    assert len(test.frame) == 25 and test.baseline_class == 2 and test.proba.shape == (25, 3)


def test_a_regressor_frame_has_no_classes():
    predictions = check_predictions(regressor_frame(), bucket_width="5min", horizon=1, train_mean=0.1)
    assert predictions.task == "regression" and predictions.class_names is None
    assert predictions.proba is None and predictions.train_mean == 0.1
    with pytest.raises(ConfigError, match="no 'validation' rows"):
        predictions.part("validation")


@pytest.mark.parametrize("column", ["bucket", "part", "y_true", "forward_return", "y_pred"])
def test_a_missing_column_is_named(column):
    with pytest.raises(ConfigError, match=f"no column '{column}'"):
        check_predictions(classifier_frame().drop(columns=column), bucket_width="1min", horizon=1)


def test_a_missing_probability_column_is_named():
    frame = classifier_frame().drop(columns="proba_flat")
    with pytest.raises(ConfigError, match="no column 'proba_flat'.*proba_<class> column per class"):
        check_predictions(frame, class_names=("down", "flat", "up"), bucket_width="1min", horizon=1)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.assign(extra=1.0), "outside the contract: \\['extra'\\]"),
    (lambda f: f.assign(bucket=f["bucket"].dt.tz_localize(None)), "naive timestamps"),
    (lambda f: f.assign(part="train"), "part column holds \\['train'\\]"),
    (lambda f: f.assign(proba_up=np.where(np.arange(len(f)) == 3, np.nan, f["proba_up"])),
     "proba has 1 of 50 rows that are NaN .*row 3"),
    (lambda f: f.assign(y_true=f["y_true"] + 1), "y_true must be class ids 0..2"),
    (lambda f: f.assign(proba_up=f["proba_up"] + 0.1), "sum to 1"),
    (lambda f: f.assign(forward_return=np.inf), "forward_return must be finite or NaN"),
    (lambda f: f.iloc[::-1], "buckets must strictly increase"),
])
def test_frames_that_break_the_contract_are_refused_with_the_reason(change, message):
    with pytest.raises(ConfigError, match=message):
        check_predictions(change(classifier_frame()), bucket_width="1min", horizon=1)


def test_metadata_is_required_and_checked():
    with pytest.raises(ConfigError, match="needs bucket_width"):
        check_predictions(classifier_frame(), horizon=1)
    with pytest.raises(ConfigError, match="needs horizon"):
        check_predictions(classifier_frame(), bucket_width="1min")
    with pytest.raises(ConfigError, match="horizon must be a whole number of at least 1"):
        check_predictions(classifier_frame(), bucket_width="1min", horizon=0)
    with pytest.raises(ConfigError, match="baseline_class must be class ids 0..2"):
        check_predictions(classifier_frame(), bucket_width="1min", horizon=1, baseline_class=3)
    with pytest.raises(ConfigError, match="a regressor has no probabilities"):
        check_predictions(classifier_frame(), task="regression", bucket_width="1min", horizon=1)
    with pytest.raises(ConfigError, match="no column 'y_pred'"):
        check_predictions(regressor_frame().drop(columns="y_pred"), bucket_width="1min", horizon=1)


def test_to_frame_carries_the_metadata_back_into_check_predictions():
    predictions = check_predictions(classifier_frame(), bucket_width="1min", horizon=3, baseline_class=1)
    again = check_predictions(predictions.to_frame())
    assert again.metadata() == predictions.metadata()
    pd.testing.assert_frame_equal(again.frame, predictions.frame)


@pytest.mark.parametrize("make", [classifier_frame, regressor_frame])
def test_the_parquet_round_trip_keeps_the_rows_and_the_metadata(tmp_path, make):
    width = "1min" if make is classifier_frame else "5min"
    extra = {"baseline_class": 0} if make is classifier_frame else {"train_mean": -0.25}
    predictions = check_predictions(make(), bucket_width=width, horizon=4, **extra)
    path = predictions.to_parquet(tmp_path / "predictions.parquet")
    back = Predictions.from_parquet(path)
    assert back.metadata() == predictions.metadata()
    probabilities = predictions.proba_columns
    pd.testing.assert_frame_equal(back.frame.drop(columns=probabilities),
                                  predictions.frame.drop(columns=probabilities))
    # probabilities travel as float32: within float32 rounding, and each row still sums to 1
    np.testing.assert_allclose(back.frame[probabilities], predictions.frame[probabilities], atol=1e-7)
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    assert all(str(schema.field(c).type) == "float" for c in probabilities)
    assert b"atlas.predictions" in schema.metadata


def test_a_parquet_file_without_the_metadata_is_not_read_as_predictions(tmp_path):
    path = tmp_path / "other.parquet"
    regressor_frame().to_parquet(path)
    with pytest.raises(ConfigError, match="not an Atlas predictions file"):
        Predictions.from_parquet(path)


def test_a_part_above_the_row_limit_is_refused(monkeypatch):
    assert MAX_ROWS_PER_PART == 1_000_000
    monkeypatch.setattr(predictions_module, "MAX_ROWS_PER_PART", 20)
    with pytest.raises(ConfigError, match="the 'test' part holds 25 rows, above the 20"):
        check_predictions(classifier_frame(), bucket_width="1min", horizon=1)
    check_predictions(classifier_frame(rows=40), bucket_width="1min", horizon=1)  # 20 rows a part: kept
