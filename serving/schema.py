"""The versioned Redis schema of Atlas predictions, readable from any language; the standard library only.

For a model ``M`` (its registry name), schema version 1 writes:

- ``atlas:v1:prediction:M``: a hash, the latest prediction (the fields of :meth:`Prediction.to_fields`, every value a
  string), expiring ``ttl`` seconds after its last write;
- ``atlas:v1:predictions:M``: a stream, the past predictions with the same fields, bounded (``MAXLEN ~``); entry ID
  ``<bucket_ms>-0``, so a bucket is written once and in order;
- ``atlas:v1:channel:M``: a pub/sub channel, each message the JSON object of the same fields;
- ``ML_PREDICTION``: where asked, Gryphon's key, ``"1"`` or ``"0"`` (:attr:`Prediction.signal`);
- ``atlas:v1:live:M``: a hash of live statistics (accuracy, lift, ...) with ``updated``/``updated_ms``;
- ``atlas:v1:alarm:M``: a hash ``message``, ``raised``, ``raised_ms``, present while the model drifts.

``value`` is the predicted value of a regressor, and for a classifier the direction of its predicted class: -1, 0
or +1, by name (``down``/``flat``/``up``) or else by order (the first class -1, the last +1, any other 0), the rule
of ``atlas.stats.class_positions``. So ``value > 0`` means "long" for every model, and the class probabilities are in
the ``p_<class>`` fields.

Example:
    >>> from datetime import UTC, datetime
    >>> p = Prediction.from_probabilities("quickstart_itbit", datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
    ...                                   {"down": 0.2, "flat": 0.1, "up": 0.7},
    ...                                   produced=datetime(2024, 1, 1, 0, 10, 1, tzinfo=UTC))
    >>> p.predicted_class, p.value, p.signal, p.stream_id
    ('up', 1.0, 1, '1704067800000-0')
    >>> Prediction.from_fields(p.to_fields()) == p
    True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

SCHEMA_VERSION = "1"
PREFIX = f"atlas:v{SCHEMA_VERSION}"
#: Gryphon's key for a 0/1 prediction (gryphon/execution/bots/overwatch.py checks it is set to 0 or 1).
GRYPHON_KEY = "ML_PREDICTION"
#: The direction of a class named so (the same rule as ``atlas.stats.class_positions``).
DIRECTIONS = {"down": -1.0, "flat": 0.0, "up": 1.0}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TOLERANCE = 1e-6


class SchemaError(ValueError):
    """A Redis record that is not an Atlas prediction of this schema version (or is malformed)."""


class RedisUnavailableError(ConnectionError):
    """Redis cannot be reached; the message names the URL with its password masked."""


def prediction_key(model: str) -> str:
    """The hash holding the latest prediction: ``atlas:v1:prediction:<model>``."""
    return f"{PREFIX}:prediction:{model}"


def stream_key(model: str) -> str:
    """The bounded stream of past predictions: ``atlas:v1:predictions:<model>``."""
    return f"{PREFIX}:predictions:{model}"


def channel_name(model: str) -> str:
    """The pub/sub channel of new predictions: ``atlas:v1:channel:<model>``."""
    return f"{PREFIX}:channel:{model}"


def live_key(model: str) -> str:
    """The hash of live statistics: ``atlas:v1:live:<model>``."""
    return f"{PREFIX}:live:{model}"


def alarm_key(model: str) -> str:
    """The alarm hash, present while the model drifts: ``atlas:v1:alarm:<model>``."""
    return f"{PREFIX}:alarm:{model}"


def check_model_name(model: str) -> str:
    """Returns ``model`` when it is usable in a key (letters, digits, ``_``, ``.``, ``-``), else raises ValueError."""
    if not isinstance(model, str) or not _NAME.match(model):
        msg = (f"a model name in Redis keys is letters, digits, '_', '.' and '-', starting with a letter or digit; "
               f"got model={model!r}")
        raise ValueError(msg)
    return model


def class_direction(name: str, classes: tuple[str, ...]) -> float:
    """The direction (-1, 0, +1) a class trades, by name when the classes are down/flat/up, else by order.

    Example:
        >>> class_direction("flat", ("down", "flat", "up")), class_direction("buy", ("sell", "buy"))
        (0.0, 1.0)
    """
    names = [c.lower() for c in classes]
    if name.lower() not in names:
        msg = f"class {name!r} is not one of the classes {classes}"
        raise ValueError(msg)
    if set(names) <= set(DIRECTIONS) and {"up", "down"} <= set(names) and len(set(names)) == len(names):
        return DIRECTIONS[name.lower()]
    position = names.index(name.lower())
    return -1.0 if position == 0 else 1.0 if position == len(names) - 1 else 0.0


def to_ms(moment: datetime, name: str = "time") -> int:
    """Epoch milliseconds of a timezone-aware datetime (a pandas Timestamp too), sub-millisecond part dropped."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"{name} must be a timezone-aware datetime (UTC), got {moment!r}"
        raise ValueError(msg)
    return (moment - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """The UTC datetime of epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=ms)


def iso(ms: int) -> str:
    """ISO-8601 UTC text of epoch milliseconds: ``2024-01-01T00:10:00.000Z``."""
    return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (as ``atlas.config.mask_url``, without importing Atlas)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def decode(fields: Mapping) -> dict[str, str]:
    """A Redis reply's field map with bytes keys and values decoded as UTF-8."""
    return {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in fields.items()}


@dataclass(frozen=True)
class Prediction:
    """One model's prediction for one bucket, as stored in Redis.

    Times are kept to the millisecond, in UTC. Build a classifier's with :meth:`from_probabilities`.

    Attributes:
        model: the registered model name (the ``M`` of the keys).
        bucket: the bucket the prediction is for (its end time; contract 2 of ARCHITECTURE.md).
        value: a regressor's value; a classifier's predicted direction, -1, 0 or +1 (see the module docstring).
        produced: when the prediction was computed.
        predicted_class: the class a classifier predicts; empty for a regressor.
        probabilities: class name -> probability, in the model's class order; empty for a regressor.
        version: the registry model version; run_id: its MLflow run; alias: the alias it was loaded by.
    """

    model: str
    bucket: datetime
    value: float
    produced: datetime
    predicted_class: str = ""
    probabilities: Mapping[str, float] = field(default_factory=dict, hash=False)
    version: str = ""
    run_id: str = ""
    alias: str = ""

    def __post_init__(self) -> None:
        check_model_name(self.model)
        object.__setattr__(self, "bucket", from_ms(to_ms(self.bucket, "bucket")))
        object.__setattr__(self, "produced", from_ms(to_ms(self.produced, "produced")))
        value = float(self.value)
        if not math.isfinite(value):
            msg = f"a prediction's value must be a finite number, got value={self.value!r} for bucket {self.bucket}"
            raise ValueError(msg)
        object.__setattr__(self, "value", value)
        probabilities = {str(k): float(v) for k, v in dict(self.probabilities).items()}
        for name, p in probabilities.items():
            if not name or "," in name or not (-_TOLERANCE <= p <= 1 + _TOLERANCE):
                msg = (f"class probabilities are non-empty names without commas mapped to numbers in [0, 1]; "
                       f"got {name!r}: {p!r}")
                raise ValueError(msg)
        if probabilities and self.predicted_class not in probabilities:
            msg = f"predicted_class={self.predicted_class!r} is not one of the classes {tuple(probabilities)}"
            raise ValueError(msg)
        object.__setattr__(self, "probabilities", probabilities)
        for name in ("predicted_class", "version", "run_id", "alias"):
            object.__setattr__(self, name, "" if getattr(self, name) is None else str(getattr(self, name)))

    @classmethod
    def from_probabilities(cls, model: str, bucket: datetime, probabilities: Mapping[str, float], *,
                           produced: datetime | None = None, version: str = "", run_id: str = "",
                           alias: str = "") -> Prediction:
        """A classifier's prediction: the most probable class (the first on a tie) and its direction as ``value``.

        Args:
            probabilities: class name -> probability, in the model's class order.
            produced: when it was computed; now when omitted.
        """
        if not probabilities:
            msg = "from_probabilities needs at least one class probability, got none"
            raise ValueError(msg)
        classes = tuple(probabilities)
        best = max(classes, key=lambda name: probabilities[name])  # max keeps the first of equal ones
        return cls(model, bucket, class_direction(best, classes), produced or datetime.now(UTC),
                   best, probabilities, version, run_id, alias)

    @property
    def bucket_ms(self) -> int:
        return to_ms(self.bucket)

    @property
    def produced_ms(self) -> int:
        return to_ms(self.produced)

    @property
    def stream_id(self) -> str:
        """The stream entry ID: ``<bucket_ms>-0``; Redis refuses one not above the last, so a bucket lands once."""
        return f"{self.bucket_ms}-0"

    @property
    def signal(self) -> int:
        """Gryphon's ``ML_PREDICTION``: 1 when ``value > 0`` (a regressor's rise, a classifier's up class), else 0."""
        return 1 if self.value > 0 else 0

    def age(self, now: datetime | None = None) -> timedelta:
        """How long ago the prediction was produced."""
        return (now or datetime.now(UTC)) - self.produced

    def to_fields(self) -> dict[str, str]:
        """The hash and stream fields, every value a string (see the README's Redis schema table)."""
        fields = {
            "schema": SCHEMA_VERSION, "model": self.model,
            "bucket": iso(self.bucket_ms), "bucket_ms": str(self.bucket_ms),
            "produced": iso(self.produced_ms), "produced_ms": str(self.produced_ms),
            "value": repr(self.value), "class": self.predicted_class, "classes": ",".join(self.probabilities),
        }
        fields.update({f"p_{name}": repr(p) for name, p in self.probabilities.items()})
        fields.update({"version": self.version, "run_id": self.run_id, "alias": self.alias})
        return fields

    def to_json(self) -> str:
        """The pub/sub message: the JSON object of :meth:`to_fields`."""
        return json.dumps(self.to_fields(), separators=(",", ":"))

    @classmethod
    def from_fields(cls, fields: Mapping) -> Prediction:
        """Reads a hash or stream entry (str or bytes).

        Raises:
            SchemaError: the record is of another schema version, or a field is missing or malformed.
        """
        record = decode(fields)
        version = record.get("schema")
        if version != SCHEMA_VERSION:
            what = "has no 'schema' field" if version is None else f"is of schema version {version!r}"
            msg = (f"this record {what}, but this reader reads Atlas prediction schema {SCHEMA_VERSION!r} "
                   f"(model {record.get('model', '?')!r}); upgrade serving on the reading side, or read "
                   f"{PREFIX}:* keys only")
            raise SchemaError(msg)
        try:
            names = [c for c in record.get("classes", "").split(",") if c]
            return cls(
                model=record["model"], bucket=from_ms(int(record["bucket_ms"])), value=float(record["value"]),
                produced=from_ms(int(record["produced_ms"])), predicted_class=record.get("class", ""),
                probabilities={name: float(record[f"p_{name}"]) for name in names},
                version=record.get("version", ""), run_id=record.get("run_id", ""), alias=record.get("alias", ""),
            )
        except KeyError as missing:
            msg = f"an Atlas prediction record lacks the field {missing}; got fields {sorted(record)}"
            raise SchemaError(msg) from None
        except ValueError as error:
            msg = f"an Atlas prediction record is malformed: {error}; got {record}"
            raise SchemaError(msg) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Prediction:
        """Reads a pub/sub message (see :meth:`to_json`)."""
        try:
            fields = json.loads(text)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            msg = f"a prediction message is a JSON object of string fields, got {str(text)[:80]!r}"
            raise SchemaError(msg)
        return cls.from_fields(fields)


@dataclass(frozen=True)
class Alarm:
    """A model's drift alarm: what is wrong, and since when."""

    message: str
    raised: datetime

    def to_fields(self) -> dict[str, str]:
        ms = to_ms(self.raised, "raised")
        return {"schema": SCHEMA_VERSION, "message": self.message, "raised": iso(ms), "raised_ms": str(ms)}

    @classmethod
    def from_fields(cls, fields: Mapping) -> Alarm:
        record = decode(fields)
        try:
            return cls(record["message"], from_ms(int(record["raised_ms"])))
        except (KeyError, ValueError) as error:
            msg = f"an Atlas alarm record is malformed ({error}); got {record}"
            raise SchemaError(msg) from None


def live_fields(stats: Mapping[str, object], updated: datetime) -> dict[str, str]:
    """The live-statistics hash: the caller's statistics as strings, and ``schema``, ``updated``, ``updated_ms``."""
    ms = to_ms(updated, "updated")
    fields = {str(k): repr(float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else str(v)
              for k, v in stats.items()}
    fields.update({"schema": SCHEMA_VERSION, "updated": iso(ms), "updated_ms": str(ms)})
    return fields


def parse_live(fields: Mapping) -> dict[str, float | str]:
    """The live statistics read back: numbers as floats, other text as it is."""
    out: dict[str, float | str] = {}
    for key, text in decode(fields).items():
        try:
            out[key] = text if key in ("schema", "updated") else float(text)
        except ValueError:
            out[key] = text
    return out
