"""Baseball cards and batch overviews: their structure, their flags, and degenerate or bad input."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from atlas.exceptions import ConfigError
from atlas.stats import (
    card,
    card_png,
    check_predictions,
    is_degenerate,
    lift_differential,
    overview,
    overview_png,
    trial_significance,
)
from atlas.stats._figures._overview import Column, levels

CLASSES = ("down", "flat", "up")
CLASSIFIER_PANELS = ("Confusion", "Summary", "ROC one vs rest", "Accuracy per 1D interval", "Interval win rate",
                     "Precision & frequency by confidence")
REGRESSOR_PANELS = ("Predicted vs realized", "Summary", "IC per 1D", "Residuals over time",
                    "Cumulative net return", "Direction of the strongest predictions")


def classifier_frame(n=864, classes=CLASSES, edge=0.4, seed=0, freq="5min") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    forward = rng.normal(0, 1e-3, n)
    y = np.digitize(forward, np.quantile(forward, np.linspace(0, 1, len(classes) + 1)[1:-1]))
    logits = rng.normal(0, 1, (n, len(classes)))
    logits[np.arange(n), y] += edge
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"bucket": pd.date_range("2024-03-01 00:05", periods=n, freq=freq, tz="UTC"),
                          "part": "test", "y_true": y, "forward_return": forward, "y_pred": proba.argmax(axis=1)})
    for k, name in enumerate(classes):
        frame[f"proba_{name}"] = proba[:, k]
    return frame


def with_metadata(frame: pd.DataFrame) -> pd.DataFrame:
    frame.attrs["atlas.predictions"] = {"bucket_width": "5min", "horizon": 3, "baseline_class": 1}
    return frame


def classifier(frame=None, *, baseline_class=1, **kwargs):
    frame = classifier_frame(**kwargs) if frame is None else frame
    return check_predictions(frame, bucket_width="5min", horizon=3, baseline_class=baseline_class)


def regressor(n=864, *, seed=1, constant=False, constant_labels=False):
    rng = np.random.default_rng(seed)
    forward = np.zeros(n) if constant_labels else rng.normal(0, 1e-3, n)
    predicted = np.full(n, 2e-5) if constant else 0.1 * forward + rng.normal(0, 2e-4, n)
    frame = pd.DataFrame({"bucket": pd.date_range("2024-03-01 00:05", periods=n, freq="5min", tz="UTC"),
                          "part": "test", "y_true": forward, "forward_return": forward, "y_pred": predicted})
    return check_predictions(frame, bucket_width="5min", horizon=1, train_mean=0.0)


def titles(figure) -> list[str]:
    return [ax.get_title(loc="left") for ax in figure.axes]


def figure_texts(figure) -> str:
    return "\n".join(text.get_text() for text in figure.texts)


def summary(figure) -> dict[str, str]:
    ax = next(ax for ax in figure.axes if ax.get_title(loc="left").startswith("Summary"))
    texts = [text.get_text() for text in ax.texts]
    return dict(zip(texts[::2], texts[1::2]))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# --- baseball cards ---------------------------------------------------------------------------------------------


def test_a_classifier_card_has_six_titled_and_labelled_panels_at_the_size_the_mlflow_viewer_shows():
    trial = classifier()
    figure = card(trial, title="mlp \u00b7 BTC-USD 5min \u00b7 trial 3 \u00b7 run 9f2c", significance=0.0123)
    assert len(figure.axes) == 6
    assert [any(t.startswith(p) for t in titles(figure)) for p in CLASSIFIER_PANELS] == [True] * 6
    for ax in figure.axes:
        if not ax.get_title(loc="left").startswith("Summary"):
            assert ax.get_xlabel() and ax.get_ylabel()
    assert "mlp \u00b7 BTC-USD 5min \u00b7 trial 3 \u00b7 run 9f2c" in figure_texts(figure)
    assert "DEGENERATE" not in figure_texts(figure)
    assert figure.get_size_inches().tolist() == [14.0, 9.0]
    assert png_size(card_png(trial, title="t", significance=0.0123)) == (1400, 900)


def test_the_summary_prints_the_given_p_value_or_computes_it_with_trial_significance():
    trial = classifier()
    table = summary(card(trial, title="t", significance=0.0123))
    assert table["p-value of the lift (one-sided)"] == "0.0123"
    expected = trial_significance(lift_differential(trial), horizon=trial.horizon)
    assert summary(card(trial, title="t", significance=expected)) == summary(card(trial, title="t"))
    computed = summary(card(trial, title="t"))
    assert computed["p-value of the lift (one-sided)"] in (f"{expected.p_value:.4f}", f"{expected.p_value:.2e}"
                                                          .replace("e-0", "e-"))
    accuracy = float(np.mean(trial.y_true == trial.y_pred))
    assert table["accuracy"] == f"{accuracy:.3f}"
    assert table["baseline accuracy ('flat')"] == f"{np.mean(trial.y_true == 1):.3f}"


def test_the_confusion_panel_prints_row_normalized_values_prevalence_and_bias():
    frame = classifier_frame()
    figure = card(classifier(frame), title="t", significance=0.5)
    ax = next(ax for ax in figure.axes if ax.get_title(loc="left").startswith("Confusion"))
    printed = [text.get_text() for text in ax.texts]
    confusion = pd.crosstab(frame["y_true"], frame["y_pred"], normalize="index").to_numpy()
    assert printed[:9] == [f"{value:.2f}" for value in confusion.ravel()]
    prevalence = np.bincount(frame["y_true"], minlength=3) / len(frame)
    assert f"{prevalence[0] * 100:.1f}%" in printed
    assert [t.get_text() for t in ax.get_xticklabels()] == [*CLASSES, "prevalence"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [*CLASSES, "bias"]


def test_a_regressor_card_has_its_six_panels_and_summary():
    figure = card(regressor(), title="ridge \u00b7 trial 0", significance=0.2)
    assert len(figure.axes) == 6
    assert [any(t.startswith(p) for t in titles(figure)) for p in REGRESSOR_PANELS] == [True] * 6
    table = summary(figure)
    assert {"RMSE", "MAE", "R\u00b2 out of sample", "directional accuracy", "IC / rank IC",
            "Sharpe (annualized, net)"} <= set(table)
    assert table["p-value (MSE < zero forecast's)"] == "0.2000"


@pytest.mark.parametrize("make, reason", [
    (lambda: classifier(classifier_frame().assign(y_pred=1)), "predicts one class only ('flat')"),
    (lambda: classifier(classifier_frame().assign(y_pred=0, proba_down=1 / 3, proba_flat=1 / 3, proba_up=1 / 3)),
     "probabilities are the same in every row"),
    (lambda: regressor(constant=True), "predicts a constant"),
])
def test_a_degenerate_model_is_named_so_on_its_card(make, reason):
    trial = make()
    assert is_degenerate(trial)
    assert reason in figure_texts(card(trial, title="t", significance=1.0))


def test_probabilities_equal_across_classes_in_every_row_are_degenerate_even_when_rows_differ():
    frame = classifier_frame(classes=("down", "up")).assign(y_pred=0, proba_down=0.5, proba_up=0.5)
    assert is_degenerate(classifier(frame, baseline_class=0))
    assert not is_degenerate(classifier()) and not is_degenerate(regressor())


def _absent_class():
    frame = classifier_frame()
    return classifier(frame.assign(y_true=np.where(frame["y_true"] == 0, 1, frame["y_true"])))


def _rows(n):
    frame = classifier_frame().head(n)
    return classifier(frame)


DEGENERATE_INPUTS = {
    "a class absent from the test window": _absent_class,
    "a constant model": lambda: classifier(classifier_frame().assign(y_pred=2, proba_down=0.2, proba_flat=0.3,
                                                                    proba_up=0.5)),
    "all-equal probabilities": lambda: classifier(classifier_frame().assign(
        y_pred=0, proba_down=1 / 3, proba_flat=1 / 3, proba_up=1 / 3)),
    "one row": lambda: _rows(1),
    "two rows": lambda: _rows(2),
    "no forward returns": lambda: classifier(classifier_frame().assign(forward_return=np.nan)),
    "no baseline class": lambda: classifier(baseline_class=None),
    "a binary classifier": lambda: classifier(classes=("down", "up"), baseline_class=0),
    "twelve classes": lambda: classifier(classes=tuple(f"c{k}" for k in range(12)), baseline_class=0),
    "dollars in names": lambda: classifier(classes=("$\\alpha$", "$x", "up")),
    "a regressor with constant predictions": lambda: regressor(constant=True),
    "a regressor with constant labels": lambda: regressor(constant_labels=True),
    "a regressor with zero variance everywhere": lambda: regressor(constant=True, constant_labels=True),
    "a one-row regressor": lambda: check_predictions(regressor().frame.head(1), bucket_width="5min", horizon=1),
}


@pytest.mark.parametrize("case", DEGENERATE_INPUTS)
def test_degenerate_input_still_draws_a_card(case):
    trial = DEGENERATE_INPUTS[case]()
    data = card_png(trial, title="$\\beta$ spec \u00b7 trial $1 $2", significance=None)
    assert png_size(data) == (1400, 900)


def test_a_card_draws_the_validation_part_when_asked_and_only_that():
    frame = classifier_frame()
    frame["part"] = np.where(np.arange(len(frame)) < 400, "validation", "test")
    trial = classifier(frame)
    assert "400 buckets" in figure_texts(card(trial, title="t", significance=0.5, part="validation"))
    assert "464 buckets" in figure_texts(card(trial, title="t", significance=0.5))


@pytest.mark.parametrize("call, message", [
    (lambda: card(with_metadata(classifier_frame().assign(proba_up=np.nan)), title="t"), "NaN"),
    (lambda: card(classifier_frame(), title="t"), "bucket_width"),
    (lambda: card({"y_true": [1]}, title="t"), "Predictions"),
    (lambda: card(classifier(classifier_frame().assign(part="validation")), title="t"), "no 'test' rows"),
    (lambda: card(classifier(), title="t", significance=1.5), "significance"),
    (lambda: card(classifier(), title="t", significance="small"), "significance"),
    (lambda: card(classifier(), title=None), "title"),
    (lambda: card(classifier(), title="t", cost_bps=-1), "cost_bps"),
    (lambda: card(classifier(), title="t", interval="1M"), "1M"),
    (lambda: card(classifier(), title="t", part="train"), "part"),
    (lambda: is_degenerate("frame"), "Predictions"),
])
def test_bad_card_input_is_a_clear_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_cards_drawn_in_threads_equal_cards_drawn_one_after_another():
    trials = [classifier(seed=seed) for seed in range(3)]
    serial = [card_png(trial, title=f"trial {k}", significance=0.5) for k, trial in enumerate(trials)]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(lambda k: card_png(trials[k], title=f"trial {k}", significance=0.5), range(3)))
    assert threaded == serial and len(set(serial)) == 3


def test_figures_never_import_pyplot_and_atlas_stats_imports_no_matplotlib():
    code = textwrap.dedent("""
        import sys
        import numpy as np, pandas as pd
        import atlas.stats as stats
        assert "matplotlib" not in sys.modules, "atlas.stats imported matplotlib"
        frame = pd.DataFrame({"bucket": pd.date_range("2024-01-01", periods=50, freq="1h", tz="UTC"),
                              "part": "test", "y_true": np.arange(50) % 2, "forward_return": 0.001,
                              "y_pred": np.arange(50) % 3 // 2, "proba_down": 0.4, "proba_up": 0.6})
        frame["proba_down"] = np.where(frame["y_pred"] == 0, 0.6, 0.4)
        frame["proba_up"] = 1 - frame["proba_down"]
        trial = stats.check_predictions(frame, bucket_width="1h", horizon=1, baseline_class=1)
        stats.card_png(trial, title="t", significance=0.5)
        print("pyplot" if "matplotlib.pyplot" in sys.modules else "clean")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


# --- batch overviews --------------------------------------------------------------------------------------------


def sweep_table(per_unit=150, units=("BTC-USD 1min", "ETH-USD 1min"), *, seed=3, regressors=False):
    rng = np.random.default_rng(seed)
    rows = []
    for unit in units:
        for trial in range(per_unit):
            skill = rng.normal(0, 0.01)
            row = {"work_unit": unit, "model_spec": ("mlp", "lstm", "conv1d")[trial % 3], "trial": trial,
                   "run_id": f"{rng.integers(16 ** 12):012x}", "best_val_loss": 1.09 - 2 * skill + rng.normal(0, 1e-3),
                   "degenerate": trial % 13 == 5, "sharpe": 300 * skill, "p_value": float(np.clip(0.5 - 40 * skill,
                                                                                                     1e-7, 1))}
            if regressors:
                row |= {"rmse": 2e-3 - skill * 1e-4, "directional_accuracy": 0.5 + skill, "ic": 3 * skill,
                        "rank_ic": 2 * skill, "r2_oos": 0.01 * skill}
            else:
                row |= {"accuracy": 0.4 + skill, "accuracy_lift": skill}
                for name in CLASSES:
                    pv, pr = 0.33 + skill, rng.uniform(0.1, 0.6)
                    row |= {f"pv_{name}": pv, f"pr_{name}": pr, f"lr_{name}": pr / (1 - pv)}
            rows.append(row)
    return pd.DataFrame(rows)


def grid_axes(figure):
    (ax,) = figure.axes
    return ax


def row_labels(figure) -> list[str]:
    return [tick.get_text() for tick in grid_axes(figure).get_yticklabels()]


def test_an_overview_of_three_trials_has_one_row_each_best_validation_loss_first():
    table = sweep_table(3, ("BTC-USD",))
    (figure,) = overview(table, class_names=CLASSES, title="sweep 7")
    labels = row_labels(figure)
    best_first = table.sort_values("best_val_loss")
    assert labels == [f"{rank}. {row.model_spec} \u00b7 trial {row.trial} \u00b7 {row.run_id[:8]}"
                      + ("  \u26a0 degenerate" if row.degenerate else "")
                      for rank, row in enumerate(best_first.itertuples(), start=1)]
    headers = [tick.get_text() for tick in grid_axes(figure).get_xticklabels()]
    assert headers == ["val loss", "accuracy", *["PV", "PR", "LR"] * 3, "lift", "Sharpe", "p-value"]
    groups = [text.get_text() for text in grid_axes(figure).texts if text.get_text() in CLASSES]
    assert groups == list(CLASSES)
    assert "sweep 7 \u2014 work unit BTC-USD" in figure_texts(figure)
    assert "more trials" not in figure_texts(figure)


def test_an_overview_of_300_trials_shows_the_top_of_each_unit_and_counts_the_rest():
    table = sweep_table()
    figures = overview(table, class_names=CLASSES, title="sweep", top=40)
    assert len(figures) == 2
    for figure, (unit, trials) in zip(figures, table.groupby("work_unit")):
        assert len(row_labels(figure)) == 40
        hidden = trials.sort_values("best_val_loss").iloc[40:]
        assert (f"and 110 more trials (not shown), median accuracy {hidden['accuracy'].median():.3f}"
                in figure_texts(figure))
        assert f"work unit {unit}" in figure_texts(figure)
    assert [len(png) > 1000 for png in overview_png(table, class_names=CLASSES, title="s", top=5)] == [True, True]


def test_degenerate_trials_are_flagged_by_label_color_and_hatching():
    table = sweep_table(30, ("BTC-USD",))
    (figure,) = overview(table, class_names=CLASSES, title="s", top=30)
    ax = grid_axes(figure)
    flagged = [tick for tick in ax.get_yticklabels() if tick.get_text().endswith("degenerate")]
    assert len(flagged) == int(table["degenerate"].sum()) == 2
    assert {tick.get_color() for tick in flagged} == {"#b22222"}
    (hatched,) = ax.collections
    assert hatched.get_hatch() == "////" and len(hatched.get_paths()) == 2


def test_a_trial_without_predictions_is_marked_and_the_others_drawn():
    table = sweep_table(4, ("BTC-USD",))
    metrics = [c for c in table.columns if c not in ("work_unit", "model_spec", "trial", "run_id", "best_val_loss",
                                                    "degenerate")]
    table.loc[table["trial"] == 2, metrics] = np.nan
    table["degenerate"] = table["degenerate"].astype(object)
    table.loc[table["trial"] == 2, "degenerate"] = None
    (figure,) = overview(table, class_names=CLASSES, title="s")
    labels = row_labels(figure)
    assert len(labels) == 4 and sum(label.endswith("(no predictions)") for label in labels) == 1


def test_a_missing_column_is_drawn_empty_with_a_note():
    table = sweep_table(5, ("BTC-USD",)).drop(columns=["lr_up", "accuracy_lift", "degenerate", "work_unit"])
    (figure,) = overview(table, class_names=CLASSES, title="s")
    assert "not in the table, drawn empty: lr_up, accuracy_lift" in figure_texts(figure)
    assert len(row_labels(figure)) == 5
    assert "work unit (all trials)" in figure_texts(figure)


def test_a_single_trial_and_a_regressor_sweep_draw():
    (single,) = overview(sweep_table(1, ("u",)), class_names=CLASSES, title="one")
    assert len(row_labels(single)) == 1
    figures = overview(sweep_table(12, ("u", "v"), regressors=True), class_names=None, title="reg", top=5)
    headers = [tick.get_text() for tick in grid_axes(figures[0]).get_xticklabels()]
    assert headers == ["val loss", "RMSE", "dir. acc.", "IC", "rank IC", "R\u00b2 oos", "Sharpe", "p-value"]
    assert "and 7 more trials (not shown), median directional accuracy" in figure_texts(figures[1])


@pytest.mark.parametrize("call, message", [
    (lambda: overview([1, 2], class_names=CLASSES, title="s"), "DataFrame"),
    (lambda: overview(pd.DataFrame(), class_names=CLASSES, title="s"), "at least one trial"),
    (lambda: overview(sweep_table(2, ("u",)), class_names="up", title="s"), "class_names"),
    (lambda: overview(sweep_table(2, ("u",)), class_names=["up"], title="s"), "class_names"),
    (lambda: overview(sweep_table(2, ("u",)), class_names=CLASSES, title="s", top=0), "top"),
    (lambda: overview(sweep_table(2, ("u",)), class_names=CLASSES, title=3), "title"),
])
def test_bad_overview_input_is_a_clear_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_each_column_is_scaled_on_its_own_with_the_better_end_bright():
    higher = Column("accuracy", "accuracy", True, str)
    lower = Column("best_val_loss", "val loss", False, str)
    p_value = Column("p_value", "p-value", False, str, log_scale=True)
    assert levels(np.array([0.4, 0.5, np.nan, 0.45]), higher).tolist()[:2] == [0.0, 1.0]
    assert np.isnan(levels(np.array([0.4, np.nan]), higher)[1])
    assert levels(np.array([1.0, 2.0]), lower).tolist() == [1.0, 0.0]
    assert levels(np.array([1e-6, 1e-3, 1.0]), p_value).tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert levels(np.array([0.7, 0.7]), higher).tolist() == [0.5, 0.5]
    assert levels(np.array([np.inf, 2.0, 1.0]), higher).tolist() == [1.0, 1.0, 0.0]
