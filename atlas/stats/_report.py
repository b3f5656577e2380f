"""The report: one self-contained HTML file of a sweep's execution (figures embedded, no server, no network), the
sweep, its batch overview, the verdict with its table, and the cards of its best trials.

Example (what ``atlas report experiments/quickstart.py`` does)::

    results = atlas.harvest("quickstart")
    path = write_report(results, "quickstart-report.html", top=5)
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import tempfile
from pathlib import Path

import pandas as pd

from atlas.exceptions import ConfigError, MissingDataError
from atlas.stats._results import Results, _title

_STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
main { max-width: 1460px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { font-size: 20px; margin: 36px 0 10px; }
h3 { font-size: 16px; margin: 22px 0 8px; }
.sub { color: #57606a; margin-bottom: 18px; }
.verdict { border-radius: 8px; padding: 14px 18px; font-size: 16px; margin: 12px 0; }
.yes { background: #dafbe1; border: 1px solid #4ac26b; } .no { background: #fff8c5; border: 1px solid #d4a72c; }
table { border-collapse: collapse; background: white; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 9px; text-align: right; }
th { background: #eef1f4; } td.l, th.l { text-align: left; }
.figure { background: white; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; margin: 10px 0 18px;
          display: inline-block; }
.figure img { max-width: 100%; height: auto; display: block; }
.note { color: #57606a; font-size: 12px; } code { background: #eef1f4; padding: 1px 4px; border-radius: 3px; }
a { color: #0969da; }
"""

#: Checked by the tests in a real browser: every image decoded (data URIs load before the load event).
_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var shown = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", images.length);
  document.body.setAttribute("data-images-rendered", shown);
});
"""


def report_html(results: Results, *, execution: dict, top: int = 5, server: str | None = None,
                verdict=None, cards: dict[str, bytes] | None = None) -> str:
    """The report of one execution as one HTML page.

    Args:
        results: the execution's trials (``atlas.stats.harvest(..., execution=...)``).
        execution: ``atlas.runs.describe_execution`` of its execution run.
        top: how many of the best trials (lowest validation loss) get their card.
        server: an MLflow UI's address (``http://mlflow.example:5000``); each run then links to it.
        verdict: the verdict on the sweep, when known; computed from the stored predictions otherwise.
        cards: PNG bytes of cards already drawn, by run id (the ones logged during the sweep); others are drawn.

    Raises:
        ConfigError: ``top`` is not a whole number >= 0.
        MissingDataError: the execution has no trial.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        msg = f"top must be a whole number of cards >= 0, got top={top!r}"
        raise ConfigError(msg)
    if results.empty:
        msg = f"execution {execution['run_id']} has no trial to report"
        raise MissingDataError(msg)
    cards = dict(cards or {})
    name = str(results["work_spec"].dropna().iloc[0]) if results["work_spec"].notna().any() else "sweep"
    parts = [f"<h1>{_e(name)}: sweep report</h1>",
             f'<div class="sub">execution {_link(execution["run_id"], execution, server)} · '
             f'{_e(execution.get("run_name") or "")} · generated {pd.Timestamp.now(tz="UTC"):%Y-%m-%d %H:%M} UTC</div>']
    parts += _sweep_section(results, execution)
    finished = results[results["state"] == "finished"]
    if finished.empty:
        parts.append('<div class="verdict no">No trial finished: nothing to digest.</div>')
        return _page(name, parts)
    if verdict is None:
        try:
            verdict = results.significance()
        except MissingDataError as error:
            parts.append(f'<div class="verdict no">No verdict: {_e(str(error))}</div>')
    if verdict is not None:
        parts += _verdict_section(verdict, results, execution, server)
    parts.append("<h2>Batch overview</h2>")
    parts.append('<p class="note">One row per trial, best validation loss first; each column colored on its own '
                 "scale (bright is better); hatched rows are degenerate models.</p>")
    for figure in results.overview():
        parts.append(_figure(_png(figure), "batch overview"))
    best = finished.sort_values("best_val_loss", na_position="last").head(top)
    if len(best):
        parts.append(f"<h2>The {len(best)} best trials by validation loss</h2>")
    for _, row in best.iterrows():
        run_id = row["run_id"]
        parts.append(f"<h3>{_e(row['work_unit'])} / {_e(row.get('run_name', ''))} — "
                     f"{_link(run_id, execution, server)}</h3>")
        png = cards.get(run_id)
        if png is None:
            try:
                png = _png(results.card(run_id))
            except MissingDataError as error:
                parts.append(f'<p class="note">No card: {_e(str(error))}</p>')
                continue
        parts.append(_figure(png, _title(row)))
    parts.append(_footer(execution, server))
    return _page(name, parts)


class StoredVerdict:
    """A verdict as the sweep logged it (``significance.json`` on the execution run), read back for a report."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.significant = bool(document.get("significant"))
        self.table = pd.DataFrame(document.get("table", [])).set_index("trial") if document.get("table") else \
            pd.DataFrame(columns=["run_id", "lift", "ci_low", "ci_high", "p_value", "holm_p", "romano_wolf_p",
                                  "sharpe"])

    def __str__(self) -> str:
        return str(self.document.get("message", ""))


def write_report(results: Results, path: str | Path, **options) -> Path:
    """Writes :func:`report_html` to ``path`` whole (a temporary file renamed), returns the path.

    Raises:
        ConfigError: ``path`` does not end in ``.html``.
    """
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        msg = f"a report is an HTML file: give --output a name ending in .html, got {path.name!r}"
        raise ConfigError(msg)
    text = report_html(results, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as out:
        out.write(text)
    Path(out.name).replace(path)
    return path


def _sweep_section(results: Results, execution: dict) -> list[str]:
    parts = ["<h2>The sweep</h2>"]
    counts = results["state"].value_counts()
    started, ended = execution.get("start_time"), execution.get("end_time")
    wall = f"{(ended - started).total_seconds():,.0f} s" if started is not None and ended is not None else "running"
    params = execution.get("params", {})
    rows = [("trials", f"{len(results):,}"),
            ("states", ", ".join(f"{v} {k}" for k, v in counts.items())),
            ("search", params.get("work_spec.search.strategy", "?")),
            ("wall time", wall), ("started", f"{started:%Y-%m-%d %H:%M:%S} UTC" if started is not None else "?"),
            ("trading cost", f"{results.cost_bps:g} bps per unit of turnover"),
            ("calendar", f"{results.calendar.days_per_year:g} days x {results.calendar.hours_per_day:g} h")]
    parts.append(_table(["", ""], rows, left=(0,)))
    units = []
    for unit in execution.get("work_units", []):
        p = unit["params"]
        trials = results[results["work_unit"] == unit["name"]]
        units.append((unit["name"], _window(p, "train"), _window(p, "test"), p.get("data.train_samples", "?"),
                      p.get("data.test_samples", "?"), p.get("data.label", "?"), f"{len(trials)}",
                      f"{trials['best_val_loss'].min():.4f}" if trials["best_val_loss"].notna().any() else "–"))
    if units:
        parts.append("<h3>Work units</h3>")
        parts.append(_table(["work unit", "train", "test", "train samples", "test samples", "label", "trials",
                             "best val loss"], units, left=(0, 1, 2, 5)))
    return parts


def _window(params: dict, part: str) -> str:
    value = params.get(part)
    try:
        start, end = json.loads(value)
        return f"{start} – {end}"
    except (TypeError, ValueError):
        return str(value or "?")


def _verdict_section(verdict, results: Results, execution: dict, server: str | None) -> list[str]:
    kind = "yes" if verdict.significant else "no"
    parts = ["<h2>Is the best better than luck?</h2>", f'<div class="verdict {kind}">{_e(str(verdict))}</div>',
             '<p class="note">The lift is each trial\'s test-window accuracy (or error) over its baseline, judged '
             "with a block bootstrap that respects overlapping labels; Romano-Wolf and Holm correct for every trial "
             "tried; the deflated Sharpe ratio (Bailey and López de Prado, 2014) asks whether trading the best "
             "beats the best of as many unskilled trials, net of costs.</p>"]
    table = verdict.table.reset_index().sort_values("p_value", na_position="last").head(25)
    rows = []
    for _, row in table.iterrows():
        run = row.get("run_id")
        name = _e(str(row.get("trial", run)))
        rows.append((f"{name} ({_link(run, execution, server)})" if run else name, _num(row["lift"], "+.4f"),
                     f"{_num(row['ci_low'], '+.4f')} … {_num(row['ci_high'], '+.4f')}", _p(row["p_value"]),
                     _p(row["holm_p"]), _p(row["romano_wolf_p"]), _num(row["sharpe"], "+.2f")))
    more = len(verdict.table) - len(rows)
    parts.append(_table(["trial", "lift", "95% interval", "p", "Holm p", "Romano-Wolf p", "Sharpe"], rows,
                        left=(0,), raw=(0,)))
    if more > 0:
        parts.append(f'<p class="note">and {more} more trials (the 25 with the smallest p-values are shown).</p>')
    return parts


def _footer(execution: dict, server: str | None) -> str:
    if server:
        where = (f'Runs link to the MLflow UI at <a href="{_e(server)}">{_e(server)}</a> (experiment '
                 f'{_e(execution["experiment_id"])}).')
    else:
        where = ("The runs are in a local MLflow store: open it with <code>mlflow ui --backend-store-uri "
                 "&lt;MLFLOW_TRACKING_URI&gt;</code> and search for the run ids shown.")
    return f'<h2>Where it lives</h2><p class="note">{where} Made by Atlas from the stored predictions of each trial.</p>'


def _link(run_id, execution: dict, server: str | None) -> str:
    if not run_id:
        return ""
    short = _e(str(run_id)[:8])
    if not server:
        return f'<code title="{_e(str(run_id))}">{short}</code>'
    url = (f"{server.rstrip('/')}/#/experiments/{execution['experiment_id']}/runs/{run_id}"
           "?workflowType=machine_learning")
    return f'<a href="{_e(url)}">{short}</a>'


def _table(headers: list[str], rows: list[tuple], *, left=(), raw=()) -> str:
    head = "".join(f'<th class="{"l" if i in left else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i in left else ""}">{v if i in raw else _e(str(v))}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<div class="figure"><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></div>'


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _num(value, spec: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(number, spec) if math.isfinite(number) else ("∞" if number > 0 else "–")


def _p(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    return f"{number:.2e}" if number < 1e-3 else f"{number:.3f}"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, parts: list[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)} – Atlas report</title>'
            f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body><main>" + "\n".join(parts) +
            "</main></body></html>\n")
