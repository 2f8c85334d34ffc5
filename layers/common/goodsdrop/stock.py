"""Stock: the live count in Redis, the system of record in MySQL, and the rules between them.

- Reads are look-aside: Redis first; on a miss one loader fills Redis from MySQL (others wait
  briefly for it) so a hot miss never stampedes the database.
- Writes are write-through: MySQL first (system of record), then Redis by a Lua script that keeps
  reserved units held, then a stock-changed event on Kafka.
- Reservations decrement atomically in Redis, shard by shard (lua/take_units.lua,
  goodsdrop.reservations); never below zero.

In Redis a product's stock is split over its S shards (`products.stock_shards`, 1 unless a hot
drop asked for more), each a hash in its own slot: `available` (sellable now), `reserved` (held by
open reservations, not yet persisted as sold) and `version` (bumped on every change). MySQL's
`stock.count` is the units not yet sold, so the sum over the shards of available + reserved =
count. What readers see (the API, search, SSE) is the sum over the shards, read in one pipelined
round trip; its version is the sum of the shards' versions. Beside each shard:
`keys.stock_holds` (each open reservation's units there; their sum is its `reserved`). The units
each member holds, for perMemberLimit, live with the member (`keys.member_held`).

A seller's stock change is applied as a delta spread over the shards (`lua/shift_available.lua`),
decrements guarded so no shard goes below zero: the sum of `available` becomes exactly the new
stock minus the reserved units, and a stock below the reserved units is refused.

Rebuilding (`load_stock`) rebuilds every shard of the product at once: it first removes each
shard's stock hash (so no unit moves while it computes: reservations find no stock and wait for
it) and leaves a token in each shard's slot; then, under a share lock on the MySQL stock row
(every saga step that changes a product's stock changes Redis under that row's exclusive lock
before it commits), it reads MySQL and the holds and writes each shard: the holds stay where they
are (OPEN reservations Redis lost go back to their member's home shard), and available = count -
open reservations (the ledger's OPEN rows plus holds the ledger has not recorded yet) is spread
evenly over the shards. A shard whose token vanished meanwhile lost its data: nothing is written.

If Redis lost its data (the `keys.stock_epoch` marker is gone), no stock is rebuilt - and so no
sale proceeds - until every reservation made before the loss is in the MySQL ledger:
`ensure_recovered` waits out in-flight publishes and the payments consumer's lag first, then adds
to every member's `held` counts what MySQL says they hold (once per recovery), then sets the epoch.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from goodsdrop import keys, topics
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from goodsdrop.events import Envelope, publish
from goodsdrop.failures import UNKNOWN_PRODUCT
from goodsdrop.products import get_product, sale_status, shard_count
from goodsdrop.scripts import script

LOADER_LOCK_MS = 2000
LOADER_WAIT_SECONDS = 0.5
MAX_STOCK = 10_000_000
RECOVERY_WAIT_SECONDS = 20.0
REBUILD_TOKEN_MS = 10_000
HELD_BATCH = 500
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
    """(available, version) summed over the product's shards; None when any shard is not cached."""
    from goodsdrop.reservations import product_level

    return product_level(product_id, shard_count(product_id))


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
                    # One token per loss, kept across recoverers: a member's counts are added once.
                    r.set(keys.stock_recovery_token(), uuid.uuid4().hex, nx=True)
                    rebuild_held(r.get(keys.stock_recovery_token()) or token)
                    r.set(keys.stock_epoch(), str(int(time.time() * 1000)))
                    r.delete(keys.stock_recovery_token())
                    return
            finally:
                script("release_lock")(keys=[keys.stock_recovery_lock()], args=[token])
            break
        time.sleep(0.05)
        if r.exists(keys.stock_epoch()):
            return
    raise ServiceUnavailable("stock is being recovered; try again shortly", retry_after=2)


def rebuild_held(token: str) -> int:
    """After Redis lost its data: add to each member's `held` what MySQL says they hold; members done.

    Held = units sold and not given back + units of reservations the ledger has OPEN. Claims made
    since the loss counted themselves already, so these are added (once per recovery token).
    """
    from goodsdrop.reservations import MARKER_TTL_SECONDS

    with mysql_cursor() as cur:
        cur.execute("SELECT member_id, product_id, SUM(units) AS units FROM ("
                    "SELECT r.member_id, l.product_id, l.quantity AS units FROM reservation_lines l "
                    "JOIN reservations r ON r.order_id = l.order_id WHERE r.state = 'OPEN' "
                    "UNION ALL SELECT r.member_id, op.product_id, op.count AS units FROM order_products op "
                    "JOIN reservations r ON r.order_id = op.order_id AND r.state = 'CONSUMED' "
                    "WHERE op.restocked_at IS NULL) held GROUP BY member_id, product_id")
        rows = list(cur.fetchall())
    by_member: dict[str, list[Any]] = {}
    for row in rows:
        if int(row["units"]) > 0:
            by_member.setdefault(str(row["member_id"]), []).extend([int(row["product_id"]), int(row["units"])])
    members = list(by_member)
    for first in range(0, len(members), HELD_BATCH):
        pipe = redis_client().pipeline(transaction=False)
        for member in members[first:first + HELD_BATCH]:
            counts = by_member[member]
            script("load_held")(keys=[keys.member_held(member), keys.member_held_rebuilt(member)],
                                args=[token, MARKER_TTL_SECONDS, len(counts) // 2, *counts], client=pipe)
        pipe.execute()
    return len(members)


def forget_shards(product_id: int, shards: int | None = None) -> None:
    """Drop a product's cached stock shards (one key per command: each shard is its own slot)."""
    pipe = redis_client().pipeline(transaction=False)
    for shard in range(shards or shard_count(product_id)):
        pipe.delete(keys.stock(product_id, shard))
    pipe.execute()


def _spread(total: int, shards: int) -> list[int]:
    """`total` units split as evenly as possible over `shards` (the first shards get the remainder)."""
    return [total // shards + (1 if shard < total % shards else 0) for shard in range(shards)]


def _rebuild(product_id: int) -> tuple[int, int]:
    from goodsdrop.ledger import stock_snapshot
    from goodsdrop.reservations import MARKER_TTL_SECONDS, home_shard

    shards = shard_count(product_id)
    r = redis_client()
    for _ in range(2):
        ensure_recovered()
        token = uuid.uuid4().hex
        # Freeze: no shard can give or take a unit until it is written again below.
        pipe = r.pipeline(transaction=False)
        for shard in range(shards):
            pipe.delete(keys.stock(product_id, shard))
            pipe.set(keys.stock_rebuild(product_id, shard), token, px=REBUILD_TOKEN_MS)
        pipe.execute()
        if not r.exists(keys.stock_epoch()):
            continue  # Redis lost its data before the freeze: recover first
        pipe = r.pipeline(transaction=False)
        for shard in range(shards):
            pipe.hgetall(keys.stock_holds(product_id, shard))
        holds: list[dict[str, str]] = pipe.execute()
        held_orders = sorted({order for shard_holds in holds for order in shard_holds})
        with mysql_transaction() as cur:
            snapshot = stock_snapshot(cur, product_id, held_orders)
            if snapshot is None:
                raise NotFound(f"product {product_id} not found")
            count, reservations, _ = snapshot
            pipe = r.pipeline(transaction=False)
            for order, _, _, _ in reservations:
                for shard in range(shards):
                    pipe.get(keys.stock_settled(product_id, order, shard))
            markers = iter(pipe.execute())
            known: set[str] = set()
            adds: list[list[Any]] = [[] for _ in range(shards)]
            counted = [0] * shards  # units counted as held in each shard
            fix = r.pipeline(transaction=False)
            for order, member, units, state in reservations:
                known.add(order)
                ended = [m[0] for m in (next(markers) for _ in range(shards)) if m]
                where = [shard for shard in range(shards) if order in holds[shard]]
                if state == "OPEN" and not ended:
                    if where:
                        for s in where:
                            counted[s] += int(holds[s][order].rsplit(":", 1)[1])
                    else:  # Redis lost this hold: it goes back to its member's home shard
                        adds[home_shard(member, shards)] += [order, f"{member}:{units}"]
                        counted[home_shard(member, shards)] += units
                    continue
                if state == "OPEN" and "C" in ended:
                    count -= units  # sold in Redis by a step whose MySQL commit has not landed: redone later
                for shard in where:
                    fix.hdel(keys.stock_holds(product_id, shard), order)
                    if state != "OPEN":
                        # MySQL already ended this reservation; the hold left in Redis is stale
                        held_units = holds[shard][order].rsplit(":", 1)[1]
                        fix.set(keys.stock_settled(product_id, order, shard),
                                f"{'C' if state == 'CONSUMED' else 'X'}:{held_units}", ex=MARKER_TTL_SECONDS)
            # Holds the ledger does not have yet (their OrderRequested is still on its way): still held.
            for shard, shard_holds in enumerate(holds):
                counted[shard] += sum(int(v.rsplit(":", 1)[1]) for o, v in shard_holds.items() if o not in known)
            fix.execute()
            reserved = sum(counted)
            available = max(count - reserved, 0)
            pipe = r.pipeline(transaction=False)
            for shard, share in enumerate(_spread(available, shards)):
                script("load_stock")(keys=[keys.stock(product_id, shard), keys.stock_holds(product_id, shard),
                                           keys.stock_rebuild(product_id, shard)],
                                     args=[token, share, counted[shard], len(adds[shard]) // 2, *adds[shard]],
                                     client=pipe)
            written = pipe.execute()
        if all(int(result[0]) != -9 for result in written):
            return sum(int(result[0]) for result in written), shards
        # A shard lost its data meanwhile: drop what was written and recover first.
        forget_shards(product_id, shards)
    raise ServiceUnavailable("stock is being recovered; try again shortly", retry_after=2)


def load_stock(product_id: int) -> tuple[int, int]:
    """Fill Redis from MySQL and the open reservations (one loader at a time); (available, version)."""
    r = redis_client()
    if r.set(keys.stock_loading(product_id), "1", nx=True, px=LOADER_LOCK_MS):
        try:
            cached = _cached(product_id)  # the loader before us may have finished just now
            return cached if cached is not None else _rebuild(product_id)
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

    The bare check-and-decrement primitive (lua/reserve_stock.lua) on the product's first shard,
    without an order (so meant for one-shard products): orders reserve through
    `goodsdrop.reservations`, which passes over every shard and records holds, limits and expiry.

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
    hold their units, and no more may be sold than the new stock minus them. On a sharded product
    the change is a delta spread over the shards (decrements never take a shard below zero).
    """
    if not 0 <= remaining <= MAX_STOCK:
        raise ValidationError("stock must be between 0 and 10000000", details={"fields": {"stock": "out of range"}})
    shards = shard_count(product_id)
    if _cached(product_id) is None:
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
        available, version = _cached(product_id) or load_stock(product_id)
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
        for shard, share in enumerate(_spread(delta, shards)):
            if share:
                shift(keys=[keys.stock(product_id, shard)], args=[share], client=pipe)
        return all(int(answer[0]) == 1 for answer in pipe.execute())
    need, taken = -delta, []
    for shard in sorted(range(shards), key=lambda s: -int(levels[s][0])):  # the fullest shards first
        if need <= 0:
            break
        status, moved, _, _ = (int(v) for v in shift(keys=[keys.stock(product_id, shard)], args=[-need]))
        if status != 1:
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
        if _cached(product_id) is None:
            load_stock(product_id)
    except NotFound as err:  # products are never deleted: no such product, the record is dead-lettered
        raise NotFound(str(err), code=UNKNOWN_PRODUCT) from err
