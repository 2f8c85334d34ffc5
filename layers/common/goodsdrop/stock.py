"""Stock: the live count in Redis, the system of record in MySQL, and the rules between them.

- Reads are look-aside: Redis first; on a miss one loader fills Redis from MySQL (others wait
  briefly for it) so a hot miss never stampedes the database.
- Writes are write-through: MySQL first (system of record), then Redis by a Lua script that keeps
  reserved units held, then a stock-changed event on Kafka.
- Reservations decrement atomically in Redis (lua/reserve_stock.lua); never below zero.

In Redis a product's stock is a hash: `available` (sellable now), `reserved` (held by open
reservations, not yet persisted as sold) and `version` (bumped on every change; the SSE stream's
event id). MySQL's `stock.count` is the units not yet sold, so available + reserved = count.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from goodsdrop import keys, topics
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.errors import Conflict, NotFound, ValidationError
from goodsdrop.events import Envelope, publish
from goodsdrop.products import get_product, sale_status
from goodsdrop.scripts import script

LOADER_LOCK_MS = 2000
LOADER_WAIT_SECONDS = 0.5
MAX_STOCK = 10_000_000


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
    """Units held by reservations that MySQL does not count as sold yet.

    Reservations live only in Redis until the order saga persists them; until the orders
    module records them durably, a rebuild after Redis lost its data counts none.
    """
    return 0


def _cached(product_id: int) -> tuple[int, int] | None:
    available, version = redis_client().hmget(keys.stock(product_id), "available", "version")
    if available is None:
        return None
    return int(available), int(version or 0)


def load_stock(product_id: int) -> tuple[int, int]:
    """Fill Redis from MySQL (one loader at a time) and return (available, version)."""
    r = redis_client()
    if r.set(keys.stock_loading(product_id), "1", nx=True, px=LOADER_LOCK_MS):
        try:
            reserved = open_reserved_units(product_id)
            available = max(stock_in_mysql(product_id) - reserved, 0)
            script("load_stock")(keys=[keys.stock(product_id)], args=[available, reserved])
        finally:
            r.delete(keys.stock_loading(product_id))
    else:
        # Someone else is loading: wait briefly for their result instead of hitting MySQL too.
        deadline = time.monotonic() + LOADER_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.005)
            cached = _cached(product_id)
            if cached is not None:
                return cached
        return max(stock_in_mysql(product_id) - open_reserved_units(product_id), 0), 0
    cached = _cached(product_id)
    assert cached is not None
    return cached


def read_stock(product_id: int) -> StockLevel:
    """The live stock of a product: Redis, or MySQL on a miss (then cached)."""
    cached = _cached(product_id)
    available, version = cached if cached is not None else load_stock(product_id)
    product = get_product(product_id)
    return StockLevel(product_id, available, sale_status(available, product.sales_start_at), version)


def reserve_stock(product_id: int, units: int) -> int:
    """Take `units` from the live stock atomically; returns what is left.

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
    level = StockLevel(product_id, available, sale_status(available, get_product(product_id).sales_start_at), version)
    publish_stock_changed(level)
    return level


def publish_stock_changed(level: StockLevel) -> None:
    """Tell the cache and the live-stock streams that a product's stock changed."""
    payload = level.to_json() | {"version": level.version}
    publish(topics.STOCK_CHANGED, Envelope(type="StockChanged", payload=payload), key=str(level.product_id))


def apply_stock_changed(payload: dict[str, Any]) -> None:
    """Consumer side of StockChanged: keep the caches coherent with the change.

    The detail document is dropped (it is re-rendered on the next read) and a stock key that
    Redis lost is filled again from MySQL, so the next buyer does not pay for the miss.
    """
    product_id = int(payload["productId"])
    redis_client().delete(keys.product_detail(product_id))
    if _cached(product_id) is None:
        with suppress(NotFound):  # the product was removed since; nothing to cache
            load_stock(product_id)
