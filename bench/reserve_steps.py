"""Before/after timing of the reservation core: one cross-slot script vs the single-slot steps.

Before: `bench/legacy_reserve_order.lua`, the one script that reserved a whole order on one Redis
(1 round trip, CROSSSLOT on a cluster). After: `goodsdrop.reservations.reserve` as the product runs
it - the claim on the member's slot (with the expiry entry, one round trip), then the take on the
member's home shard (one round trip) - for a one-shard product and for a 4-shard product.

Each variant sells `--stock` units of its own product to new buyers, one call after the other
from one client (so the figures are per-call latency, not a load test), while stock lasts and
then some sold-out refusals; everything it wrote is removed afterwards. A few seconds at most:

    python -m bench.reserve_steps --calls 2000
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

from bench.drop_fixtures import BenchRun
from bench.legacy_reserve import buyers_key, script_call, source
from goodsdrop import keys
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.clock import now_ms
from goodsdrop.ids import new_ulid
from goodsdrop.reservations import Line, Reservation, Terms, load_stock, reserve

PRICE = 1000
MEMBER_BASE = 9_000_000_000  # synthetic member ids (the claim does not read members)


def _product(run: BenchRun, stock: int, shards: int) -> int:
    seller = run.seller()
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO products (seller_id, name, description, price, stock_shards, listed) "
                    "VALUES (%s, %s, 'bench.reserve_steps', %s, %s, 0)",
                    (seller, f"reserve-steps {uuid.uuid4().hex[:6]}", PRICE, shards))
        product_id = int(cur.lastrowid)
        cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product_id, stock))
    return product_id


def _reservation(product_id: int, member: int, shards: int) -> Reservation:
    now = now_ms()
    return Reservation(new_ulid(now), str(member), [Line(product_id, 1, PRICE)], [Terms(2, None, shards)],
                       "f" * 40, uuid.uuid4().hex[:40], now, now + 600_000)


def _summary(name: str, latencies: list[float], outcomes: dict[str, int], round_trips: str) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 3)

    return {"variant": name, "calls": len(latencies), "calls_per_s": round(len(latencies) / sum(latencies)),
            "p50_ms": pct(50), "p99_ms": pct(99), "outcomes": outcomes, "round_trips": round_trips}


def _cleanup(product_id: int, shards: int, orders: list[tuple[int, str, str]]) -> None:
    r = redis_client()
    pipe = r.pipeline(transaction=False)
    for member, order_id, digest in orders:
        pipe.zrem(keys.reservation_expiry(), f"{member}:{order_id}")
        for key in (keys.order_record(member, order_id), keys.order_idempotency(member, digest),
                    keys.member_pending_orders(member), keys.member_held(member)):
            pipe.delete(key)
    for shard in range(shards):
        for key in (keys.stock(product_id, shard), keys.stock_holds(product_id, shard)):
            pipe.delete(key)
    pipe.delete(buyers_key(product_id), keys.product_detail(product_id))
    pipe.execute()
    with mysql_transaction() as cur:
        cur.execute("DELETE FROM stock WHERE product_id = %s", (product_id,))
        cur.execute("DELETE FROM products WHERE id = %s", (product_id,))


def run_legacy(run: BenchRun, stock: int, calls: int) -> dict[str, Any]:
    """The single script, EVALSHA per call."""
    product_id = _product(run, stock, 1)
    load_stock(product_id)
    legacy = redis_client().register_script(source())
    latencies, outcomes, orders = [], {}, []
    for i in range(calls):
        res = _reservation(product_id, MEMBER_BASE + i, 1)
        script_keys, args = script_call(res)
        started = time.perf_counter()
        answer = legacy(keys=script_keys, args=args)
        latencies.append(time.perf_counter() - started)
        kind = answer[0] if answer[0] != "REFUSED" else json.loads(answer[1])["code"]
        outcomes[kind] = outcomes.get(kind, 0) + 1
        orders.append((MEMBER_BASE + i, res.order_id, res.key_digest))
    _cleanup(product_id, 1, orders)
    return _summary("before: one cross-slot script", latencies, outcomes, "1")


def run_steps(run: BenchRun, stock: int, calls: int, shards: int) -> dict[str, Any]:
    """The product's claim + per-shard takes (goodsdrop.reservations.reserve)."""
    product_id = _product(run, stock, shards)
    load_stock(product_id)
    latencies, outcomes, orders = [], {}, []
    for i in range(calls):
        res = _reservation(product_id, MEMBER_BASE + i, shards)
        started = time.perf_counter()
        result = reserve(res, "lua")
        latencies.append(time.perf_counter() - started)
        kind = str(result.kind) if result.kind != "REFUSED" else str(result.outcome["code"])  # type: ignore[index]
        outcomes[kind] = outcomes.get(kind, 0) + 1
        orders.append((MEMBER_BASE + i, res.order_id, res.key_digest))
    _cleanup(product_id, shards, orders)
    return _summary(f"after: claim + takes, {shards} shard(s)", latencies, outcomes, "2 (claim, take)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--stock", type=int, default=1500)
    args = parser.parse_args()
    with BenchRun(settle_timeout=0) as run:  # its seller goes too; the products go as soon as each is timed
        rows = [run_legacy(run, args.stock, args.calls), run_steps(run, args.stock, args.calls, 1),
                run_steps(run, args.stock, args.calls, 4)]
    print("| variant | round trips (success) | calls/s | p50 ms | p99 ms | outcomes |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['round_trips']} | {row['calls_per_s']} | {row['p50_ms']} | "
              f"{row['p99_ms']} | {row['outcomes']} |")


if __name__ == "__main__":
    main()
