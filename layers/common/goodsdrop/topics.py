"""Kafka topic names. The prefix (settings.topic_prefix) lets separate stacks share a broker."""

from __future__ import annotations

from goodsdrop.settings import settings

STOCK_CHANGED = "stock-changed"
DEAD_LETTERS = "dead-letters"

# Every topic the product produces to or consumes from; the local stack creates them all.
ALL: tuple[str, ...] = (STOCK_CHANGED, DEAD_LETTERS)


def topic(name: str) -> str:
    """The full topic name for one of the names above."""
    return f"{settings.topic_prefix}{name}"
