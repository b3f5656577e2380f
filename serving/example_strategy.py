"""A Gryphon-style strategy that trades on an Atlas prediction; it logs what it would do and places no order.

Gryphon calls a strategy's ``tick(order_book, eaten_orders)`` every ``tick_sleep`` seconds
(``gryphon/execution/strategies/base.pyx``); this one reads the model's latest prediction there and decides::

    python -m serving.example_strategy --redis-url redis://127.0.0.1:6379/0 --model quickstart_itbit --once

Example:
    >>> from datetime import UTC, datetime
    >>> from serving.schema import Prediction
    >>> now = datetime(2024, 1, 1, 0, 10, 5, tzinfo=UTC)
    >>> up = Prediction.from_probabilities("m", now, {"down": 0.3, "up": 0.7}, produced=now)
    >>> decide(up, alarm=None, threshold=0.0).action, decide(None, alarm=None, threshold=0.0).action
    ('buy', 'hold')
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from serving.client import PredictionReader
from serving.schema import Alarm, Prediction, RedisUnavailableError, SchemaError

logger = logging.getLogger("serving.example_strategy")


@dataclass(frozen=True)
class Decision:
    """What the strategy would do: ``"buy"``, ``"sell"`` or ``"hold"``, and why."""

    action: str
    reason: str
    prediction: Prediction | None = None


def decide(prediction: Prediction | None, *, alarm: Alarm | None, threshold: float) -> Decision:
    """Buys on a value above ``threshold``, sells below ``-threshold``; holds without a fresh prediction or on alarm."""
    if prediction is None:
        return Decision("hold", "no fresh prediction")
    if alarm is not None:
        return Decision("hold", f"the model's alarm is raised: {alarm.message}", prediction)
    if prediction.value > threshold:
        return Decision("buy", f"value {prediction.value:g} > {threshold:g}", prediction)
    if prediction.value < -threshold:
        return Decision("sell", f"value {prediction.value:g} < {-threshold:g}", prediction)
    return Decision("hold", f"|value {prediction.value:g}| <= {threshold:g}", prediction)


class PredictionStrategy:
    """Reads ``model``'s latest prediction each tick and logs the order it would place.

    Args:
        reader: where predictions are read.
        model: the registered model name.
        max_age: a prediction produced longer ago than this is ignored (hold).
        threshold: the |value| a trade needs.
        tick_sleep: seconds between ticks (Gryphon's setting of the same name).
    """

    def __init__(self, reader: PredictionReader, model: str, *, max_age: timedelta = timedelta(minutes=2),
                 threshold: float = 0.0, tick_sleep: float = 5.0) -> None:
        self.reader = reader
        self.model = model
        self.max_age = max_age
        self.threshold = threshold
        self.tick_sleep = tick_sleep

    def tick(self, order_book=None, eaten_orders=None) -> Decision:
        """One tick, as Gryphon's ``Strategy.tick(order_book, eaten_orders)``; returns the decision it logged.

        Redis out of reach or a record of another schema version means "hold", never a crash of the bot.
        """
        try:
            decision = decide(self.reader.latest(self.model, max_age=self.max_age),
                              alarm=self.reader.alarm(self.model), threshold=self.threshold)
        except (RedisUnavailableError, SchemaError) as error:
            decision = Decision("hold", f"cannot read predictions: {error}")
        prediction = decision.prediction
        at = f" (bucket {prediction.bucket.isoformat()}, model version {prediction.version or '?'})" \
            if prediction else ""
        logger.info("%s: would %s%s: %s", self.model, decision.action.upper(), at, decision.reason)
        return decision

    def run(self, *, once: bool = False) -> None:
        while True:
            self.tick()
            if once:
                return
            time.sleep(self.tick_sleep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.example_strategy", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--model", default="quickstart_itbit")
    parser.add_argument("--max-age", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--threshold", type=float, default=0.0)
    parser.add_argument("--tick-sleep", type=float, default=5.0)
    parser.add_argument("--once", action="store_true", help="one tick, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    with PredictionReader(args.redis_url) as reader:
        strategy = PredictionStrategy(reader, args.model, max_age=timedelta(seconds=args.max_age),
                                      threshold=args.threshold, tick_sleep=args.tick_sleep)
        try:
            strategy.run(once=args.once)
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
