"""Every command's settings options: `--store` and `--tracking-uri` where a command reads them, help that shows
the real defaults, read-only commands that never make an empty database at a mistyped path, one clear line for
an unreachable server, and ranges that say when they are inverted or empty."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.data import MarketStore
from atlas.data.importers import import_bars

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "postgresql+psycopg://atlas:planted-secret@127.0.0.1:1/atlas"


def _run(*args: str, home: Path) -> subprocess.CompletedProcess:
    """`atlas ...` in a fresh process, with only ATLAS_HOME set (no store or tracking variable)."""
    env = {"PATH": "/usr/bin:/bin", "ATLAS_HOME": str(home), "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "atlas.cli", *args], capture_output=True, text=True, env=env,
                          cwd=home.parent, timeout=300)


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def test_help_shows_the_defaults_the_settings_give_now(home, monkeypatch):
    monkeypatch.setenv("ATLAS_HOME", str(home))
    monkeypatch.delenv("ATLAS_STORE_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    def shown(*args):  # help wraps long paths anywhere: compare without whitespace
        return "".join(CliRunner().invoke(main, [*args, "--help"]).output.split())

    assert f"defaultsqlite:///{home}/market.db" in shown("data", "info") and ".atlas/market.db" not in shown("data", "info")
    assert f"defaultsqlite:///{home}/mlflow.db" in shown("harvest")
    monkeypatch.setenv("ATLAS_STORE_URL", UNREACHABLE)
    assert "atlas:***@127.0.0.1" in shown("train") and "planted-secret" not in shown("train")


@pytest.mark.parametrize("command", ["train", "harvest", "report", "promote", "rollback", "models", "serve"])
def test_commands_that_read_tracking_take_tracking_uri_and_those_that_read_the_store_take_store(command):
    options = {p.opts[0] for p in main.commands[command].params}
    assert "--tracking-uri" in options
    if command in ("train", "harvest", "promote", "serve"):
        assert "--store" in options


def test_train_dry_run_reads_the_store_and_tracking_given_by_option(tmp_path, home):
    store_url = f"sqlite:///{tmp_path / 'bars.db'}"
    bars = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC"),
                         "close": [1.0, 2.0, 3.0]})
    import_bars(MarketStore(store_url), bars, exchange="kraken", bucket="1h")
    done = _run("train", str(ROOT / "experiments" / "quickstart.py"), "--dry-run", "--store", store_url,
                "--tracking-uri", f"sqlite:///{tmp_path / 't.db'}", home=home)
    # the quickstart reads bitstamp's order-book metrics, which this store lacks: the error is about this store
    assert done.returncode == 2 and "bitstamp_btc_usd.1min.midpoint is not in the store" in done.stderr
    assert not (home / "market.db").exists()


@pytest.mark.parametrize("args", [["data", "info"], ["data", "series", "bitstamp_btc_usd.1min.midpoint"],
                                  ["featureset", "build", "example_set", "--start", "2024-01-01", "--end",
                                   "2024-01-02"],
                                  ["data", "delete", "bitstamp", "--yes"]])
def test_a_mistyped_store_path_on_a_read_only_command_makes_no_database(tmp_path, home, args):
    missing = tmp_path / "marke.db"
    done = _run(*args, "--store", f"sqlite:///{missing}", home=home)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"no database at '{missing}' (--store or ATLAS_STORE_URL" in done.stderr
    assert not missing.exists()


@pytest.mark.parametrize("args", [["harvest", "quickstart"], ["models", "demo"], ["report", "quickstart"]])
def test_a_mistyped_tracking_path_on_a_read_only_command_makes_no_database(tmp_path, home, args):
    missing = tmp_path / "mlfow.db"
    done = _run(*args, "--tracking-uri", f"sqlite:///{missing}", home=home)
    assert done.returncode == 2 and f"no database at '{missing}' (--tracking-uri" in done.stderr, done.stderr
    assert not missing.exists() and not (home / "mlflow.db").exists()


@pytest.mark.parametrize("args", [["data", "info", "--store", UNREACHABLE],
                                  ["harvest", "quickstart", "--tracking-uri", UNREACHABLE]])
def test_an_unreachable_postgresql_is_one_line_naming_the_setting(home, args):
    done = _run(*args, home=home)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("Error: ")
    assert "Traceback" not in done.stderr and "planted-secret" not in done.stderr
    assert ("ATLAS_STORE_URL or --store" if "--store" in args else "MLFLOW_TRACKING_URI") in done.stderr


def test_inverted_and_empty_ranges_say_so(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'bars.db'}"
    bars = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC"),
                         "close": [1.0, 2.0, 3.0]})
    import_bars(MarketStore(store_url), bars, exchange="kraken", bucket="1h")
    inverted = ["--start", "2024-02-01", "--end", "2024-01-01", "--store", store_url]
    for command in (["data", "series", "kraken_btc_usd.1h.close"], ["data", "metrics"],
                    ["data", "delete", "kraken", "--yes"], ["featureset", "build", "example_set"]):
        result = CliRunner().invoke(main, [*command, *inverted])
        assert result.exit_code == 2, (command, result.output)
        assert "--start 2024-02-01 is after --end 2024-01-01: the range is inverted" in result.output, command
    result = CliRunner().invoke(main, ["featureset", "build", "example_set", "--start", "2024-01-01", "--end",
                                       "2024-01-01", "--store", store_url])
    assert result.exit_code == 2 and "the range is empty" in result.output
    result = CliRunner().invoke(main, ["data", "series", "kraken_btc_usd.1h.close", "--start", "2025-01-01",
                                       "--store", store_url])
    assert result.exit_code == 0
    assert "No values of kraken_btc_usd.1h.close from 2025-01-01 00:00:00+00:00 to the last: it holds 3 values " \
           "from 2024-01-01 01:00:00+00:00 to 2024-01-01 03:00:00+00:00" in result.output


def test_the_dry_run_names_windows_dropped_at_gaps_and_ties():
    from atlas.commands.train import _data_notes

    report = {"train": {"windows_across_gaps": 4, "windows_dropped": 4, "zero_labels": 3, "ties_dropped": 0},
              "test": {"windows_across_gaps": 1, "windows_dropped": 1, "zero_labels": 0, "ties_dropped": 0}}
    assert _data_notes(report) == ("windows across a gap dropped: train 4, test 1; exact-zero labels (ties): "
                                   "train 3, test 0")
    kept = {part: {**counts, "windows_dropped": 0} for part, counts in report.items()}
    assert _data_notes(kept).startswith("windows across a gap: train 4, test 1;")
    assert _data_notes({"train": {"windows_dropped": None, "zero_labels": 0}}) == ""
