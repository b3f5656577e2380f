"""The Redis schema's records: round trips, the value and signal rules, and clear errors on foreign records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from atlas.config import mask_url as atlas_mask_url
from atlas.stats import class_positions
from serving.schema import (
    Alarm,
    Prediction,
    SchemaError,
    alarm_key,
    channel_name,
    class_direction,
    live_fields,
    live_key,
    mask_url,
    parse_live,
    prediction_key,
    stream_key,
)

T0 = datetime(2024, 1, 1, 0, 10, tzinfo=UTC)


def test_keys_follow_the_documented_layout():
    assert prediction_key("m") == "atlas:v1:prediction:m"
    assert stream_key("m") == "atlas:v1:predictions:m"
    assert channel_name("m") == "atlas:v1:channel:m"
    assert live_key("m") == "atlas:v1:live:m"
    assert alarm_key("m") == "atlas:v1:alarm:m"


def test_a_regressor_prediction_round_trips_through_fields_and_json():
    p = Prediction("quickstart_itbit", T0, -0.00125, T0 + timedelta(seconds=1.5), version="7", run_id="r1",
                   alias="production")
    fields = p.to_fields()
    assert fields == {
        "schema": "1", "model": "quickstart_itbit", "bucket": "2024-01-01T00:10:00.000Z",
        "bucket_ms": "1704067800000", "produced": "2024-01-01T00:10:01.500Z", "produced_ms": "1704067801500",
        "value": "-0.00125", "class": "", "classes": "", "version": "7", "run_id": "r1", "alias": "production",
    }
    assert all(isinstance(v, str) for v in fields.values())
    assert Prediction.from_fields(fields) == p
    assert Prediction.from_fields({k.encode(): v.encode() for k, v in fields.items()}) == p
    assert Prediction.from_json(p.to_json()) == p and json.loads(p.to_json()) == fields
    assert p.stream_id == "1704067800000-0" and p.signal == 0


def test_a_classifier_prediction_carries_its_class_probabilities_and_direction():
    p = Prediction.from_probabilities("m", T0, {"down": 0.5, "flat": 0.2, "up": 0.3}, produced=T0)
    assert (p.predicted_class, p.value, p.signal) == ("down", -1.0, 0)
    fields = p.to_fields()
    assert fields["classes"] == "down,flat,up" and fields["p_up"] == "0.3" and fields["class"] == "down"
    back = Prediction.from_fields(fields)
    assert back == p and list(back.probabilities) == ["down", "flat", "up"]
    up = Prediction.from_probabilities("m", T0, {"sell": 0.4, "buy": 0.6}, produced=T0)
    assert (up.predicted_class, up.value, up.signal) == ("buy", 1.0, 1)


@pytest.mark.parametrize("classes", [("down", "up"), ("down", "flat", "up"), ("up", "flat", "down"),
                                     ("sell", "buy"), ("a", "b", "c", "d"), ("down", "flat")])
def test_class_directions_follow_the_trading_statistics_rule(classes):
    """A live prediction's value trades as atlas.stats' positions do, so live and offline P&L agree."""
    assert [class_direction(c, classes) for c in classes] == class_positions(classes).tolist()


def test_times_are_utc_milliseconds_and_pandas_timestamps_are_accepted():
    stamp = pd.Timestamp("2024-01-01 01:10:00.123456", tz="Europe/Paris")
    p = Prediction("m", stamp, 1, stamp)
    assert p.bucket == datetime(2024, 1, 1, 0, 10, 0, 123000, tzinfo=UTC)
    assert type(p.bucket) is datetime and p.value == 1.0


@pytest.mark.parametrize("kwargs, words", [
    ({"bucket": datetime(2024, 1, 1)}, "timezone-aware"),
    ({"value": float("nan")}, "finite"),
    ({"model": "has space"}, "model name"),
    ({"model": ""}, "model name"),
    ({"predicted_class": "up", "probabilities": {"down": 0.5, "flat": 0.5}}, "not one of the classes"),
    ({"predicted_class": "up", "probabilities": {"up": 1.5, "down": 0.0}}, "[0, 1]"),
])
def test_a_bad_prediction_is_refused_with_a_message_naming_the_problem(kwargs, words):
    args = {"model": "m", "bucket": T0, "value": 0.1, "produced": T0, **kwargs}
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        Prediction(**args)


def test_a_record_of_another_schema_version_is_a_clear_error():
    fields = Prediction("m", T0, 0.1, T0).to_fields() | {"schema": "2"}
    with pytest.raises(SchemaError, match=r"schema version '2'.*reads Atlas prediction schema '1'.*upgrade"):
        Prediction.from_fields(fields)
    with pytest.raises(SchemaError, match="has no 'schema' field"):
        Prediction.from_fields({"model": "m", "value": "1"})


def test_a_malformed_record_is_a_schema_error_naming_what_is_wrong():
    fields = Prediction("m", T0, 0.1, T0).to_fields()
    with pytest.raises(SchemaError, match="lacks the field 'value'"):
        Prediction.from_fields({k: v for k, v in fields.items() if k != "value"})
    with pytest.raises(SchemaError, match="malformed"):
        Prediction.from_fields(fields | {"bucket_ms": "soon"})
    with pytest.raises(SchemaError, match="JSON object"):
        Prediction.from_json("[1, 2]")


def test_alarm_and_live_statistics_round_trip():
    alarm = Alarm("accuracy 0.41 below 0.48 over 200 buckets", T0)
    assert Alarm.from_fields(alarm.to_fields()) == alarm
    stats = parse_live(live_fields({"accuracy": 0.52, "buckets": 200, "state": "ok"}, T0))
    assert stats == {"accuracy": 0.52, "buckets": 200.0, "state": "ok", "schema": "1",
                     "updated": "2024-01-01T00:10:00.000Z", "updated_ms": 1704067800000.0}


@pytest.mark.parametrize("url", ["redis://:s3cret@host:6379/0", "redis://user:p%40ss@host/1",
                                 "redis://127.0.0.1:6379/0", "unix:///tmp/redis.sock"])
def test_the_client_masks_passwords_as_atlas_does(url):
    assert mask_url(url) == atlas_mask_url(url)
    assert "s3cret" not in mask_url(url) and "p%40ss" not in mask_url(url)
