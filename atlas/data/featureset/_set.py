"""FeatureLabelSet: features and labels that build leak-free training data from the market store."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from atlas.data.buckets import parse_width
from atlas.data.features import Feature, check_inputs, check_labels, feature_from_dict
from atlas.data.featureset._cache import FrameCache
from atlas.data.featureset._frame import BuildReport, clean, fill_forward, grid, read_series
from atlas.data.series import SeriesKey
from atlas.data.store import MarketStore
from atlas.data.timestamps import utc_timestamp
from atlas.exceptions import ConfigError


@dataclass(frozen=True)
class FeatureLabelSet:
    """Features (model inputs) and labels (what to predict), on one bucket width.

    Everything that learns from data (scaling, class thresholds, balancing) is fitted on the training window only,
    inside :meth:`dataset`; features never read the future (a feature that does raises ``LeakageError``) and
    labels must (``LogReturns().lookforward(1)`` is the next bucket's return, exactly).

    Example:
        >>> from atlas.data.features import BidStrength, LogReturns
        >>> fls = FeatureLabelSet(
        ...     features=[LogReturns().bitstamp().one_min().lookback(1), BidStrength().bitstamp().slippage(10)],
        ...     labels=[LogReturns().bitstamp().one_min().lookforward(1)])
        >>> fls.horizon, fls.bucket
        (1, '1min')
        >>> FeatureLabelSet.from_dict(fls.to_dict()) == fls
        True

    Args:
        features: the inputs, none reading the future.
        labels: what to predict, each reading the future.
        max_interpolate: the most buckets in a row a missing raw value is filled forward when building.
        title: a short name for people (``"example_set"``); the canonical :attr:`name` is derived from the rest.
    """

    features: tuple[Feature, ...]
    labels: tuple[Feature, ...]
    max_interpolate: int = 2
    title: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "labels", tuple(self.labels))
        if not self.features or not self.labels:
            msg = (f"a FeatureLabelSet needs at least one feature and one label, got {len(self.features)} "
                   f"feature(s) and {len(self.labels)} label(s)")
            raise ConfigError(msg)
        check_inputs(self.features)
        check_labels(self.labels)
        buckets = sorted({f.bucket for f in (*self.features, *self.labels)})
        if len(buckets) > 1:
            msg = (f"every feature and label of a set must share one bucket width, got {buckets}; call the same "
                   f".one_min() / .bucket(...) on each")
            raise ConfigError(msg)
        names = [f.name for f in (*self.features, *self.labels)]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            msg = f"a feature or label appears twice in the set: {repeated}; each column needs its own feature"
            raise ConfigError(msg)
        if not isinstance(self.max_interpolate, int) or self.max_interpolate < 0:
            msg = f"max_interpolate must be a whole number of buckets >= 0, got max_interpolate={self.max_interpolate!r}"
            raise ConfigError(msg)

    # identity ---------------------------------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self.features[0].bucket

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def label_names(self) -> list[str]:
        return [f.name for f in self.labels]

    @property
    def lookback(self) -> int:
        """Buckets of the past the features read before a row."""
        return max(f.footprint.lookback for f in (*self.features, *self.labels))

    @property
    def horizon(self) -> int:
        """Buckets of the future the labels read after a row: what purging and embargo must keep apart."""
        return max(f.footprint.lookforward for f in self.labels)

    @property
    def name(self) -> str:
        """The canonical name: every feature and label, in order, and the cleaning option."""
        return (f"features=[{', '.join(self.feature_names)}]; labels=[{', '.join(self.label_names)}]; "
                f"max_interpolate={self.max_interpolate}")

    @property
    def key(self) -> str:
        """A short stable digest of :attr:`name`, for file names and tags."""
        return hashlib.sha256(self.name.encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return self.title or self.name

    def to_dict(self) -> dict:
        return {"features": [f.to_dict() for f in self.features], "labels": [f.to_dict() for f in self.labels],
                "max_interpolate": self.max_interpolate, "title": self.title}

    @classmethod
    def from_dict(cls, values: dict) -> FeatureLabelSet:
        return cls(features=[feature_from_dict(f) for f in values["features"]],
                   labels=[feature_from_dict(f) for f in values["labels"]],
                   max_interpolate=values.get("max_interpolate", 2), title=values.get("title"))

    def feature_series(self) -> list[SeriesKey]:
        """The metric series the features read (labels left out), by name: what a live runner must hold."""
        return sorted(set().union(*(f.series() for f in self.features)), key=lambda k: k.name)

    @property
    def history(self) -> int:
        """Buckets of raw series a feature row needs before it: the features' lookback plus ``max_interpolate``.

        A value filled forward at ``t - lookback`` may come from ``max_interpolate`` buckets before that, so a
        caller holding this many past buckets, and the row's own, computes the row (:meth:`compute_features`).
        """
        return max(f.footprint.lookback for f in self.features) + self.max_interpolate

    def series(self) -> set:
        """The metric series the set reads."""
        return set().union(*(f.series() for f in (*self.features, *self.labels)))

    # building ---------------------------------------------------------------------------------------------------

    def build(self, start, end, *, store: MarketStore, cache: bool = True) -> pd.DataFrame:
        """The features and labels for every bucket ``start <= t <= end``, cleaned.

        Columns are the canonical names, features first. Cleaning realigns to the range where every column has
        values, fills gaps of the features' raw series forward by at most ``max_interpolate`` buckets (labels are
        computed from the unfilled series: a label over a gap is unknown, not zero) and drops rows still missing a
        value;
        ``frame.attrs["report"]`` says how many (see :class:`BuildReport`). Built frames are cached as Parquet in
        the store's cache folder (``$ATLAS_HOME/cache``), keyed by this set, the range, the store's identity and
        its newest write in that range (:meth:`MarketStore.fingerprint`), so a frame of another store, or of
        data since changed, is never served.

        Args:
            start: the first bucket (UTC; naive text is read as UTC).
            end: the last bucket.
            store: the market store (``MarketStore.from_settings(settings)``: the cache lives beside it).
            cache: read and write the cache (when the store has a cache folder).

        Raises:
            MissingDataError: a feature needs a series the store lacks; the message says what produces it.
            UnknownExchangeError: a feature reads a venue that is not built in, configured, nor in the store.
        """
        self._check_exchanges(store)
        rows, wide = self._grids(start, end, before=self.lookback + self.max_interpolate, after=self.horizon)
        key = None
        frames = FrameCache(store.cache_folder) if cache and store.cache_folder is not None else None
        if frames is not None:
            exchanges = sorted({k.exchange.name for k in self.series()})
            key = FrameCache.key(set=self.name, first=rows[0], last=rows[-1],
                                 store=store.fingerprint(exchanges, wide[0], wide[-1]))
            hit = frames.get(key)
            if hit is not None:
                return hit
        raw = read_series(store, sorted(self.series(), key=lambda k: k.name), wide)
        features, filled = self._features(raw, wide)
        labels = pd.DataFrame({f.name: f.compute(raw, index=wide) for f in self.labels}, index=wide)
        frame = pd.concat([features, labels], axis=1).loc[rows[0]:rows[-1]]
        frame, report = clean(frame, filled)
        frame.index.freq = None  # as it reads back from the cache
        frame.attrs["report"] = report.to_dict()
        if frames is not None:
            frames.put(key, frame)
        return frame

    def features_frame(self, start, end, *, store: MarketStore) -> pd.DataFrame:
        """The feature columns only, for every bucket ``start <= t <= end``: what serving computes.

        No label is read, so the newest buckets are there too; raw gaps are filled forward by at most
        ``max_interpolate`` buckets as in :meth:`build`, and a value that is still missing stays NaN (the caller
        decides what to do with the row). Never cached: serving wants the newest data.
        """
        self._check_exchanges(store)
        rows, wide = self._grids(start, end, before=self.lookback + self.max_interpolate, after=0)
        frame = self.compute_features(read_series(store, self.feature_series(), wide), wide)
        frame = frame.loc[rows[0]:rows[-1]]
        frame.index.freq = None
        return frame

    def compute_features(self, series: Mapping[str, pd.Series | Sequence[float]],
                         index: pd.DatetimeIndex) -> pd.DataFrame:
        """The feature columns for every bucket of ``index``, from raw metric series on that grid: the one code
        path of :meth:`build`, :meth:`features_frame` and a live model runner.

        Gaps in the series are filled forward by at most ``max_interpolate`` buckets, then each feature is
        computed; a value still missing stays NaN. A row's values depend on that row and the :attr:`history`
        buckets before it only, so a live runner holding ``history + 1`` buckets of each of
        :meth:`feature_series` computes the row that training computed for the same bucket.

        Example:
            >>> from atlas.data.features import LogReturns
            >>> fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)],
            ...                       labels=[LogReturns().bitstamp().lookforward(1)], max_interpolate=1)
            >>> fls.history, [key.name for key in fls.feature_series()]
            (2, ['bitstamp_btc_usd.1min.midpoint'])
            >>> index = pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC")
            >>> row = fls.compute_features({"bitstamp_btc_usd.1min.midpoint": [100.0, None, 101.0]}, index)
            >>> round(float(row.iloc[-1, 0]), 6)  # 100 filled forward into the gap, then log(101 / 100)
            0.00995

        Args:
            series: metric series by series name (:attr:`SeriesKey.name`), each a Series on ``index`` or one
                value per bucket of it (NaN where missing); series no feature reads are ignored.
            index: a complete UTC grid of this set's buckets; its first :attr:`history` buckets are history.

        Returns:
            A frame on ``index``, one column per feature (:attr:`feature_names`), NaN where undefined.

        Raises:
            MissingDataError: a feature needs a series that ``series`` lacks; the message says what produces it.
            ConfigError: a series is not on ``index``, or ``index`` is not a complete grid of the set's buckets.
        """
        return self._features(series, index)[0]

    def _features(self, series: Mapping, index: pd.DatetimeIndex) -> tuple[pd.DataFrame, int]:
        """The feature frame and the count of values filled forward."""
        names = {key.name for key in self.feature_series()}
        data = {name: values if isinstance(values, pd.Series) else pd.Series(values, index=index, dtype=float)
                for name, values in series.items() if name in names}
        data, filled = fill_forward(data, self.max_interpolate)
        frame = pd.DataFrame({f.name: f.compute(data, index=index) for f in self.features}, index=index)
        return frame, filled

    def _grids(self, start, end, *, before: int, after: int) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
        """The buckets asked for, and the wider grid the computation reads (``before``/``after`` buckets more)."""
        rows = grid(utc_timestamp(start, what="start"), utc_timestamp(end, what="end"), self.bucket)
        if not len(rows):
            msg = f"the range {start} .. {end} holds no {self.bucket} bucket; end must be after start"
            raise ConfigError(msg)
        width = parse_width(self.bucket)
        wide = pd.date_range(rows[0] - before * width, rows[-1] + after * width, freq=width, name="bucket")
        return rows, wide.as_unit("ns")

    def coverage(self, start, end, *, store: MarketStore) -> pd.DataFrame:
        """Per feature and label: buckets in the range, buckets with a value before cleaning, and the fraction."""
        self._check_exchanges(store)
        rows, wide = self._grids(start, end, before=self.lookback, after=self.horizon)
        data = read_series(store, sorted(self.series(), key=lambda k: k.name), wide)
        out = []
        for feature in (*self.features, *self.labels):
            try:
                present = int(feature.compute(data, index=wide).loc[rows[0]:rows[-1]].notna().sum())
            except LookupError:  # MissingDataError: nothing of it is there
                present = 0
            out.append({"column": feature.name, "role": "label" if feature in self.labels else "feature",
                        "buckets": len(rows), "present": present, "coverage": present / len(rows)})
        return pd.DataFrame(out)

    def plot_data(self, start, end, *, store: MarketStore, subplots: bool = True, cache: bool = True):
        """A matplotlib figure of every feature and label over the range: one panel each, or one shared panel.

        Returns:
            The ``matplotlib.figure.Figure`` (nothing is shown; call ``fig.savefig(...)`` or ``plt.show()``).
        """
        from atlas.data.featureset._plot import plot_frame

        frame = self.build(start, end, store=store, cache=cache)
        return plot_frame(frame, self.feature_names, self.label_names, subplots=subplots, title=str(self),
                          bucket=self.bucket)

    def dataset(self, train: Sequence, test: Sequence, *, store: MarketStore, label: str | None = None,
                scaling: str = "zscore", classes=None, balance: str = "none", window: int | None = None,
                embargo: int = 0, seed: int = 0, cache: bool = True, allow_gaps: bool = False):
        """Train and test data, leak-free: split by time, purged by the label horizon, fitted on train only.

        Args:
            train: ``(start, end)`` of the training window.
            test: ``(start, end)`` of the test window, after the training window.
            label: which label column to predict (the first by default).
            scaling: ``"zscore"``, ``"robust"`` or ``"none"``, fitted on the training rows.
            classes: an ``atlas.data.dataset.ClassLabels`` to turn the label into classes (fitted on train), or
                None for regression.
            balance: ``"none"``, ``"undersample"``, ``"oversample"`` or ``"class_weights"`` (training rows only).
            window: a sequence length for recurrent and convolutional models (windows are views, not copies).
            allow_gaps: keep the windows whose buckets are not consecutive (a weekend, an outage, a dropped row);
                by default they are dropped, and ``Dataset.summary()`` counts them either way.
            embargo: buckets dropped between training and test data beyond the purge.
            seed: for the random balancing.

        Returns:
            An ``atlas.data.dataset.Dataset`` whose ``transforms`` rebuild identical inputs at serving time.
        """
        from atlas.data.dataset import make_dataset

        train, test = _window(train, "train"), _window(test, "test")
        frame = self.build(train[0], test[1], store=store, cache=cache)
        if frame.empty:
            from atlas.exceptions import MissingDataError

            msg = (f"{self.title or 'the feature-label set'}: no complete rows between {train[0]} and {test[1]}: the store has none of this "
                   f"set's series in that range (`atlas data info` shows what it covers)")
            raise MissingDataError(msg)
        return make_dataset(frame, features=self.feature_names, label=self._label(label), train=train, test=test,
                            scaling=scaling, labels=classes, balance=balance, horizon=self.horizon,
                            embargo=embargo, window=window, allow_gaps=allow_gaps, bucket=self.bucket, seed=seed)

    def folds(self, start, end, *, n_folds: int, test_size: int, train_size: int | None = None,
              mode: str = "expanding", store: MarketStore, label: str | None = None,
              scaling: str = "zscore", classes=None, balance: str = "none", window: int | None = None,
              embargo: int = 0, seed: int = 0, cache: bool = True, allow_gaps: bool = False) -> list:
        """Walk-forward datasets over ``start .. end``: test blocks side by side at the end, each trained on rows
        before it (from the start with ``mode="expanding"``, the last ``train_size`` rows with ``"sliding"``),
        purged by the label horizon and the embargo, every transform fitted on its fold's training rows.

        Args:
            n_folds: how many folds. test_size: buckets per test block.
            train_size: ``"sliding"``: training buckets of each fold; ``"expanding"``: the fewest of the first.
            The rest: as :meth:`dataset`.

        Returns:
            One ``atlas.data.dataset.Dataset`` per fold, oldest first.
        """
        from atlas.data.dataset import make_dataset, walk_forward

        frame = self.build(start, end, store=store, cache=cache)
        splits = walk_forward(frame.index, n_folds=n_folds, test_size=test_size, train_size=train_size, mode=mode,
                              horizon=self.horizon, embargo=embargo)
        rows = frame.index
        return [make_dataset(frame, features=self.feature_names, label=self._label(label),
                             train=(rows[s.train[0]], rows[s.train[-1]]), test=(rows[s.test[0]], rows[s.test[-1]]),
                             scaling=scaling, labels=classes, balance=balance, horizon=self.horizon,
                             embargo=embargo, window=window, allow_gaps=allow_gaps, bucket=self.bucket,
                             seed=seed) for s in splits]

    def _check_exchanges(self, store: MarketStore) -> None:
        """Every exchange read is of a venue the store knows (built in, configured, or with data there): a
        misspelled or unimported venue is named here, with the feature that reads it, before any data is read."""
        users: dict = {}
        for feature in (*self.features, *self.labels):
            for key in feature.series():
                users.setdefault(key.exchange, feature.name)
        for exchange, used_by in sorted(users.items()):
            store.known_exchange(exchange, used_by=used_by)

    def _label(self, label: str | None) -> str:
        label = label or self.label_names[0]
        if label not in self.label_names:
            msg = f"label {label!r} is not a label of this set; its labels are {self.label_names}"
            raise ConfigError(msg)
        return label


def _window(value: Sequence, what: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        msg = f"{what} must be a (start, end) pair, got {what}={value!r}"
        raise ConfigError(msg)
    return utc_timestamp(value[0], what=f"{what} start"), utc_timestamp(value[1], what=f"{what} end")


__all__ = ["BuildReport", "FeatureLabelSet"]
