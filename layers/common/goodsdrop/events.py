"""The one Kafka event envelope, and publishing/reading it.

Every message on every topic is an `Envelope`: what happened (`type`, past tense), a unique
`event_id` consumers deduplicate on, when, the correlation id that ties a saga together, the
schema `version` and the `payload`. Messages are keyed (e.g. by order id) so that one
aggregate's events stay in order on one partition. The payload of each type and version has a
model (goodsdrop.event_schemas); consumers read records with `decode_record`, which says exactly
why a record cannot be read (a goodsdrop.failures reason).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from pydantic import BaseModel, Field
from pydantic import ValidationError as SchemaError

from goodsdrop import failures
from goodsdrop.clients import kafka_producer
from goodsdrop.clock import now_iso_ms
from goodsdrop.errors import ValidationError
from goodsdrop.topics import topic

# Fields a record must carry itself: a default would give each delivery of a duplicate a new event id.
REQUIRED_FIELDS = frozenset({"type", "event_id", "version", "payload"})


class Envelope(BaseModel):
    """One event on Kafka."""

    type: str
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = Field(default_factory=now_iso_ms)
    correlation_id: str = ""
    version: int = 1
    payload: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Envelope:
        return cls.model_validate_json(raw)


def publish(name: str, envelope: Envelope, key: str | bytes | None, *, wait: bool = True, timeout: float = 5.0,
            headers: list[tuple[str, bytes]] | None = None) -> Any:
    """Send `envelope` to topic `name`, keyed by `key`; returns the producer's future.

    With `wait` the call returns only once the broker acknowledged the write (acks=all) and
    raises otherwise, so a caller can compensate when publishing fails.
    """
    raw_key = key.encode() if isinstance(key, str) else key
    future = kafka_producer().send(topic(name), value=envelope.to_bytes(), key=raw_key, headers=headers or [])
    if wait:
        future.get(timeout=timeout)
    return future


def decode_record(record: dict[str, Any], accepts: tuple[str, ...] = ()) -> Envelope:
    """The envelope of one record of Lambda's Kafka event, its payload checked against its schema.

    Raises `ValidationError` whose code is a goodsdrop.failures reason when the record can never
    be read: UNDECODABLE, ENVELOPE_INVALID, UNKNOWN_EVENT_TYPE, UNKNOWN_EVENT_VERSION,
    UNEXPECTED_EVENT_TYPE (not one of `accepts`, when given) or PAYLOAD_INVALID.
    """
    # Imported here: the payload models are built at import (~12 ms), and only consumers read records.
    from goodsdrop.event_schemas import KNOWN_TYPES, SCHEMAS

    raw = record.get("value")
    if not isinstance(raw, str):
        raise ValidationError("the record has no value", code=failures.UNDECODABLE)
    try:
        doc = json.loads(base64.b64decode(raw, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise ValidationError(f"the value is not JSON: {err}"[:300], code=failures.UNDECODABLE) from None
    if not isinstance(doc, dict) or not doc.keys() >= REQUIRED_FIELDS:
        missing = sorted(REQUIRED_FIELDS - doc.keys()) if isinstance(doc, dict) else ["a JSON object"]
        raise ValidationError(f"not an envelope: missing {', '.join(missing)}", code=failures.ENVELOPE_INVALID)
    try:
        envelope = Envelope.model_validate(doc, strict=True)
    except SchemaError as err:
        raise ValidationError(f"not an envelope: {_first_error(err)}", code=failures.ENVELOPE_INVALID) from None
    schema = SCHEMAS.get((envelope.type, envelope.version))
    if schema is None:
        if envelope.type not in KNOWN_TYPES:
            raise ValidationError(f"unknown event type {envelope.type[:80]!r}", code=failures.UNKNOWN_EVENT_TYPE)
        raise ValidationError(f"unknown version {envelope.version} of {envelope.type}",
                              code=failures.UNKNOWN_EVENT_VERSION)
    if accepts and envelope.type not in accepts:
        raise ValidationError(f"{envelope.type} is not for this consumer (it takes {', '.join(accepts)})",
                              code=failures.UNEXPECTED_EVENT_TYPE)
    try:
        schema.model_validate(envelope.payload)
    except SchemaError as err:
        raise ValidationError(f"{envelope.type} v{envelope.version}: {_first_error(err)}",
                              code=failures.PAYLOAD_INVALID) from None
    return envelope


def _first_error(err: SchemaError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    return f"{where}: {first['msg']} ({err.error_count()} error(s))"
