"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block_after(heading: str) -> str:
    text = README.read_text()
    after = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


@pytest.fixture
def simulated_home(tmp_path, monkeypatch):
    from atlas.data import MarketSimulator, MarketStore, MetricPipeline, SimulatorConfig

    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    from atlas.config import Settings

    store = MarketStore.from_settings(Settings.from_env())
    MarketSimulator(SimulatorConfig(days=2, exchanges="bitstamp,itbit", seed=7, signal=0.3,
                                    snapshot_interval="20s", levels=10)).simulate_into(store)
    MetricPipeline(store, bucket="1min").run()
    store.close()
    return tmp_path


def test_the_example_set_block_runs(simulated_home):
    namespace: dict = {}
    exec(compile(python_block_after("### The example set"), "README.md", "exec"), namespace)
    data, folds = namespace["data"], namespace["folds"]
    assert data.class_names == ("down", "flat", "up") and data.X_train.shape[1] == 4
    assert len(folds) == 4 and (simulated_home / "example_set.png").stat().st_size > 10_000


def test_the_feature_block_runs():
    namespace: dict = {}
    exec(compile(python_block_after("## Features, labels and leak-free datasets"), "README.md", "exec"),
         namespace)
    assert namespace["LogReturns"]().bitstamp().lookforward(1).is_label


def test_the_python_block_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / ".atlas"))
    namespace: dict = {}
    exec(compile(python_block_after("## Python"), "README.md", "exec"), namespace)
    assert len(namespace["midpoint"]) == 2 * 1440
    assert 0.55 < float(capsys.readouterr().out) < 0.65  # the best accuracy for signal 0.3


def test_the_models_block_runs_on_the_example_sets_data(simulated_home):
    namespace: dict = {}
    exec(compile(python_block_after("### The example set"), "README.md", "exec"), namespace)
    exec(compile(python_block_after("## Models"), "README.md", "exec"), namespace)
    assert namespace["history"].epochs >= 1 and namespace["baseline"].kind == "majority_classifier"


def test_the_analysis_console_block_runs_on_a_recorded_sweep(tmp_path, monkeypatch, capsys):
    from _recorded import record_sweep

    from atlas.config import Settings

    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    record_sweep(Settings.from_env(), "quickstart", 6, rows=800, seed=2, edge_trials=1, edge=0.15)
    namespace: dict = {}
    exec(compile(python_block_after("### The analysis console"), "README.md", "exec"), namespace)
    assert (tmp_path / "card.png").stat().st_size > 20_000 and len(namespace["pages"]) == 2
    assert namespace["verdict"].trials == 6 and "after 6 trials" in capsys.readouterr().out
