"""The reservation ledger in MySQL, idempotent-consumer records, and the ledger's catch-up check.

The hot path reserves in Redis only; the first saga consumer (payments) writes each reservation
to `reservations` / `reservation_lines` before any money moves. From then on every step that
ends a reservation locks its ledger row first (`lock`), so payment, persistence, compensation,
expiry and cancellation are serialised per order and each sees the state the previous one left.

If Redis loses its data, the stock is rebuilt from MySQL and the ledger's OPEN rows; the rebuild
first waits until the payments consumer group has read every OrderRequested published before
(`wait_until_caught_up`), so no reservation made just before the loss is missed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pymysql.cursors import DictCursor

from goodsdrop import topics
from goodsdrop.clients import fetch_one, mysql_cursor
from goodsdrop.clock import ms_to_db, to_ms
from goodsdrop.codes import LedgerState
from goodsdrop.reservation_types import Line
from goodsdrop.settings import settings

# The consumer group of ProcessPaymentMapping in infra/template.yaml (a unit test keeps them equal).
PAYMENTS_CONSUMER_GROUP = "goodsdrop-payments"


@dataclass(frozen=True)
class LedgerEntry:
    """A reservation as the ledger has it."""

    order_id: str
    member_id: str
    state: str
    reason: str | None
    total: int
    lines: list[Line]
    reserved_ms: int
    expires_ms: int


def record(cur: DictCursor, order_id: str, member_id: str | int, lines: list[Line], total: int, reserved_ms: int,
           expires_ms: int, state: LedgerState = LedgerState.OPEN, reason: str | None = None) -> bool:
    """Write the reservation unless the ledger has it already; True when written now."""
    cur.execute("INSERT IGNORE INTO reservations (order_id, member_id, state, reason, total_price, reserved_at, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (order_id, member_id, state, reason, total, ms_to_db(reserved_ms), ms_to_db(expires_ms)))
    if cur.rowcount == 0:
        return False
    cur.executemany("INSERT INTO reservation_lines (order_id, product_id, quantity, price) VALUES (%s, %s, %s, %s)",
                    [(order_id, line.product_id, line.quantity, line.price) for line in lines])
    return True


def lock(cur: DictCursor, order_id: str) -> LedgerEntry | None:
    """The reservation, its row locked until the transaction ends; None if the ledger lacks it."""
    cur.execute("SELECT order_id, member_id, state, reason, total_price, reserved_at, expires_at FROM reservations "
                "WHERE order_id = %s FOR UPDATE", (order_id,))
    row = cur.fetchone()
    if row is None:
        return None
    cur.execute("SELECT product_id, quantity, price FROM reservation_lines WHERE order_id = %s ORDER BY product_id",
                (order_id,))
    lines = [Line(int(r["product_id"]), int(r["quantity"]), int(r["price"])) for r in cur.fetchall()]
    return LedgerEntry(row["order_id"], str(row["member_id"]), row["state"], row["reason"], int(row["total_price"]),
                       lines, to_ms(row["reserved_at"]), to_ms(row["expires_at"]))


def set_state(cur: DictCursor, order_id: str, state: LedgerState, reason: str | None = None) -> None:
    """Move the reservation to `state` (CONSUMED or RELEASED), with a reason for a release."""
    cur.execute("UPDATE reservations SET state = %s, reason = %s WHERE order_id = %s", (state, reason, order_id))


def lock_stock_rows(cur: DictCursor, product_ids: list[int]) -> dict[int, int]:
    """Lock the products' stock rows in id order (no deadlocks); returns units not yet sold per product."""
    ids = sorted(set(product_ids))
    marks = ", ".join(["%s"] * len(ids))
    cur.execute(f"SELECT product_id, count FROM stock WHERE product_id IN ({marks}) ORDER BY product_id FOR UPDATE",
                ids)
    return {int(r["product_id"]): int(r["count"]) for r in cur.fetchall()}


def first_delivery(cur: DictCursor, consumer: str, event_id: str) -> bool:
    """Claim (consumer, event) in this transaction; False when it was processed before.

    The row is written first, so a concurrent duplicate waits on it and then sees it.
    """
    cur.execute("INSERT IGNORE INTO processed_events (consumer, event_id) VALUES (%s, %s)", (consumer, event_id))
    return cur.rowcount == 1


def open_units(product_id: int) -> int:
    """Units of `product_id` held by reservations the ledger has OPEN."""
    with mysql_cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(l.quantity), 0) AS units FROM reservation_lines l "
                    "JOIN reservations r ON r.order_id = l.order_id WHERE l.product_id = %s AND r.state = 'OPEN'",
                    (product_id,))
        return int(fetch_one(cur)["units"])


def held_units(cur: DictCursor) -> list[tuple[str, int, int]]:
    """(member id, product id, units) each member holds by MySQL's account, after Redis lost its data.

    Held = units sold and not given back + units of reservations the ledger has OPEN. Read with
    share locks on the rows counted (`cur` must be in a transaction; hold it until Redis has the
    counts): a step that gives units back locks the row it changes (the ledger row; a restock its
    order line) and gives them back in Redis before it commits, so a count read here waits for
    such a step to end and is never one whose give-back Redis has already applied; and no such step
    starts on a counted row until the caller wrote Redis and committed.
    """
    held: dict[tuple[str, int], int] = {}
    cur.execute("SELECT r.member_id, l.product_id, l.quantity AS units FROM reservations r "
                "JOIN reservation_lines l ON l.order_id = r.order_id WHERE r.state = 'OPEN' LOCK IN SHARE MODE")
    rows = list(cur.fetchall())
    cur.execute("SELECT r.member_id, op.product_id, op.count AS units FROM reservations r "
                "JOIN order_products op ON op.order_id = r.order_id "
                "WHERE r.state = 'CONSUMED' AND op.restocked_at IS NULL LOCK IN SHARE MODE")
    rows += cur.fetchall()
    for row in rows:
        key = (str(row["member_id"]), int(row["product_id"]))
        held[key] = held.get(key, 0) + int(row["units"])
    return [(member, product, units) for (member, product), units in sorted(held.items())]


def stock_snapshot(cur: DictCursor, product_id: int, held_orders: list[str]) -> tuple[int, list[tuple[Any, ...]],
                                                                                        list[tuple[str, int]]] | None:
    """What a stock rebuild needs from MySQL, read under a share lock on the product's stock row.

    Returns (units not yet sold, reservations of the product that are OPEN or that Redis still holds
    as (order, member, units, state), units sold and not given back per member), or None for an
    unknown product.
    """
    cur.execute("SELECT count FROM stock WHERE product_id = %s LOCK IN SHARE MODE", (product_id,))
    row = cur.fetchone()
    if row is None:
        return None
    held = f" OR r.order_id IN ({', '.join(['%s'] * len(held_orders))})" if held_orders else ""
    cur.execute("SELECT r.order_id, r.member_id, l.quantity, r.state FROM reservation_lines l "
                "JOIN reservations r ON r.order_id = l.order_id "
                f"WHERE l.product_id = %s AND (r.state = 'OPEN'{held})", [product_id, *held_orders])
    reservations = [(r["order_id"], str(r["member_id"]), int(r["quantity"]), r["state"]) for r in cur.fetchall()]
    cur.execute("SELECT r.member_id, SUM(op.count) AS units FROM order_products op "
                "JOIN reservations r ON r.order_id = op.order_id AND r.state = 'CONSUMED' "
                "WHERE op.product_id = %s AND op.restocked_at IS NULL GROUP BY r.member_id", (product_id,))
    sold = [(str(r["member_id"]), int(r["units"])) for r in cur.fetchall()]
    return int(row["count"]), reservations, sold


def caught_up() -> bool:
    """Whether the payments consumer group has processed every OrderRequested published so far."""
    # Imported here: only a stock rebuild after a Redis loss asks, and kafka-python (with the botocore its
    # MSK support pulls in) is most of a cold start for the many functions that import this module.
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    name = topics.topic(topics.ORDER_REQUESTED)
    bootstrap = settings.kafka_bootstrap.split(",")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             client_id="goodsdrop-ledger-check", request_timeout_ms=5000)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="goodsdrop-ledger-check",
                             request_timeout_ms=5000)
    try:
        partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        if not partitions:
            return True
        ends = consumer.end_offsets(partitions)
        if not any(ends.values()):
            return True  # nothing was ever published (a fresh broker may have no group coordinator yet)
        committed = admin.list_consumer_group_offsets(PAYMENTS_CONSUMER_GROUP, partitions=partitions)
        for tp in partitions:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset is not None and done.offset >= 0 else 0
            if offset < ends[tp]:
                return False
        return True
    finally:
        consumer.close()
        admin.close()


def wait_until_caught_up(timeout: float) -> bool:
    """Poll `caught_up` until true or `timeout` seconds passed; returns the last answer."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if caught_up():
                return True
        except KafkaError as err:
            if not err.retriable:  # e.g. the coordinator of a group not yet loaded: ask again
                raise
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
