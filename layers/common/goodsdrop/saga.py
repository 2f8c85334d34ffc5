"""The order saga's steps: choreography over Kafka, one consumer per step, each event saying what happened.

    OrderRequested ─ProcessPayment─▶ PaymentSucceeded ─PersistOrder─▶ OrderPlaced ─ConfirmOrder─▶ OrderConfirmed
          │                        └▶ PaymentFailed ─┐      └▶ OrderPersistenceFailed ─┐   └▶ StockPersistenceFailed ─┐
          │                                           └──────────── CompensateOrder ◀──┴──────────────────────────┘
          │                                                          (refund if paid, release, FAILED) ─▶ OrderFailed
          └─ not confirmed in time ─ ExpireReservations (schedule): refund if paid, release, EXPIRED ─▶ OrderExpired

Rules every step follows:
- Idempotent: a `processed_events` row (consumer, event id) is claimed in the same MySQL
  transaction as the step's effect; a redelivery finds it and only publishes the step's outcome
  again, with the same deterministic event id, so the next consumer drops the repeat too.
- Serialised per order: a step that ends a reservation or moves money locks the order's ledger row
  first (goodsdrop.ledger), so payment, persistence, compensation, expiry and cancellation never
  interleave for one order.
- Stock changes in Redis happen under the product's MySQL row lock, before the commit, and are
  guarded by per-order markers (goodsdrop.reservations.settle/restock); if the transaction then
  fails, the markers and the cached stock are dropped so the next read rebuilds from MySQL.
- Money moves through the gateway's idempotency keys (the order id; one refund id per reason), so
  a retried step never charges or refunds twice.
- A permanent failure (`StepFailed`, bad data) compensates; a transient one (MySQL or gateway
  unavailable) raises, so the event-source mapping retries it and, after its retries, dead-letters
  it - the reservation expiry then refunds and releases, so no unit stays held forever.
"""

from __future__ import annotations

from typing import Any

import pymysql
from aws_lambda_powertools import Logger
from pymysql.cursors import DictCursor

from goodsdrop import clock, faults, ledger, payment_gateway, topics
from goodsdrop.clients import kafka_producer, mysql_cursor, mysql_transaction
from goodsdrop.codes import LedgerState, OrderStatus, PaymentStatus, RecordStatus, SettleCode, SettleTarget
from goodsdrop.events import Envelope
from goodsdrop.faults import StepFailed
from goodsdrop.ids import event_id_for
from goodsdrop.ledger import LedgerEntry
from goodsdrop.products import get_product, sale_status, shard_count
from goodsdrop.reservations import (
    Line,
    Settled,
    close_record,
    due_reservations,
    forget_expiry,
    mark_persisted,
    read_record,
    rebalance,
    restock,
    settle,
    unrestock,
    unsettle,
)
from goodsdrop.stock import StockLevel

logger = Logger(child=True)

PAYMENTS = "payments"
ORDER_PERSISTENCE = "order-persistence"
STOCK_PERSISTENCE = "stock-persistence"
COMPENSATION = "compensation"
RETURNS = "returns"

PERMANENT_DB_ERRORS = (pymysql.err.IntegrityError, pymysql.err.DataError, pymysql.err.ProgrammingError)


_unacknowledged: list[Any] = []


def _send(name: str, event: Envelope, key: str) -> None:
    """Hand an outcome to the producer without waiting; `acknowledge_outcomes` waits for the whole batch."""
    _unacknowledged.append(kafka_producer().send(topics.topic(name), value=event.to_bytes(), key=key.encode()))


def acknowledge_outcomes(timeout: float = 10.0) -> None:
    """Wait until the broker acknowledged every outcome published since the last call; raise if one failed.

    Consumers call it at the end of each batch, before the mapping commits the batch's offsets:
    an outcome that did not reach the broker fails the batch, which is then delivered again (and
    the idempotent steps publish their outcomes again). One wait per batch instead of per record.
    """
    pending = list(_unacknowledged)
    _unacknowledged.clear()
    if not pending:
        return
    kafka_producer().flush(timeout)
    for future in pending:
        future.get(timeout=0)


def _emit(name: str, event_type: str, order_id: str, payload: dict[str, Any], *id_parts: object) -> None:
    """Publish one saga outcome, with its deterministic event id (acknowledged by `acknowledge_outcomes`)."""
    event = Envelope(type=event_type, event_id=event_id_for(order_id, event_type, *id_parts), correlation_id=order_id,
                     payload={"orderId": order_id, **payload})
    _send(name, event, order_id)


def _stock_changed(settled: list[Settled]) -> None:
    """StockChanged for products whose live stock moved (so live stock streams stay right)."""
    for s in settled:
        if s.code == SettleCode.APPLIED and s.available >= 0:
            product = get_product(s.product_id)
            level = StockLevel(s.product_id, s.available, sale_status(s.available, product.sales_start_at), s.version)
            _send(topics.STOCK_CHANGED, Envelope(type="StockChanged", payload=level.to_json() | {"version": s.version}),
                  str(s.product_id))


def _payment(cur: DictCursor, order_id: str) -> dict[str, Any] | None:
    cur.execute("SELECT id, amount, status FROM payments WHERE order_id = %s FOR UPDATE", (order_id,))
    return cur.fetchone()


def _lines(payload: dict[str, Any]) -> list[Line]:
    return [Line.from_json(line) for line in payload["lines"]]


# ---------------------------------------------------------------------------- 1. payment


def process_payment(event: Envelope) -> str:
    """OrderRequested → record the reservation in the ledger, charge once, PaymentSucceeded / PaymentFailed.

    One transaction holds the order's ledger row locked across the charge, so an expiry or a
    compensation of the same order waits for it. `GatewayUnavailable` propagates: the transaction
    rolls back (the ledger row too) and the mapping retries the event.
    """
    p = event.payload
    order_id, member, lines, total = p["orderId"], str(p["memberId"]), _lines(p), int(p["total"])
    record = read_record(member, order_id)
    aborted = record is not None and record.status == RecordStatus.ABORTED
    charged_now = False
    with mysql_transaction() as cur:
        ledger.record(cur, order_id, member, lines, total, int(p["reservedAt"]), int(p["expiresAt"]),
                      state=LedgerState.RELEASED if aborted else LedgerState.OPEN,
                      reason="PUBLISH_FAILED" if aborted else None)
        entry = ledger.lock(cur, order_id)
        assert entry is not None
        payment = _payment(cur, order_id)
        if payment is None and (entry.state != LedgerState.OPEN or entry.expires_ms <= clock.now_ms()):
            ledger.first_delivery(cur, PAYMENTS, event.event_id)
            return "not charged: the reservation ended or expired (the expiry job releases it)"
        if payment is None:
            charge = payment_gateway.charge(order_id, str(p["paymentToken"]), total)
            status = PaymentStatus.SUCCEEDED if charge.approved else PaymentStatus.DECLINED
            cur.execute("INSERT INTO payments (id, order_id, member_id, amount, status) "
                        "VALUES (%s, %s, %s, %s, %s)", (charge.payment_id, order_id, member, total, status))
            ledger.first_delivery(cur, PAYMENTS, event.event_id)
            payment, charged_now = {"id": charge.payment_id, "amount": total, "status": status}, True
    if charged_now:
        faults.crash_if_injected(PAYMENTS, [line.product_id for line in lines], order_id)
    if payment["status"] == PaymentStatus.SUCCEEDED:
        _emit(topics.PAYMENT_SUCCEEDED, "PaymentSucceeded", order_id,
              {"memberId": member, "paymentId": payment["id"], "amount": int(payment["amount"])})
        return "charged"
    if payment["status"] == PaymentStatus.DECLINED:
        _emit(topics.ORDER_FAILURES, "PaymentFailed", order_id, {"memberId": member, "reason": "PAYMENT_DECLINED"})
        return "declined"
    return "refunded: the reservation ended"


def _refund_order(cur: DictCursor, order_id: str, amount: int, reason: str) -> None:
    """Refund the whole charge of an order (idempotent at the gateway and in MySQL)."""
    refund_id = f"{order_id}:order"
    payment_gateway.refund(order_id, refund_id, amount)
    cur.execute("INSERT IGNORE INTO refunds (id, order_id, product_id, amount, reason) VALUES (%s, %s, NULL, %s, %s)",
                (refund_id, order_id, amount, reason))
    cur.execute("UPDATE payments SET status = 'REFUNDED' WHERE order_id = %s", (order_id,))


# ---------------------------------------------------------------------------- 2. the order in MySQL


def persist_order(event: Envelope) -> str:
    """PaymentSucceeded → the order and its lines in MySQL, in one transaction → OrderPlaced."""
    p = event.payload
    order_id, member = p["orderId"], str(p["memberId"])
    failure = ""
    product_ids: list[int] = []
    total = 0
    with mysql_transaction() as cur:
        first = ledger.first_delivery(cur, ORDER_PERSISTENCE, event.event_id)
        if not first:
            cur.execute("SELECT total_price FROM orders WHERE id = %s AND status IN ('PENDING', 'CONFIRMED', "
                        "'CANCELLED')", (order_id,))
            row = cur.fetchone()
            failure, total = ("", int(row["total_price"])) if row else ("ORDER_PERSISTENCE_FAILED", 0)
            cur.execute("SELECT product_id FROM reservation_lines WHERE order_id = %s ORDER BY product_id",
                        (order_id,))
            product_ids = [int(r["product_id"]) for r in cur.fetchall()]
        else:
            entry = ledger.lock(cur, order_id)
            if entry is None or entry.state != LedgerState.OPEN:
                failure = "RESERVATION_ENDED"
            else:
                product_ids, total = [ln.product_id for ln in entry.lines], entry.total
                cur.execute("SAVEPOINT persist_order")
                try:
                    faults.fail_if_injected(faults.ORDER_PERSISTENCE, product_ids, "ORDER_PERSISTENCE_FAILED")
                    _insert_order(cur, entry, OrderStatus.PENDING, p.get("paymentId"))
                    cur.executemany("INSERT INTO order_products (order_id, product_id, count, price, delivery_status) "
                                    "VALUES (%s, %s, %s, %s, 'PREPARING')",
                                    [(order_id, ln.product_id, ln.quantity, ln.price) for ln in entry.lines])
                except (StepFailed, *PERMANENT_DB_ERRORS) as err:
                    cur.execute("ROLLBACK TO SAVEPOINT persist_order")
                    logger.warning("order persistence failed", extra={"order_id": order_id, "error": str(err)})
                    failure = "ORDER_PERSISTENCE_FAILED"
    if failure:
        _emit(topics.ORDER_FAILURES, "OrderPersistenceFailed", order_id, {"memberId": member, "reason": failure})
        return failure
    mark_persisted(member, order_id)
    faults.crash_if_injected(ORDER_PERSISTENCE, product_ids, order_id)
    _emit(topics.ORDER_PLACED, "OrderPlaced", order_id, {"memberId": member, "total": total,
                                                         "lines": [{"productId": str(i)} for i in product_ids]})
    return "placed"


def _insert_order(cur: DictCursor, entry: LedgerEntry, status: OrderStatus, payment_id: str | None,
                  reason: str | None = None) -> None:
    cur.execute("INSERT INTO orders (id, member_id, payment_id, status, failure_reason, total_price, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (entry.order_id, entry.member_id, payment_id, status, reason, entry.total,
                 clock.ms_to_db(entry.reserved_ms)))


# ---------------------------------------------------------------------------- 3. the stock in MySQL


def confirm_order(event: Envelope) -> str:
    """OrderPlaced → sold units persisted to MySQL stock, the reservation consumed, CONFIRMED → OrderConfirmed."""
    p = event.payload
    order_id, member = p["orderId"], str(p["memberId"])
    faults.unavailable_if_injected(STOCK_PERSISTENCE, [int(ln["productId"]) for ln in p.get("lines", [])])
    failure = ""
    applied: list[Line] = []
    first = True
    try:
        with mysql_transaction() as cur:
            first = ledger.first_delivery(cur, STOCK_PERSISTENCE, event.event_id)
            if not first:
                cur.execute("SELECT 1 FROM orders WHERE id = %s AND status IN ('CONFIRMED', 'CANCELLED')", (order_id,))
                failure = "" if cur.fetchone() else "STOCK_PERSISTENCE_FAILED"
            else:
                entry = ledger.lock(cur, order_id)
                failure = ("RESERVATION_ENDED" if entry is None or entry.state != LedgerState.OPEN
                           else _consume(cur, entry, applied))
    except BaseException:
        unsettle(order_id, applied, member)
        raise
    if not failure:
        close_record(member, order_id, RecordStatus.CONFIRMED)
        if first:
            faults.crash_if_injected(STOCK_PERSISTENCE, [ln.product_id for ln in applied], order_id)
        _emit(topics.ORDER_CONFIRMED, "OrderConfirmed", order_id, {"memberId": member, "total": int(p.get("total", 0))})
        return "confirmed"
    _emit(topics.ORDER_FAILURES, "StockPersistenceFailed", order_id, {"memberId": member, "reason": failure})
    return failure


def _consume(cur: DictCursor, entry: LedgerEntry, applied: list[Line]) -> str:
    """Inside the step's transaction: persist the sale; '' on success, else the failure reason."""
    cur.execute("SAVEPOINT confirm_order")
    try:
        faults.fail_if_injected(faults.STOCK_PERSISTENCE, [ln.product_id for ln in entry.lines],
                                "STOCK_PERSISTENCE_FAILED")
        ledger.lock_stock_rows(cur, [ln.product_id for ln in entry.lines])
        for line in entry.lines:
            cur.execute("UPDATE stock SET count = count - %s WHERE product_id = %s AND count >= %s",
                        (line.quantity, line.product_id, line.quantity))
            if cur.rowcount != 1:
                raise StepFailed("STOCK_PERSISTENCE_FAILED")
        ledger.set_state(cur, entry.order_id, LedgerState.CONSUMED)
        cur.execute("UPDATE orders SET status = 'CONFIRMED', confirmed_at = UTC_TIMESTAMP(3) WHERE id = %s",
                    (entry.order_id,))
        for line in entry.lines:
            done = settle(entry.order_id, entry.member_id, line, SettleTarget.SOLD)
            if done.code == SettleCode.REFUSED:
                raise StepFailed("RESERVATION_RELEASED")
            if done.code in (SettleCode.APPLIED, SettleCode.NOT_CACHED):
                applied.append(line)
    except (StepFailed, *PERMANENT_DB_ERRORS) as err:
        cur.execute("ROLLBACK TO SAVEPOINT confirm_order")
        unsettle(entry.order_id, applied, entry.member_id)
        applied.clear()
        logger.warning("stock persistence failed", extra={"order_id": entry.order_id, "error": str(err)})
        return err.reason if isinstance(err, StepFailed) else "STOCK_PERSISTENCE_FAILED"
    return ""


# ---------------------------------------------------------------------------- compensation


def compensate_order(event: Envelope) -> str:
    """A failure after the reservation → refund if paid, release the units, order FAILED with the reason."""
    p = event.payload
    order_id, member, reason = p["orderId"], str(p["memberId"]), str(p.get("reason") or "FAILED")
    released: list[Line] = []
    settled: list[Settled] = []
    marked_failed = False
    try:
        with mysql_transaction() as cur:
            first = ledger.first_delivery(cur, COMPENSATION, event.event_id)
            if not first:
                cur.execute("SELECT status FROM orders WHERE id = %s", (order_id,))
                row = cur.fetchone()
                marked_failed = row is not None and row["status"] == OrderStatus.FAILED
            else:
                entry = ledger.lock(cur, order_id)
                if entry is None:
                    logger.warning("compensation for an order the ledger does not have", extra={"order_id": order_id})
                    return "unknown order"
                payment = _payment(cur, order_id)
                if payment is not None and payment["status"] == PaymentStatus.SUCCEEDED:
                    _refund_order(cur, order_id, int(payment["amount"]), reason)
                if entry.state == LedgerState.OPEN:
                    ledger.lock_stock_rows(cur, [ln.product_id for ln in entry.lines])
                    ledger.set_state(cur, order_id, LedgerState.RELEASED, reason)
                    for line in entry.lines:
                        settled.append(settle(order_id, member, line, SettleTarget.RELEASED))
                        released.append(line)
                marked_failed = _end_order(cur, entry, OrderStatus.FAILED, reason, payment)
    except BaseException:
        unsettle(order_id, released, member)
        raise
    if first:
        close_record(member, order_id, RecordStatus.FAILED, reason)
        _stock_changed(settled)
    if marked_failed:
        _emit(topics.ORDER_CLOSED, "OrderFailed", order_id, {"memberId": member, "reason": reason})
    return f"failed: {reason}" if marked_failed else "nothing to compensate"


def _end_order(cur: DictCursor, entry: LedgerEntry, status: OrderStatus, reason: str,
               payment: dict[str, Any] | None) -> bool:
    """Give the order its final unsuccessful status (insert it if MySQL lacks it); True when set now."""
    cur.execute("SELECT status FROM orders WHERE id = %s FOR UPDATE", (entry.order_id,))
    row = cur.fetchone()
    if row is None:
        _insert_order(cur, entry, status, payment["id"] if payment else None, reason)
        return True
    if row["status"] == OrderStatus.PENDING:
        cur.execute("UPDATE orders SET status = %s, failure_reason = %s WHERE id = %s", (status, reason,
                                                                                          entry.order_id))
        return True
    return False


# ---------------------------------------------------------------------------- expiry


def expire_due_reservations(now_ms: int | None = None, limit: int = 200) -> int:
    """Release every reservation not confirmed in time (order EXPIRED); returns how many expired now.

    Candidates come from Redis (reservations the ledger may not have yet) and from the ledger
    (reservations Redis may have lost).
    """
    now = clock.now_ms() if now_ms is None else now_ms
    candidates = dict.fromkeys(due_reservations(now, limit))
    with mysql_cursor() as cur:
        cur.execute("SELECT member_id, order_id FROM reservations WHERE state = 'OPEN' AND expires_at <= %s "
                    "ORDER BY expires_at LIMIT %s", (clock.ms_to_db(now), limit))
        for row in cur.fetchall():
            candidates[(str(row["member_id"]), row["order_id"])] = None
    expired = 0
    for member, order_id in candidates:
        try:
            expired += expire_reservation(member, order_id, now)
        except Exception:
            logger.exception("expiring a reservation failed", extra={"order_id": order_id})
    acknowledge_outcomes()
    return expired


def expire_reservation(member: str, order_id: str, now_ms: int) -> int:
    """Expire one reservation if it is still open and due; 1 when it expired now."""
    record = read_record(member, order_id)
    released: list[Line] = []
    settled: list[Settled] = []
    try:
        with mysql_transaction() as cur:
            entry = ledger.lock(cur, order_id)
            if entry is None:
                if record is None or record.status == RecordStatus.REFUSED:
                    # a claim that was refused or never made (the expiry entry is added beside the claim)
                    forget_expiry(member, order_id)
                    return 0
                aborted = record.status == RecordStatus.ABORTED
                # Never recorded by the payment step (its event is late or dead-lettered): record it now.
                ledger.record(cur, order_id, member, record.lines, record.total, record.created_ms, record.expires_ms)
                entry = ledger.lock(cur, order_id)
                assert entry is not None
                if aborted:
                    ledger.lock_stock_rows(cur, [ln.product_id for ln in entry.lines])
                    ledger.set_state(cur, order_id, LedgerState.RELEASED, "PUBLISH_FAILED")
                    for line in entry.lines:
                        settle(order_id, member, line, SettleTarget.RELEASED)
                    forget_expiry(member, order_id)
                    return 0
            if entry.state != LedgerState.OPEN:
                forget_expiry(member, order_id)
                return 0
            if entry.expires_ms > now_ms:
                return 0
            payment = _payment(cur, order_id)
            if payment is not None and payment["status"] == PaymentStatus.SUCCEEDED:
                _refund_order(cur, order_id, int(payment["amount"]), "EXPIRED")
            ledger.lock_stock_rows(cur, [ln.product_id for ln in entry.lines])
            ledger.set_state(cur, order_id, LedgerState.RELEASED, "EXPIRED")
            for line in entry.lines:
                settled.append(settle(order_id, member, line, SettleTarget.RELEASED))
                released.append(line)
            _end_order(cur, entry, OrderStatus.EXPIRED, "EXPIRED", payment)
    except BaseException:
        unsettle(order_id, released, member)
        raise
    close_record(member, order_id, RecordStatus.EXPIRED, "EXPIRED")
    _stock_changed(settled)
    for line in released:  # released units went back to the shards they came from: even them out
        rebalance(line.product_id, shard_count(line.product_id))
    _emit(topics.ORDER_CLOSED, "OrderExpired", order_id, {"memberId": member})
    return 1


# ---------------------------------------------------------------------------- cancel and return


def refund_and_restock(event: Envelope) -> str:
    """OrderCancelled / OrderLineCancelled / OrderLineReturned → refund the lines, units back to stock."""
    p = event.payload
    order_id, member, kind = p["orderId"], str(p["memberId"]), event.type
    restocked: list[Line] = []
    settled: list[Settled] = []
    try:
        with mysql_transaction() as cur:
            if not ledger.first_delivery(cur, RETURNS, event.event_id):
                return "repeat"
            wanted = {ln.product_id: ln for ln in _lines(p)}
            marks = ", ".join(["%s"] * len(wanted))
            cur.execute(f"SELECT product_id, count, price FROM order_products WHERE order_id = %s AND product_id IN "
                        f"({marks}) AND delivery_status IN ('CANCELLED', 'RETURNED') AND restocked_at IS NULL "
                        "ORDER BY product_id FOR UPDATE", [order_id, *wanted])
            lines = [Line(int(r["product_id"]), int(r["count"]), int(r["price"])) for r in cur.fetchall()]
            if not lines:
                return "nothing to give back"  # e.g. the cancelling transaction never committed
            for line in lines:
                refund_id = f"{order_id}:{line.product_id}"
                payment_gateway.refund(order_id, refund_id, line.quantity * line.price)
                cur.execute("INSERT IGNORE INTO refunds (id, order_id, product_id, amount, reason) "
                            "VALUES (%s, %s, %s, %s, %s)", (refund_id, order_id, line.product_id,
                                                             line.quantity * line.price, kind))
            ledger.lock_stock_rows(cur, [ln.product_id for ln in lines])
            for line in lines:
                cur.execute("UPDATE stock SET count = count + %s WHERE product_id = %s", (line.quantity,
                                                                                         line.product_id))
                cur.execute("UPDATE order_products SET restocked_at = UTC_TIMESTAMP(3) WHERE order_id = %s "
                            "AND product_id = %s", (order_id, line.product_id))
                settled.append(restock(order_id, member, line))
                restocked.append(line)
    except BaseException:
        for line in restocked:
            unrestock(order_id, line, member)
        raise
    _stock_changed(settled)
    return f"restocked {len(restocked)} line(s)"
