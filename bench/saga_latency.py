"""The order saga's reserve→CONFIRMED latency: `python -m bench.saga_latency [--orders 1000] [--rate 20]`

Places `--orders` one-unit orders (tok_ok) through the running stack's HTTP API at a steady
`--rate` per second (open loop, `--threads` senders), waits until every order is CONFIRMED, and
reports, per order, the time from the reservation (the `reserved_at` the hot path stamped) to the
confirmation commit (`orders.confirmed_at`), both taken on this machine's clock, plus the POST
latency seen by the client. Needs `make up` first. Not a test: nothing is asserted but completion.

Every order comes from this machine, so one source IP: above the product's per-IP order rate
(`GOODSDROP_ORDER_RATE_PER_IP`, 50/s) the runtime is restarted with that bucket off for the run
and restored afterwards, as the flash-drop benchmark does. Its buyers, product and orders are
removed afterwards (bench.drop_fixtures.BenchRun).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx

from bench.drop_fixtures import BenchRun
from goodsdrop.clients import mysql_cursor
from goodsdrop.settings import settings
from goodsdrop.tokens import issue_access_token

API = f"http://127.0.0.1:{settings.api_port}"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p / 100), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second (open loop; default 20)")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--buyers", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the last confirmation")
    args = parser.parse_args()
    from bench.flash_drop import IP_RATE_ENV, restart_runtime, runtime_env, use_strategy

    original = (runtime_env("GOODSDROP_STOCK_STRATEGY"), runtime_env("GOODSDROP_API_WORKERS"), runtime_env(IP_RATE_ENV))
    try:
        if args.rate > settings.order_rate_per_ip > 0:
            use_strategy(original[0] or "lua", None)  # the same strategy, with the per-IP bucket off
        with BenchRun(settle_timeout=args.timeout) as run:
            measure(run, args)
    finally:
        if (runtime_env("GOODSDROP_STOCK_STRATEGY"), runtime_env("GOODSDROP_API_WORKERS"),
                runtime_env(IP_RATE_ENV)) != original:
            restart_runtime(*original)


def measure(run: BenchRun, args: argparse.Namespace) -> None:
    """Place the orders, wait for the saga, print the table."""
    product = run.new_drop("[bench] saga latency", args.orders, opens_in=timedelta(seconds=-5),
                           per_member_limit=None, price=1000).product_id
    buyers = run.buyers(args.buyers)
    tokens = [issue_access_token(b, "member", True, uuid.uuid4().hex)[0] for b in buyers]
    body = {"items": [{"productId": str(product), "quantity": 1}], "paymentToken": "tok_ok"}
    post_ms: list[float] = []
    order_ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=args.threads))
    start = time.monotonic() + 0.5

    def send(i: int) -> None:
        delay = start + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Idempotency-Key": uuid.uuid4().hex}
        t0 = time.perf_counter()
        response = client.post(f"{API}/orders", json=body, headers=headers)
        elapsed = (time.perf_counter() - t0) * 1000
        with lock:
            if response.status_code == 202:
                post_ms.append(elapsed)
                order_ids.append(response.json()["orderId"])
            else:
                failures.append(f"{response.status_code} {response.text[:120]}")

    print(f"placing {args.orders} orders at {args.rate:g}/s with {args.threads} senders ...", flush=True)
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(send, range(args.orders)))
    sent_in = time.monotonic() - start
    client.close()

    deadline = time.monotonic() + args.timeout
    marks = ", ".join(["%s"] * len(order_ids))
    while True:
        with mysql_cursor() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM orders WHERE status = 'CONFIRMED' AND id IN ({marks})", order_ids)
            confirmed = int(cur.fetchone()["n"])
        if confirmed == len(order_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    with mysql_cursor() as cur:
        cur.execute("SELECT TIMESTAMPDIFF(MICROSECOND, r.reserved_at, o.confirmed_at) / 1000 AS ms "
                    f"FROM orders o JOIN reservations r ON r.order_id = o.id WHERE o.status = 'CONFIRMED' "
                    f"AND o.id IN ({marks})", order_ids)
        saga_ms = [float(r["ms"]) for r in cur.fetchall()]

    print(f"\nmachine: {os.cpu_count()} cores; sent {len(order_ids)} accepted orders in {sent_in:.1f} s "
          f"({len(order_ids) / sent_in:.0f}/s), refused/failed {len(failures)}, confirmed {len(saga_ms)}")
    if failures:
        print("  first failure:", failures[0])
    print("| measure | p50 ms | p90 ms | p99 ms | max ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in (("POST /orders (client)", post_ms), ("reserve → CONFIRMED (saga)", saga_ms)):
        if values:
            print(f"| {name} | {_pct(values, 50):.1f} | {_pct(values, 90):.1f} | {_pct(values, 99):.1f} | "
                  f"{max(values):.1f} | {statistics.fmean(values):.1f} |")
    if len(saga_ms) != len(order_ids):
        raise SystemExit(f"{len(order_ids) - len(saga_ms)} orders were not CONFIRMED within {args.timeout:g} s")


if __name__ == "__main__":
    main()
