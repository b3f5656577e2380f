"""Pause points for tests that stop a driver at a chosen moment: a spec file calls :func:`install` in the driver's
process, and the driver, when it gets there, prints ``PAUSED <where>`` and waits for a line on its stdin. The test
reads the line, then signals the process, or runs another one, or lets it go on: no sleeps, no timing.

Points: ``ray_init`` (Ray is about to start), ``unit_opened`` (the first work unit's run was just opened),
``trial_sent`` (the first trial's run exists and its task was sent), ``loop`` (before the first trial),
``create:FILE`` (a table is about to be created in the SQLite database FILE, e.g. ``create:mlflow.db``).
"""

from __future__ import annotations

import functools
import sys


def pause(where: str) -> None:
    print(f"PAUSED {where}", flush=True)
    sys.stdin.readline()


def _once(where: str, before: bool):
    """A decorator: the wrapped function pauses, the first time it is called, before or after it runs."""
    done = []

    def wrap(function):
        @functools.wraps(function)
        def paused(*args, **kwargs):
            first = not done
            done.append(True)
            if first and before:
                pause(where)
            result = function(*args, **kwargs)
            if first and not before:
                pause(where)
            return result
        return paused
    return wrap


def install(where: str | None) -> None:
    if not where:
        return
    from atlas.infra._driver import Sweep

    if where == "ray_init":
        import ray

        ray.init = _once(where, before=True)(ray.init)
    elif where == "unit_opened":
        Sweep._start_unit = _once(where, before=False)(Sweep._start_unit)
    elif where == "trial_sent":
        Sweep._send = _once(where, before=False)(Sweep._send)
    elif where == "loop":
        Sweep.run = _once(where, before=True)(Sweep.run)
    elif where.startswith("create:"):
        from sqlalchemy import MetaData, event

        database = where.split(":", 1)[1]
        done = []

        @event.listens_for(MetaData, "before_create")
        def creating(target, connection, **_):
            if not done and str(connection.engine.url.database or "").endswith(database):
                done.append(True)
                pause(where)
    else:
        raise ValueError(where)
