"""Opening databases: the Atlas store (read and written) and a GDS database read in place (never written).

Every failure to open or use a database becomes a :class:`StoreError` that names the database without its password
and the setting that points at it, so the command line prints one line instead of a driver's traceback.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from atlas.config import mask_text, mask_url
from atlas.exceptions import ConfigError, StoreError

#: The settings that name each database, for messages.
STORE_SETTING = "ATLAS_STORE_URL or --store"
GDS_SETTING = "ATLAS_GDS_URL"



def _what(setting: str) -> str:
    return "the GDS database" if setting == GDS_SETTING else "the market store"


#: Drivers Atlas knows how to install, by SQLAlchemy dialect.
_DRIVERS = {"postgresql": "psycopg[binary] (pip install 'psycopg[binary]')",
            "mysql": "PyMySQL (pip install pymysql) for mysql+pymysql:// URLs",
            "mariadb": "PyMySQL (pip install pymysql) for mariadb+pymysql:// URLs"}


def parse_url(url: str, setting: str) -> URL:
    """A SQLAlchemy URL, or a ConfigError that names the setting and shows the expected forms."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        msg = (f"{_what(setting)} URL {mask_url(url)!r} ({setting}) is not a database URL "
               f"({mask_text(str(error))}); e.g. sqlite:///.atlas/market.db or postgresql+psycopg://user@host/db")
        raise ConfigError(msg) from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def open_engine(url: str, *, setting: str, read_only: bool = False) -> Engine:
    """An engine on ``url``: SQLite in WAL mode (the folder made if missing), or any other SQLAlchemy database.

    Args:
        url: the database URL.
        setting: the option or variable that gave the URL, named in errors.
        read_only: open without ever writing: SQLite in ``mode=ro`` (no journal-mode change, no folder made),
            PostgreSQL in read-only transactions.

    Raises:
        ConfigError: the URL is malformed. StoreError: its driver is not installed, its folder cannot be made.
    """
    parsed = parse_url(url, setting)
    shown = mask_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite(parsed, setting, shown, read_only)
        connect_args = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
        if read_only and parsed.get_backend_name() == "postgresql":
            connect_args["options"] = "-c default_transaction_read_only=on"
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as error:
        backend = parsed.get_backend_name()
        install = _DRIVERS.get(backend, f"the Python driver for {parsed.drivername}")
        msg = (f"cannot open {_what(setting)} {shown!r} ({setting}): its driver is not installed ({error}); install "
               f"{install}, or point {setting} at another database")
        raise StoreError(msg) from None


def _sqlite(parsed: URL, setting: str, shown: str, read_only: bool) -> Engine:
    database = parsed.database
    on_disk = bool(database) and database != ":memory:" and not database.startswith("file:")
    if read_only:
        if not on_disk or not Path(database).is_file():
            msg = f"no SQLite database file at {database!r} ({setting}); give the path of an existing database"
            raise StoreError(msg)
        path = Path(database).resolve().as_posix()
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                                          check_same_thread=False))
    if on_disk:
        folder = Path(database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            msg = (f"cannot make the folder {str(folder)!r} for {_what(setting)} {shown!r} ({setting}): "
                   f"{error.strerror or error}; point {setting} (or ATLAS_HOME) at a folder you can write")
            raise StoreError(msg) from None
    engine = create_engine(parsed, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # WAL: readers never wait for the writer
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=60000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


def store_error(error: BaseException, url: str, setting: str) -> StoreError:
    """The clear form of a database error: which database, why, and what to do about it."""
    shown = mask_url(url)
    detail = mask_text(str(getattr(error, "orig", None) or error)).strip().splitlines()[0] if str(error) else \
        type(error).__name__
    lowered = detail.lower()
    if "not a database" in lowered or "malformed" in lowered or "disk image" in lowered:
        hint = ("the file is damaged or is not an Atlas store; restore it from a backup, or point "
                f"{setting} at another store")
    elif "readonly" in lowered or "read-only" in lowered or "permission denied" in lowered:
        hint = f"the database or its folder cannot be written; fix its permissions, or point {setting} elsewhere"
    elif "unable to open" in lowered:
        hint = f"its folder is missing or cannot be written; point {setting} at a folder you can write"
    elif "disk is full" in lowered or "no space" in lowered:
        hint = ("the disk is full; the write in progress was rolled back, none of it was stored: free some space "
                "and run the command again")
    elif "locked" in lowered:
        hint = "another process holds the database; wait for it, or stop it, and try again"
    else:
        hint = f"is the server running and reachable? Check {setting}"
    msg = f"{_what(setting)} {shown!r} ({setting}) failed: {detail}; {hint}"
    return StoreError(msg)


@contextlib.contextmanager
def translated(url: str, setting: str) -> Iterator[None]:
    """Turns driver errors raised inside the block into :func:`store_error` (a conflict stays an IntegrityError,
    which callers catch to name the offending row)."""
    try:
        yield
    except IntegrityError:
        raise
    except (DBAPIError, SQLAlchemyError, sqlite3.Error) as error:
        raise store_error(error, url, setting) from error
