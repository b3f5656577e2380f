"""The model artifact: a versioned folder that saves, loads without unpickling, and predicts as the model in memory."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from atlas.data import FeatureLabelSet, LogReturns
from atlas.data.dataset import ClassLabels, FittedScaler, Transforms, apply_transforms, make_dataset
from atlas.exceptions import ConfigError
from atlas.models import DataShape, FitOptions, MajorityClassifier, make_model
from atlas.models._artifact import ARTIFACT_FORMAT, ModelArtifact
from atlas.models._fetch import load_artifact
from atlas.models._packaging import log_pyfunc

FLS = FeatureLabelSet(features=[LogReturns().bitstamp().lookback(1), LogReturns().itbit().lookback(1),
                                LogReturns().bitstamp().lookback(5)],
                      labels=[LogReturns().bitstamp().lookforward(1)])
INDEX = pd.date_range("2024-01-01", periods=600, freq="1min", tz="UTC")


class CountingMajority(MajorityClassifier):
    """A model class outside the zoo: it saves and loads as the majority baseline, under its own kind."""

    kind = "counting_majority"


def raw_frame() -> pd.DataFrame:
    """Raw feature values and a label that leans on the first feature, on a one-minute grid."""
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1e-3, size=(len(INDEX), 3)) * [1, 2, 3] + [1e-4, 0, -2e-4]
    frame = pd.DataFrame(values, index=INDEX, columns=FLS.feature_names)
    frame[FLS.label_names[0]] = 0.5 * values[:, 0] + rng.normal(0, 1e-3, len(INDEX))
    return frame


def dataset(window: int | None):
    return make_dataset(raw_frame(), features=FLS.feature_names, label=FLS.label_names[0],
                        train=(INDEX[0], INDEX[399]), test=(INDEX[400], INDEX[-1]),
                        labels=ClassLabels("percentile", (0.33, 0.67)), horizon=1, window=window)


@pytest.fixture(scope="module", params=["dense", "lstm"])
def trained(request):
    """A fitted dense network (served by NumPy) or LSTM (served by Keras), with its data."""
    window = 5 if request.param == "lstm" else None
    data = dataset(window)
    kind, params = ("lstm_classifier", {"units": [4]}) if window else ("dnn_classifier", {"hidden_units": [8]})
    model = make_model(kind, params, DataShape(data.n_features, data.n_classes, data.window))
    model.fit(data.inputs("train"), data.y_train, options=FitOptions(epochs=1, patience=None, seed=1))
    return {"model": model, "data": data, "artifact": ModelArtifact(model, FLS, data.transforms)}


@pytest.fixture(scope="module")
def dense():
    data = dataset(None)
    model = make_model("dnn_classifier", {"hidden_units": [8]}, DataShape(data.n_features, data.n_classes))
    model.fit(data.X_train, data.y_train, options=FitOptions(epochs=1, patience=None, seed=1))
    return {"model": model, "data": data}


def test_a_saved_artifact_predicts_bit_identically_to_the_one_in_memory(trained, tmp_path):
    model, data, artifact = trained["model"], trained["data"], trained["artifact"]
    raw = raw_frame().iloc[400:][FLS.feature_names]
    folder = artifact.save(tmp_path / "atlas")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["meta.json", "featureset.json", "transforms.json", "model", *(["dense.npz"] if model.kind.startswith(
            "dnn") else [])])
    assert not list(folder.rglob("*.pkl"))
    loaded = ModelArtifact.load(folder)
    expected, got = artifact.predict_frame(raw), loaded.predict_frame(raw)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.index.equals(data.index_test)
    np.testing.assert_allclose(got.filter(like="p_").to_numpy(), model.predict_proba(data.inputs("test")),
                               atol=1e-5)
    assert (loaded.task, loaded.class_names, loaded.window, loaded.feature_names) == (
        "classification", ("down", "flat", "up"), data.window, FLS.feature_names)
    assert loaded.transforms == data.transforms and loaded.featureset == FLS
    assert loaded.meta["format"] == ARTIFACT_FORMAT


def test_predict_one_on_the_last_window_is_the_last_row_of_predict_frame(trained, tmp_path):
    loaded = ModelArtifact.load(trained["artifact"].save(tmp_path / "atlas"))
    raw = raw_frame()[FLS.feature_names].iloc[-20:]  # fewer rows than a batch: the fast predictor per input
    frame = loaded.predict_frame(raw)
    last = raw.to_numpy()[-(loaded.window or 1):] if loaded.window else raw.to_numpy()[-1]
    np.testing.assert_array_equal(loaded.predict_one(last), frame.iloc[-1, 1:].to_numpy(dtype=float))
    whole = loaded.predict_frame(raw_frame()[FLS.feature_names])  # a batch: the same numbers to rounding
    np.testing.assert_allclose(loaded.predict_one(last), whole.iloc[-1, 1:].to_numpy(dtype=float), rtol=1e-6)
    with pytest.raises(ConfigError, match="features"):
        loaded.predict_one(np.zeros(2))


def test_a_window_across_a_gap_gets_no_prediction_as_training_dropped_it(trained, tmp_path):
    model, artifact = trained["model"], ModelArtifact.load(trained["artifact"].save(tmp_path / "atlas"))
    raw = raw_frame()
    gappy = raw.drop(raw.index[450:460])  # ten minutes missing inside the test rows
    whole, got = artifact.predict_frame(raw[FLS.feature_names]), artifact.predict_frame(gappy[FLS.feature_names])
    if artifact.window is None:  # a model of rows reads no window: every row is predicted
        assert got.index.equals(gappy.index) and got.attrs == {"windows_across_gaps": 0, "windows_dropped": 0}
        return
    window = artifact.window
    across = gappy.index[460 - 10:460 - 10 + window - 1]  # the rows after the gap whose window reaches over it
    assert got.attrs == {"windows_across_gaps": window - 1, "windows_dropped": window - 1}
    assert got.index.equals(gappy.index[window - 1:].difference(across))
    pd.testing.assert_frame_equal(got, whole.loc[got.index], check_exact=True)  # the same windows: the same numbers
    data = make_dataset(gappy, features=FLS.feature_names, label=FLS.label_names[0], train=(INDEX[0], INDEX[399]),
                        test=(INDEX[400], INDEX[-1]), labels=ClassLabels("percentile", (0.33, 0.67)), horizon=1,
                        window=window, bucket="1min")
    assert data.report["test"]["windows_dropped"] == window - 1
    assert got.index[got.index >= INDEX[400 + window - 1]].equals(data.index_test)  # served as trained
    kept = ModelArtifact(model, FLS, dataclasses.replace(artifact.transforms, allow_gaps=True))
    joined = kept.predict_frame(gappy[FLS.feature_names])
    assert joined.index.equals(gappy.index[window - 1:])
    assert joined.attrs == {"windows_across_gaps": window - 1, "windows_dropped": 0}
    legacy = {k: v for k, v in artifact.transforms.to_dict().items() if k != "allow_gaps"}  # an older artifact
    assert Transforms.from_dict(legacy).allow_gaps is True  # trained on windows across gaps: served so


def test_a_newer_format_and_a_folder_that_is_no_artifact_are_refused(dense, tmp_path):
    folder = ModelArtifact(dense["model"], FLS, dense["data"].transforms).save(tmp_path / "atlas")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format": 2}))
    with pytest.raises(ConfigError, match=r"has artifact format 2, newer than this Atlas reads \(1\); upgrade "
                                          r"Atlas \(pip install -U gryphon-atlas\) to load it"):
        ModelArtifact.load(folder)
    (folder / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "format"}))
    assert ModelArtifact.load(folder).task == "classification"  # written before the format was recorded

    with pytest.raises(ConfigError, match="is not an Atlas model artifact: it has no meta.json"):
        ModelArtifact.load(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "meta.json").write_text(json.dumps({"name": "someone else's"}))
    with pytest.raises(ConfigError, match="is not an Atlas model artifact: its meta.json lacks"):
        ModelArtifact.load(tmp_path / "other")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        ModelArtifact(dense["model"], FLS, dense["data"].transforms).save(folder)


def test_a_model_class_outside_the_zoo_is_imported_by_name_never_unpickled(tmp_path):
    data = dataset(None)
    model = CountingMajority({}, DataShape(data.n_features, data.n_classes))
    model.fit(data.X_train, data.y_train)
    with pytest.raises(ConfigError, match=r"no model class of kind 'counting_majority'.*models=\{"):
        ModelArtifact(model, FLS, data.transforms)
    folder = ModelArtifact(model, FLS, data.transforms, models={model.kind: CountingMajority}).save(tmp_path / "a")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["model_class"] == f"{__name__}:CountingMajority"
    loaded = ModelArtifact.load(folder)
    assert type(loaded.model) is CountingMajority
    assert loaded.predict_frame(raw_frame()[FLS.feature_names])["class"].nunique() == 1
    (folder / "meta.json").write_text(json.dumps({**meta, "model_class": "atlas_no_such_module:CountingMajority"}))
    with pytest.raises(ConfigError, match="the model's class atlas_no_such_module:CountingMajority does not "
                                          "import here"):
        ModelArtifact.load(folder)
    assert type(ModelArtifact.load(folder, models={model.kind: CountingMajority}).model) is CountingMajority


def test_transforms_round_trip_through_json_the_old_dict_form_too():
    transforms = dataset(5).transforms
    again = Transforms.from_dict(json.loads(json.dumps(transforms.to_dict())))
    assert again == transforms and again.window == 5 and again.class_names == ("down", "flat", "up")
    raw = raw_frame()
    np.testing.assert_array_equal(again.inputs(raw), transforms.inputs(raw))
    old = {"scaler": transforms.scaler.to_dict(), "labels": None}  # as early runs logged them: no window
    assert Transforms.from_dict(old) == Transforms(FittedScaler.from_dict(old["scaler"]))
    np.testing.assert_array_equal(apply_transforms(raw, old), transforms.inputs(raw))
    with pytest.raises(ConfigError, match="a dict with a 'scaler'"):
        Transforms.from_dict({"labels": None})


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """MLflow on SQLite under tmp_path; the process-wide URI is set only while a model is logged."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("artifact", artifact_location=(tmp_path / "artifacts").as_uri())
    yield uri, experiment
    mlflow.set_tracking_uri(None)


def test_a_logged_model_holds_no_pickle_and_no_code_and_loads_by_uri(dense, tracking, tmp_path):
    uri, experiment = tracking
    raw = raw_frame()[FLS.feature_names]
    with mlflow.start_run(experiment_id=experiment) as run:
        info = log_pyfunc(dense["model"], FLS, dense["data"].transforms, registered_model_name="artifact_test")
    mlflow.MlflowClient(uri).set_registered_model_alias("artifact_test", "production", "1")
    folder = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "download")))
    assert not list(folder.rglob("*.pkl")) and not (folder / "code").exists()
    assert (folder / "_pyfunc_model.py").is_file() and (folder / "artifacts" / "atlas" / "meta.json").is_file()
    expected = mlflow.pyfunc.load_model(info.model_uri).predict(raw)
    mlflow.set_tracking_uri(None)  # load_artifact takes the server it reads, not the process's default

    for model_uri in (f"runs:/{run.info.run_id}/model", "models:/artifact_test@production", info.model_uri):
        artifact = load_artifact(model_uri, tracking_uri=uri)
        pd.testing.assert_frame_equal(artifact.predict_frame(raw), expected, check_exact=True)
    kept = load_artifact(f"runs:/{run.info.run_id}/model", client=mlflow.MlflowClient(uri),
                         dst_path=tmp_path / "kept")
    assert kept.class_names == ("down", "flat", "up")
    assert sorted(p.name for p in (tmp_path / "kept").rglob("*") if p.is_file() and p.parent.name == "atlas") == [
        "dense.npz", "featureset.json", "meta.json", "transforms.json"]  # only the artifact folder came down
    assert load_artifact(folder).predict_frame(raw).equals(expected)  # a local pyfunc folder
    with pytest.raises(ConfigError, match="no Atlas model artifact there"):
        load_artifact("models:/artifact_test@nowhere", tracking_uri=uri)


BLOCKED_CHILD = textwrap.dedent("""
    import json, sys

    class Blocked:  # as on a trading server where these are not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("matplotlib", "ray", "optuna"):
                raise ImportError(f"{name} is blocked")

    sys.meta_path.insert(0, Blocked())
    import pandas as pd
    from atlas.models import load_artifact

    frame = pd.read_parquet(sys.argv[1])
    for folder in sys.argv[2:]:
        load_artifact(folder).predict_frame(frame).to_parquet(folder + ".out.parquet")
    heavy = ("matplotlib", "ray", "optuna", "tensorflow")
    print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
""")


def test_an_artifact_loads_and_predicts_without_matplotlib_ray_or_optuna(trained, tmp_path):
    raw = raw_frame()[FLS.feature_names].iloc[-40:]
    folder = trained["artifact"].save(tmp_path / "atlas")
    raw.to_parquet(tmp_path / "raw.parquet")
    child = subprocess.run([sys.executable, "-c", BLOCKED_CHILD, str(tmp_path / "raw.parquet"), str(folder)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    imported = json.loads(child.stdout.strip().splitlines()[-1])
    assert imported == ([] if trained["artifact"].network is not None else ["tensorflow"])
    pd.testing.assert_frame_equal(pd.read_parquet(f"{folder}.out.parquet"), trained["artifact"].predict_frame(raw),
                                  check_freq=False, check_exact=True)
