"""One Settings object: where the market store, MLflow, Optuna, Redis and Ray live.

Every location is read from an environment variable (``ATLAS_*``, or MLflow's and Redis's own where they exist)
and has an embedded default under ``.atlas/`` in the working folder, so a fresh checkout runs with nothing set.

Example:
    >>> from atlas.config import Settings
    >>> settings = Settings.from_env({"ATLAS_HOME": "/tmp/atlas-example"})
    >>> settings.store.url
    'sqlite:////tmp/atlas-example/market.db'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: What a masked password reads as.
MASK = "***"


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
        artifact_root: where MLflow stores artifacts (``ATLAS_ARTIFACT_ROOT``).
        optuna_storage: Optuna storage URL (``ATLAS_OPTUNA_STORAGE``).
    """

    mlflow_uri: str
    artifact_root: str
    optuna_storage: str


@dataclass(frozen=True)
class ServingSettings:
    """Where predictions go: Redis (``REDIS_URL``)."""

    redis_url: str = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class ComputeSettings:
    """Where trials run: an existing Ray cluster (``ATLAS_RAY_ADDRESS``), or a local one when unset."""

    ray_address: str | None = None


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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads the settings from ``environ`` (the process environment by default).

        Args:
            environ: the variables to read; pass a dict in tests instead of changing ``os.environ``.

        Returns:
            The settings, with every unset location pointing under ``home``.
        """
        env = os.environ if environ is None else environ
        home = Path(env.get("ATLAS_HOME") or ".atlas").absolute()
        venues = tuple(v.strip().lower() for v in env.get("ATLAS_EXTRA_VENUES", "").split(",") if v.strip())
        return cls(
            home=home,
            store=StoreSettings(
                url=env.get("ATLAS_STORE_URL") or f"sqlite:///{home / 'market.db'}",
                gds_url=env.get("ATLAS_GDS_URL") or None,
                extra_venues=venues,
            ),
            tracking=TrackingSettings(
                mlflow_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
                artifact_root=env.get("ATLAS_ARTIFACT_ROOT") or str(home / "artifacts"),
                optuna_storage=env.get("ATLAS_OPTUNA_STORAGE") or f"sqlite:///{home / 'optuna.db'}",
            ),
            serving=ServingSettings(redis_url=env.get("REDIS_URL") or ServingSettings.redis_url),
            compute=ComputeSettings(ray_address=env.get("ATLAS_RAY_ADDRESS") or None),
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
