"""Serving latency: Atlas's model runner against the same model behind ``mlflow models serve``, in one run.

A quickstart-like model (the three exchanges' last one-minute returns, a dense network of 32 and 16 units,
down/up) is trained on a simulated market, logged and registered. Then:

* **per bucket, live path**: the runner serves N buckets with features computed bucket by bucket from its rolling
  history (as a live feed does), pinned to one core; the time of each step (features, predict, publish into a
  real redis-server) is measured per bucket: p50 and p99;
* **the HTTP peer**: the same registered model behind ``mlflow models serve`` (its own process, another core),
  sent the same buckets' raw feature rows as ``dataframe_split`` JSON over HTTP, one request per bucket;
* **replay throughput**: the runner replaying the store as fast as it can (features in one pass), buckets/s.

Every served prediction is checked against the HTTP peer's. Prints the figures and the ratios.

Usage: python benchmarks/serving_latency.py [--buckets 2000] [--http-buckets 300]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TRAIN = ("2024-01-01 01:00", "2024-01-02 12:00")
TEST = ("2024-01-02 12:10", "2024-01-02 23:00")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup(folder: Path):
    import mlflow
    from mlflow import MlflowClient

    from atlas.data import (
        FeatureLabelSet,
        LogReturns,
        MarketSimulator,
        MarketStore,
        MetricPipeline,
        SimulatorConfig,
    )
    from atlas.data.dataset import ClassLabels
    from atlas.models import DataShape, FitOptions, make_model
    from atlas.models._packaging import log_pyfunc

    store = MarketStore(f"sqlite:///{folder / 'market.db'}")
    MarketSimulator(SimulatorConfig(days=3, exchanges="bitstamp,itbit,coinbase", seed=7, signal=0.3,
                                    snapshot_interval="10s")).simulate_into(store)
    MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
    fls = FeatureLabelSet(features=[LogReturns().exchange(e).one_min().lookback(1)
                                    for e in ("bitstamp", "itbit", "coinbase")],
                          labels=[LogReturns().exchange("itbit").one_min().lookforward(1)], title="itbit_next_minute")
    data = fls.dataset(train=TRAIN, test=TEST, store=store, classes=ClassLabels("sign"), cache=False)
    model = make_model("dnn_classifier", {"hidden_units": [32, 16]}, DataShape(data.n_features, data.n_classes))
    model.fit(data.inputs("train"), data.y_train, options=FitOptions(epochs=3, seed=1, threads=1))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_pyfunc(model, fls, data.transforms, registered_model_name="bench_itbit")
    MlflowClient().set_registered_model_alias("bench_itbit", "production", str(info.registered_model_version))
    names = sorted({k.name for f in (*fls.features, *fls.labels) for k in f.series()})
    return store, uri, fls, names


def runner(store, uri, names, redis_url, start, end, *, one_pass: bool):
    from serving.feeds import StoreReplay
    from serving.publisher import Publisher
    from serving.registry import Registry
    from serving.runner import ModelRunner, Target

    feed = StoreReplay(store, names, start=start, end=end, bucket="1min")
    return ModelRunner([Target("bench_itbit")], registry=Registry(uri), feed=feed,
                       publisher=Publisher(redis_url, ttl_seconds=600), swap_every=0, one_pass=one_pass,
                       live_every=0).start()


def http_peer(uri: str, port: int, core: int):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # its uvicorn
    command = ["taskset", "-c", str(core), sys.executable, "-m", "mlflow", "models", "serve", "-m",
               "models:/bench_itbit@production", "--env-manager", "local", "--host", "127.0.0.1", "--port",
               str(port), "--workers", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import urllib.request

    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"mlflow models serve did not start: {process.stderr.read().decode()[-2000:]}")


def percentiles(seconds) -> tuple[float, float]:
    values = np.asarray(seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buckets", type=int, default=2000)
    parser.add_argument("--http-buckets", type=int, default=300)
    args = parser.parse_args()
    import json
    import urllib.request

    import pandas as pd
    from _services import RedisServer

    os.sched_setaffinity(0, {0})
    folder = Path(tempfile.mkdtemp(prefix="atlas-bench-serving-"))
    server = RedisServer.start()
    try:
        store, uri, fls, names = setup(folder)
        end = pd.Timestamp(TEST[1], tz="UTC")
        start = end - pd.Timedelta(minutes=args.buckets - 1)

        live = runner(store, uri, names, server.url, start, end, one_pass=False)
        began = time.perf_counter()
        live.run()
        live_seconds = time.perf_counter() - began
        steps = {k: percentiles(v) for k, v in live.latency.items()}
        total = percentiles(np.add(np.add(live.latency["features"], live.latency["predict"]),
                                   live.latency["publish"]))

        replay = runner(store, uri, names, server.url, start, end, one_pass=True)
        server_flush = __import__("redis").Redis.from_url(server.url)
        server_flush.flushall()
        began = time.perf_counter()
        replay.run()
        replay_seconds = time.perf_counter() - began

        served = replay.served[next(iter(replay.served))]
        port = free_port()
        peer = http_peer(uri, port, core=1 if os.cpu_count() > 1 else 0)
        try:
            frame = fls.features_frame(start, end, store=store)
            http, answers = [], []
            for k in range(args.http_buckets):
                window = frame.iloc[k:k + 1]
                body = json.dumps({"dataframe_split": {"columns": list(window.columns),
                                                       "data": window.to_numpy().tolist()}}).encode()
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                t0 = time.perf_counter()
                with urllib.request.urlopen(request, timeout=30) as answer:
                    payload = json.loads(answer.read())
                http.append(time.perf_counter() - t0)
                answers.append(payload["predictions"][-1])
        finally:
            peer.terminate()
            peer.wait(timeout=30)
        from serving.client import PredictionReader

        history = PredictionReader(server.url).history("bench_itbit", count=args.buckets)
        mine = [p.probabilities["up"] for p in history[:args.http_buckets]]
        theirs = [a["p_up"] for a in answers]
        agree = np.allclose(mine, theirs, rtol=0, atol=1e-12)
        http_p50, http_p99 = percentiles(http)
        print(f"model: dnn_classifier [32, 16], 3 features; {args.buckets} buckets; one core")
        for step, (p50, p99) in steps.items():
            print(f"  runner {step:9s} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
        print(f"  runner per bucket p50 {total[0]:7.3f} ms   p99 {total[1]:7.3f} ms  (live path, features "
              f"incremental; {args.buckets / live_seconds:,.0f} buckets/s)")
        print(f"  mlflow models serve over HTTP ({args.http_buckets} requests): p50 {http_p50:7.3f} ms   "
              f"p99 {http_p99:7.3f} ms  (predictions agree: {agree})")
        print(f"  ratio: the runner is {http_p50 / total[0]:.1f}x faster at p50 and {http_p99 / total[1]:.1f}x at "
              f"p99, and its time includes the features and the Redis write")
        print(f"  replay (features in one pass): {args.buckets / replay_seconds:,.0f} buckets/s "
              f"({replay_seconds:.2f} s for {args.buckets})")
        print(f"  served {served.target}: version {served.ref.version}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
