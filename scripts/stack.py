"""A desk's shared stack on this machine, without Docker: PostgreSQL, an S3 endpoint (moto's server), an MLflow
server on them (PostgreSQL backend, artifacts in S3 through its proxy), Redis and a two-node Ray cluster, all on
loopback, as an unprivileged user where a server refuses root.

    python scripts/stack.py start [--dir .atlas/stack]   # prints where its settings are
    python scripts/stack.py stop  [--dir .atlas/stack]   # stops exactly what start started
    python scripts/stack.py restart-mlflow [--dir ...]   # kills the MLflow server (SIGKILL) and starts it again
    set -a; . .atlas/stack/stack.env; set +a             # then every atlas command uses the stack

``stack.env`` holds the settings, passwords included (so it is private to its owner); ``atlas.toml`` beside it the
same settings without passwords, for reading. ``state.json`` records what runs (process ids, the PostgreSQL data
folder, the Ray session folder), so ``stop`` touches nothing else: not another Ray on this machine, not a Redis
that was already there.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
BUCKET = "atlas"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, what: str, seconds: float = 60, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"Error: {what} exited with status {process.returncode}; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"Error: {what} did not answer on 127.0.0.1:{port} within {seconds:.0f} s")


def postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise SystemExit("Error: the PostgreSQL server (initdb, pg_ctl) is not installed: apt-get install postgresql")
    return Path(candidates[-1]).parent


def as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its commands as the postgres user (else nobody)."""
    if os.geteuid() != 0:
        return list(command)
    user = "postgres" if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode == 0 else "nobody"
    return ["runuser", "-u", user, "--", *command]


def start(folder: Path) -> dict:
    if (folder / "state.json").exists():
        raise SystemExit(f"Error: a stack already runs from {folder} (state.json); stop it first: "
                         f"python scripts/stack.py stop --dir {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o711)  # others may pass through (the postgres user to its data folder), not list or read
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(18)
    aws = {"AWS_ACCESS_KEY_ID": "atlas-stack", "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(24),
           "AWS_DEFAULT_REGION": "us-east-1"}
    state: dict = {"folder": str(folder), "pids": {}}
    try:
        pg_port = _postgres(folder, password, state)
        s3_port = _moto(folder, logs, aws, state)
        s3 = f"http://127.0.0.1:{s3_port}"
        db = f"postgresql+psycopg://atlas:{password}@127.0.0.1:{pg_port}"
        mlflow_port = _mlflow(logs, f"{db}/mlflow", s3, aws, state)
        redis_port = _redis(folder, state)
        ray_port = _ray(folder, logs, {**aws, "MLFLOW_S3_ENDPOINT_URL": s3}, state)
    except BaseException:
        _write_state(folder, state)
        stop(folder)
        raise
    settings = {
        "ATLAS_HOME": str(folder / "home"),
        "ATLAS_STORE_URL": f"{db}/market",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "ATLAS_OPTUNA_STORAGE": f"{db}/optuna",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ATLAS_RAY_ADDRESS": f"127.0.0.1:{ray_port}",
        "MLFLOW_S3_ENDPOINT_URL": s3,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(folder / "ray_token"),
        **aws,
    }
    env_file = folder / "stack.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    env_file.chmod(0o600)
    public = {k: v.replace(password, "***") for k, v in settings.items() if not k.startswith("AWS_SECRET")}
    (folder / "atlas.toml").write_text(
        "# The stack's settings without passwords; stack.env has them all.\n"
        f'home = "{public["ATLAS_HOME"]}"\n[store]\nurl = "{public["ATLAS_STORE_URL"]}"\n'
        f'[tracking]\nmlflow_uri = "{public["MLFLOW_TRACKING_URI"]}"\n'
        f'optuna_storage = "{public["ATLAS_OPTUNA_STORAGE"]}"\n'
        f's3_endpoint_url = "{s3}"\n[serving]\nredis_url = "{public["REDIS_URL"]}"\n'
        f'[compute]\nray_address = "{public["ATLAS_RAY_ADDRESS"]}"\n')
    state["settings"] = {k: v for k, v in settings.items() if k != "AWS_SECRET_ACCESS_KEY"}
    _write_state(folder, state)
    return settings


def _write_state(folder: Path, state: dict) -> None:
    path = folder / "state.json"
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)


def _postgres(folder: Path, password: str, state: dict) -> int:
    bin_dir, port = postgres_bin(), free_port()
    # as root the server runs as postgres, which must reach its folder: one of its own under /tmp, not under a
    # folder only root may enter (pytest's, a home's)
    data = Path(tempfile.mkdtemp(prefix="atlas-stack-pg-")) if os.geteuid() == 0 else folder / "pg"
    data.mkdir(exist_ok=True)
    state["postgres"] = {"folder": str(data)}
    pwfile = data / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        user = as_postgres("x")[2]
        shutil.chown(data, user=user)
        shutil.chown(pwfile, user=user)
    data.chmod(0o700)
    _run(as_postgres(str(bin_dir / "initdb"), "-D", str(data / "data"), "-U", "atlas", "-A", "scram-sha-256",
                     f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"), "initdb")
    pwfile.unlink()
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    state["postgres"].update({"data": str(data / "data"), "bin": str(bin_dir), "port": port})
    _run(as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data / "data"), "-o", options, "-l", str(data / "log"),
                     "-w", "start"), "pg_ctl start")
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="atlas", password=password, dbname="postgres",
                         autocommit=True) as conn:
        for name in ("market", "mlflow", "optuna"):
            conn.execute(f'CREATE DATABASE "{name}"')
    return port


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"Error: {what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")


def _moto(folder: Path, logs: Path, aws: dict, state: dict) -> int:
    """moto's S3 server with the stack's bucket. It does not check signatures: moto's check, once switched on,
    fails the presigned URLs through which MLflow's client downloads proxied artifacts (a KeyError on the missing
    Authorization header). The tests of wrong keys use a moto of their own with the check on
    (tests/team/_s3.py)."""
    port = free_port()
    process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=open(logs / "s3.log", "w"), stderr=subprocess.STDOUT,
                               env={**os.environ, **aws}, start_new_session=True)
    state["pids"]["s3"] = process.pid
    wait_for(port, "the S3 endpoint (moto_server)", process=process)
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
                 region_name=aws["AWS_DEFAULT_REGION"]).create_bucket(Bucket=BUCKET)
    return port


def _mlflow(logs: Path, backend: str, s3: str, aws: dict, state: dict, port: int | None = None) -> int:
    port = port or free_port()
    process = mlflow_server(backend, s3, aws, port, logs / "mlflow.log")
    state["pids"]["mlflow"] = process.pid
    return port


def mlflow_server(backend: str, s3: str, aws: dict, port: int, log: Path) -> subprocess.Popen:
    """``mlflow server`` on ``backend`` with its artifacts in the stack's bucket through its proxy, signed with
    ``aws``'s key; returns once its API answers."""
    with open(log, "a") as out:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", backend, "--artifacts-destination",
             f"s3://{BUCKET}/mlflow", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **aws, "MLFLOW_S3_ENDPOINT_URL": s3})
    wait_for(port, "mlflow server", seconds=120, process=process)
    _wait_for_api(f"http://127.0.0.1:{port}", process)
    return process


def restart_mlflow(folder: Path, down_seconds: float = 0.0) -> None:
    """Kills the stack's MLflow server at once (SIGKILL: a crash, requests in flight cut), waits ``down_seconds``,
    and starts it again on the same port and database."""
    state = json.loads((folder / "state.json").read_text())
    settings = dict(line.split("=", 1) for line in (folder / "stack.env").read_text().splitlines() if "=" in line)
    pid = state["pids"]["mlflow"]
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _wait_gone(pid)
    time.sleep(down_seconds)
    port = int(settings["MLFLOW_TRACKING_URI"].rsplit(":", 1)[1])
    backend = settings["ATLAS_STORE_URL"].rsplit("/", 1)[0] + "/mlflow"
    aws = {k: v for k, v in settings.items() if k.startswith("AWS_")}
    process = mlflow_server(backend, settings["MLFLOW_S3_ENDPOINT_URL"], aws, port, folder / "logs" / "mlflow.log")
    state["pids"]["mlflow"] = process.pid
    _write_state(folder, state)


def _wait_for_api(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    """The server is up once its API answers (its workers start, and migrate the database, after the port
    opens)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"Error: mlflow server exited with status {process.returncode}; see logs/mlflow.log")
        try:
            with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"Error: mlflow server at {url} did not answer its API within {seconds:.0f} s")


def _redis(folder: Path, state: dict) -> int:
    port = free_port()
    pidfile = folder / "redis.pid"
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(folder),
                    "--logfile", str(folder / "logs" / "redis.log")], check=True)
    wait_for(port, "redis-server")
    for _ in range(50):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.1)
    state["pids"]["redis"] = int(pidfile.read_text())
    return port


def _ray(folder: Path, logs: Path, env: dict, state: dict) -> int:
    """A head and a second node on this machine, one CPU each (so two cores are not oversubscribed), with Ray's
    token authentication; their session folder is the stack's own, so stop finds exactly their processes."""
    token = folder / "ray_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    temp = Path(f"/tmp/atlas-ray-{secrets.token_hex(4)}")  # short: Ray's socket paths must fit 107 characters
    state["ray"] = {"temp": str(temp)}
    port, client_port = free_port(), free_port()
    state["ray"]["client_port"] = client_port
    ray_env = {**os.environ, **env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    common = ["--num-cpus", "1", "--temp-dir", str(temp), "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    with open(logs / "ray.log", "w") as log:
        subprocess.run([str(BIN / "ray"), "start", "--head", "--port", str(port), "--include-dashboard=false",
                        "--ray-client-server-port", str(client_port), *common], check=True, env=ray_env, stdout=log, stderr=subprocess.STDOUT)
        subprocess.run([str(BIN / "ray"), "start", "--address", f"127.0.0.1:{port}", *common], check=True,
                       env=ray_env, stdout=log, stderr=subprocess.STDOUT)
    return port


def stop(folder: Path) -> list[str]:
    path = folder / "state.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    stopped = []
    ray = state.get("ray", {}).get("temp")
    if ray:
        _kill_ray(ray, str(folder / "ray_token"))
        shutil.rmtree(ray, ignore_errors=True)
        stopped.append("ray")
    for name, pid in state.get("pids", {}).items():
        try:
            os.killpg(pid, signal.SIGTERM) if name != "redis" else os.kill(pid, signal.SIGTERM)
            stopped.append(name)
        except (ProcessLookupError, PermissionError):
            pass
    pg = state.get("postgres")
    if pg and "data" in pg:
        subprocess.run(as_postgres(str(Path(pg["bin"]) / "pg_ctl"), "-D", pg["data"], "-m", "fast", "-w", "stop"),
                       capture_output=True)
        stopped.append("postgres")
    if pg and Path(pg["folder"]) != folder / "pg":
        shutil.rmtree(pg["folder"], ignore_errors=True)
    for pid in state.get("pids", {}).values():
        _wait_gone(pid)
    for name in ("stack.env", "atlas.toml", "ray_token"):  # settings of a stack that no longer runs
        (folder / name).unlink(missing_ok=True)
    path.unlink()
    return stopped


def ray_processes(temp: str, token: str | None) -> list[int]:
    """The processes of the stack's Ray: a command line naming its session folder, an environment naming its
    token file, or a file open in its session folder (Ray's agents rename themselves ``ray::DashboardAgent`` and
    overwrite their environment, but keep their logs open there)."""
    marker = f"RAY_AUTH_TOKEN_PATH={token}".encode() if token else None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if temp.encode() in (entry / "cmdline").read_bytes() or (
                    marker is not None and marker in (entry / "environ").read_bytes()):
                found.append(int(entry.name))
                continue
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd).startswith(temp):
                    found.append(int(entry.name))
                    break
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _kill_ray(temp: str, token: str | None) -> None:
    """SIGTERM, then SIGKILL, every process of the stack's Ray (:func:`ray_processes`)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = ray_processes(temp, token)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _status(p)]
            time.sleep(0.2)
        if not pids:
            return


def _status(pid: int) -> str:
    try:
        return "zombie" if ") Z " in Path(f"/proc/{pid}/stat").read_text() else "running"
    except OSError:
        return "gone"


def _wait_gone(pid: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "restart-mlflow"])
    parser.add_argument("--dir", default=".atlas/stack", help="where the stack keeps its state [.atlas/stack]")
    args = parser.parse_args()
    folder = Path(args.dir).absolute()
    if args.action == "start":
        settings = start(folder)
        print(f"stack up: PostgreSQL, S3 ({settings['MLFLOW_S3_ENDPOINT_URL']}), MLflow "
              f"({settings['MLFLOW_TRACKING_URI']}), Redis ({settings['REDIS_URL']}), Ray with two nodes "
              f"({settings['ATLAS_RAY_ADDRESS']})")
        client = json.loads((folder / "state.json").read_text())["ray"]["client_port"]
        print(f"use it: set -a; . {folder / 'stack.env'}; set +a   (then `atlas doctor`)")
        print(f"a driver outside the cluster: ATLAS_RAY_ADDRESS=ray://127.0.0.1:{client} (Ray Client)")
    elif args.action == "restart-mlflow":
        restart_mlflow(folder)
        print("mlflow server restarted")
    else:
        stopped = stop(folder)
        print(f"stopped {', '.join(stopped)}" if stopped else f"no stack runs from {folder}")


if __name__ == "__main__":
    main()
