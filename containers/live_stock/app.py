"""ASGI app of the live-stock container: `GET /stream/products/{id}/stock` as Server-Sent Events.

Changes come from the stock-changed Kafka topic. This instance reads every partition itself
(assigned, no consumer group: each container instance sees every change, as with one consumer
group per instance) from the end, in a background thread, and fans them out in memory.
Event ids are the product's stock version, so `Last-Event-ID` tells what a client already has.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from goodsdrop import topics
from goodsdrop.errors import DropError
from goodsdrop.events import Envelope
from goodsdrop.products import parse_product_id
from goodsdrop.settings import settings
from goodsdrop.stock import read_stock
from live_stock.hub import Hub

HEARTBEAT_SECONDS = float(os.environ.get("GOODSDROP_SSE_HEARTBEAT_SECONDS", "15"))
RETRY_MS = 3000
ALLOW_ORIGIN = os.environ.get("GOODSDROP_STOREFRONT_ORIGIN", "*")
_PATH = re.compile(r"^/stream/products/([^/]+)/stock/?$")


class KafkaFeed(threading.Thread):
    """Reads stock changes from Kafka and hands them to the hub on the event loop."""

    def __init__(self, hub: Hub, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="stock-changed-feed", daemon=True)
        self.hub, self.loop = hub, loop
        self.stopping = threading.Event()
        self.connected = False

    def run(self) -> None:
        topic = topics.topic(topics.STOCK_CHANGED)
        while not self.stopping.is_set():
            try:
                consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=None,
                                         enable_auto_commit=False, client_id="live-stock")
                partitions = consumer.partitions_for_topic(topic) or {0}
                consumer.assign([TopicPartition(topic, p) for p in partitions])
                consumer.seek_to_end()
                self.connected = True
                while not self.stopping.is_set():
                    for records in consumer.poll(timeout_ms=500).values():
                        for record in records:
                            self._deliver(record.value)
                consumer.close()
            except Exception:  # noqa: BLE001 - broker away: retry; clients keep their last value
                self.connected = False
                self.stopping.wait(1.0)

    def _deliver(self, raw: bytes) -> None:
        try:
            change = Envelope.from_bytes(raw).payload
            str(change["productId"])
        except Exception:  # noqa: BLE001 - a malformed message must not stop the feed
            return
        self.loop.call_soon_threadsafe(self.hub.publish, change)


def _sse(change: dict[str, Any]) -> bytes:
    data = json.dumps({"productId": str(change["productId"]), "stock": change["stock"], "status": change["status"]})
    return f"id: {change.get('version', 0)}\nevent: stock\ndata: {data}\n\n".encode()


class LiveStockApp:
    """The ASGI application."""

    def __init__(self) -> None:
        self.hub = Hub()
        self.feed: KafkaFeed | None = None
        self.shutting_down = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.feed = KafkaFeed(self.hub, asyncio.get_running_loop())
                self.feed.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.shutting_down = True
                self.hub.close_all()
                if self.feed is not None:
                    self.feed.stopping.set()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _json(self, send: Any, status: int, body: dict[str, Any]) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"access-control-allow-origin", ALLOW_ORIGIN.encode())]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/health" and method == "GET":
            connected = bool(self.feed and self.feed.connected)
            await self._json(send, 200 if connected else 503,
                             {"healthy": connected, "subscribers": self.hub.count(), "published": self.hub.published})
            return
        match = _PATH.match(path)
        if not match:
            await self._json(send, 404, {"error": {"code": "NOT_FOUND", "message": "no such stream", "details": {}}})
            return
        if method != "GET":
            await self._json(send, 405, {"error": {"code": "METHOD_NOT_ALLOWED", "message": "GET only", "details": {}}})
            return
        try:
            product_id = parse_product_id(match.group(1))
            level = await asyncio.to_thread(read_stock, product_id)
        except DropError as err:
            await self._json(send, err.http_status, err.to_body())
            return
        except Exception:  # noqa: BLE001 - Redis/MySQL away: ask the client to come back
            await self._json(send, 503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "try again",
                                                   "details": {}}})
            return
        headers = dict((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
        await self._stream(send, receive, str(product_id), level.to_json() | {"version": level.version},
                           headers.get("last-event-id"))

    async def _stream(self, send: Any, receive: Any, product_id: str, current: dict[str, Any],
                      last_event_id: str | None) -> None:
        subscriber = self.hub.subscribe(product_id)
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            subscriber.wake.set()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"), (b"access-control-allow-origin", ALLOW_ORIGIN.encode())]})
            first = f"retry: {RETRY_MS}\n\n".encode()
            newer = self.hub.last.get(product_id)
            if newer is not None and newer.get("version", 0) != current["version"]:
                current = newer  # a change arrived while we read the stock
            sent_version = current["version"]
            if last_event_id != str(sent_version):
                first += _sse(current)
            await send({"type": "http.response.body", "body": first, "more_body": True})
            while not disconnected.is_set() and not self.shutting_down:
                try:
                    await asyncio.wait_for(subscriber.wake.wait(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    await send({"type": "http.response.body", "body": b": heartbeat\n\n", "more_body": True})
                    continue
                change = subscriber.take()
                if change is not None and change.get("version") != sent_version:
                    sent_version = change.get("version")
                    await send({"type": "http.response.body", "body": _sse(change), "more_body": True})
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            self.hub.unsubscribe(subscriber)


app = LiveStockApp()
