"""The digest at the end of a sweep: the top k cards (when not drawn by the workers), the batch overview and the
verdict on the whole sweep, logged on the execution run.

A failure here never loses the sweep: every trial is recorded before, and a digest that cannot be drawn (no
trial finished, an unexpected error) is logged on the execution run as ``atlas.error`` and said on the console.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from atlas.exceptions import MissingDataError
from atlas.infra._callbacks import SweepCallback
from atlas.runs import CARD_ARTIFACT, OVERVIEW_ARTIFACT, SIGNIFICANCE_ARTIFACT, Tag

if TYPE_CHECKING:
    from atlas.infra._driver import Sweep


class Digest(SweepCallback):
    """Cards for the top k, the overview and the sweep's verdict, on the execution run."""

    def __init__(self, out) -> None:
        self.out = out
        self.verdict = None

    def sweep_finished(self, sweep: Sweep) -> None:
        results = sweep.results_frame()
        if results.empty or not (results["state"] == "finished").any():
            return
        cards = sweep.spec.digest.cards
        if isinstance(cards, int) and not isinstance(cards, bool) and cards > 0:
            self._top_cards(sweep, results, cards)
        for page, png in enumerate(self._overview(results)):
            name = OVERVIEW_ARTIFACT if page == 0 else OVERVIEW_ARTIFACT.replace(".png", f"-{page + 1}.png")
            sweep.writer.log_bytes(sweep.execution, png, name)
        self._significance(sweep, results)

    def _top_cards(self, sweep: Sweep, results, k: int) -> None:
        from atlas.stats._figures import card_png

        finished = results[results["state"] == "finished"]
        for _, rows in finished.groupby(["work_unit", "model_spec"]):
            for _, row in rows.sort_values("best_val_loss").head(k).iterrows():
                try:
                    predictions = results.predictions(row["run_id"]).part("test")
                except MissingDataError:
                    continue
                from atlas.stats._results import _title

                png = card_png(predictions, title=_title(row), calendar=results.calendar,
                               cost_bps=results.cost_bps, interval=results.interval)
                sweep.writer.log_bytes(row["run_id"], png, CARD_ARTIFACT)

    @staticmethod
    def _overview(results) -> list[bytes]:
        import io

        from matplotlib.backends.backend_agg import FigureCanvasAgg

        pages = []
        for figure in results.overview():
            canvas = FigureCanvasAgg(figure)
            buffer = io.BytesIO()
            canvas.print_png(buffer)
            pages.append(buffer.getvalue())
        return pages

    def _significance(self, sweep: Sweep, results) -> None:
        verdict = self.verdict = results.significance(seed=sweep.spec.seed)
        table = verdict.table.reset_index()
        best = table.loc[table["trial"] == verdict.best_trial, "run_id"]
        document = {"message": str(verdict), "significant": bool(verdict.significant),
                    "tradable": bool(verdict.tradable), "trials": verdict.trials,
                    "best_run_id": best.iloc[0] if len(best) else None, "best_trial": verdict.best_trial,
                    "adjusted_p_value": _number(verdict.adjusted_p_value),
                    "deflated_sharpe": _number(verdict.deflated_sharpe),
                    "expected_max_sharpe": _number(verdict.expected_max_sharpe), "alpha": verdict.alpha,
                    "adjustment": verdict.adjustment, "block_length": verdict.block_length,
                    "table": json.loads(table.to_json(orient="records"))}
        sweep.writer.log_text(sweep.execution, json.dumps(document, indent=2), SIGNIFICANCE_ARTIFACT)
        sweep.writer.log(sweep.execution, metrics=verdict.headline(),
                         tags={Tag.VERDICT: str(verdict)[:5000]})


def _number(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
