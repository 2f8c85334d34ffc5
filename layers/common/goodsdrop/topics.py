"""Kafka topic names. The prefix (settings.topic_prefix) lets separate stacks share a broker."""

from __future__ import annotations

from goodsdrop.settings import settings

STOCK_CHANGED = "stock-changed"
DEAD_LETTERS = "dead-letters"

# ---- orders and payments (saga): each topic carries what one step says happened
ORDER_REQUESTED = "order-requested"  # OrderRequested: units reserved in Redis, payment next
PAYMENT_SUCCEEDED = "payment-succeeded"  # PaymentSucceeded: charged, persist the order next
ORDER_PLACED = "order-placed"  # OrderPlaced: order and lines in MySQL, persist the stock next
ORDER_CONFIRMED = "order-confirmed"  # OrderConfirmed: sold (final)
ORDER_FAILURES = "order-failures"  # PaymentFailed / OrderPersistenceFailed / StockPersistenceFailed: compensate
ORDER_CLOSED = "order-closed"  # OrderFailed / OrderExpired / PendingOrderCancelled: ended without a sale (final)
ORDER_RETURNS = "order-returns"  # OrderCancelled / OrderLineCancelled / OrderLineReturned: refund and restock

# Every topic the product produces to or consumes from; the local stack creates them all.
ALL: tuple[str, ...] = (STOCK_CHANGED, DEAD_LETTERS)
ALL += (ORDER_REQUESTED, PAYMENT_SUCCEEDED, ORDER_PLACED, ORDER_CONFIRMED, ORDER_FAILURES, ORDER_CLOSED, ORDER_RETURNS)


def topic(name: str) -> str:
    """The full topic name for one of the names above."""
    return f"{settings.topic_prefix}{name}"
