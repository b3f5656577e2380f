"""The batch overview: one heatmap table per work unit, a row per trial, each column on its own color scale."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from atlas.stats._checks import check_count
from atlas.stats._figures import _style as style

ROW_HEIGHT = 0.24  # inches
CELL_WIDTH = 0.64
HEADER_HEIGHT = 1.25
FOOTER_LINE = 0.18  # inches per footer line
FOOTER_CHAR_WIDTH = 0.072  # inches per character of a footer line at 9 points
LABEL_CHAR_WIDTH = 0.062  # inches per character of a row label at 8 points
CELL_SIZE = 7.5
UNIT_COLUMN = "work_unit"
SORT_COLUMN = "best_val_loss"


@dataclass(frozen=True)
class Column:
    """A column of the overview: where it comes from, its header, which way is better, how it prints."""

    key: str
    header: str
    higher_is_better: bool
    text: Callable[[float], str]
    group: str = ""
    log_scale: bool = False  # colored by -log10 (p-values: 0.001 and 0.04 differ)


def _share(value) -> str:
    return style.format_share(value)


def _ratio(value) -> str:
    """An LR: two decimals, ``∞`` where PV is 1."""
    return style.format_number(value) if not style.finite(value) else f"{float(value):.2f}"


def _signed(digits: int) -> Callable[[float], str]:
    return lambda value: style.format_signed(value, digits)


def _columns(class_names) -> list[Column]:
    loss = Column(SORT_COLUMN, "val loss", False, lambda v: style.format_number(v, 4, zeros=True))
    p_value = Column("p_value", "p-value", False, style.format_p, log_scale=True)
    sharpe = Column("sharpe", "Sharpe", True, _signed(2))
    if class_names is None:
        return [loss, Column("rmse", "RMSE", False, lambda v: style.format_number(v, 3, zeros=True)),
                Column("directional_accuracy", "dir. acc.", True, _share), Column("ic", "IC", True, _signed(3)),
                Column("rank_ic", "rank IC", True, _signed(3)), Column("r2_oos", "R\u00b2 oos", True, _signed(4)),
                sharpe, p_value]
    per_class = []
    for name in class_names:
        per_class += [Column(f"pv_{name}", "PV", True, _share, group=name),
                      Column(f"pr_{name}", "PR", True, _share, group=name),
                      Column(f"lr_{name}", "LR", True, _ratio, group=name)]
    return [loss, Column("accuracy", "accuracy", True, _share), *per_class,
            Column("accuracy_lift", "lift", True, _signed(3)), sharpe, p_value]


def overview(table: pd.DataFrame, *, class_names, title: str, top: int = 40) -> list:
    """Draws a sweep's batch overview: one heatmap table per work unit, one row per trial.

    Rows are sorted by ``best_val_loss`` (best first) and the best ``top`` of each work unit are shown; a footer
    counts the others and gives their median accuracy. A classifier's columns are the validation loss, accuracy,
    PV, PR and LR of each class, the lift over the baseline, Sharpe and the p-value; a regressor's (``class_names``
    None) the validation loss, RMSE, directional accuracy, IC, rank IC, out-of-sample R², Sharpe and the p-value.
    Each column is colored on its own scale across the unit's trials (viridis, the better end bright: a low
    p-value or loss, a high accuracy or LR), values are printed in the cells, undefined values are grey.
    Degenerate trials (the boolean column ``degenerate``, see :func:`~atlas.stats.is_degenerate`) are hatched and
    marked; a trial whose metrics are all missing (no stored predictions) is marked and drawn grey.

    Example:
        >>> table = pd.DataFrame({"work_unit": "BTC-USD", "model_spec": "mlp", "trial": [0, 1],
        ...                       "run_id": ["a1", "b2"], "best_val_loss": [0.69, 0.68], "degenerate": [True, False],
        ...                       "accuracy": [0.5, 0.52], "accuracy_lift": [0.0, 0.02], "sharpe": [0.0, 1.3],
        ...                       "p_value": [1.0, 0.03], "pv_down": [float("nan"), 0.5], "pv_up": [0.5, 0.53],
        ...                       "pr_down": [0.0, 0.4], "pr_up": [1.0, 0.6], "lr_down": [float("nan"), 0.8],
        ...                       "lr_up": [2.0, 1.3]})
        >>> [len(figure.axes) for figure in overview(table, class_names=["down", "up"], title="sweep 7")]
        [1]

    Args:
        table: one row per trial with ``work_unit``, ``model_spec``, ``trial``, ``run_id``, ``best_val_loss``,
            ``degenerate`` and the metric columns (flat names as :func:`~atlas.stats.headline_metrics` gives
            them: ``pv_<class>``, ``pr_<class>``, ``lr_<class>``, ...; plus ``accuracy_lift`` and ``p_value``).
            A missing metric column is drawn empty, with a note.
        class_names: the classes, lowest id first; None for regressors.
        title: the sweep's title, above each table.
        top: how many trials of a unit are shown, best validation loss first.

    Returns:
        A list of ``matplotlib.figure.Figure``, one per work unit (sorted by name), on Agg canvases.

    Raises:
        ConfigError: a table that is not a DataFrame or has no row, class names that are not two or more
            distinct names, a title that is not text, or ``top`` below 1.
    """
    if not isinstance(table, pd.DataFrame):
        msg = f"overview needs a pandas DataFrame with one row per trial, got {type(table).__name__}"
        raise ConfigError(msg)
    if table.empty:
        msg = "overview needs at least one trial; the table has no row (did every trial fail?)"
        raise ConfigError(msg)
    if not isinstance(title, str):
        msg = f"title must be text, got {type(title).__name__}"
        raise ConfigError(msg)
    top = check_count("top", top, minimum=1)
    names = _class_names(class_names)
    columns = _columns(names)
    missing = [c.key for c in columns if c.key not in table.columns]
    units = (table[UNIT_COLUMN].fillna("(no work unit)").astype(str) if UNIT_COLUMN in table.columns
             else pd.Series("(all trials)", index=table.index))
    return [_unit_figure(table[units == unit], unit, columns, missing, title=title, top=top,
                         regressor=names is None) for unit in sorted(units.unique())]


def overview_png(table: pd.DataFrame, *, class_names, title: str, top: int = 40) -> list[bytes]:
    """:func:`overview` as PNG bytes, one image per work unit."""
    return [style.to_png(figure) for figure in overview(table, class_names=class_names, title=title, top=top)]


def _class_names(class_names) -> tuple[str, ...] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not hasattr(class_names, "__iter__"):
        msg = f"class_names must be a list of names, lowest class first (or None for regressors), got {class_names!r}"
        raise ConfigError(msg)
    names = tuple(str(c) for c in class_names)
    if len(names) < 2 or len(set(names)) != len(names):
        msg = f"class_names must be two or more distinct names, got class_names={names}"
        raise ConfigError(msg)
    return names


def _numbers(frame: pd.DataFrame, key: str) -> np.ndarray:
    if key not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[key], errors="coerce").to_numpy(np.float64, na_value=np.nan)


def _flags(column: pd.Series) -> np.ndarray:
    """A boolean column read leniently: missing is False, and so are the texts "false", "0" and "no"."""
    def flag(value) -> bool:
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return False if value is None or pd.isna(value) else bool(value)

    return np.array([flag(value) for value in column.to_numpy(object)], dtype=bool)


def levels(values: np.ndarray, column: Column) -> np.ndarray:
    """Each value's place on its column's scale, 0 (worst) to 1 (best); NaN where undefined.

    The scale spans the column's finite values; ``+inf`` (an LR whose PV is 1) sits at the top of its direction.
    """
    values = np.asarray(values, dtype=np.float64)
    if column.log_scale:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = -np.log10(np.clip(values, 1e-300, 1.0))
        better_high = True
    else:
        better_high = column.higher_is_better
    finite = np.isfinite(values)
    out = np.full(len(values), np.nan)
    if finite.any():
        low, high = values[finite].min(), values[finite].max()
        out[finite] = (values[finite] - low) / (high - low) if high > low else 0.5
    out[values == np.inf] = 1.0
    out[values == -np.inf] = 0.0
    return out if better_high else 1.0 - out


def _row_label(row: pd.Series, rank: int) -> str:
    label = row.get("label")
    if isinstance(label, str) and label:  # the caller's own (a grid point's replicates, aggregated)
        return style.plain(f"{rank}. {label}", 64)
    spec = row.get("model_spec")
    trial = row.get("trial")
    run = row.get("run_id")
    parts = [str(spec) if spec is not None and not pd.isna(spec) else "?"]
    if trial is not None and not pd.isna(trial):
        number = pd.to_numeric(pd.Series([trial]), errors="coerce").iloc[0]
        parts.append(f"trial {int(number)}" if not pd.isna(number) and float(number).is_integer() else str(trial))
    if run is not None and not pd.isna(run):
        parts.append(str(run)[:8])
    return style.plain(f"{rank}. " + " \u00b7 ".join(parts), 64)


def _unit_figure(frame: pd.DataFrame, unit: str, columns: list[Column], missing: list[str], *, title: str,
                 top: int, regressor: bool):
    total = len(frame)
    loss = _numbers(frame, SORT_COLUMN)
    order = np.argsort(np.where(np.isnan(loss), np.inf, loss), kind="stable")
    frame = frame.iloc[order]
    values = np.column_stack([_numbers(frame, c.key) for c in columns])
    scale = np.column_stack([levels(values[:, j], c) for j, c in enumerate(columns)])
    degenerate = (_flags(frame["degenerate"]) if "degenerate" in frame.columns else np.zeros(total, dtype=bool))
    metric_columns = [j for j, c in enumerate(columns) if c.key != SORT_COLUMN and c.key not in missing]
    empty = np.isnan(values[:, metric_columns]).all(axis=1) if metric_columns else np.zeros(total, bool)
    shown = min(top, total)
    labels = []
    for i in range(shown):
        label = _row_label(frame.iloc[i], i + 1)
        if degenerate[i]:
            label += "  \u26a0 degenerate"
        elif empty[i]:
            label += "  (no predictions)"
        labels.append(label)

    n_columns = len(columns)
    label_width = max(2.2, LABEL_CHAR_WIDTH * max(len(label) for label in labels) + 0.3)
    grid_width, grid_height = CELL_WIDTH * n_columns, ROW_HEIGHT * shown
    width = max(9.0, label_width + grid_width + 0.4)
    footer = _footer_lines(values, columns, degenerate, shown=shown, missing=missing, regressor=regressor,
                           width=width)
    footer_height = 0.4 + FOOTER_LINE * len(footer)
    height = HEADER_HEIGHT + grid_height + footer_height
    figure = style.new_figure(width, height)
    ax = figure.add_axes((label_width / width, footer_height / height, grid_width / width, grid_height / height))
    ax.imshow(np.ma.masked_invalid(scale[:shown]), cmap=style.viridis(), vmin=0, vmax=1, aspect="auto",
              interpolation="nearest", extent=(-0.5, n_columns - 0.5, shown - 0.5, -0.5))
    for i in range(shown):
        for j, column in enumerate(columns):
            ax.text(j, i, column.text(values[i, j]), ha="center", va="center", fontsize=CELL_SIZE,
                    color=style.text_color(scale[i, j]))
    _flag_rows(ax, degenerate[:shown], n_columns)
    _headers(ax, columns, missing)
    ax.set_yticks(range(shown), labels, fontsize=8)
    for tick, flagged, no_data in zip(ax.get_yticklabels(), degenerate[:shown], empty[:shown]):
        if flagged:
            tick.set_color(style.WARNING_COLOR)
            tick.set_fontstyle("italic")
        elif no_data:
            tick.set_color("#888888")
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)

    specs = frame["model_spec"].nunique() if "model_spec" in frame.columns else 0
    figure.text(0.1 / width, 1 - 0.12 / height, style.plain(f"{title or 'Sweep'} \u2014 work unit {unit}", 120),
                fontsize=style.TITLE_SIZE, fontweight="bold", va="top", ha="left")
    figure.text(0.1 / width, 1 - 0.42 / height,
                f"{total} trials" + (f" of {specs} model specs" if specs else "") +
                f", best validation loss first; showing {shown}", fontsize=style.LABEL_SIZE + 1, va="top",
                ha="left", color="#333333")
    for n, (line, bold) in enumerate(footer):
        figure.text(0.1 / width, (footer_height - 0.3 - FOOTER_LINE * n) / height, line, va="top", ha="left",
                    fontsize=9 if bold else 8.5, fontweight="bold" if bold else "normal",
                    color="#222222" if bold else "#555555")
    return figure


def _headers(ax, columns: list[Column], missing: list[str]) -> None:
    ax.xaxis.tick_top()
    headers = [c.header + (" \u2205" if c.key in missing else "") for c in columns]
    ax.set_xticks(range(len(columns)), headers, fontsize=8, fontweight="bold")
    for tick, column in zip(ax.get_xticklabels(), columns):
        if column.key in missing:
            tick.set_color("#999999")
    groups: dict[str, list[int]] = {}
    for j, column in enumerate(columns):
        groups.setdefault(column.group, []).append(j)
    from matplotlib.transforms import blended_transform_factory, offset_copy

    above = offset_copy(blended_transform_factory(ax.transData, ax.transAxes), fig=ax.figure, y=17,
                        units="points")
    for name, members in groups.items():
        if name:
            ax.text((members[0] + members[-1]) / 2, 1.0, style.plain(name, 7 * len(members)), transform=above, ha="center", va="bottom",
                    fontsize=9, fontweight="bold", clip_on=False)
    bounds = sorted({members[0] - 0.5 for members in groups.values()} | {m[-1] + 0.5 for m in groups.values()})
    for x in bounds[1:-1]:
        ax.axvline(x, color="white", linewidth=2.5)
    ax.set_xlim(-0.5, len(columns) - 0.5)


def _flag_rows(ax, degenerate: np.ndarray, n_columns: int) -> None:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    rows = np.flatnonzero(degenerate)
    if not len(rows):
        return
    patches = [Rectangle((-0.5, i - 0.5), n_columns, 1) for i in rows]
    ax.add_collection(PatchCollection(patches, facecolor="none", edgecolor=(0.7, 0.1, 0.1, 0.55),
                                      hatch="////", linewidth=0))


def _footer_lines(values: np.ndarray, columns: list[Column], degenerate: np.ndarray, *, shown: int,
                  missing: list[str], regressor: bool, width: float) -> list[tuple[str, bool]]:
    """The footer, wrapped to the figure's width: what is not shown, how to read the colors, what is missing."""
    import textwrap

    total = len(values)
    hidden = total - shown
    lines = []
    if hidden:
        key, name = ("directional_accuracy", "directional accuracy") if regressor else ("accuracy", "accuracy")
        rest = values[shown:, next(j for j, c in enumerate(columns) if c.key == key)]
        median = style.format_share(np.nanmedian(rest)) if np.isfinite(rest).any() else style.DASH
        p = values[shown:, next(j for j, c in enumerate(columns) if c.key == "p_value")]
        best_p = style.format_p(np.nanmin(p)) if np.isfinite(p).any() else style.DASH
        lines.append((f"and {hidden} more trials (not shown), median {name} {median}, smallest p-value {best_p}, "
                      f"{int(degenerate[shown:].sum())} degenerate", True))
    lower = "loss, RMSE and p-value" if regressor else "loss and p-value"
    lines.append((f"Each column is colored on its own scale across the unit's {total} trials: bright = better "
                  f"(low {lower}, high everything else); grey = undefined.", False))
    lines.append(("\u26a0 hatched rows: degenerate models ("
                  + ("a constant prediction)." if regressor else "one class predicted, or constant probabilities).")
                  , False))
    if missing:
        lines.append((f"\u2205 not in the table, drawn empty: {style.plain(', '.join(missing), 300)}"
                      + (" (rows in table order)" if SORT_COLUMN in missing else ""), False))
    characters = int(width / FOOTER_CHAR_WIDTH)
    return [(part, bold) for line, bold in lines for part in textwrap.wrap(line, characters)]
