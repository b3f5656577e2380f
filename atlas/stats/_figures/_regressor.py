"""A regressor's card panels: predictions against reality, summary, IC, residuals, returns, direction."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from atlas.data.buckets import parse_width
from atlas.stats._figures import _style as style
from atlas.stats._figures._card import p_value_entry, summary_table
from atlas.stats._figures._window import PValue, Window
from atlas.stats._regression import RegressionStatistics, regression_statistics
from atlas.stats._trading import TradingStatistics, positions, trading_statistics

#: Up to this many samples the scatter shows points; above it, a density image (one artist for any size).
SCATTER_POINTS = 3000
#: The most points a time series is drawn with (an equity curve is thinned to this many).
LINE_POINTS = 1500
#: Residuals are summarized in at most this many consecutive bins of equal size.
RESIDUAL_BINS = 200
STRENGTH_SHARES = (1.0, 0.5, 0.25, 0.1, 0.05, 0.01)


def draw_regressor(figure, grid, rows: Window, pvalue: PValue, *, calendar, cost_bps: float,
                   interval: str) -> None:
    predictions = rows.predictions
    y_true, y_pred = rows.y_true.astype(np.float64), rows.y_pred.astype(np.float64)
    stats = regression_statistics(y_true, y_pred, train_mean=predictions.train_mean or 0.0,
                                  buckets=rows.buckets, interval=interval)
    if predictions.train_mean is None:
        stats = dataclasses.replace(stats, r2_oos=math.nan)
    common = {"bucket_width": predictions.bucket_width, "horizon": predictions.horizon, "cost_bps": cost_bps,
              "calendar": calendar}
    trading = trading_statistics(positions(y_pred), rows.forward_return, **common)
    holding = trading_statistics(np.ones(rows.samples), rows.forward_return, **common)
    times = style.naive_utc(rows.buckets)
    _scatter(figure.add_subplot(grid[0, 0]), y_true, y_pred, stats)
    _summary(figure.add_subplot(grid[0, 1]), rows, stats, trading, pvalue, cost_bps=cost_bps, interval=interval)
    _interval_ic(figure.add_subplot(grid[0, 2]), stats, interval)
    _residuals(figure.add_subplot(grid[1, 0]), times, y_pred - y_true)
    _returns(figure.add_subplot(grid[1, 1]), times, trading, holding, rows, cost_bps)
    _strength(figure.add_subplot(grid[1, 2]), y_true, y_pred)


def _span(values: np.ndarray) -> tuple[float, float]:
    """The central 99% of ``values``, widened where it has no width (a constant)."""
    low, high = (float(v) for v in np.quantile(values, [0.005, 0.995]))
    if high - low <= 1e-12 * max(abs(low), abs(high), 1e-300):
        pad = max(abs(low) * 0.01, 1e-9)
        low, high = low - pad, high + pad
    return low, high


def _scatter(ax, y_true: np.ndarray, y_pred: np.ndarray, stats: RegressionStatistics) -> None:
    from matplotlib.colors import LogNorm

    (x_low, x_high), (y_low, y_high) = _span(y_true), _span(y_pred)
    if len(y_true) <= SCATTER_POINTS:
        ax.plot(y_true, y_pred, linestyle="none", marker=".", markersize=3, alpha=0.45,
                color=style.MODEL_COLOR)
    else:
        counts, _, _ = np.histogram2d(y_true, y_pred, bins=80, range=[[x_low, x_high], [y_low, y_high]])
        ax.imshow(np.ma.masked_equal(counts.T, 0), origin="lower", extent=(x_low, x_high, y_low, y_high),
                  aspect="auto", interpolation="nearest", cmap=style.viridis("white"),
                  norm=LogNorm(vmin=1, vmax=max(2.0, float(counts.max()))))
    low, high = min(x_low, y_low), max(x_high, y_high)
    ax.plot([low, high], [low, high], color=style.LOSS_COLOR, linestyle="--", linewidth=1.1,
            label="prediction = label")
    if np.ptp(y_true) > 0 and np.ptp(y_pred) > 0:
        slope, intercept = np.polyfit(y_true, y_pred, 1)
        ax.plot([x_low, x_high], [intercept + slope * x_low, intercept + slope * x_high], color="black",
                linewidth=1.1, label=f"least squares (slope {style.format_number(slope)})")
    else:
        style.note(ax, "no spread: the predictions or labels are constant", y=0.12)
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    style.style_axes(ax, title=f"Predicted vs realized (IC {style.format_signed(stats.ic, 3)})",
                     xlabel="realized label (central 99%)", ylabel="prediction", pad=14)
    style.few_ticks(ax, x=4, y=5)
    ax.ticklabel_format(style="sci", scilimits=(-3, 3))  # plain "1e-3": mathtext parsing costs 0.1 s a card
    ax.legend(fontsize=style.TICK_SIZE, loc="upper left", framealpha=0.85)


def _summary(ax, rows: Window, stats: RegressionStatistics, trading: TradingStatistics, pvalue: PValue, *,
             cost_bps: float, interval: str) -> None:
    r2 = (style.format_signed(stats.r2_oos, 4) if rows.predictions.train_mean is not None
          else f"{style.DASH} (train mean unknown)")
    entries = [
        ("RMSE", style.format_number(stats.rmse, zeros=True)),
        ("MAE", style.format_number(stats.mae, zeros=True)),
        ("R\u00b2 out of sample", r2),
        ("directional accuracy", style.format_share(stats.directional_accuracy)),
        ("IC / rank IC", f"{style.format_signed(stats.ic, 3)} / {style.format_signed(stats.rank_ic, 3)}"),
        (f"ICIR ({interval} ICs)", style.format_signed(stats.icir, 2)),
        p_value_entry(pvalue, name="p-value (MSE < zero forecast's)"),
        ("Sharpe (annualized, net)", style.format_signed(trading.sharpe, 2)),
        ("trades / turnover", f"{trading.trades:,} / {style.format_number(trading.turnover)}"),
        ("return / max drawdown", f"{style.format_percent(trading.cumulative_return, 2, signed=True)}"
                                              f" / {style.format_percent(trading.max_drawdown, 2)}"),
        ("hit rate", style.format_share(trading.hit_rate)),
    ]
    summary_table(ax, entries, title=f"Summary ({rows.part}, cost {cost_bps:g} bps)")


def _interval_ic(ax, stats: RegressionStatistics, interval: str) -> None:
    ic = stats.interval_ic
    values = ic.to_numpy()
    x = style.naive_utc(ic.index)
    defined = np.isfinite(values)
    if len(values) <= 60:
        width = parse_width(interval).total_seconds() / 86400 * 0.8
        colors = np.where(values >= 0, style.GAIN_COLOR, style.LOSS_COLOR)
        ax.bar(x, np.where(defined, values, 0.0), width=width, color=colors, align="edge", alpha=0.8)
    else:
        ax.plot(x, values, color=style.MODEL_COLOR, linewidth=1.0)
    ax.axhline(0, color="black", linewidth=0.8)
    if defined.any():
        mean = float(values[defined].mean())
        ax.axhline(mean, color=style.MODEL_COLOR, linestyle="--", linewidth=1.1, label=f"mean IC {mean:+.3f}")
        ax.legend(fontsize=style.TICK_SIZE, loc="upper left", framealpha=0.85)
    else:
        style.note(ax, "IC undefined in every interval:\nconstant predictions or labels, or too few samples")
    style.style_axes(ax, title=f"IC per {interval} (ICIR {style.format_signed(stats.icir, 2)})",
                     ylabel="IC (Pearson)")
    style.few_ticks(ax, x=0, y=5)
    style.time_axis(ax, label="interval start (UTC)", times=x, pad=interval)


def _residuals(ax, times: np.ndarray, residual: np.ndarray) -> None:
    n = len(residual)
    bins = min(RESIDUAL_BINS, max(1, n // 20))
    if bins < 10:
        ax.plot(times, residual, linestyle="none", marker=".", markersize=4, color=style.MODEL_COLOR,
                label="residual")
    else:
        edges = np.linspace(0, n, bins + 1).round().astype(int)
        counts = np.diff(edges)
        codes = np.repeat(np.arange(bins), counts)
        ordered = residual[np.lexsort((residual, codes))]
        low = ordered[edges[:-1] + np.floor(0.1 * (counts - 1)).astype(int)]
        high = ordered[edges[:-1] + np.ceil(0.9 * (counts - 1)).astype(int)]
        mean = np.add.reduceat(residual, edges[:-1]) / counts
        middle = times[edges[:-1] + counts // 2]
        ax.fill_between(middle, low, high, color=style.MODEL_COLOR, alpha=0.25, linewidth=0,
                        label="10\u201390% of each bin")
        ax.plot(middle, mean, color=style.MODEL_COLOR, linewidth=1.2,
                label=f"mean of {int(np.median(counts))} buckets")
    ax.axhline(0, color="black", linewidth=0.8)
    style.style_axes(ax, title="Residuals over time (prediction \u2212 label)", ylabel="residual", pad=14)
    style.few_ticks(ax, x=0, y=5)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    style.time_axis(ax, times=times)
    ax.legend(fontsize=style.TICK_SIZE, loc="upper left", framealpha=0.85)


def _thin(n: int) -> np.ndarray:
    step = max(1, n // LINE_POINTS)
    return np.unique(np.r_[np.arange(0, n, step), n - 1])


def _returns(ax, times: np.ndarray, trading: TradingStatistics, holding: TradingStatistics, rows: Window,
             cost_bps: float) -> None:
    from matplotlib.ticker import PercentFormatter

    keep = _thin(len(times))
    ax.plot(times[keep], trading.equity[keep], color=style.MODEL_COLOR, linewidth=1.4,
            label=f"sign of the prediction (Sharpe {style.format_signed(trading.sharpe, 2)})")
    ax.plot(times[keep], holding.equity[keep], color=style.BASELINE_COLOR, linestyle="--", linewidth=1.1,
            label=f"buy and hold (Sharpe {style.format_signed(holding.sharpe, 2)})")
    ax.axhline(0, color="black", linewidth=0.8)
    if not np.isfinite(rows.forward_return).any():
        style.note(ax, "no forward returns stored: nothing to trade", y=0.3)
    style.style_axes(ax, title=f"Cumulative net return ({cost_bps:g} bps a unit change)",
                     ylabel="cumulative return (summed)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    style.few_ticks(ax, x=0, y=5)
    style.time_axis(ax, times=times)
    ax.legend(fontsize=style.TICK_SIZE, loc="upper left", framealpha=0.85)


def _strength(ax, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    order = np.argsort(-np.abs(y_pred), kind="stable")
    moving = y_true != 0
    right = np.sign(y_pred) == np.sign(y_true)
    accuracy, kept = [], []
    for share in STRENGTH_SHARES:
        top = order[:max(1, round(share * len(order)))]
        counted = moving[top]
        accuracy.append(float(right[top][counted].mean()) if counted.any() else math.nan)
        kept.append(int(counted.sum()))
    positions_ = np.arange(len(STRENGTH_SHARES))
    ax.plot(positions_, accuracy, color=style.MODEL_COLOR, marker="o", markersize=4, linewidth=1.5,
            label="directional accuracy")
    ups = float(np.mean(y_true[moving] > 0)) if moving.any() else math.nan
    if style.finite(ups):
        ax.axhline(max(ups, 1 - ups), color=style.BASELINE_COLOR, linestyle="--", linewidth=1.1,
                   label="always the majority sign")
    ax.axhline(0.5, color="black", linestyle=":", linewidth=0.8)
    labels = [f"{share:.0%}\n{count:,}" for share, count in zip(STRENGTH_SHARES, kept)]
    ax.set_xticks(positions_, labels)
    style.style_axes(ax, title="Direction of the strongest predictions",
                     xlabel="share kept (largest |prediction|) / buckets with a move",
                     ylabel="directional accuracy")
    style.few_ticks(ax, x=0, y=5)
    ax.legend(fontsize=style.TICK_SIZE, loc="best", framealpha=0.85)
