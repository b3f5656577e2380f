"""A classifier's card panels: confusion, summary, interval accuracy and its histogram, confidence, ROC."""

from __future__ import annotations

import numpy as np

from atlas.stats._classification import ClassificationStatistics, classification_statistics
from atlas.stats._figures import _style as style
from atlas.stats._figures._card import p_value_entry, summary_table
from atlas.stats._figures._window import PValue, Window
from atlas.stats._over_time import IntervalAccuracy, accuracy_over_time, confidence_thresholds
from atlas.stats._trading import TradingStatistics, positions, trading_statistics

#: The most points a ROC curve is drawn with: the eye sees no more, and Agg draws fewer faster.
ROC_POINTS = 400
FREQUENCY_COLOR = "#e08214"


def draw_classifier(figure, grid, rows: Window, pvalue: PValue, *, calendar, cost_bps: float,
                    interval: str) -> None:
    predictions = rows.predictions
    names = predictions.class_names
    stats = classification_statistics(rows.y_true, rows.proba, names, y_pred=rows.y_pred)
    baseline = predictions.baseline_class
    # Without a baseline class the interval accuracies still stand; the baseline's columns are then unused.
    over_time = accuracy_over_time(rows.y_true, rows.y_pred, rows.buckets,
                                   baseline_class=0 if baseline is None else baseline, interval=interval)
    trading = trading_statistics(positions(rows.y_pred, class_names=names), rows.forward_return,
                                 bucket_width=predictions.bucket_width, horizon=predictions.horizon,
                                 cost_bps=cost_bps, calendar=calendar)
    baseline_accuracy = float(np.mean(rows.y_true == baseline)) if baseline is not None else float("nan")
    _confusion(figure.add_subplot(grid[0, 0]), stats)
    _summary(figure.add_subplot(grid[0, 1]), rows, stats, trading, over_time, pvalue, baseline_accuracy,
             cost_bps=cost_bps, interval=interval)
    _over_time(figure.add_subplot(grid[1, 0]), over_time, baseline, [style.plain(n, 16) for n in names], interval)
    _histogram(figure.add_subplot(grid[1, 1]), over_time, stats.accuracy, baseline_accuracy, interval)
    _thresholds(figure.add_subplot(grid[1, 2]), rows, baseline_accuracy)
    _roc(figure.add_subplot(grid[0, 2]), rows, stats)


def _confusion(ax, stats: ClassificationStatistics) -> None:
    names = [style.plain(name, 14) for name in stats.class_names]
    k = len(names)
    full = np.full((k + 1, k + 1), np.nan)
    full[:k, :k] = stats.confusion_normalized.to_numpy()
    ax.imshow(np.ma.masked_invalid(full), cmap=style.viridis(), vmin=0, vmax=1, interpolation="nearest",
              aspect="auto")
    size = 11 if k <= 3 else 9 if k <= 5 else 7 if k <= 8 else 5.5
    for i in range(k):
        for j in range(k):
            value = full[i, j]
            ax.text(j, i, style.format_share(value, 2), ha="center", va="center", fontsize=size,
                    color=style.text_color(value))
    prevalence = stats.per_class["prevalence"].to_numpy()
    bias = stats.per_class["bias"].to_numpy()
    for i in range(k):
        ax.text(k, i, style.format_percent(prevalence[i]), ha="center", va="center", fontsize=size - 1)
        ax.text(i, k, style.format_percent(bias[i], signed=True), ha="center", va="center", fontsize=size - 1,
                color=style.LOSS_COLOR if abs(bias[i]) >= 0.1 else "black")
    ax.text(k, k, f"acc\n{stats.accuracy:.3f}", ha="center", va="center", fontsize=size - 2, color="#333333")
    ax.axhline(k - 0.5, color="white", linewidth=3)
    ax.axvline(k - 0.5, color="white", linewidth=3)
    rotation = 0 if sum(len(n) for n in names) <= 24 else 30
    ax.set_xticks(range(k + 1), [*names, "prevalence"], rotation=rotation,
                  ha="right" if rotation else "center")
    ax.set_yticks(range(k + 1), [*names, "bias"])
    ax.tick_params(length=0)
    style.style_axes(ax, title="Confusion (rows: truth, normalized)", grid=False,
                     xlabel="predicted class  (bias: predicted share \u2212 prevalence)", ylabel="true class")


def _summary(ax, rows: Window, stats: ClassificationStatistics, trading: TradingStatistics,
             over_time: IntervalAccuracy, pvalue: PValue, baseline_accuracy: float, *, cost_bps: float,
             interval: str) -> None:
    names = [style.plain(name, 12) for name in rows.predictions.class_names]
    baseline = rows.predictions.baseline_class
    wins = int(over_time.table["win"].sum())
    intervals = len(over_time.table)
    entries = [
        ("accuracy", style.format_share(stats.accuracy)),
        ("baseline accuracy" + (f" ('{names[baseline]}')" if baseline is not None else ""),
         style.format_share(baseline_accuracy) if baseline is not None else "unknown"),
        ("lift over the baseline", style.format_signed(stats.accuracy - baseline_accuracy)),
    ]
    if pvalue.ci is not None and all(style.finite(bound) for bound in pvalue.ci):
        entries.append(("lift, 95% interval",
                        f"{style.format_signed(pvalue.ci[0])} \u2026 {style.format_signed(pvalue.ci[1])}"))
    entries += [
        p_value_entry(pvalue),
        (f"interval win rate ({interval})", f"{style.format_percent(over_time.win_rate, 0)} ({wins}/{intervals})"
         if baseline is not None else style.DASH),
        ("Sharpe (annualized, net)", style.format_signed(trading.sharpe, 2)),
        ("trades / turnover", f"{trading.trades:,} / {style.format_number(trading.turnover)}"),
        ("return / max drawdown", f"{style.format_percent(trading.cumulative_return, 2, signed=True)}"
                                              f" / {style.format_percent(trading.max_drawdown, 2)}"),
        ("MCC", style.format_signed(stats.mcc, 3)),
        ("log loss", style.format_share(stats.log_loss, 4)),
        ("ROC AUC (macro)", style.format_share(stats.roc_auc_macro)),
    ]
    summary_table(ax, entries, title=f"Summary ({rows.part}, cost {cost_bps:g} bps)")


def _over_time(ax, over_time: IntervalAccuracy, baseline: int | None, names, interval: str) -> None:
    table = over_time.table
    x = style.naive_utc(table.index)
    accuracy = table["accuracy"].to_numpy()
    marker = "o" if len(table) <= 60 else None
    ax.plot(x, accuracy, color=style.MODEL_COLOR, marker=marker, markersize=3.5, linewidth=1.4, label="model")
    if baseline is not None:
        base = table["baseline_accuracy"].to_numpy()
        ax.plot(x, base, color=style.BASELINE_COLOR, linestyle="--", marker=marker, markersize=2.5,
                linewidth=1.1, label=f"baseline (always '{names[baseline]}')")
        if len(table) > 1:
            ax.fill_between(x, accuracy, base, where=accuracy >= base, interpolate=True, color=style.GAIN_COLOR,
                            alpha=0.18, linewidth=0)
            ax.fill_between(x, accuracy, base, where=accuracy < base, interpolate=True, color=style.LOSS_COLOR,
                            alpha=0.18, linewidth=0)
    title = f"Accuracy per {interval} interval" + ("" if baseline is not None else " (no baseline class)")
    style.style_axes(ax, title=title, ylabel="accuracy")
    style.few_ticks(ax, x=0, y=5)
    style.time_axis(ax, label="interval start (UTC)", times=x, pad=interval)
    ax.legend(fontsize=style.TICK_SIZE, loc="best", framealpha=0.85)


def _histogram(ax, over_time: IntervalAccuracy, accuracy: float, baseline_accuracy: float,
               interval: str) -> None:
    from matplotlib.ticker import MaxNLocator

    values = over_time.table["accuracy"].to_numpy()
    bins = int(np.clip(np.sqrt(len(values)) * 2, 4, 30))
    ax.hist(values, bins=bins, histtype="stepfilled", color=style.MODEL_COLOR, alpha=0.55,
            edgecolor=style.MODEL_COLOR, linewidth=1.0)
    ax.axvline(accuracy, color=style.MODEL_COLOR, linewidth=1.6, label=f"overall accuracy {accuracy:.3f}")
    if style.finite(baseline_accuracy):
        ax.axvline(baseline_accuracy, color=style.BASELINE_COLOR, linestyle="--", linewidth=1.4,
                   label=f"baseline accuracy {baseline_accuracy:.3f}")
        wins, count = int(over_time.table["win"].sum()), len(over_time.table)
        title = f"Interval win rate {style.format_percent(over_time.win_rate, 0)} ({wins}/{count})"
    else:
        title = "Interval accuracies (no baseline)"
    style.style_axes(ax, title=title, xlabel=f"accuracy in a {interval} interval", ylabel="intervals")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.legend(fontsize=style.TICK_SIZE, loc="upper left", framealpha=0.85)


def _thresholds(ax, rows: Window, baseline_accuracy: float) -> None:
    table = confidence_thresholds(rows.y_true, rows.proba)
    levels = table.index.to_numpy()
    ax.plot(levels, table["precision"].to_numpy(), color=style.MODEL_COLOR, marker="o", markersize=4,
            linewidth=1.5, label="precision")
    ax.plot(levels, table["frequency"].to_numpy(), color=FREQUENCY_COLOR, marker="s", markersize=3.5,
            linewidth=1.3, label="frequency (share reaching it)")
    if style.finite(baseline_accuracy):
        ax.axhline(baseline_accuracy, color=style.BASELINE_COLOR, linestyle="--", linewidth=1.1,
                   label="baseline accuracy")
    if not np.isfinite(table["precision"].to_numpy()).any():
        style.note(ax, f"no prediction reaches {levels[0]:.0%} confidence", y=0.85)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(levels[0] - 0.02, levels[-1] + 0.02)
    style.style_axes(ax, title="Precision & frequency by confidence", xlabel="top class probability \u2265",
                     ylabel="share of buckets")
    style.few_ticks(ax, x=5, y=5)
    ax.legend(fontsize=style.TICK_SIZE, loc="best", framealpha=0.85)


def _roc(ax, rows: Window, stats: ClassificationStatistics) -> None:
    ax.plot([0, 1], [0, 1], color=style.BASELINE_COLOR, linestyle=":", linewidth=1)
    auc = stats.per_class["roc_auc"].to_numpy()
    for c, name in enumerate(stats.class_names):
        positive = rows.y_true == c
        if 0 < positive.sum() < len(positive):
            fpr, tpr = roc_curve(rows.proba[:, c], positive)
            ax.plot(fpr, tpr, linewidth=1.4, label=f"{style.plain(name, 16)} (AUC {auc[c]:.3f})")
        else:
            state = "absent from" if not positive.any() else "every row of"
            ax.plot([], [], linewidth=1.4, label=f"{style.plain(name, 16)}: {state} the window")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    title = f"ROC one vs rest (macro AUC {style.format_share(stats.roc_auc_macro)})"
    style.style_axes(ax, title=title, xlabel="false positive rate", ylabel="true positive rate")
    style.few_ticks(ax, x=5, y=5)
    many = len(stats.class_names) > 6
    ax.legend(fontsize=style.TICK_SIZE - (1 if many else 0), loc="lower right", framealpha=0.85,
              ncols=2 if many else 1)


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct score (ties in one step), thinned to :data:`ROC_POINTS`.

    Needs at least one positive and one negative sample.
    """
    order = np.argsort(-scores, kind="stable")
    ordered, hits = scores[order], positive[order]
    ends = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]
    true_positives = np.cumsum(hits)[ends]
    false_positives = ends + 1 - true_positives
    fpr = np.r_[0.0, false_positives / false_positives[-1]]
    tpr = np.r_[0.0, true_positives / true_positives[-1]]
    if len(fpr) > ROC_POINTS:
        keep = np.unique(np.linspace(0, len(fpr) - 1, ROC_POINTS).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr, tpr
