"""plot_data's figure: one panel per feature and label, labels in another colour."""

from __future__ import annotations

import pandas as pd


def plot_frame(frame: pd.DataFrame, features: list[str], labels: list[str], *, subplots: bool, title: str):
    """A matplotlib ``Figure`` made without pyplot (no global state; Jupyter shows it, ``savefig`` writes it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = [*features, *labels]
    if subplots:
        fig = Figure(figsize=(11, 1.6 * len(columns) + 1))
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)
        for ax, column in zip(axes[:, 0], columns):
            ax.plot(frame.index, frame[column], lw=0.7, color="tab:orange" if column in labels else "tab:blue")
            ax.set_ylabel(_short(column), rotation=0, ha="right", va="center", fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("bucket (UTC)")
    else:
        fig = Figure(figsize=(11, 5))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for column in columns:
            ax.plot(frame.index, frame[column], lw=0.7, label=_short(column))
        ax.legend(fontsize=7)
        ax.set_xlabel("bucket (UTC)")
    fig.suptitle(title if len(title) < 90 else title[:87] + "...", fontsize=10)
    fig.tight_layout()
    return fig


def _short(name: str) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(name, 30, break_on_hyphens=False)) or name
