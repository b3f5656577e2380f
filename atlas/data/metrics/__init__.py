"""The metric pipeline: order books and trades bucketed into metric series.

The bucketing rules are pure functions (:func:`bucket_metrics`, :func:`sample_positions`) that the store pipeline
and a live model runner both call, so both compute the same values.
"""

from atlas.data.metrics._bucketing import (
    TICK_CONTEXT,
    TRADE_METRICS,
    BookSnapshots,
    BucketedMetrics,
    bucket_metrics,
    sample_positions,
)
from atlas.data.metrics._orderbook import book_metrics
from atlas.data.metrics._pipeline import MetricPipeline, PipelineReport
from atlas.data.metrics._trades import tick_rule, trade_metrics

__all__ = [
    "TICK_CONTEXT",
    "TRADE_METRICS",
    "BookSnapshots",
    "BucketedMetrics",
    "MetricPipeline",
    "PipelineReport",
    "book_metrics",
    "bucket_metrics",
    "sample_positions",
    "tick_rule",
    "trade_metrics",
]
