"""Exchange names: Gryphon's ``BITSTAMP_BTC_USD`` in the store, ``bitstamp`` or ``bitstamp_btc_eur`` from users.

Example:
    >>> Exchange.parse("bitstamp").name
    'BITSTAMP_BTC_USD'
    >>> Exchange.parse("BITSTAMP_BTC_EUR").key
    'bitstamp_btc_eur'
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from atlas.exceptions import UnknownExchangeError

#: Venues that Gryphon trades and Atlas knows by name; ``ATLAS_EXTRA_VENUES`` adds more.
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
    def parse(cls, text: str | Exchange, *, pair: str = DEFAULT_PAIR, extra_venues: tuple[str, ...] = ()) -> Exchange:
        """Reads an exchange from a venue (``bitstamp``) or a full name (``BITSTAMP_BTC_EUR``).

        Args:
            text: a venue, or venue, base and quote joined by underscores, in any case.
            pair: the pair used when ``text`` names a venue only, as ``base_quote``.
            extra_venues: venues accepted beside :data:`KNOWN_VENUES`.

        Raises:
            UnknownExchangeError: the venue is unknown (with the closest known ones), or the name is malformed.
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
        venue, base, quote = tokens
        known = tuple(KNOWN_VENUES) + tuple(v.lower() for v in extra_venues)
        if venue not in known:
            close = difflib.get_close_matches(venue, known, n=3)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            msg = (
                f"unknown exchange venue {venue!r} (from {text!r}); {hint}known venues: {', '.join(known)}. "
                f"To add a venue, set ATLAS_EXTRA_VENUES={venue}"
            )
            raise UnknownExchangeError(msg)
        return cls(venue, base, quote)
