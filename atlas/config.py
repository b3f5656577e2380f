"""One Settings object: where the market store, MLflow, Optuna, Redis and Ray live.

Every location is read from an environment variable (``ATLAS_*``, or MLflow's and Redis's own where they exist)
or from one config file, and has an embedded default under ``.atlas/`` in the working folder, so a fresh checkout
runs with nothing set. The environment wins over the file; the file wins over the defaults.

The config file is ``ATLAS_CONFIG`` if set, else ``atlas.toml`` in the working folder, else the ``[tool.atlas]``
table of ``pyproject.toml`` there. Its tables mirror :class:`Settings` (see :data:`CONFIG_KEYS`)::

    home = "/srv/atlas"                                   # ATLAS_HOME
    [store]
    url = "postgresql+psycopg://atlas@db.internal/market"  # ATLAS_STORE_URL
    extra_venues = ["cme"]                                # ATLAS_EXTRA_VENUES
    [tracking]
    mlflow_uri = "http://mlflow.internal:5000"            # MLFLOW_TRACKING_URI
    optuna_storage = "postgresql+psycopg://atlas@db.internal/optuna"
    [compute]
    ray_address = "ray-head.internal:6379"                # ATLAS_RAY_ADDRESS

Keep passwords out of it: give them in the environment (a URL there replaces the file's whole URL), or in the
database's and AWS's own credential files.

Example:
    >>> from atlas.config import Settings
    >>> settings = Settings.from_env({"ATLAS_HOME": "/tmp/atlas-example"})
    >>> settings.store.url
    'sqlite:////tmp/atlas-example/market.db'
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: What a masked password reads as.
MASK = "***"

#: The config file's keys (``table.key``) and the environment variable each stands for.
CONFIG_KEYS: dict[str, str] = {
    "home": "ATLAS_HOME",
    "store.url": "ATLAS_STORE_URL",
    "store.gds_url": "ATLAS_GDS_URL",
    "store.extra_venues": "ATLAS_EXTRA_VENUES",
    "tracking.mlflow_uri": "MLFLOW_TRACKING_URI",
    "tracking.artifact_root": "ATLAS_ARTIFACT_ROOT",
    "tracking.optuna_storage": "ATLAS_OPTUNA_STORAGE",
    "tracking.s3_endpoint_url": "MLFLOW_S3_ENDPOINT_URL",
    "serving.redis_url": "REDIS_URL",
    "compute.ray_address": "ATLAS_RAY_ADDRESS",
}


@dataclass(frozen=True)
class StoreSettings:
    """Where market data lives.

    Attributes:
        url: SQLAlchemy URL of the Atlas store (``ATLAS_STORE_URL``): market tables and metric series.
        gds_url: URL of a Gryphon Data Service database whose market tables are read in place
            (``ATLAS_GDS_URL``); metric series are still written to ``url``.
        extra_venues: venue names accepted beside the built-in ones (``ATLAS_EXTRA_VENUES``, comma separated).
    """

    url: str
    gds_url: str | None = None
    extra_venues: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrackingSettings:
    """Where experiments are recorded.

    Attributes:
        mlflow_uri: MLflow tracking URI (``MLFLOW_TRACKING_URI``); SQLite under ``.atlas/`` by default.
        artifact_root: where new experiments keep their artifacts (``ATLAS_ARTIFACT_ROOT``): a folder, or
            ``s3://bucket/prefix`` written directly through boto3; None leaves it to the tracking server (its
            artifact proxy, or its default root), which is the default when ``mlflow_uri`` is a server.
        optuna_storage: Optuna storage URL (``ATLAS_OPTUNA_STORAGE``).
        s3_endpoint_url: an S3 endpoint other than AWS's for ``s3://`` artifacts (``MLFLOW_S3_ENDPOINT_URL``:
            MinIO, moto, Ceph), None for AWS.
    """

    mlflow_uri: str
    artifact_root: str | None
    optuna_storage: str
    s3_endpoint_url: str | None = None


@dataclass(frozen=True)
class ServingSettings:
    """Where predictions go: Redis (``REDIS_URL``)."""

    redis_url: str = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class ComputeSettings:
    """Where trials run: an existing Ray cluster (``ATLAS_RAY_ADDRESS``), or a local one when unset."""

    ray_address: str | None = None


def read_config(path: str | Path) -> dict[str, str]:
    """A config file's settings, as the environment variables they stand for (see :data:`CONFIG_KEYS`).

    A ``pyproject.toml`` is read from its ``[tool.atlas]`` table (none: no settings). A relative ``home`` is
    taken from the file's folder.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "atlas.toml").write_text('[store]\\nextra_venues = ["cme", "oanda"]\\n')
        >>> read_config(folder / "atlas.toml")
        {'ATLAS_EXTRA_VENUES': 'cme,oanda'}

    Raises:
        ConfigError: the file is missing or is not TOML, or it holds a key Atlas does not know or a value of the
            wrong type; the message names the file and the key.
    """
    from atlas.exceptions import ConfigError

    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no config file at {str(path)!r} (ATLAS_CONFIG); give the path of an atlas.toml") \
            from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"the config file {str(path)!r} cannot be read as TOML: {error}") from None
    if path.name == "pyproject.toml":
        document = document.get("tool", {}).get("atlas", {})
    found: dict[str, str] = {}
    _flatten(document, "", path, found)
    if "ATLAS_HOME" in found and not Path(found["ATLAS_HOME"]).is_absolute():
        found["ATLAS_HOME"] = str((path.parent / found["ATLAS_HOME"]).resolve())
    return found


def _flatten(table: Mapping, prefix: str, path: Path, found: dict[str, str]) -> None:
    from atlas.exceptions import ConfigError

    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", path, found)
            continue
        if name not in CONFIG_KEYS:
            msg = (f"the config file {str(path)!r} sets {name!r}, which Atlas does not know; it knows "
                   f"{', '.join(CONFIG_KEYS)}")
            raise ConfigError(msg)
        if name == "store.extra_venues" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str):
            msg = (f"the config file {str(path)!r} sets {name} to {value!r}; give text, e.g. {name.split('.')[-1]} "
                   f"= \"...\"" + (" (or a list of names)" if name == "store.extra_venues" else ""))
            raise ConfigError(msg)
        found[CONFIG_KEYS[name]] = value


def find_config(environ: Mapping[str, str], folder: Path) -> Path | None:
    """The config file in force: ``ATLAS_CONFIG``, else ``atlas.toml``, else a ``pyproject.toml`` with a
    ``[tool.atlas]`` table, in ``folder``; None when there is none."""
    if environ.get("ATLAS_CONFIG"):
        return Path(environ["ATLAS_CONFIG"]).absolute()
    if (folder / "atlas.toml").is_file():
        return folder / "atlas.toml"
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            if "atlas" in tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}):
                return pyproject
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None  # not ours to judge: a broken pyproject.toml is the project's build's business
    return None


@dataclass(frozen=True)
class Settings:
    """All of Atlas's locations, grouped by concern.

    Attributes:
        home: the folder holding the embedded defaults (``ATLAS_HOME``, default ``./.atlas``).
        store: the market store.
        tracking: MLflow and Optuna.
        serving: Redis.
        compute: Ray.
    """

    home: Path
    store: StoreSettings
    tracking: TrackingSettings
    serving: ServingSettings
    compute: ComputeSettings
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, folder: str | Path | None = None) -> Settings:
        """Reads the settings from ``environ`` (the process environment by default) over the config file.

        Args:
            environ: the variables to read; pass a dict in tests instead of changing ``os.environ``. A dict reads
                no config file unless it names one (``ATLAS_CONFIG``) or ``folder`` is given, so tests do not
                depend on the folder they run in.
            folder: where to look for ``atlas.toml`` or ``pyproject.toml`` (the working folder for the process
                environment).

        Returns:
            The settings, with every unset location pointing under ``home``; ``origins`` says where each
            variable of :data:`CONFIG_KEYS` came from (``"environment"``, the config file's path, or
            ``"default"``).

        Raises:
            ConfigError: the config file cannot be read, or holds an unknown key.
        """
        given = os.environ if environ is None else environ
        look = folder is not None or environ is None or bool(given.get("ATLAS_CONFIG"))
        config = find_config(given, Path(folder or ".").absolute()) if look else None
        from_file = read_config(config) if config is not None else {}
        env = {**from_file, **{k: v for k, v in given.items() if v != ""}}
        origins = {name: ("environment" if given.get(name) else str(config) if name in from_file else "default")
                   for name in CONFIG_KEYS.values()}
        home = Path(env.get("ATLAS_HOME") or ".atlas").absolute()
        venues = tuple(v.strip().lower() for v in env.get("ATLAS_EXTRA_VENUES", "").split(",") if v.strip())
        tracking = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        return cls(
            home=home,
            store=StoreSettings(
                url=env.get("ATLAS_STORE_URL") or f"sqlite:///{home / 'market.db'}",
                gds_url=env.get("ATLAS_GDS_URL") or None,
                extra_venues=venues,
            ),
            tracking=TrackingSettings(
                mlflow_uri=tracking,
                artifact_root=env.get("ATLAS_ARTIFACT_ROOT") or (
                    None if tracking.startswith(("http://", "https://")) else str(home / "artifacts")),
                optuna_storage=env.get("ATLAS_OPTUNA_STORAGE") or f"sqlite:///{home / 'optuna.db'}",
                s3_endpoint_url=env.get("MLFLOW_S3_ENDPOINT_URL") or None,
            ),
            serving=ServingSettings(redis_url=env.get("REDIS_URL") or ServingSettings.redis_url),
            compute=ComputeSettings(ray_address=env.get("ATLAS_RAY_ADDRESS") or None),
            origins=origins,
        )


def mask_url(url: str | None) -> str | None:
    """A URL fit to print or record: its password replaced by ``***`` (any scheme: databases, http, s3).

    Example:
        >>> mask_url("postgresql+psycopg://atlas:s3cret@db.example:5432/market")
        'postgresql+psycopg://atlas:***@db.example:5432/market'
        >>> mask_url("sqlite:///.atlas/market.db")
        'sqlite:///.atlas/market.db'
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    if parts.password is None:
        return mask_text(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_SECRET_IN_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"]*:)(?P<secret>[^@\s'\"/]+)(?=@)")
_SECRET_IN_QUERY = re.compile(r"(?i)(?P<head>\b(?:password|passwd|pwd|secret|token|aws_secret_access_key)=)"
                              r"(?P<secret>[^&\s'\"]+)")


def mask_text(text: str) -> str:
    """Text (an error message, a log line) with the password of every URL in it, and every ``password=...``
    query or connection-string value, replaced by ``***``.

    Example:
        >>> mask_text("connection to postgresql://atlas:s3cret@db/market failed; password=s3cret")
        'connection to postgresql://atlas:***@db/market failed; password=***'
    """
    text = _SECRET_IN_URL.sub(lambda m: m["head"] + MASK, text)
    return _SECRET_IN_QUERY.sub(lambda m: m["head"] + MASK, text)
