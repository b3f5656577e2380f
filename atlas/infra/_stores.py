"""Before a sweep opens anything: every location it needs answers, and its stores exist.

:func:`preflight` tries a short TCP connection to each network location a sweep uses (a Ray cluster, an MLflow
tracking server, an Optuna database server), so a wrong or unreachable address fails in seconds with the
setting's name, instead of hanging in a client's retries (``ray.init`` waits for minutes). :func:`initialize_stores`
creates the MLflow tables, the Optuna tables and the lease table once, holding a lock file in ATLAS_HOME, so two
sweeps started at once on a fresh home do not both migrate the same SQLite files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from atlas.config import Settings, mask_text, mask_url
from atlas.exceptions import ConfigError
from atlas.runs._probe import host_port, probe_tracking, reach


def probe_ray(address: str | None) -> None:
    """Checks that a Ray cluster's address answers: the GCS port of ``host:port`` (6379 when left out), the
    client port of ``ray://host:port`` (10001). Nothing to check for a local Ray or ``auto``.

    Raises:
        ConfigError: the address is malformed or nothing answers there.
    """
    if not address or address in ("auto", "local"):
        return
    url = address if "://" in address else f"gcs://{address}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (10001 if parts.scheme == "ray" else 6379)
    except ValueError:
        host = port = None
    why = reach(host, port) if host else "it is not host:port or ray://host:port"
    if why is not None:
        msg = (f"cannot reach the Ray cluster at {mask_url(address)!r} (ATLAS_RAY_ADDRESS or --address): "
               f"{mask_text(why)}. Give the head node's host:port (e.g. 10.0.0.5:6379) or ray://host:10001 of a "
               "running cluster (`ray start --head`), or unset ATLAS_RAY_ADDRESS and leave out --address to run "
               "on a local Ray")
        raise ConfigError(msg)


def probe_optuna(storage: str) -> None:
    """Checks that the Optuna storage's database server answers (nothing to check for SQLite).

    Raises:
        ConfigError: nothing answers at its host and port.
    """
    target = host_port(storage)
    why = reach(*target) if target else None
    if why is not None:
        msg = (f"cannot reach the Optuna storage {mask_url(storage)} (ATLAS_OPTUNA_STORAGE): {mask_text(why)}; "
               "start the database, point ATLAS_OPTUNA_STORAGE at a running one, or unset it to use a SQLite file "
               "under ATLAS_HOME")
        raise ConfigError(msg)


def preflight(settings: Settings, address: str | None) -> None:
    """Probes every network location a sweep will use, before anything starts.

    Raises:
        ConfigError: one of them does not answer; the message names its setting.
    """
    probe_tracking(settings.tracking.mlflow_uri)
    probe_optuna(settings.tracking.optuna_storage)
    probe_artifacts(settings.tracking.artifact_root, settings.tracking.s3_endpoint_url)
    if not settings.tracking.artifact_root:
        probe_proxy(settings.tracking.mlflow_uri)
    probe_ray(address)


def probe_proxy(uri: str) -> None:
    """Checks that a tracking server (``http(s)://``) can store artifacts, when Atlas leaves them to it: one try,
    so a server whose own S3 credentials are wrong fails the sweep at once, not after minutes of the MLflow
    client's retries at its first artifact.

    Raises:
        ConfigError: the server answers its artifact proxy with an error; the message gives the server's.
    """
    from atlas.infra._doctor import FAIL, PROXY_FIX, is_server, proxy

    if not is_server(uri):
        return

    status, detail = proxy(uri)
    if status == FAIL:
        msg = f"{mask_text(detail)} at {mask_url(uri)} (MLFLOW_TRACKING_URI); fix {PROXY_FIX}"
        raise ConfigError(msg)


def probe_artifacts(root: str | None, endpoint: str | None) -> None:
    """Checks that an ``s3://`` artifact root is reachable and writable with the credentials at hand: one try
    each, a few seconds, instead of boto3's retries (a wrong key fails at once, not after minutes of backoff).

    Raises:
        ConfigError: the endpoint does not answer, the bucket is missing, or the credentials are refused.
    """
    if not root or not root.startswith("s3://"):
        return
    from atlas.infra._doctor import FAIL, _s3

    status, detail = _s3(root, endpoint)
    if status == FAIL:
        msg = (f"the artifact root {mask_url(root)} (ATLAS_ARTIFACT_ROOT) cannot be written: {mask_text(detail)}; "
               f"fix it, or unset ATLAS_ARTIFACT_ROOT to keep artifacts where the tracking server says")
        raise ConfigError(msg)


@contextmanager
def file_lock(path: Path, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Holds an exclusive lock on the file ``path`` (fcntl) across processes; ``on_wait(path)`` is called when
    another process holds it, before waiting. Where fcntl is missing (Windows) no lock is taken."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def initialize_stores(settings: Settings, *, on_wait: Callable[[Path], None] | None = None) -> None:
    """Creates or migrates the MLflow tracking store (a database, not a server), the Optuna storage and the lease
    table, one process at a time (the lock file ``ATLAS_HOME/stores.lock``); a second call finds them ready.

    Raises:
        ConfigError: a store cannot be opened; the message names its setting.
    """
    from atlas.infra._lease import create_lease_table
    from atlas.infra._search import check_storage

    uri, storage = settings.tracking.mlflow_uri, settings.tracking.optuna_storage
    with file_lock(settings.home / "stores.lock", on_wait):
        check_storage(storage)
        create_lease_table(storage)
        if urlsplit(uri).scheme.lower() not in ("http", "https", "databricks"):
            from mlflow.tracking import MlflowClient

            try:
                MlflowClient(uri).search_experiments(max_results=1)
            except Exception as error:  # noqa: BLE001 - any failure to open it; the cause, masked, is in the message
                msg = (f"cannot open the MLflow tracking store {mask_url(uri)} (MLFLOW_TRACKING_URI): "
                       f"{mask_text(str(error))}")
                raise ConfigError(msg) from None
