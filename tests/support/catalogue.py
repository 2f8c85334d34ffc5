"""Helpers for catalogue tests: the API base URL, creating products over HTTP, bounded waits, Kafka taps."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition

from goodsdrop import topics
from goodsdrop.events import Envelope
from goodsdrop.settings import settings
from tests.support.accounts import Account

API = f"http://127.0.0.1:{settings.api_port}"


def unique_word() -> str:
    """A word no other product contains (letters only, so the full-text index keeps it whole)."""
    return "zq" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def create_product(seller: Account, **fields: Any) -> dict[str, Any]:
    """POST /products as `seller`; returns the created product (asserting 201)."""
    body = {"name": f"Test product {unique_word()}", "description": "A product made by a test", "price": 1000,
            "stock": 10} | fields
    response = httpx.post(f"{API}/products", json=body, headers=seller.headers(), timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


class StockChangedTap:
    """Reads the stock-changed topic from "now" on (every partition), to see what a change emitted."""

    def __init__(self) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                      enable_auto_commit=False, consumer_timeout_ms=500)
        name = topics.topic(topics.STOCK_CHANGED)
        partitions = [TopicPartition(name, p) for p in sorted(self.consumer.partitions_for_topic(name) or [])]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            self.consumer.position(tp)  # resolve "end" now, before the change under test happens

    def events_for(self, product_id: str, seconds: float = 10.0) -> list[Envelope]:
        """StockChanged envelopes about `product_id` seen within `seconds` (stops at the first batch found)."""
        found: list[Envelope] = []
        deadline = time.monotonic() + seconds
        while not found and time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=500).values():
                for record in records:
                    envelope = Envelope.from_bytes(record.value)
                    if envelope.payload.get("productId") == product_id:
                        found.append(envelope)
        return found

    def close(self) -> None:
        self.consumer.close()
