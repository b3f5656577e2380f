"""What every Atlas figure shares: a Figure on its own Agg canvas (never pyplot), PNG bytes, number formats, colors.

No function here touches matplotlib's global state (``rcParams``, ``pyplot``'s current figure): sizes and
colors are passed to each artist, so figures can be drawn in Ray workers and threads at once.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

DPI = 100
#: A baseball card: 14 x 9 inches at 100 dpi, 1400 x 900 pixels in the MLflow artifact viewer.
CARD_SIZE = (14.0, 9.0)
TITLE_SIZE = 13
PANEL_TITLE_SIZE = 10
LABEL_SIZE = 9
TICK_SIZE = 8
NOTE_SIZE = 8
#: Cells without a value (NaN) in a table: a light grey, apart from every color of viridis.
MISSING_COLOR = "#dcdcdc"
MODEL_COLOR = "#1f4e9c"
BASELINE_COLOR = "#7a7a7a"
GAIN_COLOR = "#2ca02c"
LOSS_COLOR = "#d62728"
WARNING_COLOR = "#b22222"
DASH = "\u2014"  # an em dash: the cell of an undefined value


def new_figure(width: float, height: float):
    """A white Figure of ``width`` x ``height`` inches at :data:`DPI`, on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def to_png(figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI` (fast zlib level: these are artifacts, not archives)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white", pil_kwargs={"compress_level": 3})
    return buffer.getvalue()


def viridis(missing: str = MISSING_COLOR):
    """Viridis with ``missing`` (by default :data:`MISSING_COLOR`) for masked (undefined) cells."""
    from matplotlib import colormaps

    return colormaps["viridis"].with_extremes(bad=missing)


def text_color(level: float) -> str:
    """Black on viridis' bright end, white on its dark end, dark grey on a missing cell."""
    if not math.isfinite(level):
        return "#555555"
    return "black" if level > 0.58 else "white"


def style_axes(ax, *, title: str, xlabel: str = "", ylabel: str = "", grid: bool = True, pad: float = 6) -> None:
    """A panel's title (``pad`` points above the axes: more where an offset text such as ``1e-3`` sits there),
    axis labels, tick size and a light grid."""
    # An explicit y spares matplotlib's search for tick labels above the axes (a fifth of a card's drawing).
    ax.set_title(title, fontsize=PANEL_TITLE_SIZE, fontweight="bold", loc="left", y=1.0, pad=pad)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    if grid:
        ax.grid(alpha=0.25, linewidth=0.6)


def few_ticks(ax, *, x: int = 5, y: int = 5) -> None:
    """At most about ``x`` and ``y`` ticks: every tick is several artists, and few read better."""
    from matplotlib.ticker import MaxNLocator

    if x:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=x))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=y))


def time_axis(ax, *, label: str = "time (UTC)", times: np.ndarray | None = None, pad=None) -> None:
    """Concise date ticks (about five) on the x axis of a panel whose x values are datetime64; a single
    timestamp in ``times`` gets ``pad`` (a Timedelta) either side rather than matplotlib's years."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    if times is not None and len(times) and times.min() == times.max():
        pad = np.timedelta64(pd.Timedelta(pad or "1h").value, "ns")
        ax.set_xlim(times[0] - pad, times[0] + pad)

    locator = AutoDateLocator(minticks=3, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlabel(label, fontsize=LABEL_SIZE)


def note(ax, text: str, *, y: float = 0.5, color: str = "#555555") -> None:
    """A grey line of explanation in the middle of a panel (an empty panel says why it is empty)."""
    ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va="center", fontsize=NOTE_SIZE + 1,
            color=color, style="italic", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 2})


def plain(text, limit: int | None = None) -> str:
    """User text (titles, class and model names) shown as written: ``$`` escaped so matplotlib never parses
    it as mathtext (``"$\\alpha$"`` would raise), cut to ``limit`` characters with an ellipsis."""
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "\u2026"
    return text.replace("$", r"\$")


def naive_utc(buckets) -> np.ndarray:
    """tz-aware timestamps as naive UTC datetime64 (matplotlib's own converter, no pandas registration)."""
    return np.asarray(buckets.tz_convert("UTC").tz_localize(None).to_numpy(), dtype="datetime64[ns]")


def finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def format_share(value, digits: int = 3) -> str:
    """``0.412``; an em dash where undefined."""
    return f"{float(value):.{digits}f}" if finite(value) else DASH


def format_percent(value, digits: int = 1, *, signed: bool = False) -> str:
    """``41.2%`` (``+2.3%`` when signed); an em dash where undefined."""
    if not finite(value):
        return DASH
    return f"{float(value) * 100:{'+' if signed else ''}.{digits}f}%"


def format_signed(value, digits: int = 4) -> str:
    """``+0.0123``; an em dash where undefined."""
    return f"{float(value):+.{digits}f}" if finite(value) else DASH


def format_number(value, digits: int = 3, *, zeros: bool = False) -> str:
    """Three significant digits (``0.00123``, ``1.23e-5``), trailing zeros kept if ``zeros`` (``0.00190``);
    ``∞`` for infinity, an em dash for NaN."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return DASH
    if math.isnan(number):
        return DASH
    if math.isinf(number):
        return "\u221e" if number > 0 else "\u2212\u221e"
    if number == 0:
        return "0"
    text = f"{number:{'#' if zeros else ''}.{digits}g}".rstrip(".")
    return text.replace("e-0", "e-").replace("e+0", "e+")


def format_p(value) -> str:
    """A p-value: four decimals from 0.001 up, three significant digits in scientific notation below."""
    if not finite(value):
        return DASH
    number = float(value)
    if number == 0:
        return "0"
    return f"{number:.4f}" if number >= 1e-3 else f"{number:.2e}".replace("e-0", "e-")
