"""The live drop stream: `GET /stream/products/{id}/drop?ticket=...` (the drop dashboard's live figures).

No polling storm: however many dashboards watch a product, the container reads its figures once a
second (`goodsdrop.drop_watch.live_frame`: a few Redis reads) and writes the same encoded frame to
each of them; a product nobody watches costs nothing. A new watcher first gets the last minute, then
one frame a second with the seconds completed since the previous one. Who may watch was decided by
the API when it issued the ticket (POST /dashboard/products/{id}/stream-ticket).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from goodsdrop.clock import now_ms
from goodsdrop.drop_watch import live_frame
from live_stock.hub import chunk

HISTORY_SECONDS = 60
TICK_SECONDS = 1.0


def drop_frame(frame: dict[str, Any]) -> bytes:
    """One SSE event `drop` carrying a live frame."""
    return f"event: drop\ndata: {json.dumps(frame, separators=(',', ':'))}\n\n".encode()


class Watcher(Protocol):
    """An open drop stream of one product."""

    product_id: str

    def deliver(self, version: Any, data: bytes) -> None:
        """Send (or keep as the newest pending) one encoded chunk."""


class DropHub:
    """Watchers per product and the last second each product's frames covered."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = {}
        self._sent_up_to: dict[str, int] = {}
        self.frames = 0

    def subscribe(self, watcher: Watcher, up_to: int) -> None:
        self._watchers.setdefault(watcher.product_id, set()).add(watcher)
        self._sent_up_to.setdefault(watcher.product_id, up_to)

    def unsubscribe(self, watcher: Watcher) -> None:
        group = self._watchers.get(watcher.product_id)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self._watchers[watcher.product_id]
                self._sent_up_to.pop(watcher.product_id, None)

    def count(self) -> int:
        return sum(len(group) for group in self._watchers.values())

    def all(self) -> list[Watcher]:
        return [w for group in self._watchers.values() for w in group]

    async def tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """One frame for every watched product: read once, written to each of its watchers."""
        last_complete = now_ms() // 1000 - 1
        for product_id in list(self._watchers):
            # (no second completed since the last frame: the frame still carries the stock and totals now)
            first = self._sent_up_to.get(product_id, last_complete) + 1
            try:
                frame = await loop.run_in_executor(None, live_frame, int(product_id), first, last_complete)
            except Exception:  # noqa: BLE001, S112 - a store briefly away: the next tick catches up
                continue
            group = self._watchers.get(product_id)
            if not group:
                continue
            self._sent_up_to[product_id] = max(last_complete, first - 1)
            data = chunk(drop_frame(frame))
            self.frames += 1
            for watcher in list(group):
                watcher.deliver(None, data)

    async def run(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await self.tick(loop)


def first_frame(product_id: int) -> tuple[bytes, int]:
    """The last minute of a product's figures for a new watcher, and the last second it covers."""
    last_complete = now_ms() // 1000 - 1
    frame = live_frame(product_id, last_complete - HISTORY_SECONDS + 1, last_complete)
    return drop_frame(frame), last_complete
