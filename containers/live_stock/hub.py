"""In-memory fan-out of stock changes to subscribers, latest value wins.

Each subscriber holds one slot, not a queue: a slow client that falls behind gets the newest
stock when it catches up, never a backlog, and never slows the others down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Subscriber:
    """One open stream: the newest unsent change and a flag that wakes its writer."""

    product_id: str
    latest: dict[str, Any] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, change: dict[str, Any]) -> None:
        self.latest = change
        self.wake.set()

    def take(self) -> dict[str, Any] | None:
        change, self.latest = self.latest, None
        self.wake.clear()
        return change


class Hub:
    """Subscribers per product, and the last change seen for each product."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.published = 0

    def subscribe(self, product_id: str) -> Subscriber:
        subscriber = Subscriber(product_id)
        self._subscribers.setdefault(product_id, set()).add(subscriber)
        return subscriber

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
        for subscriber in self._subscribers.get(product_id, ()):
            subscriber.offer(change)

    def count(self) -> int:
        return sum(len(group) for group in self._subscribers.values())

    def close_all(self) -> None:
        """Wake every stream so it can see shutdown and end cleanly."""
        for group in self._subscribers.values():
            for subscriber in group:
                subscriber.wake.set()
