"""Reserving an order: the hot path's all-or-nothing hold on stock (`reserve`).

A product's live stock may be split over S shards (`products.stock_shards`), each its own Redis
Cluster slot, so a hot drop is served by several Redis cores. Every script touches one slot only,
so placing an order is a few single-slot steps, each idempotent:

1. `lua/claim_order.lua` on the member's slot: the Idempotency-Key, every line on sale and within
   the member's limit, each line counted in the member's `held` units (`keys.member_held`), the
   order record and the key's IN_FLIGHT state - all or nothing. The expiry-index entry is added in
   the same round trip (a single-key command; the expiry job ignores entries without a PENDING
   record).
2. Per line, one bounded pass over the product's shards (goodsdrop.reservations.takes).
3. If a line cannot be completed, every unit taken goes back to its shard (`settle_hold.lua`,
   released) and the claim is undone (`unclaim_order.lua`: `held` given back once, the refusal
   stored so a replay answers the same).

Before step 1, the `lua` strategy looks whether the drop is already sold out: one pipelined read
refuses OUT_OF_STOCK without a claim (`lua/record_refusal.lua` stores the answer under the key).

Why the per-member limit holds exactly: `held[P]` is only ever raised by the claim, which checks
`held[P] + qty <= limit` and raises it in the same atomic step on the member's slot, before any
unit is taken. Concurrent requests of one member are serialised there whatever shards their
units come from. It is lowered exactly once per (order, product) - guarded by
`keys.member_held_returned` - when those units go back (released, expired, refused, aborted,
cancelled or returned: goodsdrop.reservations.settlement); a sale keeps them counted. So at every
moment `held[P]` >= the units the member holds or bought, and no claim can pass the limit. After
Redis lost its data, the recovery adds MySQL's counts to every member's `held`
(goodsdrop.reservations.rebuild.rebuild_held); a claim made before that (the stock epoch was
missing, read in the claim's round trip) is checked again once the recovery is done, and refused
if `held` then passes the limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.codes import ClaimAnswer, PassKind, RecordStatus, ReserveKind
from goodsdrop.errors import ServiceUnavailable
from goodsdrop.reservation_types import Reservation, ReserveResult
from goodsdrop.reservations.lock_strategies import LUA, checked, serialised
from goodsdrop.reservations.order_record import forget_expiry
from goodsdrop.reservations.rebuild import ensure_recovered, load_stock
from goodsdrop.reservations.settlement import MARKER_TTL_SECONDS, release_order
from goodsdrop.reservations.takes import take_lines
from goodsdrop.scripts import script
from goodsdrop.settings import settings

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
LOAD_ATTEMPTS = 4  # passes of claim-and-take, each after loading a product's stock that was not in Redis


# ---------------------------------------------------------------------------- step 0: sold out?


@dataclass(frozen=True)
class SoldOutLook:
    """The sold-out look's reads for one order, queued on a caller's pipeline (`queue_sold_out_look`),
    so they share a round trip with the caller's own commands; `answers` are filled in afterwards."""

    member_id: str
    key_digest: str
    shards: tuple[tuple[int, int], ...]  # (product id, shard count) per line, in the order's line order
    answers: list[Any] = field(default_factory=list)

    @property
    def calls(self) -> int:
        """How many answers of the pipeline are the look's."""
        return 2 + sum(count for _, count in self.shards)

    def matches(self, res: Reservation) -> bool:
        """Whether the look was read for exactly this reservation's key, member, lines and shards."""
        return (len(self.answers) == self.calls and self.member_id == res.member_id
                and self.key_digest == res.key_digest
                and self.shards == tuple((line.product_id, terms.shards) for line, terms in zip(res.lines, res.terms,
                                                                                              strict=True)))


def queue_sold_out_look(pipe: Any, member_id: str, key_digest: str, shards: Sequence[tuple[int, int]],
                        strategy: str | None = None) -> SoldOutLook | None:
    """Queue the sold-out look's reads on `pipe`: is the Idempotency-Key used, the member's held units of
    each product, every shard's available units ((product id, shard count) per line). None (nothing
    queued) unless `strategy` (default: settings) is `lua`, the only one that looks before claiming."""
    if checked(strategy or settings.stock_strategy) != LUA:
        return None
    look = SoldOutLook(member_id, key_digest, tuple(shards))
    _queue_look_reads(pipe, look)
    return look


def _queue_look_reads(pipe: Any, look: SoldOutLook) -> None:
    pipe.exists(keys.order_idempotency(look.member_id, look.key_digest))
    pipe.hmget(keys.member_held(look.member_id), [str(product_id) for product_id, _ in look.shards])
    for product_id, count in look.shards:
        for shard in range(count):
            pipe.hget(keys.stock(product_id, shard), "available")


def _sold_out_answer(res: Reservation, look: SoldOutLook | None = None) -> ReserveResult | None:
    """The hot path of a sold-out drop: refuse OUT_OF_STOCK after one read, without a claim.

    Most requests of an oversubscribed drop arrive after its last unit went. One pipelined read
    (is the Idempotency-Key used, the member's held units, every shard's available) shows it, and
    the refusal is stored under the key like any other (`lua/record_refusal.lua`). Anything
    else goes the normal way (None): a used key, a line not on sale yet or over the member's
    limit (those refusals come first), a stock not in Redis, or units left for every line.
    `look`: those reads, already made in the caller's round trip (used when they are this order's).
    """
    if any(t.sales_start_ms is not None and res.now_ms < t.sales_start_ms for t in res.terms):
        return None
    if look is None or not look.matches(res):
        pipe = redis_client().pipeline(transaction=False)
        look = SoldOutLook(res.member_id, res.key_digest,
                           tuple((line.product_id, terms.shards) for line, terms in zip(res.lines, res.terms,
                                                                                        strict=True)))
        _queue_look_reads(pipe, look)
        look.answers[:] = pipe.execute()
    used, held, *levels = look.answers
    if used:
        return None
    outcome: dict[str, Any] | None = None
    for line, terms, count in zip(res.lines, res.terms, held, strict=True):
        shard_levels, levels = levels[:terms.shards], levels[terms.shards:]
        if terms.per_member_limit is not None and int(count or 0) + line.quantity > terms.per_member_limit:
            return None
        if any(level is None for level in shard_levels):
            return None
        available = sum(int(level) for level in shard_levels)
        if outcome is None and available < line.quantity:
            outcome = {"code": "OUT_OF_STOCK", "productId": str(line.product_id), "available": available}
    if outcome is None:
        return None
    idempotency = keys.order_idempotency(res.member_id, res.key_digest)
    return _parse_claim(script("record_refusal")(keys=[idempotency],
                                                 args=[res.fingerprint, json.dumps(outcome), IDEMPOTENCY_TTL_SECONDS]))


# ---------------------------------------------------------------------------- step 1: the claim


def _claim_call(res: Reservation) -> tuple[list[str], list[Any]]:
    script_keys = [keys.order_idempotency(res.member_id, res.key_digest),
                   keys.order_record(res.member_id, res.order_id), keys.member_pending_orders(res.member_id),
                   keys.member_held(res.member_id)]
    args: list[Any] = [res.fingerprint, res.now_ms, res.expires_ms, res.order_id, res.member_id, res.document(),
                       IDEMPOTENCY_TTL_SECONDS, res.record_ttl, len(res.lines)]
    for line, terms in zip(res.lines, res.terms, strict=True):
        args += [line.product_id, line.quantity,
                 -1 if terms.per_member_limit is None else terms.per_member_limit,
                 -1 if terms.sales_start_ms is None else terms.sales_start_ms]
    return script_keys, args


def _parse_claim(raw: list[Any]) -> ReserveResult | None:
    kind = raw[0]
    if kind == ClaimAnswer.CLAIMED:
        return None
    if kind == ClaimAnswer.REFUSED:
        return ReserveResult(ReserveKind.REFUSED, outcome=json.loads(raw[1]))
    if kind == ClaimAnswer.REPLAY:
        state, outcome, order = raw[1], raw[2], raw[3]
        return ReserveResult(ReserveKind.REPLAY, outcome=json.loads(outcome) if outcome else None, state=state,
                             order_id=order)
    return ReserveResult(ReserveKind.REUSED)


def _claim(res: Reservation) -> ReserveResult | None:
    """Run the claim with the expiry-index entry in one round trip; None when claimed.

    The stock epoch is read in the same round trip: if it is missing, Redis lost its data and the
    member's `held` counts may not be rebuilt yet, so the claim is checked again after recovery.
    """
    script_keys, args = _claim_call(res)
    pipe = redis_client().pipeline(transaction=False)
    pipe.zadd(keys.reservation_expiry(), {f"{res.member_id}:{res.order_id}": res.expires_ms})
    pipe.exists(keys.stock_epoch())
    script("claim_order")(keys=script_keys, args=args, client=pipe)
    _, epoch, raw = pipe.execute()
    answer = _parse_claim(raw)
    if answer is not None:
        forget_expiry(res.member_id, res.order_id)  # nothing was claimed under this order id
    elif not epoch:
        answer = _recheck_after_recovery(res)
    return answer


def _recheck_after_recovery(res: Reservation) -> ReserveResult | None:
    """A claim made while Redis was recovering: once `held` is rebuilt, refuse it if it passes a limit.

    Recovery adds what MySQL says each member holds to `held`, on top of claims made meanwhile;
    this claim's units are in `held` already, so `held > limit` means the claim was over the limit.
    """
    try:
        ensure_recovered()
    except Exception:
        _undo_claim(res, RecordStatus.ABORTED, "STOCK_RECOVERING", None)  # nothing stays claimed; the key is forgotten
        raise
    counts = redis_client().hmget(keys.member_held(res.member_id), [str(line.product_id) for line in res.lines])
    for line, terms, count in zip(res.lines, res.terms, counts, strict=True):
        if terms.per_member_limit is not None and int(count or 0) > terms.per_member_limit:
            outcome = {"code": "PURCHASE_LIMIT_EXCEEDED", "productId": str(line.product_id),
                       "held": int(count or 0) - line.quantity, "limit": terms.per_member_limit}
            _undo_claim(res, RecordStatus.REFUSED, "PURCHASE_LIMIT_EXCEEDED", outcome)
            return ReserveResult(ReserveKind.REFUSED, outcome=outcome)
    return None


# ---------------------------------------------------------------------------- step 3: undoing the claim


def _undo_claim(res: Reservation, status: RecordStatus, reason: str, outcome: dict[str, Any] | None) -> None:
    """Give the claim's `held` units back, mark the record, store the outcome (or forget the key)."""
    args: list[Any] = [res.order_id, status, reason, json.dumps(outcome) if outcome else "", IDEMPOTENCY_TTL_SECONDS,
                       MARKER_TTL_SECONDS, len(res.lines)]
    for line in res.lines:
        args += [line.product_id, line.quantity]
    pipe = redis_client().pipeline(transaction=False)
    script("unclaim_order")(keys=[keys.order_idempotency(res.member_id, res.key_digest),
                                  keys.order_record(res.member_id, res.order_id),
                                  keys.member_pending_orders(res.member_id), keys.member_held(res.member_id),
                                  keys.member_held_returned(res.member_id, res.order_id)], args=args, client=pipe)
    pipe.zrem(keys.reservation_expiry(), f"{res.member_id}:{res.order_id}")
    pipe.execute()


# ---------------------------------------------------------------------------- the whole reservation


def reserve(res: Reservation, strategy: str | None = None, *, claimed: bool = False,
            sold_out_look: SoldOutLook | None = None) -> ReserveResult:
    """Claim the order on the member's slot, then take every line's units from its shards.

    Serialised by `strategy` (default: settings; goodsdrop.reservations.lock_strategies). All or
    nothing: a line that cannot be completed gives back what was taken and undoes the claim, and
    the refusal is stored for replays. With `claimed`, the claim was made earlier (a retry
    finishing a dead attempt): only the takes run. `sold_out_look`: the `lua` strategy's sold-out
    reads, made by the caller in a round trip of its own (`queue_sold_out_look`).
    """
    strategy = checked(strategy or settings.stock_strategy)
    if strategy == LUA and not claimed:  # (the lock strategies check under their lock, as the seed did)
        answer = _sold_out_answer(res, sold_out_look)
        if answer is not None:
            return answer
    product_ids = sorted({line.product_id for line in res.lines})
    for _ in range(LOAD_ATTEMPTS):
        with serialised(strategy, product_ids):
            if not claimed:
                answer = _claim(res)
                if answer is not None:
                    return answer
                claimed = True
            kind, value = take_lines(res)
        if kind == PassKind.LOAD:
            load_stock(value)  # outside any lock or transaction; the claim and the holds stay
            continue
        if kind == PassKind.TAKEN:
            return ReserveResult(ReserveKind.RESERVED, levels=value)
        if kind == PassKind.SHORT:
            _undo_claim(res, RecordStatus.REFUSED, value["code"], value)
            return ReserveResult(ReserveKind.REFUSED, outcome=value)
        break
    # The stock stayed unloadable (or the hold was ended meanwhile): nothing stays reserved.
    release_order(res.order_id, res.member_id, res.lines)
    _undo_claim(res, RecordStatus.ABORTED, "STOCK_UNAVAILABLE", None)
    raise ServiceUnavailable("the stock is being loaded; try again", retry_after=1)
