"""Settings from one config file (atlas.toml, or [tool.atlas] in pyproject.toml) under the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas.config import CONFIG_KEYS, Settings, read_config
from atlas.exceptions import ConfigError

TOML = """
home = "state"
[store]
url = "postgresql+psycopg://atlas@db.internal/market"
extra_venues = ["cme", "oanda"]
[tracking]
mlflow_uri = "http://mlflow.internal:5000"
artifact_root = "s3://atlas-artifacts/mlflow"
optuna_storage = "postgresql+psycopg://atlas@db.internal/optuna"
s3_endpoint_url = "http://127.0.0.1:9000"
[serving]
redis_url = "redis://cache.internal:6379/1"
[compute]
ray_address = "ray-head.internal:6379"
"""


def test_an_atlas_toml_sets_every_location_and_the_environment_wins(tmp_path):
    (tmp_path / "atlas.toml").write_text(TOML)
    settings = Settings.from_env({}, folder=tmp_path)
    assert settings.home == (tmp_path / "state").resolve()  # relative to the file
    assert settings.store.url == "postgresql+psycopg://atlas@db.internal/market"
    assert settings.store.extra_venues == ("cme", "oanda")
    assert settings.tracking.mlflow_uri == "http://mlflow.internal:5000"
    assert settings.tracking.artifact_root == "s3://atlas-artifacts/mlflow"
    assert settings.tracking.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.serving.redis_url == "redis://cache.internal:6379/1"
    assert settings.compute.ray_address == "ray-head.internal:6379"
    assert settings.origins["ATLAS_GDS_URL"] == "default"  # not in the file
    assert {v for k, v in settings.origins.items() if k != "ATLAS_GDS_URL"} == {str(tmp_path / "atlas.toml")}
    env = {"ATLAS_STORE_URL": "postgresql+psycopg://atlas:pw@other/market", "ATLAS_RAY_ADDRESS": ""}
    over = Settings.from_env(env, folder=tmp_path)
    assert over.store.url == env["ATLAS_STORE_URL"] and over.origins["ATLAS_STORE_URL"] == "environment"
    assert over.compute.ray_address == "ray-head.internal:6379"  # an empty variable is unset, as before


def test_pyproject_tool_atlas_and_atlas_config_and_no_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "desk"\n[tool.atlas.store]\nurl = "sqlite:///x.db"\n')
    assert Settings.from_env({}, folder=tmp_path).store.url == "sqlite:///x.db"
    (tmp_path / "atlas.toml").write_text('[store]\nurl = "sqlite:///y.db"\n')  # atlas.toml comes first
    assert Settings.from_env({}, folder=tmp_path).store.url == "sqlite:///y.db"
    other = tmp_path / "elsewhere.toml"
    other.write_text('[store]\nurl = "sqlite:///z.db"\n')
    assert Settings.from_env({"ATLAS_CONFIG": str(other)}, folder=tmp_path).store.url == "sqlite:///z.db"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "pyproject.toml").write_text('[project]\nname = "no atlas table"\n')
    settings = Settings.from_env({"ATLAS_HOME": str(empty / "h")}, folder=empty)
    assert settings.store.url == f"sqlite:///{empty / 'h' / 'market.db'}"
    assert settings.origins["ATLAS_STORE_URL"] == "default"
    # a dict environment alone reads no file: tests do not depend on the folder they run in
    assert Settings.from_env({"ATLAS_HOME": str(empty / "h")}).origins["ATLAS_STORE_URL"] == "default"


@pytest.mark.parametrize(("text", "words"), [
    ('[store]\nurll = "x"\n', "sets 'store.urll', which Atlas does not know; it knows home, store.url"),
    ('[tracking]\nmlflow_uri = 5000\n', "sets tracking.mlflow_uri to 5000; give text"),
    ('[store\nurl = "x"\n', "cannot be read as TOML"),
])
def test_a_bad_config_file_names_the_file_and_the_key(tmp_path, text, words):
    path = tmp_path / "atlas.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        Settings.from_env({}, folder=tmp_path)
    with pytest.raises(ConfigError, match="no config file at .*missing.toml.*ATLAS_CONFIG"):
        Settings.from_env({"ATLAS_CONFIG": str(tmp_path / "missing.toml")})


def test_every_config_key_reaches_a_setting(tmp_path):
    values = {name: f"value-{k}" for k, name in enumerate(CONFIG_KEYS)}
    lines, table = [], None
    for name, value in values.items():
        head, _, key = name.rpartition(".")
        if head != table and head:
            lines.append(f"[{head}]")
            table = head
        lines.append(f'{key} = "{value}"')
    lines.insert(0, lines.pop(next(i for i, line in enumerate(lines) if line.startswith("home"))))
    (tmp_path / "atlas.toml").write_text("\n".join(lines) + "\n")
    assert set(read_config(tmp_path / "atlas.toml")) == set(CONFIG_KEYS.values())
    settings = Settings.from_env({}, folder=tmp_path)
    flat = repr(settings)
    for name, value in values.items():
        assert value in flat or str(Path(tmp_path / value)) in flat, name
