"""The one vocabulary of the run record: every ``atlas.*`` tag that the sweep writes and harvest, the digest and
serving read, with the record's schema version.

A run carries ``atlas.schema`` (:data:`SCHEMA_VERSION`), so a reader can tell a run written before a change of
this vocabulary. Levels nest: an ``execution`` run (one call of ``atlas train``), a ``work_unit`` run under it, a
``trial`` run under that.

Example:
    >>> Tag.WORK_SPEC, Level.TRIAL
    ('atlas.work_spec', 'trial')
"""

from __future__ import annotations

#: The version of this vocabulary and of the artifacts below; bump it when a name or a meaning changes.
#: 1: the first sweeps (no schema tag). 2: predictions, cards, headline statistics, the best pointers.
SCHEMA_VERSION = 2


class Tag:
    """Tag names. Atlas's own start with ``atlas.``; ``PARENT`` and ``RUN_NAME`` are MLflow's."""

    SCHEMA = "atlas.schema"
    LEVEL = "atlas.level"
    WORK_SPEC = "atlas.work_spec"
    EXECUTION = "atlas.execution"
    WORK_UNIT = "atlas.work_unit"
    MODEL_SPEC = "atlas.model_spec"
    TRIAL = "atlas.trial"
    REPLICATE = "atlas.replicate"
    MODEL = "atlas.model"
    FEATURESET = "atlas.featureset"
    STATE = "atlas.state"
    ERROR = "atlas.error"
    STOPPED = "atlas.stopped"
    DATA_HASH = "atlas.data_hash"
    CODE_VERSION = "atlas.code_version"
    HOST = "atlas.host"
    PID = "atlas.pid"
    NODE = "atlas.node"
    GPUS = "atlas.gpus"
    ATTEMPTS = "atlas.attempts"
    STARTED = "atlas.started"
    REQUEST = "atlas.request"  # a key per run created: a request the client retried made the run twice
    BEST_RUN = "atlas.best_run_id"
    BEST_TRIAL = "atlas.best_trial"
    VERDICT = "atlas.verdict"
    EXECUTION_RUN = "atlas.execution_run_id"
    EXPERIMENT = "atlas.experiment_id"
    # the Model Registry (atlas.registry): tags of a model version, and of a registered model (ALIAS_HISTORY)
    RUN_ID = "atlas.run_id"
    TRAIN_WINDOW = "atlas.train_window"
    TEST_WINDOW = "atlas.test_window"
    REGISTERED_BY = "atlas.registered_by"
    PROMOTED_FROM = "atlas.promoted_from"
    PROMOTED_AT = "atlas.promoted_at"
    PROMOTED_BY = "atlas.promoted_by"
    PROMOTION_COMMAND = "atlas.promotion_command"
    PROMOTION_REASON = "atlas.promotion_reason"
    PROMOTION_FORCED = "atlas.promotion_forced"
    GUARDRAILS = "atlas.guardrails"
    ALIAS_HISTORY = "atlas.alias_history"
    PARENT = "mlflow.parentRunId"
    RUN_NAME = "mlflow.runName"

    @classmethod
    def names(cls) -> frozenset[str]:
        """Every tag name of the vocabulary."""
        return frozenset(v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str))


class Level:
    """The values of ``atlas.level``."""

    EXECUTION = "execution"
    WORK_UNIT = "work_unit"
    TRIAL = "trial"
    #: a run of ``atlas serve``: the live statistics of the models it served
    SERVING = "serving"


#: What a trial became (``atlas.state``), and MLflow's run status for each.
STATES = {"finished": "FINISHED", "pruned": "FINISHED", "failed": "FAILED", "killed": "KILLED"}

#: Artifacts of a trial run: its predictions (the evidence the digest reads) and its baseball card.
PREDICTIONS_ARTIFACT = "predictions.parquet"
CARD_ARTIFACT = "card.png"
TRACEBACK_ARTIFACT = "traceback.txt"
#: Artifacts of an execution run.
OVERVIEW_ARTIFACT = "overview.png"
SIGNIFICANCE_ARTIFACT = "significance.json"
REPORT_ARTIFACT = "report.html"
WORK_SPEC_ARTIFACT = "work_spec.json"
FEATURESET_ARTIFACT = "featureset.json"
