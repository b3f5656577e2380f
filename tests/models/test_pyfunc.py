"""The MLflow pyfunc model: logged from code with its artifact folder, loaded in a fresh process, fed frames or market
data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest

import atlas
from atlas.data import (
    FeatureLabelSet,
    InterExchangeSpread,
    LogReturns,
    MarketSimulator,
    MarketStore,
    MetricPipeline,
    SimulatorConfig,
)
from atlas.data.dataset import ClassLabels, apply_transforms, sequence_windows
from atlas.exceptions import ConfigError
from atlas.models._base import DataShape, History, Model
from atlas.models._fast import compile_predictor
from atlas.models._manifest import read_manifest, write_manifest
from atlas.models._packaging import log_pyfunc, save_pyfunc

layers = keras.layers
TRAIN = ("2024-01-01 00:10", "2024-01-01 15:00")
TEST = ("2024-01-01 15:10", "2024-01-01 23:00")


class TinyClassifier(Model):
    """A test-only model: a small dense network (or an LSTM over windows), so these tests need no zoo."""

    kind = "tiny_classifier"
    task = "classification"
    sequence = None  # rows, or windows (an LSTM)

    def __init__(self, params, shape: DataShape) -> None:
        super().__init__(params, shape)
        keras.utils.set_random_seed(0)
        if shape.window:
            body = [keras.Input((shape.window, shape.n_features)), layers.LSTM(8)]
        else:
            body = [keras.Input((shape.n_features,)), layers.Dense(16, activation="relu"),
                    layers.BatchNormalization(), layers.Dropout(0.2), layers.Dense(8, activation="tanh")]
        units, activation = (shape.n_classes, "softmax") if self.task == "classification" else (1, None)
        self.network = keras.Sequential([*body, layers.Dense(units, activation=activation)])

    def fit(self, x, y, **_) -> History:
        loss = "sparse_categorical_crossentropy" if self.task == "classification" else "mse"
        self.network.compile(optimizer="adam", loss=loss)
        history = self.network.fit(x, y, epochs=2, batch_size=64, verbose=0)
        return History({"loss": history.history["loss"]})

    @property
    def is_fitted(self) -> bool:
        return True

    def predict(self, x):
        return self.predict_proba(x).argmax(axis=1)

    def predict_proba(self, x):
        return self.network.predict(x, verbose=0)

    def predictor(self):
        return compile_predictor(self.network, proba=self.task == "classification")

    def save(self, folder: Path) -> None:
        write_manifest(folder, self, files=["network.keras"])
        self.network.save(folder / "network.keras")

    @classmethod
    def load(cls, folder: Path) -> Model:
        saved = read_manifest(folder, expected=cls.kind)
        model = cls(saved["params"], DataShape.from_dict(saved["shape"]))
        model.network = keras.saving.load_model(folder / "network.keras")
        return model


class TinyRegressor(TinyClassifier):
    kind = "tiny_regressor"
    task = "regression"

    def predict(self, x):
        return self.network.predict(x, verbose=0)[:, 0]


MODELS = {"tiny_classifier": TinyClassifier, "tiny_regressor": TinyRegressor}


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """One simulated day on two exchanges, one-minute midpoints: a store, a set and its dataset."""
    folder = tmp_path_factory.mktemp("market")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATLAS_HOME", str(folder / "home"))
        url = f"sqlite:///{folder / 'market.db'}"
        with MarketStore(url) as store:
            MarketSimulator(SimulatorConfig(days=1, exchanges="bitstamp,itbit", seed=3, signal=0.3,
                                            snapshot_interval="30s", levels=10)).simulate_into(store)
            MetricPipeline(store, bucket="1min", depths=(0,), slippages=()).run()
            fls = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1), LogReturns().itbit().lookback(1),
                                            LogReturns().bitstamp().lookback(5),
                                            InterExchangeSpread("bitstamp", "itbit")],
                                  labels=[LogReturns().bitstamp().lookforward(1)])
            classes = ClassLabels("percentile", (0.33, 0.67))
            data = fls.dataset(train=TRAIN, test=TEST, store=store, classes=classes, cache=False)
            windowed = fls.dataset(train=TRAIN, test=TEST, store=store, classes=classes, window=10, cache=False)
            regression = fls.dataset(train=TRAIN, test=TEST, store=store, cache=False)
            raw = fls.build(TEST[0], TEST[1], store=store, cache=False)[fls.feature_names]
            last = store.read_series("bitstamp_btc_usd.1min.midpoint").index[-1]
        yield {"url": url, "fls": fls, "data": data, "windowed": windowed, "regression": regression, "raw": raw,
               "last": last, "home": folder / "home"}


def fitted(cls, data):
    model = cls({}, DataShape(data.n_features, data.n_classes or None, data.window))
    model.fit(data.inputs("train"), data.y_train)
    return model


@pytest.fixture(scope="module")
def classifier(market):
    return fitted(TinyClassifier, market["data"])


@pytest.fixture
def tracking(tmp_path, monkeypatch, market):
    """MLflow on SQLite under tmp_path, artifacts beside it; the same settings for a child process."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("ATLAS_HOME", str(market["home"]))
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("pyfunc", artifact_location=(tmp_path / "artifacts").as_uri())
    yield experiment
    mlflow.set_tracking_uri(None)


CHILD = textwrap.dedent("""
    import json, sys
    if sys.argv[4] == "without":  # as on a trading server where these are not installed
        sys.modules.update(ray=None, optuna=None, matplotlib=None)
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(sys.argv[1])
    frame = pd.read_parquet(sys.argv[2])
    model.predict(frame).to_parquet(sys.argv[3])
    import atlas
    heavy = ("tensorflow", "keras", "ray", "optuna", "matplotlib")
    print(json.dumps({"imported": sorted(m for m in heavy if sys.modules.get(m) is not None),
                      "atlas": atlas.__file__}))
""")


def test_a_logged_dense_model_predicts_the_same_in_a_fresh_process_without_tensorflow(
        tracking, market, classifier, tmp_path):
    fls, data, raw = market["fls"], market["data"], market["raw"]
    with mlflow.start_run(experiment_id=tracking):
        info = log_pyfunc(classifier, fls, data.transforms, registered_model_name="atlas_test_dnn")
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    out = loaded.predict(raw)
    assert list(out.columns) == ["class", "p_down", "p_flat", "p_up"]
    assert out.index.equals(raw.index)  # every test row has every feature
    keras_proba = classifier.predict_proba(data.X_test)
    np.testing.assert_allclose(out.loc[data.index_test].filter(like="p_").to_numpy(), keras_proba, atol=1e-5)
    assert (out["class"] == np.array(["down", "flat", "up"])[out.filter(like="p_").to_numpy().argmax(1)]).all()
    tick = loaded.unwrap_python_model().predict_one(raw.iloc[-1].to_numpy())  # the serving path, one row
    np.testing.assert_allclose(tick, out.iloc[-1, 1:].to_numpy(dtype=float), rtol=1e-12)

    raw.to_parquet(tmp_path / "raw.parquet")
    child = subprocess.run([sys.executable, "-c", CHILD, "models:/atlas_test_dnn/1", str(tmp_path / "raw.parquet"),
                            str(tmp_path / "out.parquet"), "with"], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": ""}, timeout=120)
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["imported"] == []  # the NumPy path: no TensorFlow, Keras, Ray, Optuna or matplotlib
    assert report["atlas"] == atlas.__file__  # the installed Atlas: the model carries no copy of it
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), out)


def test_the_artifacts_signature_and_requirements(tracking, market, classifier):
    fls, data = market["fls"], market["data"]
    with mlflow.start_run(experiment_id=tracking):
        info = log_pyfunc(classifier, fls, data.transforms)
    folder = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    atlas_folder = folder / "artifacts" / "atlas"
    assert FeatureLabelSet.from_dict(json.loads((atlas_folder / "featureset.json").read_text())) == fls
    assert json.loads((atlas_folder / "transforms.json").read_text()) == data.transforms.to_dict()
    meta = json.loads((atlas_folder / "meta.json").read_text())
    assert meta["format"] == 1 and meta["model_class"] is None  # a model of the zoo
    assert (folder / "_pyfunc_model.py").is_file() and not (folder / "code").exists()  # models from code
    assert not list(folder.rglob("*.pkl"))
    assert (meta["task"], meta["class_names"], meta["feature_names"], meta["label"], meta["window"]) == (
        "classification", ["down", "flat", "up"], fls.feature_names, fls.label_names[0], None)
    assert meta["fast_path"] == "numpy" and (atlas_folder / "dense.npz").exists()
    assert TinyClassifier.load(atlas_folder / "model").predict_proba(data.X_test[:5]) == pytest.approx(
        classifier.predict_proba(data.X_test[:5]))

    requirements = (folder / "requirements.txt").read_text()
    assert requirements.startswith(f"gryphon-atlas=={atlas.__version__}\n")
    assert "mlflow==" in requirements and "numpy==" in requirements and "pandas==" in requirements
    assert not any(name in requirements for name in ("tensorflow", "keras", "ray", "optuna", "matplotlib"))
    signature = info.signature
    assert signature.inputs.input_names() == [*fls.feature_names, "store_url", "start", "end"]
    assert [c.name for c in signature.outputs.inputs] == ["class", "p_down", "p_flat", "p_up"]
    example = mlflow.pyfunc.load_model(info.model_uri).input_example
    assert list(example.columns) == fls.feature_names and len(example) == 3


def test_predictions_from_market_data_equal_those_from_the_feature_frame(tracking, market, classifier,
                                                                        monkeypatch):
    fls, last = market["fls"], market["last"]
    with mlflow.start_run(experiment_id=tracking):
        info = log_pyfunc(classifier, fls, market["data"].transforms)
    model = mlflow.pyfunc.load_model(info.model_uri)
    start = last - pd.Timedelta("2h")
    request = pd.DataFrame({"store_url": [market["url"]], "start": [str(start)], "end": [str(last)]})
    from_market = model.predict(request)
    with MarketStore(market["url"]) as store:
        built = fls.build(start, last, store=store, cache=False)[fls.feature_names]
        served = fls.features_frame(start, last, store=store)
    from_frame = model.predict(built)
    assert from_market.index[0] == start and from_market.index[-1] == last
    # build drops the newest bucket (its label is in the future); serving predicts it
    assert built.index[-1] < last and from_frame.index.isin(from_market.index).all()
    pd.testing.assert_frame_equal(from_market.loc[from_frame.index], from_frame)
    pd.testing.assert_frame_equal(served.loc[built.index], built, check_freq=False)
    monkeypatch.setenv("ATLAS_STORE_URL", market["url"])  # without store_url, the settings' store
    pd.testing.assert_frame_equal(model.predict(request.drop(columns="store_url")), from_market)


def test_a_windowed_model_predicts_once_per_complete_window(market, tmp_path):
    data, raw = market["windowed"], market["raw"]
    model = fitted(TinyClassifier, data)
    save_pyfunc(tmp_path / "lstm", model, market["fls"], data.transforms, models=MODELS)
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "lstm"))
    out = loaded.predict(raw)  # hundreds of windows: one batched Keras call
    assert out.index.equals(raw.index[9:]) and out.index.equals(data.index_test)
    expected = model.predict_proba(data.windows("test"))
    np.testing.assert_allclose(out.filter(like="p_").to_numpy(), expected, atol=1e-5)
    tick = loaded.predict(raw.iloc[-12:])  # a few windows: the fast predictor, one window at a time
    assert tick.index.equals(raw.index[-3:])
    np.testing.assert_allclose(tick.filter(like="p_").to_numpy(), expected[-3:], atol=1e-5)
    one = loaded.unwrap_python_model().predict_one(raw.iloc[-10:].to_numpy())
    np.testing.assert_allclose(one, tick.iloc[-1, 1:].to_numpy(dtype=float), rtol=1e-12)
    meta = json.loads((tmp_path / "lstm" / "artifacts" / "atlas" / "meta.json").read_text())
    assert meta["fast_path"] == "graph" and meta["needs_tensorflow"]
    assert meta["model_class"] == f"{TinyClassifier.__module__}:TinyClassifier"  # imported at load, not pickled
    assert "tensorflow" in (tmp_path / "lstm" / "requirements.txt").read_text()
    with pytest.raises(ConfigError, match="a window of 10 rows needs at least 10 rows with every feature, got 9"):
        loaded.predict(raw.iloc[:9])


def test_a_zoo_lstm_loads_from_the_registry_in_a_fresh_process(market, tmp_path):
    from atlas.models import FitOptions, make_model

    data, raw = market["windowed"], market["raw"].iloc[-40:]
    model = make_model("lstm_classifier", {"units": [8]},
                       DataShape(data.n_features, data.n_classes, data.window))
    model.fit(data.inputs("train"), data.y_train, options=FitOptions(epochs=1, patience=None))
    save_pyfunc(tmp_path / "zoo", model, market["fls"], data.transforms)
    out = mlflow.pyfunc.load_model(str(tmp_path / "zoo")).predict(raw)
    raw.to_parquet(tmp_path / "raw.parquet")
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "zoo"), str(tmp_path / "raw.parquet"),
                            str(tmp_path / "out.parquet"), "without"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=180)
    assert child.returncode == 0, child.stderr[-3000:]
    # Keras imports matplotlib when it is installed (keras.src.visualization); here it is not, nor Ray, Optuna
    assert json.loads(child.stdout.strip().splitlines()[-1])["imported"] == ["keras", "tensorflow"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), out)
    np.testing.assert_allclose(out.filter(like="p_").to_numpy(),
                               model.predict_proba(sequence_windows(apply_transforms(raw, data.transforms), 10)),
                               atol=1e-5)


def test_a_regressor_predicts_values(market, tmp_path):
    data, raw = market["regression"], market["raw"]
    model = fitted(TinyRegressor, data)
    save_pyfunc(tmp_path / "regressor", model, market["fls"], data.transforms)
    out = mlflow.pyfunc.load_model(str(tmp_path / "regressor")).predict(raw)
    assert list(out.columns) == ["prediction"]
    np.testing.assert_allclose(out.loc[data.index_test, "prediction"], model.predict(data.X_test), atol=1e-5)


def test_bad_inputs_are_clear_errors(market, classifier, tmp_path):
    fls, data, raw = market["fls"], market["data"], market["raw"]
    save_pyfunc(tmp_path / "dnn", classifier, fls, data.transforms)
    model = mlflow.pyfunc.load_model(str(tmp_path / "dnn"))
    extra = raw.assign(unused=1.0)
    pd.testing.assert_frame_equal(model.predict(extra), model.predict(raw))  # extra columns are ignored
    gone = fls.feature_names[2]
    with pytest.raises(ConfigError, match=re.escape(f"lacks 1 of the model's 4 feature columns: ['{gone}']")):
        model.predict(raw.drop(columns=gone))
    with pytest.raises(ConfigError, match="a market request needs the columns start and end"):
        model.predict(pd.DataFrame({"start": ["2024-01-01 10:00"]}))
    holes = raw.copy()
    holes.iloc[3, 0] = np.nan  # a row missing a feature gets no prediction
    assert model.predict(holes).index.equals(raw.index.delete(3))


def test_parts_that_do_not_fit_together_are_refused_at_save(market, classifier, tmp_path):
    fls, data = market["fls"], market["data"]
    other = FeatureLabelSet(features=list(reversed(fls.features)), labels=fls.labels)
    with pytest.raises(ConfigError, match="transforms must be fitted on the set's features, in order"):
        save_pyfunc(tmp_path / "a", classifier, other, data.transforms)
    with pytest.raises(ConfigError, match="3-class model needs 3 distinct class names"):
        save_pyfunc(tmp_path / "b", classifier, fls, data.transforms, class_names=["down", "up"])
    with pytest.raises(ConfigError, match="window=None, the data has 4 features and window=10"):
        save_pyfunc(tmp_path / "c", classifier, fls, market["windowed"].transforms)
    lstm = fitted(TinyClassifier, market["windowed"])
    with pytest.raises(ConfigError, match=r"no model class of kind 'tiny_classifier'.*models=\{'tiny_classifier'"):
        save_pyfunc(tmp_path / "d", lstm, fls, market["windowed"].transforms)  # a class outside the zoo


MANY_CHILD = textwrap.dedent("""
    import sys
    import mlflow.pyfunc
    import pandas as pd

    frame = pd.read_parquet(sys.argv[1])
    for folder in sys.argv[2:]:
        mlflow.pyfunc.load_model(folder).predict(frame).to_parquet(folder + ".out.parquet")
""")


def test_every_model_type_saves_through_mlflow_and_predicts_the_same_in_a_fresh_process(market, tmp_path):
    """The contract over the zoo: build, one epoch, save as an MLflow model, load in a fresh process."""
    from atlas.models import FitOptions, make_model, model_class, model_types

    with MarketStore(market["url"]) as store:
        windowed_regression = market["fls"].dataset(train=TRAIN, test=TEST, store=store, window=10, cache=False)
    datasets = {("classification", False): market["data"], ("classification", True): market["windowed"],
                ("regression", False): market["regression"], ("regression", True): windowed_regression}
    raw = market["raw"].iloc[-40:]
    expected, folders = {}, []
    for kind in model_types(baseline=False):
        cls = model_class(kind)
        data = datasets[(cls.task, bool(cls.sequence))]
        small = {"units": [4]} if "lstm" in kind or "gru" in kind else {}
        model = make_model(kind, small, DataShape(data.n_features, data.n_classes or None, data.window))
        model.fit(data.inputs("train"), data.y_train, options=FitOptions(epochs=1, patience=None, seed=1))
        save_pyfunc(tmp_path / kind, model, market["fls"], data.transforms)
        expected[kind] = mlflow.pyfunc.load_model(str(tmp_path / kind)).predict(raw)
        folders.append(str(tmp_path / kind))
    raw.to_parquet(tmp_path / "raw.parquet")
    child = subprocess.run([sys.executable, "-c", MANY_CHILD, str(tmp_path / "raw.parquet"), *folders],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    assert len(expected) == 12
    for kind, frame in expected.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{kind}.out.parquet"), frame, obj=kind)
