"""Transactional outbox: an event is written in the same MySQL transaction as the change it announces.

Publishing to Kafka inside a transaction can announce a change that then rolls back (a refund
for a cancel that never happened, whose deterministic id later drops the real one as a repeat);
publishing after the commit can be lost if the process dies in between. So saga events are rows
of the `outbox` table, inserted by `Transaction.add` inside the transaction of the state change:
a rolled-back change leaves no row, a committed one always has its row. Rows reach Kafka two ways:

- fast path: `publish_committed` right after the commit, in the process that committed (the
  consumer runner after each record, the API after a cancel/return, the expiry job);
- sweep: `sweep` publishes rows left unsent for a few seconds (the process died between commit
  and publish, or the broker was away); the scheduled RelayOutboxFunction runs it every minute
  (on AWS an EventBridge schedule; locally the runtime's schedule emulation runs the same
  function), and a step that receives a repeat of its input relays that order's rows at once.

A row is marked sent only after the broker acknowledged it, so an event may be published twice
(crash between publish and mark, or fast path and sweep racing) but never lost; it goes out with
the event id stored in its row, and every consumer drops the repeat by that id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from pymysql.cursors import DictCursor

from goodsdrop import topics
from goodsdrop.clients import fetch_one, kafka_producer, mysql_cursor, mysql_transaction
from goodsdrop.events import Envelope

logger = Logger(child=True)

SWEEP_GRACE_SECONDS = 5  # the fast path's head start before the sweep takes a row
SWEEP_BATCH = 500
KEEP_SENT_DAYS = 7
PUBLISH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Row:
    """One outbox row: the topic's short name (goodsdrop.topics), key and envelope bytes."""

    id: int
    topic: str
    key: str
    body: bytes


@dataclass
class Transaction:
    """A MySQL transaction that can carry events (`add`); `cursor` runs its statements."""

    cursor: DictCursor
    rows: list[Row] = field(default_factory=list)

    def add(self, name: str, event: Envelope, key: str) -> None:
        """Write `event` for topic `name` (keyed `key`) in this transaction: published once it commits."""
        body = event.to_bytes()
        self.cursor.execute("INSERT INTO outbox (topic, message_key, event_id, body, created_at) "
                            "VALUES (%s, %s, %s, %s, UTC_TIMESTAMP(3))", (name, key, event.event_id, body))
        self.rows.append(Row(int(self.cursor.lastrowid), name, key, body))


@dataclass
class _Pending:
    row: Row
    future: Any = None  # the producer's future once sent


_committed: list[_Pending] = []  # rows whose transaction committed in this process, not yet confirmed


@contextmanager
def transaction() -> Iterator[Transaction]:
    """A MySQL transaction whose `add`ed events are queued for `publish_committed` once it commits."""
    with mysql_transaction() as cursor:
        tx = Transaction(cursor)
        yield tx
    _committed.extend(_Pending(row) for row in tx.rows)  # reached only after the commit


def publish_committed(wait: bool = True, timeout: float = PUBLISH_TIMEOUT_SECONDS) -> int:
    """Fast path: send the rows this process committed; with `wait`, confirm them and mark them sent.

    Without `wait` the rows are only handed to the producer (the consumer runner sends after each
    record and confirms once per batch). A failure leaves the rows unsent in MySQL for the sweep and
    never raises: the change is committed either way. Returns how many rows were confirmed.
    """
    if not _committed:
        return 0
    try:
        producer = kafka_producer()
        for pending in _committed:
            if pending.future is None:
                pending.future = producer.send(topics.topic(pending.row.topic), value=pending.row.body,
                                               key=pending.row.key.encode())
        if not wait:
            return 0
        confirmed = list(_committed)
        _committed.clear()
        producer.flush(timeout)
        for pending in confirmed:
            pending.future.get(timeout=0)  # raises if the broker refused it
        _mark_sent([pending.row.id for pending in confirmed])
        return len(confirmed)
    except Exception as err:  # noqa: BLE001 - the sweep publishes what the fast path could not
        _committed.clear()
        logger.warning("outbox fast path failed; the sweep publishes the rows", extra={"error": str(err)})
        return 0


def _mark_sent(ids: list[int]) -> None:
    with mysql_cursor() as cur:
        cur.execute(f"UPDATE outbox SET sent_at = UTC_TIMESTAMP(3) WHERE id IN ({', '.join(['%s'] * len(ids))})", ids)


def _relay(where: str, args: list[Any], timeout: float) -> int:
    """Publish the unsent rows matching `where`, oldest first; mark them sent once acknowledged."""
    with mysql_cursor() as cur:
        cur.execute(f"SELECT id, topic, message_key, body FROM outbox WHERE sent_at IS NULL AND {where} "
                    "ORDER BY id LIMIT %s", [*args, SWEEP_BATCH])
        rows = [Row(int(r["id"]), r["topic"], r["message_key"], bytes(r["body"])) for r in cur.fetchall()]
    if not rows:
        return 0
    producer = kafka_producer()
    futures = [producer.send(topics.topic(row.topic), value=row.body, key=row.key.encode()) for row in rows]
    producer.flush(timeout)
    for future in futures:
        future.get(timeout=0)
    _mark_sent([row.id for row in rows])
    return len(rows)


def relay_unsent(key: str, timeout: float = PUBLISH_TIMEOUT_SECONDS) -> int:
    """Publish every unsent row keyed `key` now (a step got its input again: its committing process may have died)."""
    return _relay("message_key = %s", [key], timeout)


def sweep(grace_seconds: float = SWEEP_GRACE_SECONDS, timeout: float = PUBLISH_TIMEOUT_SECONDS) -> int:
    """Publish rows left unsent for `grace_seconds` or more (up to SWEEP_BATCH per pass); drop old sent rows.

    Returns how many rows were published. Raises when the broker or MySQL is away (the schedule runs
    it again).
    """
    published = 0
    while True:
        batch = _relay("created_at <= UTC_TIMESTAMP(3) - INTERVAL %s MICROSECOND", [int(grace_seconds * 1e6)],
                       timeout)
        published += batch
        if batch < SWEEP_BATCH:
            break
    with mysql_cursor() as cur:
        cur.execute("DELETE FROM outbox WHERE sent_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY LIMIT 5000",
                    (KEEP_SENT_DAYS,))
    return published


def unsent(key: str | None = None) -> int:
    """How many rows are unsent (of `key`, when given): for tests and the status report."""
    with mysql_cursor() as cur:
        if key is None:
            cur.execute("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
        else:
            cur.execute("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL AND message_key = %s", (key,))
        return int(fetch_one(cur)["n"])
