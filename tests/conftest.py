from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _services import PostgresServer

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session, started from initdb on loopback."""
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_server.create_database(f"atlas_test_{next(_databases)}")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'market.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Each store backend in turn: the contract suites run over both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'market.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    from atlas.data import MarketStore

    with MarketStore(store_url) as market_store:
        yield market_store
