"""The payload schema of every event type and version: the envelope's `type` + `version` pick the model.

Consumers validate a record's payload against its model before any step runs
(`goodsdrop.events.decode_record`), so a step never meets a missing field or a string where a
number belongs: such a record is dead-lettered as PAYLOAD_INVALID. Models ignore fields they do
not know (a newer producer may add some); a change that breaks readers gets a new version, with
its own model here, next to the old one while old records may still be in flight.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
ID_PATTERN = r"^[1-9][0-9]{0,18}$"  # a positive BIGINT as a string (JSON numbers lose precision in JS)

OrderId = Annotated[StrictStr, Field(pattern=ULID_PATTERN)]
NumericId = Annotated[StrictStr, Field(pattern=ID_PATTERN)]
Amount = Annotated[StrictInt, Field(ge=0)]
EpochMs = Annotated[StrictInt, Field(ge=0)]
Reason = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class Payload(BaseModel):
    """Base of every payload model."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderLine(Payload):
    productId: NumericId  # noqa: N815 - the wire format is camelCase
    quantity: Annotated[StrictInt, Field(ge=1, le=100)]
    price: Amount


class ProductRef(Payload):
    productId: NumericId  # noqa: N815


class OrderEvent(Payload):
    """Every saga event names its order and its member."""

    orderId: OrderId  # noqa: N815
    memberId: NumericId  # noqa: N815


class OrderRequested(OrderEvent):
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=20)]
    total: Amount
    paymentToken: Annotated[StrictStr, Field(min_length=1, max_length=64)]  # noqa: N815
    reservedAt: EpochMs  # noqa: N815
    expiresAt: EpochMs  # noqa: N815


class PaymentSucceeded(OrderEvent):
    paymentId: Annotated[StrictStr, Field(min_length=1, max_length=64)]  # noqa: N815
    amount: Amount


class OrderStepFailed(OrderEvent):
    """PaymentFailed, OrderPersistenceFailed, StockPersistenceFailed, OrderFailed."""

    reason: Reason


class OrderPlaced(OrderEvent):
    total: Amount
    lines: Annotated[list[ProductRef], Field(min_length=1, max_length=20)]


class OrderConfirmed(OrderEvent):
    total: Amount


class OrderExpired(OrderEvent):
    pass


class GiveBackLine(OrderLine):
    deliveryStatus: StrictStr | None = None  # noqa: N815


class GiveBack(OrderEvent):
    """OrderCancelled, OrderLineCancelled, OrderLineReturned: refund these lines and restock them."""

    lines: Annotated[list[GiveBackLine], Field(min_length=1, max_length=20)]
    amount: Amount


class StockChanged(Payload):
    productId: NumericId  # noqa: N815
    stock: StrictInt
    status: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    version: StrictInt | None = None


class DeadLetterRecord(Payload):
    """The failed record in Lambda's Kafka event format (base64 key and value, headers as byte lists)."""

    topic: StrictStr
    partition: StrictInt
    offset: StrictInt
    timestamp: StrictInt | None = None
    timestampType: StrictStr | None = None  # noqa: N815
    key: StrictStr | None = None
    value: StrictStr | None = None
    headers: list[dict[str, list[int]]] = Field(default_factory=list)


class RecordDeadLettered(Payload):
    """A consumer gave up on a record for good (goodsdrop.dead_letters)."""

    reason: Reason
    detail: StrictStr
    consumer: StrictStr
    step: StrictStr
    record: DeadLetterRecord


class DeadLetterReplayed(Payload):
    """An operator replayed a dead letter to its source topic (goodsdrop_local.dlq)."""

    deadLetter: StrictStr  # noqa: N815 - "<partition>:<offset>" in the dead-letter topic
    replayedTo: StrictStr  # noqa: N815 - "<topic>:<partition>:<offset>"


# (type, version) → payload model. A type missing here is unknown; a known type with a version
# missing here is an unknown version.
SCHEMAS: dict[tuple[str, int], type[Payload]] = {
    ("OrderRequested", 1): OrderRequested,
    ("PaymentSucceeded", 1): PaymentSucceeded,
    ("PaymentFailed", 1): OrderStepFailed,
    ("OrderPersistenceFailed", 1): OrderStepFailed,
    ("StockPersistenceFailed", 1): OrderStepFailed,
    ("OrderPlaced", 1): OrderPlaced,
    ("OrderConfirmed", 1): OrderConfirmed,
    ("OrderFailed", 1): OrderStepFailed,
    ("OrderExpired", 1): OrderExpired,
    ("PendingOrderCancelled", 1): OrderStepFailed,  # the buyer cancelled before the order was confirmed
    ("OrderCancelled", 1): GiveBack,
    ("OrderLineCancelled", 1): GiveBack,
    ("OrderLineReturned", 1): GiveBack,
    ("StockChanged", 1): StockChanged,
    ("RecordDeadLettered", 1): RecordDeadLettered,
    ("DeadLetterReplayed", 1): DeadLetterReplayed,
}
KNOWN_TYPES = frozenset(event_type for event_type, _ in SCHEMAS)
