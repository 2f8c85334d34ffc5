"""The stock-changed Kafka topic, read by a background thread and handed to the event loop.

Each container instance reads every partition itself (assigned, no consumer group), from the end:
every instance sees every change, as with one consumer group per instance, without leaving
consumer groups behind when instances come and go. A broker restart is survived by reconnecting;
clients keep their last value meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from goodsdrop import topics
from goodsdrop.events import Envelope
from goodsdrop.settings import settings


class KafkaFeed(threading.Thread):
    """Calls `on_change(payload)` on the loop for every StockChanged event."""

    def __init__(self, on_change: Callable[[dict[str, Any]], None], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="stock-changed-feed", daemon=True)
        self.on_change, self.loop = on_change, loop
        self.stopping = threading.Event()
        self.connected = False

    def run(self) -> None:
        topic = topics.topic(topics.STOCK_CHANGED)
        while not self.stopping.is_set():
            try:
                consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=None,
                                         enable_auto_commit=False, client_id="live-stock", fetch_max_wait_ms=100)
                partitions = consumer.partitions_for_topic(topic) or {0}
                consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
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
            str(change["productId"]), change["stock"], change["status"]
        except Exception:  # noqa: BLE001 - a malformed message must not stop the feed
            return
        self.loop.call_soon_threadsafe(self.on_change, change)
