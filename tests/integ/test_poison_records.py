"""No bad record can stall the saga (issue 14): every consumer dead-letters what can never succeed at once,
with its reason, source and consumer name, and the orders around it go on.

On the running stack: bad records are written straight to the consumed topics, then real orders are placed.
"""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from bench.poison import CONSUMED, KINDS, expected_reason, write_bad_records
from goodsdrop import dead_letters, payment_gateway, topics
from goodsdrop.events import Envelope
from goodsdrop.ids import new_ulid
from goodsdrop.settings import settings
from goodsdrop.stock import read_stock
from tests.support.accounts import new_account
from tests.support.orders import API, make_product, mysql_stock, place, records_for, wait_final, wait_for


def dead_lettered(since_ms: int) -> dict[tuple[str, int, int], dead_letters.DeadLetter]:
    """Every dead letter written since `since_ms`, by the (topic, partition, offset) of its record."""
    found = {}
    for message in records_for(topics.DEAD_LETTERS, None, since_ms):
        letter = dead_letters.read(message)
        if isinstance(letter, dead_letters.DeadLetter):
            found[(letter.source_topic, letter.source_partition, letter.source_offset)] = letter
    return found


def payments_mapping(client) -> dict:
    """ProcessPaymentMapping's figures in /health (its pollers summed)."""
    return next(m for m in client.get(f"{API}/health").json()["mappings"] if m["mapping"] == "ProcessPaymentMapping")


def test_the_issue_scenario_malformed_records_on_every_partition_then_six_orders(client):
    """Three malformed records on each partition of order-requested, then six orders: all confirm."""
    since = int(time.time() * 1000) - 1000
    before = payments_mapping(client)
    seller, buyer = new_account(seller=True), new_account()
    product = make_product(seller, 20, price=700)
    read_stock(product)  # Redis has its stock epoch (an order nobody reserved is recognised as such)
    name = topics.topic(topics.ORDER_REQUESTED)
    meta = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    partitions = sorted(meta.partitions_for_topic(name))
    meta.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    written, never = [], []
    for partition in partitions:
        nobody = new_ulid()
        never.append(nobody)
        now = int(time.time() * 1000)
        never_placed = Envelope(type="OrderRequested", correlation_id=nobody, payload={
            "orderId": nobody, "memberId": str(buyer.member_id), "total": 700, "paymentToken": "tok_ok",
            "lines": [{"productId": str(product), "quantity": 1, "price": 700}], "reservedAt": now,
            "expiresAt": now + 600_000})
        for value, reason in ((b"plain text, not an order", "UNDECODABLE"),
                              (json.dumps({"orderId": nobody, "total": 700}).encode(), "ENVELOPE_INVALID"),
                              (never_placed.to_bytes(), "UNKNOWN_ORDER")):
            meta_ = producer.send(name, partition=partition, key=nobody.encode(), value=value).get(timeout=10)
            written.append(((meta_.topic, meta_.partition, meta_.offset), reason))
    producer.close()

    buyers = [new_account() for _ in range(6)]
    orders = [(b, place(client, b, [(product, 1)]).json()["orderId"]) for b in buyers]
    assert [wait_final(client, b, o, seconds=60)["status"] for b, o in orders] == ["CONFIRMED"] * 6
    assert mysql_stock(product) == 14

    letters = wait_for(lambda: (d := dead_lettered(since)) and all(w in d for w, _ in written) and d, 30)
    assert letters, "not every malformed record reached the dead-letter topic"
    for where, reason in written:
        letter = letters[where]
        assert (letter.kind, letter.reason, letter.consumer) == ("consumer", reason, "ProcessPaymentFunction")
        assert letter.source == f"{where[0]}:{where[1]}:{where[2]}" and letter.detail
    assert all(payment_gateway.books(order)["captured"] == 0 for order in never)  # nobody was charged for them
    health = client.get(f"{API}/health").json()["pollers"]["ProcessPaymentMapping-0"]
    assert health["ok"] and not any(p["retrying"] for p in health["partitions"].values())
    # /health counts them, per mapping: dead-lettered by the function, and the orders processed.
    after = wait_for(lambda: (m := payments_mapping(client))["dead_lettered"] >= before["dead_lettered"] + 9 and m, 10)
    assert after and after["processed"] >= before["processed"] + 15 and after["up"], payments_mapping(client)
    assert set(after["lag"]) == {f"{name}-{p}" for p in partitions}


@pytest.mark.parametrize("topic_name", list(CONSUMED))
def test_every_consumer_dead_letters_each_kind_of_bad_record_at_once(client, topic_name):
    since = int(time.time() * 1000) - 1000
    seller, buyer = new_account(seller=True), new_account()
    product = make_product(seller, 5, price=1000)
    read_stock(product)
    written = write_bad_records([topic_name], 1, int(buyer.member_id), product)
    assert {w.kind for w in written} == set(KINDS)
    letters = wait_for(lambda: (d := dead_lettered(since))
                       and all((w.topic, w.partition, w.offset) in d for w in written) and d, 60)
    assert letters, f"not every bad record of {topic_name} was dead-lettered"
    for w in written:
        letter = letters[(w.topic, w.partition, w.offset)]
        assert letter.kind == "consumer" and letter.consumer == CONSUMED[topic_name], letter
        assert letter.reason == expected_reason(topic_name, w.kind), (w.kind, letter.reason, letter.detail)
    # The mapping retried none of them: each was handed over once and its partition moved on.
    mapping = {"OnStockChangedFunction": "OnStockChangedMapping"}.get(CONSUMED[topic_name],
                                                                        CONSUMED[topic_name].replace("Function",
                                                                                                     "Mapping"))
    status = wait_for(lambda: (s := client.get(f"{API}/health").json()["pollers"][f"{mapping}-0"])
                      and all(not p["retrying"] for p in s["partitions"].values()) and s, 30)
    assert status and status["ok"], status
