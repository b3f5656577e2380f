"""What the runner serves: a target (a registered name and an alias), one loaded version of it, its counts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from atlas.data.buckets import parse_width
from atlas.exceptions import ConfigError
from serving.live import LiveScorer
from serving.registry import ModelRef


@dataclass(frozen=True)
class Target:
    """A model to serve: a registered name and an alias (``NAME`` or ``NAME@ALIAS``)."""

    name: str
    alias: str = "production"

    @classmethod
    def parse(cls, text: str, default_alias: str = "production") -> Target:
        name, _, alias = str(text).partition("@")
        if not name or (_ and not alias):
            msg = f"a model to serve is NAME or NAME@ALIAS (such as quickstart_itbit@challenger), got {text!r}"
            raise ConfigError(msg)
        return cls(name, alias or default_alias)

    @property
    def key(self) -> str:
        """Its name in Redis: ``NAME`` for production, ``NAME.ALIAS`` for any other alias."""
        return self.name if self.alias == "production" else f"{self.name}.{self.alias}"

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}"


@dataclass
class Counts:
    """What the runner did for one model."""

    published: int = 0
    already_published: int = 0
    unpublished: int = 0
    incomplete: int = 0
    gaps: int = 0
    stale: int = 0
    errors: int = 0
    swaps: int = 0
    refused_versions: list[str] = field(default_factory=list)


class Served:
    """One loaded model version and what serving it needs: its series, feature rows, live scorer."""

    def __init__(self, target: Target, ref: ModelRef, artifact, scorer: LiveScorer) -> None:
        self.target, self.ref, self.artifact, self.scorer = target, ref, artifact, scorer
        fls = artifact.featureset
        self.featureset = fls
        self.names = sorted({k.name for f in fls.features for k in f.series()})
        self.label = next(f for f in fls.labels if f.name == artifact.label) if getattr(
            artifact, "label", None) else fls.labels[0]
        self.label_names = sorted(k.name for k in self.label.series())
        self.exchanges = sorted({k.exchange.name for f in fls.features for k in f.series()})
        self.window = artifact.window or 1
        self.width = parse_width(fls.bucket)
        self.rows: deque[tuple[int, np.ndarray]] = deque(maxlen=self.window)
        self.pending: deque[tuple[int, object]] = deque()
        self.table: dict[int, np.ndarray] | None = None  # a replay's feature rows by bucket, computed in one pass
        transforms = artifact.transforms
        self.class_labels = getattr(transforms, "labels", None)

    @property
    def needs(self) -> int:
        """Buckets of history a row needs: the features' lookback and filling, and the label for scoring."""
        return self.featureset.history + self.featureset.horizon + self.label.footprint.lookback + 2

    def features_at(self, history, bucket: int) -> np.ndarray | None:
        """The raw feature row for ``bucket`` (None when a value is missing)."""
        if self.table is not None:
            row = self.table.get(bucket)
            if row is None:
                return None
        else:
            series = history.series(self.featureset.history + 1)
            frame = self.featureset.compute_features({n: series[n] for n in self.names}, series[self.names[0]].index)
            row = frame.iloc[-1].to_numpy(dtype=np.float64)
        return row if np.isfinite(row).all() else None

    def prime(self, history) -> None:
        """The last ``window`` complete rows from the history (at start, or when taking over from a version)."""
        self.rows.clear()
        series = history.series()
        if not len(series[self.names[0]]):
            return
        frame = self.featureset.compute_features({n: series[n] for n in self.names}, series[self.names[0]].index)
        values = frame.to_numpy(dtype=np.float64)
        for stamp, row in zip(frame.index.asi8, values, strict=True):
            if np.isfinite(row).all():
                self.rows.append((int(stamp), row))


__all__ = ["Counts", "Served", "Target"]
