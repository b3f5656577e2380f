"""The baseball card: one trial's test window in six panels, a classifier's or a regressor's."""

from __future__ import annotations

from atlas.exceptions import ConfigError
from atlas.stats._calendar import CRYPTO, Calendar
from atlas.stats._checks import check_number
from atlas.stats._figures import _style as style
from atlas.stats._figures._window import Window, degeneracy, p_value, window


def card(predictions, *, title: str, significance=None, calendar: Calendar = CRYPTO, cost_bps: float = 1.0,
         interval: str = "1D", part: str = "test"):
    """Draws a trial's baseball card: what its test window says about the model, in six panels.

    A classifier's card holds the normalized confusion matrix (rows: truth) with each class's prevalence and
    the prediction bias, a summary table, the accuracy per interval against the baseline's, the histogram of
    those accuracies (titled with the interval win rate), precision and frequency against the confidence
    threshold, and one-vs-rest ROC curves. A regressor's holds predictions against reality, a summary table, the
    IC per interval, the residuals over time, the cumulative net return of trading the prediction's sign against
    buying and holding, and the directional accuracy of its strongest predictions.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from atlas.stats import check_predictions
        >>> rng = np.random.default_rng(0)
        >>> proba = rng.dirichlet([2, 2], size=500)
        >>> frame = pd.DataFrame({"bucket": pd.date_range("2024-01-01", periods=500, freq="5min", tz="UTC"),
        ...                       "part": "test", "y_true": rng.integers(0, 2, 500),
        ...                       "forward_return": rng.normal(0, 1e-3, 500), "y_pred": proba.argmax(axis=1),
        ...                       "proba_down": proba[:, 0], "proba_up": proba[:, 1]})
        >>> trial = check_predictions(frame, bucket_width="5min", horizon=1, baseline_class=1)
        >>> figure = card(trial, title="mlp / BTC-USD 5min / trial 3 / run 9f2c", significance=0.41)
        >>> len(figure.axes), figure.get_size_inches().tolist()
        (6, [14.0, 9.0])

    Args:
        predictions: the trial's :class:`~atlas.stats.Predictions` (or a frame carrying their metadata).
        title: the card's title: the model spec, work unit, trial and run id, as the caller names them.
        significance: the trial's :class:`~atlas.stats.TrialSignificance` or p-value (e.g. from the sweep's
            verdict table); by default it is computed with :func:`~atlas.stats.trial_significance`, which
            takes the bootstrap's time (about half a second for 20,000 rows).
        calendar: the market's trading year, for the annualized Sharpe ratio.
        cost_bps: the trading cost of a unit change of position, in basis points.
        interval: the width of the intervals of the over-time panels (default one day).
        part: the part drawn (default ``"test"``).

    Returns:
        A ``matplotlib.figure.Figure`` of 14 x 9 inches at 100 dpi, on its own Agg canvas (no pyplot).

    Raises:
        ConfigError: not Predictions, no row of ``part``, a title that is not text, or an invalid
            ``significance``, ``cost_bps`` or ``interval``.
    """
    if not isinstance(title, str):
        msg = f"title must be text (model spec, work unit, trial, run id), got {type(title).__name__}"
        raise ConfigError(msg)
    if not isinstance(calendar, Calendar):
        msg = f"calendar must be an atlas.stats.Calendar (e.g. CRYPTO), got {calendar!r}"
        raise ConfigError(msg)
    cost_bps = check_number("cost_bps", cost_bps, low=0)
    rows = window(predictions, part)
    _check_interval(interval)
    pvalue = p_value(rows, significance)
    figure = style.new_figure(*style.CARD_SIZE)
    grid = figure.add_gridspec(2, 3, left=0.05, right=0.985, top=0.855, bottom=0.07, wspace=0.27, hspace=0.45)
    reason = degeneracy(rows)
    _header(figure, title, rows, reason)
    if rows.classifier:
        from atlas.stats._figures._classifier import draw_classifier

        draw_classifier(figure, grid, rows, pvalue, calendar=calendar, cost_bps=cost_bps, interval=interval)
    else:
        from atlas.stats._figures._regressor import draw_regressor

        draw_regressor(figure, grid, rows, pvalue, calendar=calendar, cost_bps=cost_bps, interval=interval)
    return figure


def card_png(predictions, *, title: str, significance=None, calendar: Calendar = CRYPTO, cost_bps: float = 1.0,
             interval: str = "1D", part: str = "test") -> bytes:
    """:func:`card` as PNG bytes (1400 x 900 pixels), e.g. for ``MlflowClient.log_image`` or a file."""
    return style.to_png(card(predictions, title=title, significance=significance, calendar=calendar,
                             cost_bps=cost_bps, interval=interval, part=part))


def _check_interval(interval) -> None:
    from atlas.data.buckets import parse_width

    parse_width(interval)  # a ConfigError that names the width


def _header(figure, title: str, rows: Window, reason: str | None) -> None:
    predictions = rows.predictions
    first, last = rows.buckets[0], rows.buckets[-1]
    kind = (f"classifier, {predictions.n_classes} classes" if rows.classifier else "regressor")
    buckets = f"{rows.samples:,} bucket{'' if rows.samples == 1 else 's'}"
    window_text = (f"{rows.part} window {first:%Y-%m-%d %H:%M} \u2013 {last:%Y-%m-%d %H:%M} UTC: "
                   f"{buckets} of {predictions.bucket_width}, horizon {predictions.horizon}")
    figure.text(0.012, 0.975, style.plain(title or "(untitled trial)", 150), fontsize=style.TITLE_SIZE, fontweight="bold",
                va="top", ha="left")
    figure.text(0.012, 0.935, f"{kind} \u00b7 {window_text}", fontsize=style.LABEL_SIZE + 1, va="top",
                ha="left", color="#333333")
    if reason is not None:
        figure.text(0.988, 0.935, f"\u26a0 DEGENERATE: {style.plain(reason, 70)}", fontsize=style.LABEL_SIZE + 1, va="top",
                    ha="right", color="white", fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.3", "facecolor": style.WARNING_COLOR, "edgecolor": "none"})


def summary_table(ax, entries: list[tuple[str, str]], *, title: str) -> None:
    """A two-column table of ``(name, value)`` lines, banded, without axes."""
    import numpy as np

    ax.set_axis_off()
    ax.set_title(title, fontsize=style.PANEL_TITLE_SIZE, fontweight="bold", loc="left", y=1.0, pad=6)
    count = len(entries)
    ax.set_xlim(0, 1)
    ax.set_ylim(count, 0)
    bands = (np.arange(count) % 2)[:, None].astype(float)
    ax.imshow(bands, cmap="Greys", vmin=0, vmax=12, extent=(0, 1, count, 0), aspect="auto",
              interpolation="nearest")
    for line, (name, value) in enumerate(entries):
        ax.text(0.03, line + 0.5, name, fontsize=style.LABEL_SIZE + 0.5, va="center", ha="left")
        ax.text(0.97, line + 0.5, value, fontsize=style.LABEL_SIZE + 0.5, va="center", ha="right",
                fontweight="bold")


def p_value_entry(pvalue, *, name: str = "p-value of the lift (one-sided)") -> tuple[str, str]:
    if pvalue.source == "no baseline class":
        return name, style.DASH
    return name, style.format_p(pvalue.value)
