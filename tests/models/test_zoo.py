"""The model zoo's contract, over every registered kind; the registry's errors; loading in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atlas.exceptions import ConfigError
from atlas.models import (
    MODELS,
    DataShape,
    FitOptions,
    KerasModel,
    NotFittedError,
    load_model,
    make_model,
    model_class,
    model_types,
)
from atlas.models._params import ACTIVATIONS

ROOT = Path(__file__).resolve().parents[2]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def tiny(kind: str, *, samples: int = 48, seed: int = 0, window: int = 6):
    """A shape and random data that fit ``kind``: 3 features, 3 classes or values, windows for sequences."""
    cls = MODELS[kind]
    shape = DataShape(n_features=3, n_classes=3 if cls.task == "classification" else None,
                      window=window if cls.sequence else None)
    rng = np.random.default_rng(seed)
    dims = (shape.n_features,) if shape.window is None else (shape.window, shape.n_features)
    x = rng.normal(size=(samples, *dims)).astype(np.float32)
    y = rng.integers(0, 3, samples) if shape.n_classes else rng.normal(size=samples).astype(np.float32)
    return shape, x, y


def outputs(model, x):
    return model.predict_proba(x) if model.task == "classification" else model.predict(x)


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_model_type_builds_fits_saves_loads_and_predicts_the_same(kind, tmp_path):
    shape, x, y = tiny(kind)
    model = make_model(kind, {}, shape)
    assert model.params == MODELS[kind].defaults and not model.is_fitted
    with pytest.raises(NotFittedError, match="fit"):
        model.predict(x)
    options = FitOptions(epochs=1, batch_size=16, seed=3)
    history = model.fit(x, y, validation=(x[:16], y[:16]), options=options)
    assert history.epochs == 1 and history.stopped == "epochs"
    assert all(len(values) == 1 and np.isfinite(values[0]) for values in history.metrics.values())
    assert {"val_accuracy" if model.task == "classification" else "val_loss"} <= set(history.metrics)

    predicted = model.predict(x)
    assert predicted.shape == (len(x),)
    if model.task == "classification":
        assert predicted.dtype == np.int64 and set(predicted) <= {0, 1, 2}
        proba = model.predict_proba(x)
        assert proba.shape == (len(x), 3) and proba.dtype == np.float32
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(np.argmax(proba, axis=1), predicted)
    else:
        assert predicted.dtype == np.float32 and np.all(np.isfinite(predicted))
        with pytest.raises(TypeError, match="no class probabilities"):
            model.predict_proba(x)

    model.save(tmp_path / "saved")
    manifest = json.loads((tmp_path / "saved" / "model.json").read_text())
    assert (manifest["kind"], manifest["params"], manifest["shape"]) == (kind, model.params, shape.to_dict())
    loaded = load_model(tmp_path / "saved")
    assert type(loaded) is type(model) and loaded.params == model.params and loaded.shape == shape
    np.testing.assert_array_equal(loaded.predict(x), predicted)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))

    one = model.predictor()(x[3])
    assert one.ndim == 1
    np.testing.assert_allclose(one, outputs(model, x[3:4])[0] if model.task == "classification"
                               else outputs(model, x[3:4]), rtol=0, atol=1e-5)


def test_a_saved_model_loads_in_a_fresh_process(tmp_path):
    expected = {}
    for kind in ("dnn_classifier", "transformer_regressor"):  # a transformer holds Atlas's own layer
        shape, x, y = tiny(kind)
        model = make_model(kind, {}, shape)
        model.fit(x, y, options=FitOptions(epochs=1, seed=1))
        model.save(tmp_path / kind)
        np.save(tmp_path / f"{kind}.x.npy", x)
        expected[kind] = outputs(model, x)
    script = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from atlas.models import load_model\n"
        "folder = Path(sys.argv[1])\n"
        "for kind in sys.argv[2:]:\n"
        "    model = load_model(folder / kind)\n"
        "    x = np.load(folder / f'{kind}.x.npy')\n"
        "    out = model.predict_proba(x) if model.task == 'classification' else model.predict(x)\n"
        "    np.save(folder / f'{kind}.out.npy', out)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), *expected], check=False,
                            capture_output=True, text=True, cwd=ROOT, env=QUIET, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for kind, values in expected.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{kind}.out.npy"), values)


def test_importing_atlas_models_loads_neither_tensorflow_nor_keras():
    code = ("import sys, atlas.models; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras') or m.startswith(('atlas.infra', 'atlas.stats'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_atlas_models_imports_neither_infra_nor_stats():
    for path in (ROOT / "atlas" / "models").glob("*.py"):
        text = path.read_text()
        assert "atlas.infra" not in text and "atlas.stats" not in text, path.name


# the registry -----------------------------------------------------------------------------------------------


def test_the_registry_lists_every_kind_with_its_task_and_inputs():
    assert set(model_types()) == set(MODELS) and len(MODELS) == 16
    assert model_types(task="classification", sequence=True, baseline=False) == [
        "lstm_classifier", "gru_classifier", "tcn_classifier", "transformer_classifier"]
    assert model_types(baseline=True) == ["majority_classifier", "no_change_regressor",
                                          "persistence_classifier", "persistence_regressor"]
    for kind, cls in MODELS.items():
        assert cls.kind == kind and cls.task in ("classification", "regression")
        assert kind.endswith("_classifier") == (cls.task == "classification")
        text = cls.describe()
        assert text.startswith(f"{kind}: {cls.task}") and all(f"{name} = " in text for name in cls.defaults)
        assert cls.defaults == {name: p.default for name, p in cls.parameters.items()}
    with pytest.raises(TypeError):
        MODELS["mine"] = MODELS["dnn_classifier"]  # read-only


def test_an_unknown_kind_gets_did_you_mean_and_the_list():
    with pytest.raises(ConfigError, match=r"unknown model type 'dnn_clasifier'; did you mean 'dnn_classifier'"
                                          r".*The model types are: linear_regressor, .*majority_classifier"):
        make_model("dnn_clasifier", {}, DataShape(3, 2))
    with pytest.raises(ConfigError, match="unknown model type 3"):
        model_class(3)


def test_an_unknown_parameter_gets_did_you_mean_and_the_valid_names_with_defaults():
    with pytest.raises(ConfigError, match=r"dnn_classifier has no parameter 'hidden_unit'; did you mean "
                                          r"'hidden_units'\? Its parameters \(with defaults\) are: "
                                          r"hidden_units=\[64, 32\], activation='relu', dropout=0.0"):
        make_model("dnn_classifier", {"hidden_unit": [8]}, DataShape(3, 2))
    with pytest.raises(ConfigError, match="majority_classifier has no parameter 'horizon'.*are: none"):
        make_model("majority_classifier", {"horizon": 2}, DataShape(3, 2))


@pytest.mark.parametrize(("kind", "params", "pattern"), [
    ("dnn_classifier", {"hidden_units": [0]}, "hidden_units must be a list of positive whole numbers"),
    ("dnn_classifier", {"hidden_units": []}, "hidden_units must be .* at least one, got hidden_units=\\[\\]"),
    ("dnn_classifier", {"hidden_units": "64"}, "hidden_units must be a list"),
    ("dnn_classifier", {"hidden_units": [True]}, "hidden_units must be a list"),
    ("dnn_classifier", {"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got dropout=1.0"),
    ("dnn_regressor", {"dropout": -0.1}, r"dropout must be a number in \[0, 1\)"),
    ("dnn_classifier", {"optimizer": "adm"}, "optimizer must be one of 'adam', .*did you mean 'adam'"),
    ("dnn_classifier", {"activation": "rleu"}, "activation must be one of .*did you mean 'relu'"),
    ("dnn_classifier", {"batch_normalization": "yes"}, "batch_normalization must be True or False"),
    ("logistic_classifier", {"learning_rate": 0}, r"learning_rate must be a number in \(0, 10\]"),
    ("linear_regressor", {"l2": float("nan")}, "l2 must be a number >= 0"),
    ("lstm_classifier", {"units": [32, -1]}, "units must be a list of positive whole numbers"),
    ("tcn_classifier", {"kernel_size": 1}, "kernel_size must be a whole number of at least 2"),
    ("tcn_regressor", {"num_blocks": 2.5}, "num_blocks must be a whole number"),
    ("transformer_classifier", {"d_model": 30, "num_heads": 4}, "d_model must be a multiple of num_heads"),
    ("transformer_regressor", {"pooling": "mean"}, "pooling must be one of 'average', 'last'"),
    ("persistence_classifier", {"horizon": 0}, "horizon must be a whole number of at least 1"),
])
def test_bad_parameter_values_are_named_with_what_is_expected(kind, params, pattern):
    cls = MODELS[kind]
    shape = DataShape(3, 2 if cls.task == "classification" else None, 8 if cls.sequence else None)
    with pytest.raises(ConfigError, match=pattern):
        make_model(kind, params, shape)


def test_shapes_a_kind_cannot_take():
    with pytest.raises(ConfigError, match="dnn_classifier is a classifier: its DataShape needs n_classes"):
        make_model("dnn_classifier", {}, DataShape(n_features=3))
    with pytest.raises(ConfigError, match="dnn_regressor is a regressor: .*n_classes=None"):
        make_model("dnn_regressor", {}, DataShape(n_features=3, n_classes=2))
    with pytest.raises(ConfigError, match="lstm_classifier reads sequence windows: .* needs a window"):
        make_model("lstm_classifier", {}, DataShape(n_features=3, n_classes=2))
    with pytest.raises(ConfigError, match="dnn_regressor reads rows, not windows"):
        make_model("dnn_regressor", {}, DataShape(n_features=3, window=10))
    with pytest.raises(ConfigError, match="n_classes must be a whole number of at least 2"):
        DataShape(n_features=3, n_classes=1)
    with pytest.raises(ConfigError, match="needs a DataShape"):
        make_model("dnn_regressor", {}, (3,))
    with pytest.raises(ConfigError, match="FitOptions.epochs must be a whole number of at least 1"):
        FitOptions(epochs=0)


def test_inputs_and_targets_that_do_not_fit_are_named():
    model = make_model("gru_classifier", {}, DataShape(n_features=3, n_classes=2, window=5))
    with pytest.raises(ConfigError, match=r"takes windows of shape \(samples, 5, 3\), got .* \(4, 3\)"):
        model.fit(np.zeros((4, 3)), np.zeros(4, dtype=int))
    with pytest.raises(ConfigError, match=r"class ids 0..1 .*from 0 to 2"):
        model.fit(np.zeros((3, 5, 3)), np.array([0, 1, 2]))
    with pytest.raises(ConfigError, match="one target per sample"):
        model.fit(np.zeros((3, 5, 3)), np.array([0, 1]))
    with pytest.raises(ConfigError, match="class_weight maps class ids 0..1"):
        model.fit(np.zeros((3, 5, 3)), np.array([0, 1, 1]), class_weight={2: 1.0})
    with pytest.raises(ConfigError, match="sample_weight needs one finite weight"):
        model.fit(np.zeros((3, 5, 3)), np.array([0, 1, 1]), sample_weight=[1.0, 1.0])


def test_loading_checks_the_folder_and_the_kind(tmp_path):
    with pytest.raises(ConfigError, match="holds no saved model: model.json is missing"):
        load_model(tmp_path)
    model = make_model("majority_classifier", {}, DataShape(2, 2))
    model.fit(np.zeros((2, 2)), np.array([0, 1]))
    model.save(tmp_path)
    with pytest.raises(ConfigError, match="holds a majority_classifier model, not a dnn_classifier"):
        MODELS["dnn_classifier"].load(tmp_path)


def test_every_activation_name_is_a_keras_activation():
    import keras

    for name in ACTIVATIONS:
        assert callable(keras.activations.get(name)), name


def test_every_keras_model_type_has_a_body_and_the_training_parameters():
    for cls in MODELS.values():
        if issubclass(cls, KerasModel):
            assert cls.body is not KerasModel.body and {"optimizer", "learning_rate"} <= set(cls.defaults)
