"""Bad records of every kind for every consumed topic: what the poison tests and the chaos drill write.

`KINDS` names each kind with the reason its consumer must dead-letter it under (goodsdrop.failures):
undecodable bytes, JSON that is no envelope, an unknown event type, an unknown version of a known
type, a payload that fails its schema, a well-formed event another consumer takes, and a well-formed
event of the topic that refers to an order (or product) that does not exist.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer

from goodsdrop import failures, topics
from goodsdrop.events import Envelope
from goodsdrop.ids import new_ulid
from goodsdrop.settings import settings

# Topic (short name) → its consumer's function (infra/template.yaml) and a well-formed event of it.
CONSUMED = {
    topics.ORDER_REQUESTED: "ProcessPaymentFunction",
    topics.PAYMENT_SUCCEEDED: "PersistOrderFunction",
    topics.ORDER_PLACED: "ConfirmOrderFunction",
    topics.ORDER_FAILURES: "CompensateOrderFunction",
    topics.ORDER_RETURNS: "RefundAndRestockFunction",
    topics.STOCK_CHANGED: "OnStockChangedFunction",
}
KINDS = {
    "undecodable": failures.UNDECODABLE,
    "not-an-envelope": failures.ENVELOPE_INVALID,
    "unknown-type": failures.UNKNOWN_EVENT_TYPE,
    "unknown-version": failures.UNKNOWN_EVENT_VERSION,
    "bad-payload": failures.PAYLOAD_INVALID,
    "wrong-consumer": failures.UNEXPECTED_EVENT_TYPE,
    "unknown-reference": "UNKNOWN_REFERENCE",  # UNKNOWN_ORDER, or UNKNOWN_PRODUCT on stock-changed
}


def expected_reason(topic_name: str, kind: str) -> str:
    if kind != "unknown-reference":
        return KINDS[kind]
    return failures.UNKNOWN_PRODUCT if topic_name == topics.STOCK_CHANGED else failures.UNKNOWN_ORDER


def _event(topic_name: str, member: int, product: int) -> Envelope:
    """A well-formed event of `topic_name` about an order nobody placed (a product nobody listed)."""
    order = new_ulid()
    now = int(time.time() * 1000)
    line = {"productId": str(product), "quantity": 1, "price": 1000}
    payloads = {
        topics.ORDER_REQUESTED: ("OrderRequested", {"lines": [line], "total": 1000, "paymentToken": "tok_ok",
                                                    "reservedAt": now, "expiresAt": now + 600_000}),
        topics.PAYMENT_SUCCEEDED: ("PaymentSucceeded", {"paymentId": new_ulid(), "amount": 1000}),
        topics.ORDER_PLACED: ("OrderPlaced", {"total": 1000, "lines": [{"productId": str(product)}]}),
        topics.ORDER_FAILURES: ("PaymentFailed", {"reason": "PAYMENT_DECLINED"}),
        topics.ORDER_RETURNS: ("OrderCancelled", {"lines": [line | {"deliveryStatus": None}], "amount": 1000}),
    }
    if topic_name == topics.STOCK_CHANGED:
        return Envelope(type="StockChanged", payload={"productId": str(10**15 + int(uuid.uuid4().int % 10**6)),
                                                      "stock": 3, "status": "on_sale", "version": 1})
    event_type, payload = payloads[topic_name]
    return Envelope(type=event_type, correlation_id=order, payload={"orderId": order, "memberId": str(member),
                                                                    **payload})


def bad_value(topic_name: str, kind: str, member: int, product: int) -> bytes:
    """The bytes of one bad record of `kind` for `topic_name` (`member` and `product` exist)."""
    good = _event(topic_name, member, product)
    if kind == "undecodable":
        return b"\xff\xfe this is not JSON " + uuid.uuid4().hex.encode()
    if kind == "not-an-envelope":
        return b'{"hello": "world", "id": "' + uuid.uuid4().hex.encode() + b'"}'
    if kind == "unknown-type":
        return good.model_copy(update={"type": "OrderTeleported"}).to_bytes()
    if kind == "unknown-version":
        return good.model_copy(update={"version": 99}).to_bytes()
    if kind == "bad-payload":
        return good.model_copy(update={"payload": {**good.payload, "orderId": 12345, "productId": None}}).to_bytes()
    if kind == "wrong-consumer":
        other = topics.ORDER_PLACED if topic_name != topics.ORDER_PLACED else topics.PAYMENT_SUCCEEDED
        return _event(other, member, product).to_bytes()
    if kind == "unknown-reference":
        return good.to_bytes()
    raise ValueError(kind)


@dataclass(frozen=True)
class Written:
    """One bad record as written: where it is, when the broker took it, the reason it must get."""

    topic: str  # full name
    partition: int
    offset: int
    timestamp_ms: int
    kind: str
    reason: str


def write_bad_records(topic_names: list[str], per_kind: int, member: int, product: int,
                      kinds: list[str] | None = None) -> list[Written]:
    """`per_kind` bad records of each kind to every partition of each topic; what was written, acknowledged."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all", linger_ms=5)
    meta = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=None)
    sent = []
    try:
        for name in topic_names:
            full = topics.topic(name)
            for partition in sorted(meta.partitions_for_topic(full) or ()):
                for kind in kinds or list(KINDS):
                    for _ in range(per_kind):
                        future = producer.send(full, partition=partition, key=f"poison-{uuid.uuid4().hex[:8]}".encode(),
                                               value=bad_value(name, kind, member, product))
                        sent.append((future, kind, expected_reason(name, kind)))
        producer.flush(30)
        written = []
        for future, kind, reason in sent:
            m = future.get(timeout=10)
            written.append(Written(m.topic, m.partition, m.offset, m.timestamp, kind, reason))
        return written
    finally:
        producer.close()
        meta.close()
