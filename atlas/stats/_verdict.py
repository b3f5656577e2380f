"""The verdict over all trials of a sweep: is the best model better than luck, after N trials?

Two multiple-testing-aware questions, both of which must say yes for a discovery:

1. Does the best trial beat its baseline once the number of trials is accounted for? Each trial's lift over its
   baseline is tested (:func:`~atlas.stats.trial_significance`), all trials on the same block-bootstrap resamples,
   and the p-values are adjusted for the family: Romano-Wolf's step-down (the default: it uses the trials'
   dependence, so it is less conservative than Holm when trials are alike) or Holm's.
2. Is its trading Sharpe ratio above what the best of N unskilled trials reaches? The deflated Sharpe ratio
   (:func:`~atlas.stats.deflated_sharpe_ratio`) must reach ``1 - alpha``. It is left out only when no trial has a
   finite Sharpe ratio (no forward returns); a best trial without one is not a discovery.

The best trial is the one with the largest studentized lift (so the smallest adjusted p-value under either
adjustment). Every trial counts in N, including those without a finite statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.exceptions import ConfigError
from atlas.stats._calendar import CRYPTO, Calendar
from atlas.stats._checks import check_choice, check_number
from atlas.stats._predictions import Predictions
from atlas.stats._sharpe import deflated_sharpe_ratio, expected_maximum_sharpe, moments
from atlas.stats._significance import bootstrap_test, holm, lift_differential, romano_wolf
from atlas.stats._trading import positions, sharpe_ratios, trade_returns

ADJUSTMENTS = ("romano_wolf", "holm")
_ADJUSTMENT_NAMES = {"romano_wolf": "Romano-Wolf", "holm": "Holm"}


@dataclass(frozen=True, eq=False)
class SweepVerdict:
    """What :func:`sweep_significance` concludes; ``str(verdict)`` is its :attr:`message`.

    Attributes:
        trials: how many trials were judged (N).
        best_trial: the name of the trial with the largest studentized lift; None if no trial has one.
        significant: True when the best trial's adjusted p-value (its lift over its baseline, after the
            family-wise correction over every trial) is at most ``alpha``: the best of the sweep predicts better
            than luck. Whether trading it survives costs and the number of trials is the deflated Sharpe ratio's
            question, answered beside it (``tradable``), not folded in.
        message: the verdict in words, with its numbers.
        alpha: the significance level.
        adjustment: ``"romano_wolf"`` or ``"holm"``: whose adjusted p-value decides.
        adjusted_p_value: the best trial's adjusted p-value.
        deflated_sharpe: the best trial's deflated Sharpe ratio (a probability); NaN without Sharpe ratios.
        expected_max_sharpe: the per-trade Sharpe ratio the best of N unskilled trials is expected to reach.
        block_length: the bootstrap's mean block length.
        table: one row per trial (index: trial names) with ``lift``, ``standard_error``, ``ci_low``, ``ci_high``,
            ``p_value``, ``p_value_bootstrap``, ``holm_p``, ``romano_wolf_p``, ``sharpe`` (annualized when a
            number of periods per year was given, else per trade), ``sharpe_per_trade`` and ``samples``.
    """

    trials: int
    best_trial: str | None
    significant: bool
    message: str
    alpha: float
    adjustment: str
    adjusted_p_value: float
    deflated_sharpe: float
    expected_max_sharpe: float
    block_length: int
    table: pd.DataFrame

    @property
    def tradable(self) -> bool:
        """The best trial's trading returns net of costs beat what the best of N unskilled trials would reach:
        its deflated Sharpe ratio probability is at least ``1 - alpha``."""
        return math.isfinite(self.deflated_sharpe) and self.deflated_sharpe >= 1 - self.alpha

    def __str__(self) -> str:
        return self.message

    def headline(self) -> dict[str, float]:
        """Flat numbers for MLflow: ``sweep_trials``, ``sweep_significant`` (1 or 0), ``sweep_adjusted_p`` and
        ``sweep_deflated_sharpe``."""
        return {"sweep_trials": float(self.trials), "sweep_significant": float(self.significant),
                "sweep_tradable": float(self.tradable),
                "sweep_adjusted_p": self.adjusted_p_value, "sweep_deflated_sharpe": self.deflated_sharpe}


def sweep_significance(differentials: pd.DataFrame, *, horizon: int, returns: pd.DataFrame | None = None,
                       periods_per_year: float | None = None, n_boot: int = 1000, block_length: int | None = None,
                       seed: int = 0, alpha: float = 0.05, adjustment: str = "romano_wolf",
                       confidence: float = 0.95) -> SweepVerdict:
    """Judges all trials of a sweep at once from their per-sample differentials and trade returns.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> names = [f"t{k}" for k in range(20)]
        >>> lifts = pd.DataFrame(rng.choice([-1.0, 0.0, 1.0], size=(4000, 20)), columns=names)
        >>> lifts["t7"] = rng.choice([-1.0, 0.0, 1.0], size=4000, p=[0.2, 0.5, 0.3])  # a real 10% lift
        >>> verdict = sweep_significance(lifts, horizon=1, n_boot=500)
        >>> verdict.best_trial, verdict.significant
        ('t7', True)
        >>> str(verdict)
        "significant after 20 trials: 't7' beats its baseline (lift 0.103, Romano-Wolf p = 0.002 <= 0.05); no trial ..."

    Args:
        differentials: one column per trial (its name), one row per bucket in time order, aligned on bucket;
            NaN where a trial has no sample.
        horizon: the labels' lookforward in buckets (the longest, if trials differ).
        returns: each trial's per-trade returns (:func:`~atlas.stats.trade_returns`), one column per trial;
            None to judge on the lift alone.
        periods_per_year: buckets per year (:meth:`Calendar.periods_per_year`), to annualize the table's Sharpe.
        n_boot: resamples. block_length: the mean block length, by default the rule of
            :func:`~atlas.stats.block_length`. seed: the seed of the resamples.
        alpha: the significance level. adjustment: ``"romano_wolf"`` or ``"holm"``.
        confidence: the confidence of each lift's interval.

    Raises:
        ConfigError: no trial, returns for other trials than the differentials, or invalid settings.
    """
    check_choice("adjustment", adjustment, ADJUSTMENTS)
    alpha = check_number("alpha", alpha, low=0, high=1, inclusive=False)
    if not isinstance(differentials, pd.DataFrame) or differentials.shape[1] == 0:
        msg = "differentials must be a DataFrame with one column per trial, got none"
        raise ConfigError(msg)
    names = [str(c) for c in differentials.columns]
    if len(set(names)) != len(names):
        msg = f"trial names must be distinct, got {names}"
        raise ConfigError(msg)
    tested = bootstrap_test(differentials.to_numpy(np.float64).T, horizon=horizon, n_boot=n_boot,
                            block_length=block_length, seed=seed, confidence=confidence)
    per_trade = np.full(len(names), np.nan)
    trade_matrix = None
    if returns is not None:
        if sorted(str(c) for c in returns.columns) != sorted(names):
            msg = (f"returns must have one column per trial of the differentials, got {list(returns.columns)} "
                   f"for {names}")
            raise ConfigError(msg)
        trade_matrix = returns[list(differentials.columns)].to_numpy(np.float64).T
        per_trade = sharpe_ratios(trade_matrix)
    scale = math.sqrt(check_number("periods_per_year", periods_per_year, low=0) / horizon) \
        if periods_per_year is not None else 1.0
    table = pd.DataFrame({key: tested[key] for key in ("lift", "standard_error", "ci_low", "ci_high", "p_value",
                                                      "p_value_bootstrap")}, index=pd.Index(names, name="trial"))
    table["holm_p"] = holm(tested["p_value"])
    table["romano_wolf_p"] = romano_wolf(tested["statistic"], tested["deviations"])
    table["sharpe"], table["sharpe_per_trade"], table["samples"] = per_trade * scale, per_trade, tested["samples"]
    return _judge(table, tested["statistic"], trade_matrix, horizon=horizon, alpha=alpha, adjustment=adjustment,
                  block_length=tested["block_length"])


def sweep_verdict(trials: Mapping[str, Predictions], *, part: str = "test", cost_bps: float = 1.0,
                  calendar: Calendar = CRYPTO, n_boot: int = 1000, block_length: int | None = None, seed: int = 0,
                  alpha: float = 0.05, adjustment: str = "romano_wolf") -> SweepVerdict:
    """Judges a sweep from its trials' predictions: differentials, trade returns, then
    :func:`sweep_significance`.

    Trials are aligned on bucket; all must share one bucket width and one horizon (a sweep over several labels
    is judged label by label). Positions come from :func:`~atlas.stats.positions`, returns from
    :func:`~atlas.stats.trade_returns` at ``cost_bps``, the Sharpe ratio is annualized over ``calendar``.

    Raises:
        ConfigError: no trial, trials of different bucket widths or horizons, or a classifier without its
            ``baseline_class``.
    """
    if not trials:
        msg = "sweep_verdict needs at least one trial's predictions, got none"
        raise ConfigError(msg)
    shapes = {(p.bucket_width, p.horizon) for p in trials.values()}
    if len(shapes) > 1:
        msg = (f"the trials have different bucket widths or horizons {sorted(shapes)}: a verdict compares trials "
               f"of one label; judge each group of trials on its own")
        raise ConfigError(msg)
    width, horizon = shapes.pop()
    lifts, trade = {}, {}
    for name, predictions in trials.items():
        rows = predictions.part(part)
        lifts[str(name)] = lift_differential(rows, part=part)
        held = positions(rows.y_pred, class_names=rows.class_names)
        trade[str(name)] = pd.Series(trade_returns(held, rows.forward_return, horizon=horizon, cost_bps=cost_bps),
                                     index=lifts[str(name)].index)
    return sweep_significance(pd.concat(lifts, axis=1).sort_index(), horizon=horizon,
                              returns=pd.concat(trade, axis=1).sort_index(),
                              periods_per_year=calendar.periods_per_year(width), n_boot=n_boot,
                              block_length=block_length, seed=seed, alpha=alpha, adjustment=adjustment)


def _judge(table: pd.DataFrame, statistic: np.ndarray, trade_matrix: np.ndarray | None, *, horizon: int,
           alpha: float, adjustment: str, block_length: int) -> SweepVerdict:
    trials = len(table)
    plural = "trial" if trials == 1 else "trials"
    common = {"trials": trials, "alpha": alpha, "adjustment": adjustment, "block_length": block_length,
              "table": table}
    if np.isnan(statistic).all():
        return SweepVerdict(best_trial=None, significant=False, adjusted_p_value=math.nan,
                            deflated_sharpe=math.nan, expected_max_sharpe=math.nan,
                            message=f"not distinguishable from luck after {trials} {plural}: no trial has a "
                                    f"finite statistic", **common)
    best = int(np.argmax(np.where(np.isnan(statistic), -np.inf, statistic)))
    name = str(table.index[best])
    adjusted = float(table[f"{adjustment}_p"].iloc[best])
    sharpes = table["sharpe_per_trade"].to_numpy()
    use_sharpe = bool(np.isfinite(sharpes).any())
    dsr = benchmark = math.nan
    if use_sharpe:
        variance = float(np.var(sharpes[np.isfinite(sharpes)], ddof=1)) if np.isfinite(sharpes).sum() > 1 else \
            math.nan
        benchmark = expected_maximum_sharpe(trials, variance)
        own = trade_matrix[best]
        observations = np.isfinite(own).sum() / horizon
        skew, kurtosis = moments(own)
        if math.isfinite(sharpes[best]) and observations > 1:
            dsr = deflated_sharpe_ratio(float(sharpes[best]), n_trials=trials, variance=variance,
                                        observations=observations, skew=skew, kurtosis=kurtosis)
    significant = bool(adjusted <= alpha)  # the predictive edge, after every trial tried
    tradable = use_sharpe and math.isfinite(dsr) and dsr >= 1 - alpha
    who = _ADJUSTMENT_NAMES[adjustment]
    lift = float(table["lift"].iloc[best])
    p_text = f"{who} p = {adjusted:.3g} {'<=' if significant else '>'} {alpha:g}"
    if not use_sharpe:
        dsr_text = "no trial trades, so no deflated Sharpe ratio"
    elif not math.isfinite(dsr):
        dsr_text = "trading it: the deflated Sharpe ratio is undefined (no finite Sharpe ratio or too few trades)"
    else:
        verdict = "beyond luck as a strategy" if tradable else "not proven as a strategy"
        dsr_text = (f"trading it net of costs: deflated Sharpe ratio probability {dsr:.3f} "
                    f"{'>=' if tradable else '<'} {1 - alpha:g}, {verdict}")
    if significant:
        message = (f"significant after {trials} {plural}: {name!r} beats its baseline (lift {lift:.3g}, "
                   f"{p_text}); {dsr_text}")
    else:
        message = (f"not distinguishable from luck after {trials} {plural}: the best, {name!r}, has lift "
                   f"{lift:.3g} ({p_text}); {dsr_text}")
    return SweepVerdict(best_trial=name, significant=significant, message=message, adjusted_p_value=adjusted,
                        deflated_sharpe=dsr, expected_max_sharpe=benchmark, **common)
