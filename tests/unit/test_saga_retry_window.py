"""The saga's retries outlast a brief outage of Redis or MariaDB (found by the Redis chaos drill: after 5
quick retries a paid order's PaymentSucceeded was dead-lettered while Redis restarted, and the order
stayed PENDING until its reservation expired ten minutes later, then was refunded: a lost sale)."""

from __future__ import annotations

from goodsdrop_local.kafka_poller import _backoff
from goodsdrop_local.template import load

SAGA_GROUPS = {"goodsdrop-payments", "goodsdrop-order-persistence", "goodsdrop-stock-persistence",
               "goodsdrop-compensation", "goodsdrop-returns"}
PRODUCTION_BACKOFF_BASE = "0.1"  # the runtime's default (Lambda does not document its backoff for Kafka)


def test_every_saga_step_retries_for_about_a_minute_before_dead_lettering(monkeypatch):
    monkeypatch.setenv("GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS", PRODUCTION_BACKOFF_BASE)
    mappings = [m for m in load().kafka if m.consumer_group in SAGA_GROUPS]
    assert {m.consumer_group for m in mappings} == SAGA_GROUPS
    for mapping in mappings:
        retries = mapping.effective_retries
        assert retries is not None and mapping.on_failure_topic
        window = sum(_backoff(attempt) for attempt in range(1, retries + 1))
        assert window >= 60, (mapping.name, window)
