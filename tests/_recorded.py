"""A sweep's record written without Ray or TensorFlow: an execution, its work units and trials, each trial with the
predictions, statistics and tags a real sweep writes (``RunWriter``, as the driver and its callbacks use it).

Tests of the digest and the report, and ``benchmarks/digest.py``, build their MLflow stores with it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from atlas.runs import PREDICTIONS_ARTIFACT, WORK_SPEC_ARTIFACT, Level, RunWriter, Tag, flat_params
from atlas.stats import check_predictions, headline_metrics, lift_differential, trial_significance


def predictions(rng: np.random.Generator, rows: int, *, edge: float = 0.0, start: str = "2024-03-01",
                validation: int = 200):
    """A binary classifier's predictions on ``rows`` one-minute test buckets (and a validation block before them):
    right ``0.5 + edge`` of the time, with probabilities that say so."""
    n = rows + validation
    buckets = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    forward = rng.normal(0.0, 1e-3, n)
    truth = (forward > 0).astype(int)
    right = rng.random(n) < 0.5 + edge
    predicted = np.where(right, truth, 1 - truth)
    confidence = np.clip(0.5 + np.abs(rng.normal(0.05 + edge, 0.05, n)), 0.5, 0.99)
    up = np.where(predicted == 1, confidence, 1 - confidence)
    frame = pd.DataFrame({"bucket": buckets, "part": ["validation"] * validation + ["test"] * rows,
                          "y_true": truth, "forward_return": forward, "y_pred": predicted,
                          "proba_down": 1 - up, "proba_up": up})
    return check_predictions(frame, class_names=("down", "up"), bucket_width="1min", horizon=1, baseline_class=1)


def record_sweep(settings, name: str, trials: int, *, rows: int = 2000, seed: int = 0, edge_trials: int = 0,
                 edge: float = 0.04, units: int = 2) -> dict:
    """One finished execution of ``trials`` trials over ``units`` work units; the first ``edge_trials`` trials of
    each unit predict with an edge. Returns the execution run id and the trial run ids."""
    rng = np.random.default_rng(seed)
    writer = RunWriter(settings.tracking.mlflow_uri, settings.tracking.artifact_root)
    experiment = writer.experiment(name)
    execution = writer.start(experiment, f"{name} recorded", {Tag.LEVEL: Level.EXECUTION, Tag.WORK_SPEC: name})
    writer.log(execution, params={"work_spec.search.strategy": "grid", "work_spec.n_trials": str(trials)})
    writer.log_text(execution, json.dumps({"name": name, "work_units": []}), WORK_SPEC_ARTIFACT)
    run_ids = []
    for u in range(units):
        unit = f"unit_{u}"
        unit_run = writer.start(experiment, unit, {Tag.LEVEL: Level.WORK_UNIT, Tag.WORK_SPEC: name,
                                                  Tag.EXECUTION: execution, Tag.WORK_UNIT: unit},
                                parent=execution)
        writer.log(unit_run, params={"train": json.dumps(["2024-02-01", "2024-02-28"]),
                                     "test": json.dumps(["2024-03-01", "2024-03-02"]),
                                     "data.train_samples": "40000", "data.test_samples": str(rows),
                                     "data.label": "log_returns(itbit_btc_usd, 1min, lookforward=1)"})
        for number in range(trials // units + (u < trials % units)):
            evidence = predictions(rng, rows, edge=edge if number < edge_trials else 0.0)
            learning_rate = float(rng.choice([1e-3, 3e-3, 1e-2]))
            run_name = f"learning_rate={learning_rate:g} | dnn #{number}"
            run_id = writer.start(experiment, run_name, {
                Tag.LEVEL: Level.TRIAL, Tag.WORK_SPEC: name, Tag.EXECUTION: execution, Tag.WORK_UNIT: unit,
                Tag.MODEL_SPEC: "dnn", Tag.TRIAL: str(number), Tag.MODEL: "dnn_classifier"}, parent=unit_run)
            scores = headline_metrics(evidence)
            significance = trial_significance(lift_differential(evidence), horizon=1, seed=number)
            scores |= {"p_value": significance.p_value, "lift": significance.lift,
                       "lift_ci_low": significance.ci_low, "lift_ci_high": significance.ci_high,
                       "accuracy_lift": significance.lift}
            metrics = {f"test_{k}": v for k, v in scores.items()} | {
                "best_val_loss": float(0.69 - 0.05 * (number < edge_trials) + rng.uniform(0, 0.02))}
            writer.log(run_id, params=flat_params({"model": "dnn_classifier", "learning_rate": learning_rate,
                                                   "digest": {"cost_bps": 1.0, "calendar": "crypto",
                                                              "interval": "1D"}}),
                       metrics=metrics, tags={Tag.STATE: "finished"})
            writer.log_bytes(run_id, evidence.to_bytes(), PREDICTIONS_ARTIFACT)
            writer.end(run_id, "finished", tagged=True)
            run_ids.append(run_id)
        writer.end(unit_run, "finished")
    writer.end(execution, "finished")
    return {"execution": execution, "trials": run_ids, "experiment": experiment}
