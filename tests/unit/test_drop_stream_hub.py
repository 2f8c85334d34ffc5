"""The drop stream's hub: one read per watched product and tick, the same frame to every watcher, each
second sent once and in order."""

from __future__ import annotations

import asyncio
import json

from live_stock import drops


class Watcher:
    def __init__(self, product_id: str) -> None:
        self.product_id, self.chunks = product_id, []

    def deliver(self, version, data: bytes) -> None:
        self.chunks.append(data)

    def seconds(self) -> list[int]:
        found = []
        for data in self.chunks:
            line = next(ln for ln in data.decode().splitlines() if ln.startswith("data:"))
            found += [s["t"] for s in json.loads(line[5:])["series"]]
        return found


def test_each_second_is_read_once_and_sent_to_every_watcher(monkeypatch):
    clock = {"ms": 1_000_000_500}
    reads = []

    def live_frame(product_id, first, last):
        reads.append((product_id, first, last))
        return {"productId": str(product_id), "series": [{"t": t} for t in range(first, last + 1)]}

    monkeypatch.setattr(drops, "now_ms", lambda: clock["ms"])
    monkeypatch.setattr(drops, "live_frame", live_frame)
    hub = drops.DropHub()
    a, b, other = Watcher("7"), Watcher("7"), Watcher("8")
    hub.subscribe(a, up_to=999_999)
    hub.subscribe(b, up_to=999_999)
    hub.subscribe(other, up_to=999_999)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        await hub.tick(loop)  # same second as the first frames: nothing new, but stock and totals
        clock["ms"] += 1000
        await hub.tick(loop)
        clock["ms"] += 2500
        await hub.tick(loop)

    asyncio.run(run())
    assert [r for r in reads if r[0] == 7] == [(7, 1_000_000, 999_999), (7, 1_000_000, 1_000_000),
                                              (7, 1_000_001, 1_000_003)]
    assert a.seconds() == b.seconds() == [1_000_000, 1_000_001, 1_000_002, 1_000_003]
    assert a.chunks == b.chunks and len(a.chunks) == 3
    hub.unsubscribe(a)
    hub.unsubscribe(b)
    assert hub.count() == 1
