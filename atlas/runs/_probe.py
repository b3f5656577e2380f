"""Is a network location there? A short TCP probe, so a wrong or unreachable address fails in seconds with the
setting's name instead of hanging in a client's retries (MLflow retries for minutes, ``ray.init`` waits)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError

#: How long a probe waits for a TCP connection.
PROBE_SECONDS = 5.0
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433, "ray": 10001}


def reach(host: str, port: int) -> str | None:
    """None when ``host:port`` accepts a TCP connection within PROBE_SECONDS, else why not."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_SECONDS):
            return None
    except TimeoutError:
        return f"no answer from {host}:{port} within {PROBE_SECONDS:.0f} s"
    except OSError as error:
        return f"{host}:{port}: {error.strerror or error}"


def host_port(url: str) -> tuple[str, int] | None:
    """The host and port of a network URL (its scheme's default port when none is given), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.split("+")[0].lower()
    if not parts.hostname or (port is None and scheme not in _DEFAULT_PORTS):
        return None
    return parts.hostname, port or _DEFAULT_PORTS[scheme]


def probe_tracking(uri: str) -> None:
    """Checks that an MLflow tracking server (``http(s)://``) or a tracking database server answers.

    Raises:
        ConfigError: nothing answers at its host and port.
    """
    target = host_port(uri)
    why = reach(*target) if target else None
    if why is not None:
        msg = (f"cannot reach the MLflow tracking store {mask_url(uri)} (MLFLOW_TRACKING_URI): {mask_text(why)}; "
               "start it (mlflow server ...), point MLFLOW_TRACKING_URI at a running one, or unset it to record "
               "in a SQLite file under ATLAS_HOME")
        raise ConfigError(msg)
