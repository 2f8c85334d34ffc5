"""Stock: the live count in Redis, the system of record in MySQL, and the rules between them.

- Reads are look-aside: Redis first; on a miss one loader fills Redis from MySQL and the holds
  (goodsdrop.reservations.rebuild.load_stock; others wait briefly for it), so a hot miss never
  stampedes the database.
- Writes are write-through: MySQL first (system of record), then Redis by a Lua script that keeps
  reserved units held, then a stock-changed event on Kafka.
- Reservations decrement atomically in Redis, shard by shard (lua/take_units.lua,
  goodsdrop.reservations); never below zero.

In Redis a product's stock is split over its S shards (goodsdrop.reservations.shards), each a
hash in its own slot: `available` (sellable now), `reserved` (held by open reservations, not yet
persisted as sold) and `version` (bumped on every change). MySQL's `stock.count` is the units not
yet sold, so the sum over the shards of available + reserved = count. What readers see (the API,
search, SSE) is the sum over the shards; its version is the sum of the shards' versions. Beside
each shard: `keys.stock_holds` (each open reservation's units there; their sum is its `reserved`).
The units each member holds, for perMemberLimit, live with the member (`keys.member_held`).

A seller's stock change is applied as a delta spread over the shards (`lua/shift_available.lua`),
decrements guarded so no shard goes below zero: the sum of `available` becomes exactly the new
stock minus the reserved units, and a stock below the reserved units is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from goodsdrop import keys, topics
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.codes import ShiftCode
from goodsdrop.errors import Conflict, NotFound, ValidationError
from goodsdrop.events import Envelope, publish
from goodsdrop.failures import UNKNOWN_PRODUCT
from goodsdrop.products import get_product, sale_status, shard_count
from goodsdrop.reservations import forget_shards, load_stock, product_level, spread
from goodsdrop.scripts import script

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


def read_stock(product_id: int) -> StockLevel:
    """The live stock of a product: Redis, or MySQL on a miss (then cached)."""
    cached = product_level(product_id)
    available, version = cached if cached is not None else load_stock(product_id)
    product = get_product(product_id)
    return StockLevel(product_id, available, sale_status(available, product.sales_start_at), version)


def set_stock(product_id: int, remaining: int) -> StockLevel:
    """Write-through a new remaining stock: MySQL, then Redis, then a stock-changed event.

    A new stock below the units already reserved is refused (409 `INVALID_STATE`): those buyers
    hold their units, and no more may be sold than the new stock minus them. On a sharded product
    the change is a delta spread over the shards (decrements never take a shard below zero).
    """
    if not 0 <= remaining <= MAX_STOCK:
        raise ValidationError("stock must be between 0 and 10000000", details={"fields": {"stock": "out of range"}})
    shards = shard_count(product_id)
    if product_level(product_id) is None:
        load_stock(product_id)
    cached = True
    try:
        with mysql_transaction() as cur:
            # The row lock serialises sellers' writes and the saga's; Redis changes only if MySQL can commit.
            cur.execute("SELECT count FROM stock WHERE product_id = %s FOR UPDATE", (product_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"product {product_id} not found")
            cur.execute("UPDATE stock SET count = %s WHERE product_id = %s", (remaining, product_id))
            cached = _shift_stock(product_id, shards, remaining - int(row["count"]))
    except Conflict:
        raise
    except Exception:
        # MySQL did not commit but Redis may have changed: drop the shards so they reload from MySQL.
        forget_shards(product_id, shards)
        raise
    if not cached:  # a shard vanished meanwhile: rebuild them all from what MySQL now says
        forget_shards(product_id, shards)
        available, version = load_stock(product_id)
    else:
        available, version = product_level(product_id) or load_stock(product_id)
    level = StockLevel(product_id, available, sale_status(available, get_product(product_id).sales_start_at), version)
    publish_stock_changed(level)
    return level


def _shift_stock(product_id: int, shards: int, delta: int) -> bool:
    """Apply a stock change of `delta` units to the shards' `available`; False if a shard is not cached.

    Raises `Conflict(INVALID_STATE)` (after putting back what it took) when the shards do not have
    `-delta` available units: the new stock would be below the units reserved.
    """
    shift = script("shift_available")
    r = redis_client()
    pipe = r.pipeline(transaction=False)
    for shard in range(shards):
        pipe.hmget(keys.stock(product_id, shard), "available", "reserved")
    levels = pipe.execute()
    if any(available is None for available, _ in levels):
        return False
    if delta >= 0:
        pipe = r.pipeline(transaction=False)
        for shard, share in enumerate(spread(delta, shards)):
            if share:
                shift(keys=[keys.stock(product_id, shard)], args=[share], client=pipe)
        return all(int(answer[0]) == ShiftCode.SHIFTED for answer in pipe.execute())
    need, taken = -delta, []
    for shard in sorted(range(shards), key=lambda s: -int(levels[s][0])):  # the fullest shards first
        if need <= 0:
            break
        status, moved, _, _ = (int(v) for v in shift(keys=[keys.stock(product_id, shard)], args=[-need]))
        if status != ShiftCode.SHIFTED:
            return False
        taken.append((shard, -moved))
        need += moved
    if need > 0:
        for shard, units in taken:
            shift(keys=[keys.stock(product_id, shard)], args=[units])
        pipe = r.pipeline(transaction=False)
        for shard in range(shards):
            pipe.hget(keys.stock(product_id, shard), "reserved")
        reserved = sum(int(v or 0) for v in pipe.execute())
        raise Conflict(f"{reserved} units are reserved by open orders", code="INVALID_STATE",
                       details={"reserved": reserved})
    return True


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
    try:
        if product_level(product_id) is None:
            load_stock(product_id)
    except NotFound as err:  # products are never deleted: no such product, the record is dead-lettered
        raise NotFound(str(err), code=UNKNOWN_PRODUCT) from err
