"""SSE fan-out: N subscribers on one product, time from a stock change to every client.

`python -m bench.sse_fanout --subscribers 1000 --changes 20` against the running stack
(`make up`). Each change is a StockChanged event published the way a write-through publishes it
(`goodsdrop.stock.publish_stock_changed`, acks=all) with stock values no client has seen, and the
clock runs from just before publishing until each subscriber has parsed the event: Kafka, the
container's consumer and the fan-out are all inside the figure (the MySQL write before it is not). Clients are raw
asyncio sockets (cheap enough that 1,000 of them do not skew the numbers). Also reports the
container's memory per idle subscriber (RSS delta / N).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import time

from goodsdrop.settings import settings
from goodsdrop.stock import StockLevel, publish_stock_changed, read_stock


def container_rss_kib(port: int) -> int:
    """RSS of the process listening on `port` (the SSE container)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    pid = int(re.search(r"pid=(\d+)", out).group(1))
    with open(f"/proc/{pid}/status") as status_file:
        status = status_file.read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


class Subscriber(asyncio.Protocol):
    """A raw-socket SSE client: records when each stock value arrived."""

    def __init__(self, product_id: int) -> None:
        self.product_id = product_id
        self.seen: dict[int, float] = {}  # stock value → monotonic receive time
        self.ready = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports aren't asyncio subclasses
        transport.write(f"GET /stream/products/{self.product_id}/stock HTTP/1.1\r\nHost: x\r\n"
                        "Accept: text/event-stream\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        for match in _STOCK.finditer(data):
            self.seen[int(match.group(1))] = now
            self.ready.set()

    async def run(self) -> None:
        await asyncio.get_running_loop().create_connection(lambda: self, "127.0.0.1", settings.stream_port)


_STOCK = re.compile(rb'"stock": (-?\d+)')


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    """Run the fan-out, print its table and return its figures (bench.flash_drop reports them too)."""
    product_id = args.product
    start_stock = read_stock(product_id).stock
    base_rss = container_rss_kib(settings.stream_port)
    subscribers = [Subscriber(product_id) for _ in range(args.subscribers)]
    for batch in range(0, len(subscribers), 100):
        await asyncio.gather(*(s.run() for s in subscribers[batch:batch + 100]))
    opened = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subscribers)), 60)
    connect_seconds = time.monotonic() - opened
    await asyncio.to_thread(publish_stock_changed, read_stock(product_id))  # warm the producer's metadata
    await asyncio.sleep(1)
    idle_rss = container_rss_kib(settings.stream_port)
    latencies: list[float] = []
    missed = 0
    for i in range(args.changes):
        target = start_stock + 1000 + i  # values no subscriber has seen yet
        sent = time.monotonic()
        level = StockLevel(product_id, target, "on_sale", 10_000_000 + i)
        await asyncio.to_thread(publish_stock_changed, level)
        deadline = sent + 5
        while time.monotonic() < deadline and not all(target in s.seen for s in subscribers):
            await asyncio.sleep(0.005)
        for s in subscribers:
            if target in s.seen:
                latencies.append((s.seen[target] - sent) * 1000)
            else:
                missed += 1
        print(f"\rchange {i + 1}/{args.changes}", end="", flush=True)
        await asyncio.sleep(args.pause)
    for s in subscribers:
        if s.transport is not None:
            s.transport.close()
    await asyncio.to_thread(publish_stock_changed, read_stock(product_id))  # streams show the real stock again
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    per_sub = (idle_rss - base_rss) / args.subscribers
    print(f"\n\nSSE fan-out - {os.cpu_count()} cores, {args.subscribers} subscribers on one product, "
          f"{args.changes} changes (publish → Kafka → container → clients)\n")
    print("| subscribers | deliveries | missed | p50 ms | p90 ms | p99 ms | max ms "
          "| RSS/idle subscriber | connect all |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.subscribers} | {len(latencies)} | {missed} | {pct(50):.1f} | {pct(90):.1f} | {pct(99):.1f} "
          f"| {latencies[-1]:.1f} | {per_sub:.1f} KiB | {connect_seconds:.2f} s |")
    print(f"\n(container RSS {base_rss / 1024:.1f} MiB before, {idle_rss / 1024:.1f} MiB with the subscribers)")
    return {"subscribers": args.subscribers, "changes": args.changes, "deliveries": len(latencies), "missed": missed,
            "p50_ms": round(pct(50), 1), "p90_ms": round(pct(90), 1), "p99_ms": round(pct(99), 1),
            "max_ms": round(latencies[-1], 1), "rss_kib_per_subscriber": round(per_sub, 1),
            "connect_all_s": round(connect_seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--product", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.2)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
