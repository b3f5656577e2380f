"""Every failure of an `atlas` command is one line `Error: ...` that names the file or the setting: bad files, times
out of range, a full disk, a read-only output, Ctrl-C; never a traceback or "Aborted!", and the store as it was."""

from __future__ import annotations

import errno
import gzip
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.data import MarketStore

ROWS = pd.DataFrame({"timestamp": ["2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z", "2024-01-01T00:00:03Z"],
                     "price": [100.0, 101.0, 102.0], "volume": [1.0, 0.5, 2.0]})
BARS = pd.DataFrame({"timestamp": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"], "open": [1.0, 1.0],
                     "high": [2.0, 2.0], "low": [0.5, 0.5], "close": [1.5, 1.5], "volume": [1.0, 1.0]})


def _csv(frame: pd.DataFrame, path: Path, **changes) -> Path:
    frame = frame.copy()
    for row, value in changes.items():
        frame.loc[int(row[1:]), "timestamp"] = value
    frame.to_csv(path, index=False)
    return path


def _truncated_gzip(frame: pd.DataFrame, path: Path) -> Path:
    packed = gzip.compress(pd.concat([frame] * 500).to_csv(index=False).encode())
    path.write_bytes(packed[:len(packed) // 2])
    return path


#: name -> (make the file in a folder, for `trades` or `bars`; words the error must hold)
BAD_FILES = {
    "empty.csv": (lambda p, f: (p.write_bytes(b""), p)[1], "is empty (0 bytes; rule empty_file)"),
    "binary.csv": (lambda p, f: (p.write_bytes(bytes(range(256)) * 8), p)[1], "is not text"),
    "ragged.csv": (lambda p, f: (p.write_text(f.to_csv(index=False) + f.to_csv(index=False, header=False)
                                              .splitlines()[0] + ",7\n"), p)[1],
                   f"line {len(ROWS) + 2} has"),
    "cut.csv.gz": (lambda p, f: _truncated_gzip(f, p), "rule truncated_file"),
    "parquet.csv": (lambda p, f: (f.to_parquet(p), p)[1], "is a Parquet file, not CSV"),
    "text.parquet": (lambda p, f: (f.to_csv(p, index=False), p)[1], "is not a Parquet file"),
    "records.json": (lambda p, f: (f.to_json(p, orient="records"), p)[1], "suffix '.json'"),
    "records.csv": (lambda p, f: (f.to_json(p, orient="records"), p)[1], "holds JSON, not CSV"),
    "folder.csv": (lambda p, f: (p.mkdir(), p)[1], "is a folder, not a file"),
    "year3000.csv": (lambda p, f: _csv(f, p, r1="3000-01-01T00:00:00Z"),
                     "row 1 (line 3) is 3000-01-01 00:00:00+00:00, outside the times Atlas can hold"),
    "year1500.csv": (lambda p, f: _csv(f, p, r0="1500-01-01T00:00:00Z"), "row 0 (line 2) is 1500-01-01"),
    "year3000.parquet": (lambda p, f: _parquet_in_year_3000(f, p), "row 1 is 3000-01-01 00:00:00+00:00, outside"),
}


def _parquet_in_year_3000(frame: pd.DataFrame, path: Path) -> Path:
    times = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[us, UTC]")
    times.iloc[1] = pd.Timestamp("3000-01-01", tz="UTC")
    frame.assign(timestamp=times).to_parquet(path)
    return path


def store_rows(home: Path) -> dict[str, list]:
    """Every row of every table of the store under ``home``: equal before and after means unchanged."""
    db = home / "market.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """ATLAS_HOME with a store that already holds trades and bars."""
    home = tmp_path / "home"
    monkeypatch.setenv("ATLAS_HOME", str(home))
    monkeypatch.delenv("ATLAS_STORE_URL", raising=False)
    monkeypatch.delenv("ATLAS_GDS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    good = _csv(ROWS, tmp_path / "good.csv")
    assert atlas("data", "import", "trades", str(good), "--exchange", "bitstamp").exit_code == 0
    bars = _csv(BARS, tmp_path / "bars.csv")
    assert atlas("data", "import", "bars", str(bars), "--exchange", "bitstamp", "--bucket", "1h").exit_code == 0
    return home


def atlas(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="atlas")


def assert_one_error_line(result, *words: str, status: int = 2) -> str:
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and "Aborted" not in result.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("kind", ["trades", "bars"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_one_error_line_naming_it_and_the_store_is_unchanged(name, kind, home, tmp_path):
    make, words = BAD_FILES[name]
    path = make(tmp_path / name, ROWS if kind == "trades" else BARS)
    before = store_rows(home)
    options = ["--exchange", "bitstamp"] + (["--bucket", "1h"] if kind == "bars" else [])
    result = atlas("data", "import", kind, str(path), *options)
    assert_one_error_line(result, name, words if kind == "trades" or "line" not in words else "")
    assert store_rows(home) == before


def test_epoch_numbers_out_of_range_name_the_unit_that_fits(home, tmp_path):
    path = tmp_path / "epoch.csv"
    pd.DataFrame({"timestamp": [1704067200123], "price": [1.0], "volume": [1.0]}).to_csv(path, index=False)
    result = atlas("data", "import", "trades", str(path), "--exchange", "bitstamp", "--unit", "s")
    assert_one_error_line(result, "epoch.csv", "row 0 (line 2)", "1704067200123 s since the epoch",
                          "rule out_of_range_timestamp", "--unit ms")


@pytest.mark.parametrize("command", [
    ("data", "series", "bitstamp_btc_usd.1h.close", "--start", "3000-01-01"),
    ("data", "series", "bitstamp_btc_usd.1h.close", "--end", "1500-01-01"),
    ("data", "metrics", "--start", "3000-01-01"),
    ("data", "metrics", "--end", "1500-01-01"),
    ("data", "import", "gds", "--url", "sqlite:///gds.db", "--start", "3000-01-01"),
    ("featureset", "build", "example_set", "--start", "2024-01-01", "--end", "3000-01-01"),
])
def test_times_out_of_range_in_options_name_the_option(command, home):
    before = store_rows(home)
    option = command[command.index("--end") if "--end" in command else command.index("--start")]
    result = atlas(*command)
    assert_one_error_line(result, f"{option} '", "outside the times Atlas can hold", "1677-09-22 to 2262-04-11")
    assert store_rows(home) == before


@pytest.mark.parametrize(("start", "days", "words"), [("3000-01-01", "1", "SimulatorConfig.start '3000-01-01'"),
                                                      ("1500-01-01", "1", "SimulatorConfig.start '1500-01-01'"),
                                                      ("2262-04-10", "3", "would end after 2262-04-11")])
def test_a_simulation_outside_the_times_atlas_can_hold_is_refused(start, days, words, home):
    result = atlas("data", "simulate", "--days", days, "--start", start, "--exchanges", "bitstamp")
    assert_one_error_line(result, words, "--start")


def test_a_full_disk_while_importing_is_one_line_naming_the_store_which_stays_as_it_was(home, tmp_path,
                                                                                        monkeypatch):
    rows = ROWS.assign(timestamp=ROWS["timestamp"].str.replace("00:00:0", "00:01:0"))
    path = _csv(rows, tmp_path / "later.csv")
    before = store_rows(home)
    real = MarketStore.write_trades

    def full(self, *args, **kwargs):  # the disk fills up half-way through the import's transaction
        real(self, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(MarketStore, "write_trades", full)
    result = atlas("data", "import", "trades", str(path), "--exchange", "bitstamp")
    assert_one_error_line(result, "no space left on the device", "(ENOSPC)",
                          f"the store sqlite:///{home / 'market.db'}", "nothing half-written", "holds none of it")
    assert store_rows(home) == before


def test_a_full_disk_while_simulating_keeps_whole_days_and_a_rerun_finishes(home, monkeypatch):
    real = MarketStore.write_exchange_volume
    calls = {"n": 0}

    def full(self, *args, **kwargs):  # day 2 of 2: after its books and trades, within its transaction
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MarketStore, "write_exchange_volume", full)
    options = ("data", "simulate", "--days", "2", "--start", "2024-02-01", "--exchanges", "bitstamp,itbit",
               "--snapshot-interval", "60s", "--levels", "10")
    result = atlas(*options)
    assert_one_error_line(result, "no space left", "holds whole simulated days only",
                          "run the same command again")
    monkeypatch.setattr(MarketStore, "write_exchange_volume", real)  # space again
    again = atlas(*options)
    assert again.exit_code == 0, again.stderr
    assert "resuming: day 1 of 2 already written by this simulation; writing day 2" in again.stdout
    with MarketStore(f"sqlite:///{home / 'market.db'}") as store:
        assert len(store.read_orderbooks("itbit")) == 2 * 1440


def test_ctrl_c_in_a_data_command_says_nothing_is_half_written(home, tmp_path, monkeypatch):
    path = _csv(ROWS.assign(timestamp=ROWS["timestamp"].str.replace("00:00:0", "00:02:0")), tmp_path / "more.csv")
    before = store_rows(home)
    real = MarketStore.write_trades

    def interrupted(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(MarketStore, "write_trades", interrupted)
    result = atlas("data", "import", "trades", str(path), "--exchange", "bitstamp")
    line = assert_one_error_line(result, "interrupted; nothing half-written: an import is one transaction",
                                 str(home / "market.db"), status=130)
    assert line.startswith("Error: interrupted")
    assert store_rows(home) == before


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
@pytest.mark.parametrize("failure", ["EACCES", "EROFS", "ENOSPC", "no folder", "folder is a file"])
def test_an_output_that_cannot_be_written_is_one_line_and_leaves_no_partial_file(failure, fmt, home, tmp_path,
                                                                                 monkeypatch):
    output = tmp_path / "out" / f"close.{fmt}"
    if failure == "no folder":
        words = ["its folder", "does not exist"]
    elif failure == "folder is a file":
        (tmp_path / "out").write_text("a file")
        words = ["its folder", "is not a folder"]
    else:
        output.parent.mkdir()
        code = getattr(errno, failure)

        def refuse(self, *args, **kwargs):  # what a read-only folder, a read-only mount or a full disk raises
            Path(args[0] if args else self).write_bytes(b"partial")
            raise OSError(code, os.strerror(code), str(args[0] if args else self))

        monkeypatch.setattr(pd.DataFrame, "to_parquet", refuse)
        monkeypatch.setattr(Path, "write_text", refuse)
        words = [f"({failure})"]
    result = atlas("data", "series", "bitstamp_btc_usd.1h.close", "--format", fmt, "--output", str(output))
    assert_one_error_line(result, f"--output '{output}'", *words)
    if output.parent.is_dir():
        assert sorted(output.parent.iterdir()) == []


def test_harvest_to_an_output_that_cannot_be_written(home, tmp_path, monkeypatch):
    from atlas import infra

    frame = pd.DataFrame({"state": ["finished"], "work_unit": ["u"], "model_spec": ["m"], "trial": [0],
                          "best_val_loss": [0.5]})
    monkeypatch.setattr(infra, "harvest", lambda name, **kwargs: frame)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (home / "mlflow.db").touch()  # harvest reads an existing tracking store only
    (tmp_path / "plain").write_text("a file, not a folder")
    result = atlas("harvest", "quickstart", "--output", str(tmp_path / "plain" / "results.parquet"))
    assert_one_error_line(result, str(tmp_path / "plain"))

    def refuse(self, path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", refuse)
    result = atlas("harvest", "quickstart", "--output", str(tmp_path / "results.parquet"))
    assert_one_error_line(result, str(tmp_path / "results.parquet"), "(EROFS)")


@pytest.mark.parametrize(("args", "words"), [
    (("data", "import", "trades"), ["Missing argument 'PATH'", "atlas data import trades --help"]),
    (("data", "import", "trades", "absent.csv", "--exchange", "bitstamp"), ["'absent.csv' does not exist"]),
    (("data", "nosuch"), ["No such command 'nosuch'"]),
    (("--bogus",), ["No such option '--bogus'"]),
])
def test_usage_mistakes_are_one_line_too(args, words, home):
    assert_one_error_line(atlas(*args), *words)


@pytest.mark.parametrize("name", ["cut.csv.gz", "ragged.csv", "year3000.csv"])
def test_a_real_process_prints_one_line_without_traceback(name, tmp_path):
    make, words = BAD_FILES[name]
    path = make(tmp_path / name, ROWS)
    env = {**os.environ, "ATLAS_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "atlas.cli", "data", "import", "trades", str(path), "--exchange",
                           "bitstamp"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: ") and name in done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr and "Aborted" not in done.stderr
