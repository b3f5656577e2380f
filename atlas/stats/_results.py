"""The analysis console: a sweep's Results frame (one row per trial, from ``atlas.runs.harvest``) with the digest
at hand: the best trials, a trial's stored predictions and its baseball card, the batch overview and the verdict
on the whole sweep.

Example (after ``atlas train experiments/quickstart.py``)::

    import atlas

    results = atlas.harvest("quickstart")
    results.best("test_accuracy", 3)          # the three most accurate trials on the test window
    results.card(results.best().run_id[0])     # a matplotlib figure, redrawn from the stored predictions
    results.overview()                          # one figure per work unit
    print(results.significance())               # "significant after 24 trials ..." or "not distinguishable ..."
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

from atlas.exceptions import ConfigError, MissingDataError
from atlas.stats._calendar import CRYPTO, Calendar
from atlas.stats._predictions import Predictions

#: The Results column a frame keeps its tracking store in (``DataFrame.attrs``).
URI_KEY = "atlas.tracking_uri"
_CALENDARS = {"crypto": (365.0, 24.0), "fx": (252.0, 24.0), "equity": (252.0, 6.5)}
_LOWER_IS_BETTER = ("best_val_loss", "loss", "log_loss", "rmse", "mae", "mse", "p_value", "max_drawdown")


class Results(pd.DataFrame):
    """A harvested sweep: the Results frame of ``atlas.runs.harvest`` (one row per trial: ids, state, ``param.*``
    and every final metric), with the digest as methods.

    Every pandas operation that returns a frame returns Results again, so ``results[results.state ==
    "finished"].overview()`` works. The tracking store the rows came from travels in ``attrs``; a frame that lost
    it (a ``pd.concat`` of two harvests) says so when it needs it.
    """

    _metadata = ["_predictions_cache"]

    @property
    def _constructor(self):
        return Results

    # the trials -------------------------------------------------------------------------------------------------

    def best(self, metric: str = "best_val_loss", n: int = 5, *, ascending: bool | None = None) -> Results:
        """The ``n`` finished trials best by ``metric`` (lowest first for losses, errors and p-values, highest
        first otherwise; ``ascending`` decides instead when given).

        Raises:
            ConfigError: the frame has no column ``metric`` (the message lists the metrics it has).
        """
        if metric not in self.columns:
            metrics = sorted(c for c in self.columns if c.startswith(("test_", "train_", "best_")))
            msg = f"the results have no metric {metric!r}; they have {metrics}"
            raise ConfigError(msg)
        if ascending is None:
            ascending = metric.removeprefix("test_").removeprefix("train_") in _LOWER_IS_BETTER
        finished = self[self["state"] == "finished"] if "state" in self.columns else self
        return finished.sort_values(metric, ascending=ascending, na_position="last").head(n)

    def predictions(self, run_id: str) -> Predictions:
        """The stored predictions (test window and validation block) of the trial run ``run_id``.

        Raises:
            MissingDataError: the run has none (a failed or pruned trial, or one recorded before Atlas kept
                predictions): the message names the run and why.
        """
        cache = self._cache()
        if run_id not in cache:
            from atlas.runs import PREDICTIONS_ARTIFACT, read_artifact

            rows = self[self["run_id"] == run_id] if "artifact_uri" in self.columns else None
            where = rows["artifact_uri"].iloc[0] if rows is not None and len(rows) else None
            cache[run_id] = Predictions.from_bytes(read_artifact(self.tracking_uri, run_id, PREDICTIONS_ARTIFACT,
                                                                 where))
        value = cache[run_id]
        return Predictions.from_bytes(value) if isinstance(value, bytes) else value

    def card(self, run_id: str, *, part: str = "test"):
        """The baseball card of the trial run ``run_id``, redrawn from its stored predictions (a matplotlib
        figure; ``figure.savefig("card.png")`` keeps it).

        Raises:
            MissingDataError: the run has no stored predictions.
        """
        from atlas.stats._figures import card

        row = self._row(run_id)
        return card(self.predictions(run_id).part(part), title=_title(row), calendar=self.calendar,
                    cost_bps=self.cost_bps, interval=self.interval)

    def overview(self, *, top: int = 40) -> list:
        """The batch overview: one figure per work unit (the trials with the lowest validation loss first; past
        ``top`` rows, a footer counts the rest)."""
        from atlas.stats._figures import overview

        table = self.overview_table()
        figures = []
        for _, rows in table.groupby("work_unit", sort=True):
            classes = self._class_names(rows)
            figures += overview(rows, class_names=classes, title=self._spec_name(), top=top)
        return figures

    def overview_table(self) -> pd.DataFrame:
        """The overview's numbers: one row per trial with ``test_*`` metrics under their own names, the
        validation loss, and ``degenerate`` (one class predicted, or every probability the same)."""
        frame = pd.DataFrame(self)
        if frame.empty:
            msg = "the results hold no trial: nothing to draw an overview of"
            raise MissingDataError(msg)
        table = frame[[c for c in ("work_unit", "model_spec", "trial", "run_id", "run_name", "state",
                                   "best_val_loss") if c in frame.columns]].copy()
        for column in frame.columns:
            if column.startswith("test_"):
                table[column.removeprefix("test_")] = frame[column]
        table["degenerate"] = table.get("degenerate", pd.Series(0.0, index=table.index)).fillna(0.0) > 0.5
        if "replicate" in frame.columns and frame["replicate"].nunique() > 1:
            return _replicates(table, frame)
        return table.reset_index(drop=True)

    def significance(self, *, part: str = "test", alpha: float = 0.05, n_boot: int = 1000, seed: int = 0):
        """The verdict on the whole sweep: is its best trial better than luck, after all the trials it took?

        Trials sharing a label (bucket width and horizon) are judged together (Romano-Wolf across them, and the
        deflated Sharpe ratio of the best); when the sweep holds several labels, each group is judged and the
        groups' p-values are Bonferroni-corrected across them.

        Returns:
            An ``atlas.stats.SweepVerdict`` (``str(verdict)`` says it in words; ``verdict.table`` has a row per
            trial); for several labels, the verdict of the group holding the best trial, its message naming the
            groups.

        Raises:
            MissingDataError: no finished trial has stored predictions.
        """
        import dataclasses

        trials = self.trial_predictions()
        rows = self.set_index("run_id")
        names = {run_id: (f"{rows.at[run_id, 'work_unit']}/{rows.at[run_id, 'run_name']}"
                          if "run_name" in rows.columns else run_id) for run_id in trials}
        if len(set(names.values())) < len(names):  # names that repeat (two executions): tell them apart by run
            names = {run_id: f"{name} ({run_id[:8]})" for run_id, name in names.items()}
        verdict = execution_verdict({names[k]: v for k, v in trials.items()}, part=part, cost_bps=self.cost_bps,
                                    calendar=self.calendar, alpha=alpha, n_boot=n_boot, seed=seed)
        back = {name: run_id for run_id, name in names.items()}
        table = verdict.table.copy()
        table.index.name = "trial"
        table.insert(0, "run_id", [back.get(name) for name in table.index])
        return dataclasses.replace(verdict, table=table)

    def trial_predictions(self) -> dict[str, Predictions]:
        """Every finished trial's predictions, by run id (a trial without them is left out, and said so when
        none is left)."""
        finished = self[self["state"] == "finished"] if "state" in self.columns else self
        trials, missing = {}, []
        for run_id in finished["run_id"]:
            try:
                trials[run_id] = self.predictions(run_id)
            except MissingDataError as error:
                missing.append(str(error))
        if not trials:
            msg = (f"no finished trial of these results has stored predictions; {len(missing)} without: "
                   f"{missing[0] if missing else 'there is no finished trial'}")
            raise MissingDataError(msg)
        return trials

    # what the frame knows -------------------------------------------------------------------------------------

    @property
    def tracking_uri(self) -> str:
        uri = self.attrs.get(URI_KEY)
        if not uri:
            msg = ("these results do not say which MLflow store they came from (a frame combined from several "
                   "harvests?); harvest them again with atlas.harvest(...)")
            raise ConfigError(msg)
        return uri

    @property
    def cost_bps(self) -> float:
        return float(self._param("param.digest.cost_bps", 1.0))

    @property
    def interval(self) -> str:
        return str(self._param("param.digest.interval", "1D"))

    @property
    def calendar(self) -> Calendar:
        value = self._param("param.digest.calendar", "crypto")
        if isinstance(value, str) and value.startswith("{"):
            import json

            return Calendar(**json.loads(value))
        days, hours = _CALENDARS.get(str(value), (CRYPTO.days_per_year, CRYPTO.hours_per_day))
        return Calendar(days_per_year=days, hours_per_day=hours)

    def _param(self, column: str, default):
        if column not in self.columns:
            return default
        values = self[column].dropna()
        return values.iloc[0] if len(values) else default

    def _cache(self) -> dict:
        cache = getattr(self, "_predictions_cache", None)
        if cache is None:
            cache = {}
            object.__setattr__(self, "_predictions_cache", cache)
        return cache

    def use_predictions(self, predictions: Mapping[str, bytes | Predictions]) -> Results:
        """Takes predictions already in memory (the sweep's driver has them), so they are not downloaded."""
        self._cache().update(predictions)
        return self

    def _row(self, run_id: str) -> pd.Series:
        rows = self[self["run_id"] == run_id]
        if rows.empty:
            msg = f"run {run_id!r} is not a trial of these results"
            raise ConfigError(msg)
        return rows.iloc[0]

    def _spec_name(self) -> str:
        return str(self._param("work_spec", "sweep"))

    def _class_names(self, rows: pd.DataFrame) -> tuple[str, ...] | None:
        """The classes of a work unit's trials, from one trial's stored predictions (None for regressors)."""
        for run_id in rows.loc[rows["state"] == "finished", "run_id"] if "state" in rows else rows["run_id"]:
            try:
                return self.predictions(run_id).class_names
            except MissingDataError:
                continue
        pv = sorted(c.removeprefix("pv_") for c in rows.columns if c.startswith("pv_"))
        return tuple(pv) or None


def _replicates(table: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point of a sweep with replicates: the mean of its seeds' metrics, and a label with how
    many seeds and the spread (standard deviation) of their accuracy (or RMSE)."""
    varying = [c for c in frame.columns if c.startswith("param.") and c not in ("param.seed", "param.replicate")
               and frame[c].nunique(dropna=False) > 1]
    keys = ["work_unit", "model_spec", *varying]
    table = table.join(frame[varying]) if varying else table
    numeric = [c for c in table.columns if c not in keys and pd.api.types.is_numeric_dtype(table[c])
               and c not in ("trial", "degenerate")]
    rows = []
    for point, group in table.groupby(keys, dropna=False, sort=False):
        row = group[numeric].mean(numeric_only=True).to_dict()
        spread_of = "accuracy" if "accuracy" in group else "rmse"
        spread = group[spread_of].std(ddof=1) if spread_of in group and len(group) > 1 else math.nan
        values = dict(zip(keys, point if isinstance(point, tuple) else (point,), strict=True))
        described = " ".join(f"{k.removeprefix('param.')}={values[k]}" for k in varying)
        row["work_unit"], row["model_spec"] = values["work_unit"], values["model_spec"]
        row["trial"], row["run_id"] = int(group["trial"].min()), group["run_id"].iloc[0]
        row["degenerate"] = bool(group["degenerate"].any())
        row["label"] = (f"{values['model_spec']} {described} · {len(group)} seeds · {spread_of} sd "
                        f"{spread:.3f}").replace("  ", " ")
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def _title(row: pd.Series) -> str:
    replicate = row.get("replicate", 0)
    replicate = f" (replicate {int(replicate)})" if replicate and replicate == replicate else ""
    return f"{row['model_spec']} in {row['work_unit']}, trial {int(row['trial'])}{replicate}; run {row['run_id']}"


def harvest(work_spec: str, *, tracking_uri: str, execution: str = "latest") -> Results:
    """``atlas.runs.harvest`` as :class:`Results`: the trials of ``work_spec`` with the digest as methods."""
    from atlas.runs import harvest as read

    frame = read(work_spec, tracking_uri=tracking_uri, execution=execution)
    results = Results(frame)
    results.attrs[URI_KEY] = tracking_uri
    return results


def execution_verdict(trials: Mapping[str, Predictions], *, part: str = "test", cost_bps: float = 1.0,
                      calendar: Calendar = CRYPTO, alpha: float = 0.05, n_boot: int = 1000, seed: int = 0,
                      verdict: Callable | None = None):
    """The verdict on every trial of an execution, grouped by label (bucket width and horizon) when needed.

    With one label, :func:`~atlas.stats.sweep_verdict`. With several, each group is judged at level
    ``alpha / groups`` (Bonferroni across the groups), and the verdict of the group whose best trial has the
    smallest adjusted p-value is returned, its message naming the groups and the total number of trials.
    """
    import dataclasses

    from atlas.stats._verdict import sweep_verdict

    judge = verdict or sweep_verdict
    groups: dict[tuple, dict[str, Predictions]] = {}
    for name, predictions in trials.items():
        groups.setdefault((predictions.bucket_width, predictions.horizon), {})[name] = predictions
    if len(groups) == 1:
        return judge(trials, part=part, cost_bps=cost_bps, calendar=calendar, alpha=alpha, n_boot=n_boot,
                     seed=seed)
    level = alpha / len(groups)
    verdicts = {shape: judge(group, part=part, cost_bps=cost_bps, calendar=calendar, alpha=level,
                             n_boot=n_boot, seed=seed) for shape, group in sorted(groups.items())}
    shape, best = min(verdicts.items(), key=lambda item: (item[1].adjusted_p_value
                                                           if math.isfinite(item[1].adjusted_p_value) else 2.0))
    described = "; ".join(f"{w} x {h}: {v.trials} trials" for (w, h), v in verdicts.items())
    message = (f"{best.message} (over {len(trials)} trials in {len(groups)} labels, {described}; each label "
               f"judged at alpha {level:.4f})")
    table = pd.concat([v.table for v in verdicts.values()])
    return dataclasses.replace(best, message=message, table=table, trials=len(trials), alpha=alpha)
