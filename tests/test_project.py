"""The project's own promises: settings, the command line, and pyproject.toml and conda.yaml in agreement."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from atlas.config import Settings
from atlas.data import Exchange
from atlas.data.buckets import bucket_labels, parse_width, width_name
from atlas.data.timestamps import to_utc
from atlas.exceptions import ConfigError, DataValidationError, UnknownExchangeError

ROOT = Path(__file__).resolve().parents[1]


def test_conda_yaml_lists_the_same_dependencies_as_pyproject():
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    project = table["dependencies"] + table["optional-dependencies"]["ml"]
    conda = [line.strip()[2:] for line in (ROOT / "conda.yaml").read_text().splitlines()
             if line.startswith("      - ")]
    assert sorted(conda) == sorted(project)


def test_settings_default_under_dot_atlas_and_read_the_environment(tmp_path):
    default = Settings.from_env({})
    assert default.home == Path(".atlas").absolute()
    assert default.store.url == f"sqlite:///{Path('.atlas').absolute() / 'market.db'}"
    assert default.tracking.mlflow_uri.startswith("sqlite:///") and default.store.gds_url is None
    custom = Settings.from_env({"ATLAS_HOME": str(tmp_path), "ATLAS_STORE_URL": "postgresql://h/db",
                                "ATLAS_GDS_URL": "mysql://gds", "ATLAS_EXTRA_VENUES": "cme, ice",
                                "REDIS_URL": "redis://r:1/2"})
    assert (custom.store.url, custom.store.gds_url, custom.store.extra_venues) == (
        "postgresql://h/db", "mysql://gds", ("cme", "ice"))
    assert custom.tracking.optuna_storage == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert custom.serving.redis_url == "redis://r:1/2"


@pytest.mark.parametrize(("text", "name"), [
    ("bitstamp", "BITSTAMP_BTC_USD"), ("BITSTAMP_BTC_EUR", "BITSTAMP_BTC_EUR"), ("coinbase_eth_usd",
                                                                                "COINBASE_ETH_USD")])
def test_exchange_names(text, name):
    assert Exchange.parse(text).name == name
    assert Exchange.parse(name.lower()) == Exchange.parse(text)


def test_exchange_errors():
    with pytest.raises(UnknownExchangeError, match="did you mean 'kraken'"):
        Exchange.parse("krakken")
    with pytest.raises(UnknownExchangeError, match="venue_base_quote"):
        Exchange.parse("bitstamp_btc")
    assert Exchange.parse("cme_es_usd", extra_venues=("cme",)).key == "cme_es_usd"


def test_bucket_widths_and_labels():
    assert [width_name(w) for w in ("1min", "60s", "5min", "1h", "90s", "1D")] == [
        "1min", "1min", "5min", "1h", "90s", "1D"]
    minute = parse_width("1min")
    stamps = to_utc(["2024-01-01 00:00:00", "2024-01-01 00:00:00.000001", "2024-01-01 00:01:00"], tz="UTC")
    labels = to_utc(bucket_labels(stamps.asi8, minute), unit="ns")
    # (t - width, t]: a time on the grid is the end of its own bucket
    assert [str(t.time()) for t in labels] == ["00:00:00", "00:01:00", "00:01:00"]
    with pytest.raises(ConfigError, match="positive"):
        parse_width("-1min")


def test_the_timestamp_rule():
    assert str(to_utc(["2024-01-01T01:00:00+01:00"])[0]) == "2024-01-01 00:00:00+00:00"
    assert str(to_utc(["2024-01-01 01:00"], tz="Europe/Paris")[0]) == "2024-01-01 00:00:00+00:00"
    assert str(to_utc([1704067200], unit="s")[0]) == "2024-01-01 00:00:00+00:00"
    with pytest.raises(DataValidationError, match="naive .* row 0: '2024-01-01 01:00'.*tz='UTC'"):
        to_utc(["2024-01-01 01:00"], what="timestamp")
    with pytest.raises(DataValidationError, match="missing at row 1"):
        to_utc(["2024-01-01", None], tz="UTC")


def run_atlas(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atlas.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_atlas_help_imports_no_heavy_library():
    code = ("import sys; import atlas.cli; heavy = {'pandas', 'numpy', 'sqlalchemy', 'tensorflow'} & "
            "set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert "data" in run_atlas("--help").stdout


def test_cli_errors_are_one_clear_line(tmp_path):
    import os

    env = {**os.environ, "ATLAS_HOME": str(tmp_path)}
    result = run_atlas("data", "metrics", "--bucket", "1ME", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: bucket width '1ME' has no fixed length") and "Traceback" not in \
        result.stderr
    result = run_atlas("data", "series", "bitstamp_btc_usd.1min.midpoint", env=env)
    assert result.returncode == 2 and "no metric series" in result.stderr
    result = run_atlas("data", "metrics", "--exchanges", "bitsamp", env=env)
    assert result.returncode == 2 and "did you mean 'bitstamp'" in result.stderr


def test_numeric_timestamps_need_a_unit():
    with pytest.raises(DataValidationError, match=r"numbers \(1704067200000 at row 0\).*unit='s', 'ms'"):
        to_utc([1704067200000])
    assert str(to_utc([1704067200000], unit="ms")[0]) == "2024-01-01 00:00:00+00:00"
