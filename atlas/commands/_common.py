"""Helpers shared by the command modules: the store option, lists, ranges, output files, and failures."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

import click


class SettingOption(click.Option):
    """An option whose default is a setting: ``--help`` shows the value the settings give now (``ATLAS_HOME``
    included), not a fixed text."""

    def __init__(self, *args, setting: Callable, what: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._setting, self._what = setting, what

    def get_help_record(self, ctx: click.Context):
        from atlas.config import Settings, mask_url
        from atlas.exceptions import AtlasError

        try:
            value = mask_url(self._setting(Settings.from_env()))
        except AtlasError as error:  # a bad setting: the help still shows, and says so
            value = f"unset ({error})"
        self.help = f"{self._what} [env {self.envvar}; default {value}]."
        return super().get_help_record(ctx)


store_option = click.option(
    "--store", "store_url", cls=SettingOption, envvar="ATLAS_STORE_URL", default=None, metavar="URL",
    setting=lambda settings: settings.store.url, what="SQLAlchemy URL of the market store")
tracking_option = click.option(
    "--tracking-uri", "tracking_uri", cls=SettingOption, envvar="MLFLOW_TRACKING_URI", default=None, metavar="URI",
    setting=lambda settings: settings.tracking.mlflow_uri, what="MLflow tracking URI: runs, models and the registry")


def command_settings(store_url: str | None = None, tracking_uri: str | None = None, *, read_only: bool = False):
    """The settings of the environment, with ``--store`` and ``--tracking-uri`` over them.

    Args:
        read_only: the command only reads (``harvest``, ``report``, ``models``): a SQLite file that does not
            exist is an error naming the option, not an empty store made at a mistyped path.
    """
    import dataclasses

    from atlas.config import Settings

    settings = Settings.from_env()
    if store_url:
        settings = dataclasses.replace(settings, store=dataclasses.replace(settings.store, url=store_url))
    if tracking_uri:
        settings = dataclasses.replace(settings, tracking=dataclasses.replace(settings.tracking,
                                                                            mlflow_uri=tracking_uri))
    if read_only:
        require_existing(settings.tracking.mlflow_uri, "--tracking-uri or MLFLOW_TRACKING_URI",
                         "nothing has been trained there: `atlas train SPEC` records there")
    if settings.tracking.s3_endpoint_url:  # from atlas.toml: MLflow's S3 client reads only its variable
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", settings.tracking.s3_endpoint_url)
    return settings


def require_existing(url: str, setting: str, hint: str) -> None:
    """Refuses a SQLite URL whose file does not exist (a read would make an empty database there).

    Raises:
        StoreError: naming the path, the setting and what makes one.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from atlas.exceptions import StoreError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # not a database URL (an http:// tracking server): its own client says what is wrong
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    if not Path(parsed.database).is_file():
        msg = f"no database at {parsed.database!r} ({setting}; rule missing_store): {hint}. Is the path mistyped?"
        raise StoreError(msg)

#: Keys of ``ctx.meta`` (shared by every context of one command line) that the error path of ``atlas`` reads.
STORE_KEY = "atlas.store"
AFTER_FAILURE_KEY = "atlas.after_failure"

#: What a command leaves in the store when it stops half-way (Ctrl-C, a full disk): said after "nothing half-written".
AFTER_IMPORT = "an import is one transaction, so the store {store} holds none of it; run the same command again"
AFTER_SIMULATE = ("the store {store} holds whole simulated days only; run the same command again to write the days "
                  "not yet written")
AFTER_METRICS = ("the store {store} holds whole chunks of buckets only; run the same command again to compute the "
                 "rest")


def open_store(store_url: str | None, *, after_failure: str | None = None, read_only: bool = False):
    """The store of ``--store`` (else the settings); remembers it, and what a failure leaves in it, for messages.

    Args:
        store_url: the ``--store`` option's value.
        after_failure: what the store holds when the command stops half-way (one of the ``AFTER_*`` texts);
            ``{store}`` is replaced by the store's URL without its password.
        read_only: the command only reads the store (``info``, ``series``): a SQLite file that does not exist is
            an error, not an empty store made at a mistyped path.
    """
    from atlas.config import Settings, mask_url
    from atlas.data import MarketStore

    settings = Settings.from_env()
    url = store_url or settings.store.url
    if read_only:
        setting = ("--store or ATLAS_STORE_URL" if store_url or os.environ.get("ATLAS_STORE_URL") else
                   f"the default store under ATLAS_HOME={settings.home}; or give --store")
        require_existing(url, setting, "`atlas data simulate` or `atlas data import` make one")
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[STORE_KEY] = mask_url(url)
        if after_failure is not None:
            ctx.meta[AFTER_FAILURE_KEY] = after_failure
    return MarketStore(url, gds_url=settings.store.gds_url, extra_venues=settings.store.extra_venues,
                       cache_folder=settings.home / "cache")


def empty_is_none(ctx, param, value):
    """A click callback: an empty option value (``--start ''``, as MLproject passes a blank one) means unset."""
    return value or None


def split_list(value: str | None) -> list[str] | None:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; None or empty -> None."""
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def numbers(value: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in split_list(value) or [])
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, e.g. 0,1,5; got {value!r}",
                                 param_hint=option) from None


def mapping(value: str | None) -> dict[str, str] | None:
    """``"timestamp=time,price=px"`` -> ``{"timestamp": "time", "price": "px"}``."""
    if not value:
        return None
    pairs = {}
    for part in split_list(value) or []:
        if "=" not in part:
            raise click.BadParameter(f"expected ATLAS_COLUMN=FILE_COLUMN pairs, e.g. timestamp=time,price=px; "
                                     f"got {part!r}", param_hint="--map")
        key, _, column = part.partition("=")
        pairs[key.strip()] = column.strip()
    return pairs


def time_option(value: str | None, option: str):
    """An option such as ``--start`` read as a UTC timestamp (naive text is UTC), or None when unset.

    Raises:
        DataValidationError: not a timestamp, or outside the times Atlas can hold; the message names the option.
    """
    from atlas.data.timestamps import utc_timestamp

    return None if value is None else utc_timestamp(value, what=option)


def time_range(start: str | None, end: str | None, *, empty_ok: bool = True):
    """``--start`` and ``--end`` read as :func:`time_option` does, and checked to be in order.

    Args:
        empty_ok: whether ``--start`` equal to ``--end`` (one instant) is a range.

    Raises:
        click.BadParameter: the range is inverted (or empty, where it may not be), saying so.
    """
    first, last = time_option(start, "--start"), time_option(end, "--end")
    if first is not None and last is not None and (first > last or (first == last and not empty_ok)):
        what = "after" if first > last else "equal to"
        raise click.BadParameter(f"--start {start} is {what} --end {end}: the range is "
                                 f"{'inverted' if first > last else 'empty'}; give a --start before --end",
                                 param_hint="--start/--end")
    return first, last


def write_output(path: str, write: Callable[[str], object], *, option: str = "--output") -> None:
    """Writes an output file whole or not at all: ``write(temporary)`` beside it, then renamed over it.

    Raises:
        ConfigError: the path is a folder, or cannot be written (a missing or read-only folder, a full disk);
            the message names the option and the path, and no partial file is left.
    """
    from atlas.exceptions import ConfigError

    target = Path(path)
    if target.is_dir():
        msg = f"{option} {path!r} is a folder; give a file in it, e.g. {str(target / 'out.csv')!r}"
        raise ConfigError(msg)
    if not target.parent.is_dir():
        code = errno.ENOTDIR if target.parent.exists() else errno.ENOENT
        raise ConfigError(os_error_text(OSError(code, os.strerror(code)), path=path, option=option, writing=True))
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(str(temporary))
        os.replace(temporary, target)
    except OSError as error:
        raise ConfigError(os_error_text(error, path=path, option=option, writing=True)) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def os_error_text(error: OSError, *, path: str | None = None, option: str | None = None, store: str | None = None,
                  after: str | None = None, writing: bool = False) -> str:
    """One line for an OS error: what could not be done to which file (or the store), and what to do.

    Args:
        error: the error.
        path: the file it concerns (named instead of the one in the error, e.g. a temporary file).
        option: the option that gave the path (``--output``), named in the fix.
        store: the store being written, for an error that names no file.
        after: what the store holds now (an ``AFTER_*`` text), said after "nothing half-written".
        writing: the error came from writing ``path``.
    """
    where = path or error.filename
    shown = f"{option} {str(where)!r}" if option and where else repr(str(where)) if where else None
    reason = error.strerror or str(error) or type(error).__name__
    code = errno.errorcode.get(error.errno, "") if error.errno else ""
    reason = f"{reason} ({code})" if code else reason
    verb = "write" if writing else "use"
    choose = f"choose another path ({option})" if option else "choose another path"
    if error.errno == errno.ENOSPC:
        target = shown or (f"the store {store}" if store else "a file")
        kept = (f"; nothing half-written: {after.format(store=store or '')}" if after and not option else
                "; no partial file is left" if option else "")
        return f"no space left on the device while writing {target}: {reason}{kept}. Free some space first"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot {verb} {shown or 'a file'}: {reason}; {choose}, or make its folder writable"
    if writing and error.errno in (errno.ENOENT, errno.ENOTDIR) and where:
        folder = str(Path(str(where)).parent)
        return f"cannot write {shown}: its folder {folder!r} does not exist or is not a folder ({code}); {choose}"
    if where:
        return f"cannot {verb} {shown}: {reason}"
    return reason
