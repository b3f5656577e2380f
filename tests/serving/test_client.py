"""The strategy-side client: latest, history, subscriptions, errors; its light imports; the example strategy."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from serving.client import PredictionReader
from serving.example_strategy import PredictionStrategy, main
from serving.publisher import Publisher
from serving.schema import RedisUnavailableError, SchemaError, prediction_key

MODEL = "quickstart_itbit"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def publisher(redis_url):
    with Publisher(redis_url) as publisher:
        yield publisher


@pytest.fixture
def reader(redis_url):
    with PredictionReader(redis_url) as reader:
        yield reader


def test_latest_is_none_when_missing_and_the_prediction_when_fresh(publisher, reader, make_prediction):
    assert reader.latest(MODEL) is None
    prediction = make_prediction(0, down=0.3, up=0.7)
    publisher.publish(prediction)
    assert reader.latest(MODEL) == prediction
    now = prediction.produced + timedelta(seconds=30)
    assert reader.latest(MODEL, max_age=timedelta(seconds=60), now=now) == prediction
    assert reader.latest(MODEL, max_age=60, now=now) == prediction


def test_latest_is_none_when_produced_longer_ago_than_max_age(publisher, reader, make_prediction):
    prediction = make_prediction(0)
    publisher.publish(prediction)
    assert reader.latest(MODEL, max_age=29.9, now=prediction.produced + timedelta(seconds=30)) is None
    assert reader.latest(MODEL, max_age=120) is None  # the clock's now: the test bucket is in 2024
    with pytest.raises(ValueError, match="positive"):
        reader.latest(MODEL, max_age=0)


def test_a_record_of_schema_v2_is_a_clear_error(reader, redis_client, make_prediction):
    redis_client.hset(prediction_key(MODEL), mapping=make_prediction(0).to_fields() | {"schema": "2"})
    with pytest.raises(SchemaError, match="schema version '2'"):
        reader.latest(MODEL)


def test_history_is_the_last_predictions_oldest_first(publisher, reader, make_prediction):
    predictions = [make_prediction(i, value=i / 10) for i in range(5)]
    for prediction in predictions:
        publisher.publish(prediction)
    assert reader.history(MODEL, count=3) == predictions[2:]
    assert reader.history(MODEL) == predictions
    assert reader.history("other") == []


def test_a_subscription_receives_each_new_prediction(publisher, reader, make_prediction):
    with reader.subscribe(MODEL, timeout=0.3) as subscription:
        first, second = make_prediction(0), make_prediction(1, down=0.9, up=0.1)
        publisher.publish(first)
        publisher.publish(second)
        publisher.publish(second)  # already published: not announced again
        assert list(subscription) == [first, second]  # ends after 0.3 s without a prediction
        publisher.publish(make_prediction(2))
        assert subscription.get(timeout=5) == make_prediction(2)
        assert subscription.get(timeout=0.05) is None


def test_an_unreachable_redis_is_a_connection_error_with_the_password_masked(redis_server):
    from _services import free_port

    with PredictionReader(f"redis://:s3cret@127.0.0.1:{free_port()}/0", socket_timeout=1) as reader:
        with pytest.raises(ConnectionError, match=r"redis://:\*\*\*@") as caught:
            reader.latest(MODEL)
        assert isinstance(caught.value, RedisUnavailableError) and "s3cret" not in str(caught.value)
        with pytest.raises(RedisUnavailableError):
            reader.check()


def test_the_client_imports_only_the_standard_library_and_redis():
    heavy = ["numpy", "pandas", "tensorflow", "keras", "mlflow", "sklearn", "ray", "optuna", "matplotlib",
             "pyarrow", "sqlalchemy", "atlas"]
    code = ("import sys, serving.client, serving.schema\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_example_strategy_trades_on_the_prediction_and_holds_without_one(publisher, reader, make_prediction):
    strategy = PredictionStrategy(reader, MODEL, max_age=timedelta(days=365 * 100), threshold=0.1)
    assert strategy.tick().action == "hold"  # nothing published yet
    publisher.publish(make_prediction(0, value=0.5))
    assert strategy.tick(order_book={}, eaten_orders=[]).action == "buy"
    publisher.publish(make_prediction(1, down=0.8, up=0.2))
    assert strategy.tick().action == "sell"
    publisher.raise_alarm(MODEL, "drift")
    decision = strategy.tick()
    assert decision.action == "hold" and "drift" in decision.reason
    stale = PredictionStrategy(reader, MODEL, max_age=timedelta(seconds=60))
    assert stale.tick().reason == "no fresh prediction"


def test_the_example_strategy_runs_once_from_the_command_line(publisher, redis_url, make_prediction, caplog):
    publisher.publish(make_prediction(0, value=0.5))
    args = ["--redis-url", redis_url, "--model", MODEL, "--max-age", str(1e10), "--once"]
    result = subprocess.run([sys.executable, "-m", "serving.example_strategy", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{MODEL}: would BUY (bucket 2024-01-01T00:10:00+00:00" in result.stdout
    with caplog.at_level(logging.INFO, logger="serving.example_strategy"):
        assert main(["--redis-url", "redis://127.0.0.1:1/0", "--model", MODEL, "--once"]) == 0
    assert "would HOLD" in caplog.text and "cannot read predictions" in caplog.text  # Redis down: it holds


def test_the_readme_client_block_reads_a_published_prediction(redis_url, make_prediction):
    from datetime import UTC, datetime

    from test_readme import python_block_after

    from serving.publisher import Publisher

    with Publisher(redis_url).check() as publisher:
        publisher.publish(make_prediction(0, model="quickstart_itbit", produced=datetime.now(UTC), down=0.3, up=0.7))
    block = python_block_after("### The client").replace("redis://127.0.0.1:6379/0", redis_url)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["prediction"].predicted_class == "up" and namespace["prediction"].value == 1.0
