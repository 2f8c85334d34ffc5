"""Admission control for the drop moment: who may place an order now (POST /orders).

Two gates, checked before any reservation work and in one Redis round trip (a pipeline of
single-slot scripts, so it runs unchanged on Redis Cluster):

1. Token buckets (goodsdrop.ratelimit): one per member (`keys.order_bucket_by_member`, under the
   member's hash tag) and one per source IP (`keys.order_bucket_by_ip`, higher: many buyers share
   a NAT). An empty bucket answers 429 `RATE_LIMITED` with Retry-After.
2. A waiting room per product (a drop). Every order attempt is counted per product per second
   (`lua/waiting_room_gate.lua`); when a second's attempts pass `waiting_room_threshold`, the
   product's room opens: a key with a TTL, renewed while demand stays above the threshold, so it
   closes by itself `waiting_room_open_seconds` after the rush (or at once when the product is
   sold out). While it is open, an order containing the product needs an admission pass, else
   409 `QUEUE_REQUIRED` naming the product and where to join.

Joining (`join_queue`, POST /products/{id}/queue) gives a ticket: INCR on the product's sequence,
so tickets follow the order in which buyers reached Redis; one per member and opening (joining
again returns the same ticket). Admission needs no background job: the room admits every ticket up
to base + initial batch + admit rate x seconds since it opened, computed by
`lua/waiting_room_ticket.lua` whenever a ticket is read. Tickets are therefore admitted strictly in
ticket order (first come, first served) and at a rate the drop can absorb. Reading an admitted
ticket gives its owner a pass (a key with a TTL) that the gate accepts.

Tickets and passes belong to one opening of the room (they carry its `opened` moment): while no
room is open nobody gets either (409 `NO_WAITING_ROOM`: order directly), and a ticket or pass taken
in an earlier opening is worth nothing in the next one, so no bot can collect passes in the calm
before a drop and walk past the line when it opens.

The room opens by demand only when `waiting_room_threshold` > 0 (the default is 0: it changes the
buying flow, so operators turn it on for drops that need it), but an open room is always honoured:
`open_waiting_room` opens one by hand, e.g. just before a drop expected to be hot.

Every function takes the time (`at_ms`, the caller's clock in epoch milliseconds, see
goodsdrop.ratelimit) and the policy as arguments with the live defaults, so tests drive both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.clock import now_ms
from goodsdrop.errors import Conflict, NotFound, QueueRequired, RateLimited, ValidationError
from goodsdrop.products import get_product
from goodsdrop.ratelimit import TokenBucket, retry_after_seconds
from goodsdrop.scripts import script
from goodsdrop.settings import settings
from goodsdrop.stock import read_stock
from goodsdrop.telemetry import Metric, count

MAX_TICKET_DIGITS = 15
TICKETS_KEPT_SECONDS = 24 * 3600  # after the last join: long enough for any drop, then Redis forgets them


@dataclass(frozen=True)
class WaitingRoomPolicy:
    """When a product's waiting room opens and how fast it admits (the settings `waiting_room_*`)."""

    threshold_per_second: int  # 0: never opened by demand
    admit_per_second: float
    initial_batch: int
    open_seconds: int
    pass_seconds: int


@dataclass(frozen=True)
class AdmissionPolicy:
    """The buckets and the waiting room POST /orders is held to."""

    per_member: TokenBucket
    per_ip: TokenBucket
    room: WaitingRoomPolicy


POLICY = AdmissionPolicy(
    per_member=TokenBucket(settings.order_rate_per_member, settings.order_burst_per_member),
    per_ip=TokenBucket(settings.order_rate_per_ip, settings.order_burst_per_ip),
    room=WaitingRoomPolicy(settings.waiting_room_threshold, settings.waiting_room_admit_rate,
                           settings.waiting_room_initial_batch, settings.waiting_room_open_seconds,
                           settings.waiting_room_pass_seconds),
)


@dataclass(frozen=True)
class Standing:
    """Where a member's ticket stands in a product's waiting room."""

    product_id: int
    ticket: int
    position: int  # 0 once admitted; else tickets not yet admitted up to and including this one
    admitted: bool
    estimated_wait_seconds: int | None  # None: the room admits no more than its initial batch

    def to_json(self) -> dict[str, Any]:
        return {"productId": str(self.product_id), "ticket": str(self.ticket), "position": self.position,
                "admitted": self.admitted, "estimatedWaitSeconds": self.estimated_wait_seconds}


def queue_path(product_id: int) -> str:
    """Where buyers join a product's waiting room."""
    return f"/products/{product_id}/queue"


def parse_ticket(raw: str | None) -> int:
    """A ticket from a path segment: a positive integer in a string, no leading zero, else 400 naming it."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > MAX_TICKET_DIGITS or raw[0] == "0":
        raise ValidationError("ticket must be a positive integer without leading zeros",
                              details={"fields": {"ticket": "malformed"}})
    return int(raw)


# ---------------------------------------------------------------------------- the gate on POST /orders


@dataclass(frozen=True)
class AdmissionGate:
    """The gate's scripts for one order attempt, queued on a pipeline: `check` reads their answers."""

    buckets: int  # the first answers are the token buckets' (taken, wait ms)
    product_ids: tuple[int, ...]  # then one waiting-room answer per product

    @property
    def calls(self) -> int:
        """How many answers of the pipeline are the gate's."""
        return self.buckets + len(self.product_ids)

    def check(self, results: Sequence[Any]) -> None:
        """Raise 429 `RateLimited` / 409 `QueueRequired` from the gate's answers (the first `calls`)."""
        waits = [int(wait_ms) for taken, wait_ms in results[:self.buckets] if int(taken) != 1]
        if waits:
            retry_after = retry_after_seconds(max(waits))
            raise RateLimited("too many order attempts; try again shortly", retry_after=retry_after)
        queued = [product_id for product_id, may_order in zip(self.product_ids, results[self.buckets:self.calls],
                                                              strict=True) if int(may_order) != 1]
        if queued:
            product = str(queued[0])
            raise QueueRequired(f"product {product} has a waiting room open: join its queue",
                                details={"productId": product, "queue": queue_path(queued[0])})


def queue_admission(pipe: Any, member_id: str, source_ip: str | None, product_ids: Sequence[int], *,
                    policy: AdmissionPolicy = POLICY, at_ms: int | None = None) -> AdmissionGate:
    """Queue the gate's single-slot scripts for an order attempt on `pipe` (a non-transactional pipeline,
    so the caller can add its own reads to the same round trip); `check` the answers afterwards.

    Takes a token from the member's and the source IP's buckets and counts the attempt as demand
    on every product in it (a refused attempt is demand too).
    """
    at = now_ms() if at_ms is None else at_ms
    calls: list[tuple[str, list[str], list[Any]]] = []
    if policy.per_member.is_on:
        calls.append(("take_token", [keys.order_bucket_by_member(member_id)], policy.per_member.script_args(at)))
    if source_ip and policy.per_ip.is_on:
        calls.append(("take_token", [keys.order_bucket_by_ip(source_ip)], policy.per_ip.script_args(at)))
    buckets = len(calls)
    room = policy.room
    for product_id in product_ids:
        calls.append(("waiting_room_gate",
                      [keys.queue_arrivals(product_id), keys.queue_room(product_id), keys.queue_sequence(product_id),
                       keys.queue_pass(product_id, member_id)],
                      [at, room.threshold_per_second, room.open_seconds * 1000]))
    for name, script_keys, args in calls:
        script(name)(keys=script_keys, args=args, client=pipe)
    return AdmissionGate(buckets, tuple(product_ids))


def admit_order(member_id: str, source_ip: str | None, product_ids: Sequence[int], *,
                policy: AdmissionPolicy = POLICY, at_ms: int | None = None) -> None:
    """Let an order attempt through, or raise 429 `RateLimited` / 409 `QueueRequired` (one round trip)."""
    pipe = redis_client().pipeline(transaction=False)
    gate = queue_admission(pipe, member_id, source_ip, product_ids, policy=policy, at_ms=at_ms)
    if gate.calls:
        gate.check(pipe.execute())


# ---------------------------------------------------------------------------- the waiting room


def open_waiting_room(product_id: int, *, policy: AdmissionPolicy = POLICY, at_ms: int | None = None) -> None:
    """Open a product's waiting room by hand (it closes by itself after `open_seconds`, like one opened by demand)."""
    at = now_ms() if at_ms is None else at_ms
    r = redis_client()
    base = int(r.get(keys.queue_sequence(product_id)) or 0)
    r.hset(keys.queue_room(product_id), mapping={"opened": at, "base": base})
    r.pexpire(keys.queue_room(product_id), policy.room.open_seconds * 1000)


def close_waiting_room(product_id: int) -> None:
    """Close a product's waiting room: every buyer may order again (tickets stay valid)."""
    redis_client().delete(keys.queue_room(product_id))


def _ticket_script(mode: str, member_id: str, product_id: int, ticket: int, policy: AdmissionPolicy,
                   at_ms: int | None) -> Standing | None:
    if read_stock(product_id).status == "sold_out":
        close_waiting_room(product_id)  # nothing left to queue for: everyone gets OUT_OF_STOCK at once
    room = policy.room
    answer = script("waiting_room_ticket")(
        keys=[keys.queue_room(product_id), keys.queue_sequence(product_id), keys.queue_tickets(product_id),
              keys.queue_pass(product_id, member_id)],
        args=[mode, member_id, ticket, now_ms() if at_ms is None else at_ms, room.initial_batch,
              repr(float(room.admit_per_second)), room.pass_seconds * 1000, TICKETS_KEPT_SECONDS * 1000])
    if not answer:
        return None
    if len(answer) == 1:  # [-1]: no room open
        raise Conflict(f"product {product_id} has no waiting room open: order directly", code="NO_WAITING_ROOM",
                       details={"productId": str(product_id)})
    number, position, admitted, wait_ms = (int(v) for v in answer)
    return Standing(product_id, number, position, admitted == 1,
                    None if wait_ms < 0 else retry_after_seconds(wait_ms) if wait_ms else 0)


def join_queue(member_id: str, product_id: int, *, policy: AdmissionPolicy = POLICY,
               at_ms: int | None = None) -> Standing:
    """The member's ticket in the product's open waiting room (issued on the first join) and where it
    stands; 409 `NO_WAITING_ROOM` when no room is open."""
    get_product(product_id)  # 404 for a product that does not exist
    standing = _ticket_script("join", member_id, product_id, 0, policy, at_ms)
    assert standing is not None  # "join" always answers
    count(Metric.WAITING_ROOM_LENGTH, standing.position)  # a new ticket's position is the room's length
    return standing


def queue_standing(member_id: str, product_id: int, ticket: int, *, policy: AdmissionPolicy = POLICY,
                   at_ms: int | None = None) -> Standing:
    """Where the member's own ticket stands (an admitted one gets its pass); 404 for anyone else's or
    one of an earlier opening, 409 `NO_WAITING_ROOM` once the room has closed (order directly)."""
    standing = _ticket_script("check", member_id, product_id, ticket, policy, at_ms)
    if standing is None:
        raise NotFound(f"you hold no ticket {ticket} for product {product_id}")
    if standing.admitted:
        count(Metric.WAITING_ROOM_ADMISSIONS)
    return standing


def room_figures(product_id: int, *, policy: AdmissionPolicy = POLICY, at_ms: int | None = None) -> dict[str, Any]:
    """A product's waiting room now: open or not, tickets issued and admitted in this opening, and its
    length (tickets waiting), as lua/waiting_room_ticket.lua admits them."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.hmget(keys.queue_room(product_id), "opened", "base")
    pipe.get(keys.queue_sequence(product_id))
    (opened, base), sequence = pipe.execute()
    if opened is None:
        return {"open": False, "issued": 0, "admitted": 0, "length": 0}
    at = now_ms() if at_ms is None else at_ms
    issued = max(0, int(sequence or 0) - int(base or 0))
    admissible = policy.room.initial_batch + int(max(0, at - int(opened)) * policy.room.admit_per_second / 1000)
    admitted = min(issued, admissible)
    return {"open": True, "issued": issued, "admitted": admitted, "length": issued - admitted}
