"""Gaps and ties are visible: windows across a weekend are dropped (or kept) and counted, exact-zero returns under
ClassLabels("sign") are counted and go where ``ties`` says, and plot_data breaks its lines at gaps."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from atlas.data import MarketStore
from atlas.data.dataset import (
    ClassLabels,
    FittedClassLabels,
    Transforms,
    make_dataset,
    sequence_windows,
    window_gaps,
    window_targets,
)
from atlas.data.features import Close, LogReturns
from atlas.data.featureset import FeatureLabelSet
from atlas.data.featureset._plot import plot_frame, with_breaks
from atlas.exceptions import ConfigError

HOUR = pd.Timedelta("1h")
# Monday 2024-01-01 .. Friday 2024-01-19 on an hourly grid, without the weekends (Saturday and Sunday)
GRID = pd.date_range("2024-01-01", "2024-01-19 23:00", freq="1h", tz="UTC")
INDEX = GRID[GRID.day_of_week < 5]
TRAIN = (INDEX[0], pd.Timestamp("2024-01-12 12:00", tz="UTC"))  # holds the first weekend
TEST = (pd.Timestamp("2024-01-12 18:00", tz="UTC"), INDEX[-1])   # holds the second one
ZEROS = pd.DatetimeIndex(["2024-01-03 10:00", "2024-01-08 02:00", "2024-01-10 15:00",  # train: 3 ties, one
                          "2024-01-15 01:00", "2024-01-17 09:00"], tz="UTC")           # (01-08 02:00) just after
WINDOW = 5                                                                             # the weekend; test: 2


def weekday_frame() -> pd.DataFrame:
    """A feature and a return label on the hourly grid, weekends missing, the label exactly 0 at ZEROS."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"x": rng.normal(size=len(INDEX)), "ret": rng.normal(0, 1e-3, len(INDEX))}, index=INDEX)
    frame.loc[ZEROS, "ret"] = 0.0
    assert (frame["ret"] == 0).sum() == len(ZEROS)
    return frame


def build(frame=None, **options):
    options = {"labels": ClassLabels("sign"), "horizon": 1, "bucket": "1h", **options}
    return make_dataset(weekday_frame() if frame is None else frame, features=["x"], label="ret", train=TRAIN,
                        test=TEST, **options)


def part_index(part: str) -> pd.DatetimeIndex:
    start, end = TRAIN if part == "train" else TEST
    return INDEX[(INDEX >= start) & (INDEX <= end)]


def across_the_weekend(part: str, window: int) -> pd.DatetimeIndex:
    """The rows whose window of ``window`` rows is not ``window`` consecutive hours: by the span of its rows."""
    rows = part_index(part)
    return pd.DatetimeIndex([rows[k] for k in range(window - 1, len(rows))
                             if rows[k] - rows[k - window + 1] != (window - 1) * HOUR])


def test_window_gaps_agrees_with_the_span_of_each_window():
    rng = np.random.default_rng(3)
    stamps = np.cumsum(rng.choice([1, 1, 1, 2, 5], size=300))
    for length in (1, 2, 3, 7):
        expected = [stamps[k + length - 1] - stamps[k] != length - 1 for k in range(len(stamps) - length + 1)]
        assert window_gaps(stamps, length).tolist() == expected
        index = pd.DatetimeIndex(pd.Timestamp("2024-01-01", tz="UTC") + stamps * pd.Timedelta("1min"))
        assert window_gaps(index, length, bucket="1min").tolist() == expected
    assert not window_gaps(INDEX[:30], 5, bucket="1h").any()
    assert window_gaps(INDEX[100:130], 5, bucket="1h").sum() == 4  # Friday 23:00 then Monday 00:00
    with pytest.raises(ConfigError, match="bucket must be a positive width"):
        window_gaps(INDEX, 5, bucket="soon")
    with pytest.raises(ConfigError, match="time order"):
        window_gaps(INDEX[::-1], 5, bucket="1h")


def test_keep_selects_windows_and_targets_alike():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    keep = ~window_gaps(np.array([0, 1, 2, 3, 5, 6, 7, 8, 9, 10]), 3)
    windows, targets = sequence_windows(X, 3, keep=keep), window_targets(y, 3, keep=keep)
    assert len(windows) == len(targets) == 6 and keep.sum() == 6
    assert windows[:, -1, 0].tolist() == (2 * targets).tolist()  # each window ends at its target's row
    assert not windows.flags.writeable
    assert np.shares_memory(sequence_windows(X, 3, keep=np.ones(8, bool)), X)  # nothing dropped: still a view
    with pytest.raises(ConfigError, match="one boolean flag per window"):
        sequence_windows(X, 3, keep=np.ones(5, bool))


def test_windows_across_the_weekend_are_dropped_and_counted():
    ds = build(window=WINDOW)
    for part in ("train", "test"):
        across = across_the_weekend(part, WINDOW)
        assert len(across) == WINDOW - 1  # the weekend sits inside every window that starts before it
        assert ds.report[part]["windows_across_gaps"] == ds.report[part]["windows_dropped"] == len(across)
        candidates = part_index(part)[WINDOW - 1:]
        index = getattr(ds, f"index_{part}")
        assert len(index) == len(candidates) - len(across)
        assert index.equals(candidates.difference(across))
        summary = ds.summary()
        assert summary[f"{part}_windows_dropped"] == len(across) and summary[f"{part}_samples"] == len(index)
    assert ds.summary()["allow_gaps"] is False and ds.transforms.allow_gaps is False


def test_allow_gaps_keeps_the_windows_across_the_weekend_and_counts_them():
    ds = build(window=WINDOW, allow_gaps=True)
    for part in ("train", "test"):
        across = len(across_the_weekend(part, WINDOW))
        assert ds.report[part] == {"windows_across_gaps": across, "windows_dropped": 0,
                                   "zero_labels": 2 + (part == "train"), "ties_dropped": 0}
        assert getattr(ds, f"index_{part}").equals(part_index(part)[WINDOW - 1:])
    assert ds.positions_train is None and np.shares_memory(ds.windows("train"), ds.rows_train)
    assert Transforms.from_dict(json.loads(json.dumps(ds.transforms.to_dict()))).allow_gaps is True


@pytest.mark.parametrize("ties", ["down", "drop"])
def test_kept_windows_end_on_the_row_they_predict_and_are_consecutive_hours(ties):
    frame = weekday_frame()
    ds = build(frame, window=WINDOW, labels=ClassLabels("sign", ties=ties))
    for part in ("train", "test"):
        windows, y, index = ds.windows(part), getattr(ds, f"y_{part}"), getattr(ds, f"index_{part}")
        assert len(windows) == len(y) == len(index) == len(getattr(ds, f"raw_{part}"))
        for k in (0, 1, len(index) // 2, len(index) - 1, *range(90, 100)):
            if k >= len(index):
                continue
            hours = pd.date_range(index[k] - (WINDOW - 1) * HOUR, index[k], freq="1h")
            assert hours.isin(frame.index).all()  # every bucket of the window is there: no gap inside
            np.testing.assert_array_equal(windows[k], ds.transforms.inputs(frame.loc[hours, ["x"]]))
            assert y[k] == int(frame.loc[index[k], "ret"] > 0)
        np.testing.assert_array_equal(getattr(ds, f"X_{part}"), windows[:, -1, :])


def test_zero_returns_are_counted_per_part_whatever_ties_is():
    for ties in ("down", "up", "drop"):
        for window in (None, WINDOW):
            ds = build(window=window, labels=ClassLabels("sign", ties=ties))
            assert ds.report["train"]["zero_labels"] == 3 and ds.report["test"]["zero_labels"] == 2
            assert ds.summary()["train_zero_labels"] == 3 and ds.summary()["test_zero_labels"] == 2
            dropped = {"train": 3, "test": 2} if ties == "drop" else {"train": 0, "test": 0}
            assert {p: ds.report[p]["ties_dropped"] for p in ("train", "test")} == dropped
    assert build(labels=None).report["train"]["zero_labels"] == 3  # a regression label counts them too


def test_ties_drop_removes_exactly_the_tie_rows_and_keeps_x_and_y_aligned():
    frame = weekday_frame()
    kept, dropped = build(frame, labels=ClassLabels("sign", ties="down")), \
        build(frame, labels=ClassLabels("sign", ties="drop"))
    for part in ("train", "test"):
        before, after = getattr(kept, f"index_{part}"), getattr(dropped, f"index_{part}")
        ties = ZEROS[(ZEROS >= part_index(part)[0]) & (ZEROS <= part_index(part)[-1])]
        assert before.difference(after).equals(ties) and after.equals(before.difference(ties))
        X, y, raw = getattr(dropped, f"X_{part}"), getattr(dropped, f"y_{part}"), getattr(dropped, f"raw_{part}")
        assert len(X) == len(y) == len(raw) == len(after) == len(before) - len(ties)
        np.testing.assert_array_equal(X, dropped.transforms.inputs(frame.loc[after, ["x"]]))
        assert y.tolist() == (frame.loc[after, "ret"] > 0).astype(int).tolist()
        assert (raw != 0).all() and (frame.loc[after, "ret"].to_numpy() == raw).all()


def test_ties_drop_with_windows_keeps_the_tie_rows_as_history():
    frame = weekday_frame()
    ds = build(frame, window=WINDOW, allow_gaps=True, labels=ClassLabels("sign", ties="drop"))
    assert len(ds.rows_train) == len(part_index("train"))  # no row went: ties are history of later windows
    assert not ds.index_train.isin(ZEROS).any() and not ds.index_test.isin(ZEROS).any()
    after = pd.Timestamp("2024-01-03 11:00", tz="UTC")  # the window ending an hour after a tie holds it
    k = ds.index_train.get_loc(after)
    hours = pd.date_range(after - (WINDOW - 1) * HOUR, after, freq="1h")
    np.testing.assert_array_equal(ds.windows("train")[k], ds.transforms.inputs(frame.loc[hours, ["x"]]))


@pytest.mark.parametrize(("ties", "boundary", "expected"), [("down", "lower", "down"), ("up", "upper", "up"),
                                                            (None, "lower", "down"), (None, "upper", "up")])
def test_ties_up_and_down_put_zero_returns_in_the_named_class(ties, boundary, expected):
    labels = ClassLabels("sign", boundary=boundary, ties=ties)
    assert labels.ties == expected and labels.boundary == boundary
    ds = build(labels=labels)
    names = ds.class_names
    for part in ("train", "test"):
        index, y = getattr(ds, f"index_{part}"), getattr(ds, f"y_{part}")
        at = index.isin(ZEROS)
        assert at.sum() == ds.report[part]["zero_labels"] > 0
        assert {names[c] for c in y[at]} == {expected}


def test_the_default_is_the_old_rule_down_and_nothing_changes_for_existing_users():
    assert ClassLabels("sign") == ClassLabels("sign", ties="down") == ClassLabels("sign", boundary="lower")
    assert ClassLabels("sign", boundary="upper") == ClassLabels("sign", ties="up")
    old = {"method": "sign", "thresholds": [], "boundary": "lower", "class_names": None}  # written before ties
    assert ClassLabels.from_dict(old) == ClassLabels("sign")
    fitted = ClassLabels("sign").fit(pd.Series([-1.0, 1.0]))
    legacy = {k: v for k, v in fitted.to_dict().items() if k != "ties"}
    assert FittedClassLabels.from_dict(legacy) == fitted and fitted.ties == "down"
    assert fitted.transform(pd.Series([0.0, -0.0])).tolist() == [0, 0]
    assert ClassLabels("bps", (-5, 5)).ties is None and ClassLabels("bps", (-5, 5)).to_dict()["ties"] is None


def test_a_bad_ties_value_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"ties must be one of 'down', 'up', 'drop', got ties='dorp'.*'drop'"):
        ClassLabels("sign", ties="dorp")
    with pytest.raises(ConfigError, match=r"ties is an option of label method 'sign' only.*'bps' got ties='drop'"):
        ClassLabels("bps", (-5, 5), ties="drop")
    with pytest.raises(ConfigError, match="boundary='upper'.*ties='down'"):
        ClassLabels("sign", boundary="upper", ties="down")
    with pytest.raises(ConfigError, match="has no option"):
        ClassLabels.from_dict({"method": "sign", "tie": "drop"})
    with pytest.raises(ConfigError, match="allow_gaps must be True or False"):
        build(window=WINDOW, allow_gaps="yes")


def test_a_part_left_without_samples_says_why():
    frame = weekday_frame()
    with pytest.raises(ConfigError, match="test part has no sample left.*allow_gaps=True"):
        make_dataset(frame, features=["x"], label="ret", train=TRAIN, test=("2024-01-12 22:00", "2024-01-15 01:00"),
                     horizon=1, window=4, bucket="1h")


@pytest.fixture
def bars(tmp_path):
    """Hourly closes of bitstamp over two weeks, none on the weekend, three hours unchanged (zero returns)."""
    store = MarketStore(f"sqlite:///{tmp_path / 'bars.db'}", cache_folder=tmp_path / "cache")
    rng = np.random.default_rng(4)
    index = INDEX[INDEX < "2024-01-13"]
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(index)))), index=index)
    for at in ("2024-01-03 10:00", "2024-01-09 15:00", "2024-01-11 04:00"):  # the next close repeats this one
        position = close.index.get_loc(pd.Timestamp(at, tz="UTC"))
        close.iloc[position + 1] = close.iloc[position]
    store.write_series({"bitstamp_btc_usd.1h.close": close})
    yield store
    store.close()


BARS = FeatureLabelSet(features=[LogReturns().bitstamp().bucket("1h").price("close").lookback(1),
                                 Close().bitstamp().bucket("1h")],
                       labels=[LogReturns().bitstamp().bucket("1h").price("close").lookforward(1)], title="bars")


def test_a_featureset_dataset_drops_windows_across_the_weekend_and_counts_ties(bars):
    frame = BARS.build("2024-01-01", "2024-01-12 23:00", store=bars)
    label = BARS.label_names[0]
    train, test = ("2024-01-01", "2024-01-08 12:00"), ("2024-01-08 14:00", "2024-01-12 23:00")
    ds = BARS.dataset(train, test, store=bars, classes=ClassLabels("sign", ties="drop"), window=3)
    kept = BARS.dataset(train, test, store=bars, classes=ClassLabels("sign"), window=3, allow_gaps=True)
    for part, (start, end) in (("train", train), ("test", test)):
        rows = frame.loc[start:end]
        expected = sum(rows.index[k] - rows.index[k - 2] != 2 * HOUR for k in range(2, len(rows)))
        zeros = int((rows[label].iloc[2:] == 0).sum())
        assert ds.report[part]["windows_dropped"] == kept.report[part]["windows_across_gaps"] == expected
        assert ds.report[part]["zero_labels"] == ds.report[part]["ties_dropped"] == zeros
        assert kept.report[part]["windows_dropped"] == 0 and kept.report[part]["zero_labels"] == zeros
    assert ds.report["train"]["windows_dropped"] > 0 and ds.report["train"]["zero_labels"] == 1
    assert ds.report["test"]["zero_labels"] == 2


def test_plot_data_breaks_the_line_at_the_weekend(bars):
    figure = BARS.plot_data("2024-01-04", "2024-01-10", store=bars)
    line = figure.axes[1].get_lines()[0]  # the close
    x, y = line.get_xdata(), np.asarray(line.get_ydata(), dtype=float)
    gap = np.flatnonzero(np.isnan(y))
    assert len(gap) == 1  # one break: Friday 23:00 has no label (Saturday's close is missing) and drops out
    stamps = pd.DatetimeIndex(x)
    assert stamps[gap[0] - 1] < pd.Timestamp("2024-01-06", tz="UTC") < stamps[gap[0] + 1]
    assert stamps[gap[0] + 1] >= pd.Timestamp("2024-01-08", tz="UTC")
    segments = np.count_nonzero(np.diff(np.r_[0, (~np.isnan(y)).astype(int)]) == 1)
    assert segments == 2


def test_plot_frame_inserts_one_break_a_gap_and_draws_a_value_alone_as_a_dot():
    index = pd.date_range("2024-01-01", periods=2000, freq="1min", tz="UTC")
    frame = pd.DataFrame({"f": np.arange(2000.0), "l": np.ones(2000)}, index=index)
    frame = frame.drop(index[500:1500]).drop(index[1600]).drop(index[1602])  # one long gap, a value alone
    broken = with_breaks(frame, "1min")
    assert len(broken) == len(frame) + 3 and broken["f"].isna().sum() == 3  # one row a gap, not the grid
    figure = plot_frame(frame, ["f"], ["l"], subplots=True, title="gaps", bucket="1min")
    lines = figure.axes[0].get_lines()
    assert np.isnan(np.asarray(lines[0].get_ydata(), dtype=float)).sum() == 3
    assert len(lines) == 2 and list(lines[1].get_ydata()) == [1601.0]  # the value between two gaps: a dot
