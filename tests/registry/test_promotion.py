"""Promotion through a real MLflow Model Registry (``mlflow server`` on loopback), with challengers from a real
sweep: the guardrails each refuse what they should, with their numbers; --force, rollback and the history are
recorded on the versions; bad input changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _services import free_port
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from atlas.cli import main
from atlas.registry import PromotionRefused, Registry, lower_is_better
from atlas.registry import _guardrails as rails
from atlas.runs import Tag

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray_registry")]

BOTH, LEADER = "itbit/use=0 | sign #0", "itbit/use=1 | sign #1"  # the leader's return alone predicts best here


def atlas(environment, *args: str):
    """``atlas ARGS`` in process; returns click's result (exit code, stdout, stderr)."""
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


def atlas_process(cli_env, *args: str) -> subprocess.CompletedProcess:
    """``atlas ARGS`` as its own process, as a person runs it."""
    code = "import sys; from atlas.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=cli_env, capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).parent)


def state(settings, name: str) -> dict:
    """Everything registered about ``name``: versions with their tags, aliases, and the model's tags."""
    client = MlflowClient(settings.tracking.mlflow_uri, registry_uri=settings.tracking.mlflow_uri)
    model = client.get_registered_model(name)
    versions = {v.version: dict(v.tags) for v in client.search_model_versions(f"name = '{name}'")}
    return {"aliases": dict(model.aliases), "tags": dict(model.tags), "versions": versions}


def test_a_better_significant_challenger_is_promoted_a_worse_refused_forced_and_rolled_back(
        sweep, settings, environment, cli_env):
    client = MlflowClient(settings.tracking.mlflow_uri, registry_uri=settings.tracking.mlflow_uri)
    registered = atlas(environment, "promote", sweep[BOTH], "--name", "lead")
    assert registered.exit_code == 0, registered.output
    assert "as version 1 (alias challenger)" in registered.output
    version = client.get_model_version("lead", "1")
    assert version.run_id == sweep[BOTH] and version.tags[Tag.RUN_ID] == sweep[BOTH]
    assert json.loads(version.tags[Tag.TEST_WINDOW]) == ["2024-01-01 16:10", "2024-01-01 23:50"]
    assert {Tag.DATA_HASH, Tag.CODE_VERSION, Tag.WORK_SPEC, Tag.EXECUTION, Tag.FEATURESET} <= set(version.tags)
    assert "Test statistics: accuracy" in version.description and sweep[BOTH] in version.description

    first = atlas(environment, "promote", "lead", "--to", "production")
    assert first.exit_code == 0, first.output + first.stderr
    assert "guardrail 1 (beats production): passed: no production version yet" in first.output
    assert client.get_model_version_by_alias("lead", "production").version == "1"

    # the SPEC form, choosing the best trial by test accuracy (higher is better) within one work unit
    by_spec = atlas(environment, "promote", "promotions", "--name", "lead", "--metric", "test_accuracy",
                    "--work-unit", "itbit")
    assert by_spec.exit_code == 0 and f"run {sweep[LEADER]}" in by_spec.output
    better = atlas_process(cli_env, "promote", "lead", "--to", "production")
    assert better.returncode == 0, better.stdout + better.stderr
    lines = better.stdout.splitlines()
    assert lines[0].startswith("guardrail 1 (beats production): passed: accuracy 0.") and "> production version 1" \
        in lines[0]
    assert [line.split(":")[1].strip() for line in lines[:4]] == ["passed"] * 4
    assert lines[-1] == "lead: production -> version 2 (was version 1)"
    promoted = client.get_model_version("lead", "2")
    assert promoted.tags[Tag.PROMOTED_FROM] == "1" and promoted.tags[Tag.PROMOTION_FORCED] == "false"
    assert promoted.tags[Tag.PROMOTION_REASON].startswith("guardrails passed: 1 accuracy 0.")
    assert "@" in promoted.tags[Tag.PROMOTED_BY] and promoted.tags[Tag.PROMOTED_AT].endswith("+00:00")
    assert promoted.tags[Tag.PROMOTION_COMMAND] == "atlas promote lead --to production --feed redis"
    rails_record = json.loads(promoted.tags[Tag.GUARDRAILS])
    scored = rails_record[0]["numbers"]
    # Atlas scored both models from the store: the same numbers the sweep measured on the same test window
    assert scored["challenger"]["accuracy"] == pytest.approx(client.get_run(sweep[LEADER]).data.metrics[
        "test_accuracy"], abs=1e-9)
    assert scored["production"]["accuracy"] == pytest.approx(client.get_run(sweep[BOTH]).data.metrics[
        "test_accuracy"], abs=1e-9)
    assert scored["challenger"]["accuracy"] > scored["production"]["accuracy"]
    assert "challenger" not in client.get_registered_model("lead").aliases  # promoted: no longer a challenger

    # a worse (but significant) challenger: guardrail 1 refuses, with its numbers; nothing moves
    atlas(environment, "promote", sweep[BOTH], "--name", "lead")
    before = state(settings, "lead")
    worse = atlas_process(cli_env, "promote", "lead", "--to", "production")
    assert worse.returncode == 2
    assert "guardrail 1 (beats production): FAILED: accuracy 0.5683 < production version 2's 0.5748" in worse.stdout
    assert [line.split(":")[1].strip() for line in worse.stdout.splitlines()[1:4]] == ["passed"] * 3
    error = worse.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("Error: promotion of 'lead' version 3 to production refused: "
                                                   "guardrail 1 (beats production): FAILED: accuracy 0.5683")
    assert "--force --reason" in error[0]
    assert state(settings, "lead") == before

    forced = atlas(environment, "promote", "lead", "--to", "production", "--force", "--reason", "shadow test")
    assert forced.exit_code == 0 and "FORCED: shadow test" in forced.output
    tags = client.get_model_version("lead", "3").tags
    assert (tags[Tag.PROMOTION_FORCED], tags[Tag.PROMOTION_REASON], tags[Tag.PROMOTED_FROM]) == (
        "true", "shadow test", "2")
    assert "--force --reason 'shadow test'" in tags[Tag.PROMOTION_COMMAND]

    back = atlas(environment, "rollback", "lead")
    assert back.exit_code == 0 and "production -> version 2 (rolled back from version 3)" in back.output
    tags = client.get_model_version("lead", "2").tags
    assert (tags[Tag.PROMOTION_REASON], tags[Tag.PROMOTED_FROM], tags[Tag.PROMOTION_FORCED]) == (
        "rollback", "3", "false")
    assert atlas(environment, "rollback", "lead").exit_code == 0  # 2 -> 1: where production was before 2
    assert client.get_model_version_by_alias("lead", "production").version == "1"
    before = state(settings, "lead")
    first_ever = atlas(environment, "rollback", "lead")
    assert first_ever.exit_code == 2
    assert "no previous production version to roll back to: version 1 is the first" in first_ever.stderr
    assert state(settings, "lead") == before

    listing = atlas(environment, "models", "lead")
    assert listing.exit_code == 0
    text = listing.stdout.splitlines()
    assert text[0] == "lead: 3 version(s)"
    assert [line.split()[0] for line in text[2:5]] == ["3", "2", "1"]
    assert text[4].split()[-1] == "production" and sweep[BOTH] in text[4]
    assert "0.5683" in text[4] and "0.5748" in text[3]
    history = text[text.index("alias history, newest first (5 move(s)):") + 1:]
    assert [h.split("production -> version ")[1][0] for h in history] == ["1", "2", "3", "2", "1"]
    assert "rollback" in history[0] and "FORCED" in history[2] and "shadow test" in history[2]


def test_an_insignificant_challenger_is_refused_by_guardrail_2(sweep, settings):
    registry = Registry(settings)
    registry.register(sweep["itbit/contrarian #0"], "contrarian", by="test@host")
    with pytest.raises(PromotionRefused) as refused:
        registry.promote("contrarian", by="test@host", command="test")
    failed = [g for g in refused.value.guardrails if not g.passed]
    assert [g.number for g in failed] == [2]
    assert failed[0].numbers["adjusted_p_value"] >= failed[0].numbers["alpha"] == 0.05
    assert "Romano-Wolf adjusted p" in failed[0].detail and ">= alpha 0.05 over 5 trials" in failed[0].detail
    assert "production" not in state(settings, "contrarian")["aliases"]


def test_a_degenerate_challenger_is_refused_by_guardrail_3(sweep, settings, environment):
    atlas(environment, "promote", sweep["itbit/constant #0"], "--name", "constant")
    result = atlas(environment, "promote", "constant", "--to", "production")
    assert result.exit_code == 2
    assert "guardrail 3 (not degenerate): FAILED: degenerate: predicts 1 of its classes over " in result.output
    assert "refused: guardrail 2" in result.stderr and "guardrail 3 (not degenerate): FAILED" in result.stderr
    assert state(settings, "constant")["aliases"] == {"challenger": "1"}


def test_a_trade_metric_cannot_be_served_from_redis_but_can_from_the_store(sweep, settings, environment):
    atlas(environment, "promote", sweep["volume/sign #0"], "--name", "volume")
    redis = atlas(environment, "promote", "volume", "--to", "production")
    assert redis.exit_code == 2
    assert ("guardrail 4 (features from the redis feed): FAILED: 1 of 2 series the features read cannot come from "
            "the redis feed: bitstamp_btc_usd.1min.volume") in redis.output
    assert [line.split(":")[1].strip() for line in redis.stdout.splitlines()[:3]] == ["passed"] * 3
    store = atlas(environment, "promote", "volume", "--to", "production", "--feed", "store")
    assert store.exit_code == 0, store.output + store.stderr
    assert "guardrail 4 (features from the store feed): passed: all 2 series" in store.output


def test_bad_input_is_one_clear_error_and_changes_nothing(sweep, settings, environment):
    atlas(environment, "promote", sweep[LEADER], "--name", "guarded")
    before = state(settings, "guarded")
    cases = {
        ("promote", "nosuch", "--to", "production"): "no registered model 'nosuch'",
        ("rollback", "nosuch"): "no registered model 'nosuch'",
        ("models", "nosuch"): "no registered model 'nosuch'",
        ("promote", "guarded", "--to", "production", "--force"): "--force needs --reason TEXT",
        ("promote", "0" * 32, "--name", "guarded"): f"no run {'0' * 32!r}",
        ("promote", sweep["execution"], "--name", "guarded"): "has no logged model",
        ("promote", "promotions", "--name", "guarded", "--work-unit", "nosuch"): "has no work unit 'nosuch'",
        ("promote", "promotions", "--name", "guarded", "--metric", "nosuch"): "have no metric 'nosuch'",
        ("rollback", "guarded"): "'guarded' has no production version",
    }
    for args, expected in cases.items():
        result = atlas(environment, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert expected in result.stderr, (args, result.stderr)
    assert state(settings, "guarded") == before
    assert "nosuch" not in {m.name for m in MlflowClient(settings.tracking.mlflow_uri, registry_uri=settings.tracking.mlflow_uri).search_registered_models()}

    Registry(settings).promote("guarded", by="test@host", command="test")  # production, and no challenger left
    result = atlas(environment, "promote", "guarded", "--to", "production")
    assert result.exit_code == 2 and "'guarded' has no 'challenger' alias; register one first" in result.stderr

    unreachable = {**environment, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    result = atlas(unreachable, "promote", "guarded", "--to", "production")
    assert result.exit_code == 2 and "cannot reach the MLflow tracking store" in result.stderr
    assert "MLFLOW_TRACKING_URI" in result.stderr


def test_guardrail_2_says_why_a_run_has_no_verdict():
    document = {"alpha": 0.05, "adjustment": "romano_wolf", "trials": 3,
                "table": [{"run_id": "a" * 32, "lift": 0.1, "p_value": 0.001, "romano_wolf_p": 0.004}]}
    judged = rails.significant(document, "a" * 32, execution="e")
    assert judged.passed and judged.numbers["adjusted_p_value"] == 0.004
    absent = rails.significant(document, "b" * 32, execution="e")
    assert not absent.passed and f"run {'b' * 32} is not in the verdict of execution e (3 trials" in absent.detail
    none = rails.significant(None, "a" * 32, execution="e", why_missing="no significance.json")
    assert not none.passed and "has no verdict: no significance.json" in none.detail


def test_which_metrics_are_lower_is_better():
    assert lower_is_better("best_val_loss") and lower_is_better("test_log_loss") and lower_is_better("test_rmse")
    assert lower_is_better("test_p_value")
    assert not lower_is_better("test_accuracy") and not lower_is_better("test_sharpe")
