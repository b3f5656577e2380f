"""The stationary block bootstrap of per-sample series, shared by every trial of a sweep.

Overlapping labels (a horizon ``h > 1``) make neighbouring samples' differentials dependent, so resampling single
samples would understate the variance of their mean. The stationary bootstrap (Politis and Romano, 1994)
resamples blocks of consecutive samples of random, geometric length (circularly), so dependence within a block is
kept. Its mean block length is

    ``max(horizon, ceil(n ** (1/3)), ceil(median Politis-White estimate))``

the horizon because a block shorter than the overlap cuts it, ``n ** (1/3)`` the textbook rate as a floor, and
the data-driven choice of Politis and White (2004, with the correction of Patton, Politis and White, 2009) from
the series' own autocorrelation, which grows the blocks when predictions or labels are persistent. For a sweep the
Politis-White estimate is the median over (up to :data:`_PW_TRIALS`, evenly spaced) trials' series.

All trials share one set of resamples: each resample is a vector of counts (how often each sample is drawn), and
the resampled means of every trial are one matrix product, counts @ series. Equal seeds give equal resamples.
"""

from __future__ import annotations

import math

import numpy as np

from atlas.stats._checks import check_count

#: How many trials' series the Politis-White block length is estimated on (the median is taken).
_PW_TRIALS = 16
#: The most float64 cells one chunk of resample counts may hold (bounds the memory to ~64 MB).
_CHUNK_CELLS = 8_000_000


def politis_white(series: np.ndarray) -> np.ndarray:
    """The Politis-White optimal mean block length of the stationary bootstrap for each row of ``series``.

    Autocovariances come from one FFT per row. The lag window's width is twice the first lag after which
    ``K_N = max(5, log10 n)`` autocorrelations in a row are insignificant (below ``2 sqrt(log10 n / n)``); the
    result is capped at ``min(3 sqrt(n), n / 3)``, as in the reference implementation (``arch``). NaN entries
    count as the row's mean. A constant row gives 1.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noise = rng.standard_normal(5000)
        >>> persistent = np.convolve(noise, np.ones(20), "same")  # a moving sum: strong dependence
        >>> politis_white(np.vstack([noise, persistent])).round().tolist()
        [1.0, 83.0]
    """
    series = np.atleast_2d(np.asarray(series, dtype=np.float64))
    n = series.shape[1]
    if n < 4:
        return np.ones(len(series))
    centered = series - np.nanmean(series, axis=1, keepdims=True)
    centered = np.nan_to_num(centered, nan=0.0)
    k_n = max(5, int(math.log10(n)))
    m_max = min(int(math.ceil(math.sqrt(n))) + k_n, n - 1)
    size = 1 << int(math.ceil(math.log2(n + m_max + 1)))  # no circular wrap up to lag m_max
    spectrum = np.fft.rfft(centered, size, axis=1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    autocovariance = np.fft.irfft(power, size, axis=1)[:, :m_max + 1] / n
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = autocovariance[:, 1:] / autocovariance[:, :1]
    small = np.abs(np.nan_to_num(correlation)) < 2 * math.sqrt(math.log10(n) / n)  # lags 1..m_max
    runs = np.lib.stride_tricks.sliding_window_view(small, k_n, axis=1).all(axis=2)  # j: lags j+1..j+k_n
    found = runs.any(axis=1)
    width = np.where(found, 2 * np.maximum(runs.argmax(axis=1), 1), m_max)
    width = np.minimum(width, m_max)
    lags = np.arange(1, m_max + 1)
    ratio = lags[None, :] / width[:, None]
    window = np.where(ratio <= 0.5, 1.0, np.where(ratio <= 1.0, 2 * (1 - ratio), 0.0))
    g = 2 * (window * lags * autocovariance[:, 1:]).sum(axis=1)
    long_run = autocovariance[:, 0] + 2 * (window * autocovariance[:, 1:]).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        length = (2 * g ** 2 / (2 * long_run ** 2)) ** (1 / 3) * n ** (1 / 3)
    length = np.where(np.isfinite(length), length, 1.0)
    return np.clip(length, 1.0, math.ceil(min(3 * math.sqrt(n), n / 3)))


def block_length(series: np.ndarray, *, horizon: int) -> int:
    """The mean block length for ``series`` (one row per trial): see the module docstring for the rule.

    Example:
        >>> block_length(np.random.default_rng(0).standard_normal((3, 8000)), horizon=30)  # the horizon rules
        30
    """
    horizon = check_count("horizon", horizon, minimum=1)
    series = np.atleast_2d(np.asarray(series, dtype=np.float64))
    n = series.shape[1]
    rows = series[np.unique(np.linspace(0, len(series) - 1, min(len(series), _PW_TRIALS)).round().astype(int))]
    rows = rows[np.isfinite(rows).sum(axis=1) > 1]
    estimate = float(np.median(politis_white(rows))) if len(rows) else 1.0
    return int(min(max(horizon, math.ceil(n ** (1 / 3)), math.ceil(estimate)), max(n, 1)))


def resample_counts(n: int, *, block_length: int, n_boot: int, rng: np.random.Generator):
    """Yields chunks of stationary-bootstrap resamples as counts: ``(resamples, n)`` float32, each row summing
    to ``n``, entry ``[b, j]`` how often resample ``b`` draws sample ``j``.

    Blocks start at uniform positions, have geometric lengths of mean ``block_length`` and wrap around the end;
    the counts come from a difference array (+1 where a block starts, -1 where it ends) and a cumulative sum, so
    no resample is ever materialized as indices.
    """
    p = 1.0 / block_length
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for first in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - first)
        blocks = int(math.ceil(n * p + 6 * math.sqrt(n * p) + 10))
        lengths = rng.geometric(p, size=(rows, blocks))
        while (lengths.sum(axis=1) < n).any():  # rare: draw more blocks for every row
            lengths = np.hstack([lengths, rng.geometric(p, size=(rows, blocks))])
        starts = rng.integers(0, n, size=lengths.shape)
        placed = np.cumsum(lengths, axis=1) - lengths  # where each block begins in the resample
        ends = starts + np.clip(n - placed, 0, lengths)  # the last block is cut at n; later ones are empty
        wraps = ends > n
        # the difference array is laid out (position, resample), so the cumulative sum adds whole rows
        row = np.arange(rows)[:, None]
        up = np.concatenate([(starts * rows + row).ravel(), np.broadcast_to(row, wraps.shape)[wraps]])
        down = np.concatenate([(np.where(wraps, n, ends) * rows + row).ravel(), ((ends - n) * rows + row)[wraps]])
        steps = np.bincount(np.concatenate([up, down]), np.repeat([1.0, -1.0], [len(up), len(down)]),
                            minlength=(n + 1) * rows).astype(np.float32).reshape(n + 1, rows)
        counts = np.cumsum(steps, axis=0, out=steps)[:n]
        yield counts.T


def bootstrap_deviations(series: np.ndarray, *, block_length: int, n_boot: int,
                         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean, and how far each resample's mean of it lies from that mean.

    ``series`` is (trials, n); NaN entries are left out (a trial that lacks a bucket). All rows share the same
    resamples (same blocks, same positions), so the dependence between trials is kept. The products run in
    float32 on series centered in float64 first, so they lose nothing that matters.

    Example:
        >>> means, deviations = bootstrap_deviations(np.arange(10.0)[None, :], block_length=3, n_boot=500, seed=1)
        >>> means.tolist(), deviations.shape, bool(abs(deviations.mean()) < 0.2)
        ([4.5], (500, 1), True)

    Returns:
        ``(means, deviations)``: the (trials,) means over finite entries (NaN for a row without one), and the
        (n_boot, trials) resampled means minus those means (NaN where a resample holds no finite entry of a row).
    """
    series = np.atleast_2d(np.asarray(series, dtype=np.float64))
    finite = np.isfinite(series)
    present = None if finite.all() else finite.astype(np.float32)
    if present is None:
        means = series.mean(axis=1)
        centered = (series - means[:, None]).astype(np.float32)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(finite, series, 0.0).sum(axis=1) / finite.sum(axis=1)
        centered = np.where(finite, series - means[:, None], 0.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = []
    for counts in resample_counts(series.shape[1], block_length=block_length, n_boot=n_boot, rng=rng):
        sums = (counts @ centered.T).astype(np.float64)
        if present is None:
            out.append(sums / series.shape[1])
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(sums / (counts @ present.T))
    return means, np.vstack(out)
