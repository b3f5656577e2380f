"""Market data: the store, the simulator, importers and the metric pipeline."""

from atlas.data.buckets import parse_width, width_name
from atlas.data.exchanges import KNOWN_VENUES, Exchange
from atlas.data.orderbooks import BookBatch, BookSide
from atlas.data.importers import (
    ImportReport,
    import_bars,
    import_gds,
    import_ob_analytics,
    import_trades,
    sample_path,
)
from atlas.data.metrics import MetricPipeline, PipelineReport
from atlas.data.series import SeriesKey, metric_name
from atlas.data.simulator import MarketSimulator, SimulationReport, SimulatorConfig
from atlas.data.store import MarketStore, WriteReport

__all__ = [
    "KNOWN_VENUES",
    "BookBatch",
    "BookSide",
    "Exchange",
    "ImportReport",
    "MarketSimulator",
    "MarketStore",
    "MetricPipeline",
    "PipelineReport",
    "SeriesKey",
    "SimulationReport",
    "SimulatorConfig",
    "WriteReport",
    "import_bars",
    "import_gds",
    "import_ob_analytics",
    "import_trades",
    "metric_name",
    "parse_width",
    "sample_path",
    "width_name",
]
