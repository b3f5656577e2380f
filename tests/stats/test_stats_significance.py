"""Per-trial significance: the block bootstrap, its block length, the test, Holm, Romano-Wolf and the DSR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as scipy_stats

from atlas.stats import (
    block_length,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    holm,
    politis_white,
    probabilistic_sharpe_ratio,
    romano_wolf,
    trial_significance,
)
from atlas.stats._bootstrap import bootstrap_deviations, resample_counts
from atlas.stats._significance import bootstrap_test, overlap_standard_error


def moving_average(rng, n: int, horizon: int, mean: float = 0.0) -> np.ndarray:
    """Differentials that overlap as labels of horizon h do: each the average of h consecutive shocks."""
    shocks = rng.standard_normal(n + horizon - 1)
    return mean + np.convolve(shocks, np.ones(horizon) / horizon, "valid")


def test_resample_counts_are_resamples_of_the_whole_series():
    rng = np.random.default_rng(0)
    chunks = list(resample_counts(1000, block_length=25, n_boot=3000, rng=rng))
    counts = np.vstack(chunks)
    assert counts.shape == (3000, 1000) and len(chunks) == 1
    assert np.all(counts.sum(axis=1) == 1000) and counts.min() >= 0
    # every sample is drawn once a resample on average (the stationary bootstrap is circular)
    np.testing.assert_allclose(counts.mean(axis=0), 1.0, atol=0.2)
    # blocks keep neighbours together: neighbours' counts are correlated, distant ones are not
    centered = counts - counts.mean(axis=0)
    near = np.mean(centered[:, 100] * centered[:, 101]) / counts[:, 100].var()
    far = np.mean(centered[:, 100] * centered[:, 600]) / counts[:, 100].var()
    assert near > 0.8 and abs(far) < 0.1


def test_the_same_seed_gives_the_same_resamples():
    series = np.random.default_rng(1).standard_normal((3, 500))
    first = bootstrap_deviations(series, block_length=10, n_boot=200, seed=5)[1]
    np.testing.assert_array_equal(first, bootstrap_deviations(series, block_length=10, n_boot=200, seed=5)[1])
    assert not np.array_equal(first, bootstrap_deviations(series, block_length=10, n_boot=200, seed=6)[1])


def test_missing_entries_are_left_out_of_each_mean():
    rng = np.random.default_rng(2)
    series = rng.standard_normal((2, 400))
    gappy = series.copy()
    gappy[1, ::3] = np.nan
    means, deviations = bootstrap_deviations(gappy, block_length=8, n_boot=300, seed=0)
    assert means[0] == pytest.approx(series[0].mean()) and means[1] == pytest.approx(np.nanmean(gappy[1]))
    assert np.isfinite(deviations).all()
    assert deviations[:, 1].std() == pytest.approx(series[1].std() / math.sqrt(400 * 2 / 3), rel=0.25)


def reference_politis_white(x: np.ndarray) -> float:
    """The stationary-bootstrap block length as the ``arch`` package computes it, one lag at a time."""
    n = len(x)
    e = x - x.mean()
    k_n = max(5, int(np.log10(n)))
    m_max = int(np.ceil(np.sqrt(n))) + k_n
    cv = 2 * np.sqrt(np.log10(n) / n)
    acv, rho, found = np.zeros(m_max + 1), np.zeros(m_max + 1), None
    for i in range(m_max + 1):
        acv[i] = e[i:] @ e[:n - i] / n
        rho[i] = abs(acv[i]) / acv[0]
        if i > k_n and found is None and np.all(rho[i - k_n + 1:i + 1] < cv):
            found = i - k_n  # lags found+1 .. found+k_n are all insignificant (Politis and White, 2004)
    m = min(2 * max(found, 1) if found is not None else m_max, m_max)
    lam = np.array([1.0 if k / m <= 0.5 else 2 * (1 - k / m) for k in range(1, m + 1)])
    g = 2 * np.sum(lam * np.arange(1, m + 1) * acv[1:m + 1])
    long_run = acv[0] + 2 * np.sum(lam * acv[1:m + 1])
    return min((2 * g ** 2 / (2 * long_run ** 2)) ** (1 / 3) * n ** (1 / 3), np.ceil(min(3 * np.sqrt(n), n / 3)))


@pytest.mark.parametrize("phi", [0.3, 0.6, 0.9])
def test_politis_white_matches_a_lag_by_lag_reference(phi):
    rng = np.random.default_rng(3)
    shocks = rng.standard_normal(6000)
    x = np.empty(6000)
    x[0] = shocks[0]
    for t in range(1, 6000):
        x[t] = phi * x[t - 1] + shocks[t]
    assert politis_white(x[None, :])[0] == pytest.approx(reference_politis_white(x), rel=1e-6)


def test_the_block_length_rule():
    rng = np.random.default_rng(4)
    white = rng.standard_normal((5, 8000))
    assert block_length(white, horizon=1) == math.ceil(8000 ** (1 / 3))  # the n^(1/3) floor
    assert block_length(white, horizon=40) == 40  # never shorter than the horizon
    persistent = np.vstack([moving_average(rng, 8000, 30) for _ in range(5)])
    assert block_length(persistent, horizon=1) > 30  # Politis-White sees the dependence itself


def test_iid_differentials_give_the_t_test_p_value():
    rng = np.random.default_rng(5)
    n = 10_000
    differential = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.24, 0.5, 0.26])
    result = trial_significance(differential, horizon=1, n_boot=2000, seed=1)
    t_test = scipy_stats.ttest_1samp(differential, 0.0, alternative="greater")
    assert 0.001 < t_test.pvalue < 0.05
    assert result.p_value == pytest.approx(t_test.pvalue, rel=0.2, abs=0.005)
    assert result.p_value_bootstrap == pytest.approx(t_test.pvalue, rel=0.25, abs=0.01)
    assert result.standard_error == pytest.approx(differential.std(ddof=1) / math.sqrt(n), rel=0.05)
    assert result.ci_low < result.lift < result.ci_high
    assert result.ci_high - result.ci_low == pytest.approx(2 * 1.96 * result.standard_error, rel=0.1)
    again = trial_significance(differential, horizon=1, n_boot=2000, seed=1)
    assert again == result  # seeded: reproducible to the last digit
    other = trial_significance(differential, horizon=1, n_boot=2000, seed=2)
    assert other.p_value_bootstrap != result.p_value_bootstrap and other.ci_low != result.ci_low
    # the standard error is never below the one the labels' overlap implies: for iid draws, the t-test's
    assert result.standard_error >= overlap_standard_error(differential, 1)[0]


def test_overlapping_labels_widen_the_standard_error():
    """Averages of h shocks: the mean's true standard error is sigma / sqrt(n), sqrt(h) times the naive one."""
    rng = np.random.default_rng(6)
    n, horizon = 20_000, 10
    differential = moving_average(rng, n, horizon)
    result = trial_significance(differential, horizon=horizon, n_boot=2000, seed=0)
    naive = differential.std(ddof=1) / math.sqrt(n)
    assert result.standard_error == pytest.approx(1 / math.sqrt(n), rel=0.15)
    assert result.standard_error > 2.5 * naive


def test_the_test_holds_its_size_under_overlapping_labels():
    """Under the null (zero mean, h = 10 overlap), about 5% of independent series are called at 5%."""
    rng = np.random.default_rng(7)
    series = np.vstack([moving_average(rng, 4000, 10) for _ in range(600)])
    tested = bootstrap_test(series, horizon=10, n_boot=500, block_length=None, seed=0, confidence=0.95)
    rejected = np.mean(tested["p_value"] <= 0.05)
    assert 0.05 - 3 * math.sqrt(0.05 * 0.95 / 600) < rejected < 0.05 + 3 * math.sqrt(0.05 * 0.95 / 600)
    # the naive iid test rejects far too often on the same series
    naive = scipy_stats.ttest_1samp(series, 0.0, axis=1, alternative="greater").pvalue
    assert np.mean(naive <= 0.05) > 0.15


def test_degenerate_differentials():
    assert trial_significance(np.zeros(500), horizon=1).p_value == 1.0  # always agrees with its baseline
    always_better = trial_significance(np.ones(500), horizon=1)
    assert always_better.p_value == 0.0 and always_better.lift == 1.0
    empty = trial_significance(np.full(500, np.nan), horizon=1)
    assert np.isnan(empty.p_value) and np.isnan(empty.lift) and empty.samples == 0


def _holm_by_the_book(p: np.ndarray) -> np.ndarray:
    """Holm's step-down one p-value at a time, as the textbook writes it: the reference for the vectorized one."""
    order, m = np.argsort(p), len(p)
    adjusted, running = np.empty(m), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_holm_against_a_hand_computation_and_the_textbook_loop():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, np.nan]), [1.0, np.nan])  # a NaN trial still counts in the family
    random_p = np.random.default_rng(8).uniform(0, 0.2, 300) ** 2
    np.testing.assert_allclose(holm(random_p), _holm_by_the_book(random_p))


def test_romano_wolf_keeps_the_dependence_between_trials():
    rng = np.random.default_rng(9)
    base = moving_average(rng, 5000, 5, mean=0.03)
    # five copies of one trial: perfectly dependent, so no multiplicity to pay for
    copies = np.vstack([base] * 5)
    tested = bootstrap_test(copies, horizon=5, n_boot=2000, block_length=None, seed=0, confidence=0.95)
    adjusted = romano_wolf(tested["statistic"], tested["deviations"])
    single = bootstrap_test(base[None, :], horizon=5, n_boot=2000, block_length=None, seed=0, confidence=0.95)
    np.testing.assert_allclose(adjusted, romano_wolf(single["statistic"], single["deviations"])[0])
    assert np.all(holm(tested["p_value"]) == pytest.approx(min(1.0, 5 * tested["p_value"][0])))
    # independent trials: Romano-Wolf is about as strict as Holm, never below the raw bootstrap p-value
    independent = np.vstack([moving_average(rng, 5000, 5, mean=m) for m in (0.06, 0.0, 0.0, 0.0, 0.0)])
    tested = bootstrap_test(independent, horizon=5, n_boot=2000, block_length=None, seed=0, confidence=0.95)
    adjusted = romano_wolf(tested["statistic"], tested["deviations"])
    alone = (1 + (tested["deviations"] >= tested["statistic"]).sum(axis=0)) / (1 + 2000)  # each trial by itself
    assert np.all(adjusted >= alone - 1e-12)
    assert adjusted[0] < 0.05 and np.all(adjusted[1:] > 0.05)
    order = np.argsort(-tested["statistic"])
    assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in the statistic


def test_the_deflated_sharpe_ratio_against_the_papers_formulas():
    norm = scipy_stats.norm
    rng = np.random.default_rng(10)
    for _ in range(20):
        n_trials = int(rng.integers(2, 1000))
        variance = rng.uniform(1e-5, 1e-2)
        sharpe, observations = rng.uniform(0, 0.3), rng.uniform(100, 10_000)
        skew, kurtosis = rng.uniform(-1, 1), rng.uniform(3, 8)
        gamma = 0.5772156649015329
        benchmark = math.sqrt(variance) * ((1 - gamma) * norm.ppf(1 - 1 / n_trials)
                                           + gamma * norm.ppf(1 - 1 / (n_trials * math.e)))
        expected = norm.cdf((sharpe - benchmark) * math.sqrt(observations - 1)
                            / math.sqrt(1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe ** 2))
        assert expected_maximum_sharpe(n_trials, variance) == pytest.approx(benchmark, rel=1e-9)
        assert deflated_sharpe_ratio(sharpe, n_trials=n_trials, variance=variance, observations=observations,
                                     skew=skew, kurtosis=kurtosis) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # the paper's example: SR 2.5 a year, 5 years of daily returns, skew -3, kurtosis 10, N = 100, V = 1/2
    assert deflated_sharpe_ratio(2.5 / math.sqrt(250), n_trials=100, variance=0.5 / 250, observations=1250,
                                 skew=-3, kurtosis=10) == pytest.approx(0.9004, abs=1e-4)


def test_one_trial_is_not_deflated():
    assert expected_maximum_sharpe(1, 0.5) == 0.0
    assert deflated_sharpe_ratio(0.1, n_trials=1, variance=math.nan, observations=500) == pytest.approx(
        probabilistic_sharpe_ratio(0.1, observations=500))
    assert probabilistic_sharpe_ratio(0.1, observations=500) == pytest.approx(
        scipy_stats.norm.cdf(0.1 * math.sqrt(499) / math.sqrt(1 + 2 / 4 * 0.01)))
    assert math.isnan(deflated_sharpe_ratio(0.1, n_trials=5, variance=math.nan, observations=500))
    assert math.isnan(probabilistic_sharpe_ratio(2.0, observations=500, skew=5.0))  # no valid denominator
