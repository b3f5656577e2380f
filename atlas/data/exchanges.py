"""Exchange names: Gryphon's ``BITSTAMP_BTC_USD`` in the store, ``bitstamp`` or ``bitstamp_btc_eur`` from users.

**Which venues Atlas knows: one rule** (:class:`Venues`). A venue is known if it is built in
(:data:`KNOWN_VENUES`), configured (``ATLAS_EXTRA_VENUES``, which reaches a store as ``extra_venues``), or present
in the store (its market tables or its metric series, as ``atlas data import ... --new-venue`` leaves them).
:meth:`Exchange.read` checks only a name's form, where no store is at hand (the feature DSL);
:meth:`MarketStore.known_exchange <atlas.data.MarketStore.known_exchange>` applies the rule where the store is
known (imports, ``FeatureLabelSet.build``, serving).

Example:
    >>> Exchange.parse("bitstamp").name
    'BITSTAMP_BTC_USD'
    >>> Exchange.parse("BITSTAMP_BTC_EUR").key
    'bitstamp_btc_eur'
    >>> Exchange.read("cme_es_usd").venue  # any well-formed name; the venue is checked where the store is known
    'cme'
    >>> Venues(configured=("cme",)).check("cme_es_usd").name
    'CME_ES_USD'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from atlas.exceptions import UnknownExchangeError

#: Venues that Gryphon trades and Atlas knows by name; a user adds more (see :class:`Venues`).
KNOWN_VENUES: tuple[str, ...] = (
    "bitfinex",
    "bitstamp",
    "coinbase",
    "gemini",
    "itbit",
    "kraken",
    "okcoin",
    "poloniex",
    "quadriga",
)
DEFAULT_PAIR = "btc_usd"
_TOKEN = re.compile(r"^[a-z0-9]+$")


@dataclass(frozen=True, order=True)
class Exchange:
    """One venue trading one pair, as Gryphon names it (``BITSTAMP_BTC_USD``).

    Attributes:
        venue: the venue, lower case (``"bitstamp"``).
        base: the traded currency (``"btc"``); volumes are in it.
        quote: the pricing currency (``"usd"``); prices and slippage are in it.
    """

    venue: str
    base: str
    quote: str

    @property
    def name(self) -> str:
        """The GDS name, as stored in the ``exchange`` column: ``BITSTAMP_BTC_USD``."""
        return f"{self.venue}_{self.base}_{self.quote}".upper()

    @property
    def key(self) -> str:
        """The lower-case name that prefixes metric series: ``bitstamp_btc_usd``."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.name

    @classmethod
    def read(cls, text: str | Exchange, *, pair: str = DEFAULT_PAIR) -> Exchange:
        """Reads an exchange from a venue (``cme``) or a full name (``CME_ES_USD``), checking its form only.

        Whether the venue is known is decided where the store is known (:class:`Venues`,
        ``MarketStore.known_exchange``); this is what the feature DSL and names read back from a store use.

        Args:
            text: a venue, or venue, base and quote joined by underscores, in any case.
            pair: the pair used when ``text`` names a venue only, as ``base_quote``.

        Raises:
            UnknownExchangeError: the name is not a venue nor ``venue_base_quote``.
        """
        if isinstance(text, Exchange):
            return text
        raw = str(text).strip().lower()
        tokens = raw.split("_")
        if len(tokens) == 1:
            tokens = [tokens[0], *pair.lower().split("_")]
        if len(tokens) != 3 or not all(_TOKEN.match(t) for t in tokens):
            msg = (
                f"exchange {text!r} is not a venue ('bitstamp') nor venue_base_quote ('bitstamp_btc_usd'); "
                "write it as one of those"
            )
            raise UnknownExchangeError(msg)
        return cls(*tokens)

    @classmethod
    def parse(cls, text: str | Exchange, *, pair: str = DEFAULT_PAIR, extra_venues: Iterable[str] = ()) -> Exchange:
        """Reads an exchange whose venue is built in or in ``extra_venues`` (an :class:`Exchange` is returned as is).

        Args:
            text: a venue, or venue, base and quote joined by underscores, in any case.
            pair: the pair used when ``text`` names a venue only, as ``base_quote``.
            extra_venues: venues accepted beside :data:`KNOWN_VENUES` (configured ones).

        Raises:
            UnknownExchangeError: the venue is unknown (with the closest known ones), or the name is malformed.
        """
        if isinstance(text, Exchange):
            return text
        return Venues(configured=tuple(extra_venues)).check(text, pair=pair)


@dataclass(frozen=True)
class Venues:
    """The venues Atlas knows, by its one rule: built in, configured, or present in the store.

    A store gives its own (:meth:`MarketStore.venues <atlas.data.MarketStore.venues>`); without a store,
    ``Venues(configured=...)`` knows the built-in and configured ones.

    Example:
        >>> venues = Venues(configured=("cme",), stored=("binance",))
        >>> "cme" in venues, "binance" in venues, "nowhere" in venues
        (True, True, False)
        >>> venues.check("binance_eth_usdt").key
        'binance_eth_usdt'

    Attributes:
        configured: venues the user listed (``ATLAS_EXTRA_VENUES``, a store's ``extra_venues``).
        stored: venues with data in the store (market tables or metric series).
    """

    configured: tuple[str, ...] = ()
    stored: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field_name in ("configured", "stored"):
            names = tuple(dict.fromkeys(str(v).strip().lower() for v in getattr(self, field_name)))
            object.__setattr__(self, field_name, names)

    @property
    def names(self) -> tuple[str, ...]:
        """Every known venue, once: built in, then configured, then stored."""
        return tuple(dict.fromkeys((*KNOWN_VENUES, *self.configured, *self.stored)))

    def __contains__(self, venue: object) -> bool:
        return str(venue).lower() in self.names

    def check(self, text: str | Exchange, *, pair: str = DEFAULT_PAIR, used_by: str | None = None) -> Exchange:
        """The exchange ``text`` names, if its venue is known.

        Args:
            text: a venue, or ``venue_base_quote``, or an :class:`Exchange`.
            pair: the pair used when ``text`` names a venue only.
            used_by: what reads the exchange (a feature's name), for the message.

        Raises:
            UnknownExchangeError: the name is malformed, or its venue is unknown: the message gives the closest
                venues, the known ones and where each comes from, and how to add one.
        """
        exchange = Exchange.read(text, pair=pair)
        if exchange.venue in self.names:
            return exchange
        close = difflib.get_close_matches(exchange.venue, self.names, n=3)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        where = repr(text if isinstance(text, str) else exchange.key) + (f", read by {used_by}" if used_by else "")
        known = "; ".join(f"{', '.join(names)} ({origin})" for origin, names in (
            ("built in", KNOWN_VENUES), ("configured", self.configured),
            ("in the store", tuple(v for v in self.stored if v not in self.configured))) if names)
        msg = (f"unknown exchange venue {exchange.venue!r} (from {where}); {hint}known venues: {known}. To add a "
               f"venue, import its data with --new-venue (`atlas data import bars|trades ... --exchange "
               f"{exchange.key} --new-venue`, new_venue=True in Python), or set "
               f"ATLAS_EXTRA_VENUES={exchange.venue}")
        raise UnknownExchangeError(msg)
