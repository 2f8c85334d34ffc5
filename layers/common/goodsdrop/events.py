"""The one Kafka event envelope, and publishing/reading it.

Every message on every topic is an `Envelope`: what happened (`type`, past tense), a unique
`event_id` consumers deduplicate on, when, the correlation id that ties a saga together, the
schema `version` and the `payload`. Messages are keyed (e.g. by order id) so that one
aggregate's events stay in order on one partition.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import BaseModel, Field

from goodsdrop.clients import kafka_producer
from goodsdrop.clock import now_iso_ms
from goodsdrop.topics import topic


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

    @classmethod
    def from_record(cls, record: Any) -> Envelope:
        """From a Powertools `KafkaEventRecord` (base64 value already decoded by it)."""
        return cls.model_validate(json.loads(record.decoded_value))


def publish(name: str, envelope: Envelope, key: str, *, wait: bool = True, timeout: float = 5.0) -> None:
    """Send `envelope` to topic `name`, keyed by `key`.

    With `wait` the call returns only once the broker acknowledged the write (acks=all) and
    raises otherwise, so a caller can compensate when publishing fails.
    """
    future = kafka_producer().send(topic(name), value=envelope.to_bytes(), key=key.encode())
    if wait:
        future.get(timeout=timeout)
