"""Writes predictions, live statistics and alarms into Redis in the layout of :mod:`serving.schema`.

A prediction is written by one Lua script, sent with ``EVAL``: one network round trip, atomic as ``MULTI``/``EXEC``
is, and conditional, which a transaction is not: the script first appends the stream entry ``<bucket_ms>-0``, and
only when Redis accepts it (the bucket is newer than the stream's last) does it replace the hash, refresh its expiry,
publish on the channel and set Gryphon's key. A repeated or replayed bucket therefore changes nothing and is
reported as ``"already_published"``; inside a ``MULTI`` the refused ``XADD`` would not stop the other commands, and a
replayed old bucket would overwrite the latest prediction.

Faults: when Redis is unreachable or restarts, a call retries with exponential backoff (``backoff_seconds`` doubling
up to ``max_backoff_seconds``, ``retries`` times), reconnecting each time; when every attempt fails it logs, counts
the bucket as unpublished and returns, so a serving loop never dies of a Redis outage.

Example:
    >>> publisher = Publisher("redis://:s3cret@127.0.0.1:1/0", retries=0, socket_timeout=0.2)
    >>> publisher
    Publisher('redis://:***@127.0.0.1:1/0')
    >>> publisher.check()
    Traceback (most recent call last):
    ...
    serving.schema.RedisUnavailableError: cannot reach Redis at redis://:***@127.0.0.1:1/0: ...
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from atlas.config import mask_url
from atlas.exceptions import ConfigError
from serving.schema import (
    GRYPHON_KEY,
    Alarm,
    Prediction,
    RedisUnavailableError,
    alarm_key,
    channel_name,
    check_model_name,
    live_fields,
    live_key,
    prediction_key,
    stream_key,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: KEYS: hash, stream[, gryphon key]. ARGV: ttl ms, stream maxlen, entry ID, channel, JSON, 0/1, field, value, ...
_PUBLISH = """
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], ARGV[3], unpack(fields))
if type(added) == 'table' and added.err then
  if string.find(added.err, 'equal or smaller', 1, true) then return 0 end
  return redis.error_reply(added.err)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
if #KEYS > 2 then redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[1]) end
return 1
"""

#: What :meth:`Publisher.publish` returns.
PUBLISHED, ALREADY_PUBLISHED, FAILED = "published", "already_published", "failed"
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


class Publisher:
    """Publishes one or several models' predictions into Redis.

    Args:
        redis_url: ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``).
        ttl_seconds: expiry of the latest-prediction hash (and Gryphon's key), refreshed on every write; about
            three bucket widths, so a stopped model's prediction disappears instead of going stale.
        stream_maxlen: about how many past predictions the stream keeps (``XADD MAXLEN ~``).
        gryphon_key: also set Gryphon's 0/1 key: True for ``ML_PREDICTION``, or another key name.
        retries: attempts after the first when Redis is unreachable; backoff_seconds, max_backoff_seconds: the
            first wait between attempts, doubling up to the cap.
        socket_timeout: seconds to wait for Redis to connect or answer.

    Attributes:
        published, already_published, unpublished: how many predictions each call outcome counted.
        unpublished_buckets: the latest 1000 ``(model, bucket)`` that could not be published.

    Example:
        >>> publisher = Publisher("redis://127.0.0.1:6379/0", ttl_seconds=180, gryphon_key=True)  # doctest: +SKIP
        >>> publisher.check().publish(prediction)                                                  # doctest: +SKIP
        'published'
    """

    def __init__(self, redis_url: str, *, ttl_seconds: float = 180.0, stream_maxlen: int = 10_000,
                 gryphon_key: bool | str = False, retries: int = 5, backoff_seconds: float = 0.1,
                 max_backoff_seconds: float = 5.0, socket_timeout: float = 5.0) -> None:
        for name, number, low in (("ttl_seconds", ttl_seconds, 0.001), ("stream_maxlen", stream_maxlen, 1),
                                  ("retries", retries, 0), ("backoff_seconds", backoff_seconds, 0),
                                  ("max_backoff_seconds", max_backoff_seconds, 0),
                                  ("socket_timeout", socket_timeout, 0.001)):
            if isinstance(number, bool) or not isinstance(number, int | float) or number < low:
                msg = f"Publisher needs {name} >= {low}, got {name}={number!r}"
                raise ConfigError(msg)
        if gryphon_key is True:
            gryphon_key = GRYPHON_KEY
        if gryphon_key is not False and (not isinstance(gryphon_key, str) or not gryphon_key):
            msg = f"gryphon_key is True, False or a key name, got gryphon_key={gryphon_key!r}"
            raise ConfigError(msg)
        self.url = redis_url
        self.ttl_ms = int(ttl_seconds * 1000)
        self.stream_maxlen = int(stream_maxlen)
        self.gryphon_key: str | None = gryphon_key or None
        self.retries = int(retries)
        self.backoff_seconds = float(backoff_seconds)
        self.max_backoff_seconds = float(max_backoff_seconds)
        self.published = 0
        self.already_published = 0
        self.unpublished = 0
        self.unpublished_buckets: deque[tuple[str, datetime]] = deque(maxlen=1000)
        try:
            self.client = redis.Redis.from_url(
                redis_url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 0),  # this class's backoff is the one retry policy
            )
        except ValueError as error:
            msg = f"not a Redis URL: {mask_url(redis_url)} ({error}); write redis://[:password@]host:port/db"
            raise ConfigError(msg) from None
        # EVALSHA: the script is sent once, then called by its digest (reloaded after a Redis restart)
        self._publish = self.client.register_script(_PUBLISH)

    def __repr__(self) -> str:
        return f"Publisher({mask_url(self.url)!r})"

    def __enter__(self) -> Publisher:
        return self.check()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def check(self) -> Publisher:
        """Pings Redis once, without retrying.

        Raises:
            RedisUnavailableError: (a ConnectionError) Redis cannot be reached, naming the masked URL.
        """
        try:
            self.client.ping()
            self.client.script_load(_PUBLISH)  # so that every publish is one round trip (EVALSHA)
        except (redis.RedisError, OSError) as error:
            msg = (f"cannot reach Redis at {mask_url(self.url)}: {error}. Start redis-server, or set REDIS_URL "
                   "to a reachable server")
            raise RedisUnavailableError(msg) from None
        return self

    def publish(self, prediction: Prediction) -> str:
        """Writes one prediction: stream entry, latest hash with its expiry, channel message, Gryphon's key.

        Returns:
            ``"published"``; ``"already_published"`` when the stream already holds this bucket or a later one
            (nothing is changed); ``"failed"`` when Redis stayed unreachable (counted in :attr:`unpublished`).
        """
        model = prediction.model
        keys = [prediction_key(model), stream_key(model)] + ([self.gryphon_key] if self.gryphon_key else [])
        fields = [item for pair in prediction.to_fields().items() for item in pair]
        args = [self.ttl_ms, self.stream_maxlen, prediction.stream_id, channel_name(model), prediction.to_json(),
                prediction.signal, *fields]
        added = self._with_retries(lambda: self._publish(keys=keys, args=args),
                                   f"publish {model}'s prediction for {prediction.bucket.isoformat()}")
        if added is None:
            self.unpublished += 1
            self.unpublished_buckets.append((model, prediction.bucket))
            return FAILED
        if int(added) == 1:
            self.published += 1
            return PUBLISHED
        self.already_published += 1
        logger.info("%s bucket %s is already in the stream; not written again", model, prediction.bucket)
        return ALREADY_PUBLISHED

    def publish_live(self, model: str, stats: Mapping[str, object], *, now: datetime | None = None) -> bool:
        """Replaces the live-statistics hash with ``stats`` (numbers or text) and the time it was updated.

        Returns:
            False when Redis stayed unreachable.
        """
        fields = live_fields(stats, now or datetime.now(UTC))
        key = live_key(check_model_name(model))
        return self._replace_hash(key, fields, f"update live statistics of {model}")

    def raise_alarm(self, model: str, message: str, *, now: datetime | None = None) -> bool:
        """Sets the model's alarm (``atlas:v1:alarm:<model>``); False when Redis stayed unreachable."""
        alarm = Alarm(str(message), now or datetime.now(UTC))
        logger.warning("alarm on %s: %s", model, message)
        return self._replace_hash(alarm_key(check_model_name(model)), alarm.to_fields(), f"raise {model}'s alarm")

    def clear_alarm(self, model: str) -> bool:
        """Removes the model's alarm; False when Redis stayed unreachable."""
        key = alarm_key(check_model_name(model))
        return self._with_retries(lambda: self.client.delete(key), f"clear {model}'s alarm") is not None

    def _replace_hash(self, key: str, fields: dict[str, str], what: str) -> bool:
        def write() -> list:
            with self.client.pipeline(transaction=True) as pipe:
                return pipe.delete(key).hset(key, mapping=fields).execute()

        return self._with_retries(write, what) is not None

    def _with_retries(self, call: Callable[[], T], what: str) -> T | None:
        """``call()``, retried with exponential backoff while Redis is unreachable; None when it never was, or
        when Redis refuses the command (a key of another type: retrying cannot fix it)."""
        delay = min(self.backoff_seconds, self.max_backoff_seconds)
        for attempt in range(self.retries + 1):
            try:
                return call()
            except _RETRYABLE as error:
                if attempt == self.retries:
                    logger.error("could not %s: Redis at %s unreachable after %d attempts (%s)", what,
                                 mask_url(self.url), attempt + 1, error)
                    return None
                logger.warning("could not %s (%s); retrying in %.2f s", what, error, delay)
                self.client.connection_pool.disconnect()  # reconnect: the next attempt opens a fresh socket
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)
            except redis.RedisError as error:
                logger.error("could not %s: Redis at %s refused it (%s)", what, mask_url(self.url), error)
                return None
        return None
