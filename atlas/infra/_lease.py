"""The lease on an execution: one driver at a time drives it, across processes and machines.

Every driver of a sweep shares one database, the Optuna storage's (SQLite or PostgreSQL), so the lease is a row
there, in the table ``atlas_execution_leases``: the execution, who holds it (a random token, the host, the pid
and the process's start time), since when, its last heartbeat and a generation. Taking a free lease is an
INSERT, and the primary key lets one of two racing drivers win. Taking over from a dead holder is one UPDATE
guarded by the generation that was read (compare and set): a single statement is atomic in SQLite and in
PostgreSQL alike, so of two drivers that both found the holder dead, one wins and the other is refused. (A
study user attribute would not do: Optuna writes it without a compare step, and SQLite's Python driver runs a
read and the write after it in separate transactions.)

A holder is dead when, on this host, its pid no longer runs or runs another process (``kill -9`` leaves the row
behind); on another host, when its heartbeat, written every 15 s by a thread, is older than two minutes.
Releasing deletes the row. Times are each host's clock: hosts that share a sweep should keep theirs in sync.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError

TABLE = "atlas_execution_leases"
#: Seconds between heartbeats, and the age at which a holder on another host counts as dead.
HEARTBEAT_SECONDS, EXPIRY_SECONDS = 15.0, 120.0

_metadata = sa.MetaData()
_leases = sa.Table(
    TABLE, _metadata,
    sa.Column("execution", sa.String(64), primary_key=True),
    sa.Column("work_spec", sa.String(64), nullable=False),
    sa.Column("token", sa.String(32), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("process_started", sa.BigInteger, nullable=False),  # clock ticks after boot; 0: unknown
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
)


def create_lease_table(storage: str) -> None:
    """Creates the lease table in the Optuna storage's database, if missing (under the stores' lock)."""
    engine = _engine(storage)
    try:
        _metadata.create_all(engine)
    finally:
        engine.dispose()


def _engine(storage: str) -> sa.Engine:
    # no pool: the heartbeat thread and the driver each get their own connection, and nothing stays open
    return sa.create_engine(storage, poolclass=sa.pool.NullPool)


def _process_started(pid: int) -> int:
    """When process ``pid`` started, in clock ticks after boot (Linux), or 0 where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3
    except (OSError, IndexError, ValueError):
        return 0


def _identity() -> dict:
    """This driver, as a lease records it."""
    pid = os.getpid()
    return {"token": uuid.uuid4().hex, "host": socket.gethostname(), "pid": pid,
            "process_started": _process_started(pid)}


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its row says."""

    token: str
    host: str
    pid: int
    process_started: int
    since: float
    heartbeat: float
    generation: int

    def alive(self, now: float) -> bool:
        """On this host: its process still runs. On another: its heartbeat is recent."""
        if self.host != socket.gethostname():
            return now - self.heartbeat < EXPIRY_SECONDS
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it runs
            pass
        started = _process_started(self.pid)
        return not (started and self.process_started and started != self.process_started)  # else a reused pid

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return (f"pid {self.pid} on host {self.host}, since {since}, last heartbeat {now - self.heartbeat:.0f} s "
                f"ago")


class ExecutionLease:
    """The lease this driver holds on one execution; :meth:`acquire` it, :meth:`release` it at the end.

    Attributes:
        previous: the dead holder this driver took over from, or None.
        lost: another driver took the lease over (this one's heartbeat had stopped for too long).
    """

    def __init__(self, engine: sa.Engine, execution: str, token: str, previous: Holder | None) -> None:
        self.engine, self.execution, self.token, self.previous = engine, execution, token, previous
        self.lost = False
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeats, name="atlas-lease", daemon=True)
        self._beat.start()

    @classmethod
    def acquire(cls, storage: str, execution: str, work_spec: str) -> ExecutionLease:
        """Takes the lease on ``execution``: free, or held by a driver that is dead.

        Raises:
            ConfigError: a live driver holds it (the message names it), or the storage cannot be reached.
        """
        engine = _engine(storage)
        try:
            return cls._acquire(engine, storage, execution, work_spec)
        except BaseException:
            engine.dispose()
            raise

    @classmethod
    def _acquire(cls, engine: sa.Engine, storage: str, execution: str, work_spec: str) -> ExecutionLease:
        me = _identity()
        for _ in range(5):  # a lease released between a failed insert and the read: try again
            now = time.time()
            row = {**me, "since": now, "heartbeat": now}
            try:
                with engine.begin() as connection:
                    connection.execute(_leases.insert().values(execution=execution, work_spec=work_spec,
                                                               generation=0, **row))
                return cls(engine, execution, me["token"], None)
            except IntegrityError:
                pass
            except SQLAlchemyError as error:
                msg = (f"cannot take the lease on execution {execution} in the Optuna storage {mask_url(storage)} "
                       f"(ATLAS_OPTUNA_STORAGE): {mask_text(str(error))}")
                raise ConfigError(msg) from None
            holder = _read(engine, execution)
            if holder is None:
                continue
            if holder.alive(now):
                raise _held(execution, work_spec, holder, now)
            with engine.begin() as connection:  # compare and set: only if nobody took it over since the read
                taken = connection.execute(
                    _leases.update().where(_leases.c.execution == execution,
                                           _leases.c.generation == holder.generation)
                    .values(generation=holder.generation + 1, **row)).rowcount
            if taken == 1:
                return cls(engine, execution, me["token"], holder)
            holder = _read(engine, execution)
            if holder is not None:
                raise _held(execution, work_spec, holder, now)
        msg = f"cannot take the lease on execution {execution}: other drivers keep taking and releasing it"
        raise ConfigError(msg)

    def _heartbeats(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS) and not self.lost:
            self.beat()

    def beat(self) -> None:
        """Writes a heartbeat; finds the lease lost if another driver has taken it over."""
        try:
            with self.engine.begin() as connection:
                kept = connection.execute(
                    _leases.update().where(_leases.c.execution == self.execution, _leases.c.token == self.token)
                    .values(heartbeat=time.time())).rowcount
        except SQLAlchemyError:  # a busy or unreachable database: the next beat tries again
            return
        if kept == 0:
            self.lost = True

    def check(self) -> None:
        """Raises ConfigError if another driver took the lease over."""
        if self.lost:
            holder = _read(self.engine, self.execution)
            who = holder.describe() if holder else "nobody now"
            msg = (f"this driver lost the lease on execution {self.execution} ({who} holds it): its heartbeat "
                   f"stopped for over {EXPIRY_SECONDS:.0f} s and another `atlas train --resume` took the execution "
                   "over; this driver stops and leaves it to that one")
            raise ConfigError(msg)

    def release(self) -> None:
        """Gives the lease up (if still held); idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._beat.join()
        try:
            with self.engine.begin() as connection:
                connection.execute(_leases.delete().where(_leases.c.execution == self.execution,
                                                          _leases.c.token == self.token))
        except SQLAlchemyError:  # the holder is dead by then: the next resume takes the lease over
            pass
        finally:
            self.engine.dispose()


def _read(engine: sa.Engine, execution: str) -> Holder | None:
    with engine.connect() as connection:
        row = connection.execute(sa.select(_leases).where(_leases.c.execution == execution)).mappings().first()
    return None if row is None else Holder(**{k: row[k] for k in Holder.__dataclass_fields__})


def _held(execution: str, work_spec: str, holder: Holder, now: float) -> ConfigError:
    msg = (f"execution {execution} of work spec {work_spec!r} is being driven by another `atlas train` "
           f"({holder.describe(now)}); wait for it to end, or stop it (Ctrl-C), then run --resume again")
    return ConfigError(msg)
