"""The same sweep on one node and on two nodes of a local Ray cluster started with ``ray start``.

Each node is given one CPU (so this machine's two cores are not oversubscribed) and each trial takes one CPU and
one TensorFlow thread: one node runs one trial at a time, two nodes two. The cluster is the one ``make stack``
starts (``ray start --head``, then ``ray start --address`` for the second node, token authentication on); the
sweep's driver connects to it by address, as a driver outside the cluster would, and the work unit's data reaches
the second node through Ray's object store.

The trials are the sweep benchmark's: N small Keras DNN classifiers (a grid of learning rates, E epochs each) on
itbit's next one-minute return, on a few days of the simulated market in a temporary ATLAS_HOME.

Figures: wall seconds of ``atlas.infra.train`` on each cluster, the speed-up (one node / two nodes) and its
efficiency (speed-up / 2); the same for the trials alone (the first trial's start to the last one's end), and the
sweep's fixed cost (everything else). The baseline, in the same run: the same trials in one plain process and in
two, without Ray; their ratio is the most two trials at once can gain on this machine, and the two nodes' speed-up
is given as a share of it. Aim: two nodes at least 1.7x one node.

Usage: python benchmarks/sweep_scaling.py [--trials 8] [--epochs 30] [--days 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))
import stack  # noqa: E402
from sweep_overhead import learning_rates, simulate, work_unit  # noqa: E402

RAY = Path(sys.executable).parent / "ray"


def start_node(temp: Path, env: dict, port: int, head: bool) -> None:
    common = ["--num-cpus", "1", "--temp-dir", str(temp), "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    where = ["--head", "--port", str(port), "--include-dashboard=false"] if head else ["--address", f"127.0.0.1:{port}"]
    subprocess.run([str(RAY), "start", *where, *common], check=True, env=env, capture_output=True)


def sweep(name: str, unit, home: Path, store_url: str, address: str) -> tuple[float, float, int]:
    from atlas.config import Settings
    from atlas.infra import Resources, Search, WorkSpec, train

    spec = WorkSpec(name, [unit], search=Search("grid"), resources=Resources(cpu=1), seed=1, log_models=0)
    settings = Settings.from_env({"ATLAS_HOME": str(home), "ATLAS_STORE_URL": store_url})
    began = time.perf_counter()
    report = train(spec, settings=settings, address=address, progress=False)
    wall = time.perf_counter() - began
    finished = sum(r.state == "finished" for r in report.results)
    if finished != len(report.results):
        raise SystemExit(f"{name}: {len(report.results) - finished} trials did not finish")
    trials = max(r.started + r.seconds for r in report.results) - min(r.started for r in report.results)
    return wall, trials, report.slots


def _run_chunk(tasks, dataset) -> tuple[float, float]:
    """Runs ``tasks`` one after another in this process (TensorFlow imported first); the first start and last end."""
    from atlas.infra._trial import run_trial
    from atlas.models import configure

    configure(seed=1, threads=1)
    began = time.time()
    for task in tasks:
        result = run_trial(task, dataset)
        if result.state != "finished":
            raise SystemExit(f"trial {task.number} {result.state}: {result.error}")
    return began, time.time()


def ceiling(unit, store_url: str, home: Path) -> tuple[float, float]:
    """The baseline, without Ray or Atlas's sweep: the same trials (``run_trial`` on the same data) in one plain
    process, then split over two plain processes; the seconds of their trials each way. Their ratio is what this
    machine's two cores give two such trials at once (vCPUs that share a physical core's vector units give much
    less than 2)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from atlas.config import Settings
    from atlas.data import MarketStore
    from atlas.infra._driver import build_data
    from atlas.infra._trial import TrialTask

    settings = Settings.from_env({"ATLAS_HOME": str(home), "ATLAS_STORE_URL": store_url})
    with MarketStore.from_settings(settings) as store:
        dataset = build_data(unit, store, 1)[None]
    spec = unit.model_specs[0]
    tasks = [TrialTask(unit.name, spec.name, number, spec.model, {**spec.params, "learning_rate": rate}, spec.fit,
                       seed=1 + number, validation=unit.validation, horizon=unit.featureset.horizon,
                       featureset=unit.featureset, save_model=False, threads=1)
             for number, rate in enumerate(spec.grid["learning_rate"])]
    spans = []
    for chunks in ([tasks], [tasks[0::2], tasks[1::2]]):
        with ProcessPoolExecutor(len(chunks), mp_context=multiprocessing.get_context("spawn")) as pool:
            times = list(pool.map(_run_chunk, chunks, [dataset] * len(chunks)))
        spans.append(max(end for _, end in times) - min(start for start, _ in times))
    return spans[0], spans[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--days", type=float, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="atlas-scaling-"))
    temp = Path(f"/tmp/atlas-ray-{secrets.token_hex(4)}")
    token = home / "ray_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})  # this driver's too
    port = stack.free_port()
    try:
        store_url = simulate(home, args.days)
        unit = work_unit(learning_rates(args.trials), args.epochs)
        start_node(temp, env, port, head=True)
        one, one_trials, slots_one = sweep("scaling_one_node", unit, home, store_url, f"127.0.0.1:{port}")
        start_node(temp, env, port, head=False)
        time.sleep(2)
        two, two_trials, slots_two = sweep("scaling_two_nodes", unit, home, store_url, f"127.0.0.1:{port}")
        stack._kill_ray(str(temp), str(token))  # the machine to the baseline alone
        alone, together = ceiling(unit, store_url, home)
    finally:
        stack._kill_ray(str(temp), str(token))
        shutil.rmtree(temp, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    speedup, trials_speedup = one / two, one_trials / two_trials
    print(f"{args.trials} trials x {args.epochs} epochs, one CPU and one TensorFlow thread each")
    print(f"one node  ({slots_one} slot):  {one:7.1f} s the sweep, {one_trials:7.1f} s its trials")
    print(f"two nodes ({slots_two} slots): {two:7.1f} s the sweep, {two_trials:7.1f} s its trials")
    print(f"speed-up {speedup:.2f}x, efficiency {speedup / 2:.0%} (aim: 1.7x); the trials alone: "
          f"{trials_speedup:.2f}x, {trials_speedup / 2:.0%}")
    print(f"fixed cost of a sweep (connect, workers' start, data, recording, digest): {one - one_trials:.1f} s on "
          f"one node, {two - two_trials:.1f} s on two")
    limit = alone / together
    print(f"baseline, no Ray: the same trials in one process {alone:.1f} s, in two processes {together:.1f} s: this "
          f"machine gives {limit:.2f}x; two nodes reach {trials_speedup / limit:.0%} of it")


if __name__ == "__main__":
    main()
