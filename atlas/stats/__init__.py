"""Statistics of trained models: scores, the predictions frame, classification, regression and trading
statistics, statistics over time, and the significance of a trial and of a whole sweep."""

from atlas.stats._bootstrap import block_length, politis_white
from atlas.stats._calendar import CRYPTO, Calendar, interval_starts
from atlas.stats._classification import ClassificationStatistics, classification_statistics
from atlas.stats._figures import card, card_png, is_degenerate, overview, overview_png
from atlas.stats._headline import headline_metrics
from atlas.stats._over_time import IntervalAccuracy, accuracy_over_time, confidence_thresholds
from atlas.stats._predictions import MAX_ROWS_PER_PART, Predictions, check_predictions
from atlas.stats._regression import RegressionStatistics, regression_statistics
from atlas.stats._results import Results, execution_verdict, harvest
from atlas.stats._scores import classification_scores, regression_scores
from atlas.stats._sharpe import deflated_sharpe_ratio, expected_maximum_sharpe, probabilistic_sharpe_ratio
from atlas.stats._significance import (
    TrialSignificance,
    holm,
    lift_differential,
    romano_wolf,
    trial_significance,
)
from atlas.stats._trading import (
    TradingStatistics,
    class_positions,
    positions,
    trade_returns,
    trading_statistics,
)
from atlas.stats._verdict import SweepVerdict, sweep_significance, sweep_verdict

__all__ = [
    "CRYPTO",
    "MAX_ROWS_PER_PART",
    "Calendar",
    "ClassificationStatistics",
    "IntervalAccuracy",
    "Predictions",
    "RegressionStatistics",
    "SweepVerdict",
    "TradingStatistics",
    "TrialSignificance",
    "accuracy_over_time",
    "block_length",
    "check_predictions",
    "class_positions",
    "classification_scores",
    "classification_statistics",
    "confidence_thresholds",
    "deflated_sharpe_ratio",
    "expected_maximum_sharpe",
    "headline_metrics",
    "holm",
    "interval_starts",
    "lift_differential",
    "politis_white",
    "positions",
    "probabilistic_sharpe_ratio",
    "regression_scores",
    "regression_statistics",
    "romano_wolf",
    "sweep_significance",
    "sweep_verdict",
    "trade_returns",
    "trading_statistics",
    "trial_significance",
]
__all__ += ["card", "card_png", "is_degenerate", "overview", "overview_png"]
__all__ += ["Results", "execution_verdict", "harvest"]
