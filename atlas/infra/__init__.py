"""Sweeps: WorkSpec -> WorkUnits x ModelSpecs x Optuna trials, run on Ray, recorded in MLflow.

``train(load_spec("experiments/quickstart.py"))`` runs a sweep; ``harvest("quickstart")`` reads every trial
back as one DataFrame. Ray, Optuna and MLflow are imported when a sweep runs, not with this package.
"""

from atlas.infra._model_spec import ModelSpec
from atlas.infra._specs import Digest, Resources, Search, WorkSpec, WorkUnit, load_spec, ship_by_value

__all__ = ["Digest", "ModelSpec", "Resources", "Search", "SweepInterrupted", "SweepReport", "WorkSpec", "WorkUnit", "harvest",
           "load_spec", "plan", "ship_by_value", "train"]

_LAZY = {"train": "atlas.infra._sweep", "plan": "atlas.infra._sweep", "SweepReport": "atlas.infra._sweep",
         "SweepInterrupted": "atlas.infra._interrupts", "harvest": "atlas.infra._sweep"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'atlas.infra' has no attribute {name!r}"
    raise AttributeError(msg)
