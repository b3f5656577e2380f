"""The metric pipeline: order books and trades bucketed into metric series."""

from atlas.data.metrics._orderbook import book_metrics
from atlas.data.metrics._pipeline import MetricPipeline, PipelineReport
from atlas.data.metrics._trades import tick_rule, trade_metrics

__all__ = ["MetricPipeline", "PipelineReport", "book_metrics", "tick_rule", "trade_metrics"]
