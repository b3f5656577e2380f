"""The Registry: register a trial's logged model as a version (alias ``challenger``), move ``production`` to it
behind the guardrails, roll back, and say what happened."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

from atlas.config import Settings, mask_text, mask_url
from atlas.exceptions import AtlasError, ConfigError, MissingDataError
from atlas.registry import _guardrails as rails
from atlas.registry._history import CHALLENGER, PRODUCTION, Move, history_text, production_stack, read_history
from atlas.registry._runs import best_run, read_candidate
from atlas.registry._scoring import _load, comparable, score_model
from atlas.runs import SIGNIFICANCE_ARTIFACT, Tag, fetch_artifact, probe_tracking, quoted


@dataclass(frozen=True)
class Promotion:
    """What a move did: the model, the version moved to, the one before, the guardrails and the move itself."""

    name: str
    version: str
    previous: str | None
    guardrails: list = field(default_factory=list)
    move: Move | None = None


class Registry:
    """Atlas's side of the MLflow Model Registry: versions, the ``challenger`` and ``production`` aliases, and the
    guardrails between them. The serving runtime reads ``models:/NAME@production`` only.

    Example (after ``atlas train experiments/quickstart.py``)::

        registry = Registry(Settings.from_env())
        run_id = registry.best_run("quickstart")                    # the lowest validation loss
        registry.register(run_id, "itbit-next-minute", by="ana@desk")
        promotion = registry.promote("itbit-next-minute", by="ana@desk", command="notebook")
        registry.rollback("itbit-next-minute", by="ana@desk", command="notebook")

    Args:
        settings: where MLflow (its registry is the tracking store) and the market store are.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uri = settings.tracking.mlflow_uri
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            probe_tracking(self.uri)  # seconds, not MLflow's minutes of retries
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    # registering ------------------------------------------------------------------------------------------------

    def best_run(self, work_spec: str, *, metric: str = "best_val_loss", work_unit: str | None = None) -> str:
        """The run id of the latest execution's best trial with a logged model (see ``_runs.best_run``)."""
        return self._call(lambda: best_run(self.uri, work_spec, metric=metric, work_unit=work_unit)).run_id

    def register(self, run_id: str, name: str, *, by: str = "unknown"):
        """Registers the logged model of trial run ``run_id`` as a new version of ``name`` (created if new), with a
        description and tags saying what it is, and points the ``challenger`` alias at it.

        Returns:
            The new ``mlflow.entities.model_registry.ModelVersion``.

        Raises:
            ConfigError: an unknown run, a run without a logged model, a name MLflow refuses, an unreachable
                registry. Nothing is registered then.
        """
        candidate = self._call(lambda: read_candidate(self.client, run_id, self.uri))
        client, created = self.client, False
        try:
            self._call(lambda: client.get_registered_model(name), missing=None)
        except _Missing:
            self._call(lambda: client.create_registered_model(
                name, description="Registered by Atlas (atlas promote): versions are trials of sweeps; the "
                                  "production alias is what serving loads."))
            created = True
        # the source is where the logged model's files are: a ``models:/m-...`` source would be resolved through
        # MLflow's process-wide tracking URI, not this registry's
        source = self._call(lambda: client.get_logged_model(candidate.model_id)).artifact_location
        try:
            version = self._call(lambda: client.create_model_version(
                name, source=source, run_id=run_id, model_id=candidate.model_id,
                tags={**candidate.version_tags(), Tag.REGISTERED_BY: by}, description=candidate.description()))
            self._call(lambda: client.set_registered_model_alias(name, CHALLENGER, version.version))
        except BaseException:
            if created:
                self._call(lambda: client.delete_registered_model(name))
            raise
        return version

    # moving aliases ---------------------------------------------------------------------------------------------

    def check(self, name: str, *, feed: str = "redis") -> tuple[str, str | None, list]:
        """The challenger's version, production's version (or None), and the four guardrails, each computed."""
        from atlas.data import MarketStore

        if feed not in rails.FEEDS:
            msg = f"feed must be one of {', '.join(rails.FEEDS)}, got feed={feed!r}"
            raise ConfigError(msg)
        model = self._model(name)
        challenger = self._alias(name, CHALLENGER, f"register one first: atlas promote RUN_ID --name {name}")
        production = model.aliases.get(PRODUCTION)
        if production is not None and str(production) == str(challenger.version):
            msg = f"version {challenger.version} of {name!r} is already production; register a new challenger"
            raise ConfigError(msg)
        window = self._window(challenger)
        shown = f"{window[0]} .. {window[1]}"
        ours = self._load(name, challenger.version)
        with MarketStore.from_settings(self.settings) as store:
            scored = score_model(ours, *window, store=store)
            first = self._versus(name, production, ours, scored, window, shown, store)
            stored = set(store.series_registry()["name"]) if feed == "store" else None
        execution = challenger.tags.get(Tag.EXECUTION)
        document, why = self._verdict(execution)
        guardrails = [first, rails.significant(document, challenger.run_id, execution=execution, why_missing=why),
                      rails.not_degenerate(scored), rails.servable(ours.featureset, feed, stored=stored)]
        return str(challenger.version), None if production is None else str(production), guardrails

    def promote(self, name: str, *, feed: str = "redis", force: bool = False, reason: str | None = None,
                by: str = "unknown", command: str = "") -> Promotion:
        """Moves ``production`` to the challenger when every guardrail passes (or ``force`` with a ``reason``).

        Raises:
            PromotionRefused: a guardrail failed (``error.guardrails`` has all four); nothing moved.
            ConfigError: ``force`` without a reason, an unknown model, no challenger, an unreachable registry.
        """
        if force and not (reason or "").strip():
            msg = "--force needs --reason TEXT: the reason is recorded on the version with the move"
            raise ConfigError(msg)
        version, previous, guardrails = self.check(name, feed=feed)
        failed = [g for g in guardrails if not g.passed]
        if failed and not force:
            lines = "; ".join(g.line() for g in failed)
            msg = (f"promotion of {name!r} version {version} to {PRODUCTION} refused: {lines}. Nothing was moved; "
                   f"to promote anyway: atlas promote {name} --to {PRODUCTION} --force --reason TEXT")
            raise rails.PromotionRefused(msg, guardrails)
        text = reason.strip() if force else "guardrails passed: " + "; ".join(
            f"{g.number} {g.detail}" for g in guardrails)
        move = Move(PRODUCTION, version, previous, _now(), by, command, text, bool(force))
        self._move(name, move, guardrails)
        return Promotion(name, version, previous, guardrails, move)

    def rollback(self, name: str, *, by: str = "unknown", command: str = "") -> Promotion:
        """Moves ``production`` back to the version it held before the current one (reason "rollback").

        Raises:
            ConfigError: an unknown model, no production version, or none before it.
        """
        model = self._model(name)
        current = model.aliases.get(PRODUCTION)
        if current is None:
            msg = f"{name!r} has no {PRODUCTION} version: nothing to roll back"
            raise ConfigError(msg)
        moves = read_history(model)
        stack = production_stack(moves)
        target = stack[-2] if len(stack) >= 2 and stack[-1] == str(current) else None
        if target is None and not moves:  # moved outside Atlas's history: the version's own record
            version = self._call(lambda: self.client.get_model_version(name, str(current)))
            target = version.tags.get(Tag.PROMOTED_FROM)
        if not target or target == "none":
            msg = (f"{name!r} has no previous {PRODUCTION} version to roll back to: version {current} is the first "
                   f"that held it")
            raise ConfigError(msg)
        self._call(lambda: self.client.get_model_version(name, target),
                   missing=f"version {target} of {name!r}, production before {current}, no longer exists")
        move = Move(PRODUCTION, target, str(current), _now(), by, command, "rollback", False, kind="rollback")
        self._move(name, move, None)
        return Promotion(name, target, str(current), [], move)

    # reading ----------------------------------------------------------------------------------------------------

    def versions(self, name: str) -> list[dict]:
        """Every version of ``name``, newest first: version, run id, created (UTC), test accuracy, aliases."""
        aliases: dict[str, list[str]] = {}
        for alias, number in self._model(name).aliases.items():  # search results may leave aliases out
            aliases.setdefault(str(number), []).append(alias)
        found = self._call(lambda: self.client.search_model_versions(f"name = {quoted(name)}"))
        rows = []
        for version in sorted(found, key=lambda v: int(v.version), reverse=True):
            try:
                metrics = self.client.get_run(version.run_id).data.metrics if version.run_id else {}
            except Exception:  # noqa: BLE001 - a deleted run: the version is still listed
                metrics = {}
            created = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC)
            rows.append({"version": str(version.version), "run_id": version.run_id,
                         "created": created.strftime("%Y-%m-%d %H:%M:%S"),
                         "test_accuracy": metrics.get("test_accuracy"), "aliases": sorted(aliases.get(str(version.version), []))})
        return rows

    def history(self, name: str) -> list[Move]:
        """The alias moves of ``name``, newest first."""
        return list(reversed(read_history(self._model(name))))

    # internals --------------------------------------------------------------------------------------------------

    def _versus(self, name, production, ours, scored, window, shown, store):
        if production is None:
            return rails.beats_production(scored, None, version=None, window=shown)
        theirs = self._load(name, production)
        why_not = comparable(ours, theirs)
        if why_not is not None:
            return rails.beats_production(scored, None, version=str(production), window=shown, why_not=why_not)
        try:
            their_score = score_model(theirs, *window, store=store)
        except AtlasError as error:
            return rails.Guardrail(1, "beats production", False, f"production version {production} cannot be scored "
                                   f"on {shown}: {error}", {"production_version": str(production)})
        return rails.beats_production(scored, their_score, version=str(production), window=shown)

    def _load(self, name: str, version) -> object:
        """The model of a version, loaded from where its artifacts are (not through MLflow's global registry)."""
        found = self._call(lambda: self.client.get_model_version(name, str(version)))
        if getattr(found, "model_id", None):
            uri = self._call(lambda: self.client.get_logged_model(found.model_id)).artifact_location
        else:
            uri = self._call(lambda: self.client.get_model_version_download_uri(name, str(version)))
        return _load(uri)

    def _window(self, version) -> tuple[str, str]:
        text = version.tags.get(Tag.TEST_WINDOW)
        try:
            start, end = json.loads(text)
        except (TypeError, ValueError):
            candidate = self._call(lambda: read_candidate(self.client, version.run_id, self.uri))
            if candidate.test is None:
                msg = (f"version {version.version} does not say its test window (tag {Tag.TEST_WINDOW}) and its run "
                       f"{version.run_id} has no work unit run that does; register a trial of a sweep")
                raise ConfigError(msg) from None
            start, end = candidate.test
        return str(start), str(end)

    def _verdict(self, execution: str | None) -> tuple[dict | None, str | None]:
        if not execution:
            return None, "the version does not name its execution run"
        with tempfile.TemporaryDirectory(prefix="atlas-registry-") as folder:
            try:
                path = fetch_artifact(self.uri, execution, SIGNIFICANCE_ARTIFACT, folder)
            except MissingDataError as error:
                return None, str(error)
            return json.loads(path.read_text()), None

    def _move(self, name: str, move: Move, guardrails: list | None) -> None:
        """Points the alias at the version and records the move; if recording fails, the alias goes back."""
        client = self.client
        model = self._model(name)
        self._call(lambda: client.set_registered_model_alias(name, move.alias, move.version))
        try:
            for key, value in move.tags(guardrails).items():
                client.set_model_version_tag(name, move.version, key, value)
            client.set_registered_model_tag(name, Tag.ALIAS_HISTORY, history_text([*read_history(model), move]))
            if str(model.aliases.get(CHALLENGER)) == move.version:
                client.delete_registered_model_alias(name, CHALLENGER)  # promoted: no longer a challenger
        except Exception as error:  # noqa: BLE001 - any failure to record: undo the move, then say why
            if move.previous is None:
                client.delete_registered_model_alias(name, move.alias)
            else:
                client.set_registered_model_alias(name, move.alias, move.previous)
            msg = f"could not record the move of {name!r} {move.alias} -> {move.version}, so it was undone: {error}"
            raise ConfigError(mask_text(msg)) from None

    def _model(self, name: str):
        return self._call(lambda: self.client.get_registered_model(name),
                          missing=f"no registered model {name!r} in the registry {mask_url(self.uri)}; register one: "
                                  f"atlas promote RUN_ID --name {name} (or check MLFLOW_TRACKING_URI)")

    def _alias(self, name: str, alias: str, fix: str):
        return self._call(lambda: self.client.get_model_version_by_alias(name, alias),
                          missing=f"{name!r} has no {alias!r} alias; {fix}")

    def _call(self, action, *, missing: str | None = ""):
        """Runs an MLflow call; a missing resource raises ConfigError(missing) (``_Missing`` when None), any other
        failure a ConfigError naming the registry."""
        from mlflow.exceptions import MlflowException

        try:
            return action()
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(error).lower():
                if missing is None:
                    raise _Missing from None
                if missing:
                    raise ConfigError(missing) from None
            text = mask_text(str(error).splitlines()[0] if str(error) else type(error).__name__)
            msg = f"the MLflow registry {mask_url(self.uri)} (MLFLOW_TRACKING_URI) refused: {text}"
            raise ConfigError(msg) from None


class _Missing(Exception):
    pass


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["Promotion", "Registry"]
