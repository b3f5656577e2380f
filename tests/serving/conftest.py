"""Real redis-servers on loopback: one for the session (flushed before each test), one per test for restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from _services import RedisServer

from serving.schema import Prediction

#: The first bucket the tests publish.
T0 = datetime(2024, 1, 1, 0, 10, tzinfo=UTC)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session server's URL, emptied for this test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
def own_redis_server():
    """A server of this test's own, to restart or stop."""
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
def make_prediction():
    """``make_prediction(i, ...)``: a prediction of ``model`` for bucket ``T0 + i`` minutes."""

    def make(i: int = 0, *, model: str = "quickstart_itbit", value: float = 0.5,
             produced: datetime | None = None, **probabilities: float) -> Prediction:
        bucket = T0 + timedelta(minutes=i)
        produced = produced or bucket + timedelta(seconds=1)
        if probabilities:
            return Prediction.from_probabilities(model, bucket, probabilities, produced=produced, version="3",
                                                 run_id="abc123", alias="production")
        return Prediction(model, bucket, value, produced, version="3", run_id="abc123", alias="production")

    return make
