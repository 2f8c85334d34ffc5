"""The order saga's invariants, stated once and checked against the real stores.

Shared by the tests and the chaos drills (`bench.chaos`); also a command:

    python -m bench.invariants --product 12 --product 13 [--initial 12=100] [--wait 60]

For a set of products (and, when known, the orders the API accepted for them and each product's
starting stock), once the saga has settled:

1. No unit is oversold: MySQL stock never below zero, and units sold (order lines of CONSUMED
   reservations, not given back) + MySQL stock = the starting stock, so sold <= starting stock.
2. No reservation is orphaned: no ledger reservation still OPEN, no hold left in Redis
   (`keys.stock_holds`), no entry left in the expiry index, nothing `reserved` in Redis.
3. Every accepted order ended CONFIRMED (paid once, nothing refunded) or FAILED / EXPIRED with
   its money refunded (the gateway's refunds = its capture; MySQL's refunds agree).
4. Stock in Redis, summed over the product's shards = stock in MySQL - open reservations
   (`available`; no shard below zero), `reserved` = open units, and each member's counted units
   (`keys.member_held`, with the member) = units sold to them + units they hold, never above the
   product's per-member limit.

`check` reads and reports; `wait_settled` polls (bounded) until nothing is in flight any more.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from goodsdrop import keys, payment_gateway
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.products import shard_count

FINAL = ("CONFIRMED", "FAILED", "EXPIRED", "CANCELLED")


@dataclass
class Figures:
    """What the stores say, summed over the checked products and orders."""

    orders: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    units_start: int | None = None
    units_sold: int = 0
    units_left_mysql: int = 0
    units_available_redis: int | None = None
    units_open: int = 0
    charged: int = 0
    refunded: int = 0
    refunds_owed: int = 0
    orders_refunded: int = 0


@dataclass
class Report:
    """Figures and every broken invariant, each as one readable sentence."""

    figures: Figures
    violations: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "figures": asdict(self.figures), "violations": self.violations}


def _rows(sql: str, args: list[Any]) -> list[dict[str, Any]]:
    with mysql_cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _orders_of(products: list[int]) -> list[str]:
    rows = _rows(f"SELECT DISTINCT order_id FROM reservation_lines WHERE product_id IN ({_marks(products)})", products)
    return sorted(r["order_id"] for r in rows)


def check(products: list[int], accepted: list[str] | None = None,  # noqa: C901 - one check per invariant, in one read
          start: dict[int, int] | None = None) -> Report:
    """Check every invariant for `products` (and the `accepted` orders; default: every order of them)."""
    violations: list[str] = []
    figures = Figures()
    products = sorted(set(products))
    ledger_orders = _orders_of(products)
    orders = sorted(set(ledger_orders) | set(accepted or []))
    figures.orders = len(accepted) if accepted is not None else len(orders)
    r = redis_client()

    missing = sorted(set(accepted or []) - set(ledger_orders))
    for order_id in missing:
        violations.append(f"accepted order {order_id} never reached the reservation ledger")

    ledger: dict[str, dict[str, Any]] = {}
    order_rows: dict[str, dict[str, Any]] = {}
    payments: dict[str, dict[str, Any]] = {}
    refunds: dict[str, int] = defaultdict(int)
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if orders:
        m = _marks(orders)
        ledger = {x["order_id"]: x for x in _rows(f"SELECT order_id, member_id, state, total_price FROM reservations "
                                                  f"WHERE order_id IN ({m})", orders)}
        order_rows = {x["id"]: x for x in _rows(f"SELECT id, status, failure_reason, total_price FROM orders "
                                                f"WHERE id IN ({m})", orders)}
        for x in _rows(f"SELECT order_id, COUNT(*) AS n, MAX(status) AS status, SUM(amount) AS amount FROM payments "
                       f"WHERE order_id IN ({m}) GROUP BY order_id", orders):
            payments[x["order_id"]] = x
        for x in _rows(f"SELECT order_id, SUM(amount) AS amount FROM refunds WHERE order_id IN ({m}) "
                       "GROUP BY order_id", orders):
            refunds[x["order_id"]] = int(x["amount"])
        for x in _rows(f"SELECT order_id, product_id, quantity FROM reservation_lines WHERE order_id IN ({m})",
                       orders):
            lines[x["order_id"]].append(x)

    # 3. every accepted order ended, and its money with it
    statuses: Counter[str] = Counter()
    for order_id in orders:
        row, entry = order_rows.get(order_id), ledger.get(order_id)
        status = row["status"] if row else "MISSING"
        if entry is not None and entry["state"] == "RELEASED" and row is None:
            status = "ABORTED" if accepted is None or order_id not in accepted else "MISSING"
        statuses[status] += 1
        if status == "ABORTED":
            continue  # never accepted: its publish failed and the buyer got 503
        if status not in FINAL:
            violations.append(f"order {order_id} is {status}, not CONFIRMED / FAILED / EXPIRED")
            continue
        books = payment_gateway.books(order_id)
        captured, refunded = int(books["captured"]), int(books["refunded"])
        figures.charged += captured
        figures.refunded += refunded
        pay = payments.get(order_id)
        if pay is not None and int(pay["n"]) > 1:
            violations.append(f"order {order_id} has {pay['n']} payments")
        if status == "CONFIRMED":
            total = int(row["total_price"])  # type: ignore[index]
            if entry is None or entry["state"] != "CONSUMED":
                violations.append(f"confirmed order {order_id} has ledger state {entry and entry['state']}")
            if captured != total or refunded != 0:
                violations.append(f"confirmed order {order_id}: charged {captured}, refunded {refunded}, total {total}")
            if pay is None or pay["status"] != "SUCCEEDED":
                violations.append(f"confirmed order {order_id}: payment {pay and pay['status']}")
        elif status in ("FAILED", "EXPIRED"):
            figures.refunds_owed += captured
            if captured:
                figures.orders_refunded += refunded == captured
            if entry is None or entry["state"] != "RELEASED":
                violations.append(f"{status.lower()} order {order_id} has ledger state {entry and entry['state']}")
            if refunded != captured:
                violations.append(f"{status.lower()} order {order_id}: charged {captured}, refunded {refunded}")
            if refunds.get(order_id, 0) != captured:
                violations.append(f"{status.lower()} order {order_id}: MySQL refunds {refunds.get(order_id, 0)}, "
                                  f"charged {captured}")
            if pay is not None and pay["status"] not in ("DECLINED", "REFUNDED"):
                violations.append(f"{status.lower()} order {order_id}: payment still {pay['status']}")
    figures.statuses = dict(sorted(statuses.items()))

    # 2. nothing orphaned
    open_orders = [o for o, e in ledger.items() if e["state"] == "OPEN"]
    for order_id in open_orders:
        violations.append(f"reservation {order_id} is still OPEN in the ledger")
    expiry = set(r.zrange(keys.reservation_expiry(), 0, -1))
    for order_id in orders:
        entry = ledger.get(order_id)
        if entry is not None and f"{entry['member_id']}:{order_id}" in expiry:
            violations.append(f"reservation {order_id} is still in the expiry index")

    # 1 and 4, product by product
    start = start or {}
    figures.units_start = sum(start.values()) if start else None
    available_total: int | None = 0
    for product in products:
        mysql_left = _rows("SELECT count FROM stock WHERE product_id = %s", [product])
        if not mysql_left:
            violations.append(f"product {product} has no stock row")
            continue
        left = int(mysql_left[0]["count"])
        sold_rows = _rows("SELECT r.member_id, SUM(op.count) AS units FROM order_products op "
                          "JOIN reservations r ON r.order_id = op.order_id AND r.state = 'CONSUMED' "
                          "WHERE op.product_id = %s AND op.restocked_at IS NULL GROUP BY r.member_id", [product])
        sold_by = {str(x["member_id"]): int(x["units"]) for x in sold_rows}
        sold = sum(sold_by.values())
        open_by: Counter[str] = Counter()
        for order_id in open_orders:
            for line in lines[order_id]:
                if int(line["product_id"]) == product:
                    open_by[str(ledger[order_id]["member_id"])] += int(line["quantity"])
        shards = shard_count(product)
        holds: dict[str, str] = {}
        for shard in range(shards):
            for order_id, held in r.hgetall(keys.stock_holds(product, shard)).items():
                member, _, units = held.rpartition(":")
                previous = holds.get(order_id)
                holds[order_id] = f"{member}:{int(units) + (int(previous.rpartition(':')[2]) if previous else 0)}"
        for order_id, held in holds.items():
            member, _, units = held.rpartition(":")
            if order_id not in open_orders:
                if order_id in ledger:
                    violations.append(f"product {product}: Redis still holds {units} for order {order_id}, "
                                      f"whose reservation is {ledger[order_id]['state']}")
                else:
                    open_by[member] += int(units)  # a hold the ledger has not recorded yet
        opened = sum(open_by.values())
        figures.units_sold += sold
        figures.units_left_mysql += left
        figures.units_open += opened
        if left < 0:
            violations.append(f"product {product}: MySQL stock is {left}")
        if product in start and sold + left != start[product]:
            violations.append(f"product {product}: sold {sold} + left {left} != starting stock {start[product]}")
        if product in start and sold > start[product]:
            violations.append(f"product {product}: OVERSOLD {sold} of {start[product]}")
        pieces = [r.hgetall(keys.stock(product, shard)) for shard in range(shards)]
        if not all(pieces):
            available_total = None  # not cached: the next read rebuilds it from MySQL
            continue
        for shard, piece in enumerate(pieces):
            if int(piece.get("available", 0)) < 0:
                violations.append(f"product {product}: Redis shard {shard} available is {piece['available']}")
        available = sum(int(piece.get("available", 0)) for piece in pieces)
        reserved = sum(int(piece.get("reserved", 0)) for piece in pieces)
        if available_total is not None:
            available_total += available
        if available < 0:
            violations.append(f"product {product}: Redis available is {available}")
        if available != left - opened:
            violations.append(f"product {product}: Redis available {available} != MySQL {left} - open {opened}")
        if reserved != opened:
            violations.append(f"product {product}: Redis reserved {reserved} != open units {opened}")
        buyers = set(sold_by) | set(open_by) | {str(e["member_id"]) for o, e in ledger.items()
                                                if any(int(x["product_id"]) == product for x in lines[o])}
        counted = {m: int(r.hget(keys.member_held(m), str(product)) or 0) for m in sorted(buyers)}
        counted = {m: u for m, u in counted.items() if u}
        expected = {m: sold_by.get(m, 0) + open_by.get(m, 0) for m in set(sold_by) | set(open_by)}
        expected = {m: u for m, u in expected.items() if u}
        limit = _rows("SELECT per_member_limit FROM products WHERE id = %s", [product])[0]["per_member_limit"]
        over = sorted(m for m, u in counted.items() if limit is not None and u > int(limit))
        if over:
            violations.append(f"product {product}: members {over[:5]} hold more than the limit {limit}")
        if counted != expected:
            wrong = sorted(m for m in set(counted) | set(expected) if counted.get(m) != expected.get(m))[:5]
            violations.append(f"product {product}: members' counted units differ from sold + held for {wrong}")
    figures.units_available_redis = available_total
    return Report(figures, violations)


def in_flight(products: list[int], accepted: list[str] | None = None) -> bool:
    """Whether anything is still moving: an accepted order not final, an OPEN reservation, a Redis hold."""
    orders = sorted(set(_orders_of(products)) | set(accepted or []))
    if orders:
        m = _marks(orders)
        if _rows(f"SELECT 1 FROM reservations WHERE order_id IN ({m}) AND state = 'OPEN' LIMIT 1", orders):
            return True
        done = {x["id"] for x in _rows(f"SELECT id FROM orders WHERE id IN ({m}) AND status IN "
                                       f"({_marks(list(FINAL))})", [*orders, *FINAL])}
        if set(accepted or []) - done:
            return True
    r = redis_client()
    return any(r.hlen(keys.stock_holds(p, shard)) for p in products for shard in range(shard_count(p)))


def wait_settled(products: list[int], accepted: list[str] | None = None, seconds: float = 90.0) -> float | None:
    """Poll until nothing is in flight (bounded); seconds it took, or None if it never settled."""
    started = time.monotonic()
    deadline = started + seconds
    while True:
        try:
            if not in_flight(products, accepted):
                return time.monotonic() - started
        except Exception:  # a store is still coming back
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.invariants", description=__doc__.split("\n")[0])
    parser.add_argument("--product", type=int, action="append", required=True, help="a product id (repeat)")
    parser.add_argument("--initial", action="append", default=[], help="PRODUCT=UNITS starting stock (repeat)")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the saga to settle first")
    args = parser.parse_args(argv)
    start = {int(p): int(u) for p, u in (item.split("=", 1) for item in args.initial)}
    if args.wait:
        wait_settled(args.product, seconds=args.wait)
    report = check(args.product, start=start)
    print(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
