"""What the runner reads from the MLflow Model Registry: which version an alias points at, and its model.

The runner only reads: promotion (``atlas promote``) moves the aliases. A name or an alias that does not exist, or a
registry that cannot be reached, is a :class:`~atlas.exceptions.ConfigError` that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from atlas.config import mask_url
from atlas.exceptions import ConfigError


@dataclass(frozen=True)
class ModelRef:
    """One registered model version, as an alias resolved it.

    Attributes:
        name: the registered model. alias: the alias it was resolved by. version: the version number (text).
        run_id: the MLflow run that trained it (may be empty). uri: ``models:/NAME/VERSION``.
    """

    name: str
    alias: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class Registry:
    """Reads aliases and loads model artifacts from one tracking server or store.

    Args:
        tracking_uri: the MLflow tracking URI (the registry is the tracking store's).
    """

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        from atlas.runs import probe_tracking

        probe_tracking(tracking_uri)  # an unreachable server is said in seconds, not after MLflow's retries
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def resolve(self, name: str, alias: str) -> ModelRef:
        """The version ``alias`` points at.

        Raises:
            ConfigError: no such model or alias (with the ones there are), or the registry is unreachable.
        """
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            raise ConfigError(self._explain(name, alias, error)) from None
        except OSError as error:
            msg = f"the model registry at {mask_url(self.tracking_uri)} cannot be reached ({error}); check MLFLOW_TRACKING_URI"
            raise ConfigError(msg) from None
        return ModelRef(name, alias, str(version.version), version.run_id or "")

    def _explain(self, name: str, alias: str, error) -> str:
        from mlflow.exceptions import MlflowException

        where = mask_url(self.tracking_uri)
        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            names = sorted(m.name for m in self.client.search_registered_models(max_results=50))
            listed = ", ".join(names) or "none yet: register one with `atlas promote RUN_ID --name NAME`"
            return f"no registered model {name!r} in {where}; registered models: {listed}"
        except OSError as os_error:
            return f"the model registry at {where} cannot be reached ({os_error}); check MLFLOW_TRACKING_URI"
        aliases = ", ".join(f"{a}" for a in sorted(model.aliases or {})) or "none"
        if not model.aliases:
            return (f"model {name!r} has no alias {alias!r} (it has no alias yet); promote a version with "
                    f"`atlas promote {name} --to {alias}`")
        return (f"model {name!r} has no alias {alias!r}; its aliases: {aliases} "
                f"(`atlas models {name}` lists its versions)")

    def test_metrics(self, run_id: str) -> dict[str, float]:
        """The ``test_*`` metrics of the run that trained a version (empty when unknown)."""
        if not run_id:
            return {}
        try:
            metrics = self.client.get_run(run_id).data.metrics
        except Exception:  # noqa: BLE001 (a deleted run leaves the model servable, without live bounds)
            return {}
        return {k: float(v) for k, v in metrics.items() if k.startswith("test_")}

    def load(self, ref: ModelRef):
        """The version's model artifact (``atlas.models.ModelArtifact``)."""
        from atlas.models import load_artifact

        try:
            return load_artifact(ref.uri, tracking_uri=self.tracking_uri)
        except ConfigError:
            raise
        except Exception as error:  # noqa: BLE001 (any download or read failure is the same to the runner)
            msg = f"version {ref.version} of {ref.name!r} could not be loaded: {type(error).__name__}: {error}"
            raise ConfigError(msg) from None


__all__ = ["ModelRef", "Registry"]
