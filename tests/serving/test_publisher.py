"""The publisher against a real redis-server: layout, one round trip, expiry, bounds, idempotence, and faults."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from redis.connection import Connection

from atlas.exceptions import ConfigError
from serving.client import PredictionReader
from serving.publisher import Publisher
from serving.schema import (
    Prediction,
    RedisUnavailableError,
    channel_name,
    prediction_key,
    stream_key,
)

MODEL = "quickstart_itbit"


def entry_ids(client, model=MODEL) -> list[str]:
    return [entry_id.decode() for entry_id, _ in client.xrange(stream_key(model))]


def test_publish_writes_hash_stream_channel_and_gryphon_key(redis_url, redis_client, make_prediction):
    prediction = make_prediction(0, down=0.2, up=0.8)
    subscriber = redis_client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(channel_name(MODEL))
    subscriber.get_message(timeout=5)  # the subscription's confirmation
    with Publisher(redis_url, ttl_seconds=180, gryphon_key=True) as publisher:
        assert publisher.publish(prediction) == "published"
    hash_fields = {k.decode(): v.decode() for k, v in redis_client.hgetall(prediction_key(MODEL)).items()}
    assert hash_fields == prediction.to_fields()
    [(entry_id, entry)] = redis_client.xrange(stream_key(MODEL))
    assert entry_id.decode() == prediction.stream_id and Prediction.from_fields(entry) == prediction
    message = subscriber.get_message(timeout=5)
    assert message["channel"].decode() == channel_name(MODEL)
    assert Prediction.from_json(message["data"]) == prediction
    assert redis_client.get("ML_PREDICTION") == b"1"
    assert 0 < redis_client.pttl(prediction_key(MODEL)) <= 180_000
    assert 0 < redis_client.pttl("ML_PREDICTION") <= 180_000
    subscriber.close()


def test_gryphon_key_is_zero_for_a_down_prediction_and_absent_unless_asked(redis_url, redis_client, make_prediction):
    with Publisher(redis_url) as publisher:
        publisher.publish(make_prediction(0, value=0.3))
    assert redis_client.get("ML_PREDICTION") is None
    with Publisher(redis_url, gryphon_key="MY_PREDICTION") as publisher:
        publisher.publish(make_prediction(1, down=0.7, flat=0.1, up=0.2))
    assert redis_client.get("MY_PREDICTION") == b"0"


def test_one_publish_is_one_network_round_trip(redis_url, redis_client, make_prediction, monkeypatch):
    publisher = Publisher(redis_url, gryphon_key=True).check()  # connected: the handshake is not counted
    before = redis_client.info("commandstats")
    sends, reads = [], []
    send, read = Connection.send_packed_command, Connection.read_response
    monkeypatch.setattr(Connection, "send_packed_command", lambda self, *a, **k: sends.append(1) or send(self, *a, **k))
    monkeypatch.setattr(Connection, "read_response", lambda self, *a, **k: reads.append(1) or read(self, *a, **k))
    assert publisher.publish(make_prediction(0)) == "published"
    monkeypatch.undo()
    assert (len(sends), len(reads)) == (1, 1)
    after = redis_client.info("commandstats")
    assert after["cmdstat_evalsha"]["calls"] == before.get("cmdstat_evalsha", {"calls": 0})["calls"] + 1
    for command in ("xadd", "hset", "pexpire", "publish", "set"):  # all run inside that one script
        assert after[f"cmdstat_{command}"]["calls"] == before.get(f"cmdstat_{command}", {"calls": 0})["calls"] + 1
    publisher.close()


def test_every_publish_refreshes_the_expiry(redis_url, redis_client, make_prediction):
    with Publisher(redis_url, ttl_seconds=100) as publisher:
        publisher.publish(make_prediction(0))
        redis_client.pexpire(prediction_key(MODEL), 500)
        publisher.publish(make_prediction(1))
    assert redis_client.pttl(prediction_key(MODEL)) > 50_000


def test_the_stream_is_bounded(redis_url, redis_client, make_prediction):
    with Publisher(redis_url, stream_maxlen=50) as publisher:
        for i in range(600):
            publisher.publish(make_prediction(i))
    length = redis_client.xlen(stream_key(MODEL))
    assert 50 <= length <= 150  # MAXLEN ~ trims whole nodes of (by default) 100 entries
    assert entry_ids(redis_client)[-1] == make_prediction(599).stream_id


def test_a_repeated_or_older_bucket_changes_nothing(redis_url, redis_client, make_prediction):
    subscriber = redis_client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(channel_name(MODEL))
    subscriber.get_message(timeout=5)
    with Publisher(redis_url, gryphon_key=True) as publisher:
        assert publisher.publish(make_prediction(5, value=0.4)) == "published"
        assert subscriber.get_message(timeout=5) is not None
        latest = redis_client.hgetall(prediction_key(MODEL))
        assert publisher.publish(make_prediction(5, value=-9.0)) == "already_published"
        assert publisher.publish(make_prediction(4, value=-9.0)) == "already_published"
        assert (publisher.published, publisher.already_published, publisher.unpublished) == (1, 2, 0)
    assert entry_ids(redis_client) == [make_prediction(5).stream_id]
    assert redis_client.hgetall(prediction_key(MODEL)) == latest
    assert redis_client.get("ML_PREDICTION") == b"1"
    assert subscriber.get_message(timeout=0.2) is None  # nothing was announced again
    subscriber.close()


def test_a_redis_restart_between_publishes_is_survived_without_duplicates(own_redis_server, make_prediction):
    publisher = Publisher(own_redis_server.url, retries=8, backoff_seconds=0.05, max_backoff_seconds=0.5).check()
    assert publisher.publish(make_prediction(0)) == "published"
    own_redis_server.restart()  # the publisher's pooled connection is now dead
    assert publisher.publish(make_prediction(1)) == "published"
    assert publisher.publish(make_prediction(1)) == "already_published"
    assert publisher.publish(make_prediction(0)) == "already_published"  # older than the stream's last
    assert publisher.publish(make_prediction(2)) == "published"
    with redis.Redis.from_url(own_redis_server.url) as client:
        ids = entry_ids(client)
    assert ids == [make_prediction(1).stream_id, make_prediction(2).stream_id]  # ordered, no duplicate
    assert publisher.unpublished == 0
    publisher.close()


def test_redis_down_longer_than_the_backoff_counts_the_bucket_unpublished(own_redis_server, make_prediction):
    publisher = Publisher(own_redis_server.url, retries=2, backoff_seconds=0.01, socket_timeout=1).check()
    assert publisher.publish(make_prediction(0)) == "published"
    own_redis_server._terminate()  # down, and it stays down through every retry
    started = time.monotonic()
    assert publisher.publish(make_prediction(1)) == "failed"
    assert publisher.publish_live(MODEL, {"accuracy": 0.5}) is False
    assert publisher.raise_alarm(MODEL, "drift") is False and publisher.clear_alarm(MODEL) is False
    assert time.monotonic() - started < 10
    assert publisher.unpublished == 1 and list(publisher.unpublished_buckets) == [(MODEL, make_prediction(1).bucket)]
    own_redis_server.restart()
    assert publisher.publish(make_prediction(2)) == "published"
    publisher.close()


def test_a_key_of_the_wrong_type_is_counted_not_raised(redis_url, redis_client, make_prediction):
    redis_client.set(stream_key(MODEL), "not a stream")
    with Publisher(redis_url) as publisher:
        assert publisher.publish(make_prediction(0)) == "failed"
        assert publisher.unpublished == 1
    assert not redis_client.exists(prediction_key(MODEL))


def test_an_unreachable_redis_at_start_is_a_connection_error_with_the_password_masked(redis_server):
    from _services import free_port

    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(ConnectionError, match=r"cannot reach Redis at redis://:\*\*\*@127\.0\.0\.1") as caught:
        Publisher(url, socket_timeout=1).check()
    assert isinstance(caught.value, RedisUnavailableError) and "s3cret" not in str(caught.value)


@pytest.mark.parametrize("kwargs", [{"ttl_seconds": 0}, {"stream_maxlen": 0}, {"retries": -1},
                                    {"gryphon_key": ""}, {"socket_timeout": "5"}])
def test_bad_settings_are_refused_by_name(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        Publisher("redis://127.0.0.1:6379/0", **kwargs)


def test_live_statistics_and_alarms_reach_the_reader(redis_url):
    with Publisher(redis_url) as publisher, PredictionReader(redis_url) as reader:
        assert publisher.publish_live(MODEL, {"accuracy": 0.55, "lift": 1.1})
        assert publisher.publish_live(MODEL, {"accuracy": 0.56})  # replaces, not merges
        live = reader.live(MODEL)
        assert live["accuracy"] == 0.56 and "lift" not in live and live["updated"].endswith("Z")
        assert reader.alarm(MODEL) is None
        assert publisher.raise_alarm(MODEL, "accuracy 0.41 < 0.48")
        assert reader.alarm(MODEL).message == "accuracy 0.41 < 0.48"
        assert publisher.clear_alarm(MODEL)
        assert reader.alarm(MODEL) is None


def test_a_publish_waits_out_a_short_outage_with_backoff(own_redis_server, make_prediction):
    publisher = Publisher(own_redis_server.url, retries=10, backoff_seconds=0.05, max_backoff_seconds=0.5,
                          socket_timeout=1).check()
    own_redis_server._terminate()
    comeback = threading.Timer(0.3, own_redis_server.restart)
    comeback.start()
    try:
        assert publisher.publish(make_prediction(0)) == "published"
    finally:
        comeback.join()
    assert publisher.unpublished == 0
    publisher.close()
