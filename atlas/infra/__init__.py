"""Sweeps: WorkSpec -> WorkUnits x ModelSpecs x Optuna trials, run on Ray, recorded in MLflow.

This release holds the spec objects and their loading from ``experiments/*.py``; execution follows.
"""

from atlas.infra._specs import ModelSpec, Resources, Search, WorkSpec, WorkUnit, load_spec

__all__ = ["ModelSpec", "Resources", "Search", "WorkSpec", "WorkUnit", "load_spec"]
