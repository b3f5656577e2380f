"""Reading a sweep back: Atlas's ``harvest()`` against the ``mlflow.search_runs`` call a user would write.

The script builds, in a temporary ATLAS_HOME, an MLflow SQLite store holding one sweep of N trial runs shaped
as a real sweep writes them, through the same ``RunWriter`` calls: one execution run, 10 work unit runs under it
(two model specs each), and N trial runs under those, each with its start tags, 8 parameters, 14 final
metrics, four per-epoch series (loss, val_loss, accuracy, val_accuracy; 10 epochs, fewer when stopped early),
its end tags (host, pid, node, attempts, state), its dataset input and its end status. Most trials finish; a
seeded few are pruned or fail. No models are logged.

Then, in the same process, on the same store, it times:

* atlas:    ``harvest(name, settings=...)``: the newest execution's trials as a Results frame (pages of 1000).
* baseline: ``mlflow.search_runs(experiment_names=[name], filter_string="tags.`atlas.level` = 'trial'",
  max_results=100000)``: MLflow's own pandas frame of the same runs, a column per tag, parameter and metric.

It checks that both return N rows with the same run ids. Each side is called once first (cold caches and lazy
imports: printed apart as "first call"), then ``--repeat`` times in alternation; the median is reported.

How to read the figures: a ratio atlas / baseline near 1 means the Results frame (typed columns, states,
sorted rows) costs no more than MLflow's raw frame; above 1 is what those extras cost. "rows/s" is N over the
median seconds. Building the store is not compared with anything (its commits skip fsync to keep it
short): it is printed so that a slow build is not mistaken for a slow harvest.

Usage: python benchmarks/harvest.py [--runs 1000] [--repeat 5] [--seed 1] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

NAME = "harvest_bench"
UNITS = 10
MODEL_SPECS = (("dnn", "dnn_classifier"), ("lstm", "lstm_classifier"))
EPOCHS = 10
VERSION = "0123456789abcdef0123456789abcdef01234567"
STORE = "sqlite:///market.db"


@contextmanager
def without_fsync():
    """New SQLite connections skip fsync on commit (``PRAGMA synchronous = OFF``) while the store is built.

    The file written is the same, only not crash-safe: a third of the build was waiting for the disk. The
    setting concerns writes only, so the connections it leaves in MLflow's pool read as any other.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def relax(connection, _record) -> None:
        if type(connection).__module__.startswith("sqlite3"):
            connection.execute("PRAGMA synchronous = OFF")

    event.listen(Engine, "connect", relax)
    try:
        yield
    finally:
        event.remove(Engine, "connect", relax)


def fake_data(unit: str, seed: int) -> tuple[SimpleNamespace, SimpleNamespace]:
    """What ``RunWriter.log_dataset`` reads of a unit's Dataset and FeatureLabelSet, without building them."""
    digest = hashlib.sha256(f"{unit}.{seed}".encode()).hexdigest()
    dataset = SimpleNamespace(index_train=pd.date_range("2024-01-01", periods=2, freq="1min"),
                              index_test=pd.date_range("2024-01-02", periods=2, freq="1min"),
                              feature_names=["bitstamp.ret.1", "itbit.ret.1"], content_hash=digest)
    featureset = SimpleNamespace(key=f"{unit}-{digest[:12]}", title=f"{unit}_next_minute")
    return dataset, featureset


def build_store(settings, runs: int, seed: int) -> list[str]:
    """One sweep of ``runs`` trial runs in ``settings``' MLflow store; returns the trial run ids."""
    from atlas.runs import RunWriter, Tag

    CODE_VERSION, DATA_HASH, EXECUTION, LEVEL, WORK_SPEC, WORK_UNIT = (
        Tag.CODE_VERSION, Tag.DATA_HASH, Tag.EXECUTION, Tag.LEVEL, Tag.WORK_SPEC, Tag.WORK_UNIT)
    rng = np.random.default_rng(seed)
    tracker = RunWriter(settings.tracking.mlflow_uri, settings.tracking.artifact_root)
    experiment_id = tracker.experiment(NAME)
    execution = tracker.start(experiment_id, NAME,
                              {LEVEL: "execution", WORK_SPEC: NAME, CODE_VERSION: VERSION})
    tracker.log(execution, params={"work_spec.n_trials": str(runs), "work_spec.seed": str(seed)})
    cells = [(u, s) for u in range(UNITS) for s in range(len(MODEL_SPECS))]  # trial i goes to cells[i % 20]
    trial_ids = []
    for u in range(UNITS):
        unit = f"unit{u:02d}"
        dataset, featureset = fake_data(unit, seed)
        tags = {LEVEL: "work_unit", WORK_SPEC: NAME, EXECUTION: execution, WORK_UNIT: unit,
                DATA_HASH: dataset.content_hash, CODE_VERSION: VERSION, Tag.FEATURESET: featureset.key}
        unit_run = tracker.start(experiment_id, unit, tags, parent=execution)
        tracker.log(unit_run, params={"featureset": featureset.key, "scaling": "standard"})
        tracker.log_dataset(unit_run, dataset, featureset, STORE)
        mine = [i for i in range(runs) if cells[i % len(cells)][0] == u]
        for i in mine:
            trial = SimpleNamespace(experiment_id=experiment_id, execution=execution, parent=unit_run,
                                    unit=unit, spec=MODEL_SPECS[cells[i % len(cells)][1]],
                                    number=i // len(cells), dataset=dataset, featureset=featureset)
            trial_ids.append(write_trial(tracker, trial, rng))
        tracker.log(unit_run, metrics={"trials_done": len(mine), "trials_failed": 0})
        tracker.end(unit_run, "finished")
    tracker.log(execution, metrics={"trials_done": runs, "trials_failed": 0})
    tracker.end(execution, "finished")
    return trial_ids


def write_trial(tracker, trial: SimpleNamespace, rng: np.random.Generator) -> str:
    """One trial run, as ``_Sweep._submit`` starts it and ``_Sweep._record`` records and ends it."""
    from atlas.runs import Tag, flat_params

    CODE_VERSION, DATA_HASH, EXECUTION, LEVEL, MODEL_SPEC, STATE, TRIAL, WORK_SPEC, WORK_UNIT = (
        Tag.CODE_VERSION, Tag.DATA_HASH, Tag.EXECUTION, Tag.LEVEL, Tag.MODEL_SPEC, Tag.STATE, Tag.TRIAL,
        Tag.WORK_SPEC, Tag.WORK_UNIT)

    spec, kind = trial.spec
    tags = {LEVEL: "trial", WORK_SPEC: NAME, EXECUTION: trial.execution, WORK_UNIT: trial.unit,
            MODEL_SPEC: spec, TRIAL: str(trial.number), CODE_VERSION: VERSION, Tag.MODEL: kind,
            DATA_HASH: trial.dataset.content_hash}
    name = f"{trial.unit}.{spec}.{trial.number}"
    run_id = tracker.start(trial.experiment_id, name, tags, parent=trial.parent)
    state = str(rng.choice(["finished", "pruned", "failed"], p=[0.85, 0.12, 0.03]))
    epochs = EPOCHS if state == "finished" else int(rng.integers(1, EPOCHS))
    loss = 0.7 * np.exp(-rng.uniform(0.01, 0.1, epochs).cumsum())
    val_loss = loss + rng.uniform(0, 0.05, epochs)
    series = {"loss": loss, "val_loss": val_loss, "accuracy": 1 - loss, "val_accuracy": 1 - val_loss}
    scores = {f"{part}_{name}": float(rng.uniform(0.4, 0.7)) for part in ("test", "train")
              for name in ("accuracy", "balanced_accuracy", "log_loss", "majority_accuracy", "accuracy_lift")}
    metrics = {**scores, "fit_seconds": float(rng.uniform(1, 30)), "trial_seconds": float(rng.uniform(2, 35)),
               "epochs": epochs, "best_val_loss": float(val_loss.min())}
    params = flat_params({"model": kind, "hidden_units": [int(rng.choice([8, 16, 32]))],
                          "learning_rate": float(rng.choice([1e-3, 3e-3, 1e-2])),
                          "dropout": round(float(rng.uniform(0, 0.5)), 3),
                          "fit": {"epochs": 20, "batch_size": 256, "patience": 3}, "seed": 1 + trial.number})
    ended = {Tag.HOST: "bench-host", Tag.PID: str(4000 + trial.number % 2), Tag.NODE: "10.0.0.1",
             Tag.ATTEMPTS: "1"}
    if state == "pruned":
        ended[Tag.STOPPED] = "pruned"
    if state == "failed":
        ended[Tag.ERROR] = "ValueError: the loss is NaN"
    ended[STATE] = state
    tracker.log(run_id, params=params, metrics=metrics, tags=ended,
                series={name: [float(v) for v in values] for name, values in series.items()})
    tracker.log_dataset(run_id, trial.dataset, trial.featureset, STORE)
    tracker.end(run_id, state, tagged=True)
    return run_id


def timed(function):
    began = time.perf_counter()
    result = function()
    return result, time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary ATLAS_HOME and its store")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="atlas-bench-harvest-"))
    try:
        return measure(args, home)
    finally:
        if args.keep:
            print(f"store kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path) -> int:
    """Builds the store under ``home``, checks both sides' rows, prints the figures; 1 when they disagree."""
    import mlflow

    from atlas.config import Settings
    from atlas.infra import harvest

    settings = Settings.from_env({"ATLAS_HOME": str(home)})
    with without_fsync():
        run_ids, build_s = timed(lambda: build_store(settings, args.runs, args.seed))
    print(f"harvest: one sweep of {args.runs:,} trial runs ({UNITS} work units x {len(MODEL_SPECS)} model "
          f"specs) in MLflow {mlflow.__version__} on SQLite; store built in {build_s:.1f} s")

    mlflow.set_tracking_uri(settings.tracking.mlflow_uri)
    sides = {
        "atlas": lambda: harvest(NAME, settings=settings),
        "baseline": lambda: mlflow.search_runs(experiment_names=[NAME], max_results=100000,
                                               filter_string="tags.`atlas.level` = 'trial'"),
    }
    first = {side: timed(call) for side, call in sides.items()}
    for side, (frame, _) in first.items():
        if len(frame) != args.runs or sorted(frame["run_id"]) != sorted(run_ids):
            print(f"{side} returned {len(frame):,} rows, not the {args.runs:,} trial runs written",
                  file=sys.stderr)
            return 1
    times = {side: [] for side in sides}
    for _ in range(args.repeat):
        for side, call in sides.items():
            times[side].append(timed(call)[1])
    median = {side: statistics.median(values) for side, values in times.items()}
    print(f"rows {args.runs:,}; atlas {first['atlas'][0].shape[1]} columns, baseline "
          f"{first['baseline'][0].shape[1]} columns; same run ids")
    for side, label in (("atlas", "atlas harvest  "), ("baseline", "baseline mlflow")):
        print(f"{label}  {median[side]:6.2f} s  {args.runs / median[side]:7,.0f} rows/s   "
              f"(first call {first[side][1]:.2f} s)")
    print(f"ratio atlas / baseline: {median['atlas'] / median['baseline']:.2f}x (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
