"""Watching a drop: the figures the drop dashboard shows, live and afterwards.

Written on the way (cheap, best effort, one pipelined round trip each):
- POST /orders counts every attempt's answer per product per second (`record_attempt`): a hash per
  product and minute (`keys.drop_watch`, field `<epoch second>:<answer>`) and the product's totals
  (`keys.drop_watch_totals`); an accepted one also records the stock left after it (`<second>:stock`)
  and, when it took the last unit, the moment (`soldOutMs`).
- The saga counts its outcomes per product per second (`record_outcome`): CONFIRMED (with the
  reserve → CONFIRMED latency), FAILED, EXPIRED.

Read (`live_frame` every second by the SSE container's drop stream; `drop_report` by the API):
series per second from those hashes, the waiting room from goodsdrop.admission, and the counts that
must be exact from MySQL (orders by status, buyers served, payments declined, refunds, units given back).

Who may watch (`watchable`): a seller their own products, an operator every product; 404 for a
product that does not exist, 403 for another seller's.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from typing import Any

from goodsdrop import keys
from goodsdrop.admission import room_figures
from goodsdrop.callers import Caller
from goodsdrop.clients import fetch_one, mysql_cursor, redis_client
from goodsdrop.clock import from_db, iso, now_ms, to_ms
from goodsdrop.codes import OrderStatus, PaymentStatus, Role
from goodsdrop.errors import Forbidden, ValidationError
from goodsdrop.paging import page_body
from goodsdrop.products import Product, get_product
from goodsdrop.stock import read_stock
from goodsdrop.telemetry import ANSWERS

KEEP_SECONDS = 7 * 24 * 3600  # per-second figures: a week after the last write
TOTALS_KEEP_SECONDS = 90 * 24 * 3600
MAX_RANGE_SECONDS = 6 * 3600  # one report covers at most six hours of seconds
DEFAULT_LEAD_SECONDS = 60  # a report starts this long before the sales start (early clicks)
TICKET_SECONDS = 600  # a stream ticket lets its holder (re)connect for ten minutes
OUTCOMES = ("CONFIRMED", "FAILED", "EXPIRED")


# ---------------------------------------------------------------------------- writing


def _second_fields(at_ms: int) -> tuple[int, int]:
    second = at_ms // 1000
    return second, second // 60


def record_attempt(product_ids: list[int], answer: str, levels: dict[int, int] | None = None,
                   at_ms: int | None = None) -> None:
    """Count one order attempt's answer on each of its products (and the stock it left); never raises."""
    if not product_ids:
        return
    at = now_ms() if at_ms is None else at_ms
    second, minute = _second_fields(at)
    with contextlib.suppress(Exception):  # the dashboard must never fail an order
        pipe = redis_client().pipeline(transaction=False)
        for product_id in product_ids:
            bucket, totals = keys.drop_watch(product_id, minute), keys.drop_watch_totals(product_id)
            pipe.hincrby(bucket, f"{second}:{answer}", 1)
            pipe.hincrby(totals, answer, 1)
            level = (levels or {}).get(product_id)
            if level is not None:
                pipe.hset(bucket, f"{second}:stock", level)
                if level == 0:
                    pipe.hset(totals, "soldOutMs", at)
            pipe.expire(bucket, KEEP_SECONDS)
            pipe.expire(totals, TOTALS_KEEP_SECONDS)
        pipe.execute()


def record_outcome(product_ids: list[int], outcome: str, latency_ms: float | None = None,
                   at_ms: int | None = None) -> None:
    """Count a saga outcome (CONFIRMED / FAILED / EXPIRED) on each product of the order; never raises."""
    at = now_ms() if at_ms is None else at_ms
    second, minute = _second_fields(at)
    with contextlib.suppress(Exception):
        pipe = redis_client().pipeline(transaction=False)
        for product_id in product_ids:
            bucket = keys.drop_watch(product_id, minute)
            pipe.hincrby(bucket, f"{second}:{outcome}", 1)
            if latency_ms is not None:
                pipe.hincrby(bucket, f"{second}:latSum", int(latency_ms))
                pipe.hincrby(bucket, f"{second}:latN", 1)
            pipe.expire(bucket, KEEP_SECONDS)
        pipe.execute()


# ---------------------------------------------------------------------------- who may watch


def may_watch_all(caller: Caller) -> bool:
    return caller.role == Role.OPERATOR


def require_watcher(caller: Caller) -> Caller:
    """A seller or an operator (403 otherwise)."""
    if caller.role not in (Role.SELLER, Role.OPERATOR):
        raise Forbidden("only sellers and operators may watch drops")
    return caller


def watchable(caller: Caller, product_id: int) -> Product:
    """The product if the caller may watch it: 404 unknown, 403 another seller's."""
    require_watcher(caller)
    product = get_product(product_id)  # NotFound for a product that does not exist
    if not may_watch_all(caller) and str(product.seller_id) != caller.member_id:
        raise Forbidden("this product belongs to another seller")
    return product


def watched_products(caller: Caller, page: int, size: int) -> dict[str, Any]:
    """The products the caller may watch, newest first: a seller's own, every product for an operator."""
    require_watcher(caller)
    where, args = ("", []) if may_watch_all(caller) else ("WHERE p.seller_id = %s", [int(caller.member_id)])
    with mysql_cursor() as cur:
        cur.execute(f"SELECT COUNT(*) AS n FROM products p {where}", args)
        total = int(fetch_one(cur)["n"])
        cur.execute(f"SELECT p.id, p.seller_id, p.name, p.sales_start_at, s.count AS stock FROM products p "
                    f"LEFT JOIN stock s ON s.product_id = p.id {where} ORDER BY p.id DESC LIMIT %s OFFSET %s",
                    [*args, size, (page - 1) * size])
        rows = cur.fetchall()
    items = [{"productId": str(row["id"]), "sellerId": str(row["seller_id"]), "name": row["name"],
              "salesStartAt": iso(from_db(row["sales_start_at"])) if row["sales_start_at"] else None,
              "stock": int(row["stock"] or 0)} for row in rows]
    return page_body(items, page, size, total)


@dataclass(frozen=True)
class StreamTicket:
    """What lets a browser open the drop stream (EventSource sends no Authorization header)."""

    ticket: str
    product_id: int
    expires_in: int

    def to_json(self) -> dict[str, Any]:
        return {"ticket": self.ticket, "productId": str(self.product_id), "expiresIn": self.expires_in,
                "stream": f"/stream/products/{self.product_id}/drop?ticket={self.ticket}"}


def issue_stream_ticket(caller: Caller, product_id: int) -> StreamTicket:
    """A short-lived ticket for the product's live drop stream (the caller must be allowed to watch it)."""
    watchable(caller, product_id)
    ticket = secrets.token_urlsafe(24)
    redis_client().set(keys.watch_ticket(ticket), f"{product_id}:{caller.member_id}", ex=TICKET_SECONDS)
    return StreamTicket(ticket, product_id, TICKET_SECONDS)


def ticket_product(ticket: str | None) -> int | None:
    """The product a stream ticket was issued for, or None (unknown, expired or malformed)."""
    if not ticket or len(ticket) > 64 or not ticket.replace("-", "").replace("_", "").isalnum():
        return None
    value = redis_client().get(keys.watch_ticket(ticket))
    return int(value.split(":", 1)[0]) if value else None


# ---------------------------------------------------------------------------- reading


def _series(product_id: int, first_second: int, last_second: int) -> list[dict[str, Any]]:
    """Per second from `first_second` to `last_second` inclusive: answers, stock, outcomes, latency."""
    minutes = list(range(first_second // 60, last_second // 60 + 1))
    pipe = redis_client().pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(keys.drop_watch(product_id, minute))
    fields: dict[str, str] = {}
    for found in pipe.execute():
        fields.update(found)
    seconds: dict[int, dict[str, Any]] = {}
    for name, value in fields.items():
        second_text, _, what = name.partition(":")
        second = int(second_text)
        if first_second <= second <= last_second:
            seconds.setdefault(second, {})[what] = int(value)
    series = []
    for second in range(first_second, last_second + 1):
        got = seconds.get(second, {})
        answers = {answer: got.get(answer, 0) for answer in ANSWERS}
        series.append({"t": second, "answers": answers, "attempts": sum(answers.values()),
                       "stock": got.get("stock"), **{o.lower(): got.get(o, 0) for o in OUTCOMES},
                       "latencyMs": round(got["latSum"] / got["latN"], 1) if got.get("latN") else None})
    return series


def _totals(product_id: int) -> tuple[dict[str, int], int | None]:
    raw = redis_client().hgetall(keys.drop_watch_totals(product_id))
    sold_out = raw.pop("soldOutMs", None)
    return {answer: int(raw.get(answer, 0)) for answer in ANSWERS}, int(sold_out) if sold_out else None


def live_frame(product_id: int, first_second: int, last_second: int) -> dict[str, Any]:
    """What the drop stream sends: the seconds since the last frame, the stock and waiting room now, totals."""
    answers, sold_out_ms = _totals(product_id)
    level = read_stock(product_id)
    return {"productId": str(product_id), "at": now_ms(), "stock": level.stock, "status": level.status,
            "waitingRoom": room_figures(product_id), "totals": answers, "soldOutMs": sold_out_ms,
            "series": _series(product_id, first_second, last_second)}


def parse_range(product: Product, start: str | None, end: str | None) -> tuple[int, int]:
    """The report's range in epoch seconds: `from`/`to` (epoch ms) or from a minute before the sales
    start (or the product's creation) to now; 400 for a malformed, reversed or too long range."""
    def parse(name: str, raw: str | None) -> int | None:
        if raw is None or raw == "":
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
            raise ValidationError(f"{name} must be epoch milliseconds", details={"fields": {name: "malformed"}})
        return int(raw)

    now = now_ms()
    begin, finish = parse("from", start), parse("to", end)
    opened = product.sales_start_at or product.created_at
    if finish is None:
        finish = now
    if begin is None:
        begin = max(min(to_ms(opened) - DEFAULT_LEAD_SECONDS * 1000, finish), finish - MAX_RANGE_SECONDS * 1000)
    if begin > finish:
        raise ValidationError("from must not be after to", details={"fields": {"from": "after to"}})
    if finish - begin > MAX_RANGE_SECONDS * 1000:
        raise ValidationError(f"a report covers at most {MAX_RANGE_SECONDS // 3600} hours",
                              details={"fields": {"to": "range too long"}})
    return begin // 1000, finish // 1000


def _saga_counts(product_id: int) -> dict[str, Any]:
    """The exact counts, from MySQL: orders by status, buyers served, payments declined, refunds, latency."""
    with mysql_cursor() as cur:
        cur.execute("SELECT o.status, COUNT(*) AS n FROM reservation_lines rl JOIN orders o ON o.id = rl.order_id "
                    "WHERE rl.product_id = %s GROUP BY o.status", (product_id,))
        orders = {str(row["status"]): int(row["n"]) for row in cur.fetchall()}
        cur.execute("SELECT COUNT(*) AS n FROM reservation_lines WHERE product_id = %s", (product_id,))
        reserved = int(fetch_one(cur)["n"])
        cur.execute("SELECT COUNT(DISTINCT o.member_id) AS buyers, COALESCE(SUM(rl.quantity), 0) AS units "
                    "FROM reservation_lines rl JOIN orders o ON o.id = rl.order_id "
                    "WHERE rl.product_id = %s AND o.status = %s", (product_id, OrderStatus.CONFIRMED))
        served = fetch_one(cur)
        cur.execute("SELECT COUNT(*) AS n FROM reservation_lines rl JOIN payments pay ON pay.order_id = rl.order_id "
                    "WHERE rl.product_id = %s AND pay.status = %s", (product_id, PaymentStatus.DECLINED))
        declined = int(fetch_one(cur)["n"])
        cur.execute("SELECT COUNT(*) AS n, COALESCE(SUM(rf.amount), 0) AS amount FROM reservation_lines rl "
                    "JOIN refunds rf ON rf.order_id = rl.order_id AND (rf.product_id IS NULL OR rf.product_id = "
                    "rl.product_id) WHERE rl.product_id = %s", (product_id,))
        refunds = fetch_one(cur)
        cur.execute("SELECT COALESCE(SUM(rl.quantity), 0) AS units FROM reservation_lines rl JOIN reservations r "
                    "ON r.order_id = rl.order_id WHERE rl.product_id = %s AND r.state = 'RELEASED'", (product_id,))
        released = int(fetch_one(cur)["units"])
        cur.execute("SELECT TIMESTAMPDIFF(MICROSECOND, r.reserved_at, o.confirmed_at) / 1000 AS ms "
                    "FROM reservation_lines rl JOIN reservations r ON r.order_id = rl.order_id "
                    "JOIN orders o ON o.id = rl.order_id WHERE rl.product_id = %s AND o.status = %s ORDER BY ms",
                    (product_id, OrderStatus.CONFIRMED))
        latencies = [float(row["ms"]) for row in cur.fetchall()]

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 1) if latencies else None

    return {"orders": {status: orders.get(status, 0) for status in OrderStatus}, "reserved": reserved,
            "confirmed": orders.get(OrderStatus.CONFIRMED, 0), "buyersServed": int(served["buyers"]),
            "unitsSold": int(served["units"]), "paymentsDeclined": declined,
            "refunds": {"count": int(refunds["n"]), "amount": int(refunds["amount"])}, "unitsGivenBack": released,
            "reserveToConfirmedMs": {"p50": pct(50), "p90": pct(90), "p99": pct(99),
                                     "max": round(latencies[-1], 1) if latencies else None}}


def drop_report(caller: Caller, product_id: int, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """The drop's report: its per-second series over the range and the figures of the whole drop."""
    product = watchable(caller, product_id)
    first, last = parse_range(product, start, end)
    series = _series(product_id, first, last)
    answers, sold_out_ms = _totals(product_id)
    opened_ms = to_ms(product.sales_start_at) if product.sales_start_at else None
    level = read_stock(product_id)
    refusals = {answer: n for answer, n in answers.items() if answer != "ACCEPTED" and n}
    return {
        "productId": str(product_id), "name": product.name, "sellerId": str(product.seller_id),
        "salesStartAt": iso(product.sales_start_at) if product.sales_start_at else None,
        "from": first * 1000, "to": last * 1000 + 999, "stock": level.stock, "status": level.status,
        "answers": answers, "attempts": sum(answers.values()), "refusals": refusals,
        "peakAttemptsPerSecond": max((s["attempts"] for s in series), default=0),
        "soldOutAt": sold_out_ms,
        "timeToSellOutSeconds": (round((sold_out_ms - opened_ms) / 1000, 3)
                                 if sold_out_ms is not None and opened_ms is not None and level.stock == 0
                                 else None),
        "waitingRoom": room_figures(product_id), **_saga_counts(product_id), "series": series,
    }
