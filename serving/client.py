"""What a Gryphon strategy reads: the latest prediction, its history, live statistics, the alarm, new predictions.

The standard library and ``redis`` only (no Atlas, NumPy, pandas or TensorFlow), so it starts fast in a trading
process and can be copied next to a strategy together with :mod:`serving.schema`.

Example:
    >>> reader = PredictionReader("redis://127.0.0.1:6379/0")                      # doctest: +SKIP
    >>> prediction = reader.latest("quickstart_itbit", max_age=120)               # doctest: +SKIP
    >>> if prediction is not None and prediction.value > 0 and not reader.alarm("quickstart_itbit"):
    ...     print("go long")                                                      # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

import redis

from serving.schema import (
    Alarm,
    Prediction,
    RedisUnavailableError,
    alarm_key,
    channel_name,
    live_key,
    mask_url,
    parse_live,
    prediction_key,
    stream_key,
)

T = TypeVar("T")


class PredictionReader:
    """Reads Atlas predictions from Redis (schema version 1).

    Args:
        redis_url: ``redis://[:password@]host:port/db``, the one the publisher writes to.
        socket_timeout: seconds to wait for Redis to connect or answer.

    Raises (from every method):
        RedisUnavailableError: (a ConnectionError) Redis cannot be reached; the URL is named, password masked.
        SchemaError: (a ValueError) a record of another schema version; upgrade this package.
    """

    def __init__(self, redis_url: str, *, socket_timeout: float = 5.0) -> None:
        self.url = redis_url
        self.client = redis.Redis.from_url(redis_url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)

    def __repr__(self) -> str:
        return f"PredictionReader({mask_url(self.url)!r})"

    def __enter__(self) -> PredictionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def check(self) -> PredictionReader:
        """Pings Redis; raises :class:`RedisUnavailableError` when it cannot be reached."""
        self._call(self.client.ping)
        return self

    def latest(self, model: str, max_age: timedelta | float | None = None, *,
               now: datetime | None = None) -> Prediction | None:
        """The model's latest prediction, or None when there is none or it is too old.

        Args:
            max_age: the oldest acceptable prediction, measured from the time it was *produced* (a timedelta or
                seconds); None accepts any age (the hash still expires ``ttl`` seconds after its last write).
            now: the current time (UTC); the clock's when omitted.
        """
        limit = _seconds(max_age)
        fields = self._call(lambda: self.client.hgetall(prediction_key(model)))
        if not fields:
            return None
        prediction = Prediction.from_fields(fields)
        if limit is not None and prediction.age(now).total_seconds() > limit:
            return None
        return prediction

    def history(self, model: str, count: int = 100) -> list[Prediction]:
        """The model's last ``count`` predictions from the stream, oldest first."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            msg = f"history needs count >= 1, got count={count!r}"
            raise ValueError(msg)
        entries = self._call(lambda: self.client.xrevrange(stream_key(model), count=count))
        return [Prediction.from_fields(fields) for _, fields in reversed(entries)]

    def live(self, model: str) -> dict[str, float | str]:
        """The model's live statistics (numbers as floats, plus ``updated``); empty when none were published."""
        return parse_live(self._call(lambda: self.client.hgetall(live_key(model))))

    def alarm(self, model: str) -> Alarm | None:
        """The model's drift alarm, or None when it is clear."""
        fields = self._call(lambda: self.client.hgetall(alarm_key(model)))
        return Alarm.from_fields(fields) if fields else None

    def subscribe(self, model: str, *, timeout: float | None = None) -> Subscription:
        """New predictions as they are published, from the moment this returns.

        Args:
            timeout: iteration ends after this many seconds without a prediction; None waits forever.

        Example:
            >>> with reader.subscribe("quickstart_itbit") as predictions:   # doctest: +SKIP
            ...     for prediction in predictions:
            ...         print(prediction.bucket, prediction.value)
        """
        return self._call(lambda: Subscription(self.client, model, timeout))

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
            msg = f"cannot reach Redis at {mask_url(self.url)}: {error}"
            raise RedisUnavailableError(msg) from None


class Subscription:
    """An open subscription to a model's channel: iterate it, or :meth:`get` one prediction at a time."""

    def __init__(self, client: redis.Redis, model: str, timeout: float | None) -> None:
        self.timeout = _seconds(timeout)
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(channel_name(model))
        deadline = time.monotonic() + (client.get_connection_kwargs().get("socket_timeout") or 5.0)
        while True:  # wait for Redis to confirm, so that every prediction published after this is received
            message = self._pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.0))
            if message is not None and message["type"] == "subscribe":
                break
            if time.monotonic() >= deadline:
                self.close()
                msg = f"Redis did not confirm the subscription to {channel_name(model)}"
                raise redis.TimeoutError(msg)

    def get(self, timeout: float | None = None) -> Prediction | None:
        """The next prediction, or None when none comes within ``timeout`` seconds (None: wait forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # waits in short slices: a read longer than the socket timeout would raise instead of waiting
            remaining = 1.0 if deadline is None else min(max(deadline - time.monotonic(), 0.0), 1.0)
            message = self._pubsub.get_message(timeout=remaining)
            if message is not None and message["type"] == "message":
                return Prediction.from_json(message["data"])
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def __iter__(self) -> Iterator[Prediction]:
        while (prediction := self.get(self.timeout)) is not None:
            yield prediction

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        msg = f"an age or timeout is a positive timedelta or number of seconds, got {value!r}"
        raise ValueError(msg)
    return float(seconds)


def main(argv: list[str] | None = None) -> int:
    """``python -m serving.client NAME [--redis-url URL]``: the latest prediction, the live statistics, the alarm."""
    import argparse

    parser = argparse.ArgumentParser(description="Print a model's latest prediction and live statistics.")
    parser.add_argument("model")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    with PredictionReader(args.redis_url) as reader:
        latest = reader.latest(args.model)
        if latest is None:
            print(f"{args.model}: no prediction in Redis")
            return 1
        classes = ", ".join(f"p_{k} {v:.4f}" for k, v in latest.probabilities.items())
        print(f"{args.model}: bucket {latest.bucket.isoformat()} -> {latest.predicted_class or latest.value} "
              f"({classes or f'value {latest.value:.6g}'}), version {latest.version}, produced "
              f"{latest.produced.isoformat()}")
        live = reader.live(args.model)
        shown = ("scored", "accuracy", "lift", "hit_rate", "net_return", "lower_bound")
        print("  live: " + ", ".join(f"{k} {_show(live[k])}" for k in shown if k in live))
        alarm = reader.alarm(args.model)
        print(f"  alarm: {alarm.message}" if alarm else "  alarm: none")
    return 0


def _show(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}" if isinstance(
        value, float) else str(value)


if __name__ == "__main__":
    raise SystemExit(main())

