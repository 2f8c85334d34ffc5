"""Reservations in Redis: the hot path's all-or-nothing hold on stock, and how a hold ends.

A product's live stock may be split over S shards (`products.stock_shards`), each its own Redis
Cluster slot, so a hot drop is served by several Redis cores. Every script touches one slot only,
so placing an order is a few single-slot steps, each idempotent:

1. `lua/claim_order.lua` on the member's slot: the Idempotency-Key, every line on sale and within
   the member's limit, each line counted in the member's `held` units (`keys.member_held`), the
   order record and the key's IN_FLIGHT state - all or nothing. The expiry-index entry is added in
   the same round trip (a single-key command; the expiry job ignores entries without a PENDING
   record).
2. Per line, one bounded pass over the product's shards (`lua/take_units.lua`): first the shard
   the member hashes to, then - if it had too few units - the others, taking what each has until
   the line is complete. Each step records the order's hold in that shard and is idempotent per
   order (a repeat reports the hold, takes nothing more). Sold out is reported only when the
   shards together have too few units.
3. If a line cannot be completed, every unit taken goes back to its shard (`settle_hold.lua` "X")
   and the claim is undone (`unclaim_order.lua`: `held` given back once, the refusal stored so a
   replay answers the same).

Why the per-member limit holds exactly: `held[P]` is only ever raised by the claim, which checks
`held[P] + qty <= limit` and raises it in the same atomic step on the member's slot, before any
unit is taken. Concurrent requests of one member are serialised there whatever shards their
units come from. It is lowered exactly once per (order, product) - guarded by
`keys.member_held_returned` - when those units go back (released, expired, refused, aborted,
cancelled or returned); a sale keeps them counted. So at every moment `held[P]` >= the units the
member holds or bought, and no claim can pass the limit. After Redis lost its data, the
recovery adds MySQL's counts to every member's `held` (goodsdrop.stock.rebuild_held); a claim made
before that (the stock epoch was missing, read in the claim's round trip) is checked again once the
recovery is done, and refused if `held` then passes the limit.

A hold ends exactly once per shard, by `settle` (`lua/settle_hold.lua` on every shard of the
product, one pipelined round trip): sold ("C") when the saga persisted the sale, or released
("X") back to the shard it came from. Per-shard markers make every repeat a no-op.

`settings.stock_strategy` picks how the reservation is serialised, for the benchmark's comparison:
`lua` (the scripts alone: atomic, lock-free), `mysql_lock` (the stock rows locked with SELECT … FOR
UPDATE around the claim-and-take) or `redis_lock` (a Redisson-style lock per product: SET NX PX
with a token, spin-wait, compare-and-delete release). All three run the same scripts, so they
write the same records and differ only in how buyers are serialised.
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from goodsdrop import keys
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.errors import ServiceUnavailable, ValidationError
from goodsdrop.scripts import script
from goodsdrop.settings import settings

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
RECORD_TTL_AFTER_EXPIRY_SECONDS = 24 * 3600
MARKER_TTL_SECONDS = 7 * 24 * 3600
LOCK_TTL_MS = 3000
LOCK_WAIT_SECONDS = 3.0
STRATEGIES = ("lua", "mysql_lock", "redis_lock")
MAX_SHARDS = 16


@dataclass(frozen=True)
class Line:
    """One order line: a product, how many, and the unit price when it was reserved."""

    product_id: int
    quantity: int
    price: int

    def to_json(self) -> dict[str, Any]:
        return {"productId": str(self.product_id), "quantity": self.quantity, "price": self.price}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Line:
        return cls(int(doc["productId"]), int(doc["quantity"]), int(doc["price"]))


@dataclass(frozen=True)
class Terms:
    """What is checked for one line besides stock (member limit, sales start), and its product's shards."""

    per_member_limit: int | None
    sales_start_ms: int | None
    shards: int = 1


@dataclass(frozen=True)
class Reservation:
    """What the caller asks to reserve."""

    order_id: str
    member_id: str
    lines: list[Line]
    terms: list[Terms]
    fingerprint: str
    key_digest: str
    now_ms: int
    expires_ms: int

    @property
    def total(self) -> int:
        return sum(line.quantity * line.price for line in self.lines)

    def document(self) -> str:
        return json.dumps({"lines": [line.to_json() for line in self.lines], "total": self.total},
                          separators=(",", ":"))

    @property
    def record_ttl(self) -> int:
        return max((self.expires_ms - self.now_ms) // 1000, 1) + RECORD_TTL_AFTER_EXPIRY_SECONDS


@dataclass(frozen=True)
class ReserveResult:
    """The answer: RESERVED (with each line's stock after it), REFUSED, REPLAY or REUSED."""

    kind: str
    outcome: dict[str, Any] | None = None  # REFUSED / REPLAY (DONE): the stored outcome
    state: str = ""  # REPLAY: DONE or IN_FLIGHT
    order_id: str = ""  # REPLAY: the order the key produced, if any
    # RESERVED: (available, version) per line; None for a sharded line (see `level_reads`)
    levels: list[tuple[int, int] | None] | None = None


def home_shard(member_id: str | int, shards: int) -> int:
    """The shard a member's reservations try first (a stable hash of the member id)."""
    return zlib.crc32(str(member_id).encode()) % shards if shards > 1 else 0


# ---------------------------------------------------------------------------- step 0: sold out?


def _sold_out_answer(res: Reservation) -> ReserveResult | None:
    """The hot path of a sold-out drop: refuse OUT_OF_STOCK after one read, without a claim.

    Most requests of an oversubscribed drop arrive after its last unit went. One pipelined read
    (is the Idempotency-Key used, the member's held units, every shard's available) shows it, and
    the refusal is stored under the key like any other (`lua/record_refusal.lua`). Anything
    else goes the normal way (None): a used key, a line not on sale yet or over the member's
    limit (those refusals come first), a stock not in Redis, or units left for every line.
    """
    if any(t.sales_start_ms is not None and res.now_ms < t.sales_start_ms for t in res.terms):
        return None
    idempotency = keys.order_idempotency(res.member_id, res.key_digest)
    pipe = redis_client().pipeline(transaction=False)
    pipe.exists(idempotency)
    pipe.hmget(keys.member_held(res.member_id), [str(line.product_id) for line in res.lines])
    for line, terms in zip(res.lines, res.terms, strict=True):
        for shard in range(terms.shards):
            pipe.hget(keys.stock(line.product_id, shard), "available")
    used, held, *levels = pipe.execute()
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
    if kind == "CLAIMED":
        return None
    if kind == "REFUSED":
        return ReserveResult("REFUSED", outcome=json.loads(raw[1]))
    if kind == "REPLAY":
        state, outcome, order = raw[1], raw[2], raw[3]
        return ReserveResult("REPLAY", outcome=json.loads(outcome) if outcome else None, state=state, order_id=order)
    return ReserveResult("REUSED")


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
    from goodsdrop.stock import ensure_recovered

    try:
        ensure_recovered()
    except Exception:
        _undo_claim(res, "ABORTED", "STOCK_RECOVERING", None)  # nothing stays claimed; the key is forgotten
        raise
    counts = redis_client().hmget(keys.member_held(res.member_id), [str(line.product_id) for line in res.lines])
    for line, terms, count in zip(res.lines, res.terms, counts, strict=True):
        if terms.per_member_limit is not None and int(count or 0) > terms.per_member_limit:
            outcome = {"code": "PURCHASE_LIMIT_EXCEEDED", "productId": str(line.product_id),
                       "held": int(count or 0) - line.quantity, "limit": terms.per_member_limit}
            _undo_claim(res, "REFUSED", "PURCHASE_LIMIT_EXCEEDED", outcome)
            return ReserveResult("REFUSED", outcome=outcome)
    return None


# ---------------------------------------------------------------------------- step 2: taking units


@dataclass
class _LinePass:
    """What one pass over a line's shards got: units per shard, and whether the line is complete."""

    taken: dict[int, int] = field(default_factory=dict)
    complete: bool = False
    load: bool = False  # a shard's stock is not in Redis: load the product and pass again
    ended: bool = False  # the order's hold already ended in a shard (released): nothing more is taken
    available: int = 0  # units the shards had when the line could not be completed
    level: tuple[int, int] | None = None  # the product's (available, version) when known from the pass


def _take(order_id: str, member_id: str, product_id: int, shard: int, wanted: int, client: Any = None) -> Any:
    return script("take_units")(keys=[keys.stock(product_id, shard), keys.stock_holds(product_id, shard),
                                      keys.stock_settled(product_id, order_id, shard)],
                                args=[order_id, member_id, wanted], client=client)


def _take_line(res: Reservation, line: Line, shards: int) -> _LinePass:
    """One bounded pass over the line's shards, starting at the member's home shard."""
    result = _LinePass()
    home = home_shard(res.member_id, shards)
    got, available, version = (int(v) for v in _take(res.order_id, res.member_id, line.product_id, home,
                                                     line.quantity))
    if got in (-2, -4):
        result.load, result.ended = got == -2, got == -4
        return result
    result.taken[home] = got
    if got >= line.quantity:
        result.complete = True
        result.level = (available, version) if shards == 1 else None
        return result
    if shards == 1:
        result.available = available + got
        return result
    # The home shard had too few units: look at the others once, then take from those that have some.
    others = [(home + i) % shards for i in range(1, shards)]
    pipe = redis_client().pipeline(transaction=False)
    for shard in others:
        pipe.hget(keys.stock(line.product_id, shard), "available")
        pipe.hget(keys.stock_holds(line.product_id, shard), res.order_id)
    seen = pipe.execute()
    snapshot: dict[int, int] = {}
    for i, shard in enumerate(others):
        raw_available, hold = seen[2 * i], seen[2 * i + 1]
        if raw_available is None:
            result.load = True
            return result
        snapshot[shard] = int(raw_available) + (int(hold.rsplit(":", 1)[1]) if hold else 0)
    if got + sum(snapshot.values()) < line.quantity:
        result.available = available + got + sum(snapshot.values())
        return result
    need = line.quantity - got
    for shard in others:
        if need <= 0:
            break
        if snapshot[shard] <= 0:
            continue
        taken = int(_take(res.order_id, res.member_id, line.product_id, shard, need)[0])
        if taken in (-2, -4):
            result.load, result.ended = taken == -2, taken == -4
            return result
        result.taken[shard] = taken
        need -= taken
    if need > 0:  # others bought the units in between: sold out for this pass
        result.available = line.quantity - need
        return result
    result.complete = True
    if available == 0:
        # The buyer's home shard is empty now: move units to it, so its next buyers succeed first try.
        refill_shard(line.product_id, shards, home, dict(snapshot))
    return result


def _release(order_id: str, passes: list[tuple[Line, int, _LinePass]]) -> None:
    """Give back every unit the passes took, to the shard it came from (one round trip)."""
    pipe = redis_client().pipeline(transaction=False)
    queued = False
    for line, _, line_pass in passes:
        for shard, units in line_pass.taken.items():
            if units > 0:
                _settle_call(order_id, line.product_id, shard, "X", pipe)
                queued = True
    if queued:
        pipe.execute()


def _undo_claim(res: Reservation, status: str, reason: str, outcome: dict[str, Any] | None) -> None:
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


@dataclass(frozen=True)
class LevelReads:
    """Reads of the products' stock a pass did not learn (sharded lines): one HMGET per shard.

    Queued on a pipeline the caller sends anyway (the hot path: with the Idempotency-Key's DONE
    state), so a sharded product's StockChanged costs no extra round trip.
    """

    lines: list[tuple[int, int, int]]  # (line index, product id, shards)

    def queue(self, pipe: Any) -> int:
        """Queue the reads on `pipe`; how many results they add."""
        for _, product_id, shards in self.lines:
            for shard in range(shards):
                pipe.hmget(keys.stock(product_id, shard), "available", "version")
        return sum(shards for _, _, shards in self.lines)

    def fill(self, levels: list[tuple[int, int] | None], values: list[Any]) -> list[tuple[int, int]]:
        """`levels` with the summed (available, version) of each read line, from the queued reads' results."""
        filled = list(levels)
        results = iter(values)
        for index, _, shards in self.lines:
            rows = [next(results) for _ in range(shards)]
            filled[index] = (sum(int(a or 0) for a, _ in rows), sum(int(v or 0) for _, v in rows))
        return [level or (0, 0) for level in filled]


def level_reads(res: Reservation, levels: list[tuple[int, int] | None]) -> LevelReads:
    """The reads that complete `levels` (the lines whose product stock the pass did not learn)."""
    return LevelReads([(i, line.product_id, terms.shards)
                       for i, (line, terms, level) in enumerate(zip(res.lines, res.terms, levels, strict=True))
                       if level is None])


def take_lines(res: Reservation) -> tuple[str, Any]:
    """Step 2 for every line: ("TAKEN", levels), ("SHORT", outcome), ("LOAD", product) or ("ENDED", None).

    The levels are each line's product (available, version) when the pass learnt it (one-shard
    products), else None: `level_reads` reads the sum over the shards.

    Idempotent per order: a repeat after a crash or a load finds the holds already recorded.
    On "SHORT" every unit this pass took has been given back.
    """
    passes: list[tuple[Line, int, _LinePass]] = []
    for line, terms in zip(res.lines, res.terms, strict=True):
        line_pass = _take_line(res, line, terms.shards)
        passes.append((line, terms.shards, line_pass))
        if line_pass.load:
            return "LOAD", line.product_id
        if line_pass.ended:
            return "ENDED", None
        if not line_pass.complete:
            _release(res.order_id, passes)
            return "SHORT", {"code": "OUT_OF_STOCK", "productId": str(line.product_id),
                             "available": line_pass.available}
    return "TAKEN", [line_pass.level for _, _, line_pass in passes]


def reserve(res: Reservation, strategy: str | None = None, *, claimed: bool = False) -> ReserveResult:
    """Claim the order on the member's slot, then take every line's units from its shards.

    Serialised by `strategy` (default: settings). All or nothing: a line that cannot be completed
    gives back what was taken and undoes the claim, and the refusal is stored for replays.
    With `claimed`, the claim was made earlier (a retry finishing a dead attempt): only the takes run.
    """
    from goodsdrop.stock import load_stock  # stock imports this module; import lazily

    strategy = strategy or settings.stock_strategy
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown stock strategy {strategy!r}", details={"fields": {"stock_strategy": strategy}})
    if strategy == "lua" and not claimed:  # (the lock strategies check under their lock, as the seed did)
        answer = _sold_out_answer(res)
        if answer is not None:
            return answer
    product_ids = sorted({line.product_id for line in res.lines})
    for _ in range(4):
        with _serialised(strategy, product_ids):
            if not claimed:
                answer = _claim(res)
                if answer is not None:
                    return answer
                claimed = True
            kind, value = take_lines(res)
        if kind == "LOAD":
            load_stock(value)  # outside any lock or transaction; the claim and the holds stay
            continue
        if kind == "TAKEN":
            return ReserveResult("RESERVED", levels=value)
        if kind == "SHORT":
            _undo_claim(res, "REFUSED", "OUT_OF_STOCK", value)
            return ReserveResult("REFUSED", outcome=value)
        break
    # The stock stayed unloadable (or the hold was ended meanwhile): nothing stays reserved.
    release_order(res.order_id, res.member_id, res.lines)
    _undo_claim(res, "ABORTED", "STOCK_UNAVAILABLE", None)
    raise ServiceUnavailable("the stock is being loaded; try again", retry_after=1)


@contextmanager
def _serialised(strategy: str, product_ids: list[int]) -> Iterator[None]:
    if strategy == "lua":
        yield
    elif strategy == "mysql_lock":
        with mysql_transaction() as cur:
            marks = ", ".join(["%s"] * len(product_ids))
            cur.execute(f"SELECT product_id FROM stock WHERE product_id IN ({marks}) ORDER BY product_id FOR UPDATE",
                        product_ids)
            cur.fetchall()
            yield
    else:
        with _redis_locks(product_ids):
            yield


@contextmanager
def _redis_locks(product_ids: list[int]) -> Iterator[None]:
    """Redisson-style locks, taken in product order (no deadlock), each with an owner token and a lease."""
    r = redis_client()
    token = uuid.uuid4().hex
    taken: list[int] = []
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    try:
        for product_id in product_ids:
            delay = 0.001
            while not r.set(keys.stock_lock(product_id), token, nx=True, px=LOCK_TTL_MS):
                if time.monotonic() > deadline:
                    raise ServiceUnavailable("the product is busy; try again", retry_after=1)
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
            taken.append(product_id)
        yield
    finally:
        for product_id in reversed(taken):
            script("release_lock")(keys=[keys.stock_lock(product_id)], args=[token])


# ---------------------------------------------------------------------------- rebalancing


def refill_shard(product_id: int, shards: int, empty: int, seen: dict[int, int]) -> int:
    """Move units from the fullest shard (as last `seen`) to the `empty` one; the units moved.

    Never creates units: an atomic take-if-available on the donor, then an increment on the
    recipient. If the recipient vanished in between (its stock is being rebuilt), the units go back
    to the donor; if both vanished, the rebuild recomputes every shard from MySQL anyway.
    """
    donor = max((s for s in seen if s != empty), key=lambda s: seen[s], default=None)
    if donor is None or seen[donor] < 2:
        return 0
    wanted = seen[donor] // 2
    shift = script("shift_available")
    status, moved, _, _ = (int(v) for v in shift(keys=[keys.stock(product_id, donor)], args=[-wanted]))
    if status != 1 or moved == 0:
        return 0
    status, _, _, _ = (int(v) for v in shift(keys=[keys.stock(product_id, empty)], args=[-moved]))
    if status != 1:
        shift(keys=[keys.stock(product_id, donor)], args=[-moved])
        return 0
    return -moved


def rebalance(product_id: int, shards: int) -> int:
    """Even out a sharded product's available units over its shards (e.g. near a drop's end); units moved."""
    if shards <= 1:
        return 0
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards):
        pipe.hget(keys.stock(product_id, shard), "available")
    raw = pipe.execute()
    if any(v is None for v in raw):
        return 0  # being rebuilt: the rebuild spreads the units itself
    seen = {shard: int(v) for shard, v in enumerate(raw)}
    moved = 0
    for shard in [s for s, units in seen.items() if units == 0]:
        units = refill_shard(product_id, shards, shard, seen)
        if units:
            donor = max((s for s in seen if s != shard), key=lambda s: seen[s])
            seen[donor] -= units
            seen[shard] += units
            moved += units
    return moved


# ---------------------------------------------------------------------------- ending holds


@dataclass(frozen=True)
class Settled:
    """What ending one line's holds did: `applied` (1), already (0), uncached (2) or refused (-3).

    `available` and `version` are the product's, summed over its shards (-1 when unknown).
    """

    product_id: int
    code: int
    available: int
    version: int


def _settle_call(order_id: str, product_id: int, shard: int, target: str, client: Any) -> Any:
    return script("settle_hold")(keys=[keys.stock(product_id, shard), keys.stock_holds(product_id, shard),
                                       keys.stock_settled(product_id, order_id, shard)],
                                 args=[order_id, target, MARKER_TTL_SECONDS], client=client)


def _summed(product_id: int, codes: list[int], levels: list[tuple[int, int]]) -> Settled:
    if any(code == -3 for code in codes):
        code = -3
    elif any(code == 1 for code in codes):
        code = 1
    elif any(code == 2 for code in codes):
        code = 2
    else:
        code = 0
    known = all(available >= 0 for available, _ in levels)
    return Settled(product_id, code, sum(a for a, _ in levels) if known else -1,
                   sum(v for _, v in levels) if known else -1)


def _shards_of(product_id: int) -> int:
    from goodsdrop.products import shard_count

    return shard_count(product_id)


def _return_held(member_id: str | int, order_id: str, lines: list[Line], mode: str) -> None:
    args: list[Any] = [mode, MARKER_TTL_SECONDS, len(lines)]
    for line in lines:
        args += [line.product_id, line.quantity]
    script("return_held")(keys=[keys.member_held(member_id), keys.member_held_returned(member_id, order_id)],
                          args=args)


def settle(order_id: str, member_id: str | int, line: Line, target: str) -> Settled:
    """End the order's holds on `line`'s product in every shard: "C" sold or "X" released (idempotent).

    A release also gives the units back to the member's `held` count, exactly once.
    """
    shards = _shards_of(line.product_id)
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards):
        _settle_call(order_id, line.product_id, shard, target, pipe)
    answers = [[int(v) for v in raw] for raw in pipe.execute()]
    settled = _summed(line.product_id, [a[0] for a in answers], [(a[1], a[2]) for a in answers])
    if target == "X" and settled.code != -3:
        _return_held(member_id, order_id, [line], "return")
    return settled


def release_order(order_id: str, member_id: str | int, lines: list[Line]) -> list[Settled]:
    """Release every line of an order ("X" on every shard) and give its units back to `held`."""
    return [settle(order_id, member_id, line, "X") for line in lines]


def unsettle(order_id: str, lines: list[Line], member_id: str | int | None = None) -> None:
    """Undo settles whose MySQL transaction then failed: forget the markers and the cached stock.

    The next read rebuilds each product's shards from MySQL (where the transaction rolled back)
    and the holds, so Redis and MySQL agree again; `held` units given back are counted again.
    """
    r = redis_client()
    pipe = r.pipeline(transaction=False)
    for line in lines:
        for shard in range(_shards_of(line.product_id)):
            pipe.delete(keys.stock_settled(line.product_id, order_id, shard))
            pipe.delete(keys.stock(line.product_id, shard))
    pipe.execute()
    if member_id is not None and lines:
        _return_held(member_id, order_id, lines, "undo")


def product_level(product_id: int, shards: int | None = None) -> tuple[int, int] | None:
    """A product's (available, version) summed over its shards in one round trip; None if any is missing."""
    shards = shards or _shards_of(product_id)
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards):
        pipe.hmget(keys.stock(product_id, shard), "available", "version")
    rows = pipe.execute()
    if any(available is None for available, _ in rows):
        return None
    return sum(int(a) for a, _ in rows), sum(int(v or 0) for _, v in rows)


def restock(order_id: str, member_id: str | int, line: Line) -> Settled:
    """Give a cancelled or returned line's units back to the live stock and to `held` (idempotent).

    The units go to the member's home shard (a fixed choice, so a repeat finds its marker).
    """
    shards = _shards_of(line.product_id)
    shard = home_shard(member_id, shards)
    code, available, version = (int(v) for v in script("restock_units")(
        keys=[keys.stock(line.product_id, shard), keys.stock_restocked(line.product_id, order_id, shard)],
        args=[line.quantity, MARKER_TTL_SECONDS]))
    _return_held(member_id, order_id, [line], "return")
    if code == 1 and shards > 1:
        level = product_level(line.product_id, shards)
        available, version = level if level is not None else (-1, -1)
    return Settled(line.product_id, code, available, version)


def unrestock(order_id: str, line: Line, member_id: str | int | None = None) -> None:
    """Undo a restock whose MySQL transaction failed (forget the marker and the cached stock)."""
    shards = _shards_of(line.product_id)
    pipe = redis_client().pipeline(transaction=False)
    if member_id is not None:
        pipe.delete(keys.stock_restocked(line.product_id, order_id, home_shard(member_id, shards)))
    for shard in range(shards):
        if member_id is None:
            pipe.delete(keys.stock_restocked(line.product_id, order_id, shard))
        pipe.delete(keys.stock(line.product_id, shard))
    pipe.execute()
    if member_id is not None:
        _return_held(member_id, order_id, [line], "undo")


# ---------------------------------------------------------------------------- the order record


@dataclass(frozen=True)
class OrderRecord:
    """An order as Redis knows it while the saga runs."""

    order_id: str
    member_id: str
    status: str
    lines: list[Line]
    total: int
    created_ms: int
    expires_ms: int
    reason: str = ""


def read_record(member_id: str | int, order_id: str) -> OrderRecord | None:
    """The order's Redis record, or None."""
    raw = redis_client().hgetall(keys.order_record(member_id, order_id))
    if not raw or "doc" not in raw:
        return None
    doc = json.loads(raw["doc"])
    return OrderRecord(order_id, raw["member"], raw.get("status", "PENDING"),
                       [Line.from_json(line) for line in doc["lines"]], int(doc["total"]), int(raw["created"]),
                       int(raw["expires"]), raw.get("reason", ""))


def close_record(member_id: str | int, order_id: str, status: str, reason: str = "", *,
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
    return [tuple(entry.split(":", 1)) for entry in entries]  # type: ignore[misc]


def forget_expiry(member_id: str | int, order_id: str) -> None:
    """Remove a reservation from the expiry index."""
    redis_client().zrem(keys.reservation_expiry(), f"{member_id}:{order_id}")
