"""FeatureLabelSet: building leak-free frames and datasets from the store, cleaning, caching and plotting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas.data import MarketSimulator, MarketStore, MetricPipeline, SimulatorConfig
from atlas.data.dataset import ClassLabels
from atlas.data.features import BidStrength, Close, LeakageError, LogReturns, OrderbookImbalance, TimeOfDay
from atlas.data.featureset import FeatureLabelSet
from atlas.data.featureset.presets import PRESETS, example_set
from atlas.exceptions import ConfigError, MissingDataError

START = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """Two simulated days on two exchanges, metrics computed: a store to copy for each test."""
    folder = tmp_path_factory.mktemp("market")
    store = MarketStore(f"sqlite:///{folder / 'market.db'}")
    MarketSimulator(SimulatorConfig(days=2, exchanges="bitstamp,itbit", seed=5, signal=0.3,
                                    snapshot_interval="20s", levels=10)).simulate_into(store)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=(0, 10)).run()
    store.close()
    return folder / "market.db"


@pytest.fixture
def store(market, tmp_path):
    import shutil

    copy = tmp_path / "market.db"
    shutil.copy(market, copy)
    with MarketStore(f"sqlite:///{copy}", cache_folder=tmp_path / "home" / "cache") as market_store:
        yield market_store


def series(store, name: str) -> pd.Series:
    values = store.read_series(name)
    return values.reindex(pd.date_range(values.index[0], values.index[-1], freq="1min"))


def test_example_set_builds_the_readme_columns_from_the_store(store):
    fls = example_set()
    frame = fls.build("2024-01-01 06:00", "2024-01-01 18:00", store=store)
    assert list(frame.columns) == [*fls.feature_names, *fls.label_names]
    assert frame.index[0] == START + pd.Timedelta("6h") and frame.index[-1] == START + pd.Timedelta("18h")
    assert len(frame) == 721 and frame.attrs["report"]["rows"] == 721
    mid = series(store, "bitstamp_btc_usd.1min.midpoint")
    other = series(store, "itbit_btc_usd.1min.midpoint")
    expected = pd.DataFrame({
        "bid": series(store, "bitstamp_btc_usd.1min.bid_strength_s0"),
        "ask": series(store, "bitstamp_btc_usd.1min.ask_strength_s0"),
        "past": np.log(mid / mid.shift(1)),
        "spread": mid - other,
        "next": np.log(mid.shift(-1) / mid),
    }).loc[frame.index]
    np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_the_label_is_exactly_the_next_bucket(store):
    fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)],
                          labels=[LogReturns().bitstamp().lookforward(1), LogReturns().bitstamp().lookforward(3)])
    frame = fls.build("2024-01-01 01:00", "2024-01-01 02:00", store=store)
    past, next_one, next_three = frame.iloc[:, 0], frame.iloc[:, 1], frame.iloc[:, 2]
    # the next bucket's label is the return that the feature sees one bucket later: no n + 1 shift
    np.testing.assert_allclose(next_one.iloc[:-1].to_numpy(), past.iloc[1:].to_numpy(), rtol=1e-12)
    three = past.rolling(3).sum().shift(-3)
    np.testing.assert_allclose(next_three.iloc[:-3].to_numpy(), three.iloc[:-3].to_numpy(), rtol=1e-9)
    assert fls.horizon == 3


def test_leakage_is_refused_when_the_set_is_made():
    label = LogReturns().bitstamp().lookforward(1)
    with pytest.raises(LeakageError, match="lookforward=1"):
        FeatureLabelSet(features=[LogReturns().bitstamp(), label.rolling_mean(3)], labels=[label])
    with pytest.raises(ConfigError, match="labels must read the future"):
        FeatureLabelSet(features=[LogReturns().bitstamp()], labels=[LogReturns().bitstamp().lookback(1)])
    with pytest.raises(ConfigError, match="share one bucket width"):
        FeatureLabelSet(features=[LogReturns().bitstamp().five_min()], labels=[label])
    with pytest.raises(ConfigError, match="appears twice"):
        FeatureLabelSet(features=[LogReturns().bitstamp(), LogReturns().bitstamp()], labels=[label])


@pytest.mark.parametrize("make", list(PRESETS.values()), ids=list(PRESETS))
def test_name_and_dict_round_trip(make):
    fls = make()
    again = FeatureLabelSet.from_dict(json.loads(json.dumps(fls.to_dict())))
    assert again == fls and again.name == fls.name and again.key == fls.key and hash(again.features) == hash(
        fls.features)


def test_cleaning_fills_short_gaps_forward_and_drops_long_ones(store):
    name = "bitstamp_btc_usd.1min.bid_strength_s0"
    gap_short = [START + pd.Timedelta(minutes=m) for m in (121,)]
    gap_long = [START + pd.Timedelta(minutes=m) for m in range(200, 205)]
    with store.atomic() as conn:
        for t in gap_short + gap_long:
            conn.exec_driver_sql("DELETE FROM atlas_metric WHERE series_id = (SELECT series_id FROM atlas_series "
                                 f"WHERE name = '{name}') AND bucket = '{t.tz_localize(None)}.000000'")
    fls = FeatureLabelSet(features=[BidStrength().bitstamp().slippage(0)],
                          labels=[LogReturns().bitstamp().lookforward(1)], max_interpolate=2)
    frame = fls.build("2024-01-01 01:00", "2024-01-01 04:00", store=store)
    report = frame.attrs["report"]
    column = frame.iloc[:, 0]
    # the one-bucket gap takes the value before it (never the one after it); of the five-bucket gap, two are
    # filled and three dropped
    assert column[gap_short[0]] == column[gap_short[0] - pd.Timedelta("1min")]
    assert gap_long[2] not in frame.index and gap_long[1] in frame.index
    assert (report["filled"], report["dropped"], report["rows"]) == (1 + 2, 3, 181 - 3)


def test_cleaning_realigns_to_the_common_valid_range(store):
    fls = example_set()
    frame = fls.build("2023-12-31 23:00", "2024-01-01 01:00", store=store)  # before the data starts
    report = frame.attrs["report"]
    assert frame.index[0] > START and report["trimmed"] >= 60 and frame.notna().all().all()


def test_built_frames_are_cached_and_invalidated_by_new_data_in_their_range(store, monkeypatch):
    fls = example_set()
    first = fls.build("2024-01-01 01:00", "2024-01-01 02:00", store=store)
    calls = []
    import atlas.data.featureset._set as module

    real = module.read_series
    monkeypatch.setattr(module, "read_series", lambda *a, **k: calls.append(1) or real(*a, **k))
    pd.testing.assert_frame_equal(fls.build("2024-01-01 01:00", "2024-01-01 02:00", store=store), first)
    assert calls == []  # served from the cache
    store.write_series({"itbit_btc_usd.1min.midpoint": pd.Series([1.0], index=[START + pd.Timedelta("20h")])})
    fls.build("2024-01-01 01:00", "2024-01-01 02:00", store=store)
    assert calls == []  # a write outside the range keeps the cache
    moved = START + pd.Timedelta("90min")
    store.write_series({"itbit_btc_usd.1min.midpoint": pd.Series([1.0], index=[moved])})
    rebuilt = fls.build("2024-01-01 01:00", "2024-01-01 02:00", store=store)
    assert calls == [1]
    spread = [c for c in rebuilt.columns if c.startswith("inter_exchange_spread")][0]
    assert rebuilt.loc[moved, spread] != first.loc[moved, spread]


def _small_market(url: str, cache: Path, seed: int) -> MarketStore:
    store = MarketStore(url, cache_folder=cache)
    MarketSimulator(SimulatorConfig(days=0.25, exchanges="bitstamp,itbit", seed=seed, signal=0.3,
                                    snapshot_interval="60s", levels=10)).simulate_into(store)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=(0, 10)).run()
    return store


def test_a_store_made_again_at_the_same_url_never_gets_the_old_stores_cached_frames(tmp_path):
    """Fault: delete market.db, simulate another market at the same URL: both reach the same ingest id, and
    the cache keyed by URL and ingest id served the old frames (and the old data hash)."""
    url, cache = f"sqlite:///{tmp_path / 'market.db'}", tmp_path / "cache"
    fls = example_set()
    with _small_market(url, cache, seed=1) as first_store:
        first = fls.build("2024-01-01 01:00", "2024-01-01 03:00", store=first_store)
        first_identity, first_version = first_store.identity, first_store.data_version()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'market.db'}{suffix}").unlink(missing_ok=True)
    with _small_market(url, cache, seed=2) as second_store:
        assert second_store.data_version() == first_version      # the old key would have matched
        assert second_store.identity != first_identity
        second = fls.build("2024-01-01 01:00", "2024-01-01 03:00", store=second_store)
        uncached = fls.build("2024-01-01 01:00", "2024-01-01 03:00", store=second_store, cache=False)
    pd.testing.assert_frame_equal(second, uncached)
    assert not second.equals(first)
    with MarketStore(url) as reopened:  # the identity is kept in the store
        assert reopened.identity == second_store.identity


def test_changing_only_test_data_leaves_every_fitted_transform_unchanged(store):
    fls = example_set()
    train, test = ("2024-01-01 01:00", "2024-01-01 20:00"), ("2024-01-01 20:30", "2024-01-02 12:00")
    classes = ClassLabels("percentile", (0.33, 0.67))
    before = fls.dataset(train, test, store=store, classes=classes)
    index = pd.date_range("2024-01-01 21:00", "2024-01-02 11:00", freq="1min", tz="UTC")
    for name in ("bitstamp_btc_usd.1min.bid_strength_s0", "bitstamp_btc_usd.1min.midpoint"):
        values = store.read_series(name).reindex(index)
        store.write_series({name: values * 1.5})
    after = fls.dataset(train, test, store=store, classes=classes)
    assert after.transforms == before.transforms
    assert not np.array_equal(after.X_test, before.X_test)
    np.testing.assert_array_equal(after.X_train, before.X_train)
    assert after.content_hash != before.content_hash
    # and changing training data does change them
    values = store.read_series("bitstamp_btc_usd.1min.bid_strength_s0").loc["2024-01-01 02:00":"2024-01-01 10:00"]
    store.write_series({"bitstamp_btc_usd.1min.bid_strength_s0": values * 3})
    assert fls.dataset(train, test, store=store, classes=classes).transforms.scaler != before.transforms.scaler


def test_dataset_is_purged_by_the_horizon_and_windows_are_views(store):
    fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1), TimeOfDay().cyclic("sin")],
                          labels=[LogReturns().bitstamp().lookforward(5)])
    data = fls.dataset(("2024-01-01 01:00", "2024-01-01 12:00"), ("2024-01-01 12:01", "2024-01-01 18:00"),
                       store=store, window=10)
    gap = data.index_test[0] - data.index_train[-1]
    assert gap > pd.Timedelta("5min")  # the last training label (5 buckets ahead) ends before the test starts
    windows = data.windows("train")
    assert windows.shape[1:] == (10, 2) and np.shares_memory(windows, data.rows_train)


def test_a_feature_the_store_cannot_make_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path))
    bars = MarketStore(f"sqlite:///{tmp_path / 'bars.db'}")
    index = pd.date_range(START, periods=50, freq="30min")
    bars.write_series({"kraken_btc_usd.30min.close": pd.Series(np.linspace(100, 110, 50), index=index)})
    on_bars = FeatureLabelSet(features=[Close().kraken().bucket("30min")],
                              labels=[LogReturns().kraken().bucket("30min").price("close").lookforward(1)])
    assert len(on_bars.build(START, START + pd.Timedelta("10h"), store=bars)) == 21  # 00:00 .. 10:00
    book = FeatureLabelSet(features=[OrderbookImbalance().kraken().bucket("30min").slippage(10)],
                           labels=[LogReturns().kraken().bucket("30min").price("close").lookforward(1)])
    with pytest.raises(MissingDataError, match="kraken_btc_usd.30min.imbalance_s10"):
        book.build(START, START + pd.Timedelta("10h"), store=bars)
    coverage = book.coverage(START, START + pd.Timedelta("10h"), store=bars)
    assert coverage["coverage"].tolist() == [0.0, 1.0]


def test_plot_data_draws_every_column(store):
    import matplotlib.figure

    fls = example_set()
    figure = fls.plot_data("2024-01-01 01:00", "2024-01-01 03:00", store=store)
    assert isinstance(figure, matplotlib.figure.Figure) and len(figure.axes) == 5
    lines = figure.axes[4].get_lines()[0].get_ydata()
    frame = fls.build("2024-01-01 01:00", "2024-01-01 03:00", store=store)
    np.testing.assert_allclose(lines, frame.iloc[:, 4].to_numpy())
    assert len(fls.plot_data("2024-01-01 01:00", "2024-01-01 03:00", store=store, subplots=False).axes) == 1


@pytest.mark.parametrize("name", ["simple_prices", "lots", "strength"])
def test_presets_build_on_simulated_data(store, name):
    kwargs = {"simple_prices": {"exchanges": ("bitstamp", "itbit")}}.get(name, {})
    if name == "strength":
        kwargs = {"slippages": (0, 10)}
    frame = PRESETS[name](**kwargs).build("2024-01-01 02:00", "2024-01-01 08:00", store=store)
    assert len(frame) > 300 and frame.notna().all().all()


@pytest.mark.parametrize("mode", ["expanding", "sliding"])
def test_walk_forward_folds_train_before_each_test_block(store, mode):
    fls = example_set()
    folds = fls.folds("2024-01-01 01:00", "2024-01-01 23:00", n_folds=3, test_size=120, train_size=300, mode=mode,
                      store=store, classes=ClassLabels("sign"), embargo=2)
    assert len(folds) == 3
    for earlier, later in zip(folds, folds[1:]):
        assert later.index_test[0] > earlier.index_test[-1]
    for fold in folds:
        assert len(fold.index_test) == 120
        assert fold.index_test[0] - fold.index_train[-1] > pd.Timedelta(minutes=fls.horizon + 2)
    sizes = [len(f.index_train) for f in folds]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] if mode == "expanding" else len(set(sizes)) == 1
    assert folds[0].transforms != folds[1].transforms  # each fold fits its own


def test_a_saved_set_and_its_transforms_rebuild_identical_inputs(store):
    from atlas.data.dataset import apply_transforms

    fls = example_set()
    data = fls.dataset(("2024-01-01 01:00", "2024-01-01 20:00"), ("2024-01-01 20:05", "2024-01-02 06:00"),
                       store=store, classes=ClassLabels("sign"))
    carried = {"set": fls.to_dict(), "transforms": data.transforms.to_dict()}  # as a model carries them
    saved = json.loads(json.dumps(carried))
    again = FeatureLabelSet.from_dict(saved["set"])
    frame = again.build(data.index_test[0], data.index_test[-1], store=store, cache=False)
    rebuilt = apply_transforms(frame.loc[data.index_test], saved["transforms"])
    np.testing.assert_array_equal(rebuilt, data.X_test)


def test_features_frame_serves_the_newest_buckets_without_labels(store):
    fls = example_set()
    last = store.read_series("bitstamp_btc_usd.1min.midpoint").index[-1]
    built = fls.build(last - pd.Timedelta("30min"), last, store=store)
    served = fls.features_frame(last - pd.Timedelta("30min"), last, store=store)
    assert list(served.columns) == fls.feature_names and served.index[-1] == last
    assert built.index[-1] < last  # the newest bucket has no label yet: build drops it, serving keeps it
    pd.testing.assert_frame_equal(served.loc[built.index], built[fls.feature_names], check_freq=False)


def test_a_label_over_a_gap_is_unknown_not_zero(store):
    gap = START + pd.Timedelta("3h")
    with store.atomic() as conn:
        conn.exec_driver_sql("DELETE FROM atlas_metric WHERE series_id = (SELECT series_id FROM atlas_series WHERE "
                             "name = 'bitstamp_btc_usd.1min.midpoint') AND bucket = '2024-01-01 03:00:00.000000'")
    fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)],
                          labels=[LogReturns().bitstamp().lookforward(1)], max_interpolate=2)
    frame = fls.build("2024-01-01 02:00", "2024-01-01 04:00", store=store, cache=False)
    # the feature at the gap repeats the last midpoint (a zero return, known at the time); the labels that would
    # need the missing midpoint are unknown, so their rows are dropped instead of learning a made-up zero
    assert gap - pd.Timedelta("1min") not in frame.index and gap not in frame.index
    assert frame.loc[gap + pd.Timedelta("1min")].notna().all()
    assert frame.attrs["report"]["dropped"] == 2


def test_an_empty_range_is_a_clear_error_everywhere(store):
    fls = example_set()
    for method in (fls.build, fls.features_frame, fls.coverage):
        with pytest.raises(ConfigError, match="holds no 1min bucket; end must be after start"):
            method("2024-01-01 02:00", "2024-01-01 01:00", store=store)
