"""The execution lease, on both Optuna storage backends (SQLite and PostgreSQL), without Ray: one live driver
holds it, a dead one (kill -9 on this host, a stale heartbeat on another) is taken over, and of two drivers
that find the same dead holder at once exactly one wins."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from atlas.exceptions import ConfigError
from atlas.infra import _lease
from atlas.infra._lease import EXPIRY_SECONDS, ExecutionLease, Holder, create_lease_table


@pytest.fixture
def storage(store_url) -> str:
    """An Optuna storage database with the lease table, on each backend in turn."""
    create_lease_table(store_url)
    return store_url


def dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def plant(storage: str, execution: str, **holder) -> None:
    """A lease row as another driver leaves it."""
    now = time.time()
    row = {"token": "other", "host": socket.gethostname(), "pid": dead_pid(), "process_started": 0, "since": now,
           "heartbeat": now, "generation": 3, **holder}
    engine = sa.create_engine(storage)
    with engine.begin() as connection:
        connection.execute(_lease._leases.insert().values(execution=execution, work_spec="w", **row))
    engine.dispose()


def test_a_live_holder_refuses_others_and_a_driver_killed_with_sigkill_is_taken_over(storage):
    holding = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom atlas.infra._lease import ExecutionLease\n"
         f"ExecutionLease.acquire({storage!r}, 'e1', 'w')\nprint('held', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holding.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"execution e1 of work spec 'w' is being driven by another `atlas "
                                              rf"train` \(pid {holding.pid} on host .*wait for it to end"):
            ExecutionLease.acquire(storage, "e1", "w")
    finally:
        holding.send_signal(signal.SIGKILL)
        holding.wait()

    lease = ExecutionLease.acquire(storage, "e1", "w")
    assert lease.previous.pid == holding.pid
    with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):  # this process holds it now
        ExecutionLease.acquire(storage, "e1", "w")
    other = ExecutionLease.acquire(storage, "e2", "w")  # another execution: its own lease
    lease.release()
    other.release()
    again = ExecutionLease.acquire(storage, "e1", "w")  # released: free, nobody to take over from
    assert again.previous is None
    again.release()


def test_of_two_drivers_that_find_the_holder_dead_at_once_exactly_one_wins(storage, monkeypatch):
    plant(storage, "e1")
    both_read = threading.Barrier(2, timeout=60)
    alive = Holder.alive

    def judged_together(self, now):  # each driver has read the dead holder before either claims the lease
        verdict = alive(self, now)
        both_read.wait()
        return verdict

    monkeypatch.setattr(Holder, "alive", judged_together)
    outcomes = []

    def claim():
        try:
            outcomes.append(ExecutionLease.acquire(storage, "e1", "w"))
        except ConfigError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    won = [o for o in outcomes if isinstance(o, ExecutionLease)]
    refused = [o for o in outcomes if isinstance(o, ConfigError)]
    assert len(won) == 1 and len(refused) == 1, outcomes
    assert won[0].previous.generation == 3 and "is being driven by another" in str(refused[0])
    won[0].release()


def test_a_holder_on_another_host_is_dead_only_once_its_heartbeat_is_stale(storage):
    plant(storage, "fresh", host="elsewhere", pid=1)
    with pytest.raises(ConfigError, match="pid 1 on host elsewhere"):
        ExecutionLease.acquire(storage, "fresh", "w")
    plant(storage, "stale", host="elsewhere", pid=1, heartbeat=time.time() - EXPIRY_SECONDS - 1)
    lease = ExecutionLease.acquire(storage, "stale", "w")
    assert lease.previous.host == "elsewhere"
    lease.release()


def test_a_driver_whose_lease_was_taken_over_finds_out_at_its_next_heartbeat(storage):
    lease = ExecutionLease.acquire(storage, "e1", "w")
    before = _lease._read(lease.engine, "e1").heartbeat
    lease.beat()
    assert _lease._read(lease.engine, "e1").heartbeat >= before and not lease.lost
    lease.check()
    with lease.engine.begin() as connection:  # as a driver on another host does when the heartbeat is stale
        connection.execute(_lease._leases.update().values(token="thief", host="elsewhere", generation=1))
    lease.beat()
    with pytest.raises(ConfigError, match="lost the lease on execution e1 .*host elsewhere"):
        lease.check()
    lease.release()
    assert _lease._read(sa.create_engine(storage), "e1").token == "thief"  # the new holder's lease is kept
