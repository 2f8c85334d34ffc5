"""The dead-letter topic's two formats, as written (a consumer's RecordDeadLettered envelope, the local runtime's
copy of Lambda's on-failure record) and as read back by goodsdrop.dead_letters.read (what `make dlq` shows)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

from kafka.consumer.fetcher import ConsumerRecord

from goodsdrop import dead_letters, failures, topics
from goodsdrop.events import Envelope
from goodsdrop_local.kafka_poller import on_failure_record
from goodsdrop_local.template import KafkaMapping

SOURCE = {"topic": "goodsdrop.order-placed", "partition": 2, "offset": 41, "timestamp": 1767225600000,
          "timestampType": "CREATE_TIME", "key": base64.b64encode(b"01KORDER").decode(),
          "value": base64.b64encode(b'{"type": "OrderPlaced"}').decode(), "headers": [{"trace": list(b"t-1")}]}


def message(value: bytes, partition: int = 1, offset: int = 7) -> SimpleNamespace:
    """A record of the dead-letter topic, as kafka-python hands it over."""
    return SimpleNamespace(topic="goodsdrop.dead-letters", partition=partition, offset=offset, timestamp=1767225601000,
                           key=b"01KORDER", value=value, headers=[])


def test_a_consumers_dead_letter_carries_the_reason_the_consumer_and_the_record(monkeypatch):
    sent = []
    monkeypatch.setattr(dead_letters, "publish", lambda name, envelope, key, **kw: sent.append((name, envelope, key,
                                                                                                 kw)))
    failure = failures.Failure(failures.PERMANENT, failures.UNKNOWN_ORDER, "NotFound: order 01KORDER ...")
    dead_letters.write(SOURCE, failure, "ConfirmOrderFunction", "stock-persistence")
    (name, envelope, key, kw) = sent[0]
    assert name == topics.DEAD_LETTERS and key == b"01KORDER"
    assert envelope.type == "RecordDeadLettered" and envelope.version == 1 and envelope.correlation_id == "01KORDER"
    assert dict(kw["headers"]) == {"goodsdrop-dead-letter-reason": b"UNKNOWN_ORDER",
                                   "goodsdrop-dead-letter-consumer": b"ConfirmOrderFunction",
                                   "goodsdrop-dead-letter-source": b"goodsdrop.order-placed:2:41"}
    # Written again for the same record (a crash, a redelivery): the same event id, a recognisable repeat.
    dead_letters.write(SOURCE, failure, "ConfirmOrderFunction", "stock-persistence")
    assert sent[1][1].event_id == envelope.event_id

    letter = dead_letters.read(message(envelope.to_bytes()))
    assert (letter.kind, letter.reason, letter.consumer, letter.id) == ("consumer", "UNKNOWN_ORDER",
                                                                        "ConfirmOrderFunction", "1:7")
    assert letter.source == "goodsdrop.order-placed:2:41" and letter.source_timestamp == 1767225600000
    assert (letter.key, letter.value, letter.headers) == (b"01KORDER", b'{"type": "OrderPlaced"}', [("trace", b"t-1")])


def test_lambdas_on_failure_record_is_read_the_same_way():
    mapping = KafkaMapping(name="ConfirmOrderMapping", function_id="ConfirmOrderFunction",
                           topics=["goodsdrop.order-placed"], consumer_group="g")
    record = ConsumerRecord("goodsdrop.order-placed", 2, 0, 41, 1767225600000, 0, b"01KORDER",
                            b'{"type": "OrderPlaced"}', [("trace", b"t-1")], None, 8, 23, -1)
    doc = json.loads(on_failure_record(record, mapping, "b:9092", "RetriesExhausted", 11, "Unhandled"))
    assert set(doc) == {"requestContext", "responseContext", "version", "timestamp", "KafkaBatchInfo", "payload"}
    assert doc["requestContext"]["functionArn"].endswith(":function:ConfirmOrderFunction")
    assert doc["KafkaBatchInfo"]["recordInfo"]["offset"] == "41"
    letter = dead_letters.read(message(json.dumps(doc).encode()))
    assert (letter.kind, letter.reason, letter.consumer) == ("mapping", "RetriesExhausted", "ConfirmOrderFunction")
    assert letter.source == "goodsdrop.order-placed:2:41" and "11 invocation" in letter.detail
    assert (letter.key, letter.value, letter.headers) == (b"01KORDER", b'{"type": "OrderPlaced"}', [("trace", b"t-1")])


def test_replay_markers_and_unreadable_messages():
    marker = Envelope(type="DeadLetterReplayed", payload={"deadLetter": "1:7", "replayedTo": "t:2:99"})
    assert isinstance(dead_letters.read(message(marker.to_bytes())), Envelope)
    for junk in (b"\xff not json", b'{"type": "RecordDeadLettered", "payload": {}}', b"[]"):
        letter = dead_letters.read(message(junk))
        assert (letter.kind, letter.reason, letter.source_topic) == ("unreadable", "UNREADABLE", "")
