"""One-row inference latency: Atlas's serving path against Keras' ``predict`` and a direct ``model(x)`` call.

A dense network (20 features, hidden layers of 64 and 32 units with batch normalization and dropout, 3 classes)
runs through :func:`atlas.models._fast.compile_predictor` (its NumPy path), through
``model.predict(x, verbose=0)`` and through ``model(x, training=False)``, one row at a time, in one process pinned
to one core with TensorFlow's thread pools set to one thread. An LSTM over a 30-row window runs through the
graph path (with and without XLA) against the same two Keras calls. Every path is warmed up first; the script
checks that the paths agree, then prints p50 and p99 per call and the ratios.

Usage: python benchmarks/inference_latency.py [--calls 5000] [--keras-calls 500] [--core 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: no start-up chatter

import numpy as np


def pin(core: int) -> None:
    """One core for the process, and one thread for each TensorFlow pool (before any TensorFlow op)."""
    os.sched_setaffinity(0, {core})
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def latency(call, inputs: np.ndarray, calls: int, warmup: int) -> np.ndarray:
    """Microseconds per call, one input per call, after ``warmup`` calls."""
    for k in range(warmup):
        call(inputs[k % len(inputs)])
    times = np.empty(calls)
    clock = time.perf_counter_ns
    for k in range(calls):
        x = inputs[k % len(inputs)]
        start = clock()
        call(x)
        times[k] = clock() - start
    return times / 1000.0


def models():
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    dnn = keras.Sequential([keras.Input((20,)), layers.Dense(64, activation="relu"), layers.BatchNormalization(),
                            layers.Dropout(0.2), layers.Dense(32, activation="relu"), layers.BatchNormalization(),
                            layers.Dense(3, activation="softmax")])
    lstm = keras.Sequential([keras.Input((30, 20)), layers.LSTM(32), layers.Dense(3, activation="softmax")])
    return dnn, lstm


def compare(name: str, paths: dict, inputs: np.ndarray, args) -> None:
    rows = {}
    reference = None
    for label, (call, calls) in paths.items():
        out = np.asarray(call(inputs[0]), dtype=np.float64).reshape(-1)
        reference = out if reference is None else reference
        if not np.allclose(out, reference, rtol=1e-5, atol=1e-6):
            sys.exit(f"{name}: {label} gives {out}, the first path {reference}")
        rows[label] = latency(call, inputs, calls, warmup=min(200, calls))
    fast = np.percentile(next(iter(rows.values())), [50, 99])
    print(f"\n{name}: one row per call, microseconds (pinned to core {args.core}, TensorFlow threads 1)")
    print(f"{'path':44} {'calls':>6} {'p50':>10} {'p99':>10} {'p50 ratio':>10} {'p99 ratio':>10}")
    for label, times in rows.items():
        p50, p99 = np.percentile(times, [50, 99])
        print(f"{label:44} {len(times):6d} {p50:10.1f} {p99:10.1f} {p50 / fast[0]:9.1f}x {p99 / fast[1]:9.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per fast path")
    parser.add_argument("--keras-calls", type=int, default=500, help="calls per Keras path (predict is slow)")
    parser.add_argument("--core", type=int, default=0)
    args = parser.parse_args()
    pin(args.core)
    import keras

    from atlas.models._fast import compile_predictor

    dnn, lstm = models()
    rng = np.random.default_rng(0)

    rows = rng.normal(size=(256, 20)).astype(np.float32)
    fast = compile_predictor(dnn, proba=True)
    assert fast.path == "numpy", fast
    compare("DNN 20 -> 64 -> 32 -> 3", {
        "atlas compile_predictor (NumPy path)": (fast, args.calls),
        "keras model(x[None], training=False)": (lambda x: dnn(x[None], training=False)[0], args.keras_calls),
        "keras model.predict(x[None], verbose=0)": (lambda x: dnn.predict(x[None], verbose=0)[0],
                                                    args.keras_calls),
    }, rows, args)

    windows = rng.normal(size=(64, 30, 20)).astype(np.float32)
    xla = compile_predictor(lstm, proba=True)  # recurrent: XLA by default
    plain = compile_predictor(lstm, proba=True, jit_compile=False)
    assert xla.path == plain.path == "graph"
    compare("LSTM(32) over 30 rows x 20 features -> 3", {
        "atlas compile_predictor (graph path, XLA)": (xla, args.calls),
        "atlas compile_predictor (graph, no XLA)": (plain, args.calls),
        "keras model(x[None], training=False)": (lambda x: lstm(x[None], training=False)[0], args.keras_calls),
        "keras model.predict(x[None], verbose=0)": (lambda x: lstm.predict(x[None], verbose=0)[0],
                                                    args.keras_calls),
    }, windows, args)
    print(f"\nkeras {keras.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs on the machine")


if __name__ == "__main__":
    main()
