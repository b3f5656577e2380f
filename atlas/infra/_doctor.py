"""``atlas doctor``: every configured part checked (reachable, writable, versions), one line each.

Each check is short (a TCP probe of :data:`~atlas.runs._probe.PROBE_SECONDS` first, so nothing hangs in a client's
retries), writes nothing that stays (a probe key expires, a probe object is deleted, a transaction is rolled back)
and, when it fails, names the setting to fix.
"""

from __future__ import annotations

import importlib.metadata
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from atlas.config import Settings, mask_text, mask_url
from atlas.runs._probe import host_port, reach

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    """One part's state.

    Attributes:
        part: what was checked (``"store"``, ``"tracking"``, ...).
        status: ``"ok"``, ``"warn"`` (works, but worth knowing) or ``"FAIL"``.
        target: where it is, its password masked.
        detail: versions and what was found, or why it failed.
        setting: the setting that points at it (``ATLAS_STORE_URL``), and where it came from.
    """

    part: str
    status: str
    target: str
    detail: str
    setting: str

    def line(self) -> str:
        fix = f"; set {self.setting}" if self.status == FAIL else f" [{self.setting}]" if self.setting else ""
        return f"{self.status:<4} {self.part:<10} {self.target}: {self.detail}{fix}"


def diagnose(settings: Settings) -> list[Check]:
    """Checks the store, a GDS database read in place, MLflow tracking, the artifact root, Optuna's storage, Redis
    and the Ray cluster of ``settings``, and lists the versions of the libraries that must agree across machines."""
    origin = settings.origins or {}

    def named(variable: str) -> str:
        where = origin.get(variable, "default")
        return variable if where in ("environment", "default") else f"{variable} in {where}"

    parts: list[tuple[str, str, str | None, Callable[[str], tuple[str, str]]]] = [
        ("store", "ATLAS_STORE_URL", settings.store.url, _database("the market store", "atlas data simulate")),
        ("gds", "ATLAS_GDS_URL", settings.store.gds_url, _database("the GDS database", None, read_only=True)),
        ("tracking", "MLFLOW_TRACKING_URI", settings.tracking.mlflow_uri, _tracking),
        ("artifacts", "ATLAS_ARTIFACT_ROOT", settings.tracking.artifact_root,
         lambda root: _artifacts(root, settings.tracking.s3_endpoint_url)),
        ("optuna", "ATLAS_OPTUNA_STORAGE", settings.tracking.optuna_storage,
         _database("Optuna's storage", "atlas train")),
        ("redis", "REDIS_URL", settings.serving.redis_url, _redis),
        ("ray", "ATLAS_RAY_ADDRESS", settings.compute.ray_address, _ray),
    ]
    checks = []
    for part, variable, target, check in parts:
        if not target and part == "artifacts" and is_server(settings.tracking.mlflow_uri):
            status, detail = proxy(settings.tracking.mlflow_uri)
            checks.append(Check(part, status, "unset", detail, named(variable) if status != FAIL else PROXY_FIX))
            continue
        if not target:
            checks.append(Check(part, OK, "unset", _UNSET[part], named(variable)))
            continue
        try:
            status, detail = check(target)
        except Exception as error:  # noqa: BLE001 (a probe's failure is its line, whatever the client raised)
            status, detail = FAIL, f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"
        checks.append(Check(part, status, mask_url(target), mask_text(detail), named(variable)))
    checks.append(Check("versions", OK, "this machine", versions(), ""))
    return checks


_UNSET = {"gds": "market tables live in the store", "ray": "trials run on a Ray started on this machine",
          "artifacts": "kept by the tracking server (its artifact proxy, or its default root)",
          "store": "", "tracking": "", "optuna": "", "redis": ""}
#: Libraries whose versions must agree on every machine of a cluster (the driver's and the workers').
VERSIONED = ("gryphon-atlas", "mlflow", "ray", "optuna", "tensorflow", "keras", "pandas", "numpy", "sqlalchemy",
             "redis", "boto3")


def versions() -> str:
    """``python 3.11.9, mlflow 3.17.2, ray 2.60.0, ...``: what this machine runs."""
    import platform

    found = [f"python {platform.python_version()}"]
    for name in VERSIONED:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _unreachable(url: str) -> str | None:
    target = host_port(url)
    return reach(*target) if target else None


def _database(what: str, maker: str | None, *, read_only: bool = False) -> Callable[[str], tuple[str, str]]:
    def check(url: str) -> tuple[str, str]:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        why = _unreachable(url)
        if why is not None:
            return FAIL, f"unreachable ({why})"
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite"):
            path = Path(parsed.database or "")
            if not parsed.database or parsed.database == ":memory:":
                return WARN, f"SQLite in memory: {what} is lost when the process ends"
            if not path.exists():
                folder = next((p for p in path.parents if p.exists()), Path("/"))
                if not os.access(folder, os.W_OK):
                    return FAIL, f"{path} does not exist and {folder} cannot be written"
                made = f": `{maker}` makes it" if maker else ""
                return (WARN if maker else FAIL), f"SQLite file {path} not created yet{made}"
            if not os.access(path, os.R_OK):
                return FAIL, f"SQLite file {path} cannot be read"
            writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
            import sqlite3

            version = f"SQLite {sqlite3.sqlite_version}"
            if read_only:
                return OK, f"{version}, read in place"
            return (OK, f"{version}, writable") if writable else (FAIL, f"{version}, {path} is read-only")
        engine = create_engine(url, connect_args=_timeout(parsed.drivername))
        try:
            with engine.connect() as conn:
                info = engine.dialect.server_version_info or ()
                version = f"{engine.dialect.name} {'.'.join(str(v) for v in info)}".strip()
                if read_only:
                    return OK, f"{version}, reachable (read in place)"
                if engine.dialect.name == "postgresql":
                    replica = conn.execute(text("SELECT pg_is_in_recovery()")).scalar()
                    create = conn.execute(text(
                        "SELECT has_database_privilege(current_user, current_database(), 'CREATE')")).scalar()
                    if replica:
                        return FAIL, f"{version}, a read-only replica"
                    return (OK, f"{version}, writable") if create else \
                        (WARN, f"{version}, reachable; this user cannot create tables (they must exist)")
                return OK, f"{version}, reachable"
        finally:
            engine.dispose()
    return check


def _timeout(driver: str) -> dict:
    return {"connect_timeout": 5} if driver.startswith(("postgresql", "mysql")) else {}


def _tracking(uri: str) -> tuple[str, str]:
    if uri.startswith(("http://", "https://")):
        import json
        import urllib.request

        why = _unreachable(uri)
        if why is not None:
            return FAIL, f"unreachable ({why})"
        base = uri.rstrip("/")
        with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
            health = answer.read().decode(errors="replace").strip()
        try:
            with urllib.request.urlopen(f"{base}/version", timeout=5) as answer:
                version = answer.read().decode(errors="replace").strip()
        except OSError:
            version = "?"
        try:
            with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/search?max_results=1",
                                        timeout=15) as answer:
                json.loads(answer.read() or b"{}")
        except OSError as error:
            return FAIL, f"MLflow server {version} answers /health but not its API ({error})"
        return OK, f"MLflow server {version}, {health or 'healthy'}"
    return _database("the tracking store", "atlas train")(uri)


#: What to fix when the tracking server cannot store artifacts: its own settings, or Atlas's artifact root.
PROXY_FIX = ("the tracking server's artifact store (its AWS_* credentials, its --artifacts-destination), or "
             "ATLAS_ARTIFACT_ROOT to write artifacts directly")


def is_server(uri: str) -> bool:
    """Whether ``uri`` is a tracking server (``http(s)://``), not a database."""
    return uri.startswith(("http://", "https://"))


def proxy(uri: str) -> tuple[str, str]:
    """Whether the tracking server at ``uri`` stores artifacts through its proxy: a small object written and
    deleted there, one try each (MLflow's client retries a server error for minutes: a server whose S3
    credentials are wrong would hold a sweep that long at its first artifact)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    why = _unreachable(uri)
    if why is not None:
        return FAIL, f"the tracking server is unreachable ({why})"
    creds = get_default_host_creds(uri)
    path = f"/api/2.0/mlflow-artifacts/artifacts/.atlas-doctor/{uuid.uuid4().hex}"
    try:
        answer = http_request(creds, path, "PUT", data=b"atlas doctor", max_retries=0, timeout=30,
                              raise_on_status=False)
    except Exception as error:  # noqa: BLE001 - no answer at all: the line says why
        return FAIL, f"the tracking server's artifact proxy did not answer ({type(error).__name__}: {error})"
    if answer.status_code == 503 and "no-serve-artifacts" in answer.text:
        return OK, "kept by the tracking server (it does not proxy them: each experiment's location decides)"
    if answer.status_code != 200:
        return FAIL, (f"the tracking server cannot store artifacts (HTTP {answer.status_code}: "
                      f"{_server_error(answer.text)})")
    http_request(creds, path, "DELETE", max_retries=0, timeout=30, raise_on_status=False)
    return OK, "kept by the tracking server through its artifact proxy, writable"


def _server_error(text: str) -> str:
    """The message of an MLflow server's error answer (its JSON ``message``), on one line, shortened."""
    import json

    try:
        text = json.loads(text).get("message", text)
    except (ValueError, AttributeError):
        pass
    text = " ".join(str(text).split())[:300]
    return f"{text}; the server's log says why" if text.lower() in ("", "internal server error") else text


def _artifacts(root: str, endpoint: str | None) -> tuple[str, str]:
    if root.startswith("s3://"):
        return _s3(root, endpoint)
    if "://" in root and not root.startswith("file://"):
        return OK, "served by the tracking server (checked with it)"
    path = Path(root.removeprefix("file://"))
    folder = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    if not os.access(folder, os.W_OK):
        return FAIL, f"{folder} cannot be written"
    return OK, "local folder, writable" if path.exists() else f"local folder, made under {folder} when needed"


def _s3(root: str, endpoint: str | None) -> tuple[str, str]:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return FAIL, "s3:// artifacts need boto3: pip install -e '.[s3]'"
    if endpoint:
        why = _unreachable(endpoint)
        if why is not None:
            return FAIL, f"the S3 endpoint {endpoint} is unreachable ({why}); check MLFLOW_S3_ENDPOINT_URL"
    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=Config(  # credentials read now
        connect_timeout=5, read_timeout=5, retries={"max_attempts": 1}))
    key = f"{prefix.strip('/')}/.atlas-doctor-{uuid.uuid4().hex}".lstrip("/")
    try:
        client.put_object(  # first: its error names the cause (a HEAD's has no body to say it)
            Bucket=bucket, Key=key, Body=b"atlas doctor")
        client.delete_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "?")
        why = {"403": "access denied: check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
                      "~/.aws/credentials)", "404": f"no bucket {bucket!r}",
               "NoSuchBucket": f"no bucket {bucket!r}", "InvalidAccessKeyId": "the access key is not known",
               "SignatureDoesNotMatch": "the secret key is wrong"}.get(code, f"S3 error {code}")
        return FAIL, why
    except BotoCoreError as error:
        return FAIL, f"{type(error).__name__}: {error}"
    where = f" at {endpoint}" if endpoint else ""
    return OK, f"bucket {bucket}{where}, writable"


def _redis(url: str) -> tuple[str, str]:
    import redis as redis_py

    why = _unreachable(url if "://" in url else f"redis://{url}") if url.startswith("redis") else None
    if why is not None:
        return FAIL, f"unreachable ({why})"
    client = redis_py.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        version = client.info("server").get("redis_version", "?")
        key = f"atlas:doctor:{uuid.uuid4().hex}"
        client.set(key, "1", ex=10)
        client.delete(key)
    except redis_py.exceptions.ReadOnlyError:
        return FAIL, "a read-only replica: predictions cannot be written"
    except redis_py.exceptions.RedisError as error:
        return FAIL, f"{type(error).__name__}: {error}"
    finally:
        client.close()
    return OK, f"Redis {version}, writable"


def _ray(address: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    if address in ("auto", "local"):
        return OK, f"{address}: the Ray of this machine"
    url = address if "://" in address else f"gcs://{address}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (10001 if parts.scheme == "ray" else 6379)
    except ValueError:
        return FAIL, "not host:port (the head's GCS) nor ray://host:port (Ray Client)"
    why = reach(host, port) if host else "no host"
    if why is not None:
        return FAIL, f"unreachable ({why}); start the head with `ray start --head`"
    return OK, f"answers (this machine runs ray {importlib.metadata.version('ray')}; every node must too)"
