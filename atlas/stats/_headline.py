"""One trial's headline numbers from its predictions frame: what a run logs to MLflow as final statistics."""

from __future__ import annotations

import dataclasses
import math

from atlas.stats._calendar import CRYPTO, Calendar
from atlas.stats._classification import classification_statistics
from atlas.stats._over_time import accuracy_over_time
from atlas.stats._predictions import Predictions
from atlas.stats._regression import regression_statistics
from atlas.stats._trading import positions, trading_statistics


def headline_metrics(predictions: Predictions, *, part: str = "test", calendar: Calendar = CRYPTO,
                     cost_bps: float = 1.0, interval: str = "1D") -> dict[str, float]:
    """The flat metrics of one part of a trial's predictions: the task's statistics, then trading's.

    A classifier gives :meth:`ClassificationStatistics.headline` and, when its ``baseline_class`` is known,
    ``interval_win_rate``; a regressor gives :meth:`RegressionStatistics.headline` (``r2_oos`` NaN when its
    ``train_mean`` is unknown). Both add :meth:`TradingStatistics.headline` (positions from the predictions,
    held for the horizon, at ``cost_bps``, annualized over ``calendar``).

    Example:
        >>> import pandas as pd
        >>> from atlas.stats import check_predictions
        >>> frame = pd.DataFrame({
        ...     "bucket": pd.date_range("2024-01-01 01:00", periods=4, freq="1h", tz="UTC"), "part": "test",
        ...     "y_true": [0, 1, 1, 0], "forward_return": [-.01, .02, .01, -.01], "y_pred": [0, 1, 0, 0],
        ...     "proba_down": [.7, .2, .6, .8], "proba_up": [.3, .8, .4, .2]})
        >>> metrics = headline_metrics(check_predictions(frame, bucket_width="1h", horizon=1, baseline_class=1))
        >>> [round(metrics[k], 4) for k in ("accuracy", "pv_up", "interval_win_rate", "cumulative_return")]
        [0.75, 1.0, 1.0, 0.0295]

    Raises:
        ConfigError: the predictions lack ``part``.
    """
    rows = predictions.part(part)
    if rows.task == "classification":
        out = classification_statistics(rows.y_true, rows.proba, rows.class_names, y_pred=rows.y_pred).headline()
        if rows.baseline_class is not None:
            out |= accuracy_over_time(rows.y_true, rows.y_pred, rows.buckets, baseline_class=rows.baseline_class,
                                      interval=interval).headline()
    else:
        stats = regression_statistics(rows.y_true, rows.y_pred, train_mean=rows.train_mean or 0.0,
                                      buckets=rows.buckets, interval=interval)
        if rows.train_mean is None:
            stats = dataclasses.replace(stats, r2_oos=math.nan)
        out = stats.headline()
    trading = trading_statistics(positions(rows.y_pred, class_names=rows.class_names), rows.forward_return,
                                 bucket_width=rows.bucket_width, horizon=rows.horizon, cost_bps=cost_bps,
                                 calendar=calendar)
    return out | trading.headline()
