"""Filling a product's live stock shards from MySQL and the holds; recovery after Redis lost its data.

Reads of the live stock are look-aside: on a miss one loader (`load_stock`) fills Redis from
MySQL (others wait briefly for it), so a hot miss never stampedes the database.

Rebuilding rebuilds every shard of the product at once: it first removes each shard's stock hash
(so no unit moves while it computes: reservations find no stock and wait for it) and leaves a
token in each shard's slot; then, under a share lock on the MySQL stock row (every saga step that
changes a product's stock changes Redis under that row's exclusive lock before it commits), it
reads MySQL and the holds and writes each shard: the holds stay where they are (OPEN reservations
Redis lost go back to their member's home shard), and available = count - open reservations (the
ledger's OPEN rows plus holds the ledger has not recorded yet) is spread evenly over the shards.
A shard whose token vanished meanwhile lost its data: nothing is written.

If Redis lost its data (the `keys.stock_epoch` marker is gone), no stock is rebuilt - and so no
sale proceeds - until every reservation made before the loss is in the MySQL ledger:
`ensure_recovered` waits out in-flight publishes and the payments consumer's lag first, then adds
to every member's `held` counts what MySQL says they hold (once per recovery), then sets the epoch.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pymysql

from goodsdrop import keys, ledger
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.clock import now_ms
from goodsdrop.codes import LedgerState, RebuildCode, SettleTarget
from goodsdrop.errors import NotFound, ServiceUnavailable
from goodsdrop.failures import MYSQL_DEADLOCK, MYSQL_LOCK_WAIT_TIMEOUT
from goodsdrop.products import shard_count
from goodsdrop.reservations.settlement import MARKER_TTL_SECONDS
from goodsdrop.reservations.shards import forget_shards, home_shard, product_level, spread
from goodsdrop.scripts import script

LOADER_LOCK_MS = 2000
LOADER_WAIT_SECONDS = 0.5
RECOVERY_WAIT_SECONDS = 20.0
REBUILD_TOKEN_MS = 10_000
HELD_BATCH = 500
HELD_ATTEMPTS = 3
PUBLISH_GRACE_SECONDS = 2.5  # > the hot path's publish timeout (goodsdrop.orders.PUBLISH_TIMEOUT_SECONDS)


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
                    r.set(keys.stock_epoch(), str(now_ms()))
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

    The ledger rows are read under share locks and Redis is written before they are released
    (goodsdrop.ledger.held_units): a compensation, expiry or restock gives units back in Redis
    before its MySQL commit, so reading committed state without locks could count an order whose
    units Redis already had back (one member's `held` one order too high for good).
    """
    for attempt in range(HELD_ATTEMPTS):
        try:
            with mysql_transaction() as cur:
                by_member: dict[str, list[Any]] = {}
                for member, product_id, units in ledger.held_units(cur):
                    if units > 0:
                        by_member.setdefault(member, []).extend([product_id, units])
                members = list(by_member)
                for first in range(0, len(members), HELD_BATCH):
                    pipe = redis_client().pipeline(transaction=False)
                    for member in members[first:first + HELD_BATCH]:
                        counts = by_member[member]
                        script("load_held")(keys=[keys.member_held(member), keys.member_held_rebuilt(member)],
                                            args=[token, MARKER_TTL_SECONDS, len(counts) // 2, *counts], client=pipe)
                    pipe.execute()
            return len(members)
        except pymysql.err.OperationalError as err:
            # A deadlock with a saga step rolled the read back before anything was written; members
            # written before a later failure are skipped on the next attempt (their rebuilt token).
            if err.args[0] not in (MYSQL_DEADLOCK, MYSQL_LOCK_WAIT_TIMEOUT) or attempt == HELD_ATTEMPTS - 1:
                raise
    return 0  # (not reached: the last attempt returns or raises)


def _rebuild(product_id: int) -> tuple[int, int]:  # noqa: C901 - one lock, one pass: shards, holds, markers
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
            snapshot = ledger.stock_snapshot(cur, product_id, held_orders)
            if snapshot is None:
                raise NotFound(f"product {product_id} not found")
            count, reservations, _ = snapshot
            cur.execute("SELECT listed FROM products WHERE id = %s", (product_id,))
            listed = cur.fetchone()
            closed = "0" if listed is not None and int(listed["listed"]) == 1 else "1"
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
                ended = [m[0] for m in (next(markers) for _ in range(shards)) if m]  # each marker's target
                where = [shard for shard in range(shards) if order in holds[shard]]
                if state == LedgerState.OPEN and not ended:
                    if where:
                        for s in where:
                            counted[s] += int(holds[s][order].rsplit(":", 1)[1])
                    else:  # Redis lost this hold: it goes back to its member's home shard
                        adds[home_shard(member, shards)] += [order, f"{member}:{units}"]
                        counted[home_shard(member, shards)] += units
                    continue
                if state == LedgerState.OPEN and SettleTarget.SOLD in ended:
                    count -= units  # sold in Redis by a step whose MySQL commit has not landed: redone later
                for shard in where:
                    fix.hdel(keys.stock_holds(product_id, shard), order)
                    if state != LedgerState.OPEN:
                        # MySQL already ended this reservation; the hold left in Redis is stale
                        held_units = holds[shard][order].rsplit(":", 1)[1]
                        target = SettleTarget.SOLD if state == LedgerState.CONSUMED else SettleTarget.RELEASED
                        fix.set(keys.stock_settled(product_id, order, shard), f"{target}:{held_units}",
                                ex=MARKER_TTL_SECONDS)
            # Holds the ledger does not have yet (their OrderRequested is still on its way): still held.
            for shard, shard_holds in enumerate(holds):
                counted[shard] += sum(int(v.rsplit(":", 1)[1]) for o, v in shard_holds.items() if o not in known)
            fix.execute()
            reserved = sum(counted)
            available = max(count - reserved, 0)
            pipe = r.pipeline(transaction=False)
            for shard, share in enumerate(spread(available, shards)):
                script("load_stock")(keys=[keys.stock(product_id, shard), keys.stock_holds(product_id, shard),
                                           keys.stock_rebuild(product_id, shard), keys.stock_closed(product_id, shard)],
                                     args=[token, share, counted[shard], closed, len(adds[shard]) // 2,
                                           *adds[shard]],
                                     client=pipe)
            written = pipe.execute()
        if all(int(result[0]) != RebuildCode.TOKEN_LOST for result in written):
            return sum(int(result[0]) for result in written), shards
        # A shard lost its data meanwhile: drop what was written and recover first.
        forget_shards(product_id, shards)
    raise ServiceUnavailable("stock is being recovered; try again shortly", retry_after=2)


def _units_in_mysql(product_id: int) -> int:
    """Units not yet sold, from the system of record; `NotFound` for an unknown product."""
    with mysql_cursor() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (product_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"product {product_id} not found")
    return int(row["count"])


def load_stock(product_id: int) -> tuple[int, int]:
    """Fill Redis from MySQL and the open reservations (one loader at a time); (available, version)."""
    r = redis_client()
    if r.set(keys.stock_loading(product_id), "1", nx=True, px=LOADER_LOCK_MS):
        try:
            cached = product_level(product_id)  # the loader before us may have finished just now
            return cached if cached is not None else _rebuild(product_id)
        finally:
            r.delete(keys.stock_loading(product_id))
    # Someone else is loading: wait briefly for their result instead of hitting MySQL too.
    deadline = time.monotonic() + LOADER_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.005)
        cached = product_level(product_id)
        if cached is not None:
            return cached
    # Still loading (or its loader died): an estimate for readers; reservations call again.
    return max(_units_in_mysql(product_id) - ledger.open_units(product_id), 0), 0
