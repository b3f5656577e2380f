"""plot_data's figure: one panel per feature and label, labels in another colour, gaps left as breaks."""

from __future__ import annotations

import numpy as np
import pandas as pd


def plot_frame(frame: pd.DataFrame, features: list[str], labels: list[str], *, subplots: bool, title: str,
               bucket: str | pd.Timedelta | None = None):
    """A matplotlib ``Figure`` made without pyplot (no global state; Jupyter shows it, ``savefig`` writes it).

    Missing buckets (a weekend, an outage, rows dropped when the frame was cleaned) are breaks in the lines, not
    straight lines drawn across them: see :func:`with_breaks`. A value alone between two gaps, which a line
    cannot show, is drawn as a dot.

    Args:
        frame: columns on a time-ordered bucket index.
        features: the feature columns, drawn in blue. labels: the label columns, drawn in orange.
        subplots: one panel per column (True) or one shared panel.
        title: the figure's title.
        bucket: the bucket width of the grid (``"1min"``); by default the smallest step between the rows.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = [*features, *labels]
    frame = with_breaks(frame[columns], bucket)
    if subplots:
        fig = Figure(figsize=(11, 1.6 * len(columns) + 1))
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)
        for ax, column in zip(axes[:, 0], columns):
            _draw(ax, frame[column], color="tab:orange" if column in labels else "tab:blue")
            ax.set_ylabel(_short(column), rotation=0, ha="right", va="center", fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("bucket (UTC)")
    else:
        fig = Figure(figsize=(11, 5))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for column in columns:
            _draw(ax, frame[column], label=_short(column))
        ax.legend(fontsize=7)
        ax.set_xlabel("bucket (UTC)")
    fig.suptitle(title if len(title) < 90 else title[:87] + "...", fontsize=10)
    fig.tight_layout()
    return fig


def with_breaks(frame: pd.DataFrame, bucket: str | pd.Timedelta | None = None) -> pd.DataFrame:
    """``frame`` with one row of NaN one bucket after each row that the next row does not follow on the grid.

    Matplotlib draws a line across consecutive points but breaks it at a NaN, so a gap (missing buckets) shows
    as a break. One row a gap, not the whole grid: a year of one-minute buckets with a gap every weekend grows by
    52 rows, not by the weekends' 150,000 buckets.

    Example:
        >>> index = pd.DatetimeIndex(["2024-01-05 22:00", "2024-01-05 23:00", "2024-01-08 00:00"], tz="UTC")
        >>> with_breaks(pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=index), "1h")["x"].tolist()
        [1.0, 2.0, nan, 3.0]

    Args:
        frame: rows on a time-ordered DatetimeIndex (another index is returned as it is).
        bucket: the grid's width; by default the smallest step between the rows.
    """
    if not isinstance(frame.index, pd.DatetimeIndex) or len(frame) < 2:
        return frame
    steps = np.diff(frame.index.as_unit("ns").asi8)
    if bucket is not None:
        width = pd.Timedelta(bucket).value
    elif np.any(steps > 0):
        width = int(steps[steps > 0].min())
    else:
        return frame
    before_gap = np.flatnonzero(steps > width)
    if not len(before_gap):
        return frame
    breaks = pd.DataFrame(np.nan, index=frame.index[before_gap] + pd.Timedelta(width, unit="ns"),
                          columns=frame.columns)
    return pd.concat([frame.astype(float), breaks]).sort_index(kind="stable")


def _draw(ax, series: pd.Series, **style) -> None:
    """One line of ``series`` (NaN breaks it), and a dot for each value with no neighbour to draw a line to."""
    (line,) = ax.plot(series.index, series.to_numpy(dtype=float), lw=0.7, **style)
    present = series.notna().to_numpy()
    alone = present & ~np.r_[False, present[:-1]] & ~np.r_[present[1:], False]
    if alone.any():
        ax.plot(series.index[alone], series.to_numpy(dtype=float)[alone], ls="none", marker=".", ms=2,
                color=line.get_color())


def _short(name: str) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(name, 30, break_on_hyphens=False)) or name
