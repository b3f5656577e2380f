"""Before a sweep opens anything: an unreachable Ray cluster fails at once, naming its setting; and two sweeps
started at once on a fresh ATLAS_HOME both set up the stores: one creates MLflow's and Optuna's tables while the
other waits (a lock file), instead of both migrating the same new SQLite files.

The first driver is paused in the middle of creating one database's tables (``_hooks``: after SQLAlchemy has
listed the tables that are missing, before it creates them); the second is started then. Both drivers resume a
sweep that was never run, so each ends, without starting Ray, with "nothing to resume" once its stores are up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _services import free_port

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
WAITING = "waiting for another Atlas process to set up the stores"


@pytest.fixture
def spec_file(tmp_path) -> Path:
    path = tmp_path / "fresh.py"
    path.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(HERE)!r})
        import _hooks, _scripted
        from _units import next_minute_unit
        from atlas.infra import ModelSpec, WorkSpec
        SPEC = WorkSpec("fresh", [next_minute_unit("u", ModelSpec("s", _scripted.ScriptedClassifier))])
        _hooks.install(os.environ.get("HOOK"))
    """))
    return path


@pytest.mark.parametrize("database", ["optuna.db", "mlflow.db"])
def test_two_sweeps_started_at_once_on_a_fresh_home_both_set_up_the_stores(database, spec_file, sweep_market,
                                                                          tmp_path):
    environment = {**os.environ, "ATLAS_HOME": str(tmp_path / "home"), "ATLAS_STORE_URL": sweep_market,
                   "PYTHONUNBUFFERED": "1"}

    def start(hook: str) -> subprocess.Popen:
        return subprocess.Popen([str(BIN / "atlas"), "train", str(spec_file), "--resume"],
                                env={**environment, "HOOK": hook}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    first = start(f"create:{database}")
    said = []
    for line in first.stdout:  # the first is creating the tables of `database`
        said.append(line)
        if line.startswith("PAUSED"):
            break
    second = start("")
    heard = []
    for line in second.stdout:  # the second waits for the first (or, without the lock, races it to the end)
        heard.append(line)
        if WAITING in line:
            break
    first.stdin.write("\n")
    first.stdin.flush()
    outputs = ["".join(said) + first.communicate(timeout=300)[0], "".join(heard) + second.communicate(timeout=300)[0]]

    for process, output in zip((first, second), outputs, strict=True):  # both got as far as their stores let them
        assert process.returncode == 2, output
        assert "Error: nothing to resume: the MLflow store" in output and "Traceback" not in output, output
    assert WAITING in outputs[1] and WAITING not in outputs[0]


@pytest.mark.parametrize(("option", "address"), [("--address", "127.0.0.1:1"), ("ATLAS_RAY_ADDRESS", "ray://")])
def test_an_unreachable_ray_cluster_fails_at_once_naming_the_setting_and_opens_nothing(option, address, spec_file,
                                                                                       sweep_market, tmp_path):
    address = address if address != "ray://" else f"ray://127.0.0.1:{free_port()}"
    home = tmp_path / "home"
    environment = {**os.environ, "ATLAS_HOME": str(home), "ATLAS_STORE_URL": sweep_market}
    command = [str(BIN / "atlas"), "train", str(spec_file)]
    if option == "--address":
        command += ["--address", address]
    else:
        environment[option] = address
    # before: ray.init waited for more than eight minutes on such an address (the timeout only ends a hang)
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)

    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: cannot reach the Ray cluster at '{address}' "
                                                     "(ATLAS_RAY_ADDRESS or --address)"), done.stderr
    assert not (home / "mlflow.db").exists()  # checked before any store was touched
