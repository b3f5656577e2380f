"""The model runner: at each bucket close, features from the feed, a prediction, one pipelined write to Redis.

One runner serves one or several registered models or aliases at once (``NAME`` is ``NAME@production``; a
challenger can run in shadow beside it as ``NAME@challenger``, published as ``NAME.challenger``). It keeps one
rolling :class:`~serving._history.History` of every series its models read, warmed up from the store, and for each
model the last ``window`` complete feature rows. The features are the training features by construction: the same
pure ``FeatureLabelSet.compute_features`` over the same series (a replay computes them in one pass over its range,
a live feed bucket by bucket: equal, since no feature reads the future), scaled by the model's own ``Transforms``.

What it never does: predict from a row with a missing value (a gap longer than the set's ``max_interpolate``), from
an order book older than Gryphon's 10 seconds, or publish a bucket twice. A windowed model trained with
``allow_gaps=False`` (the default) gets no prediction for a bucket whose window of complete rows is not ``window``
consecutive buckets (it spans a gap in the feed or a row with a missing value), as training dropped such windows and
``ModelArtifact.predict_market`` leaves such buckets out; the bucket is counted under ``gaps``. A model that raises is logged and skipped
for that bucket. When an alias moves, the new version loads in the background and takes over between two buckets;
a version that fails to load, or whose series the feed cannot give, leaves the old one serving and says why.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from serving._served import Counts, Served, Target
from serving.live import LiveScorer
from serving.registry import ModelRef, Registry
from serving.schema import Prediction

log = logging.getLogger("serving")

#: Served predictions whose horizon has passed are scored every this many buckets (and when the runner stops).
SCORE_EVERY = 10


class ModelRunner:
    """Serves ``targets`` from ``feed`` into Redis through ``publisher``.

    Args:
        targets: the models to serve.
        registry: where aliases resolve and models load from.
        feed: a :mod:`serving.feeds` feed.
        publisher: a :class:`serving.publisher.Publisher`.
        store: the market store (warm-up history); may be None for a replay (the feed has it).
        swap_every: seconds between checks of the aliases (0: never; tests call :meth:`check_aliases`).
        live_every: publish the live statistics every this many buckets.
        fail_on_drift: stop when a model's live accuracy falls below its bound (:attr:`drifted`).
        cost_bps: the trading cost of the live net return.
        session: a :class:`serving.session.Session` logging the live statistics to MLflow, or None.
        min_scored: live predictions scored before the drift alarm may sound.
        one_pass: a replay computes its features in one pass over its range (False: bucket by bucket, as live).
    """

    def __init__(self, targets, *, registry: Registry, feed, publisher, swap_every: float = 10.0,
                 live_every: int = 10, fail_on_drift: bool = False, cost_bps: float = 1.0, session=None,
                 min_scored: int = 100, one_pass: bool = True) -> None:
        self.targets = [t if isinstance(t, Target) else Target.parse(t) for t in targets]
        if not self.targets:
            raise ConfigError("give at least one model to serve: atlas serve NAME [NAME@ALIAS ...]")
        self.registry, self.feed, self.publisher = registry, feed, publisher
        self.swap_every, self.live_every, self.fail_on_drift = swap_every, int(live_every), fail_on_drift
        self.cost_bps, self.session, self.min_scored, self.one_pass = cost_bps, session, min_scored, one_pass
        self.served: dict[Target, Served] = {}
        self.counts: dict[Target, Counts] = {t: Counts() for t in self.targets}
        self.latency: dict[str, list[float]] = {"features": [], "predict": [], "publish": []}
        self.drifted: list[str] = []
        self._swaps: dict[Target, Served] = {}
        self._refused: set[tuple[Target, str]] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.history = None
        self.buckets = 0

    # starting ---------------------------------------------------------------------------------------------------

    def start(self) -> ModelRunner:
        """Resolves every alias and loads its version, then warms up the history from the store."""
        from serving._history import History

        for target in self.targets:
            served = self._load(target, self.registry.resolve(target.name, target.alias))
            lacking = self.feed.can_serve(served.names)
            if lacking:
                msg = (f"{target} (version {served.ref.version}) reads series the {_feed_name(self.feed)} feed cannot "
                       f"give: {lacking}; serve it with --feed store, or promote a model whose features are "
                       f"order-book metrics")
                raise ConfigError(msg)
            self.served[target] = served
        widths = {s.width for s in self.served.values()}
        if len(widths) > 1 or widths != {self.feed.width}:
            msg = (f"the models' bucket widths {sorted(str(w) for w in widths)} differ from the feed's "
                   f"{self.feed.width}; serve models of one width per runner")
            raise ConfigError(msg)
        names = set(self.feed.names)
        length = max(s.needs for s in self.served.values()) + max(s.window for s in self.served.values()) + 8
        self.history = History(names, width=self.feed.width, length=max(length, 64))
        self.history.extend(self.feed.warmup(self.history.length))
        for served in self.served.values():
            self._attach(served)
            log.info("serving %s: version %s (run %s), window %s, %d features", served.target, served.ref.version,
                     served.ref.run_id, served.window, len(served.featureset.features))
        return self

    def _load(self, target: Target, ref: ModelRef) -> Served:
        artifact = self.registry.load(ref)
        metrics = self.registry.test_metrics(ref.run_id)
        accuracy = metrics.get("test_accuracy", metrics.get("test_directional_accuracy"))
        lift = metrics.get("test_accuracy_lift")
        scorer = LiveScorer(class_names=artifact.class_names, test_accuracy=accuracy,
                            baseline_accuracy=None if accuracy is None or lift is None else accuracy - lift,
                            cost_bps=self.cost_bps, min_scored=self.min_scored)
        return Served(target, ref, artifact, scorer)

    def _attach(self, served: Served) -> None:
        """Computes a replay's features in one pass, or primes the rows from the history."""
        frame = getattr(self.feed, "frame", None)
        if frame is not None and self.one_pass:
            series = pd.concat([self.history_frame(), frame()]).sort_index()
            series = series[~series.index.duplicated(keep="last")]
            frame = served.featureset.compute_features({n: series[n] for n in served.names}, series.index)
            served.table = dict(zip(frame.index.asi8.tolist(), frame.to_numpy(dtype=np.float64), strict=True))
        served.prime(self.history)

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history.series())

    # serving ----------------------------------------------------------------------------------------------------

    def run(self, *, max_buckets: int | None = None) -> int:
        """Serves until the feed ends, :meth:`stop` (SIGTERM: the bucket in hand is finished) or ``max_buckets``.

        Returns:
            The exit status: 0, or 3 when a model drifted and ``fail_on_drift`` is set.
        """
        if self.history is None:
            self.start()
        watcher = None
        if self.swap_every and self.swap_every > 0:
            watcher = threading.Thread(target=self._watch, name="alias-watcher", daemon=True)
            watcher.start()
        try:
            for bucket in self.feed:
                self.on_bucket(bucket)
                if self._stop.is_set() or (max_buckets is not None and self.buckets >= max_buckets):
                    break
                if self.fail_on_drift and self.drifted:
                    break
        finally:
            self._stop.set()
            self.feed.close()
            if self.history is not None and self.history.last is not None:
                for served in self.served.values():
                    self._score(served, self.history.last.value)
            self._publish_live()
            if self.session is not None:
                self.session.finish(self)
        return 3 if self.fail_on_drift and self.drifted else 0

    def stop(self) -> None:
        """Asks the runner to stop after the bucket in hand (a signal handler calls it)."""
        self._stop.set()
        self.feed.close()

    def on_bucket(self, bucket) -> dict[Target, str]:
        """Serves one closed bucket of the feed; returns what happened per model."""
        self._apply_swaps()
        missing = self.history.append(bucket.bucket, bucket.values)
        if missing is None:
            log.warning("bucket %s is not after %s: skipped (a repeated or out-of-order bucket)", bucket.bucket,
                        self.history.last)
            return {}
        if missing:
            log.warning("the feed skipped %d bucket(s) before %s: no prediction from those buckets", missing,
                        bucket.bucket)
            for served in self.served.values():  # a replay's one-pass features assumed every bucket would come
                served.table = None
        for rule, count in bucket.skipped.items():
            log.warning("%d order book(s) skipped at %s: %s", count, bucket.bucket, rule)
        self.buckets += 1
        stamp = pd.Timestamp(bucket.bucket).value
        outcome = {}
        for target, served in self.served.items():
            outcome[target] = self._serve(target, served, bucket, stamp)
        if self.buckets % SCORE_EVERY == 0:  # scoring is off the bucket's path: in batches
            for served in self.served.values():
                self._score(served, stamp)
        if self.live_every and self.buckets % self.live_every == 0:
            self._publish_live()
        return outcome

    def _serve(self, target: Target, served: Served, bucket, stamp: int) -> str:
        counts = self.counts[target]
        began = time.perf_counter()
        row = served.features_at(self.history, stamp)
        features = time.perf_counter()
        if row is None:
            counts.incomplete += 1
            return "incomplete"
        served.rows.append((stamp, row))
        stale = sorted(set(bucket.stale) & set(served.exchanges))
        if stale:
            counts.stale += 1
            log.warning("%s: no prediction for %s: the order book of %s is older than %ss", target, bucket.bucket,
                        ", ".join(stale), getattr(self.feed, "max_book_age", "?"))
            return "stale"
        if len(served.rows) < served.window:
            counts.incomplete += 1
            return "incomplete"
        if served.artifact.window and not served.artifact.transforms.allow_gaps and \
                served.rows[-1][0] - served.rows[0][0] != (served.window - 1) * served.width.value:
            counts.gaps += 1  # the window spans a gap: training dropped such windows
            return "gap"
        values = np.stack([r for _, r in served.rows]) if served.artifact.window else served.rows[-1][1]
        try:
            output = np.asarray(served.artifact.predict_one(values), dtype=np.float64).reshape(-1)
            prediction = self._prediction(served, stamp, output)
        except Exception as error:  # noqa: BLE001 (a model that raises must not stop the others)
            counts.errors += 1
            log.error("%s: version %s failed to predict bucket %s: %s: %s", target, served.ref.version,
                      bucket.bucket, type(error).__name__, error)
            return "error"
        predicted = time.perf_counter()
        result = self.publisher.publish(prediction)
        published = time.perf_counter()
        setattr(counts, result, getattr(counts, result) + 1)
        if result == "published":
            served.pending.append((stamp, prediction.predicted_class or prediction.value))
        self.latency["features"].append(features - began)
        self.latency["predict"].append(predicted - features)
        self.latency["publish"].append(published - predicted)
        return result

    def _prediction(self, served: Served, stamp: int, output: np.ndarray) -> Prediction:
        bucket = datetime.fromtimestamp(stamp / 1e9, tz=UTC)
        common = {"produced": datetime.now(UTC), "version": served.ref.version, "run_id": served.ref.run_id,
                  "alias": served.target.alias}
        if served.artifact.task == "classification":
            probabilities = dict(zip(served.artifact.class_names, output.tolist(), strict=True))
            return Prediction.from_probabilities(served.target.key, bucket, probabilities, **common)
        return Prediction(served.target.key, bucket, float(output[0]), **common)

    def _score(self, served: Served, stamp: int) -> None:
        """Scores the predictions whose label horizon has passed, from the same history."""
        horizon = served.featureset.horizon * served.width.value
        due = [p for p in served.pending if p[0] + horizon <= stamp]
        if not due:
            return
        for _ in due:
            served.pending.popleft()
        n = (stamp - due[0][0]) // served.width.value + served.label.footprint.lookback + 1
        series = self.history.series(n)
        index = series[served.label_names[0]].index
        labels = served.label.compute({k: series[k] for k in served.label_names}, index=index)
        for at, predicted in due:
            value = labels.get(pd.Timestamp(at, tz="UTC"))
            if value is None or not np.isfinite(value):
                continue
            realized = None
            if served.class_labels is not None:
                number = served.class_labels.transform(pd.Series([value])).iloc[0]
                if pd.isna(number):  # a tie under ClassLabels(ties="drop"): no class, left out as in training
                    continue
                realized = served.artifact.class_names[int(number)]
            served.scorer.score(at, predicted=predicted, realized_class=realized, realized_return=float(value))
        stats = served.scorer.statistics()
        if stats["drift"] and served.target.key not in self.drifted:
            self.drifted.append(served.target.key)
            message = (f"live accuracy {stats['accuracy']:.4f} over the last {stats['window']} predictions is below "
                       f"{stats['lower_bound']:.4f}, the 1% bound the test accuracy "
                       f"{served.scorer.test_accuracy:.4f} implies")
            log.error("%s: DRIFT: %s", served.target, message)
            self.publisher.raise_alarm(served.target.key, message)

    def _publish_live(self) -> None:
        for served in self.served.values():
            stats = served.scorer.statistics()
            stats |= {"version": served.ref.version, "buckets": self.buckets,
                      "published": self.counts[served.target].published}
            self.publisher.publish_live(served.target.key, stats)
            if self.session is not None:
                self.session.log(served, stats, step=self.buckets)

    # hot swap ---------------------------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(self.swap_every):
            try:
                self.check_aliases()
            except Exception as error:  # noqa: BLE001 (the registry may be down a while: keep serving)
                log.warning("checking the aliases failed (%s): the versions in hand keep serving", error)

    def check_aliases(self) -> list[str]:
        """Loads any version an alias moved to; it takes over at the next bucket. Returns what happened."""
        said = []
        for target, served in list(self.served.items()):
            ref = self.registry.resolve(target.name, target.alias)
            if ref.version == served.ref.version or (target, ref.version) in self._refused:
                continue
            with self._lock:
                if target in self._swaps and self._swaps[target].ref.version == ref.version:
                    continue
            try:
                new = self._load(target, ref)
                lacking = self.feed.can_serve(new.names)
                if lacking or not set(new.names) <= set(self.history.names):
                    raise ConfigError(f"its features read series this runner's feed does not give: "
                                      f"{sorted(set(lacking) | (set(new.names) - set(self.history.names)))}")
                if new.width != self.feed.width:
                    raise ConfigError(f"its bucket width {new.width} is not the feed's {self.feed.width}")
            except ConfigError as error:
                self._refused.add((target, ref.version))
                self.counts[target].refused_versions.append(ref.version)
                text = f"{target}: version {ref.version} not served, version {served.ref.version} keeps serving: {error}"
                log.error("%s", text)
                said.append(text)
                continue
            with self._lock:
                self._swaps[target] = new
            said.append(f"{target}: version {ref.version} loaded; it serves from the next bucket")
        return said

    def _apply_swaps(self) -> None:
        with self._lock:
            swaps, self._swaps = self._swaps, {}
        for target, new in swaps.items():
            self._attach(new)
            old = self.served[target]
            new.scorer = old.scorer if old.ref.version == new.ref.version else new.scorer
            self.served[target] = new
            self.counts[target].swaps += 1
            log.info("%s: version %s took over from version %s", target, new.ref.version, old.ref.version)


def _feed_name(feed) -> str:
    return "Redis" if getattr(feed, "live", False) else "store"


__all__ = ["Counts", "ModelRunner", "Served", "Target"]
