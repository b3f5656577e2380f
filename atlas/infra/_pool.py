"""Ray runs the trials: long-lived workers (one Ray actor per concurrent trial) that import TensorFlow once.

Each worker holds the resources of one trial (CPUs and a GPU fraction, so four workers can share a GPU at
0.25). A worker that dies (killed, out of memory, its node lost) is replaced and its trial is sent again; a
trial that raises comes back as a failed result instead, so the sweep goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.infra._specs import Resources
from atlas.infra._trial import TrialResult, TrialTask, run_trial

#: Attempts per trial when its worker dies (a trial that raises is not retried: it would raise again).
ATTEMPTS = 3


class TrialWorker:
    """A Ray actor that runs trials one after another; TensorFlow is imported once, when it starts."""

    def __init__(self, threads: int, packaging: bool) -> None:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # this worker process's own: TensorFlow's C++ logs, quieter
        from atlas.models import configure

        configure(seed=0, threads=threads)  # imports TensorFlow and sets its thread pools, once per process
        if packaging:  # MLflow's pyfunc too, when trials package models: the first trial should not pay for it
            import atlas.models._packaging  # noqa: F401

    def run(self, task: TrialTask, dataset: Any) -> TrialResult:
        import ray

        result = run_trial(task, dataset)
        context = ray.get_runtime_context()
        result.node, result.gpus = context.get_node_id(), list(context.get_accelerator_ids().get("GPU", []))
        return result

    def pid(self) -> int:
        return os.getpid()


#: Tries of a Ray Client connection whose server-side process failed to start (seen once in CI, under load).
CLIENT_TRIES = 3


def _init(ray, address: str, options: dict) -> None:
    """``ray.init`` at ``address``; through Ray Client (``ray://``), tried again when the head's client server
    fails to start the connection's own server process ("Initialization failure from server")."""
    import time

    for attempt in range(1, CLIENT_TRIES + 1):
        try:
            ray.init(address=address, **options)
            return
        except ConnectionError as error:
            if not address.startswith("ray://") or "Initialization failure" not in str(error) \
                    or attempt == CLIENT_TRIES:
                raise
            time.sleep(2 * attempt)


def connect(address: str | None) -> bool:
    """Connects to the Ray cluster at ``address`` (``"auto"``: the one running on this machine), or starts a
    local one; True when this call connected (and so disconnects at the end).

    Raises:
        ConfigError: no cluster answers at ``address``.
        KeyboardInterrupt: SIGTERM while Ray starts (``ray.init`` puts in its own handler, which exits).
    """
    import signal

    import ray

    if ray.is_initialized():
        return False
    options = {"logging_level": "WARNING", "log_to_driver": False, "configure_logging": True}
    try:
        if address:
            _init(ray, address, options)
        else:  # "local": a new Ray of our own, never one that another process started and may be stopping
            ray.init(address="local", include_dashboard=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        msg = (f"cannot connect to the Ray cluster at {mask_url(address)!r} (ATLAS_RAY_ADDRESS or --address): "
               f"{mask_text(str(error))}. Start one with `ray start --head`, or leave out --address (and "
               "ATLAS_RAY_ADDRESS) to run on a local Ray")
        raise ConfigError(msg) from None
    except SystemExit as stop:  # Ray's SIGTERM handler: stop as Ctrl-C does, so the sweep cleans up
        if stop.code == signal.SIGTERM:
            raise KeyboardInterrupt from None
        raise
    return True


def slots(resources: Resources, wanted: int | None) -> int:
    """How many trials can run at once on the cluster: its CPUs and GPUs over one trial's, capped by ``wanted``.

    Raises:
        ConfigError: one trial needs more than any cluster offers in all.
    """
    import ray

    total = ray.cluster_resources()
    fits = int(total.get("CPU", 0) // resources.cpu)
    if resources.gpu:
        fits = min(fits, int(total.get("GPU", 0) // resources.gpu))
    if resources.accelerator:
        kinds = sorted(k.split(":", 1)[1] for k in total if k.startswith("accelerator_type:"))
        if resources.accelerator not in kinds:
            msg = (f"a trial asks for a {resources.accelerator} GPU (WorkSpec.resources.accelerator), but the Ray "
                   f"cluster's GPUs are of types {kinds or 'none that Ray knows'}; ask for one of those, or leave "
                   f"accelerator out to run on any GPU")
            raise ConfigError(msg)
        typed = [n["Resources"] for n in ray.nodes()
                 if n.get("Alive") and f"accelerator_type:{resources.accelerator}" in n["Resources"]]
        # a trial runs on one node: count what fits on the nodes of that type only, node by node
        fits = sum(min(int(r.get("CPU", 0) // resources.cpu), int(r.get("GPU", 0) // resources.gpu)) for r in typed)
    if fits < 1:
        msg = (f"a trial needs {resources.cpu} CPU and {resources.gpu} GPU, but the Ray cluster has "
               f"{total.get('CPU', 0)} CPU and {total.get('GPU', 0)} GPU in all; lower WorkSpec.resources")
        raise ConfigError(msg)
    return min(fits, wanted) if wanted else fits


#: How long a sweep waits for all its workers to start before it begins with those that have.
START_SECONDS = 60.0


@dataclass
class Worker:
    actor: Any
    outstanding: int = 0  # trials sent and not yet back
    ready: Any = None  # the reference its start answers on
    started: bool = False  # placed on a node and started: only then does it get trials


class WorkerPool:
    """``size`` workers with ``resources`` each; :meth:`submit` a trial to a free one, :meth:`replace` a dead one.

    Each worker holds up to ``depth`` trials: the next one waits in the actor's queue, so a worker starts it the
    moment it finishes the last, while the driver records the result.
    """

    def __init__(self, size: int, resources: Resources, *, packaging: bool = True, depth: int = 2) -> None:
        import ray

        self._remote = ray.remote(TrialWorker)
        self.resources, self.depth, self.packaging = resources, depth, packaging
        self.threads = max(1, int(resources.cpu))
        self.workers = [self._start() for _ in range(size)]

    def _start(self) -> Worker:
        typed = {"accelerator_type": self.resources.accelerator} if self.resources.accelerator else {}
        actor = self._remote.options(num_cpus=self.resources.cpu, num_gpus=self.resources.gpu, **typed,
                                     max_restarts=0, max_task_retries=0).remote(self.threads, self.packaging)
        return Worker(actor, ready=actor.pid.remote())

    def ready(self) -> None:
        """Waits until a first worker has started (TensorFlow imported): a trial's run is created when it is
        sent, so its duration must not include its worker's start, and trials only go to started workers.

        Every worker is waited for up to :data:`START_SECONDS`, then the first one: on a cluster shared with
        other sweeps, the others may hold the rest of the room, and two sweeps each waiting for all their
        workers would wait for each other forever. A worker placed later takes trials from then on.
        """
        import ray

        refs = [worker.ready for worker in self.workers]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=START_SECONDS)
        if not done:
            ray.wait(refs, num_returns=1)
        self._started()

    def _started(self) -> list[Worker]:
        """The workers placed and started. A replacement may wait for room (its node died with the worker it
        replaces, and Ray has not yet noticed): it gets no trial until it runs, so none waits on it forever."""
        import ray

        pending = [w for w in self.workers if not w.started]
        if pending:
            done, _ = ray.wait([w.ready for w in pending], num_returns=len(pending), timeout=0)
            for worker in pending:
                worker.started = worker.ready in done
        return [w for w in self.workers if w.started]

    def free(self) -> Worker | None:
        """The started worker with the fewest trials in hand, if it can take one more."""
        worker = min(self._started(), key=lambda w: w.outstanding, default=None)
        return worker if worker is not None and worker.outstanding < self.depth else None

    def least_loaded(self) -> Worker:
        """A started worker for a trial that must be sent now (a retry), waiting for one to start if none has."""
        import ray

        started = self._started()
        while not started:
            ray.wait([w.ready for w in self.workers], num_returns=1)
            started = self._started()
        return min(started, key=lambda w: w.outstanding)

    def submit(self, worker: Worker, task: TrialTask, data_ref: Any):
        worker.outstanding += 1
        return worker.actor.run.remote(task, data_ref)

    def release(self, worker: Worker) -> None:
        worker.outstanding = max(0, worker.outstanding - 1)

    def replace(self, worker: Worker) -> None:
        """Kills ``worker`` (if it still lives) and starts a fresh one in its place (once per dead worker).

        The fresh one takes trials once it runs: when the worker died with its node, it waits until the
        cluster has room again, while the trials go to the workers that live.
        """
        import ray

        if worker in self.workers:
            ray.kill(worker.actor, no_restart=True)
            self.workers[self.workers.index(worker)] = self._start()

    def shutdown(self) -> None:
        import ray

        for worker in self.workers:
            ray.kill(worker.actor, no_restart=True)
        self.workers = []
