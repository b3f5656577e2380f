"""Atlas: Gryphon market data to trading-signal models, and the best one into production."""

__version__ = "0.1.0"
