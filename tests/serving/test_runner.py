"""The model runner against a real registry (MLflow on SQLite) and a real redis-server: served predictions equal
the batch predictions, hot swap, several models at once, live scoring and its alarm, and the faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pandas as pd
import pytest
import redis
from mlflow import MlflowClient

from atlas.data import (
    BidStrength,
    FeatureLabelSet,
    LogReturns,
    MarketSimulator,
    MarketStore,
    MetricPipeline,
    SimulatorConfig,
    Volume,
)
from atlas.data.dataset import ClassLabels
from atlas.exceptions import ConfigError
from atlas.models import DataShape, FitOptions, make_model
from atlas.models._packaging import log_pyfunc
from serving.client import PredictionReader
from serving.feeds import Bucket, StoreReplay
from serving.publisher import Publisher
from serving.registry import Registry
from serving.runner import ModelRunner, Target

TRAIN = ("2024-01-01 00:30", "2024-01-01 14:00")
TEST = ("2024-01-01 14:10", "2024-01-01 23:50")
REPLAY = ("2024-01-01 20:00", "2024-01-01 23:19")  # 200 buckets


def _train(kind: str, params: dict, fls: FeatureLabelSet, store, *, window=None):
    data = fls.dataset(train=TRAIN, test=TEST, store=store, classes=ClassLabels("sign"), window=window, cache=False)
    model = make_model(kind, params, DataShape(data.n_features, data.n_classes, data.window))
    model.fit(data.inputs("train"), data.y_train, options=FitOptions(epochs=2, seed=1, threads=1))
    predicted = np.asarray(model.predict(data.inputs("test")))
    accuracy = float((predicted == data.y_test).mean())
    majority = float(np.bincount(data.y_test).max() / len(data.y_test))
    return model, data, {"test_accuracy": accuracy, "test_accuracy_lift": accuracy - majority}


def _register(name: str, model, fls, data, metrics, experiment: str, *, alias: str | None = "production"):
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_metrics(metrics)
        info = log_pyfunc(model, fls, data.transforms, registered_model_name=name)
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias(name, alias, version)
    return version, run.info.run_id


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One simulated day on two exchanges (books every 5 s), a registry with a dense and a recurrent classifier."""
    folder = tmp_path_factory.mktemp("serving")
    url = f"sqlite:///{folder / 'market.db'}"
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("serving-tests", artifact_location=(folder / "artifacts").as_uri())
    store = MarketStore(url)
    MarketSimulator(SimulatorConfig(days=1, exchanges="bitstamp,itbit", seed=5, signal=0.4, snapshot_interval="5s",
                                    levels=10)).simulate_into(store)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=(10,)).run()
    fls = FeatureLabelSet(features=[LogReturns().bitstamp().one_min().lookback(1),
                                    LogReturns().itbit().one_min().lookback(1),
                                    LogReturns().bitstamp().one_min().lookback(3),
                                    BidStrength().bitstamp().one_min().slippage(10)],
                          labels=[LogReturns().itbit().one_min().lookforward(1)], title="itbit_next")
    dense, dense_data, dense_metrics = _train("dnn_classifier", {"hidden_units": [16]}, fls, store)
    gru, gru_data, gru_metrics = _train("gru_classifier", {"units": [8]}, fls, store, window=5)
    logistic, logistic_data, logistic_metrics = _train("logistic_classifier", {}, fls, store)
    versions = {
        "dense": _register("itbit_dense", dense, fls, dense_data, dense_metrics, experiment),
        "gru": _register("itbit_gru", gru, fls, gru_data, gru_metrics, experiment),
        "logistic": _register("itbit_dense", logistic, fls, logistic_data, logistic_metrics, experiment,
                              alias="challenger"),
    }
    # a model whose features need trades: the Redis feed cannot serve it
    trades_fls = FeatureLabelSet(features=[Volume().bitstamp().one_min()], labels=fls.labels, title="volume")
    volume, volume_data, volume_metrics = _train("logistic_classifier", {}, trades_fls, store)
    versions["volume"] = _register("itbit_dense", volume, trades_fls, volume_data, volume_metrics, experiment,
                                   alias=None)
    names = sorted({k.name for f in (*fls.features, *fls.labels) for k in f.series()})
    yield {"store": store, "uri": uri, "fls": fls, "versions": versions, "names": names, "experiment": experiment}
    store.close()
    mlflow.set_tracking_uri(None)


def _runner(world, redis_url, targets, *, start=REPLAY[0], end=REPLAY[1], **options):
    feed = StoreReplay(world["store"], world["names"], start=start, end=end, bucket="1min")
    publisher = Publisher(redis_url, ttl_seconds=600)
    return ModelRunner([Target.parse(t) for t in targets], registry=Registry(world["uri"]), feed=feed,
                       publisher=publisher, swap_every=0, **options)


def _served(redis_url, key):
    return PredictionReader(redis_url).history(key, count=100_000)


@pytest.mark.parametrize("name", ["itbit_dense", "itbit_gru"])
def test_served_predictions_from_replay_equal_the_batch_predictions_exactly(world, redis_url, name):
    runner = _runner(world, redis_url, [name])
    assert runner.run() == 0
    served = _served(redis_url, name)
    artifact = Registry(world["uri"]).load(Registry(world["uri"]).resolve(name, "production"))
    batch = artifact.predict_market(*REPLAY, store=world["store"])
    assert len(served) == len(batch) == 200  # every bucket of the replay, none twice
    assert [p.bucket for p in served] == list(batch.index)
    probabilities = np.array([[p.probabilities[c] for c in artifact.class_names] for p in served])
    expected = batch[[f"p_{c}" for c in artifact.class_names]].to_numpy()
    np.testing.assert_array_equal(probabilities, expected)  # exactly: one code path
    assert [p.predicted_class for p in served] == batch["class"].tolist()
    assert {p.version for p in served} == {world["versions"]["dense" if "dense" in name else "gru"][0]}


def test_production_and_a_challenger_in_shadow_are_served_at_once(world, redis_url):
    runner = _runner(world, redis_url, ["itbit_dense", "itbit_dense@challenger"],
                     end="2024-01-01 20:49")
    runner.run()
    production, shadow = _served(redis_url, "itbit_dense"), _served(redis_url, "itbit_dense.challenger")
    assert len(production) == len(shadow) == 50
    assert {p.version for p in production} == {world["versions"]["dense"][0]}
    assert {p.version for p in shadow} == {world["versions"]["logistic"][0]}
    assert {p.alias for p in shadow} == {"challenger"}


def test_when_the_alias_moves_the_new_version_serves_from_the_next_bucket_and_no_bucket_is_missed(
        world, redis_url):
    client = MlflowClient(world["uri"])
    dense, logistic = world["versions"]["dense"][0], world["versions"]["logistic"][0]
    runner = _runner(world, redis_url, ["itbit_dense"]).start()
    try:
        for k, bucket in enumerate(runner.feed):
            runner.on_bucket(bucket)
            if k == 59:
                client.set_registered_model_alias("itbit_dense", "production", logistic)
                said = runner.check_aliases()
                assert said and "loaded" in said[0]
    finally:
        client.set_registered_model_alias("itbit_dense", "production", dense)
    served = _served(redis_url, "itbit_dense")
    assert len(served) == 200
    assert [p.version for p in served] == [dense] * 60 + [logistic] * 140
    gaps = np.diff([p.bucket_ms for p in served])
    assert (gaps == 60_000).all()
    assert runner.counts[Target("itbit_dense")].swaps == 1


def test_a_version_the_feed_cannot_serve_leaves_the_old_one_serving_and_says_why(world, redis_url):
    client = MlflowClient(world["uri"])
    dense, volume = world["versions"]["dense"][0], world["versions"]["volume"][0]
    runner = _runner(world, redis_url, ["itbit_dense"], end="2024-01-01 20:29").start()
    try:
        client.set_registered_model_alias("itbit_dense", "production", volume)
        said = runner.check_aliases()
        for bucket in runner.feed:
            runner.on_bucket(bucket)
    finally:
        client.set_registered_model_alias("itbit_dense", "production", dense)
    assert "not served" in said[0] and "bitstamp_btc_usd.1min.volume" in said[0]
    assert {p.version for p in _served(redis_url, "itbit_dense")} == {dense}
    assert runner.counts[Target("itbit_dense")].refused_versions == [volume]


def test_a_model_that_raises_publishes_nothing_for_that_bucket_and_the_runner_keeps_serving(world, redis_url):
    runner = _runner(world, redis_url, ["itbit_dense"], end="2024-01-01 20:09").start()
    served = runner.served[Target("itbit_dense")]
    original, calls = served.artifact.predict_one, []

    def flaky(values):
        calls.append(1)
        if len(calls) == 3:
            raise FloatingPointError("boom")
        return original(values)

    served.artifact.predict_one = flaky
    runner.run()
    buckets = [p.bucket for p in _served(redis_url, "itbit_dense")]
    assert len(buckets) == 9 and pd.Timestamp("2024-01-01 20:02", tz="UTC") not in buckets
    assert runner.counts[Target("itbit_dense")].errors == 1


def test_a_gap_in_the_feed_and_a_stale_book_give_no_prediction(world, redis_url):
    runner = _runner(world, redis_url, ["itbit_dense"], end="2024-01-01 20:09").start()
    frame = runner.feed.frame()
    buckets = [Bucket(t, {k: v for k, v in row.items() if v == v}) for t, row in frame.iterrows()]
    target = Target("itbit_dense")
    outcomes = [runner.on_bucket(b)[target] for b in buckets[:3]]
    buckets[3].stale = ("BITSTAMP_BTC_USD",)  # its book was older than Gryphon's 10 s at the bucket's close
    outcomes.append(runner.on_bucket(buckets[3])[target])
    outcomes.append(runner.on_bucket(buckets[4])[target])
    outcomes.append(runner.on_bucket(buckets[9])[target])  # four buckets never came: a gap
    assert outcomes == ["published"] * 3 + ["stale", "published", "incomplete"]
    # (lookback(3) reads across the gap and max_interpolate is 2: no prediction from the stale inputs)
    assert runner.on_bucket(buckets[9]) == {}  # a repeated bucket is refused
    served = _served(redis_url, "itbit_dense")
    assert [p.bucket for p in served] == [buckets[k].bucket for k in (0, 1, 2, 4)]


def test_a_window_across_a_gap_in_the_feed_gives_no_prediction_as_training_dropped_such_windows(world, redis_url):
    runner = _runner(world, redis_url, ["itbit_gru"], end="2024-01-01 20:19").start()
    target = Target("itbit_gru")
    window = runner.served[target].window
    assert window == 5 and not runner.served[target].artifact.transforms.allow_gaps
    frame = runner.feed.frame()
    buckets = [Bucket(t, {k: v for k, v in row.items() if v == v}) for t, row in frame.iterrows()]
    sent = [*range(10), *range(12, 20)]  # buckets 10 and 11 never came (filled forward: the rows are complete)
    outcomes = [runner.on_bucket(buckets[k])[target] for k in sent]
    assert outcomes == ["published"] * 10 + ["gap"] * (window - 1) + ["published"] * (8 - window + 1)
    assert runner.counts[target].gaps == window - 1 and runner.counts[target].incomplete == 0
    served = [p.bucket for p in _served(redis_url, "itbit_gru")]
    assert served == [buckets[k].bucket for k in (*range(10), *range(16, 20))]


def test_live_scoring_matches_the_labels_and_a_model_below_its_bound_raises_the_alarm(world, redis_url):
    client = MlflowClient(world["uri"])
    run_id = world["versions"]["gru"][1]
    true = client.get_run(run_id).data.metrics["test_accuracy"]
    client.log_metric(run_id, "test_accuracy", 0.99)  # claims far more than it delivers live
    try:
        runner = _runner(world, redis_url, ["itbit_gru"], fail_on_drift=True, min_scored=20)
        status = runner.run()
    finally:
        client.log_metric(run_id, "test_accuracy", true)
    reader = PredictionReader(redis_url)
    live = reader.live("itbit_gru")
    assert status == 3 and runner.drifted == ["itbit_gru"]
    alarm = reader.alarm("itbit_gru")
    assert alarm is not None and "below" in alarm.message
    # the live accuracy is the share of served classes equal to the realized label's class
    served = {p.bucket: p.predicted_class for p in _served(redis_url, "itbit_gru")}
    frame = world["fls"].build(REPLAY[0], REPLAY[1], store=world["store"], cache=False)
    realized = np.where(frame[world["fls"].label_names[0]] > 0, "up", "down")
    scored = [served[t] == r for t, r in zip(frame.index, realized, strict=True) if t in served]
    window = int(float(live["window"]))
    assert window >= 20
    assert float(live["accuracy"]) == pytest.approx(np.mean(scored[:window]), abs=1e-12)


def test_unknown_models_aliases_and_feeds_are_clear_errors(world, redis_url):
    registry = Registry(world["uri"])
    with pytest.raises(ConfigError, match="no registered model 'nope'.*itbit_dense"):
        registry.resolve("nope", "production")
    with pytest.raises(ConfigError, match="has no alias 'staging'; its aliases: challenger, production"):
        registry.resolve("itbit_dense", "staging")
    with pytest.raises(ConfigError, match="NAME or NAME@ALIAS"):
        Target.parse("itbit_dense@")


def test_the_runner_imports_and_serves_a_dense_model_without_matplotlib_ray_or_optuna(world, redis_url, tmp_path):
    child = textwrap.dedent("""
        import json, sys
        sys.modules.update(ray=None, optuna=None, matplotlib=None)
        from atlas.data import MarketStore
        from serving.feeds import StoreReplay
        from serving.publisher import Publisher
        from serving.registry import Registry
        from serving.runner import ModelRunner, Target
        store = MarketStore(sys.argv[1])
        feed = StoreReplay(store, json.loads(sys.argv[4]), start="2024-01-01 21:00", end="2024-01-01 21:09",
                           bucket="1min")
        runner = ModelRunner([Target("itbit_dense")], registry=Registry(sys.argv[2]), feed=feed,
                             publisher=Publisher(sys.argv[3]), swap_every=0)
        runner.run()
        heavy = ("tensorflow", "ray", "optuna", "matplotlib", "atlas.infra", "atlas.stats")
        print(json.dumps({"published": runner.counts[Target("itbit_dense")].published,
                          "imported": sorted(m for m in heavy if sys.modules.get(m) is not None)}))
    """)
    result = subprocess.run([sys.executable, "-c", child, world["store"].url, world["uri"], redis_url,
                             json.dumps(world["names"])], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"published": 10, "imported": []}


def test_redis_restarted_while_serving_loses_no_order_and_writes_no_duplicate(world, own_redis_server):
    url = own_redis_server.url
    runner = _runner(world, url, ["itbit_dense"], end="2024-01-01 20:19").start()
    for k, bucket in enumerate(runner.feed):
        if k == 10:
            own_redis_server.restart()  # without persistence: what was written before is gone
        runner.on_bucket(bucket)
    served = _served(url, "itbit_dense")
    assert [p.bucket_ms for p in served] == sorted({p.bucket_ms for p in served})
    assert len(served) == 10 and runner.counts[Target("itbit_dense")].published == 20
    with redis.Redis.from_url(url) as client:
        assert client.hget("atlas:v1:prediction:itbit_dense", "bucket").decode().startswith("2024-01-01T20:19")


def test_the_live_feed_predicts_from_order_books_written_to_redis_the_way_gds_writes_them(world, redis_url):
    """Order books SET into Redis as Gryphon's data service does: the runner buckets them with the pipeline's own
    function, and its predictions equal the batch predictions from the store for the same buckets."""
    from serving.feeds import RedisFeed
    from serving.gds import write_orderbook

    store, first, last = world["store"], pd.Timestamp("2024-01-01 21:00", tz="UTC"), 30
    books = []
    for exchange in ("BITSTAMP_BTC_USD", "ITBIT_BTC_USD"):
        ids, times = store.read_orderbook_times(exchange, first - pd.Timedelta("5min"),
                                                first + pd.Timedelta(minutes=last))
        bids, asks = store.read_orderbook_sides(ids)
        books += [(t, exchange, json.loads(b), json.loads(a)) for t, b, a in zip(times, bids, asks, strict=True)]
    books.sort(key=lambda book: book[0])
    now = {"t": (first - pd.Timedelta("1min")).timestamp()}
    client = redis.Redis.from_url(redis_url)
    feed = RedisFeed(client, world["names"], bucket="1min", store=store, clock=lambda: now["t"])
    runner = ModelRunner([Target("itbit_dense")], registry=Registry(world["uri"]), feed=feed,
                         publisher=Publisher(redis_url, ttl_seconds=600), swap_every=0).start()
    closes = [first + k * pd.Timedelta("1min") for k in range(last)]
    for time_, exchange, bids, asks in books:
        while closes and closes[0] < time_:
            now["t"] = closes[0].timestamp()
            runner.on_bucket(feed.close_bucket(closes.pop(0)))
        if not closes:
            break
        now["t"] = time_.timestamp()
        write_orderbook(client, exchange, time_.timestamp(), bids, asks)
        feed.poll()
    served = _served(redis_url, "itbit_dense")
    batch = runner.served[Target("itbit_dense")].artifact.predict_market(first, first + pd.Timedelta(minutes=last - 1),
                                                                       store=store)
    assert len(served) == last == len(batch)
    assert [p.bucket for p in served] == list(batch.index)
    np.testing.assert_array_equal([p.probabilities["up"] for p in served], batch["p_up"].to_numpy())


def test_a_book_that_is_not_gds_json_is_counted_and_skipped(world, redis_url):
    from serving.feeds import RedisFeed

    client = redis.Redis.from_url(redis_url)
    client.set("bitstamp_btc_usd_orderbook", b"{not json")
    client.set("itbit_btc_usd_orderbook", json.dumps({"timestamp": 1704150000.0, "ITBIT_BTC_USD": {"bids": [],
                                                                                                   "asks": []}}))
    feed = RedisFeed(client, world["names"], bucket="1min", clock=lambda: 1704150001.0)
    assert feed.poll() == 0
    bucket = feed.close_bucket(pd.Timestamp("2024-01-01 23:01", tz="UTC"))
    assert sum(bucket.skipped.values()) == 2 and "malformed_json" in bucket.skipped
    assert set(bucket.stale) == {"BITSTAMP_BTC_USD", "ITBIT_BTC_USD"} and bucket.values == {}


def _cli_env(world, redis_url, tmp_path):
    return {**os.environ, "ATLAS_HOME": str(tmp_path), "ATLAS_STORE_URL": world["store"].url,
            "MLFLOW_TRACKING_URI": world["uri"], "REDIS_URL": redis_url, "PYTHONPATH": ""}


def test_atlas_serve_replays_publishes_and_records_the_session(world, redis_url, tmp_path):
    result = subprocess.run([sys.executable, "-m", "atlas.cli", "serve", "itbit_dense", "--buckets", "30",
                             "--end", "2024-01-01 22:00"], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env=_cli_env(world, redis_url, tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "itbit_dense@production (version 1): 30 buckets, 30 published" in result.stdout
    latest = PredictionReader(redis_url).latest("itbit_dense")
    assert latest is not None and latest.bucket == pd.Timestamp("2024-01-01 22:00", tz="UTC")
    runs = MlflowClient(world["uri"]).search_runs(
        [MlflowClient(world["uri"]).get_experiment_by_name("atlas-serving").experiment_id])
    assert runs[0].info.status == "FINISHED" and runs[0].data.params["itbit_dense.version"] == "1"
    assert runs[0].data.metrics["serve.itbit_dense.published"] == 30


def test_sigterm_finishes_the_bucket_in_hand_and_exits_cleanly(world, redis_url, tmp_path):
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "atlas.cli", "serve", "itbit_dense", "--buckets", "200",
                                "--speed", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, env=_cli_env(world, redis_url, tmp_path))
    reader, deadline = PredictionReader(redis_url), time.time() + 120
    while reader.latest("itbit_dense") is None and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    served = _served(redis_url, "itbit_dense")
    assert 0 < len(served) < 200
    assert f"{len(served)} published" in out


def test_a_redis_that_refuses_is_one_clear_error(world, tmp_path):
    from _services import free_port

    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    result = subprocess.run([sys.executable, "-m", "atlas.cli", "serve", "itbit_dense", "--buckets", "5"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env=_cli_env(world, url, tmp_path))
    assert result.returncode == 2
    assert "Error: Redis at redis://:***@127.0.0.1" in result.stderr and "start redis-server" in result.stderr
    assert "secret" not in result.stderr + result.stdout


def test_an_unreachable_registry_is_one_clear_error_in_seconds(tmp_path):
    from _services import free_port

    env = {**os.environ, "ATLAS_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
           "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-m", "atlas.cli", "serve", "itbit_dense"], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "Error: cannot reach the MLflow tracking store http://127.0.0.1:" in result.stderr
