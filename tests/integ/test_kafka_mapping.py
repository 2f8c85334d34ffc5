"""Kafka event-source mappings on a real broker: batches, retries, bisection, partial failures, DLQ, and
per-partition delivery (a partition retrying a record holds up only itself)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from goodsdrop.settings import settings
from goodsdrop_local.kafka_poller import MappingPoller
from goodsdrop_local.status import read_status
from goodsdrop_local.template import load
from tests.support.polling import wait_for

FIXTURE = Path(__file__).parents[1] / "fixtures" / "template.yaml"


@pytest.fixture(scope="module")
def fixture_app():
    return load(FIXTURE, environ={})


@pytest.fixture
def topics(servers):
    """A fresh single-partition source topic and its dead-letter topic."""
    name = f"test.mapping.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(name, 1, 1), NewTopic(name + ".dlq", 1, 1)])
    admin.close()
    return name, name + ".dlq"


def produce(topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for i, value in enumerate(values):
        producer.send(topic, key=f"k{i}".encode(), value=value, headers=[("trace", b"t-1")])
    producer.flush()
    producer.close()


def read_all(topic: str) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, group_id=None)
    records = list(consumer)
    consumer.close()
    return records


def poller_for(fixture_app, topics, tmp_path, monkeypatch, handler: str, **changes) -> tuple[MappingPoller, Path]:
    log = tmp_path / "deliveries.txt"
    monkeypatch.setenv("DELIVERY_LOG", str(log))
    source, dlq = topics
    mapping = next(m for m in fixture_app.kafka if m.name == "ConsumerMapping")
    mapping = replace(mapping, topics=[source], on_failure_topic=dlq, consumer_group=f"g-{source}", **changes)
    spec = replace(fixture_app.functions["ConsumerFunction"], handler=f"kafka_consumer.{handler}")
    return MappingPoller(mapping, spec, settings.kafka_bootstrap), log


def delivered(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def dead_values(topic: str) -> list[bytes]:
    """The original values of the records in the on-failure destination, in order."""
    values = []
    for message in read_all(topic):
        (records,) = json.loads(message.value)["payload"]["records"].values()
        values += [base64.b64decode(r["value"]) for r in records]
    return values


def test_a_failing_batch_is_bisected_retried_and_its_poison_dead_lettered(fixture_app, topics, tmp_path, monkeypatch):
    produce(topics[0], [b"ok-1", b"ok-2", b"poison-3", b"ok-4"])
    poller, log = poller_for(fixture_app, topics, tmp_path, monkeypatch, "handler")
    poller.run(max_idle_polls=2)

    seen = delivered(log)
    # Bisection isolates the poison: it is tried once plus MaximumRetryAttempts (2) times alone.
    assert seen.count("poison-3") >= 3
    assert {"ok-1", "ok-2", "ok-4"} <= set(seen)
    (dead,) = read_all(topics[1])
    # AWS's on-failure record for a kafka:// destination: keyed like the record, failure metadata and the
    # Lambda event of the record as the payload.
    assert dead.key == b"k2"
    doc = json.loads(dead.value)
    assert doc["requestContext"]["condition"] == "RetriesExhausted"
    assert doc["requestContext"]["functionArn"].endswith(":function:ConsumerFunction")
    assert doc["requestContext"]["approximateInvokeCount"] == 3
    assert doc["responseContext"]["functionError"] == "Unhandled"
    assert doc["KafkaBatchInfo"]["batchSize"] == 1 and doc["KafkaBatchInfo"]["recordInfo"]["offset"] == "2"
    (record,) = doc["payload"]["records"][f"{topics[0]}-0"]
    assert base64.b64decode(record["value"]) == b"poison-3" and record["offset"] == 2
    assert record["headers"] == [{"trace": list(b"t-1")}]
    assert poller.counters.dead_lettered_by_mapping == 1

    # Offsets were committed: the same consumer group gets nothing again.
    (tmp_path / "x").mkdir()
    again, again_log = poller_for(fixture_app, topics, tmp_path / "x", monkeypatch, "handler")
    again.run(max_idle_polls=2)
    assert delivered(again_log) == []


def test_without_bisection_the_whole_batch_goes_to_the_destination(fixture_app, topics, tmp_path, monkeypatch):
    produce(topics[0], [b"ok-1", b"poison-2"])
    poller, log = poller_for(fixture_app, topics, tmp_path, monkeypatch, "handler", bisect_on_error=False,
                             maximum_retry_attempts=1)
    poller.run(max_idle_polls=2)
    assert delivered(log) == ["ok-1", "poison-2"] * 2  # first attempt + one retry
    assert dead_values(topics[1]) == [b"ok-1", b"poison-2"]


def test_partial_batch_response_retries_only_from_the_failed_record(fixture_app, topics, tmp_path, monkeypatch):
    produce(topics[0], [b"ok-1", b"poison-2", b"ok-3"])
    poller, log = poller_for(fixture_app, topics, tmp_path, monkeypatch, "partial", maximum_retry_attempts=1)
    poller.run(max_idle_polls=2)
    seen = delivered(log)
    assert seen.count("ok-1") == 1  # before the failed offset: done, never redelivered
    assert seen.count("poison-2") == 2  # first try + one retry
    assert seen.count("ok-3") == 2  # after the failed offset in its partition: retried with it
    assert dead_values(topics[1]) == [b"poison-2", b"ok-3"]


def test_success_commits_and_nothing_is_dead_lettered(fixture_app, topics, tmp_path, monkeypatch):
    produce(topics[0], [f"ok-{i}".encode() for i in range(25)])
    poller, log = poller_for(fixture_app, topics, tmp_path, monkeypatch, "handler", batch_size=10)
    poller.run(max_idle_polls=2)
    assert delivered(log) == [f"ok-{i}" for i in range(25)]
    assert poller.counters.invocations >= 3  # BatchSize 10 → at least three invocations
    assert poller.counters.processed == 25 and poller.counters.retried == 0
    assert read_all(topics[1]) == []


def test_pollers_of_one_mapping_share_the_partitions_and_keep_their_order(fixture_app, servers, tmp_path,
                                                                           monkeypatch):
    name = f"test.scale.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(name, 4, 1)])
    admin.close()
    pollers = [poller_for(fixture_app, (name, name + ".dlq"), tmp_path, monkeypatch, "handler")[0] for _ in range(2)]
    for poller in pollers:
        poller.mapping = replace(poller.mapping, consumer_group=f"g-{name}")
    threads = [threading.Thread(target=p.run, kwargs={"max_idle_polls": 120}) for p in pollers]
    for thread in threads:
        thread.start()
    try:
        # Both pollers joined the group and each holds a share of the four partitions.
        assert wait_for(lambda: all(p._consumer is not None and p._consumer.assignment() for p in pollers), 30)
        shares = [len(p._consumer.assignment()) for p in pollers]
        assert sorted(shares) == [2, 2]
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        for seq in range(60):
            key = f"order-{seq % 6}"
            producer.send(name, key=key.encode(), value=f"{key}:{seq:03d}".encode())
        producer.flush()
        producer.close()
        assert wait_for(lambda: len(delivered(tmp_path / "deliveries.txt")) >= 60, 30)
    finally:
        for poller in pollers:
            poller.stop()
        for thread in threads:
            thread.join(30)
    seen = delivered(tmp_path / "deliveries.txt")
    assert sorted(seen) == sorted(f"order-{s % 6}:{s:03d}" for s in range(60))  # each exactly once
    for key in {v.split(":")[0] for v in seen}:
        sequence = [v for v in seen if v.startswith(key + ":")]
        assert sequence == sorted(sequence), f"{key} was processed out of order"
    assert all(p.counters.processed > 0 for p in pollers), "one poller did no work"


def test_a_partition_retrying_a_record_holds_up_only_itself(fixture_app, servers, tmp_path, monkeypatch):
    """Partition 0 retries a record with backoff; partition 1 keeps flowing, and the status says so meanwhile."""
    name = f"test.lanes.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(name, 2, 1), NewTopic(name + ".dlq", 1, 1)])
    admin.close()
    fixed = tmp_path / "fixed"
    monkeypatch.setenv("STALL_FIXED", str(fixed))
    monkeypatch.setenv("GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS", "0.5")  # retries stay slow while we look
    poller, log = poller_for(fixture_app, (name, name + ".dlq"), tmp_path, monkeypatch, "stall",
                             maximum_retry_attempts=10, name=f"Lanes{uuid.uuid4().hex[:6]}")
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(name, partition=0, value=b"stall-0")
    producer.flush()
    thread = threading.Thread(target=poller.run, kwargs={"max_idle_polls": 10_000})
    thread.start()
    try:
        assert wait_for(lambda: delivered(log).count("stall-0") >= 2, 30), "partition 0 is not retrying"
        for i in range(3):  # behind the failing record in its partition
            producer.send(name, partition=0, value=f"after-{i}".encode())
        for i in range(20):  # while partition 0 retries
            producer.send(name, partition=1, value=f"other-{i}".encode())
        producer.flush()
        assert wait_for(lambda: {f"other-{i}" for i in range(20)} <= set(delivered(log)), 30), \
            "partition 1 waited for partition 0"
        # Partition 0 kept its order: nothing after the failing record went past it.
        assert not {"after-0", "after-1", "after-2"} & set(delivered(log))
        # The status, written while partition 0 retries: its lag is its four records, partition 1 has none.
        status = wait_for(lambda: (s := read_status("pollers", f"{poller.mapping.name}-0"))
                          and s["partitions"].get(f"{name}-0", {}).get("retrying")
                          and s["partitions"][f"{name}-0"]["lag"] == 4 and s["partitions"][f"{name}-1"]["lag"] == 0
                          and s, 10)
        assert status, read_status("pollers", f"{poller.mapping.name}-0")
        assert time.time() - status["updated"] < 5 and status["retried"] >= 1 and status["processed"] >= 20
        fixed.touch()  # the fix: partition 0 goes on, in order
        assert wait_for(lambda: {"after-0", "after-1", "after-2"} <= set(delivered(log)), 30)
    finally:
        poller.stop()
        thread.join(30)
        producer.close()
    seen = delivered(log)
    assert [v for v in seen if v.startswith("after-")] == ["after-0", "after-1", "after-2"]
    assert seen.index("after-0") > max(i for i, v in enumerate(seen) if v == "stall-0")
    assert read_all(name + ".dlq") == []
    assert poller.counters.dead_lettered == 0 and poller.counters.retried >= 2
