"""Reservations in Redis: the hot path's all-or-nothing hold on stock, and how a hold ends.

`reserve` runs `lua/reserve_order.lua`: one atomic step checks the buyer's Idempotency-Key, that
every line is on sale, in stock and within the member's limit, and then takes the units, counts
them against the member (`keys.stock_buyers`), records a hold per product (`keys.stock_holds`),
the order record (`keys.order_record`, where a PENDING order lives before MySQL has it) and its
expiry (`keys.reservation_expiry`). No MySQL, no lock (with the default `lua` strategy).

A hold ends exactly once, by `settle` (`lua/settle_hold.lua`): sold ("C") when the saga persisted
the sale, or released ("X") back to stock. A per-order marker makes every repeat a no-op, so a
redelivered event never releases or sells twice.

`settings.stock_strategy` picks how the reservation is serialised, for the benchmark's comparison:
`lua` (the script alone: atomic, lock-free), `mysql_lock` (the stock rows locked with SELECT … FOR
UPDATE around the check-and-reserve) or `redis_lock` (a Redisson-style lock per product: SET NX PX
with a token, spin-wait, compare-and-delete release). All three run the same check-and-reserve
script, so they write the same records and differ only in how buyers are serialised.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    """What the script checks for one line besides stock: the member limit and the sales start."""

    per_member_limit: int | None
    sales_start_ms: int | None


@dataclass(frozen=True)
class Reservation:
    """What the caller asks the script to reserve."""

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


@dataclass(frozen=True)
class ReserveResult:
    """The script's answer: RESERVED (with each line's stock after it), REFUSED, REPLAY or REUSED."""

    kind: str
    outcome: dict[str, Any] | None = None  # REFUSED / REPLAY (DONE): the stored outcome
    state: str = ""  # REPLAY: DONE or IN_FLIGHT
    order_id: str = ""  # REPLAY: the order the key produced, if any
    levels: list[tuple[int, int]] | None = None  # RESERVED: (available, version) per line


def _script_call(res: Reservation) -> tuple[list[str], list[Any]]:
    script_keys = [keys.order_idempotency(res.member_id, res.key_digest),
                   keys.order_record(res.member_id, res.order_id), keys.reservation_expiry(),
                   keys.member_pending_orders(res.member_id)]
    args: list[Any] = [res.fingerprint, res.now_ms, res.expires_ms, res.order_id, res.member_id, res.document(),
                       IDEMPOTENCY_TTL_SECONDS,
                       max((res.expires_ms - res.now_ms) // 1000, 1) + RECORD_TTL_AFTER_EXPIRY_SECONDS, len(res.lines)]
    for line, terms in zip(res.lines, res.terms, strict=True):
        script_keys += [keys.stock(line.product_id), keys.stock_buyers(line.product_id),
                        keys.stock_holds(line.product_id)]
        args += [line.product_id, line.quantity,
                 -1 if terms.per_member_limit is None else terms.per_member_limit,
                 -1 if terms.sales_start_ms is None else terms.sales_start_ms]
    return script_keys, args


def _parse(raw: list[Any]) -> ReserveResult | int:
    kind = raw[0]
    if kind == "LOAD":
        return int(raw[1])
    if kind == "RESERVED":
        values = [int(v) for v in raw[1:]]
        return ReserveResult("RESERVED", levels=list(zip(values[::2], values[1::2], strict=True)))
    if kind == "REFUSED":
        return ReserveResult("REFUSED", outcome=json.loads(raw[1]))
    if kind == "REPLAY":
        state, outcome, order = raw[1], raw[2], raw[3]
        return ReserveResult("REPLAY", outcome=json.loads(outcome) if outcome else None, state=state, order_id=order)
    return ReserveResult("REUSED")


def reserve(res: Reservation, strategy: str | None = None) -> ReserveResult:
    """Run the check-and-reserve for every line at once, serialised by `strategy` (default: settings)."""
    from goodsdrop.stock import load_stock  # stock imports this module's settle; import lazily

    strategy = strategy or settings.stock_strategy
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown stock strategy {strategy!r}", details={"fields": {"stock_strategy": strategy}})
    script_keys, args = _script_call(res)
    product_ids = sorted({line.product_id for line in res.lines})
    for _ in range(4):
        with _serialised(strategy, product_ids):
            parsed = _parse(script("reserve_order")(keys=script_keys, args=args))
        if isinstance(parsed, ReserveResult):
            return parsed
        load_stock(res.lines[parsed - 1].product_id)  # outside any lock or transaction
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


# ---------------------------------------------------------------------------- ending holds


@dataclass(frozen=True)
class Settled:
    """What settling one product's hold did: `applied` (1), already (0), uncached (2) or refused (-3)."""

    product_id: int
    code: int
    available: int
    version: int


def settle(order_id: str, member_id: str | int, line: Line, target: str) -> Settled:
    """End the order's hold on `line`'s product: "C" sold or "X" released (idempotent)."""
    code, available, version = (int(v) for v in script("settle_hold")(
        keys=[keys.stock(line.product_id), keys.stock_buyers(line.product_id), keys.stock_holds(line.product_id),
              keys.stock_settled(line.product_id, order_id)],
        args=[order_id, member_id, line.quantity, target, MARKER_TTL_SECONDS]))
    return Settled(line.product_id, code, available, version)


def unsettle(order_id: str, lines: list[Line]) -> None:
    """Undo settles whose MySQL transaction then failed: forget the markers and the cached stock.

    The next read rebuilds each product's stock from MySQL (where the transaction rolled back) and
    the holds, so Redis and MySQL agree again.
    """
    r = redis_client()
    for line in lines:
        r.delete(keys.stock_settled(line.product_id, order_id), keys.stock(line.product_id))


def restock(order_id: str, member_id: str | int, line: Line) -> Settled:
    """Give a cancelled or returned line's units back to the live stock (idempotent)."""
    code, available, version = (int(v) for v in script("restock_units")(
        keys=[keys.stock(line.product_id), keys.stock_buyers(line.product_id),
              keys.stock_restocked(line.product_id, order_id)],
        args=[member_id, line.quantity, MARKER_TTL_SECONDS]))
    return Settled(line.product_id, code, available, version)


def unrestock(order_id: str, line: Line) -> None:
    """Undo a restock whose MySQL transaction failed (forget the marker and the cached stock)."""
    redis_client().delete(keys.stock_restocked(line.product_id, order_id), keys.stock(line.product_id))


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
