"""What the digest costs: a sweep of 500 trials read back and judged, cards drawn, and a real sweep with a card on
every trial against the same sweep without cards.

1. An MLflow store holding one execution of 500 trials, written as a sweep writes them (``RunWriter``: runs,
   headline statistics, ``predictions.parquet`` of 20,000 test buckets each), in a temporary ATLAS_HOME.
2. Timed on it: ``atlas.stats.harvest`` (the Results frame), the overview (``Results.overview`` drawn to PNG), loading
   every trial's predictions, the verdict (``Results.significance``: 1,000 block-bootstrap resamples shared by the
   500 trials, Romano-Wolf, Holm, the deflated Sharpe ratio), and the report with 10 cards drawn from the stored
   predictions; the median time to draw one card (to PNG).
3. The sweep of ``benchmarks/sweep_overhead.py`` (24 DNN trials, 20 epochs, two slots) trained twice on the same
   data: ``Digest(cards=0)`` and ``Digest(cards="all")`` (every worker draws its trial's card). Both keep their
   predictions and statistics; the difference is the cards' cost, as a share of the sweep's wall time.

Usage: python benchmarks/digest.py [--trials 500] [--rows 20000] [--skip-sweep] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def timed(function):
    began = time.perf_counter()
    value = function()
    return value, time.perf_counter() - began


def read_back(trials: int, rows: int, home: Path) -> dict:
    from _recorded import record_sweep
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from atlas.config import Settings
    from atlas.runs import describe_execution
    from atlas.stats import harvest
    from atlas.stats._report import write_report

    settings = Settings.from_env({"ATLAS_HOME": str(home)})
    sweep, build = timed(lambda: record_sweep(settings, "digest", trials, rows=rows, seed=1, edge_trials=3,
                                              units=2))
    print(f"store: {trials} trials x {rows:,} test buckets written in {build:.0f} s")
    uri = settings.tracking.mlflow_uri
    results, harvest_s = timed(lambda: harvest("digest", tracking_uri=uri))

    def draw_overview():
        import io

        pages = results.overview()
        for figure in pages:
            FigureCanvasAgg(figure).print_png(io.BytesIO())
        return pages

    pages, overview_s = timed(draw_overview)
    _, load_s = timed(results.trial_predictions)
    verdict, significance_s = timed(results.significance)
    card_times = []
    for run_id in results["run_id"][:10]:
        import io

        figure = results.card(run_id)
        _, seconds = timed(lambda figure=figure: FigureCanvasAgg(figure).print_png(io.BytesIO()))
        began = time.perf_counter()
        results.card(run_id)
        card_times.append(seconds + time.perf_counter() - began)
    execution = describe_execution(uri, sweep["execution"])
    path, report_s = timed(lambda: write_report(results, home / "report.html", execution=execution, top=10,
                                                verdict=verdict))
    return {"harvest": harvest_s, "overview": overview_s, "pages": len(pages), "load": load_s,
            "significance": significance_s, "card": statistics.median(card_times), "report": report_s,
            "report_mb": path.stat().st_size / 1e6, "verdict": str(verdict)}


def sweep_cost(home: Path, trials: int, epochs: int, days: float) -> dict:
    from sweep_overhead import learning_rates, simulate, work_unit

    from atlas.config import Settings
    from atlas.data import MarketStore
    from atlas.infra import Digest, Resources, Search, WorkSpec, train

    store_url = simulate(home, days)
    unit = work_unit(learning_rates(trials), epochs)
    settings = Settings.from_env({"ATLAS_HOME": str(home / "warm"), "ATLAS_STORE_URL": store_url})
    with MarketStore.from_settings(settings) as store:  # the feature cache, warm for both sides
        unit.featureset.dataset(unit.train, unit.test, store=store, classes=unit.classes)
    figures = {}
    for cards in (0, "all"):
        spec = WorkSpec("bench", [unit], search=Search("grid"), resources=Resources(cpu=1), max_concurrent=2,
                        seed=1, log_models=0, digest=Digest(cards=cards))
        report, wall = timed(lambda spec=spec: train(spec, settings=settings, progress=False))
        figures[cards] = {"wall": wall, "train": sum(r.fit_seconds for r in report.results),
                          "finished": report.count("finished")}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--sweep-trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--skip-sweep", action="store_true", help="only the 500-trial store")
    parser.add_argument("--quick", action="store_true", help="40 trials of 5,000 rows; a 4-trial sweep")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.rows, args.sweep_trials, args.epochs = 40, 5_000, 4, 2
    home = Path(tempfile.mkdtemp(prefix="atlas-bench-digest-"))
    try:
        figures = read_back(args.trials, args.rows, home / "store")
        print(f"harvest of {args.trials} trials:          {figures['harvest']:6.2f} s")
        print(f"overview ({figures['pages']} pages, to PNG):         {figures['overview']:6.2f} s")
        print(f"loading every trial's predictions: {figures['load']:6.2f} s")
        print(f"significance (verdict) of {args.trials}:      {figures['significance']:6.2f} s")
        print(f"overview + significance:           {figures['overview'] + figures['significance']:6.2f} s "
              f"(+ {figures['load']:.2f} s reading the predictions)")
        print(f"one card, median of 10 (to PNG):   {figures['card']:6.2f} s")
        print(f"report with 10 cards:              {figures['report']:6.2f} s ({figures['report_mb']:.1f} MB)")
        print(f"verdict: {figures['verdict'][:160]}")
        if not args.skip_sweep:
            cost = sweep_cost(home / "sweep", args.sweep_trials, args.epochs, 4.0)
            plain, carded = cost[0], cost["all"]
            print(f"sweep of {args.sweep_trials} DNN trials x {args.epochs} epochs, 2 slots:")
            print(f"  without cards: wall {plain['wall']:6.1f} s, training {plain['train']:6.1f} s")
            print(f"  with cards:    wall {carded['wall']:6.1f} s, training {carded['train']:6.1f} s")
            print(f"  cards cost {carded['wall'] / plain['wall'] - 1:+.1%} of the sweep's wall time")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
