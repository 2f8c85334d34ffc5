"""The dead-letter topic: what a consumer writes when it gives up on a record, and how to read it back.

Two kinds of message reach `topics.DEAD_LETTERS`, and `read` understands both:

1. **A consumer's own dead letter** (`write`): the moment a record fails permanently
   (goodsdrop.failures), the consumer publishes an `Envelope` of type `RecordDeadLettered`
   (version 1, goodsdrop.event_schemas) keyed like the record, and only then lets the batch carry
   on. Payload: `reason` (stable code), `detail`, `consumer` (the function's name), `step` (the
   saga step) and `record`: the failed record exactly as Lambda's Kafka event had it (topic,
   partition, offset, timestamp, base64 key and value, headers). The same facts travel as Kafka
   headers `goodsdrop-dead-letter-reason`, `-consumer`, `-source` (`topic:partition:offset`) for
   tools that only see headers. Its event id is derived from (consumer, topic, partition, offset),
   so writing it again after a crash makes a recognisable duplicate.
2. **Lambda's on-failure record** (`kafka://` destination of an event-source mapping: retries
   exhausted or the record too old), in AWS's format: a JSON document with `requestContext`
   (`condition`, `functionArn`, `approximateInvokeCount`), `responseContext`, `KafkaBatchInfo` and
   `payload`, the Lambda event that failed, holding the record. The local runtime writes the same.

Operators list, show and replay both kinds with `python -m goodsdrop_local.dlq` (`make dlq`).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from goodsdrop import topics
from goodsdrop.events import Envelope, publish
from goodsdrop.failures import Failure

RECORD_DEAD_LETTERED = "RecordDeadLettered"
DEAD_LETTER_REPLAYED = "DeadLetterReplayed"
REASON_HEADER, CONSUMER_HEADER, SOURCE_HEADER = ("goodsdrop-dead-letter-reason", "goodsdrop-dead-letter-consumer",
                                                 "goodsdrop-dead-letter-source")
_NAMESPACE = uuid.UUID("6b1f3c8e-2d4a-4f0b-9c7e-5a8d2e1f0b3c")


def write(record: dict[str, Any], failure: Failure, consumer: str, step: str, *, wait: bool = True) -> Any:
    """Publish `record` (a record of Lambda's Kafka event) as a dead letter; the producer's future.

    With `wait` it returns once the broker has it; without, the caller confirms the future (the
    consumer runner confirms a batch's dead letters together, before the batch returns).
    """
    source = f"{record.get('topic')}:{record.get('partition')}:{record.get('offset')}"
    kept = {name: record.get(name) for name in ("topic", "partition", "offset", "timestamp", "timestampType", "key",
                                                 "value", "headers")}
    letter = Envelope(type=RECORD_DEAD_LETTERED, event_id=str(uuid.uuid5(_NAMESPACE, f"{consumer}:{source}")),
                      correlation_id=_key_text(record.get("key")),
                      payload={"reason": failure.reason, "detail": failure.detail, "consumer": consumer, "step": step,
                               "record": kept})
    headers = [(REASON_HEADER, failure.reason.encode()), (CONSUMER_HEADER, consumer.encode()),
               (SOURCE_HEADER, source.encode())]
    key = base64.b64decode(record["key"]) if record.get("key") else None
    return publish(topics.DEAD_LETTERS, letter, key, headers=headers, wait=wait)


def _key_text(key: str | None) -> str:
    if not key:
        return ""
    try:
        return base64.b64decode(key).decode()[:200]
    except (ValueError, UnicodeDecodeError):
        return ""


@dataclass
class DeadLetter:
    """One message of the dead-letter topic, whichever kind, as operators see it."""

    partition: int  # where it is in the dead-letter topic
    offset: int
    timestamp: int  # when it was dead-lettered (epoch ms)
    kind: str  # "consumer" (RecordDeadLettered), "mapping" (Lambda's on-failure record) or "unreadable"
    reason: str
    consumer: str
    detail: str = ""
    source_topic: str = ""
    source_partition: int = -1
    source_offset: int = -1
    source_timestamp: int | None = None
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    document: Any = None  # the whole message, parsed

    @property
    def id(self) -> str:
        """`<partition>:<offset>` in the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def source(self) -> str:
        return f"{self.source_topic}:{self.source_partition}:{self.source_offset}"


def _unpack(record: dict[str, Any], letter: DeadLetter) -> None:
    """Fill the source fields from a record of Lambda's Kafka event format."""
    letter.source_topic = str(record.get("topic", ""))
    letter.source_partition = int(record.get("partition", -1))
    letter.source_offset = int(record.get("offset", -1))
    letter.source_timestamp = record.get("timestamp")
    letter.key = base64.b64decode(record["key"]) if record.get("key") else None
    letter.value = base64.b64decode(record["value"]) if record.get("value") is not None else None
    letter.headers = [(name, bytes(value)) for header in record.get("headers") or [] for name, value in header.items()]


def _function_name(arn: str) -> str:
    """The function of `arn:aws:lambda:region:account:function:name[:qualifier]`."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


def read(message: Any) -> DeadLetter | Envelope | None:
    """A dead letter from a kafka-python `ConsumerRecord` of the dead-letter topic.

    Returns the replay marker's `Envelope` for a `DeadLetterReplayed` message (the dlq tool's own),
    and a `DeadLetter` of kind "unreadable" for anything else it cannot read.
    """
    letter = DeadLetter(message.partition, message.offset, int(message.timestamp), "unreadable", "UNREADABLE", "?")
    try:
        doc = json.loads(message.value)
    except (TypeError, ValueError):
        return letter
    letter.document = doc
    try:
        if isinstance(doc, dict) and doc.get("type") == DEAD_LETTER_REPLAYED:
            return Envelope.model_validate(doc)
        if isinstance(doc, dict) and doc.get("type") == RECORD_DEAD_LETTERED:
            payload = doc["payload"]
            letter.kind, letter.reason = "consumer", str(payload["reason"])
            letter.consumer, letter.detail = str(payload["consumer"]), str(payload.get("detail", ""))
            _unpack(payload["record"], letter)
            return letter
        if isinstance(doc, dict) and "requestContext" in doc and "payload" in doc:
            context, response = doc["requestContext"], doc.get("responseContext") or {}
            letter.kind, letter.reason = "mapping", str(context.get("condition", "UNKNOWN"))
            letter.consumer = _function_name(str(context.get("functionArn", "?")))
            letter.detail = (f"{response.get('functionError') or 'no function error'} after "
                             f"{context.get('approximateInvokeCount')} invocation(s)")
            (records,) = doc["payload"]["records"].values()
            _unpack(records[0], letter)
            return letter
    except (KeyError, TypeError, ValueError, AttributeError):
        letter.kind, letter.reason, letter.consumer = "unreadable", "UNREADABLE", "?"
    return letter
