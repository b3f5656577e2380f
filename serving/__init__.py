"""The production runtime: the Redis prediction schema, its publisher, the strategy-side client, GDS order books.

Import what you need from its module; this package imports nothing on its own, so that ``serving.client`` (the
standard library and ``redis`` only) starts fast on a trading server:

- :mod:`serving.schema`: the versioned Redis layout (keys, fields) and the :class:`~serving.schema.Prediction` record.
- :mod:`serving.publisher`: writes predictions, live statistics and alarms.
- :mod:`serving.client`: what a Gryphon strategy reads (:class:`~serving.client.PredictionReader`).
- :mod:`serving.gds`: the order books that Gryphon Data Service keeps in Redis.
"""
