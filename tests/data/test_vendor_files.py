"""Files as vendors ship them: a banner above the header, newest first, AM/PM dates, offsets that change at a
daylight-saving boundary, close-only quotes, two volume columns, repeated bars with different values. Each imports
in one command with the options its error suggested, and re-imports replace or refuse, never mix."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.data import MarketStore
from atlas.data.importers import import_bars, import_trades
from atlas.data.timestamps import to_utc
from atlas.exceptions import ConfigError, DataValidationError


def _atlas(*args: str, store: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--store", store])
    return result.exit_code, result.output


def _suggested(output: str, option: str) -> list[str]:
    """The options an error suggests, as a user would copy them: ``--skip-rows 1`` -> ["--skip-rows", "1"]."""
    found = re.search(rf"\({option} ([^)]*)\)", output) or re.search(rf"{option} ('[^']*'|\S+)", output)
    assert found, f"the error does not suggest {option}: {output}"
    return [option, *shlex.split(found.group(1).rstrip(".;,"))]


def _hourly(n: int, start="2024-01-01", seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 42_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[42_000, close[:-1]]
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    times = pd.date_range(start, periods=n, freq="1h", tz="UTC")
    return pd.DataFrame({"time": times, "open": open_, "high": high, "low": low, "close": close,
                         "base": rng.uniform(1, 10, n).round(4)})


def _cryptodatadownload(path: Path, bars: pd.DataFrame) -> Path:
    """CryptoDataDownload's layout: a URL banner, newest first, unix ms and text dates, two volume columns."""
    newest = bars.iloc[::-1]
    frame = pd.DataFrame({"unix": newest["time"].astype("int64") // 10**6,
                          "date": newest["time"].dt.strftime("%Y-%m-%d %H:%M:%S"), "symbol": "BTC/USDT",
                          "open": newest["open"], "high": newest["high"], "low": newest["low"],
                          "close": newest["close"], "Volume BTC": newest["base"],
                          "Volume USDT": (newest["base"] * newest["close"]).round(2), "tradecount": 1000})
    path.write_text("https://www.CryptoDataDownload.com\n" + frame.to_csv(index=False))
    return path


def test_a_banner_newest_first_file_with_two_volume_columns_imports_with_the_options_its_errors_suggest(tmp_path):
    store = f"sqlite:///{tmp_path / 'market.db'}"
    bars = _hourly(48)
    path = str(_cryptodatadownload(tmp_path / "Binance_BTCUSDT_1h.csv", bars))
    args = ["data", "import", "bars", path, "--exchange", "binance_btc_usdt", "--new-venue", "--bucket", "1h"]
    code, out = _atlas(*args, store=store)
    assert code == 2 and "rule banner_line" in out and "--map" not in out  # not a column problem
    assert "'https://www.CryptoDataDownload.com'" in out and "header on line 2" in out
    args += _suggested(out, "--skip-rows")
    code, out = _atlas(*args, store=store)
    # no timestamp column by that name, and two volume columns: one error names both, and one mapping
    assert code == 2 and "rule missing_columns" in out and "'Volume BTC'" in out and "'Volume USDT'" in out
    assert "base currency" in out
    args += _suggested(out, "--map")
    assert args[-1] == "timestamp=date,volume=Volume BTC"
    code, out = _atlas(*args, store=store)
    assert code == 2 and "naive" in out
    args += _suggested(out, "--tz")
    code, out = _atlas(*args, store=store)
    assert code == 2 and "runs newest first" in out and "rule timestamps_out_of_order" in out
    args += ["--sort"]
    code, out = _atlas(*args, store=store)
    assert code == 0, out
    assert "wrote 48 binance_btc_usdt.1h.open" in out and "48 binance_btc_usdt.1h.volume" in out
    stored = MarketStore(store)
    close = stored.read_series("binance_btc_usdt.1h.close")
    # a bar stamped by its start is the bucket ending one hour later
    assert close.index.equals(pd.DatetimeIndex(bars["time"] + pd.Timedelta("1h")).rename("bucket"))
    np.testing.assert_array_equal(close.to_numpy(), pd.read_csv(path, skiprows=1)["close"].to_numpy()[::-1])
    np.testing.assert_array_equal(stored.read_series("binance_btc_usdt.1h.volume").to_numpy(), bars["base"])


def test_am_pm_dates_need_a_format_and_the_error_names_the_row_and_the_option(tmp_path):
    bars = _hourly(30)
    frame = bars.assign(Date=bars["time"].dt.strftime("%Y-%m-%d %I-%p")).drop(columns=["time"])
    path = tmp_path / "Gemini_BTCUSD_1h.csv"
    frame.rename(columns={"base": "volume"}).to_csv(path, index=False)
    store = f"sqlite:///{tmp_path / 'market.db'}"
    args = ["data", "import", "bars", str(path), "--exchange", "gemini", "--bucket", "1h", "--tz", "UTC",
            "--map", "timestamp=Date"]
    code, out = _atlas(*args, store=store)
    assert code == 2 and "row 0 (line 2) is '2024-01-01 12-AM', not a timestamp" in out
    assert "--format" in out and "pass" not in out.split("rule bad_timestamp")[1][:20]
    assert "to_datetime" not in out and "dayfirst" not in out and "ISO8601'" not in out  # no pandas advice
    code, out = _atlas(*args, "--format", "%Y-%m-%d %I-%p", store=store)
    assert code == 0, out
    close = MarketStore(store).read_series("gemini_btc_usd.1h.close")
    assert close.index[0] == pd.Timestamp("2024-01-01 01:00", tz="UTC") and len(close) == 30
    # a row that does not match the format is named, with the format
    frame.loc[7, "Date"] = "2024-01-01 07:00"
    frame.rename(columns={"base": "volume"}).to_csv(path, index=False)
    code, out = _atlas(*args, "--format", "%Y-%m-%d %I-%p", "--replace", store=store)
    assert code == 2 and "row 7 (line 9) is '2024-01-01 07:00', which does not match --format" in out


def test_offsets_that_change_at_a_daylight_saving_boundary_are_converted_to_utc_close_only(tmp_path):
    """A 30-minute FX quote series in New York time, across the change of 10 March 2024, close only."""
    utc = pd.date_range("2024-03-10 05:00", periods=12, freq="30min", tz="UTC")
    local = utc.tz_convert("America/New_York")
    assert len({t.utcoffset() for t in local}) == 2  # the file crosses the change
    text = [t.isoformat() for t in local]
    path = tmp_path / "EURUSD_30m.csv"
    pd.DataFrame({"Time": text, "Close": np.linspace(1.09, 1.10, 12)}).to_csv(path, index=False)
    store = f"sqlite:///{tmp_path / 'market.db'}"
    code, out = _atlas("data", "import", "bars", str(path), "--exchange", "oanda_eur_usd", "--new-venue",
                       "--bucket", "30min", "--label", "end", "--map", "timestamp=Time", store=store)
    assert code == 0, out
    stored = MarketStore(store)
    close = stored.read_series("oanda_eur_usd.30min.close")
    assert close.index.equals(utc.rename("bucket").as_unit("ns"))
    # close only: only the close series is written; volume is unknown, not zero
    assert sorted(stored.series_registry()["metric"]) == ["close"]
    assert "unknown" not in out and "volume" not in out
    # a file mixing rows with and without an offset is refused, naming the row
    with pytest.raises(DataValidationError, match=r"row 3 is '2024-03-10T01:30:00', with no UTC offset"):
        to_utc([*text[:3], "2024-03-10T01:30:00", *text[4:]])


def test_naive_local_times_across_a_fall_back_change_are_read_in_order():
    utc = pd.date_range("2024-11-03 04:00", periods=8, freq="30min", tz="UTC")
    naive = [t.tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M") for t in utc]
    assert len(set(naive)) < len(naive)  # 01:00 and 01:30 occur twice
    assert to_utc(naive, tz="America/New_York").equals(utc.as_unit("ns"))
    with pytest.raises(DataValidationError, match="unknown time zone 'Mars/Olympus'"):
        to_utc(naive, tz="Mars/Olympus")
    # 02:30 on 10 March 2024 never happened in New York: named, with the zone to check
    with pytest.raises(DataValidationError, match=r"row 1 is '2024-03-10 02:30', a time that does not exist in "
                                                  r"America/New_York"):
        to_utc(["2024-03-10 01:30", "2024-03-10 02:30"], tz="America/New_York")
    # a repeated hour that appears once cannot be told apart: the first or the second?
    with pytest.raises(DataValidationError, match=r"occurs twice in America/New_York .*rule ambiguous_timestamp"):
        to_utc(["2024-11-03 00:30", "2024-11-03 01:30"], tz="America/New_York")


def test_every_broken_rule_is_reported_in_one_pass_with_counts_and_first_rows(tmp_path):
    bars = _hourly(10).rename(columns={"base": "volume"})
    bars.loc[2, "close"] = -1.0                   # non_positive_price
    bars.loc[5, "high"] = bars.loc[5, "low"] / 2  # inconsistent_ohlc
    bars.loc[6, "time"] = bars.loc[5, "time"]     # a repeated bar
    bars.loc[8, "volume"] = -3.0                  # negative volume
    path = tmp_path / "bad.csv"
    bars.to_csv(path, index=False)
    store = MarketStore(f"sqlite:///{tmp_path / 'market.db'}")
    with pytest.raises(DataValidationError) as caught:
        import_bars(store, path, exchange="bitstamp", bucket="1h", columns={"timestamp": "time"})
    text = str(caught.value)
    assert text.startswith("bad.csv: 4 rules are broken; nothing was written.") and "\n" not in text
    for k, (rule, row) in enumerate([("duplicate_bar", 6), ("non_positive_price", 2), ("negative_volume", 8),
                                     ("inconsistent_ohlc", 5)], 1):
        assert re.search(rf"\({k}\) rule {rule}, 1 row: bad.csv row {row} \(line {row + 2}\)", text), (rule, text)
    assert "--keep first|last" in text and "--skip-invalid" in text
    assert store.series_registry().empty
    # skipping settles the value rules only; the repeated bar needs --keep
    with pytest.raises(DataValidationError, match="rule duplicate_bar") as caught:
        import_bars(store, path, exchange="bitstamp", bucket="1h", columns={"timestamp": "time"},
                    on_invalid="skip")
    assert "non_positive_price" not in str(caught.value)
    report = import_bars(store, path, exchange="bitstamp", bucket="1h", columns={"timestamp": "time"},
                         on_invalid="skip", keep="first")
    assert report.skipped == {"bars.non_positive_price": 1, "bars.inconsistent_ohlc": 1,
                              "bars.negative_volume": 1, "bars.duplicate_bar_first_kept": 1}
    assert report.written["bitstamp_btc_usd.1h.close"] == 6


def test_repeated_bars_with_different_values_keep_first_or_last_and_are_counted(tmp_path):
    bars = _hourly(6).rename(columns={"base": "volume"})
    twin = bars.iloc[[3]].assign(close=bars.loc[3, "close"] * 1.0001, high=bars.loc[3, "high"] * 1.001)
    same = bars.iloc[[1]]
    frame = pd.concat([bars, twin, same]).sort_values("time", kind="stable")
    store = MarketStore("sqlite://")
    options = dict(exchange="bitstamp", bucket="1h", columns={"timestamp": "time"})
    with pytest.raises(DataValidationError, match=r"repeats the time of an earlier bar \(1 of the repeated times "
                                                  r"have bars with different values\) \(rule duplicate_bar\); 2 rows"
                                                  r".*--keep first\|last"):
        import_bars(store, frame, **options)
    first = import_bars(store, frame, keep="first", **options)
    assert first.skipped == {"bars.duplicate_bar_first_kept": 2}
    assert first.noted == {"bars.duplicate_times_differing": 1}
    close = store.read_series("bitstamp_btc_usd.1h.close")
    assert close.iloc[3] == bars.loc[3, "close"]
    import_bars(store, frame, keep="last", replace=True, **options)
    assert store.read_series("bitstamp_btc_usd.1h.close").iloc[3] == twin["close"].iloc[0]


def test_a_reimport_with_a_shifted_label_is_refused_and_with_replace_equals_the_second_file(tmp_path):
    path = tmp_path / "bars.csv"
    _hourly(72).rename(columns={"base": "volume"}).to_csv(path, index=False)
    store = f"sqlite:///{tmp_path / 'market.db'}"
    base = ["data", "import", "bars", str(path), "--exchange", "bitstamp", "--bucket", "1h", "--map",
            "timestamp=time"]
    assert _atlas(*base, store=store)[0] == 0
    before = MarketStore(store).read_series("bitstamp_btc_usd.1h.close")
    code, out = _atlas(*base, "--label", "end", store=store)
    assert code == 2 and "rule already_stored" in out and "--replace" in out
    assert "atlas data delete bitstamp_btc_usd.1h.*" in out
    assert MarketStore(store).read_series("bitstamp_btc_usd.1h.close").equals(before)  # nothing mixed
    code, out = _atlas(*base, "--label", "end", "--replace", store=store)
    assert code == 0 and "noted 360 bars.replaced" in out, out  # all the first import wrote: 72 bars x 5
    second = pd.read_csv(path)
    stored = MarketStore(store)
    for metric in ("open", "high", "low", "close", "volume"):
        values = stored.read_series(f"bitstamp_btc_usd.1h.{metric}")
        # the series equals the second file exactly: nothing of the first import is left, not even its last bar,
        # which lies past the second file's range
        expected = pd.Series(second[metric].to_numpy(), index=pd.DatetimeIndex(second["time"], tz="UTC"))
        assert values.equals(expected.rename(values.name).rename_axis("bucket").astype(float)), metric
    # the same file twice is refused too, and the message says it was imported before
    code, out = _atlas(*base, "--label", "end", store=store)
    assert code == 2 and "it was imported before" in out
    # another file over part of the range replaces that part only
    part = tmp_path / "part.csv"
    second.iloc[10:20].assign(close=second["close"].iloc[10:20] * 1.01,
                              high=second["high"].iloc[10:20] * 1.01).to_csv(part, index=False)
    code, out = _atlas(*[str(part) if a == str(path) else a for a in base], "--label", "end", "--replace",
                       store=store)
    assert code == 0 and "noted 50 bars.replaced" in out, out
    close = stored.read_series("bitstamp_btc_usd.1h.close")
    assert len(close) == 72 and close.iloc[10] == second["close"].iloc[10] * 1.01
    assert close.iloc[9] == second["close"].iloc[9] and close.iloc[20] == second["close"].iloc[20]


def test_reimported_trades_from_another_source_are_refused_or_replaced():
    store = MarketStore("sqlite://")
    times = pd.date_range("2024-01-01", periods=20, freq="1s", tz="UTC")
    first = pd.DataFrame({"timestamp": times, "price": 100.0 + np.arange(20), "volume": 1.0})
    import_trades(store, first, exchange="bitstamp")
    other = first.assign(price=first["price"] + 0.5)  # another vendor's prints of the same period
    with pytest.raises(DataValidationError, match=r"holds 18 trades .* that this file does not.*--replace"):
        import_trades(store, other, exchange="bitstamp")
    report = import_trades(store, other, exchange="bitstamp", replace=True)
    assert report.noted == {"trade.replaced": 20}
    assert store.read_trades("bitstamp")["price"].tolist() == other["price"].tolist()
    # the same file again is the duplicate rule's, as before; a slice of it too
    with pytest.raises(DataValidationError, match="rule duplicate_trade"):
        import_trades(store, other.iloc[5:9], exchange="bitstamp")


def test_zero_and_missing_volume_are_counted_not_confused(tmp_path):
    bars = _hourly(8).rename(columns={"base": "volume"})
    bars.loc[[1, 2], "volume"] = 0.0
    bars.loc[4, "volume"] = np.nan
    store = MarketStore("sqlite://")
    report = import_bars(store, bars, exchange="bitstamp", bucket="1h", columns={"timestamp": "time"})
    assert report.noted == {"bars.zero_volume": 2, "bars.unknown_volume": 1}
    volume = store.read_series("bitstamp_btc_usd.1h.volume")
    assert len(volume) == 7 and (volume == 0).sum() == 2  # the unknown one is not stored as zero
    assert "noted 2 bars.zero_volume, 1 bars.unknown_volume" in str(report)


def test_bar_columns_that_look_misnamed_are_refused_never_dropped():
    bars = _hourly(4).rename(columns={"base": "volume", "open": "BTC.open"})
    store = MarketStore("sqlite://")
    with pytest.raises(DataValidationError, match=r"column 'BTC.open' looks like open.*--map open=BTC.open.*"
                                                  r"--map open=\)"):
        import_bars(store, bars, exchange="bitstamp", bucket="1h", columns={"timestamp": "time"})
    report = import_bars(store, bars, exchange="bitstamp", bucket="1h", columns="timestamp=time,open=")
    assert "bitstamp_btc_usd.1h.open" not in report.written and report.written["bitstamp_btc_usd.1h.close"] == 4
    with pytest.raises(DataValidationError, match="no column for any of open, high, low, close"):
        import_bars(store, bars[["time", "volume"]], exchange="bitstamp", bucket="1h", columns="timestamp=time")
    with pytest.raises(ConfigError, match="has no timestamp, which this import needs"):
        import_bars(store, bars, exchange="bitstamp", bucket="1h", columns="timestamp=")


def test_skip_rows_counts_lines_in_messages_and_is_checked(tmp_path):
    path = tmp_path / "bars.csv"
    frame = _hourly(4).rename(columns={"base": "volume"})
    frame.loc[2, "close"] = -1.0
    path.write_text("Exported by Vendor Inc.\nAll times UTC\n" + frame.to_csv(index=False))
    store = MarketStore("sqlite://")
    with pytest.raises(DataValidationError, match=r"lines 1 to 2 .* header on line 3 .*--skip-rows 2"):
        import_bars(store, path, exchange="bitstamp", bucket="1h", columns={"timestamp": "time"})
    with pytest.raises(DataValidationError, match=r"bars.csv row 2 \(line 6\)"):
        import_bars(store, path, exchange="bitstamp", bucket="1h", columns={"timestamp": "time"}, skip_rows=2)
    with pytest.raises(ConfigError, match="skip_rows"):
        import_bars(store, path, exchange="bitstamp", bucket="1h", skip_rows=-1)


def test_trades_take_the_same_file_options(tmp_path):
    path = tmp_path / "trades.csv"
    times = pd.date_range("2024-03-31 00:58", periods=5, freq="1min", tz="Europe/London")
    rows = pd.DataFrame({"when": [t.strftime("%d/%m/%Y %H:%M %z") for t in times][::-1],
                         "price": [100.0, 101, 102, 103, 104], "amount": [1.0, 2, 3, 4, 5]})
    path.write_text("Trades export\n" + rows.to_csv(index=False))
    code, out = _atlas("data", "import", "trades", str(path), "--exchange", "kraken", "--skip-rows", "1",
                       "--map", "timestamp=when,volume=amount", "--format", "%d/%m/%Y %H:%M %z", "--sort",
                       store="sqlite:///" + str(tmp_path / "m.db"))
    assert code == 0, out
    stored = MarketStore("sqlite:///" + str(tmp_path / "m.db")).read_trades("kraken")
    assert stored["timestamp"].tolist() == list(times.tz_convert("UTC"))
    assert stored["price"].tolist() == [104.0, 103, 102, 101, 100]
