"""ModelSpec, WorkUnit and WorkSpec: checked when made, named errors, round trips, and the experiments' plans."""

from __future__ import annotations

import json

import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from atlas.data import FeatureLabelSet, LogReturns
from atlas.exceptions import ConfigError
from atlas.infra import ModelSpec, Resources, Search, WorkSpec, WorkUnit, load_spec

FLS = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1)], labels=[LogReturns().bitstamp().lookforward(1)])
WINDOWS = {"train": ("2024-01-01", "2024-01-05"), "test": ("2024-01-05 01:00", "2024-01-06")}


def unit(*specs, name="u", **options) -> WorkUnit:
    return WorkUnit(name, FLS, model_specs=list(specs), **WINDOWS, **options)


def test_grids_ranges_and_list_valued_parameters():
    spec = ModelSpec("dnn", "dnn_classifier", {"hidden_units": [[16], [32, 16]], "dropout": [0.0, 0.1, 0.2],
                                               "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
                                               "activation": "tanh"})
    assert spec.grid_size == 6 and set(spec.ranges) == {"learning_rate"}
    points = list(spec.grid_points())
    assert len(points) == 6 and points[0] == {"activation": "tanh", "hidden_units": [16], "dropout": 0.0}
    single = ModelSpec("deep", "dnn_classifier", {"hidden_units": [128, 64, 32]})  # one value, not a grid of 3
    assert single.grid_size == 1 and list(single.grid_points()) == [{"hidden_units": [128, 64, 32]}]


def test_model_spec_round_trip_through_json():
    spec = ModelSpec("gru", "gru_classifier", {"units": [[8], [16]], "dropout": FloatDistribution(0.0, 0.5),
                                               "learning_rate": 0.001}, fit={"epochs": 5})
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.grid_size == 2 and again.ranges["dropout"] == FloatDistribution(0.0, 0.5)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ModelSpec("x", "dnn_clasifier"), "did you mean 'dnn_classifier'"),
    (lambda: ModelSpec("x", "dnn_classifier", {"hidden_unit": [8]}), "ModelSpec 'x': .*did you mean 'hidden_units'"),
    (lambda: ModelSpec("x", "dnn_classifier", {"dropout": []}), r"params\['dropout'\] is an empty grid"),
    (lambda: ModelSpec("x", "dnn_classifier", fit={"epoch": 3}), "fit has unknown options"),
    (lambda: ModelSpec("x", "dnn_classifier", fit={"epochs": -5}),  # not: every trial fails
     r"ModelSpec 'x': fit: FitOptions.epochs must be a whole number of at least 1, got epochs=-5"),
    (lambda: ModelSpec("x", "dnn_classifier", fit={"batch_size": 2.5}), r"ModelSpec 'x': fit: FitOptions.batch_size"),
    (lambda: ModelSpec("x", "dnn_classifier", {"dropout": [0.1, 0.1]}), r"params\['dropout'\] repeats a value"),
    (lambda: ModelSpec("x", int), "must be a model type's name or an atlas.models.Model subclass"),
    (lambda: unit(ModelSpec("m", "linear_regressor"), validation=1.5), "validation must be a fraction"),
    (lambda: unit(ModelSpec("m", "dnn_classifier")), "WorkUnit 'u': classes is None but ModelSpec 'm' is a classifier"),
    (lambda: unit(ModelSpec("m", "lstm_regressor")), "window is None but ModelSpec 'm'"),
    (lambda: unit(ModelSpec("m", "dnn_regressor"), ModelSpec("m", "linear_regressor")), "repeat a name"),
    (lambda: Search("bayes"), "strategy must be one of"),
    (lambda: Search("tpe"), "n_trials is required"),
    (lambda: Resources(gpu=1.5), "gpu must be a fraction"),
    (lambda: WorkSpec("w", [unit(ModelSpec("m", "dnn_regressor", {"learning_rate": FloatDistribution(1e-4, 1e-2)}))]),
     "WorkSpec 'w': search is 'grid' but these model specs have ranges"),
    (lambda: WorkSpec("w", [unit(ModelSpec("m", "dnn_regressor"))], max_concurrent=0), "max_concurrent"),
])
def test_errors_name_the_spec_and_the_field(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_trial_plans():
    ranged = ModelSpec("r", "dnn_regressor", {"hidden_units": [[8], [16]], "dropout": IntDistribution(0, 1)})
    spec = WorkSpec("w", [unit(ranged, ModelSpec("lin", "linear_regressor", {"l2": [0.0, 0.1, 1.0]}))],
                    search=Search("tpe", n_trials=5))
    assert spec.trials() == [("u", "r", 5), ("u", "lin", 5)] and spec.n_trials == 10
    grid = WorkSpec("g", [unit(ModelSpec("lin", "linear_regressor", {"l2": [0.0, 0.1, 1.0]}))])
    assert grid.n_trials == 3


def test_the_experiments_define_their_sweeps():
    quickstart = load_spec("experiments/quickstart.py")
    assert quickstart.n_trials == 24 and len(quickstart.work_units) == 2
    june = load_spec("experiments/june_2017.py")
    assert june.n_trials == 48 and len(june.work_units) == 12
    assert {m.model for u in june.work_units for m in u.model_specs} == {"dnn_classifier"}
    assert all(u.classes.to_dict()["thresholds"] == [0.33, 0.67] for u in june.work_units)


def test_spec_files_that_are_wrong_are_named(tmp_path):
    with pytest.raises(ConfigError, match="spec file .*nothing.py does not exist"):
        load_spec(str(tmp_path / "nothing.py"))
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="empty.py must define SPEC = WorkSpec"):
        load_spec(str(tmp_path / "empty.py"))
    (tmp_path / "typo.py").write_text("from atlas.infra import ModelSpec\nM = ModelSpec('m', 'dnn_clasifier')\n")
    with pytest.raises(ConfigError, match="typo.py: .*did you mean 'dnn_classifier'"):
        load_spec(str(tmp_path / "typo.py"))
    (tmp_path / "broken.py").write_text("import nonexistent_module\n")
    with pytest.raises(ConfigError, match="broken.py failed to import: ModuleNotFoundError"):
        load_spec(str(tmp_path / "broken.py"))


def test_gap_and_tie_options_round_trip_and_wrong_ones_name_the_field():
    from atlas.data.dataset import ClassLabels

    gru = ModelSpec("g", "gru_classifier")
    made = unit(gru, classes=ClassLabels("sign", ties="drop"), window=5, allow_gaps=True)
    values = json.loads(json.dumps(made.to_dict()))
    assert values["allow_gaps"] is True and values["classes"]["ties"] == "drop"
    again = WorkUnit.from_dict(values)
    assert again == made and again.allow_gaps and again.classes.ties == "drop"
    plain = WorkUnit.from_dict({**values, "classes": {"method": "sign", "ties": "up"}})  # a hand-written dict
    assert plain.classes == ClassLabels("sign", ties="up")
    assert unit(gru, classes=ClassLabels("sign"), window=5).allow_gaps is False
    with pytest.raises(ConfigError, match=r"WorkUnit 'u': classes ties must be one of 'down', 'up', 'drop'"):
        WorkUnit.from_dict({**values, "classes": {"method": "sign", "ties": "sideways"}})
    with pytest.raises(ConfigError, match=r"WorkUnit 'u': classes ties is an option of label method 'sign' only"):
        WorkUnit.from_dict({**values, "classes": {"method": "bps", "thresholds": [-5, 5], "ties": "drop"}})
    with pytest.raises(ConfigError, match="WorkUnit 'u': allow_gaps must be True or False, got 'yes'"):
        unit(gru, classes=ClassLabels("sign"), window=5, allow_gaps="yes")


def test_the_work_units_data_carries_allow_gaps_into_the_transforms(sweep_market):
    from _units import next_minute_unit

    from atlas.data import MarketStore
    from atlas.infra._driver import build_data

    gru = ModelSpec("g", "gru_classifier", {"units": [4]})
    with MarketStore(sweep_market) as store:
        for allow_gaps in (False, True):
            data = build_data(next_minute_unit("w", gru, window=3, allow_gaps=allow_gaps), store, 0)
            assert data[3].transforms.allow_gaps is allow_gaps and data[3].summary()["allow_gaps"] is allow_gaps
            assert data[3].report["train"]["windows_dropped"] == (
                0 if allow_gaps else data[3].report["train"]["windows_across_gaps"])
