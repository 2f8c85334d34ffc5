"""The order's record in Redis while the saga runs, the member's pending list and the expiry index.

The claim (`lua/claim_order.lua`) writes the record (`keys.order_record`: member, status, created,
expires, the order document) and puts the order on the member's pending list; the expiry-index
entry (`keys.reservation_expiry`, member:order scored by its expiry) is added in the same round
trip. The saga marks the record with the order's final status; PENDING orders are read from here
until MySQL has them.
"""

from __future__ import annotations

import json

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.codes import RecordStatus
from goodsdrop.reservation_types import Line, OrderRecord


def read_record(member_id: str | int, order_id: str) -> OrderRecord | None:
    """The order's Redis record, or None."""
    raw = redis_client().hgetall(keys.order_record(member_id, order_id))
    if not raw or "doc" not in raw:
        return None
    doc = json.loads(raw["doc"])
    return OrderRecord(order_id, raw["member"], raw.get("status", RecordStatus.PENDING),
                       [Line.from_json(line) for line in doc["lines"]], int(doc["total"]), int(raw["created"]),
                       int(raw["expires"]), raw.get("reason", ""))


def close_record(member_id: str | int, order_id: str, status: RecordStatus, reason: str = "", *,
                 in_mysql: bool = True) -> None:
    """Mark the record with the order's final status and drop it from the expiry index.

    With `in_mysql` the order is in MySQL from now on, so it leaves the member's pending list.
    """
    r = redis_client()
    pipe = r.pipeline(transaction=False)
    record = keys.order_record(member_id, order_id)
    pipe.exists(record)
    pipe.zrem(keys.reservation_expiry(), f"{member_id}:{order_id}")
    if in_mysql:
        pipe.zrem(keys.member_pending_orders(member_id), order_id)
    exists = pipe.execute()[0]
    if exists:
        r.hset(record, mapping={"status": status, "reason": reason})


def mark_persisted(member_id: str | int, order_id: str) -> None:
    """The order row is in MySQL now: it leaves the member's pending list (the record stays)."""
    redis_client().zrem(keys.member_pending_orders(member_id), order_id)


def pending_order_ids(member_id: str | int) -> list[str]:
    """Ids of the member's orders that MySQL may not have yet, newest first."""
    return list(redis_client().zrevrange(keys.member_pending_orders(member_id), 0, 99))


def due_reservations(now_ms: int, limit: int = 200) -> list[tuple[str, str]]:
    """(member id, order id) of reservations whose expiry has passed, oldest first."""
    entries = redis_client().zrangebyscore(keys.reservation_expiry(), "-inf", now_ms, start=0, num=limit)
    return [(member, order) for member, order in (entry.split(":", 1) for entry in entries)]


def forget_expiry(member_id: str | int, order_id: str) -> None:
    """Remove a reservation from the expiry index."""
    redis_client().zrem(keys.reservation_expiry(), f"{member_id}:{order_id}")
