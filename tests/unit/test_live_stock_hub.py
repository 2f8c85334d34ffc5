"""The SSE fan-out: one encoding per change, only the product's subscribers, latest value wins."""

from __future__ import annotations

from live_stock.hub import Hub, chunk, sse_frame
from live_stock.server import LiveStock, StreamConnection


def change(product, stock, version):
    return {"productId": product, "stock": stock, "status": "on_sale", "version": version}


class FakeTransport:
    """Records writes; `full` makes the connection see a slow client."""

    def __init__(self):
        self.written: list[bytes] = []
        self.closed = False

    def set_write_buffer_limits(self, high):
        self.high = high

    def write(self, data):
        self.written.append(data)

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True


def streaming_connection(product="7"):
    state = LiveStock()
    conn = StreamConnection(state)
    conn.connection_made(FakeTransport())
    conn.product_id, conn.streaming = product, True
    state.hub.subscribe(conn)
    return state, conn


def test_frames_follow_the_sse_format():
    frame = sse_frame(change("7", 3, 12))
    assert frame == b'id: 12\nevent: stock\ndata: {"productId": "7", "stock": 3, "status": "on_sale"}\n\n'
    assert chunk(b"abc") == b"3\r\nabc\r\n"


def test_changes_reach_only_the_products_subscribers():
    hub = Hub()
    (_, a), (_, b) = streaming_connection("1"), streaming_connection("2")
    hub.subscribe(a)
    hub.subscribe(b)
    hub.publish(change("1", 5, 2))
    assert len(a.transport.written) == 1 and b.transport.written == []
    hub.unsubscribe(a)
    hub.unsubscribe(b)
    assert hub.count() == 0 and hub.last["1"]["version"] == 2


def test_a_slow_client_gets_the_latest_value_not_a_backlog():
    state, conn = streaming_connection()
    conn.pause_writing()  # the socket buffer is full
    for version in range(1, 101):
        state.hub.publish(change("7", 100 - version, version))
    assert conn.transport.written == []
    conn.resume_writing()
    (sent,) = conn.transport.written
    assert b"id: 100\n" in sent and b'"stock": 0' in sent


def test_a_version_the_client_has_is_not_sent_twice():
    state, conn = streaming_connection()
    state.hub.publish(change("7", 5, 3))
    state.hub.publish(change("7", 5, 3))  # redelivered by Kafka
    assert len(conn.transport.written) == 1


def test_closing_a_connection_unsubscribes_it():
    state, conn = streaming_connection()
    conn.connection_lost(None)
    assert state.hub.count() == 0
