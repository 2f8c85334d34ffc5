"""In-memory fan-out of stock changes to the open streams of each product.

A change is encoded once (one SSE frame, one HTTP chunk) and handed to every subscriber of its
product; each subscriber decides whether it can write now or keeps only that newest frame for
later (latest value wins: a slow client never builds a backlog and never slows the others).
"""

from __future__ import annotations

import json
from typing import Any, Protocol


def sse_frame(change: dict[str, Any]) -> bytes:
    """The SSE event of a change: `id:` is the product's stock version."""
    data = json.dumps({"productId": str(change["productId"]), "stock": change["stock"], "status": change["status"]})
    return f"id: {change.get('version', 0)}\nevent: stock\ndata: {data}\n\n".encode()


def chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk (streams use chunked transfer encoding)."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class Subscriber(Protocol):
    """An open stream of one product."""

    product_id: str

    def deliver(self, version: Any, data: bytes) -> None:
        """Send (or keep as the newest pending) one encoded chunk of `version`."""


class Hub:
    """Subscribers per product, and the last change seen for each product."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.published = 0

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(subscriber.product_id, set()).add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        group = self._subscribers.get(subscriber.product_id)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self._subscribers[subscriber.product_id]

    def publish(self, change: dict[str, Any]) -> None:
        """Hand a StockChanged payload (`productId`, `stock`, `status`, `version`) to its subscribers."""
        product_id = str(change["productId"])
        self.last[product_id] = change
        self.published += 1
        group = self._subscribers.get(product_id)
        if group:
            data = chunk(sse_frame(change))
            version = change.get("version")
            for subscriber in list(group):
                subscriber.deliver(version, data)

    def all(self) -> list[Subscriber]:
        return [s for group in self._subscribers.values() for s in group]

    def count(self) -> int:
        return sum(len(group) for group in self._subscribers.values())
