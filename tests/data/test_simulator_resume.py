"""An interrupted simulation is finished by running it again: the same data as a run that was never interrupted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from atlas.data.simulator import MarketSimulator, SimulatorConfig
from atlas.data.store import MarketStore
from atlas.data.store._schema import exchange_volume, ingest, orderbook, trade
from atlas.exceptions import DataValidationError

CONFIG = SimulatorConfig(exchanges="bitstamp,itbit", days=3, snapshot_interval="60s", levels=10, signal=0.3, seed=5)

#: Every column of the market tables but the random ones (unique_id, time_created) and the row ids; and the
#: ingest log but its times of writing.
TABLES = {
    "orderbook": (orderbook, ("exchange", "timestamp", "bids", "asks")),
    "trade": (trade, ("exchange", "timestamp", "exchange_trade_id", "source", "price", "price_currency", "volume",
                      "volume_currency")),
    "exchange_volume": (exchange_volume, ("exchange", "timestamp", "exchange_volume")),
    "atlas_ingest": (ingest, ("exchange", "kind", "first_timestamp", "last_timestamp", "rows", "source")),
}


def dump(store: MarketStore) -> dict[str, list[tuple]]:
    """The stored rows, sorted, as the reprs of their values: equal dumps are byte-for-byte equal data."""
    with store.engine.connect() as conn:
        return {name: sorted(tuple(repr(v) for v in row) for row in
                             conn.execute(select(*(table.c[c] for c in columns))))
                for name, (table, columns) in TABLES.items()}


class Interrupted(KeyboardInterrupt):
    """What Ctrl-C raises, from inside a day's transaction."""


def interrupt_on_call(monkeypatch, store: MarketStore, number: int) -> None:
    """The store's ``number``-th write of exchange volume raises, after that day's other writes in its transaction."""
    calls = {"n": 0}
    real = store.write_exchange_volume

    def write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == number:
            raise Interrupted
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write_exchange_volume", write)


_references: dict[str, dict[str, list[tuple]]] = {}


@pytest.fixture
def uninterrupted(store_url, request, tmp_path_factory) -> dict[str, list[tuple]]:
    """The dump of an uninterrupted run into a store of the same backend as ``store_url``, made once."""
    backend = store_url.split(":")[0]
    if backend not in _references:
        url = (f"sqlite:///{tmp_path_factory.mktemp('whole') / 'market.db'}" if backend == "sqlite" else
               request.getfixturevalue("postgres_server").create_database("atlas_whole_simulation"))
        with MarketStore(url) as store:
            report = MarketSimulator(CONFIG).simulate_into(store)
            assert report.days == 3 and report.already_written == 0
            _references[backend] = dump(store)
    return _references[backend]


# the second exchange's volume of day `day`: the day's books and trades of both exchanges are already in its
# transaction when it raises
@pytest.mark.parametrize("day", [0, 1, 2])
def test_an_interrupted_simulation_resumes_to_the_data_of_an_uninterrupted_one(day, store_url, uninterrupted,
                                                                               monkeypatch):
    with MarketStore(store_url) as store:
        interrupt_on_call(monkeypatch, store, 2 * day + 2)
        with pytest.raises(Interrupted):
            MarketSimulator(CONFIG).simulate_into(store)
        monkeypatch.undo()
        simulator = MarketSimulator(CONFIG)
        assert simulator.written_days(store) == tuple(range(day))  # whole days only: the cut one left nothing
        assert len(dump(store)["orderbook"]) == 2 * 1440 * day  # two exchanges, a snapshot a minute
        expected = {0: "writing days 1-3 of 3",
                    1: "resuming: day 1 of 3 already written by this simulation; writing days 2-3",
                    2: "resuming: days 1-2 of 3 already written by this simulation; writing day 3"}
        assert simulator.resume_text(simulator.written_days(store)) == expected[day]
        report = simulator.simulate_into(store)
        assert (report.days, report.already_written) == (3 - day, day)
        assert simulator.written_days(store) == (0, 1, 2)
        assert dump(store) == uninterrupted
        assert simulator.resume_text((0, 1, 2)) == "nothing to do: all 3 day(s) of this simulation are already in the store"


def test_another_simulation_over_an_interrupted_one_is_refused(sqlite_url, monkeypatch):
    with MarketStore(sqlite_url) as store:
        interrupt_on_call(monkeypatch, store, 4)
        with pytest.raises(Interrupted):
            MarketSimulator(CONFIG).simulate_into(store)
        monkeypatch.undo()
        before = dump(store)
        for other in (SimulatorConfig(**{**CONFIG.to_dict(), "seed": 6}),
                      SimulatorConfig(**{**CONFIG.to_dict(), "days": 4}),
                      SimulatorConfig(**{**CONFIG.to_dict(), "levels": 12})):
            assert MarketSimulator(other).written_days(store) == ()
            with pytest.raises(DataValidationError, match="already holds .* overlaps.*exactly the same options") as caught:
                MarketSimulator(other).simulate_into(store)
            assert caught.value.rule == "overlapping_data"
        assert dump(store) == before
        later = SimulatorConfig(**{**CONFIG.to_dict(), "seed": 6, "start": "2024-01-02"})  # after day 1: free
        assert MarketSimulator(later).simulate_into(store).days == 3


def test_the_config_digest_names_everything_that_decides_the_data():
    assert CONFIG.digest == SimulatorConfig.from_dict(CONFIG.to_dict()).digest
    assert len({SimulatorConfig(**{**CONFIG.to_dict(), field: value}).digest
                for field, value in [("seed", 6), ("signal", 0.2), ("lag", "2min"), ("start", "2024-01-02"),
                                     ("snapshot_interval", "30s"), ("levels", 11), ("exchanges", "bitstamp,coinbase"),
                                     ("days", 2.0), ("noise", 0.3)]} | {CONFIG.digest}) == 10
    assert MarketSimulator(CONFIG).source == f"simulator:{CONFIG.digest}"
