"""load_artifact: a model artifact from a folder or an MLflow model URI, without going through MLflow's pyfunc.

A model runner serves ``models:/NAME@production``: it needs the artifact folder of the logged pyfunc (``<model>/
artifacts/atlas``), not the pyfunc wrapper, its environment checks or its code file. Only that folder is
downloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from atlas.exceptions import ConfigError
from atlas.models._artifact import META_FILE, ModelArtifact

#: Where a pyfunc model logged by ``log_pyfunc`` keeps the artifact folder.
ARTIFACT_PATH = "artifacts/atlas"
_SCHEMES = ("runs:/", "models:/")


def load_artifact(model_uri_or_folder: str | Path, *, tracking_uri: str | None = None, client=None,
                  dst_path: str | Path | None = None, models: Mapping[str, type] | None = None) -> ModelArtifact:
    """The :class:`ModelArtifact` of a logged model (an MLflow URI) or of a local folder.

    Example (with a model logged as in tests/models/test_artifact.py)::

        artifact = load_artifact("models:/btc_next_minute@production", tracking_uri="sqlite:///mlflow.db")
        artifact.predict_one(latest_row)

    Args:
        model_uri_or_folder: ``runs:/<run_id>/<name>``, ``models:/<name>@<alias>``, ``models:/<name>/<version>``
            or ``models:/<model_id>``; or a local folder: an artifact folder (with ``meta.json``) or a saved
            pyfunc model folder (with ``MLmodel``).
        tracking_uri: the MLflow tracking (and registry) server; with neither it nor ``client``, MLflow's
            process-wide default.
        client: an ``MlflowClient`` to use instead of ``tracking_uri``.
        dst_path: where to download the folder (kept); by default a temporary folder, removed once loaded.
        models: as :meth:`ModelArtifact.load`.

    Raises:
        ConfigError: the URI names no model, or what it names is not an Atlas model artifact (or a newer one).
    """
    source = str(model_uri_or_folder)
    if not source.startswith(_SCHEMES) and "://" not in source:
        folder = Path(source)
        if not (folder / META_FILE).is_file() and (folder / "MLmodel").is_file():
            folder = folder / ARTIFACT_PATH
        return ModelArtifact.load(folder, models=models)
    if dst_path is not None:
        return ModelArtifact.load(_download(source, tracking_uri, client, Path(dst_path)), models=models)
    with tempfile.TemporaryDirectory(prefix="atlas-artifact-") as staging:
        return ModelArtifact.load(_download(source, tracking_uri, client, Path(staging)), models=models)


def _download(uri: str, tracking_uri: str | None, client, into: Path) -> Path:
    """Downloads only the artifact folder of the model at ``uri`` into ``into``; returns the local folder."""
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = client or MlflowClient(tracking_uri, registry_uri=tracking_uri)
    try:
        location = _model_location(uri.rstrip("/"), client)
        into.mkdir(parents=True, exist_ok=True)
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/{ARTIFACT_PATH}",
                                                    tracking_uri=client.tracking_uri, dst_path=str(into))
    except MlflowException as error:
        msg = (f"{uri}: no Atlas model artifact there ({error.message}); give a model logged with "
               f"atlas.models.log_pyfunc, as runs:/<run_id>/<name>, models:/<name>@<alias> or models:/<model_id>")
        raise ConfigError(msg) from None
    return Path(local)


def _model_location(uri: str, client) -> str:
    """Where the model's files are, resolved with ``client`` (MLflow's own ``runs:/`` and ``models:/`` resolution
    reads the process-wide registry URI instead of the server given)."""
    if uri.startswith("runs:/"):
        run_id, _, name = uri.removeprefix("runs:/").partition("/")
        run = client.get_run(run_id)
        page_token = None
        while name:  # a model logged in the run (MLflow 3): its own artifact location
            page = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                               filter_string=f"name = '{name}'", page_token=page_token)
            found = next((m for m in page if m.source_run_id == run_id), None)
            if found is not None:
                return found.artifact_location
            if not page.token:
                break
            page_token = page.token
        return f"{run.info.artifact_uri}/{name}"  # a model in the run's own artifacts (MLflow 2)
    if not uri.startswith("models:/"):
        return uri  # a storage URI
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    found = get_model_name_and_version(client, uri)
    if len(found) == 1:  # models:/<model_id>
        return client.get_logged_model(found[0]).artifact_location
    return client.get_model_version_download_uri(*found)


__all__ = ["ARTIFACT_PATH", "load_artifact"]
