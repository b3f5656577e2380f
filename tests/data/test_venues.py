"""Venues added by the user work everywhere: one rule, a venue is known if it is built in, configured
(``ATLAS_EXTRA_VENUES`` / ``extra_venues``) or present in the store (market tables or metric series)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas.config import Settings
from atlas.data import FeatureLabelSet, InterExchangeSpread, LogReturns, MarketStore
from atlas.data.exchanges import Exchange, Venues
from atlas.data.features import feature_from_dict
from atlas.data.importers import import_bars
from atlas.exceptions import MissingDataError, UnknownExchangeError

BIN = Path(sys.executable).parent
HOURS = 24 * 12


def _bars(hours: int = HOURS, seed: int = 3) -> pd.DataFrame:
    """Hourly OHLCV bars of a random walk, stamped by their start as a vendor writes them."""
    times = pd.date_range("2024-01-01", periods=hours, freq="1h")
    close = 4000 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.002, hours)))
    return pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M"), "open": close, "high": close * 1.001,
                         "low": close * 0.999, "close": close, "volume": 10.0})


def _cme_set(**exchange) -> FeatureLabelSet:
    returns = LogReturns().exchange("cme_es_usd", **exchange).bucket("1h").price("close")
    return FeatureLabelSet(features=[returns.lookback(1), returns.lookback(2)], labels=[returns.lookforward(1)])


def test_a_new_venue_survives_every_fluent_call():
    feature = LogReturns().exchange("cme_es_usd", new_venue=True).bucket("1h").lookback(2)

    assert feature.name == "log_returns(cme_es_usd, 1h, lookback=2)"
    assert {key.name for key in feature.price("close").series()} == {"cme_es_usd.1h.close"}
    assert feature_from_dict(feature.to_dict()) == feature
    spread = InterExchangeSpread().exchanges("cme_es_usd", "bitstamp", new_venue=True).bucket("1h")
    assert spread.five_min().bucket == "5min" and {k.exchange.name for k in spread.series()} == {
        "CME_ES_USD", "BITSTAMP_BTC_USD"}
    with pytest.raises(UnknownExchangeError, match="venue_base_quote"):
        LogReturns().exchange("cme_es")  # the form is still checked at once


def test_bars_of_a_new_venue_make_it_known_to_the_store_and_to_build(tmp_path):
    store = MarketStore(f"sqlite:///{tmp_path / 'market.db'}", cache_folder=tmp_path / "cache")
    import_bars(store, _bars(), exchange="cme_es_usd", bucket="1h", new_venue=True, tz="UTC")

    assert store.exchanges() == ["CME_ES_USD"]  # bars only: no market table holds it
    assert "cme" in store.venues() and store.venues().stored == ("cme",)
    assert store.known_exchange("cme_nq_usd") == Exchange("cme", "nq", "usd")  # the venue, any pair
    frame = _cme_set().build("2024-01-01 03:00", "2024-01-10 00:00", store=store)  # no new_venue anywhere
    assert len(frame) > 200 and frame.notna().all().all()
    again = _cme_set().build("2024-01-01 03:00", "2024-01-10 00:00", store=store)  # from the cache
    pd.testing.assert_frame_equal(frame, again)
    served = _cme_set().features_frame("2024-01-11 00:00", "2024-01-12 23:00", store=store)  # serving's path
    assert served.notna().all().all() and len(served) == 48


def test_a_store_configured_with_a_venue_accepts_its_features_without_new_venue(tmp_path):
    url = f"sqlite:///{tmp_path / 'market.db'}"
    settings = Settings.from_env({"ATLAS_HOME": str(tmp_path), "ATLAS_STORE_URL": url, "ATLAS_EXTRA_VENUES": "cme"})
    store = MarketStore.from_settings(settings)
    assert store.extra_venues == ("cme",) and store.venues() == Venues(configured=("cme",))

    with pytest.raises(MissingDataError):  # a known venue without data: the data is missing, not the venue
        _cme_set().build("2024-01-01 03:00", "2024-01-10 00:00", store=store)
    import_bars(store, _bars(), exchange="cme_es_usd", bucket="1h", tz="UTC")  # no new_venue: it is configured
    assert len(_cme_set().build("2024-01-01 03:00", "2024-01-10 00:00", store=store)) > 200
    with pytest.raises(UnknownExchangeError, match="unknown exchange venue 'cme'"):
        _cme_set().build("2024-01-01 03:00", "2024-01-10 00:00", store=MarketStore(f"sqlite:///{tmp_path / 'x.db'}"))


def test_a_venue_in_no_place_gets_the_clear_error(tmp_path):
    store = MarketStore(f"sqlite:///{tmp_path / 'market.db'}", extra_venues=("binance",))
    import_bars(store, _bars(), exchange="cme_es_usd", bucket="1h", new_venue=True, tz="UTC")
    typo = FeatureLabelSet(features=[LogReturns().exchange("krakken").lookback(1)],
                           labels=[LogReturns().exchange("krakken").lookforward(1)])

    with pytest.raises(UnknownExchangeError) as caught:
        typo.build("2024-01-01", "2024-01-02", store=store)
    message = str(caught.value)
    assert "unknown exchange venue 'krakken'" in message and "did you mean 'kraken'?" in message
    assert "read by log_returns(krakken_btc_usd, 1min, lookback=1)" in message
    assert "(built in); binance (configured); cme (in the store)" in message
    assert "--new-venue" in message and "ATLAS_EXTRA_VENUES=krakken" in message
    with pytest.raises(UnknownExchangeError, match="unknown exchange venue 'nowhere'"):
        store.known_exchange("nowhere_btc_usd")
    with pytest.raises(UnknownExchangeError, match="did you mean 'bitstamp'"):
        store.read_trades("bitstmp")


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_a_new_venue_imported_as_bars_trains_with_no_environment_variable(tmp_path):
    bars = tmp_path / "es_hourly.csv"
    _bars().to_csv(bars, index=False)
    spec = tmp_path / "es.py"
    spec.write_text(textwrap.dedent("""
        from atlas.data import FeatureLabelSet, LogReturns
        from atlas.data.dataset import ClassLabels
        from atlas.infra import Digest, ModelSpec, WorkSpec, WorkUnit

        returns = LogReturns().exchange("cme_es_usd").bucket("1h").price("close")
        featureset = FeatureLabelSet(features=[returns.lookback(1), returns.lookback(2)],
                                     labels=[returns.lookforward(1)], title="es_next_hour")
        unit = WorkUnit("es", featureset, ("2024-01-01 03:00", "2024-01-09 00:00"),
                        ("2024-01-09 02:00", "2024-01-12 22:00"), classes=ClassLabels("sign"),
                        model_specs=[ModelSpec("logistic", "logistic_classifier", {}, fit={"epochs": 1})])
        SPEC = WorkSpec("es_new_venue", [unit], log_models=0, digest=Digest(cards=0))
    """))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ATLAS_", "MLFLOW_"))}
    environment |= {"ATLAS_HOME": str(tmp_path / "home"), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def atlas(*args) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "atlas"), *args], env=environment, capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)

    imported = atlas("data", "import", "bars", str(bars), "--exchange", "cme_es_usd", "--bucket", "1h", "--tz",
                     "UTC", "--new-venue")
    assert imported.returncode == 0, imported.stderr
    planned = atlas("train", str(spec), "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "es/logistic" in planned.stdout and "logistic_classifier" in planned.stdout
    trained = atlas("train", str(spec), "--quiet", "--max-concurrent", "1")
    assert trained.returncode == 0, trained.stderr
    assert "es_new_venue: 1 trials" in trained.stdout and "1 finished" in trained.stdout
