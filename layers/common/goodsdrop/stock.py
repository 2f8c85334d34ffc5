"""Stock: the live count in Redis, the system of record in MySQL, and the rules between them.

- Reads are look-aside: Redis first; on a miss one loader fills Redis from MySQL (others wait
  briefly for it) so a hot miss never stampedes the database.
- Writes are write-through: MySQL first (system of record), then Redis by a Lua script that keeps
  reserved units held, then a stock-changed event on Kafka.
- Reservations decrement atomically in Redis (lua/reserve_order.lua, goodsdrop.reservations);
  never below zero.

In Redis a product's stock is a hash: `available` (sellable now), `reserved` (held by open
reservations, not yet persisted as sold) and `version` (bumped on every change; the SSE stream's
event id). MySQL's `stock.count` is the units not yet sold, so available + reserved = count.
Beside it: `keys.stock_holds` (each open reservation's units; their sum is `reserved`) and
`keys.stock_buyers` (units each member holds, for perMemberLimit).

Rebuilding (`load_stock`) happens under a share lock on the MySQL stock row, and every saga step
that changes a product's stock changes Redis under that row's exclusive lock before it commits,
so a rebuild sees MySQL and Redis from the same moment: available = count - open reservations
(the ledger's OPEN rows plus holds the ledger has not recorded yet).

If Redis lost its data (the `keys.stock_epoch` marker is gone), no stock is rebuilt - and so no
sale proceeds - until every reservation made before the loss is in the MySQL ledger:
`ensure_recovered` waits out in-flight publishes and the payments consumer's lag first.
"""

from __future__ import annotations

import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from goodsdrop import keys, topics
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from goodsdrop.events import Envelope, publish
from goodsdrop.products import get_product, sale_status
from goodsdrop.scripts import script

LOADER_LOCK_MS = 2000
LOADER_WAIT_SECONDS = 0.5
MAX_STOCK = 10_000_000
RECOVERY_WAIT_SECONDS = 20.0
PUBLISH_GRACE_SECONDS = 2.5  # > the hot path's publish timeout (goodsdrop.orders.PUBLISH_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class StockLevel:
    """A product's live stock as the API shows it."""

    product_id: int
    stock: int
    status: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"productId": str(self.product_id), "stock": self.stock, "status": self.status}


def stock_in_mysql(product_id: int) -> int:
    """Units not yet sold, from the system of record; `NotFound` for an unknown product."""
    with mysql_cursor() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (product_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"product {product_id} not found")
    return int(row["count"])


def open_reserved_units(product_id: int) -> int:
    """Units held by reservations that MySQL does not count as sold yet (the ledger's OPEN rows)."""
    from goodsdrop.ledger import open_units

    return open_units(product_id)


def _cached(product_id: int) -> tuple[int, int] | None:
    available, version = redis_client().hmget(keys.stock(product_id), "available", "version")
    if available is None:
        return None
    return int(available), int(version or 0)


def ensure_recovered() -> None:
    """Return once stock may be rebuilt from MySQL; after Redis lost its data, recover first.

    Recovery (one process at a time): wait out reservations whose OrderRequested was still being
    published when Redis lost them, then until the payments consumer has put every published
    reservation into the MySQL ledger; then set the epoch marker. Meanwhile nothing is sold:
    reservations find no stock and load it, which waits here (503 after `RECOVERY_WAIT_SECONDS`).
    """
    r = redis_client()
    if r.exists(keys.stock_epoch()):
        return
    from goodsdrop import ledger

    deadline = time.monotonic() + RECOVERY_WAIT_SECONDS
    token = uuid.uuid4().hex
    while time.monotonic() < deadline:
        if r.set(keys.stock_recovery_lock(), token, nx=True, px=int(RECOVERY_WAIT_SECONDS * 2000)):
            try:
                time.sleep(PUBLISH_GRACE_SECONDS)
                if ledger.wait_until_caught_up(max(deadline - time.monotonic(), 1.0)):
                    r.set(keys.stock_epoch(), str(int(time.time() * 1000)))
                    return
            finally:
                script("release_lock")(keys=[keys.stock_recovery_lock()], args=[token])
            break
        time.sleep(0.05)
        if r.exists(keys.stock_epoch()):
            return
    raise ServiceUnavailable("stock is being recovered; try again shortly", retry_after=2)


def _rebuild(product_id: int) -> tuple[int, int]:
    from goodsdrop.ledger import stock_snapshot
    from goodsdrop.reservations import MARKER_TTL_SECONDS

    for _ in range(2):
        ensure_recovered()
        held = redis_client().hkeys(keys.stock_holds(product_id))
        with mysql_transaction() as cur:
            snapshot = stock_snapshot(cur, product_id, held)
            if snapshot is None:
                raise NotFound(f"product {product_id} not found")
            count, reservations, sold = snapshot
            args: list[Any] = [count, keys.stock_settled(product_id, ""), MARKER_TTL_SECONDS, len(reservations)]
            for entry in reservations:
                args += list(entry)
            args.append(len(sold))
            for member, units in sold:
                args += [member, units]
            available, version = (int(v) for v in script("load_stock")(
                keys=[keys.stock(product_id), keys.stock_buyers(product_id), keys.stock_holds(product_id),
                      keys.stock_epoch()], args=args))
        if available != -9:
            return available, version
    raise ServiceUnavailable("stock is being recovered; try again shortly", retry_after=2)


def load_stock(product_id: int) -> tuple[int, int]:
    """Fill Redis from MySQL and the open reservations (one loader at a time); (available, version)."""
    r = redis_client()
    if r.set(keys.stock_loading(product_id), "1", nx=True, px=LOADER_LOCK_MS):
        try:
            return _rebuild(product_id)
        finally:
            r.delete(keys.stock_loading(product_id))
    # Someone else is loading: wait briefly for their result instead of hitting MySQL too.
    deadline = time.monotonic() + LOADER_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.005)
        cached = _cached(product_id)
        if cached is not None:
            return cached
    # Still loading (or its loader died): an estimate for readers; reservations call again.
    return max(stock_in_mysql(product_id) - open_reserved_units(product_id), 0), 0


def read_stock(product_id: int) -> StockLevel:
    """The live stock of a product: Redis, or MySQL on a miss (then cached)."""
    cached = _cached(product_id)
    available, version = cached if cached is not None else load_stock(product_id)
    product = get_product(product_id)
    return StockLevel(product_id, available, sale_status(available, product.sales_start_at), version)


def reserve_stock(product_id: int, units: int) -> int:
    """Take `units` from the live stock atomically; returns what is left.

    The bare check-and-decrement primitive (lua/reserve_stock.lua), without an order: orders
    reserve through `goodsdrop.reservations`, which also records holds, limits and expiry.

    Raises `Conflict(OUT_OF_STOCK)` when fewer units are available; nothing is taken then.
    """
    if not 1 <= units <= MAX_STOCK:
        raise ValidationError("quantity must be a positive integer", details={"fields": {"quantity": "out of range"}})
    for _ in range(2):
        left = int(script("reserve_stock")(keys=[keys.stock(product_id)], args=[units]))
        if left == -2:
            load_stock(product_id)
            continue
        if left == -1:
            raise Conflict("not enough stock", code="OUT_OF_STOCK", details={"productId": str(product_id)})
        return left
    raise Conflict("stock is being rebuilt, try again", code="OUT_OF_STOCK", details={"productId": str(product_id)})


def set_stock(product_id: int, remaining: int) -> StockLevel:
    """Write-through a new remaining stock: MySQL, then Redis, then a stock-changed event.

    A new stock below the units already reserved is refused (409 `INVALID_STATE`): those buyers
    hold their units, and no more may be sold than the new stock minus them.
    """
    if not 0 <= remaining <= MAX_STOCK:
        raise ValidationError("stock must be between 0 and 10000000", details={"fields": {"stock": "out of range"}})
    if _cached(product_id) is None:
        load_stock(product_id)
    try:
        with mysql_transaction() as cur:
            # The row lock serialises sellers' writes; Redis changes only if MySQL can commit.
            cur.execute("SELECT count FROM stock WHERE product_id = %s FOR UPDATE", (product_id,))
            if cur.fetchone() is None:
                raise NotFound(f"product {product_id} not found")
            cur.execute("UPDATE stock SET count = %s WHERE product_id = %s", (remaining, product_id))
            available, version = (int(v) for v in script("set_stock")(keys=[keys.stock(product_id)], args=[remaining]))
            if available == -1:
                raise Conflict(f"{version} units are reserved by open orders", code="INVALID_STATE",
                               details={"reserved": version})
    except Conflict:
        raise
    except Exception:
        # MySQL did not commit but Redis may have changed: drop the key so it reloads from MySQL.
        redis_client().delete(keys.stock(product_id))
        raise
    if available == -2:  # the cached stock vanished meanwhile: rebuild it from what MySQL now says
        available, version = load_stock(product_id)
    level = StockLevel(product_id, available, sale_status(available, get_product(product_id).sales_start_at), version)
    publish_stock_changed(level)
    return level


def publish_stock_changed(level: StockLevel) -> None:
    """Tell the cache and the live-stock streams that a product's stock changed."""
    payload = level.to_json() | {"version": level.version}
    publish(topics.STOCK_CHANGED, Envelope(type="StockChanged", payload=payload), key=str(level.product_id))


def apply_stock_changed(payload: dict[str, Any]) -> None:
    """Consumer side of StockChanged: keep the stock cache warm.

    A stock key that Redis lost is filled again from MySQL, so the next buyer does not pay for
    the miss. The product detail document holds no stock, so it stays cached: dropping it on
    every sale would send each buyer of a live drop to MySQL for the product.
    """
    product_id = int(payload["productId"])
    if _cached(product_id) is None:
        with suppress(NotFound):  # the product was removed since; nothing to cache
            load_stock(product_id)
