"""The checks behind :class:`~atlas.models._artifact.ModelArtifact`: what it is given when saved, and what it reads
back when loaded (``meta.json``, the model's class)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atlas.data.dataset import Transforms, default_class_names
from atlas.exceptions import ConfigError
from atlas.models._base import Model
from atlas.models._numpy_network import DenseNetwork
from atlas.models._registry import MODELS

#: The layout of an artifact folder; a reader refuses a newer one. Folders written before it was recorded read as 1.
ARTIFACT_FORMAT = 1
META_FILE = "meta.json"
_REQUIRED = ("kind", "task", "class_names", "feature_names", "label", "window", "bucket")


def _transforms(transforms, names: list[str]) -> Transforms:
    try:
        transforms = Transforms.from_dict(transforms)
    except ConfigError:
        transforms = None
    if transforms is None or list(transforms.feature_names) != names:
        fitted = None if transforms is None else list(transforms.feature_names)
        msg = (f"the transforms must be fitted on the set's features, in order: {names}; they were fitted on "
               f"{fitted}; pass the Dataset.transforms of data built from this set")
        raise ConfigError(msg)
    return transforms


def _class_names(model: Model, transforms: Transforms, given) -> list[str] | None:
    if model.task != "classification":
        if given is not None:
            msg = f"class_names are for classifiers; {model.kind} is a {model.task} model"
            raise ConfigError(msg)
        return None
    names = given if given is not None else transforms.class_names
    n_classes = model.shape.n_classes
    names = list(default_class_names(n_classes) if names is None else (str(n) for n in names))
    if len(names) != n_classes or len(set(names)) != n_classes:
        msg = f"a {n_classes}-class model needs {n_classes} distinct class names, got class_names={names}"
        raise ConfigError(msg)
    return names


def _class_path(model: Model, models: Mapping[str, type] | None, network: DenseNetwork | None) -> str | None:
    """``"module:QualName"`` of a model class outside the zoo given in ``models``; None for the zoo's."""
    kind = model.kind
    if models and kind in models:
        cls = models[kind]
        if "<locals>" in cls.__qualname__:
            msg = (f"the model class {cls.__qualname__} is defined inside a function, so it cannot be imported "
                   f"where the model loads; define it at the top level of a module")
            raise ConfigError(msg)
        return f"{cls.__module__}:{cls.__qualname__}"
    if kind not in MODELS and network is None:
        msg = (f"no model class of kind {kind!r}: it is not a model of the zoo ({', '.join(MODELS)}); give its "
               f"class with models={{{kind!r}: TheClass}} when saving the model")
        raise ConfigError(msg)
    return None


def _read_meta(folder: Path) -> dict:
    path = folder / META_FILE
    if not path.is_file():
        msg = (f"{folder} is not an Atlas model artifact: it has no {META_FILE}; give the folder that "
               f"ModelArtifact.save wrote (in an MLflow model: <model>/artifacts/atlas)")
        raise ConfigError(msg)
    try:
        meta = json.loads(path.read_text())
    except ValueError as error:
        msg = f"{path} is not valid JSON ({error}): {folder} is not an Atlas model artifact; save the model again"
        raise ConfigError(msg) from None
    if not isinstance(meta, dict) or not set(_REQUIRED) <= set(meta):
        msg = (f"{folder} is not an Atlas model artifact: its {META_FILE} lacks "
               f"{sorted(set(_REQUIRED) - set(meta)) if isinstance(meta, dict) else list(_REQUIRED)}")
        raise ConfigError(msg)
    version = meta.get("format", 1)  # written before the format was recorded: the same layout
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        msg = f"{path}: format must be a whole number of at least 1, got {version!r}; save the model again"
        raise ConfigError(msg)
    if version > ARTIFACT_FORMAT:
        msg = (f"{folder} has artifact format {version}, newer than this Atlas reads ({ARTIFACT_FORMAT}); "
               f"upgrade Atlas (pip install -U gryphon-atlas) to load it")
        raise ConfigError(msg)
    return meta


def _model_class(folder: Path, meta: dict, models: Mapping[str, type]) -> type[Model]:
    kind = meta["kind"]
    if kind in models:
        return models[kind]
    recorded = meta.get("model_class")
    if recorded:
        module_name, _, qualname = recorded.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as error:
            msg = (f"{folder}: the model's class {recorded} does not import here ({type(error).__name__}: "
                   f"{error}); install the package that defines it or put its module on the Python path, or "
                   f"pass models={{{kind!r}: TheClass}}")
            raise ConfigError(msg) from None
        if not (isinstance(found, type) and issubclass(found, Model)):
            msg = f"{folder}: {recorded} is not a model class (atlas.models.Model), it is {type(found).__name__}"
            raise ConfigError(msg)
        return found
    if kind not in MODELS:
        msg = (f"{folder}: no model class of kind {kind!r}: it is not a model of the zoo ({', '.join(MODELS)}); "
               f"pass models={{{kind!r}: TheClass}}")
        raise ConfigError(msg)
    return MODELS[kind]
