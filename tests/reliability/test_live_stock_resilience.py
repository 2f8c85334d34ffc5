"""The live-stock container survives the broker going away under open streams."""

from __future__ import annotations

import time

from goodsdrop.stock import set_stock
from goodsdrop_local import stack as local_stack
from tests.integ.test_first_slice import STREAM, SseReader
from tests.support.polling import wait_for
from tests.support.products import new_product


def test_streams_survive_a_kafka_restart(stack):
    product_id = new_product(stock=50, name="Resilience")
    reader = SseReader(f"{STREAM}/stream/products/{product_id}/stock")
    reader.start()
    assert reader.opened.wait(10) and reader.status == 200
    assert wait_for(lambda: reader.events, 5)
    kafka = local_stack.KafkaServer()
    kafka.stop()
    try:
        time.sleep(2)
    finally:
        kafka.start()
    # After the broker is back, the same open stream sees the next change: the container's feed
    # reconnected by itself and the client never had to.
    level = wait_for(lambda: _try_set(product_id, 77), 60)
    assert level, "the broker did not come back"
    assert wait_for(lambda: any(e["data"]["stock"] == 77 for e in reader.events), 30), reader.raw[-500:]
    assert reader.is_alive()


def _try_set(product_id: int, stock: int):
    try:
        return set_stock(product_id, stock)
    except Exception:
        return None


def test_graceful_shutdown_ends_open_streams_cleanly(stack, tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    from goodsdrop_local.template import REPO_ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port),
           "PYTHONPATH": f"{REPO_ROOT}/containers:{REPO_ROOT}/layers/common"}
    container = subprocess.Popen([sys.executable, "-m", "live_stock"], env=env, cwd=REPO_ROOT)
    try:
        assert wait_for(lambda: _healthy(httpx, port), 20), "the container did not start"
        product_id = new_product(stock=9, name="Shutdown")
        reader = SseReader(f"http://127.0.0.1:{port}/stream/products/{product_id}/stock")
        reader.start()
        assert reader.opened.wait(10) and wait_for(lambda: reader.events, 5)
        container.send_signal(signal.SIGTERM)
        reader.join(10)
        assert not reader.is_alive(), "the stream was not closed"
        assert reader.error is None, f"the stream broke instead of ending: {reader.error!r}"
        assert container.wait(10) == 0
    finally:
        if container.poll() is None:
            container.kill()


def _healthy(httpx, port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
