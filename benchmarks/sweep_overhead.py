"""What a sweep costs beyond training: Atlas's ``train()`` against a hand-built Ray Tune sweep.

Both sides run the same N small Keras DNN classifiers (a grid of N learning rates, E epochs each, no early
stopping) on the same data: itbit's next one-minute return, cut by sign, from the last one-minute returns of
bitstamp, itbit and coinbase, on a few days of the simulated demo market built in a temporary ATLAS_HOME.
Each trial takes one CPU and one TensorFlow thread; two run at a time, on a local Ray that each side starts
and stops.

* atlas: ``atlas.infra.train`` on a WorkSpec with a grid search, tracking to a fresh MLflow store.
* peer:  what a researcher writes by hand: a Ray Tune function trainable given the dataset through the object
  store (``tune.with_parameters``), Optuna's grid sampler behind ``OptunaSearch``, ``MLflowLoggerCallback``
  into a fresh SQLite MLflow store, per-epoch reports, validation on the latest 20% of the training samples.

How to read the figures: "train s" is the sum over trials of the seconds spent inside each model's fit
(TensorFlow imported and threads set beforehand; the peer's per-epoch ``tune.report`` calls, which block
until the driver takes the result, left out and printed apart); "wall s" is the whole sweep, from starting Ray
to its last result. Efficiency = train s / (wall s x 2 slots): the share of the two cores spent training; the
rest is process start-up, imports, scheduling, data transfer and tracking. A ratio peer / atlas above 1 means
Atlas finished the same sweep sooner. Small models on little data make overhead dominate: the point here.

Usage: python benchmarks/sweep_overhead.py [--trials 24] [--epochs 20] [--quick] [--side peer|atlas|both]
                                          [--days 4] [--keep]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads, here or in a Ray worker

SLOTS = 2  # two cores, one CPU and one thread per trial
SEED = 1
EXCHANGES = ("bitstamp", "itbit", "coinbase")
TRAIN = ("2024-01-01 01:00", "2024-01-03 12:00")
TEST = ("2024-01-03 12:10", "2024-01-04 23:00")


def learning_rates(n: int) -> list[float]:
    """N distinct learning rates, log-spaced from 1e-4 to 3e-2."""
    rates = sorted({float(f"{v:.3g}") for v in np.geomspace(1e-4, 3e-2, n)})
    if len(rates) != n:
        msg = f"--trials {n} gives only {len(rates)} distinct learning rates (3 digits); use fewer"
        raise SystemExit(msg)
    return rates


def simulate(home: Path, days: float) -> str:
    """The demo's first steps (simulate, one-minute metrics) over `days`; returns the store URL."""
    from atlas.data import MarketSimulator, MarketStore, MetricPipeline, SimulatorConfig

    url = f"sqlite:///{home / 'market.db'}"
    with MarketStore(url) as store:
        MarketSimulator(SimulatorConfig(days=days, exchanges=",".join(EXCHANGES), seed=7, signal=0.3)
                        ).simulate_into(store)
        MetricPipeline(store, bucket="1min").run()
    return url


def work_unit(rates: list[float], epochs: int):
    """The quickstart's follower("itbit") with one DNN model spec: a grid of `rates`, no window."""
    from atlas.data import FeatureLabelSet, LogReturns
    from atlas.data.dataset import ClassLabels
    from atlas.infra import ModelSpec, WorkUnit

    featureset = FeatureLabelSet(
        features=[LogReturns().exchange(e).one_min().lookback(1) for e in EXCHANGES],
        labels=[LogReturns().exchange("itbit").one_min().lookforward(1)],
        title="itbit_next_minute",
    )
    spec = ModelSpec("dnn", "dnn_classifier", {"learning_rate": rates},
                     fit={"epochs": epochs, "patience": None})
    return WorkUnit("itbit_next_minute", featureset, TRAIN, TEST, [spec], classes=ClassLabels("sign"))


# --- atlas -------------------------------------------------------------------------------------------------

def run_atlas(unit, home: Path, store_url: str) -> dict:
    from atlas.config import Settings
    from atlas.infra import Resources, Search, WorkSpec, train

    spec = WorkSpec("bench", [unit], search=Search("grid"), resources=Resources(cpu=1), max_concurrent=SLOTS,
                    seed=SEED, log_models=0)
    settings = Settings.from_env({"ATLAS_HOME": str(home), "ATLAS_STORE_URL": store_url})
    began = time.perf_counter()
    report = train(spec, settings=settings, progress=False)
    wall = time.perf_counter() - began
    if report.slots != SLOTS:
        print(f"note: atlas ran {report.slots} slots; efficiency below still divides by {SLOTS}")
    return {"trials": sum(r.state == "finished" for r in report.results),
            "failed": sum(r.state == "failed" for r in report.results), "wall": wall,
            "train": sum(r.fit_seconds for r in report.results), "reported_wall": report.wall_seconds}


# --- peer --------------------------------------------------------------------------------------------------

def peer_trial(config: dict, data, rates: list[float], epochs: int, horizon: int) -> None:
    """One Ray Tune trial: build the model, fit it on the older 80%, report each epoch and the fit time."""
    from ray import tune

    from atlas.models import DataShape, FitOptions, configure, make_model

    seed = SEED + rates.index(config["learning_rate"])  # as Atlas: the spec's seed plus the trial number
    configure(seed, threads=1)  # imports TensorFlow and sets its threads outside the timed fit
    x, y = data.inputs("train"), data.y_train
    split = len(y) - round(0.2 * len(y))
    fit_x, fit_y, val_x, val_y = x[:split - horizon], y[:split - horizon], x[split:], y[split:]  # purged
    model = make_model("dnn_classifier", {"learning_rate": config["learning_rate"]},
                       DataShape(n_features=data.n_features, n_classes=data.n_classes))
    reporting = [0.0]

    def report_epoch(epoch: int, metrics) -> None:
        began = time.perf_counter()
        tune.report({**{k: float(v) for k, v in metrics.items()}, "epoch": epoch})
        reporting[0] += time.perf_counter() - began

    began = time.perf_counter()
    history = model.fit(fit_x, fit_y, validation=(val_x, val_y), callbacks=[report_epoch],
                        options=FitOptions(epochs=epochs, patience=None, threads=1, seed=seed))
    fit_seconds = time.perf_counter() - began - reporting[0]
    test_accuracy = float(np.mean(model.predict(data.inputs("test")) == data.y_test))
    tune.report({"val_loss": history.metrics["val_loss"][-1], "test_accuracy": test_accuracy,
                 "fit_seconds": fit_seconds, "report_seconds": reporting[0]})


def run_peer(data, rates: list[float], epochs: int, horizon: int, home: Path) -> dict:
    import optuna
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # GridSampler stops its study once the grid is used up and OptunaSearch warns: expected, not a fault
    logging.getLogger("ray.tune.search.optuna.optuna_search").setLevel(logging.ERROR)
    space = {"learning_rate": optuna.distributions.CategoricalDistribution(rates)}
    search = OptunaSearch(space, metric="val_loss", mode="min",
                          sampler=optuna.samplers.GridSampler({"learning_rate": rates}, seed=SEED))
    trainable = tune.with_resources(
        tune.with_parameters(peer_trial, data=data, rates=rates, epochs=epochs, horizon=horizon), {"cpu": 1})
    began = time.perf_counter()
    ray.init(num_cpus=SLOTS, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=search, num_samples=len(rates),
                                        max_concurrent_trials=SLOTS),
            run_config=tune.RunConfig(
                name="peer", storage_path=str(home / "ray_results"), verbose=0,
                callbacks=[MLflowLoggerCallback(tracking_uri=f"sqlite:///{home / 'peer.db'}",
                                                experiment_name="peer")]))
        results = tuner.fit()
        wall = time.perf_counter() - began
    finally:
        ray.shutdown()
    done = [r for r in results if r.error is None and "fit_seconds" in r.metrics]
    for r in results:
        if r.error is not None:
            print(f"peer trial failed: {r.error}")
    lrs = sorted(r.config["learning_rate"] for r in done)
    if lrs != sorted(rates):
        print(f"note: the peer ran learning rates {lrs}, not the grid {rates}")
    return {"trials": len(done), "failed": len(results) - len(done), "wall": wall,
            "train": sum(r.metrics["fit_seconds"] for r in done),
            "report": sum(r.metrics["report_seconds"] for r in done)}


# --- main --------------------------------------------------------------------------------------------------

def sweep(args, trials: int, epochs: int, home: Path) -> dict:
    """The data, then each side asked for (Atlas first); the figures by side."""
    from atlas.data import MarketStore

    began = time.perf_counter()
    store_url = simulate(home, args.days)
    rates = learning_rates(trials)
    unit = work_unit(rates, epochs)
    with MarketStore(store_url) as store:  # for the peer; it also warms the feature cache Atlas reads
        data = unit.featureset.dataset(unit.train, unit.test, store=store, classes=unit.classes)
    print(f"{trials} DNN trials x {epochs} epochs, {SLOTS} slots; {args.days:g} simulated days, "
          f"{len(data.y_train):,} training and {len(data.y_test):,} test samples "
          f"(data ready in {time.perf_counter() - began:.0f} s)")

    figures = {}
    if args.side in ("atlas", "both"):
        figures["atlas"] = run_atlas(unit, home, store_url)
    if args.side in ("peer", "both"):
        figures["peer"] = run_peer(data, rates, epochs, unit.featureset.horizon, home)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--days", type=float, default=4.0, help="days of simulated market")
    parser.add_argument("--quick", action="store_true", help="a tiny run: 4 trials of 2 epochs")
    parser.add_argument("--side", choices=("peer", "atlas", "both"), default="both")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home (store, MLflow, Ray)")
    args = parser.parse_args(argv)
    trials, epochs = (4, 2) if args.quick else (args.trials, args.epochs)
    if trials < 1 or epochs < 1:
        parser.error(f"--trials and --epochs must be at least 1, got --trials {trials} --epochs {epochs}")
    home = Path(tempfile.mkdtemp(prefix="atlas-bench-sweep-"))
    os.environ["ATLAS_HOME"] = str(home)  # the feature cache lives under it
    try:
        figures = sweep(args, trials, epochs, home)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)  # the store alone is ~170 MB
        else:
            print(f"kept {home}")

    print(f"{'side':<6} {'trials':>6} {'failed':>6} {'wall s':>8} {'train s':>8} {'efficiency':>10}")
    for side, f in figures.items():
        efficiency = f["train"] / (f["wall"] * SLOTS)
        print(f"{side:<6} {f['trials']:>6} {f['failed']:>6} {f['wall']:>8.1f} {f['train']:>8.1f} "
              f"{efficiency:>10.1%}")
    if "atlas" in figures:
        print(f"atlas's own wall_seconds: {figures['atlas']['reported_wall']:.1f} s")
    if "peer" in figures:
        print(f"peer time blocked in tune.report in fits (not in train s): {figures['peer']['report']:.1f} s")
    if len(figures) == 2:
        print(f"wall ratio peer / atlas: {figures['peer']['wall'] / figures['atlas']['wall']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
