"""``model.json``: what every saved model writes beside its weights, and what loading it checks first.

Example:
    >>> import tempfile
    >>> from atlas.models import DataShape, make_model
    >>> model = make_model("no_change_regressor", {}, DataShape(n_features=2))
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_manifest(folder, model)
    >>> manifest = read_manifest(folder, expected="no_change_regressor")
    >>> manifest["kind"], manifest["shape"], manifest["format"]
    ('no_change_regressor', {'n_features': 2, 'n_classes': None, 'window': None}, 1)
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from atlas.exceptions import ConfigError

MANIFEST_FILE = "model.json"
#: The layout of ``model.json``; a reader refuses a newer one.
FORMAT = 1


def _atlas_version() -> str | None:
    try:
        return metadata.version("gryphon-atlas")
    except metadata.PackageNotFoundError:
        return None


def write_manifest(folder: Path, model, *, files: list[str] | None = None,
                   state: dict[str, Any] | None = None, versions: dict[str, str] | None = None) -> None:
    """Writes ``folder/model.json``: the model's kind, task, params and shape, its other files, its state."""
    manifest = {"format": FORMAT, "kind": model.kind, "task": model.task, "params": model.params,
                "shape": model.shape.to_dict(), "files": list(files or []), "state": state or {},
                "versions": {"atlas": _atlas_version(), **(versions or {})}}
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")


def read_manifest(folder: Path, *, expected: str | None = None) -> dict[str, Any]:
    """The manifest in ``folder``, checked: it exists, its format is known, and (``expected``) its kind.

    Raises:
        ConfigError: no ``model.json`` in the folder, an unreadable or newer one, or another kind of model.
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        msg = f"{folder} holds no saved model: {MANIFEST_FILE} is missing; save one with model.save(folder)"
        raise ConfigError(msg)
    try:
        manifest = json.loads(path.read_text())
    except ValueError as error:
        msg = f"{path} is not valid JSON ({error}); save the model again"
        raise ConfigError(msg) from None
    if not isinstance(manifest, dict) or not {"format", "kind", "params", "shape"} <= set(manifest):
        msg = f"{path} lacks format, kind, params or shape: it was not written by Atlas; save the model again"
        raise ConfigError(msg)
    if manifest["format"] > FORMAT:
        msg = (f"{path} has format {manifest['format']}, newer than this Atlas reads ({FORMAT}); "
               f"upgrade Atlas to load it")
        raise ConfigError(msg)
    if expected is not None and manifest["kind"] != expected:
        msg = (f"{folder} holds a {manifest['kind']} model, not a {expected}; "
               f"load it with atlas.models.load_model(folder), which reads the kind from {MANIFEST_FILE}")
        raise ConfigError(msg)
    return manifest


__all__ = ["FORMAT", "MANIFEST_FILE", "read_manifest", "write_manifest"]
