"""The record of a sweep in MLflow: one tag vocabulary (with a schema version), the run writer, the Results schema,
harvest, and the artifacts a run keeps. What ``atlas.infra`` writes, ``atlas.stats`` reads and ``serving``
promotes.

It imports only ``atlas.config`` and ``atlas.exceptions`` (and MLflow and pandas, when a writer or harvest is
used), so every layer above may use it.

Example:
    >>> from atlas.runs import Level, Tag
    >>> f"tags.`{Tag.LEVEL}` = '{Level.TRIAL}'"
    "tags.`atlas.level` = 'trial'"
"""

from atlas.runs._names import ALLOWED, MAX_NAME, check_name, quoted
from atlas.runs._probe import probe_tracking
from atlas.runs._tags import (
    CARD_ARTIFACT,
    FEATURESET_ARTIFACT,
    OVERVIEW_ARTIFACT,
    PREDICTIONS_ARTIFACT,
    REPORT_ARTIFACT,
    SCHEMA_VERSION,
    SIGNIFICANCE_ARTIFACT,
    STATES,
    TRACEBACK_ARTIFACT,
    WORK_SPEC_ARTIFACT,
    Level,
    Tag,
)

__all__ = ["ALLOWED", "CARD_ARTIFACT", "COLUMNS", "FEATURESET_ARTIFACT", "MAX_NAME", "OVERVIEW_ARTIFACT",
           "PREDICTIONS_ARTIFACT", "REPORT_ARTIFACT", "SCHEMA_VERSION", "SIGNIFICANCE_ARTIFACT", "STATES",
           "TRACEBACK_ARTIFACT", "WORK_SPEC_ARTIFACT", "Level", "RunWriter", "Tag", "check_name", "code_version",
           "context_tags", "describe_execution", "fetch_artifact", "finite_metrics", "flat_params", "harvest", "pack_model",
           "probe_tracking", "quoted", "read_artifact", "unpack_model", "write_results"]

_LAZY = {name: "atlas.runs._writer" for name in ("RunWriter", "code_version", "context_tags", "finite_metrics",
                                                 "flat_params", "pack_model", "unpack_model")}
_LAZY |= {name: "atlas.runs._harvest" for name in ("COLUMNS", "describe_execution", "fetch_artifact", "harvest",
                                                   "read_artifact", "write_results")}


def __getattr__(name: str):
    if name in _LAZY:  # MLflow and pandas load when a writer or harvest is first used
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'atlas.runs' has no attribute {name!r}"
    raise AttributeError(msg)
