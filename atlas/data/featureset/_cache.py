"""Built frames cached as Parquet, keyed by the set, the range and the store's fingerprint over that range."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd


class FrameCache:
    """A folder of Parquet files, one per (feature-label set, range, store fingerprint).

    The fingerprint (``MarketStore.fingerprint``) holds the store's identity and its newest write in the range: a
    write that reaches into a cached range (new market data, recomputed metrics) changes it, so the next build
    misses the cache and computes afresh, other ranges stay cached, and another store never hits.

    Args:
        folder: where the files live (the store's ``cache_folder``: ``$ATLAS_HOME/cache`` from the settings).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(**parts) -> str:
        text = json.dumps({k: str(v) for k, v in sorted(parts.items())}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.parquet"

    def get(self, key: str) -> pd.DataFrame | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError):  # a damaged file is a miss, and is rewritten
            return None

    def put(self, key: str, frame: pd.DataFrame) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.path(key).with_suffix(f".{os.getpid()}.tmp")
        frame.to_parquet(temporary)
        os.replace(temporary, self.path(key))  # readers never see a half-written file

    def clear(self) -> int:
        """Deletes every cached frame; returns how many."""
        files = list(self.folder.glob("*.parquet")) if self.folder.exists() else []
        for path in files:
            path.unlink(missing_ok=True)
        return len(files)
