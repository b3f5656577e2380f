"""Atlas: Gryphon market data to trading-signal models, and the best one into production.

The analysis console starts here::

    import atlas

    results = atlas.harvest("quickstart")     # every trial of the newest execution, with the digest as methods
    results.overview(); results.card(results.best().run_id.iloc[0]); print(results.significance())
"""

__version__ = "0.1.0"


def harvest(work_spec: str, *, settings=None, execution: str = "latest"):
    """The trials of ``work_spec`` as ``atlas.stats.Results``: one row per trial, with ``best``, ``predictions``,
    ``card``, ``overview`` and ``significance``.

    An entry point, as the ``atlas`` command is: without ``settings`` it reads them from the environment
    (``MLFLOW_TRACKING_URI``, ``ATLAS_HOME``); library code below passes its settings on instead.
    """
    from atlas.config import Settings
    from atlas.stats import harvest as read

    settings = settings or Settings.from_env()
    return read(work_spec, tracking_uri=settings.tracking.mlflow_uri, execution=execution)
