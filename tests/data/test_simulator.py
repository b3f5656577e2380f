"""The market simulator: determinism, realistic books and trades, the planted lead-lag signal, and store writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas.data.buckets import bucket_labels
from atlas.data.simulator import MarketSimulator, SimulatorConfig, max_signal
from atlas.data.simulator._latent import alpha_for_signal, signal_for_alpha
from atlas.data.store import MarketStore
from atlas.exceptions import ConfigError, DataValidationError, UnknownExchangeError

PAIR = "bitstamp,itbit"
LEADER, FOLLOWER = "BITSTAMP_BTC_USD", "ITBIT_BTC_USD"


def hc_t(x: np.ndarray, y: np.ndarray) -> float:
    """The t statistic of corr(x, y) = 0 that stays valid when volatility changes (White's standard error)."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep] - x[keep].mean(), y[keep] - y[keep].mean()
    return float((x * y).sum() / np.sqrt((x * x * y * y).sum()))


class Market:
    """A simulation's days, and its book midpoints on the bucket grid, computed once per module."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.sim = MarketSimulator(config)
        self.days = list(self.sim.days())
        self.truth = self.sim.truth()

    def books(self, exchange: str):
        return [day[exchange].books for day in self.days]

    def trades(self, exchange: str) -> pd.DataFrame:
        return pd.concat([day[exchange].trades for day in self.days], ignore_index=True)

    def bucket_mids(self, exchange: str) -> pd.Series:
        """The last book midpoint at or before each bucket's end, from the books alone."""
        books = self.books(exchange)
        times = np.concatenate([b.times.asi8 for b in books])
        mids = np.concatenate([(b.best_bid + b.best_ask) / 2 for b in books])
        labels = self.truth.index
        return pd.Series(mids[np.searchsorted(times, labels.asi8, side="right") - 1], index=labels)

    def bucket_returns(self, exchange: str) -> np.ndarray:
        return np.log(self.bucket_mids(exchange)).diff().to_numpy()


@pytest.fixture(scope="module")
def planted() -> Market:
    return Market(SimulatorConfig(exchanges=PAIR, days=5, signal=0.3, seed=7))


@pytest.fixture(scope="module")
def null() -> Market:
    return Market(SimulatorConfig(exchanges=PAIR, days=5, signal=0.0, seed=7))


def assert_same_day(a, b) -> None:
    assert [v.exchange for v in a.venues] == [v.exchange for v in b.venues]
    for x, y in zip(a.venues, b.venues):
        assert x.books.times.equals(y.books.times)
        for side in ("bids", "asks"):
            for part in ("price", "volume", "offsets"):
                np.testing.assert_array_equal(getattr(getattr(x.books, side), part),
                                              getattr(getattr(y.books, side), part))
        pd.testing.assert_frame_equal(x.trades, y.trades)
        pd.testing.assert_series_equal(x.exchange_volume, y.exchange_volume)


# determinism ------------------------------------------------------------------------------------------------


def test_the_same_seed_gives_identical_data_and_another_seed_does_not():
    config = SimulatorConfig(days=0.3, signal=0.2)
    first, again = MarketSimulator(config).day(0), MarketSimulator(config).day(0)
    assert_same_day(first, again)
    pd.testing.assert_frame_equal(MarketSimulator(config).truth(), MarketSimulator(config).truth())
    other = MarketSimulator(SimulatorConfig(days=0.3, signal=0.2, seed=8)).day(0)
    for x, y in zip(first.venues, other.venues):
        assert not np.allclose(x.books.best_bid, y.books.best_bid)
        assert len(x.trades) != len(y.trades) or not np.allclose(x.trades["price"], y.trades["price"])


def test_a_day_generated_alone_equals_the_same_day_generated_in_sequence():
    sim = MarketSimulator(SimulatorConfig(days=3, signal=0.3, snapshot_interval="30s"))
    in_sequence = list(sim.days())
    assert [d.index for d in in_sequence] == [0, 1, 2]
    for index in (0, 2):  # day 2's exchange volume needs day 1's trades: generated again, identically
        assert_same_day(MarketSimulator(sim.config).day(index), in_sequence[index])


def test_a_longer_horizon_extends_a_shorter_one():
    short = MarketSimulator(SimulatorConfig(days=2, signal=0.3, snapshot_interval="30s"))
    long = MarketSimulator(SimulatorConfig(days=3, signal=0.3, snapshot_interval="30s"))
    assert_same_day(short.day(1), long.day(1))
    pd.testing.assert_frame_equal(short.truth().iloc[:-1], long.truth().iloc[:short.config.n_buckets - 1])


def test_days_cover_the_horizon_without_gaps_or_overlaps(planted):
    config = planted.sim.config
    times = np.concatenate([b.times.asi8 for b in planted.books(LEADER)])
    step = config.snapshot_ns
    assert len(times) == config.n_snapshots == 5 * 8640
    assert times[0] == config.start.value + step and times[-1] == config.end.value
    assert (np.diff(times) == step).all()
    for day in planted.days:
        assert day.start < day.venues[0].books.times[0] and day.venues[0].books.times[-1] == day.end


# books and trades -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [10, 20])
def test_books_are_deep_valid_and_never_crossed(levels):
    config = SimulatorConfig(days=0.5, levels=levels, signal=0.3)
    for venue in MarketSimulator(config).day(0).venues:
        books = venue.books
        books.validate()
        assert (books.bids.counts == levels).all() and (books.asks.counts == levels).all()
        bids = books.bids.price.reshape(len(books), levels)
        asks = books.asks.price.reshape(len(books), levels)
        assert (np.diff(bids, axis=1) < 0).all() and (np.diff(asks, axis=1) > 0).all()
        assert (bids[:, 0] < asks[:, 0]).all()
        assert (books.bids.volume > 0).all() and (books.asks.volume > 0).all()
        ticks = np.concatenate([bids, asks]).ravel() / config.tick
        np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)
        # depth profile: deeper levels hold more volume on average, and gaps widen away from the top
        volume = books.bids.volume.reshape(len(books), levels).mean(axis=0)
        assert volume[-1] > 2 * volume[0]
        gaps = -np.diff(bids, axis=1).mean(axis=0)
        assert gaps[-1] > 1.5 * gaps[0]


def test_leader_midpoint_is_the_efficient_price_and_spreads_are_realistic(planted):
    truth = planted.truth
    mids = planted.bucket_mids(LEADER)
    np.testing.assert_allclose(mids, truth["efficient_price"], atol=0.01)  # tick rounding only
    np.testing.assert_allclose(mids, truth["mid_bitstamp_btc_usd"])
    books = planted.books(FOLLOWER)[0]
    spread_bps = (books.best_ask - books.best_bid) / books.best_bid * 1e4
    assert 0.5 < spread_bps.mean() < 8 and spread_bps.std() > 0.1


def test_trades_sit_inside_snapshot_intervals_at_the_preceding_quotes(planted):
    config = planted.sim.config
    day = planted.days[1]
    trades, books = day[FOLLOWER].trades, day[FOLLOWER].books
    times = pd.DatetimeIndex(trades["timestamp"]).asi8
    assert str(trades["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(trades.columns) == ["timestamp", "price", "volume", "exchange_trade_id"]
    assert (np.diff(times) >= 0).all() and (times % config.snapshot_ns != 0).all()
    assert (times % 1000 == 0).all()  # whole microseconds: the store keeps them exactly
    assert trades["exchange_trade_id"].is_unique and (trades["volume"] > 0).all()
    all_ids = pd.concat([d[FOLLOWER].trades["exchange_trade_id"] for d in planted.days])
    assert all_ids.is_unique
    # each trade hits the best bid or lifts the best ask of the snapshot before it (day 1 starts after day 0's last)
    previous = planted.days[0][FOLLOWER].books
    quote_times = np.concatenate([previous.times.asi8[-1:], books.times.asi8])
    bid = np.concatenate([previous.best_bid[-1:], books.best_bid])
    ask = np.concatenate([previous.best_ask[-1:], books.best_ask])
    before = np.searchsorted(quote_times, times) - 1
    assert (before >= 0).all()
    price = trades["price"].to_numpy()
    buys = np.isclose(price, ask[before])
    assert (buys | np.isclose(price, bid[before])).all()
    assert 0.45 < buys.mean() < 0.55


def test_trade_rate_rises_with_volatility(planted):
    trades = planted.trades(FOLLOWER)
    width = planted.sim.config.bucket_timedelta
    labels = bucket_labels(pd.DatetimeIndex(trades["timestamp"]).asi8, width)
    counts = pd.Series(1, index=labels).groupby(level=0).sum()
    truth = planted.truth
    counts = counts.reindex(truth.index.asi8, fill_value=0).to_numpy()
    high = truth["volatility"].to_numpy() > truth["volatility"].median()
    assert counts[high].mean() > 1.3 * counts[~high].mean()
    per_minute = len(trades) / (planted.sim.config.n_buckets)
    assert 2 < per_minute < 20  # around trades_per_minute=6, times the exchange's activity factor


def test_exchange_volume_is_the_rolling_24h_traded_volume_every_minute(planted):
    volume = planted.days[1][FOLLOWER].exchange_volume
    assert len(volume) == 1440 and (volume.index.asi8 % (60 * 10**9) == 0).all()
    trades = planted.trades(FOLLOWER)
    times, size = pd.DatetimeIndex(trades["timestamp"]).asi8, trades["volume"].to_numpy()
    for stamp in volume.index[[0, 700, -1]]:
        window = (times > stamp.value - 86_400 * 10**9) & (times <= stamp.value)
        assert volume[stamp] == pytest.approx(size[window].sum(), rel=1e-9)
    first_day = planted.days[0][FOLLOWER].exchange_volume
    assert first_day.iloc[0] > 0.5 * first_day.iloc[-1]  # the warm-up day fills the first window


# the planted signal -----------------------------------------------------------------------------------------


def test_the_planted_lead_lag_is_recovered_from_book_midpoints(planted):
    leader, follower = planted.bucket_returns(LEADER), planted.bucket_returns(FOLLOWER)
    corr = pd.Series(leader[1:-1]).corr(pd.Series(follower[2:]))
    assert corr == pytest.approx(0.3, abs=0.05)
    backwards = pd.Series(follower[1:-1]).corr(pd.Series(leader[2:]))  # the follower does not lead
    assert abs(backwards) < 0.05


def test_without_a_signal_there_is_nothing_to_find(null):
    leader, follower = null.bucket_returns(LEADER), null.bucket_returns(FOLLOWER)
    assert abs(hc_t(leader[1:-1], follower[2:])) < 3  # the leader's last return
    assert abs(hc_t(follower[1:-1], follower[2:])) < 3  # the follower's own last return
    assert abs(hc_t(leader[1:-1], leader[2:])) < 3
    trades = null.trades(FOLLOWER)  # order flow: buys (at the ask) minus sells in a bucket
    times = pd.DatetimeIndex(trades["timestamp"]).asi8
    books = null.books(FOLLOWER)
    before = np.searchsorted(np.concatenate([b.times.asi8 for b in books]), times) - 1
    ask = np.concatenate([b.best_ask for b in books])[np.maximum(before, 0)]
    side = np.where(np.isclose(trades["price"], ask), 1, -1)[before >= 0]
    labels = bucket_labels(times[before >= 0], null.sim.config.bucket_timedelta)
    flow = pd.Series(side, index=labels).groupby(level=0).sum().reindex(null.truth.index.asi8, fill_value=0)
    assert abs(hc_t(flow.to_numpy()[1:-1], follower[2:])) < 3
    assert null.sim.best_accuracy() == 0.5 == null.sim.theoretical_accuracy()
    assert null.sim.lead_lag.alpha == 0.0


def test_best_accuracy_matches_theory_and_a_model_of_the_leader_reaches_it(planted):
    sim = planted.sim
    theory = sim.theoretical_accuracy()
    assert theory == pytest.approx(0.5 + np.arcsin(0.3) / np.pi)
    assert sim.best_accuracy() == pytest.approx(theory, abs=0.02)
    assert sim.best_accuracy(LEADER) == 0.5 == sim.theoretical_accuracy(LEADER)
    leader, follower = planted.bucket_returns(LEADER), planted.bucket_returns(FOLLOWER)
    hits = np.sign(leader[1:-1]) == np.sign(follower[2:])  # a platform's model: follow the leader's last return
    assert hits.mean() == pytest.approx(theory, abs=0.025)
    assert hits.mean() <= sim.best_accuracy() + 0.01


@pytest.mark.parametrize("lag", ["30s", "2min"])
def test_the_signal_holds_for_lags_other_than_one_bucket(lag):
    sim = MarketSimulator(SimulatorConfig(exchanges=PAIR, days=3, signal=0.4, lag=lag, seed=3))
    truth = sim.truth()
    corr = truth["prediction_itbit_btc_usd"].corr(truth["next_return_itbit_btc_usd"])
    assert corr == pytest.approx(0.4, abs=0.05)
    assert sim.best_accuracy() == pytest.approx(sim.theoretical_accuracy(), abs=0.025)


@pytest.mark.parametrize(("signal", "noise", "lag", "bucket"), [(0.3, 0.2, 6, 6), (0.05, 0.0, 6, 6),
                                                                 (0.6, 0.5, 3, 6), (0.9, 0.2, 12, 6)])
def test_alpha_plants_exactly_the_requested_signal(signal, noise, lag, bucket):
    alpha = alpha_for_signal(signal, noise=noise, lag_steps=lag, bucket_steps=bucket)
    assert 0 < alpha <= 1
    assert signal_for_alpha(alpha, noise=noise, lag_steps=lag, bucket_steps=bucket) == pytest.approx(signal)
    assert signal_for_alpha(1.0, noise=noise, lag_steps=lag, bucket_steps=bucket) == pytest.approx(
        max_signal(noise, lag, bucket))


def test_truth_is_on_the_bucket_grid(planted):
    truth, config = planted.truth, planted.sim.config
    assert len(truth) == config.n_buckets
    assert truth.index[0] == config.start + config.bucket_timedelta and truth.index[-1] == config.end
    assert truth.index.name == "bucket" and str(truth.index.tz) == "UTC"
    assert (truth["prediction_bitstamp_btc_usd"] == 0).all()
    assert truth["next_return_itbit_btc_usd"].isna().tolist() == [False] * (len(truth) - 1) + [True]
    lead_lag = planted.sim.lead_lag
    assert lead_lag.leader.name == LEADER and [f.name for f in lead_lag.followers] == [FOLLOWER]
    assert lead_lag.lag == pd.Timedelta("1min") and 0 < lead_lag.alpha < 1
    with pytest.raises(ConfigError, match="COINBASE_BTC_USD is not simulated"):
        planted.sim.best_accuracy("coinbase")
    with pytest.raises(ConfigError, match="day index"):
        planted.sim.day(5)


# configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "error", "words"), [
    ({"signal": -0.1}, ConfigError, "signal must be in"),
    ({"signal": 0.99}, ConfigError, r"signal must be in \[0, 0.9806\]"),
    ({"signal": 0.5, "exchanges": "bitstamp"}, ConfigError, "signal must be 0 with a single exchange"),
    ({"levels": 9}, ConfigError, "levels must be a whole number >= 10"),
    ({"snapshot_interval": "7s"}, ConfigError, "bucket must be a whole multiple of snapshot_interval=7s"),
    ({"lag": "15s"}, ConfigError, "lag must be a whole multiple of snapshot_interval=10s"),
    ({"snapshot_interval": "500ms", "bucket": "1s", "lag": "1s"}, ConfigError, "snapshot_interval must be a whole"),
    ({"exchanges": ("bitstamp", "nowhere")}, UnknownExchangeError, "unknown exchange venue 'nowhere'"),
    ({"exchanges": "bitstamp,bitstamp"}, ConfigError, "exchanges names .*BITSTAMP_BTC_USD.* more than once"),
    ({"exchanges": "bitstamp,kraken_btc_eur"}, ConfigError, "exchanges must all trade one pair"),
    ({"days": 0}, ConfigError, "days must cover at least two"),
    ({"start": "2024-01-01 00:00:30"}, ConfigError, "start must lie on the 1min bucket grid"),
    ({"bucket": "1 fortnight"}, ConfigError, "SimulatorConfig.bucket: bucket width"),
    ({"tick": 0.0}, ConfigError, "tick must be greater than 0"),
    ({"intraday_amplitude": 1.0}, ConfigError, r"intraday_amplitude must be in \[0, 1\)"),
    ({"seed": -1}, ConfigError, "seed must be a whole number >= 0"),
])
def test_bad_settings_raise_naming_the_field(fields, error, words):
    with pytest.raises(error, match=words):
        SimulatorConfig(**fields)


def test_config_round_trips_through_plain_values():
    config = SimulatorConfig(exchanges="coinbase,bitstamp", days=2.5, signal=0.25, lag="2min", seed=11)
    values = config.to_dict()
    assert values["exchanges"] == ["COINBASE_BTC_USD", "BITSTAMP_BTC_USD"] and values["lag"] == "2min"
    assert config.lag == "2min" and SimulatorConfig(lag=pd.Timedelta("120s")).lag == "2min"
    assert SimulatorConfig.from_dict(values) == config
    with pytest.raises(ConfigError, match="no field"):
        SimulatorConfig.from_dict({**values, "sigal": 0.2})


# writing into a store ---------------------------------------------------------------------------------------


def test_simulate_into_writes_every_table_once_and_refuses_another_simulation_over_it(store):
    sim = MarketSimulator(SimulatorConfig(exchanges=PAIR, days=1.25, snapshot_interval="30s", signal=0.3))
    days = list(sim.days())
    report = sim.simulate_into(store)
    assert report.days == 2 and report.seconds > 0
    for exchange in (LEADER, FOLLOWER):
        books = store.read_orderbooks(exchange)
        assert len(books) == report.snapshots[exchange] == sim.config.n_snapshots == 3600
        trades = store.read_trades(exchange)
        expected = sum(len(d[exchange].trades) for d in days)
        assert len(trades) == report.trades[exchange] == expected > 1000
        volume = store.read_exchange_volume(exchange)
        assert len(volume) == report.exchange_volume[exchange] == 1800
        generated = days[1][exchange]
        np.testing.assert_allclose(books.best_bid[-len(generated.books):], generated.books.best_bid)
        np.testing.assert_allclose(books.asks.volume[-5:], generated.books.asks.volume[-5:])
        tail = len(generated.trades)
        np.testing.assert_array_equal(pd.DatetimeIndex(trades["timestamp"]).asi8[-tail:],
                                      pd.DatetimeIndex(generated.trades["timestamp"]).asi8)
        assert trades["exchange_trade_id"].tolist()[-tail:] == generated.trades["exchange_trade_id"].tolist()
        np.testing.assert_allclose(trades["price"].to_numpy()[-tail:], generated.trades["price"])
        np.testing.assert_allclose(volume.to_numpy()[-360:], generated.exchange_volume.to_numpy())
    again = MarketSimulator(sim.config).simulate_into(store)  # the same simulation: every day is already there
    assert (again.days, again.already_written, again.snapshots[LEADER]) == (0, 2, 0)
    other = MarketSimulator(SimulatorConfig(exchanges=PAIR, days=1.25, snapshot_interval="30s", signal=0.3, seed=8))
    with pytest.raises(DataValidationError, match="already holds orderbook data"):
        other.simulate_into(store)
    assert len(store.read_orderbooks(LEADER)) == 3600  # nothing more was written


def test_simulate_into_shows_progress_on_stderr(sqlite_url, capsys):
    sim = MarketSimulator(SimulatorConfig(exchanges="bitstamp", days=0.1, snapshot_interval="30s"))
    with MarketStore(sqlite_url) as store:
        report = sim.simulate_into(store, progress=True)
    captured = capsys.readouterr()
    assert "simulating" in captured.err and "1/1" in captured.err and captured.out == ""
    assert "simulated 1 day(s)" in str(report)


def test_simulating_over_existing_data_is_refused_before_writing(tmp_path):
    from atlas.data import MarketStore
    from atlas.exceptions import DataValidationError

    store = MarketStore(f"sqlite:///{tmp_path / 'market.db'}")
    config = SimulatorConfig(days=0.1, exchanges="bitstamp,itbit", seed=3)
    MarketSimulator(config).simulate_into(store)
    version = store.data_version()
    with pytest.raises(DataValidationError, match="already holds orderbook data of BITSTAMP_BTC_USD .* overlaps"):
        MarketSimulator(SimulatorConfig(days=0.1, exchanges="coinbase,bitstamp", seed=4)).simulate_into(store)
    assert store.data_version() == version
    later = SimulatorConfig(days=0.1, exchanges="bitstamp,itbit", seed=3, start="2024-01-02")
    assert MarketSimulator(later).simulate_into(store).snapshots["BITSTAMP_BTC_USD"] > 0
