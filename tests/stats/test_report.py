"""The analysis console and the report on a recorded sweep: Results' methods, `atlas report`, and the report opened
in a real headless browser (Debian's chromium), every image rendered."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.config import Settings
from atlas.exceptions import ConfigError, MissingDataError
from atlas.runs import REPORT_ARTIFACT, Tag
from atlas.stats import Predictions, harvest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _recorded import record_sweep


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    home = tmp_path_factory.mktemp("report") / "home"
    settings = Settings.from_env({"ATLAS_HOME": str(home)})
    sweep = record_sweep(settings, "recorded", 12, rows=1500, seed=3, edge_trials=2, edge=0.08)
    return settings, sweep


def test_the_console_finds_the_best_draws_cards_and_overviews_and_judges_the_sweep(recorded):
    settings, sweep = recorded
    results = harvest("recorded", tracking_uri=settings.tracking.mlflow_uri)
    assert len(results) == 12 and type(results).__name__ == "Results"
    best = results.best("test_accuracy", 3)
    assert len(best) == 3 and best["test_accuracy"].is_monotonic_decreasing
    assert type(best).__name__ == "Results"  # pandas operations keep the console
    assert results.best()["best_val_loss"].is_monotonic_increasing
    with pytest.raises(ConfigError, match="have no metric 'test_nothing'"):
        results.best("test_nothing")
    evidence = results.predictions(sweep["trials"][0])
    assert isinstance(evidence, Predictions) and evidence.parts == ("test", "validation")
    card = results.card(sweep["trials"][0])
    assert len(card.axes) >= 6 and any(sweep["trials"][0] in t.get_text() for t in card.texts)
    figures = results.overview()
    assert len(figures) == 2  # one per work unit
    verdict = results.significance()
    assert verdict.trials == 12 and verdict.significant
    assert verdict.best_trial.startswith("unit_") and ("#0" in verdict.best_trial or "#1" in verdict.best_trial)
    assert set(verdict.table["run_id"]) == set(sweep["trials"])


def test_a_run_without_predictions_is_named_with_what_is_missing(recorded):
    settings, sweep = recorded
    results = harvest("recorded", tracking_uri=settings.tracking.mlflow_uri)
    with pytest.raises(MissingDataError, match=rf"run {sweep['execution']} .* has no stored predictions"):
        results.predictions(sweep["execution"])


def test_atlas_report_writes_one_self_contained_page_and_logs_it(recorded, tmp_path):
    settings, sweep = recorded
    output = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "recorded", "--top", "3", "--output", str(output)],
                                env={"ATLAS_HOME": str(settings.home)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = output.read_text()
    assert page.count("data:image/png;base64,") == 2 + 3  # two overview pages, three cards
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)  # nothing to fetch: it opens from disk
    assert "significant after 12 trials" in page and "The sweep" in page and "unit_1" in page
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.tracking.mlflow_uri)
    assert REPORT_ARTIFACT in {a.path for a in client.list_artifacts(sweep["execution"])}
    assert client.get_run(sweep["execution"]).data.tags[Tag.WORK_SPEC] == "recorded"
    bad = CliRunner().invoke(main, ["report", "recorded", "--output", str(tmp_path / "report.pdf")],
                             env={"ATLAS_HOME": str(settings.home)})
    assert bad.exit_code == 2 and "ending in .html" in bad.output


def test_the_report_renders_every_image_in_a_real_browser(recorded, tmp_path):
    assert shutil.which("chromium"), "Debian's chromium is needed: scripts/require-services.sh installs it"
    settings, _ = recorded
    output = tmp_path / "report.html"
    CliRunner().invoke(main, ["report", "recorded", "--top", "2", "--output", str(output)],
                       env={"ATLAS_HOME": str(settings.home)}, catch_exceptions=False)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(["chromium", *flags, "--dump-dom", output.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    rendered = int(re.search(r'data-images-rendered="(\d+)"', dom).group(1))
    assert images == 4 and rendered == images
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", *flags, "--window-size=1400,1800", f"--screenshot={shot}", output.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000


def test_replicates_are_shown_as_one_row_per_grid_point_with_their_spread():
    import pandas as pd

    from atlas.stats import Results, overview

    rows = []
    for point, rate in enumerate((0.001, 0.01, 0.1)):
        for replicate in (0, 1):
            rows.append({"work_unit": "u", "model_spec": "dnn", "trial": 2 * point + replicate,
                         "run_id": f"run{point}{replicate}", "state": "finished", "replicate": replicate,
                         "best_val_loss": 0.69 - 0.01 * point, "test_accuracy": 0.5 + 0.01 * point + 0.002 * replicate,
                         "param.learning_rate": str(rate), "param.seed": str(7 + replicate)})
    table = Results(pd.DataFrame(rows)).overview_table()
    assert len(table) == 3 and list(table["accuracy"].round(4)) == [0.501, 0.511, 0.521]  # the seeds' mean
    assert all("2 seeds" in label and "accuracy sd 0.001" in label for label in table["label"])
    assert "learning_rate=0.1" in table["label"].iloc[2]
    figure = overview(table, class_names=["down", "up"], title="replicated")[0]
    assert any("2 seeds" in text.get_text() for ax in figure.axes for text in ax.texts + ax.get_yticklabels())
