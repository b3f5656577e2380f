"""Helpers shared by the command modules: the store option, lists, ranges, and printing reports."""

from __future__ import annotations

import click

store_option = click.option(
    "--store", "store_url", envvar="ATLAS_STORE_URL", default=None, metavar="URL",
    help="SQLAlchemy URL of the market store [env ATLAS_STORE_URL; default sqlite:///.atlas/market.db].")


def open_store(store_url: str | None):
    from atlas.config import Settings
    from atlas.data import MarketStore

    settings = Settings.from_env()
    return MarketStore(store_url or settings.store.url, gds_url=settings.store.gds_url,
                       extra_venues=settings.store.extra_venues)


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
