"""The live-stock HTTP server: `GET /stream/products/{id}/stock` as Server-Sent Events.

A small asyncio protocol server rather than a framework: a stock change is one encoded chunk
written straight to each subscriber's transport, which keeps fan-out to 1,000+ clients within a
few milliseconds. Flow control gives the "latest value wins" rule: when a client's socket buffer
is full, only the newest pending chunk is kept and sent once it drains.

Contract: an event `stock` with `{productId, stock, status}` at once (unless `Last-Event-ID`
already names the current version) and on every change, `id:` = the stock version, a heartbeat
comment every 15 s, `retry:` advice, CORS for the storefront, 404 before streaming for an
unknown product, 400 for a malformed id, 503 when the stock cannot be read right now.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from typing import Any
from urllib.parse import parse_qs

from goodsdrop.drop_watch import ticket_product
from goodsdrop.errors import DropError
from goodsdrop.products import parse_product_id
from goodsdrop.settings import settings
from goodsdrop.stock import read_stock
from live_stock.drops import DropHub, first_frame
from live_stock.feed import KafkaFeed
from live_stock.hub import Hub, chunk, sse_frame

HEARTBEAT_SECONDS = float(os.environ.get("GOODSDROP_SSE_HEARTBEAT_SECONDS", "15"))
RETRY_MS = 3000
ALLOW_ORIGIN = settings.allowed_origin  # the template's AllowedOrigin, like the API's
MAX_REQUEST_BYTES = 16 * 1024
HIGH_WATER = 64 * 1024  # bytes queued for one client before it counts as slow
_STREAM_PATH = re.compile(r"^/stream/products/([^/?]+)/stock/?(?:\?.*)?$")
_DROP_PATH = re.compile(r"^/stream/products/([^/?]+)/drop/?(?:\?(.*))?$")
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class LiveStock:
    """State of one container instance: the hub, the Kafka feed, shutdown."""

    def __init__(self) -> None:
        self.hub = Hub()
        self.drops = DropHub()
        self.feed: KafkaFeed | None = None
        self.closing = False

    def health(self) -> dict[str, Any]:
        connected = bool(self.feed and self.feed.connected)
        return {"healthy": connected and not self.closing, "subscribers": self.hub.count(),
                "published": self.hub.published, "drop_watchers": self.drops.count(),
                "drop_frames": self.drops.frames}


class StreamConnection(asyncio.Protocol):
    """One client connection: parses one request, then answers or streams."""

    def __init__(self, state: LiveStock) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.product_id = ""
        self.watching_drop = False  # a drop stream (DropHub), not a stock stream (Hub)
        self.streaming = False
        self.paused = False
        self.pending: bytes | None = None
        self.sent_version: Any = None

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports aren't asyncio subclasses
        transport.set_write_buffer_limits(high=HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if self.streaming or self.product_id:
            return  # a stream's client has nothing more to say; ignore pipelined bytes
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_REQUEST_BYTES:
                self._reply(431, {"error": {"code": "VALIDATION_ERROR", "message": "request too large", "details": {}}})
            return
        head = self.buffer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            self._reply(400, {"error": {"code": "VALIDATION_ERROR", "message": "malformed request", "details": {}}})
            return
        method, target, _ = parts
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self._route(method, target, headers)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's Protocol signature
        if self.streaming:
            (self.state.drops if self.watching_drop else self.state.hub).unsubscribe(self)
        self.streaming = False

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.pending is not None and self.transport is not None:
            data, self.pending = self.pending, None
            self.transport.write(data)

    # -- the hub's side -----------------------------------------------------------------------
    def deliver(self, version: Any, data: bytes) -> None:
        """Write a change now, or keep it as the newest pending one while the client is slow."""
        if version is not None and version == self.sent_version:
            return
        self.sent_version = version
        if self.paused:
            self.pending = data
        elif self.transport is not None:
            self.transport.write(data)

    def heartbeat(self) -> None:
        if not self.paused and self.transport is not None:
            self.transport.write(chunk(b": heartbeat\n\n"))

    def end(self) -> None:
        """Close the stream cleanly (last chunk), e.g. on shutdown."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"0\r\n\r\n")
            self.transport.close()

    # -- requests -----------------------------------------------------------------------------
    def _route(self, method: str, target: str, headers: dict[str, str]) -> None:
        path = target.split("?", 1)[0]
        if path == "/health" and method == "GET":
            health = self.state.health()
            self._reply(200 if health["healthy"] else 503, health)
            return
        drop = _DROP_PATH.match(target)
        if drop and method == "GET" and not self.state.closing:
            self._watch_drop(drop.group(1), drop.group(2) or "")
            return
        match = _STREAM_PATH.match(target) or drop
        if not match:
            self._reply(404, {"error": {"code": "NOT_FOUND", "message": "no such stream", "details": {}}})
            return
        if method == "OPTIONS":
            self._reply(204, None, {"access-control-allow-methods": "GET, OPTIONS",
                                    "access-control-allow-headers": "Last-Event-ID, Cache-Control",
                                    "access-control-max-age": "600"})
            return
        if method != "GET":
            self._reply(405, {"error": {"code": "METHOD_NOT_ALLOWED", "message": "GET only", "details": {}}})
            return
        if self.state.closing:
            self._reply(503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "shutting down", "details": {}}},
                        {"retry-after": "1"})
            return
        try:
            product_id = parse_product_id(match.group(1))
        except DropError as err:
            self._reply(err.http_status, err.to_body())
            return
        self.product_id = str(product_id)
        task = asyncio.get_running_loop().run_in_executor(None, read_stock, product_id)
        task.add_done_callback(lambda done: self._start_stream(done, headers.get("last-event-id")))

    def _start_stream(self, done: asyncio.Future[Any], last_event_id: str | None) -> None:
        if self._refused_by(done, "stock is unavailable, try again"):
            return
        level = done.result()
        current = level.to_json() | {"version": level.version}
        newer = self.state.hub.last.get(self.product_id)
        if newer is not None and newer.get("version") != current["version"]:
            current = newer  # a change arrived while the stock was being read
        head = ("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
                f"x-accel-buffering: no\r\naccess-control-allow-origin: {ALLOW_ORIGIN}\r\n"
                "transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n")
        first = f"retry: {RETRY_MS}\n\n".encode()
        if last_event_id != str(current["version"]):
            first += sse_frame(current)
        self.sent_version = current["version"]
        self.transport.write(head.encode() + chunk(first))
        self.streaming = True
        self.state.hub.subscribe(self)

    # -- the drop stream ---------------------------------------------------------------------
    def _watch_drop(self, raw_id: str, query: str) -> None:
        try:
            product_id = parse_product_id(raw_id)
        except DropError as err:
            self._reply(err.http_status, err.to_body())
            return
        ticket = parse_qs(query).get("ticket", [""])[0]
        self.product_id, self.watching_drop = str(product_id), True

        def open_stream() -> tuple[int | None, bytes, int]:
            allowed = ticket_product(ticket)
            if allowed != product_id:
                return allowed, b"", 0
            return allowed, *first_frame(product_id)

        task = asyncio.get_running_loop().run_in_executor(None, open_stream)
        task.add_done_callback(lambda done: self._start_drop_stream(done, product_id))

    def _start_drop_stream(self, done: asyncio.Future[Any], product_id: int) -> None:
        if self._refused_by(done, "figures are unavailable, try again"):
            return
        allowed, first, up_to = done.result()
        if allowed is None:
            self._reply(401, {"error": {"code": "UNAUTHORIZED", "message": "a valid stream ticket is required "
                                        "(POST /dashboard/products/{id}/stream-ticket)", "details": {}}})
            return
        if allowed != product_id:
            self._reply(403, {"error": {"code": "FORBIDDEN", "message": "this ticket is for another product",
                                        "details": {}}})
            return
        head = ("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
                f"x-accel-buffering: no\r\naccess-control-allow-origin: {ALLOW_ORIGIN}\r\n"
                "transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n")
        self.transport.write(head.encode() + chunk(f"retry: {RETRY_MS}\n\n".encode() + first))
        self.streaming = True
        self.state.drops.subscribe(self, up_to)

    def _refused_by(self, done: asyncio.Future[Any], unavailable: str) -> bool:
        """Answer a stream's failed first read (the connection gone, a DropError, or any fault: 503); True if so."""
        if self.transport is None or self.transport.is_closing():
            return True
        error = done.exception()
        if isinstance(error, DropError):
            self._reply(error.http_status, error.to_body())
            return True
        if error is not None:
            self._reply(503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": unavailable,
                                        "details": {}}}, {"retry-after": "1"})
            return True
        return False

    def _reply(self, status: int, body: dict[str, Any] | None, extra: dict[str, str] | None = None) -> None:
        if self.transport is None:
            return
        payload = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json", "content-length": str(len(payload)),
                   "access-control-allow-origin": ALLOW_ORIGIN, "connection": "close", **(extra or {})}
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.transport.write(head.encode() + payload)
        self.transport.close()


async def serve(host: str, port: int) -> None:
    """Run until SIGTERM/SIGINT, then end every stream cleanly."""
    loop = asyncio.get_running_loop()
    state = LiveStock()
    state.feed = KafkaFeed(state.hub.publish, loop)
    state.feed.start()
    server = await loop.create_server(lambda: StreamConnection(state), host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def heartbeats() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for subscriber in [*state.hub.all(), *state.drops.all()]:
                subscriber.heartbeat()  # type: ignore[attr-defined]

    beating = asyncio.create_task(heartbeats())
    ticking = asyncio.create_task(state.drops.run(loop))
    await stop.wait()
    state.closing = True
    beating.cancel()
    ticking.cancel()
    server.close()
    for subscriber in [*state.hub.all(), *state.drops.all()]:
        subscriber.end()  # type: ignore[attr-defined]
    state.feed.stopping.set()
    await asyncio.sleep(0.1)
