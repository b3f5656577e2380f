"""A serving session's record in MLflow: one run per ``atlas serve``, its live statistics as metrics over buckets.

The run lives in the experiment ``atlas-serving`` (or the one given), is named after the models it serves, and
carries what was served (model, alias, version, run id per model) as parameters; each model's rolling live
statistics are logged as ``live.<model>.<statistic>`` at the bucket count, and the runner's counts at the end.
"""

from __future__ import annotations

import math
import time

from atlas.runs import Level, Tag

#: The experiment serving sessions are recorded in by default.
EXPERIMENT = "atlas-serving"


class Session:
    """Logs one serving session to MLflow.

    Args:
        tracking_uri: the MLflow tracking URI.
        targets: the models served (for the run's name).
        feed: the feed's name (``store`` or ``redis``).
        experiment: the experiment's name.
    """

    def __init__(self, tracking_uri: str, targets, *, feed: str, experiment: str = EXPERIMENT) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        names = "+".join(str(t.key) for t in targets)
        self.run = self.client.create_run(experiment_id, run_name=f"serve-{names}"[:200],
                                          tags={Tag.LEVEL: Level.SERVING, Tag.SCHEMA: "2"})
        self.run_id = self.run.info.run_id
        self.client.log_param(self.run_id, "feed", feed)
        self._logged: set[str] = set()

    def log(self, served, stats: dict, *, step: int) -> None:
        """One model's live statistics at ``step`` buckets (its version as a parameter the first time)."""
        from mlflow.entities import Metric

        key = served.target.key
        if key not in self._logged:
            self.client.log_param(self.run_id, f"{key}.version", served.ref.version)
            self.client.log_param(self.run_id, f"{key}.run_id", served.ref.run_id or "-")
            self._logged.add(key)
        now = int(time.time() * 1000)
        metrics = [Metric(f"live.{key}.{name}", float(value), now, step) for name, value in stats.items()
                   if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)]
        for first in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[first:first + 1000])

    def finish(self, runner) -> None:
        """The runner's counts, and the run ended (FINISHED, or FAILED when a model drifted)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        for target, counts in runner.counts.items():
            for name in ("published", "already_published", "unpublished", "incomplete", "gaps", "stale", "errors",
                         "swaps"):
                metrics.append(Metric(f"serve.{target.key}.{name}", float(getattr(counts, name)), now, 0))
        self.client.log_batch(self.run_id, metrics=metrics)
        self.client.set_terminated(self.run_id, "FAILED" if runner.drifted else "FINISHED")


__all__ = ["EXPERIMENT", "Session"]
