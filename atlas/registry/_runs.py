"""What a registered version stands for, read from its trial run: the logged model, the windows, the statistics,
the data hash and code version; and the choice of a work spec's best trial."""

from __future__ import annotations

import json
from dataclasses import dataclass

from atlas.config import mask_url
from atlas.exceptions import ConfigError
from atlas.runs import Tag

#: Metrics where lower is better when choosing a best trial; every other metric (accuracy, lift, Sharpe, IC, ...)
#: is higher-is-better.
LOWER_IS_BETTER = ("loss", "mse", "rmse", "mae", "p_value", "drawdown", "seconds")
#: Statistics quoted in a version's description, when the run has them.
QUOTED = ("test_accuracy", "test_majority_accuracy", "test_accuracy_lift", "test_log_loss", "test_p_value",
          "test_sharpe", "test_r2", "test_ic", "test_directional_accuracy", "best_val_loss")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` is better: losses, errors, p-values, drawdowns and times."""
    return any(metric == word or metric.endswith(f"_{word}") for word in LOWER_IS_BETTER)


@dataclass(frozen=True)
class Candidate:
    """A trial run with a logged model, as a version describes it."""

    run_id: str
    model_id: str
    tags: dict
    metrics: dict
    train: tuple[str, str] | None
    test: tuple[str, str] | None
    featureset: str | None

    def version_tags(self) -> dict[str, str]:
        out = {Tag.RUN_ID: self.run_id}
        for tag in (Tag.WORK_SPEC, Tag.EXECUTION, Tag.WORK_UNIT, Tag.MODEL_SPEC, Tag.DATA_HASH, Tag.CODE_VERSION):
            if self.tags.get(tag):
                out[tag] = self.tags[tag]
        if self.featureset:
            out[Tag.FEATURESET] = self.featureset
        if self.train:
            out[Tag.TRAIN_WINDOW] = json.dumps(list(self.train))
        if self.test:
            out[Tag.TEST_WINDOW] = json.dumps(list(self.test))
        return out

    def description(self) -> str:
        stats = ", ".join(f"{k.removeprefix('test_')} {self.metrics[k]:.4g}" for k in QUOTED if k in self.metrics)
        parts = [f"Trial run {self.run_id} (model {self.model_id}) of work spec {self.tags.get(Tag.WORK_SPEC)}, "
                 f"execution {self.tags.get(Tag.EXECUTION)}, work unit {self.tags.get(Tag.WORK_UNIT)}, model spec "
                 f"{self.tags.get(Tag.MODEL_SPEC)}.",
                 f"Featureset: {self.featureset or 'unknown'}.",
                 f"Train window: {' .. '.join(self.train) if self.train else 'unknown'}; test window: "
                 f"{' .. '.join(self.test) if self.test else 'unknown'}.",
                 f"Test statistics: {stats or 'none recorded'}.",
                 f"Data hash {self.tags.get(Tag.DATA_HASH)}; code version {self.tags.get(Tag.CODE_VERSION)}."]
        return "\n".join(parts)


def read_candidate(client, run_id: str, uri: str) -> Candidate:
    """The trial run ``run_id`` and its logged model.

    Raises:
        ConfigError: no such run, or it has no logged model.
    """
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        msg = (f"no run {run_id!r} in the tracking store {mask_url(uri)}; give a trial's run id (atlas harvest SPEC "
               f"lists them), a work spec or a spec file")
        raise ConfigError(msg) from None
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        level = run.data.tags.get(Tag.LEVEL, "not an Atlas run")
        msg = (f"run {run_id} ({level}) has no logged model: only trials log one, and log_models=k keeps the k best "
               f"per model spec; choose a trial with a model (atlas harvest SPEC: the model_id column)")
        raise ConfigError(msg)
    train = test = None
    featureset = run.data.tags.get(Tag.FEATURESET)
    parent = run.data.tags.get(Tag.PARENT)
    if parent:
        try:
            unit = client.get_run(parent)
        except MlflowException:
            unit = None
        if unit is not None:
            params = unit.data.params
            train, test = _window(params.get("train")), _window(params.get("test"))
            featureset = featureset or unit.data.tags.get(Tag.FEATURESET) or params.get("featureset")
    return Candidate(run_id, outputs[-1].model_id, dict(run.data.tags), dict(run.data.metrics), train, test,
                     featureset)


def _window(text: str | None) -> tuple[str, str] | None:
    try:
        start, end = json.loads(text)
    except (TypeError, ValueError):
        return None
    return str(start), str(end)


def best_run(uri: str, work_spec: str, *, metric: str = "best_val_loss", work_unit: str | None = None):
    """The latest execution's best finished trial with a logged model: lowest ``metric`` for a loss, error or
    p-value (:func:`lower_is_better`), highest otherwise; one of ``work_unit`` only when given.

    Returns:
        Its row of the Results frame (``run_id``, ``model_id``, the metric, ...).

    Raises:
        ConfigError: no such work spec, work unit or metric, or no finished trial with a logged model.
    """
    from atlas.runs import harvest

    results = harvest(work_spec, tracking_uri=uri, execution="latest")
    if work_unit is not None:
        units = sorted(set(results["work_unit"].dropna()))
        results = results[results["work_unit"] == work_unit]
        if results.empty:
            msg = f"work spec {work_spec!r} has no work unit {work_unit!r} in its latest execution; it has {units}"
            raise ConfigError(msg)
    if metric not in results.columns:
        known = sorted(c for c in results.columns if c.startswith(("test_", "best_", "train_")))
        msg = f"the trials of {work_spec!r} have no metric {metric!r}; choose one of {known}"
        raise ConfigError(msg)
    ready = results[(results["state"] == "finished") & results["model_id"].notna() & results[metric].notna()]
    if ready.empty:
        msg = (f"the latest execution of {work_spec!r} has no finished trial with a logged model and {metric}; "
               f"train it again, or give a run id")
        raise ConfigError(msg)
    ordered = ready.sort_values(metric, ascending=lower_is_better(metric), kind="stable")
    return ordered.iloc[0]
