"""The order saga's steps: choreography over Kafka, one consumer per step, each event saying what happened.

    OrderRequested ─ProcessPayment─▶ PaymentSucceeded ─PersistOrder─▶ OrderPlaced ─ConfirmOrder─▶ OrderConfirmed
          │                        └▶ PaymentFailed ─┐      └▶ OrderPersistenceFailed ─┐   └▶ StockPersistenceFailed ─┐
          │                                           └──────────── CompensateOrder ◀──┴──────────────────────────┘
          │                                                          (refund if paid, release, FAILED) ─▶ OrderFailed
          └─ not confirmed in time ─ ExpireReservations (schedule): refund if paid, release, EXPIRED ─▶ OrderExpired

Rules every step follows:
- Outcomes are committed with the change they announce: each step writes its outcome event to the
  outbox table in the transaction of its effect (goodsdrop.outbox), so an event never describes a
  change that rolled back and a committed change always gets its event (published right after the
  commit, or by the relay's sweep if the process died in between).
- Idempotent: a `processed_events` row (consumer, event id) is claimed in the same MySQL
  transaction as the step's effect; a redelivery finds it, changes nothing and relays the order's
  unsent outbox rows (the process that committed them may have died). Outcomes keep deterministic
  event ids, so should one be published twice the next consumer drops the repeat too.
- Serialised per order: a step that ends a reservation or moves money locks the order's ledger row
  first (goodsdrop.ledger), so payment, persistence, compensation, expiry and cancellation never
  interleave for one order.
- Stock changes in Redis happen under the product's MySQL row lock, before the commit, and are
  guarded by per-order markers (goodsdrop.reservations.settle/restock); if the transaction then
  fails, the markers and the cached stock are dropped so the next read rebuilds from MySQL.
- Money moves through the gateway's idempotency keys (the order id; one refund id per reason), so
  a retried step never charges or refunds twice.
- A business failure (`StepFailed`, data MySQL rejects while persisting) compensates. A record that
  can never be processed (bad schema, an order, product or member that does not exist: `NotFound`
  with a goodsdrop.failures reason) raises before anything commits, and the consumer runner
  dead-letters it at once (goodsdrop.consumers); a transient fault (MySQL or gateway unavailable)
  raises, so the event-source mapping retries it and, after its retries, dead-letters it - the
  reservation expiry then refunds and releases, so no unit stays held forever.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pymysql
from aws_lambda_powertools import Logger
from pymysql.cursors import DictCursor

from goodsdrop import clock, failures, keys, ledger, outbox, payment_gateway, topics
from goodsdrop.cart import end_checkout
from goodsdrop.checkpoints import Moment, reached
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.codes import CheckoutEnd, LedgerState, OrderStatus, PaymentStatus, RecordStatus, SettleCode, SettleTarget
from goodsdrop.consumers import Step
from goodsdrop.drop_watch import record_outcome
from goodsdrop.errors import NotFound, StepFailed
from goodsdrop.events import Envelope, publish
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
from goodsdrop.telemetry import Metric, count

logger = Logger(child=True)

PAYMENTS = "payments"
ORDER_PERSISTENCE = "order-persistence"
STOCK_PERSISTENCE = "stock-persistence"
COMPENSATION = "compensation"
RETURNS = "returns"
PUBLISH_FAILED = "PUBLISH_FAILED"  # the ledger's reason for an order whose OrderRequested may never have landed

PERMANENT_DB_ERRORS = (pymysql.err.IntegrityError, pymysql.err.DataError, pymysql.err.ProgrammingError)


def _emit(tx: outbox.Transaction, name: str, event_type: str, order_id: str, payload: dict[str, Any]) -> None:
    """Write one saga outcome, with its deterministic event id, in the step's transaction (the outbox)."""
    event = Envelope(type=event_type, event_id=event_id_for(order_id, event_type), correlation_id=order_id,
                     payload={"orderId": order_id, **payload})
    tx.add(name, event, order_id)


def _repeat(order_id: str) -> str:
    """A step got an event it processed before: relay the order's unsent outcomes (their process may have died)."""
    relayed = outbox.relay_unsent(order_id)
    return f"repeat ({relayed} outcome(s) relayed)" if relayed else "repeat"


def _unknown_order(order_id: str) -> NotFound:
    return NotFound(f"order {order_id} is not in the reservation ledger", code=failures.UNKNOWN_ORDER)


def _stock_changed(settled: list[Settled]) -> None:
    """StockChanged for products whose live stock moved (so live stock streams stay right)."""
    for s in settled:
        if s.code != SettleCode.APPLIED or s.available < 0:
            continue
        # Live stock is a notification of Redis state, not of a commit: the next change or read
        # corrects a lost one, so it goes straight to Kafka, after the commit, best effort.
        with suppress(Exception):
            product = get_product(s.product_id)
            level = StockLevel(s.product_id, s.available, sale_status(s.available, product.sales_start_at), s.version)
            publish(topics.STOCK_CHANGED, Envelope(type="StockChanged", payload=level.to_json()
                                                   | {"version": s.version}), str(s.product_id), wait=False)


def _payment(cur: DictCursor, order_id: str, *, lock: bool = True) -> dict[str, Any] | None:
    cur.execute(f"SELECT id, amount, status FROM payments WHERE order_id = %s{' FOR UPDATE' if lock else ''}",
                (order_id,))
    return cur.fetchone()


def _lines(payload: dict[str, Any]) -> list[Line]:
    return [Line.from_json(line) for line in payload["lines"]]


# ---------------------------------------------------------------------------- 1. payment


def end_unpublished(order_id: str, member: str, lines: list[Line], total: int, reserved_ms: int,
                    expires_ms: int) -> bool:
    """End an order whose OrderRequested may not have reached Kafka; False when the saga has it already.

    A publish that failed or timed out may still land, and the payment step may have read it
    already. The ledger row decides which of the two goes first: this writes it RELEASED
    (PUBLISH_FAILED) and gives the units back while holding it, unless the payment step recorded the
    order first - then the order is under way, nothing is released and the answer is False. A
    delivery after this finds the row RELEASED and charges nothing.
    """
    with mysql_transaction() as cur:
        return _release_unrecorded(cur, order_id, member, lines, total, reserved_ms, expires_ms)


def _release_unrecorded(cur: DictCursor, order_id: str, member: str, lines: list[Line], total: int,
                        reserved_ms: int, expires_ms: int) -> bool:
    """Write the order's ledger row RELEASED (PUBLISH_FAILED) and give its units back, in `cur`'s
    transaction; False (nothing done) when the payment step recorded the order first."""
    if not ledger.record(cur, order_id, member, lines, total, reserved_ms, expires_ms,
                         state=LedgerState.RELEASED, reason=PUBLISH_FAILED):
        return False
    ledger.lock_stock_rows(cur, [ln.product_id for ln in lines])
    for line in lines:  # nothing was sold: the saga never had the order
        settle(order_id, member, line, SettleTarget.RELEASED, undo_sale=True)
    return True


def process_payment(event: Envelope) -> str:
    """OrderRequested → record the reservation in the ledger, charge once, PaymentSucceeded / PaymentFailed.

    One transaction holds the order's ledger row locked across the charge, so an expiry or a
    compensation of the same order waits for it; the outcome is written to the outbox in it.
    `GatewayUnavailable` propagates: the transaction rolls back (the ledger row too) and the mapping
    retries the event. An order nobody reserved is refused before anything is written.
    """
    p = event.payload
    order_id, member, lines, total = p["orderId"], str(p["memberId"]), _lines(p), int(p["total"])
    record = read_record(member, order_id)
    if record is None:
        _check_order_exists(order_id, member, lines, int(p["reservedAt"]))
    aborted = record is not None and record.status == RecordStatus.ABORTED
    with outbox.transaction() as tx:
        cur = tx.cursor
        ledger.record(cur, order_id, member, lines, total, int(p["reservedAt"]), int(p["expiresAt"]),
                      state=LedgerState.RELEASED if aborted else LedgerState.OPEN,
                      reason=PUBLISH_FAILED if aborted else None)
        entry = ledger.lock(cur, order_id)
        assert entry is not None
        # No locking read: the ledger row lock serialises this order's steps already, and locking a payment
        # that does not exist yet takes a gap lock that deadlocks with payments of other orders
        # (partitions are charged concurrently).
        if _payment(cur, order_id, lock=False) is not None:
            charged = False  # charged before: its outcome was committed with the payment
        elif entry.state != LedgerState.OPEN or entry.expires_ms <= clock.now_ms():
            ledger.first_delivery(cur, PAYMENTS, event.event_id)
            return "not charged: the reservation ended or expired (the expiry job releases it)"
        else:
            charge = payment_gateway.charge(order_id, str(p["paymentToken"]), total)
            status = PaymentStatus.SUCCEEDED if charge.approved else PaymentStatus.DECLINED
            cur.execute("INSERT INTO payments (id, order_id, member_id, amount, status) "
                        "VALUES (%s, %s, %s, %s, %s)", (charge.payment_id, order_id, member, total, status))
            ledger.first_delivery(cur, PAYMENTS, event.event_id)
            if charge.approved:
                _emit(tx, topics.PAYMENT_SUCCEEDED, "PaymentSucceeded", order_id,
                      {"memberId": member, "paymentId": charge.payment_id, "amount": total})
            else:
                _emit(tx, topics.ORDER_FAILURES, "PaymentFailed", order_id,
                      {"memberId": member, "reason": "PAYMENT_DECLINED"})
            charged = True
    if not charged:
        return _repeat(order_id)
    count(Metric.PAYMENTS, Outcome="APPROVED" if charge.approved else "DECLINED")
    reached(PAYMENTS, Moment.COMMITTED, [line.product_id for line in lines], order_id)
    return "charged" if charge.approved else "declined"


def _check_order_exists(order_id: str, member: str, lines: list[Line], reserved_ms: int) -> None:
    """Raise `NotFound` (a goodsdrop.failures reason) for an OrderRequested that names nothing real.

    Only asked when Redis has no record of the order. The ledger may have it (a late repeat); else
    the member and the products must exist, and Redis must be unable to have lost the record: its
    stock epoch (set when stock is rebuilt after Redis lost its data) older than the reservation
    means Redis kept its data since before the order was reserved, so the order never was. Without
    an epoch (Redis lost its data and has not recovered yet) nobody can tell: the order is processed.
    """
    with mysql_cursor() as cur:
        cur.execute("SELECT 1 FROM reservations WHERE order_id = %s", (order_id,))
        if cur.fetchone() is not None:
            return
        cur.execute("SELECT 1 FROM members WHERE id = %s", (member,))
        if cur.fetchone() is None:
            raise NotFound(f"member {member} does not exist", code=failures.UNKNOWN_MEMBER)
        wanted = sorted({line.product_id for line in lines})
        cur.execute(f"SELECT id FROM products WHERE id IN ({', '.join(['%s'] * len(wanted))})", wanted)
        missing = set(wanted) - {int(row["id"]) for row in cur.fetchall()}
        if missing:
            raise NotFound(f"products {sorted(missing)} do not exist", code=failures.UNKNOWN_PRODUCT)
    epoch = redis_client().get(keys.stock_epoch())
    if epoch is not None and int(epoch) < reserved_ms:
        raise NotFound(f"order {order_id} was never reserved (Redis has no record of it)", code=failures.UNKNOWN_ORDER)


def _refund_order(cur: DictCursor, order_id: str, amount: int, reason: str) -> None:
    """Refund the whole charge of an order (idempotent at the gateway and in MySQL)."""
    refund_id = f"{order_id}:order"
    payment_gateway.refund(order_id, refund_id, amount)
    cur.execute("INSERT IGNORE INTO refunds (id, order_id, product_id, amount, reason) VALUES (%s, %s, NULL, %s, %s)",
                (refund_id, order_id, amount, reason))
    cur.execute("UPDATE payments SET status = 'REFUNDED' WHERE order_id = %s", (order_id,))


# ---------------------------------------------------------------------------- 2. the order in MySQL


def persist_order(event: Envelope) -> str:
    """PaymentSucceeded → the order and its lines in MySQL, in one transaction with OrderPlaced (outbox)."""
    p = event.payload
    order_id, member = p["orderId"], str(p["memberId"])
    failure = ""
    product_ids: list[int] = []
    with outbox.transaction() as tx:
        cur = tx.cursor
        first = ledger.first_delivery(cur, ORDER_PERSISTENCE, event.event_id)
        if first:
            entry = ledger.lock(cur, order_id)
            if entry is None:
                raise _unknown_order(order_id)
            if entry.state != LedgerState.OPEN:
                failure = "RESERVATION_ENDED"
            else:
                product_ids = [ln.product_id for ln in entry.lines]
                cur.execute("SAVEPOINT persist_order")
                try:
                    reached(ORDER_PERSISTENCE, Moment.WRITING, product_ids, order_id)
                    _insert_order(cur, entry, OrderStatus.PENDING, p.get("paymentId"))
                    names = _product_names(cur, product_ids)
                    cur.executemany("INSERT INTO order_products (order_id, product_id, product_name, count, price, "
                                    "delivery_status) VALUES (%s, %s, %s, %s, %s, 'PREPARING')",
                                    [(order_id, ln.product_id, names.get(ln.product_id), ln.quantity, ln.price)
                                     for ln in entry.lines])
                except (StepFailed, *PERMANENT_DB_ERRORS) as err:
                    cur.execute("ROLLBACK TO SAVEPOINT persist_order")
                    logger.warning("order persistence failed", extra={"order_id": order_id, "error": str(err)})
                    failure = "ORDER_PERSISTENCE_FAILED"
            if failure:
                _emit(tx, topics.ORDER_FAILURES, "OrderPersistenceFailed", order_id,
                      {"memberId": member, "reason": failure})
            else:
                _emit(tx, topics.ORDER_PLACED, "OrderPlaced", order_id,
                      {"memberId": member, "total": entry.total, "lines": [{"productId": str(i)} for i in product_ids]})
    if not first:
        return _repeat(order_id)
    if failure:
        return failure
    mark_persisted(member, order_id)
    reached(ORDER_PERSISTENCE, Moment.COMMITTED, product_ids, order_id)
    return "placed"


def _product_names(cur: DictCursor, product_ids: list[int]) -> dict[int, str]:
    """The products' names now, kept on the order's lines (the price was fixed when the units were reserved)."""
    cur.execute(f"SELECT id, name FROM products WHERE id IN ({', '.join(['%s'] * len(product_ids))})", product_ids)
    return {int(r["id"]): r["name"] for r in cur.fetchall()}


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
    product_ids = [int(ln["productId"]) for ln in p["lines"]]
    reached(STOCK_PERSISTENCE, Moment.START, product_ids, order_id)
    failure = ""
    applied: list[Line] = []
    try:
        with outbox.transaction() as tx:
            cur = tx.cursor
            first = ledger.first_delivery(cur, STOCK_PERSISTENCE, event.event_id)
            if first:
                entry = ledger.lock(cur, order_id)
                if entry is None:
                    raise _unknown_order(order_id)
                failure = "RESERVATION_ENDED" if entry.state != LedgerState.OPEN else _consume(cur, entry, applied)
                if failure:
                    _emit(tx, topics.ORDER_FAILURES, "StockPersistenceFailed", order_id,
                          {"memberId": member, "reason": failure})
                else:
                    _emit(tx, topics.ORDER_CONFIRMED, "OrderConfirmed", order_id,
                          {"memberId": member, "total": int(p.get("total", 0))})
    except BaseException:
        unsettle(order_id, applied, member)
        raise
    if not first:
        with mysql_cursor() as cur:
            cur.execute("SELECT 1 FROM orders WHERE id = %s AND status = 'CONFIRMED'", (order_id,))
            if cur.fetchone() is not None:  # the first delivery may have died before closing the record
                close_record(member, order_id, RecordStatus.CONFIRMED)
                end_checkout(member, order_id, CheckoutEnd.BOUGHT)
        return _repeat(order_id)
    if failure:
        return failure
    close_record(member, order_id, RecordStatus.CONFIRMED)
    end_checkout(member, order_id, CheckoutEnd.BOUGHT)  # a cart order's bought lines leave the cart
    assert entry is not None  # (a first delivery that did not fail locked its ledger entry)
    record_outcome([ln.product_id for ln in entry.lines], OrderStatus.CONFIRMED, clock.now_ms() - entry.reserved_ms)
    reached(STOCK_PERSISTENCE, Moment.COMMITTED, [ln.product_id for ln in applied], order_id)
    return "confirmed"


def _consume(cur: DictCursor, entry: LedgerEntry, applied: list[Line]) -> str:
    """Inside the step's transaction: persist the sale; '' on success, else the failure reason."""
    cur.execute("SAVEPOINT confirm_order")
    try:
        reached(STOCK_PERSISTENCE, Moment.WRITING, [ln.product_id for ln in entry.lines], entry.order_id)
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
        with outbox.transaction() as tx:
            cur = tx.cursor
            first = ledger.first_delivery(cur, COMPENSATION, event.event_id)
            if first:
                entry = ledger.lock(cur, order_id)
                if entry is None:
                    raise _unknown_order(order_id)
                payment = _payment(cur, order_id)
                if payment is not None and payment["status"] == PaymentStatus.SUCCEEDED:
                    _refund_order(cur, order_id, int(payment["amount"]), reason)
                if entry.state == LedgerState.OPEN:
                    ledger.lock_stock_rows(cur, [ln.product_id for ln in entry.lines])
                    ledger.set_state(cur, order_id, LedgerState.RELEASED, reason)
                    for line in entry.lines:
                        settled.append(settle(order_id, member, line, SettleTarget.RELEASED, undo_sale=True))
                        released.append(line)
                marked_failed = _end_order(cur, entry, OrderStatus.FAILED, reason, payment)
                if marked_failed:
                    _emit(tx, topics.ORDER_CLOSED, "OrderFailed", order_id, {"memberId": member, "reason": reason})
    except BaseException:
        unsettle(order_id, released, member)
        raise
    if not first:
        return _repeat(order_id)
    close_record(member, order_id, RecordStatus.FAILED, reason)
    end_checkout(member, order_id, CheckoutEnd.RELEASED)  # a cart order's cart keeps its lines
    _stock_changed(settled)
    if marked_failed:
        assert entry is not None  # (only an order with a ledger entry is marked failed)
        count(Metric.COMPENSATIONS)
        record_outcome([ln.product_id for ln in entry.lines], OrderStatus.FAILED)
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
            count(Metric.RESERVATION_EXPIRY_FAILURES)
    if expired:
        count(Metric.RESERVATIONS_EXPIRED, expired)
    return expired


def expire_reservation(member: str, order_id: str, now_ms: int) -> int:
    """Expire one reservation if it is still open and due; 1 when it expired now.

    OrderExpired is written to the outbox in the expiring transaction and published after it.
    """
    record = read_record(member, order_id)
    released: list[Line] = []
    settled: list[Settled] = []
    try:
        with outbox.transaction() as tx:
            cur = tx.cursor
            entry = ledger.lock(cur, order_id)
            if entry is None:
                if record is None or record.status == RecordStatus.REFUSED:
                    # a claim that was refused or never made (the expiry entry is added beside the claim)
                    forget_expiry(member, order_id)
                    return 0
                # Never recorded by the payment step (its event is late or dead-lettered): record it now,
                # released at once if the hot path gave up on publishing it.
                if record.status == RecordStatus.ABORTED and _release_unrecorded(
                        cur, order_id, member, record.lines, record.total, record.created_ms, record.expires_ms):
                    forget_expiry(member, order_id)
                    return 0
                ledger.record(cur, order_id, member, record.lines, record.total, record.created_ms, record.expires_ms)
                entry = ledger.lock(cur, order_id)
                assert entry is not None
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
                settled.append(settle(order_id, member, line, SettleTarget.RELEASED, undo_sale=True))
                released.append(line)
            _end_order(cur, entry, OrderStatus.EXPIRED, "EXPIRED", payment)
            _emit(tx, topics.ORDER_CLOSED, "OrderExpired", order_id, {"memberId": member})
    except BaseException:
        unsettle(order_id, released, member)
        raise
    close_record(member, order_id, RecordStatus.EXPIRED, "EXPIRED")
    end_checkout(member, order_id, CheckoutEnd.RELEASED)
    record_outcome([ln.product_id for ln in released], OrderStatus.EXPIRED)
    _stock_changed(settled)
    for line in released:  # released units went back to the shards they came from: even them out
        rebalance(line.product_id, shard_count(line.product_id))
    outbox.publish_committed()
    return 1


# ---------------------------------------------------------------------------- the buyer cancels a pending order

CANCELLED_BY_BUYER = "CANCELLED_BY_BUYER"


def cancel_pending_order(member: str, order_id: str) -> bool:
    """The buyer cancels an order still PENDING: refund if charged, units released, order CANCELLED.

    Serialised with the saga's steps by the order's ledger row lock, like the expiry: a step that
    runs afterwards finds the reservation RELEASED, so payment charges nothing, persistence and
    confirmation fail with RESERVATION_ENDED, and their compensation finds the charge refunded and
    the order final (the refund has one id per order at the gateway and in MySQL: exactly once).
    False when the order is not pending any more (confirmed or ended meanwhile): nothing changed.
    PendingOrderCancelled is written to the outbox in the cancelling transaction.
    """
    record = read_record(member, order_id)
    released: list[Line] = []
    settled: list[Settled] = []
    try:
        with outbox.transaction() as tx:
            cur = tx.cursor
            entry = ledger.lock(cur, order_id)
            if entry is None:
                if record is None or record.status != RecordStatus.PENDING:
                    return False
                # Not recorded by the payment step yet: record it now (its late charge then finds it released).
                ledger.record(cur, order_id, member, record.lines, record.total, record.created_ms, record.expires_ms)
                entry = ledger.lock(cur, order_id)
                assert entry is not None
            if entry.state != LedgerState.OPEN:
                return False
            payment = _payment(cur, order_id)
            if payment is not None and payment["status"] == PaymentStatus.SUCCEEDED:
                _refund_order(cur, order_id, int(payment["amount"]), CANCELLED_BY_BUYER)
            ledger.lock_stock_rows(cur, [ln.product_id for ln in entry.lines])
            ledger.set_state(cur, order_id, LedgerState.RELEASED, CANCELLED_BY_BUYER)
            for line in entry.lines:
                settled.append(settle(order_id, member, line, SettleTarget.RELEASED, undo_sale=True))
                released.append(line)
            _end_order(cur, entry, OrderStatus.CANCELLED, CANCELLED_BY_BUYER, payment)
            cur.execute("UPDATE order_products SET delivery_status = 'CANCELLED' WHERE order_id = %s", (order_id,))
            _emit(tx, topics.ORDER_CLOSED, "PendingOrderCancelled", order_id,
                  {"memberId": member, "reason": CANCELLED_BY_BUYER})
    except BaseException:
        unsettle(order_id, released, member)
        raise
    close_record(member, order_id, RecordStatus.CANCELLED, CANCELLED_BY_BUYER)
    end_checkout(member, order_id, CheckoutEnd.RELEASED)
    _stock_changed(settled)
    for line in released:
        rebalance(line.product_id, shard_count(line.product_id))
    outbox.publish_committed()
    return True


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
                cur.execute("SELECT 1 FROM orders WHERE id = %s", (order_id,))
                if cur.fetchone() is None:
                    raise NotFound(f"order {order_id} does not exist", code=failures.UNKNOWN_ORDER)
                return "nothing to give back"  # its lines were given back before (or never cancelled)
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


# ---------------------------------------------------------------------------- the consumers' steps

PROCESS_PAYMENT = Step(PAYMENTS, ("OrderRequested",), process_payment)
PERSIST_ORDER = Step(ORDER_PERSISTENCE, ("PaymentSucceeded",), persist_order)
CONFIRM_ORDER = Step(STOCK_PERSISTENCE, ("OrderPlaced",), confirm_order)
COMPENSATE_ORDER = Step(COMPENSATION, ("PaymentFailed", "OrderPersistenceFailed", "StockPersistenceFailed"),
                        compensate_order)
REFUND_AND_RESTOCK = Step(RETURNS, ("OrderCancelled", "OrderLineCancelled", "OrderLineReturned"), refund_and_restock)
