"""Orders as buyers and sellers see them: placing one (the hot path), reading, cancelling, returning.

Placing an order (`place_order`) touches Redis and Kafka only: one Lua script reserves every line
(goodsdrop.reservations), then OrderRequested is published keyed by the order id and the buyer
gets 202 {orderId, status: PENDING}. If the broker does not acknowledge the event in time, the
event may still land: the order's ledger row settles it (goodsdrop.saga.end_unpublished). Either
the payment step recorded the order first (it is under way: 202 all the same), or the order is
ended for good - released at once, a late delivery charges nothing - and the buyer gets 503 with
Retry-After: a reserved unit never exists without an order on its way. The rest of the saga runs
in Kafka consumers (goodsdrop.saga).

Idempotency-Key (required) is handled inside the reservation script, not by Powertools'
idempotency utility: the key's record and the reservation are written in the same atomic step
(no window where one exists without the other), a duplicate that arrives while the first request
is still publishing waits for its answer instead of failing "already in progress", stored answers
include the business refusals (409s), and it costs no extra round trips on the hot path.
A request whose first attempt died between reserving and publishing is completed by its retry
(same key and body): the retry publishes the original order.

Where an order lives: PENDING orders are in Redis (`keys.order_record`) until the saga persists
them; MySQL has every order from then on, including FAILED and EXPIRED ones.

A cancel or return writes its refund-and-restock request to the outbox in the transaction that
marks the lines (goodsdrop.outbox): a cancel that rolls back never asks for a refund, a committed
one always does (the event is published after the commit, or by the relay's sweep), and each
committed cancel or return has an event id of its own.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import suppress
from datetime import timedelta
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from goodsdrop import keys, outbox, topics
from goodsdrop.admission import queue_admission
from goodsdrop.callers import Caller
from goodsdrop.cart import adopt_checkout, begin_checkout, cart_lines, end_checkout
from goodsdrop.checkpoints import Moment, reached
from goodsdrop.clients import fetch_one, mysql_cursor, mysql_transaction, redis_client
from goodsdrop.clock import db_now, from_db, from_ms, iso, now, now_ms, to_ms
from goodsdrop.codes import (
    CheckoutEnd,
    DeliveryStatus,
    IdempotencyState,
    OrderStatus,
    PaymentStatus,
    RecordStatus,
    ReserveKind,
)
from goodsdrop.drop_watch import record_attempt
from goodsdrop.errors import Conflict, NotFound, QueueRequired, ServiceUnavailable, ValidationError
from goodsdrop.events import Envelope, publish
from goodsdrop.failures import classify
from goodsdrop.fields import MAX_LINE_QUANTITY, IdText, LineQuantity
from goodsdrop.ids import event_id_for, is_ulid, new_ulid
from goodsdrop.paging import page_body
from goodsdrop.products import (
    MAX_ID,
    Product,
    get_product,
    known_shard_count,
    listing_of,
    product_from,
    sale_status,
)
from goodsdrop.reservations import (
    Line,
    Reservation,
    ReserveResult,
    SoldOutLook,
    Terms,
    level_reads,
    pending_order_ids,
    queue_sold_out_look,
    read_record,
    release_order,
    reserve,
)
from goodsdrop.saga import cancel_pending_order, end_unpublished
from goodsdrop.settings import settings
from goodsdrop.stock import StockLevel
from goodsdrop.telemetry import Metric, answer_of, count, timed, traced

logger = Logger(child=True)

MAX_LINES = 20
MAX_QUANTITY = MAX_LINE_QUANTITY  # the same bound as a cart line's
MAX_KEY_LENGTH = 255
PUBLISH_TIMEOUT_SECONDS = 2.0
IN_FLIGHT_WAIT_SECONDS = 8.5  # a duplicate waits this long for the first attempt's answer
IN_FLIGHT_STALE_MS = 8000  # > producer max block (5 s) + publish timeout: the first attempt is dead
STATUSES = tuple(OrderStatus)
PLACE_ORDER = "place-order"  # the hot path, as its checkpoint names it (goodsdrop.checkpoints)
DELIVERY_FLOW = ("PREPARING", "SHIPPED", "DELIVERED")


class OrderLineRequest(BaseModel):
    """One line of POST /orders."""

    model_config = ConfigDict(extra="forbid")

    productId: IdText  # noqa: N815
    quantity: LineQuantity


class PlaceOrder(BaseModel):
    """Body of POST /orders: `items` or `fromCart: true`, and a `paymentToken`."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[OrderLineRequest], Field(min_length=1, max_length=MAX_LINES)] | None = None
    fromCart: StrictBool | None = None  # noqa: N815
    paymentToken: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]  # noqa: N815


class DeliveryChange(BaseModel):
    """Body of PATCH /seller/orders/{id}/items/{productId}."""

    model_config = ConfigDict(extra="forbid")

    deliveryStatus: Annotated[StrictStr, Field(pattern=r"^(PREPARING|SHIPPED|DELIVERED)$")]  # noqa: N815


# ---------------------------------------------------------------------------- placing an order


def _key_digest(idempotency_key: str | None) -> str:
    if idempotency_key is None or idempotency_key == "":
        raise ValidationError("the Idempotency-Key header is required",
                              details={"fields": {"Idempotency-Key": "required"}})
    if len(idempotency_key) > MAX_KEY_LENGTH or not idempotency_key.isascii() or not idempotency_key.isprintable():
        raise ValidationError("Idempotency-Key must be 1-255 printable ASCII characters",
                              details={"fields": {"Idempotency-Key": "1-255 printable ASCII characters"}})
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


def _fingerprint(body: PlaceOrder) -> str:
    canonical = json.dumps(body.model_dump(exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _requested_lines(body: PlaceOrder, cart: list[tuple[int, int]] | None) -> list[tuple[int, int]]:
    if (body.items is None) == (not body.fromCart):
        raise ValidationError("send either items or fromCart: true",
                              details={"fields": {"items": "send items or fromCart: true, not both"}})
    if body.items is not None:
        wanted = [(int(item.productId), item.quantity) for item in body.items]
    else:
        wanted = cart or []
        if not wanted:
            raise ValidationError("the cart is empty", details={"fields": {"fromCart": "the cart is empty"}})
    merged: dict[int, int] = {}
    for product_id, quantity in wanted:
        if product_id > MAX_ID:
            raise ValidationError("productId is out of range", details={"fields": {"items.productId": "out of range"}})
        merged[product_id] = merged.get(product_id, 0) + quantity
    if len(merged) > MAX_LINES or any(q > MAX_QUANTITY for q in merged.values()):
        raise ValidationError(f"at most {MAX_LINES} products and {MAX_QUANTITY} units of each",
                              details={"fields": {"items": "too many products or units"}})
    return sorted(merged.items())


def _refusal(outcome: dict[str, Any]) -> Conflict:
    code, product = outcome["code"], str(outcome["productId"])
    if code == "PRODUCT_UNAVAILABLE":
        return Conflict(f"product {product} is no longer on sale", code=code, details={"productId": product})
    if code == "NOT_ON_SALE":
        starts = iso(from_ms(int(outcome["salesStartMs"])))
        return Conflict(f"product {product} is not on sale until {starts}", code=code,
                        details={"productId": product, "salesStartAt": starts})
    if code == "OUT_OF_STOCK":
        return Conflict(f"product {product} is out of stock", code=code,
                        details={"productId": product, "available": int(outcome["available"])})
    return Conflict(f"at most {outcome['limit']} units of product {product} per member", code=code,
                    details={"productId": product, "limit": int(outcome["limit"]), "held": int(outcome["held"])})


def _answer(outcome: dict[str, Any]) -> dict[str, Any]:
    """Render a stored outcome: the 202 body, or raise the stored refusal."""
    if outcome.get("status") == 202:
        return {"orderId": outcome["orderId"], "status": OrderStatus.PENDING}
    raise _refusal(outcome)


def _stored_answer(member_id: str, digest: str, fingerprint: str) -> dict[str, Any] | None:
    """A finished earlier answer for this key (used when the request cannot be re-evaluated)."""
    fp, state, outcome = redis_client().hmget(keys.order_idempotency(member_id, digest), "fp", "state", "outcome")
    if fp is None:
        return None
    if fp != fingerprint:
        raise Conflict("this Idempotency-Key was used with another request", code="IDEMPOTENCY_KEY_REUSED")
    if state == IdempotencyState.DONE and outcome:
        return _answer(json.loads(outcome))
    return None


def _product_ids(member_id: str, body: PlaceOrder) -> list[int]:
    """The products an order attempt is for (unvalidated: admission only needs to know them)."""
    if body.items is not None:
        return sorted({int(item.productId) for item in body.items if int(item.productId) <= MAX_ID})
    return [product_id for product_id, _ in cart_lines(member_id)] if body.fromCart else []


def place_order(caller: Caller, body: PlaceOrder, idempotency_key: str | None,
                source_ip: str | None = None) -> dict[str, Any]:
    """Reserve every line atomically and start the saga; the 202 body {orderId, status: PENDING}.

    Admission control (rate limits, waiting rooms: goodsdrop.admission) comes first; a retry of an
    order that already has its answer still gets it when a waiting room has opened since.
    The gate's scripts share their round trip with the reads the order needs next (each product's
    cached detail and, for the `lua` strategy, the sold-out look), so a refusal of a sold-out drop
    costs two round trips: this one and the stored refusal.
    """
    watched: dict[str, Any] = {"products": [], "levels": {}}  # what the drop dashboard counts (drop_watch)
    failure: BaseException | None = None
    try:
        with traced("place_order") as segment:
            answer = _admit_and_place(caller, body, idempotency_key, source_ip, watched)
            watched["levels"] = answer.pop("levels", None) or {}
            segment.put_annotation("order_id", answer["orderId"])
            return answer
    except BaseException as err:
        failure = err
        raise
    finally:
        answer_code = answer_of(failure)
        count(Metric.ORDER_ATTEMPTS, Answer=answer_code)
        record_attempt(watched["products"], answer_code, watched["levels"])


def _admit_and_place(caller: Caller, body: PlaceOrder, idempotency_key: str | None, source_ip: str | None,
                     watched: dict[str, Any]) -> dict[str, Any]:
    member = caller.member_id
    product_ids = watched["products"] = _product_ids(member, body)
    digest, fingerprint = _key_digest(idempotency_key), _fingerprint(body)
    pipe = redis_client().pipeline(transaction=False)
    gate = queue_admission(pipe, member, source_ip, product_ids)
    for product_id in product_ids:
        pipe.get(keys.product_detail(product_id))
    shards = [known_shard_count(product_id) for product_id in product_ids]
    look = None
    if body.items is not None and product_ids and None not in shards:  # (a cart's lines are read later)
        look = queue_sold_out_look(pipe, member, digest, [(p, int(n or 1)) for p, n in zip(product_ids, shards,
                                                                                           strict=True)])
    answers = pipe.execute() if len(pipe) else []
    try:
        gate.check(answers)
    except QueueRequired:
        stored = _stored_answer(member, digest, fingerprint)
        if stored is not None:
            return stored
        raise
    details = dict(zip(product_ids, answers[gate.calls:gate.calls + len(product_ids)], strict=True))
    if look is not None:
        look.answers[:] = answers[gate.calls + len(product_ids):]
    return _place(caller, body, digest, fingerprint, restarts=1, details=details, sold_out_look=look)


def _product_on_sale(product_id: int, details: dict[int, Any] | None = None) -> Product:
    """The product to reserve; 409 PRODUCT_UNAVAILABLE for one its seller unlisted or deleted, 404 for none.
    `details`: detail cache values read already, by product id."""
    try:
        if details and product_id in details:
            return product_from(product_id, details[product_id])
        return get_product(product_id)
    except NotFound:
        if listing_of(product_id) is not None:
            raise Conflict(f"product {product_id} is no longer on sale", code="PRODUCT_UNAVAILABLE",
                           details={"productId": str(product_id)}) from None
        raise


def _place(caller: Caller, body: PlaceOrder, digest: str, fingerprint: str, restarts: int,
           details: dict[int, Any] | None = None, sold_out_look: SoldOutLook | None = None) -> dict[str, Any]:
    """Place the order; a cart order first marks the cart as being bought (goodsdrop.cart's checkout).
    `details`: products' detail cache values read already (by product id); `sold_out_look`: the
    sold-out reads made already (goodsdrop.reservations.queue_sold_out_look).

    The cart keeps its lines: they leave it when the order is confirmed (the saga ends the checkout),
    and stay when it fails, expires or is cancelled. A checkout this attempt began is ended here
    when no order of it was started.
    """
    member = caller.member_id
    started = now_ms()
    order_id = new_ulid(started)
    began, cart = False, None
    if body.fromCart and body.items is None:
        try:
            began, cart = begin_checkout(member, order_id, digest)
        except Conflict as err:  # CHECKOUT_PENDING; a request answered before keeps its answer
            stored = _stored_answer(member, digest, fingerprint)
            if stored is not None:
                return stored
            raise err from None
    answer: dict[str, Any] = {}
    try:
        answer = _reserve_and_start(caller, body, digest, fingerprint, restarts, order_id, started, cart,
                                    details, sold_out_look)
    finally:
        if body.fromCart and answer.get("orderId") == order_id and answer.get("started"):
            if not began:  # a retry took over from a first attempt that began the checkout and failed
                adopt_checkout(member, order_id, digest)
        elif began:
            end_checkout(member, order_id, CheckoutEnd.RELEASED)
    answer.pop("started", None)
    return answer


def _reserve_and_start(caller: Caller, body: PlaceOrder, digest: str, fingerprint: str, restarts: int,
                       order_id: str, started: int, cart: list[tuple[int, int]] | None,
                       details: dict[int, Any] | None = None,
                       sold_out_look: SoldOutLook | None = None) -> dict[str, Any]:
    member = caller.member_id
    try:
        wanted = _requested_lines(body, cart)
        products = [_product_on_sale(product_id, details) for product_id, _ in wanted]
    except (ValidationError, NotFound, Conflict):
        # e.g. a fromCart replay after the first attempt's cart was bought: the stored answer stands
        stored = _stored_answer(member, digest, fingerprint)
        if stored is not None:
            return stored
        raise
    lines = [Line(p.id, quantity, p.price) for p, (_, quantity) in zip(products, wanted, strict=True)]
    terms = [Terms(p.per_member_limit, None if p.sales_start_at is None else to_ms(p.sales_start_at), p.stock_shards)
             for p in products]
    reservation = Reservation(order_id, member, lines, terms, fingerprint, digest, started,
                              started + settings.reservation_ttl_seconds * 1000)
    with timed(Metric.RESERVATION_LATENCY):
        result = reserve(reservation, sold_out_look=sold_out_look)
    if result.kind == ReserveKind.REUSED:
        raise Conflict("this Idempotency-Key was used with another request", code="IDEMPOTENCY_KEY_REUSED")
    if result.kind == ReserveKind.REFUSED:
        assert result.outcome is not None
        raise _refusal(result.outcome)
    if result.kind == ReserveKind.REPLAY:
        return _replay(caller, body, digest, fingerprint, result, restarts)
    assert result.levels is not None
    levels = _start_saga(reservation, body.paymentToken, result.levels)
    _publish_levels(products, levels)
    return {"orderId": reservation.order_id, "status": OrderStatus.PENDING, "started": True,
            "levels": {p.id: available for p, (available, _) in zip(products, levels, strict=True)}}


def _order_requested(order_id: str, member_id: str, lines: list[Line], total: int, created_ms: int, expires_ms: int,
                     token: str) -> Envelope:
    return Envelope(type="OrderRequested", event_id=event_id_for(order_id, "OrderRequested"), correlation_id=order_id,
                    payload={"orderId": order_id, "memberId": member_id, "lines": [ln.to_json() for ln in lines],
                             "total": total, "paymentToken": token, "reservedAt": created_ms,
                             "expiresAt": expires_ms})


def _start_saga(res: Reservation, token: str, levels: list[tuple[int, int] | None]) -> list[tuple[int, int]]:
    """Publish OrderRequested and record the 202; on failure release everything and answer 503.

    Returns each line's product stock: a sharded product's sum over its shards is read in the same
    round trip as the 202 is recorded.
    """
    event = _order_requested(res.order_id, res.member_id, res.lines, res.total, res.now_ms, res.expires_ms, token)
    try:
        publish(topics.ORDER_REQUESTED, event, key=res.order_id, timeout=PUBLISH_TIMEOUT_SECONDS)
        reached(PLACE_ORDER, Moment.COMMITTED, [line.product_id for line in res.lines], res.order_id)
    except Exception as err:
        if abort_reservation(res):
            raise ServiceUnavailable("the order could not be started; nothing was reserved, try again",
                                     retry_after=1) from err
        logger.warning("OrderRequested was acknowledged late: the saga has the order",
                       extra={"order_id": res.order_id, "error": f"{type(err).__name__}: {err}"})
    pipe = redis_client().pipeline(transaction=False)
    pipe.hset(keys.order_idempotency(res.member_id, res.key_digest),
              mapping={"state": IdempotencyState.DONE, "outcome": json.dumps({"status": 202, "orderId": res.order_id})})
    reads = level_reads(res, levels)
    reads.queue(pipe)
    return reads.fill(levels, pipe.execute()[1:])


def abort_reservation(res: Reservation) -> bool:
    """Undo a reservation whose OrderRequested may not have been published: units back, key forgotten.

    False (nothing undone) when the payment step recorded the order first: it is under way. The
    record stays, marked ABORTED, so a late delivery of the event is recognised and ignored (the
    ledger row says so too; without MySQL the record alone does, which a delivery read before it
    was marked can miss). Releasing gives the units back to their shards and to `held` (once).
    """
    member_id, order_id, digest = res.member_id, res.order_id, res.key_digest
    try:
        if not end_unpublished(order_id, member_id, res.lines, res.total, res.now_ms, res.expires_ms):
            return False
    except Exception as err:
        if not classify(err).transient:
            raise
        logger.warning("the ledger is unavailable: the order is ended in Redis only", extra={"order_id": order_id})
        release_order(order_id, member_id, res.lines)
    r = redis_client()
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.order_record(member_id, order_id),
              mapping={"status": RecordStatus.ABORTED, "reason": "PUBLISH_FAILED"})
    pipe.zrem(keys.reservation_expiry(), f"{member_id}:{order_id}")
    pipe.zrem(keys.member_pending_orders(member_id), order_id)
    pipe.delete(keys.order_idempotency(member_id, digest))
    pipe.execute()
    return True


def _publish_levels(products: list[Product], levels: list[tuple[int, int]]) -> None:
    """StockChanged for each line (fire and forget: live stock, not correctness, depends on it)."""
    for product, (available, version) in zip(products, levels, strict=True):
        level = StockLevel(product.id, available, sale_status(available, product.sales_start_at), version)
        with suppress(Exception):  # the next change or read corrects live stock
            publish(topics.STOCK_CHANGED, Envelope(type="StockChanged", payload=level.to_json() | {"version": version}),
                    key=str(product.id), wait=False)


def _replay(caller: Caller, body: PlaceOrder, digest: str, fingerprint: str, first: ReserveResult,
            restarts: int) -> dict[str, Any]:
    """The answer of the request's first attempt; waits for it while it is still running."""
    r = redis_client()
    idem = keys.order_idempotency(caller.member_id, digest)
    result = first
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while True:
        if result.state == IdempotencyState.DONE and result.outcome is not None:
            return _answer(result.outcome)
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
        fp, state, outcome, order, begun = r.hmget(idem, "fp", "state", "outcome", "order", "started")
        if fp is None:
            # The first attempt failed to publish and released everything: this is a fresh attempt.
            if restarts <= 0:
                raise ServiceUnavailable("the first attempt of this request failed; try again", retry_after=1)
            return _place(caller, body, digest, fingerprint, restarts - 1)
        result = ReserveResult(ReserveKind.REPLAY, outcome=json.loads(outcome) if outcome else None, state=state or "",
                               order_id=order or "")
        if begun and now_ms() - int(begun) >= IN_FLIGHT_STALE_MS:
            return _resume(caller, body, digest, result.order_id)
    raise ServiceUnavailable("the first attempt of this request is still running; try again", retry_after=1)


def _resume(caller: Caller, body: PlaceOrder, digest: str, order_id: str) -> dict[str, Any]:
    """The first attempt stopped between reserving and publishing (it died): finish its order."""
    r = redis_client()
    idem = keys.order_idempotency(caller.member_id, digest)
    record = read_record(caller.member_id, order_id)
    if record is None or record.status in (RecordStatus.REFUSED, RecordStatus.ABORTED):
        r.delete(idem)
        raise ServiceUnavailable("the first attempt of this request did not finish; try again", retry_after=1)
    if record.status != RecordStatus.PENDING:
        # The first attempt published and died before recording its answer; the saga has run since.
        r.hset(idem, mapping={"state": IdempotencyState.DONE,
                              "outcome": json.dumps({"status": 202, "orderId": order_id})})
        return {"orderId": order_id, "status": OrderStatus.PENDING}
    # Claim the takeover: only one retry republishes.
    if not r.set(keys.order_idempotency_resume(caller.member_id, digest), "1", nx=True,
                 ex=int(PUBLISH_TIMEOUT_SECONDS * 5)):
        raise ServiceUnavailable("this request is still being processed; try again", retry_after=1)
    # The first attempt may have died between its shard steps: finish them (idempotent per order).
    products = [get_product(line.product_id) for line in record.lines]
    terms = [Terms(p.per_member_limit, None, p.stock_shards) for p in products]
    finished = reserve(Reservation(order_id, caller.member_id, record.lines, terms, "", digest, record.created_ms,
                                   record.expires_ms), claimed=True)
    if finished.kind == ReserveKind.REFUSED:
        assert finished.outcome is not None
        raise _refusal(finished.outcome)
    event = _order_requested(order_id, caller.member_id, record.lines, record.total, record.created_ms,
                             record.expires_ms, body.paymentToken)
    try:
        publish(topics.ORDER_REQUESTED, event, key=order_id, timeout=PUBLISH_TIMEOUT_SECONDS)
    except Exception as err:
        r.delete(keys.order_idempotency_resume(caller.member_id, digest))
        raise ServiceUnavailable("the order could not be started; try again", retry_after=1) from err
    r.hset(idem, mapping={"state": IdempotencyState.DONE, "outcome": json.dumps({"status": 202, "orderId": order_id})})
    return {"orderId": order_id, "status": OrderStatus.PENDING}


# ---------------------------------------------------------------------------- reading orders


def parse_order_id(raw: str | None) -> str:
    """An order id from a path segment (a ULID), else 400 naming it."""
    if raw is None or not is_ulid(raw.upper()):
        raise ValidationError("order id must be a 26-character ULID", details={"fields": {"id": "malformed"}})
    return raw.upper()


def _item(product_id: Any, quantity: Any, price: Any, delivery: str | None) -> dict[str, Any]:
    return {"productId": str(product_id), "quantity": int(quantity), "price": int(price), "deliveryStatus": delivery}


def _line(product_id: Any, name: str | None, quantity: Any, price: Any, delivery: str | None) -> dict[str, Any]:
    """An order line as the buyer sees it: what was bought, by name and unit price at purchase."""
    return {**_item(product_id, quantity, price, delivery), "productName": name, "unitPrice": int(price),
            "lineTotal": int(quantity) * int(price)}


ENDED_LINES = (DeliveryStatus.CANCELLED, DeliveryStatus.RETURNED)


def _money(cur: Any, order_ids: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The orders' payments and refunds (oldest first), by order id."""
    if not order_ids:
        return {}, {}
    marks = ", ".join(["%s"] * len(order_ids))
    cur.execute(f"SELECT order_id, amount, status FROM payments WHERE order_id IN ({marks})", order_ids)
    payments = {r["order_id"]: r for r in cur.fetchall()}
    cur.execute(f"SELECT order_id, product_id, amount, reason, created_at FROM refunds WHERE order_id IN ({marks}) "
                "ORDER BY created_at, id", order_ids)
    refunds: dict[str, list[dict[str, Any]]] = {}
    for r in cur.fetchall():
        refunds.setdefault(r["order_id"], []).append(r)
    return payments, refunds


def _with_money(doc: dict[str, Any], payment: dict[str, Any] | None,
                refunds: list[dict[str, Any]]) -> dict[str, Any]:
    """Add what was charged and refunded, and when, per line and for the order.

    A line's refund is its own (line cancel, return, a whole-order cancel: one per line) or the
    order's whole refund (a failed, expired or cancelled-while-pending order): `refundStatus` is
    PENDING from the line's cancel or return until its refund is recorded. The order's
    `paymentStatus`: NONE (not charged yet), DECLINED, CHARGED, REFUND_PENDING, PARTIALLY_REFUNDED,
    REFUNDED.
    """
    charged = payment is not None and payment["status"] in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
    whole = [r for r in refunds if r["product_id"] is None]
    pending = False
    for item in doc["items"]:
        own = [r for r in refunds if r["product_id"] is not None and str(r["product_id"]) == item["productId"]]
        refunded = sum(int(r["amount"]) for r in own) + (item["lineTotal"] if whole else 0)
        times = [r["created_at"] for r in own + whole]
        item["chargedAmount"] = item["lineTotal"] if charged else 0
        item["refundedAmount"] = min(refunded, item["chargedAmount"])
        item["refundedAt"] = iso(from_db(max(times))) if times else None
        if item["refundedAmount"] > 0:
            item["refundStatus"] = "REFUNDED"
        elif charged and item["deliveryStatus"] in ENDED_LINES:
            item["refundStatus"], pending = "PENDING", True
        else:
            item["refundStatus"] = None
    amount = int(payment["amount"]) if charged and payment is not None else 0
    refunded = min(sum(int(r["amount"]) for r in refunds), amount)
    if payment is None:
        status = "NONE"
    elif not charged:
        status = "DECLINED"
    elif pending:
        status = "REFUND_PENDING"
    elif refunded >= amount:
        status = "REFUNDED"
    else:
        status = "PARTIALLY_REFUNDED" if refunded > 0 else "CHARGED"
    doc |= {"chargedAmount": amount, "refundedAmount": refunded, "paymentStatus": status,
            "refunds": [{"productId": None if r["product_id"] is None else str(r["product_id"]),
                         "amount": int(r["amount"]), "reason": r["reason"],
                         "refundedAt": iso(from_db(r["created_at"]))} for r in refunds]}
    return doc


def _mysql_documents(cur: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order documents for order rows: lines from order_products, else (never placed) from the ledger."""
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    marks = ", ".join(["%s"] * len(ids))
    cur.execute(f"SELECT op.order_id, op.product_id, COALESCE(op.product_name, p.name) AS name, op.count, op.price, "
                f"op.delivery_status FROM order_products op LEFT JOIN products p ON p.id = op.product_id "
                f"WHERE op.order_id IN ({marks}) ORDER BY op.product_id", ids)
    items: dict[str, list[dict[str, Any]]] = {}
    for r in cur.fetchall():
        items.setdefault(r["order_id"], []).append(_line(r["product_id"], r["name"], r["count"], r["price"],
                                                          r["delivery_status"]))
    missing = [i for i in ids if i not in items]
    if missing:
        marks = ", ".join(["%s"] * len(missing))
        cur.execute(f"SELECT rl.order_id, rl.product_id, p.name, rl.quantity, rl.price FROM reservation_lines rl "
                    f"LEFT JOIN products p ON p.id = rl.product_id WHERE rl.order_id IN ({marks}) "
                    "ORDER BY rl.product_id", missing)
        for r in cur.fetchall():
            items.setdefault(r["order_id"], []).append(_line(r["product_id"], r["name"], r["quantity"], r["price"],
                                                              None))
    payments, refunds = _money(cur, ids)
    return [_with_money({"id": row["id"], "status": row["status"], "failureReason": row["failure_reason"],
                         "totalPrice": int(row["total_price"]), "createdAt": iso(from_db(row["created_at"])),
                         "confirmedAt": iso(from_db(row["confirmed_at"])), "items": items.get(row["id"], [])},
                        payments.get(row["id"]), refunds.get(row["id"], [])) for row in rows]


_ORDER_COLUMNS = "id, status, failure_reason, total_price, created_at, confirmed_at"


def _product_name(product_id: int) -> str | None:
    try:
        return get_product(product_id).name
    except NotFound:  # deleted since
        return None


def _record_document(member_id: str, order_id: str, cur: Any | None = None) -> dict[str, Any] | None:
    """A PENDING order from its Redis record (with its payment, once charged, when `cur` is given)."""
    record = read_record(member_id, order_id)
    if record is None or record.status == RecordStatus.ABORTED:
        return None
    status = record.status if record.status in STATUSES else OrderStatus.PENDING
    doc = {"id": order_id, "status": status, "failureReason": record.reason or None, "totalPrice": record.total,
           "createdAt": iso(from_ms(record.created_ms)), "confirmedAt": None,
           "items": [_line(ln.product_id, _product_name(ln.product_id), ln.quantity, ln.price, None)
                     for ln in record.lines]}
    payments, refunds = _money(cur, [order_id]) if cur is not None else ({}, {})
    return _with_money(doc, payments.get(order_id), refunds.get(order_id, []))


def get_order(caller: Caller, order_id: str) -> dict[str, Any]:
    """One of the caller's orders (MySQL, or Redis while it is PENDING); 404 for anyone else's."""
    with mysql_cursor() as cur:
        cur.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = %s AND member_id = %s",
                    (order_id, caller.member_id))
        row = cur.fetchone()
        if row is not None:
            return _mysql_documents(cur, [row])[0]
        doc = _record_document(caller.member_id, order_id, cur)
    if doc is None:
        raise NotFound(f"order {order_id} not found")
    return doc


def list_orders(caller: Caller, page: int, size: int, status: str | None) -> dict[str, Any]:
    """The caller's orders, newest first: those still only in Redis first, then MySQL's."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}",
                              details={"fields": {"status": "unknown status"}})
    member = caller.member_id
    with mysql_cursor() as cur:
        pending: list[dict[str, Any]] = []
        if status in (None, OrderStatus.PENDING):
            ids = pending_order_ids(member)
            if ids:
                marks = ", ".join(["%s"] * len(ids))
                cur.execute(f"SELECT id FROM orders WHERE id IN ({marks})", ids)
                in_mysql = {r["id"] for r in cur.fetchall()}
                docs = [_record_document(member, i, cur) for i in ids if i not in in_mysql]
                pending = [d for d in docs if d is not None and d["status"] == OrderStatus.PENDING]
        where, args = "member_id = %s", [member]
        if status is not None:
            where += " AND status = %s"
            args.append(status)
        cur.execute(f"SELECT COUNT(*) AS n FROM orders WHERE {where}", args)
        total = int(fetch_one(cur)["n"]) + len(pending)
        offset = (page - 1) * size
        items = pending[offset:offset + size]
        wanted = size - len(items)
        if wanted > 0:
            cur.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE {where} ORDER BY created_at DESC, id DESC "
                        "LIMIT %s OFFSET %s", [*args, wanted, max(offset - len(pending), 0)])
            items += _mysql_documents(cur, list(cur.fetchall()))
    return page_body(items, page, size, total)


# ---------------------------------------------------------------------------- cancel, return, deliver


PENDING_RETRY_SECONDS = 2  # a line of a pending order can be cancelled once the order is confirmed (seconds)


def _locked_order(cur: Any, caller: Caller, order_id: str) -> dict[str, Any]:
    cur.execute("SELECT id, status, member_id FROM orders WHERE id = %s AND member_id = %s FOR UPDATE",
                (order_id, caller.member_id))
    row = cur.fetchone()
    if row is None:
        if _record_document(caller.member_id, order_id) is not None:
            raise Conflict("the order is still being placed; try again once it is confirmed", code="INVALID_STATE",
                           details={"status": "PENDING", "retryAfterSeconds": PENDING_RETRY_SECONDS})
        raise NotFound(f"order {order_id} not found")
    return row


def _is_pending(caller: Caller, order_id: str) -> bool:
    with mysql_cursor() as cur:
        cur.execute("SELECT status FROM orders WHERE id = %s AND member_id = %s", (order_id, caller.member_id))
        row = cur.fetchone()
    if row is not None:
        return bool(row["status"] == OrderStatus.PENDING)
    doc = _record_document(caller.member_id, order_id)
    return doc is not None and doc["status"] == OrderStatus.PENDING


def _locked_lines(cur: Any, order_id: str) -> list[dict[str, Any]]:
    cur.execute("SELECT product_id, count, price, delivery_status FROM order_products WHERE order_id = %s "
                "ORDER BY product_id FOR UPDATE", (order_id,))
    return list(cur.fetchall())


GIVE_BACK = "give-back"  # the cancel/return step, as its checkpoints name it (goodsdrop.checkpoints)


def give_back(tx: outbox.Transaction, event_type: str, order_id: str, member_id: str,
               lines: list[dict[str, Any]]) -> None:
    """Write the refund-and-restock request in the caller's transaction; it is published once that commits.

    Its event id is new (not derived from the order): each committed cancel or return is its own
    change, never mistaken for a repeat of another.
    """
    payload = {"memberId": member_id,
               "lines": [_item(r["product_id"], r["count"], r["price"], None) for r in lines],
               "amount": sum(int(r["count"]) * int(r["price"]) for r in lines)}
    tx.add(topics.ORDER_RETURNS, Envelope(type=event_type, correlation_id=order_id,
                                          payload={"orderId": order_id, **payload}), order_id)
    reached(GIVE_BACK, Moment.BEFORE_COMMIT, [int(r["product_id"]) for r in lines], order_id)


def given_back(order_id: str, lines: list[dict[str, Any]]) -> None:
    """After the commit: publish the request now (else the outbox sweep does)."""
    reached(GIVE_BACK, Moment.COMMITTED, [int(r["product_id"]) for r in lines], order_id)
    outbox.publish_committed(timeout=PUBLISH_TIMEOUT_SECONDS)


def cancel_order(caller: Caller, order_id: str) -> dict[str, Any]:
    """Cancel an order before shipping: a PENDING one (the saga stops: reservation released, charge refunded
    if taken, exactly once: goodsdrop.saga.cancel_pending_order), or a confirmed one whose lines are all still
    PREPARING (every line CANCELLED; refund and restock follow)."""
    if _is_pending(caller, order_id) and cancel_pending_order(caller.member_id, order_id):
        return get_order(caller, order_id)
    with outbox.transaction() as tx:
        cur = tx.cursor
        order = _locked_order(cur, caller, order_id)
        lines = _locked_lines(cur, order_id)
        active = [r for r in lines if r["delivery_status"] not in ("CANCELLED", "RETURNED")]
        if order["status"] != "CONFIRMED" or not active or any(r["delivery_status"] != "PREPARING" for r in active):
            raise Conflict("only a confirmed order whose lines are all still PREPARING can be cancelled",
                           code="INVALID_STATE", details={"status": order["status"]})
        cur.execute("UPDATE order_products SET delivery_status = 'CANCELLED' WHERE order_id = %s "
                    "AND delivery_status = 'PREPARING'", (order_id,))
        cur.execute("UPDATE orders SET status = 'CANCELLED' WHERE id = %s", (order_id,))
        give_back(tx, "OrderCancelled", order_id, caller.member_id, active)
    given_back(order_id, active)
    return get_order(caller, order_id)


def cancel_line(caller: Caller, order_id: str, product_id: int) -> dict[str, Any]:
    """Cancel one line that has not shipped; the order is CANCELLED when no line is left."""
    return _end_line(caller, order_id, product_id, "PREPARING", "CANCELLED", "OrderLineCancelled")


def request_return(caller: Caller, order_id: str, product_id: int) -> dict[str, Any]:
    """Ask to return one delivered line within the return window; the seller decides on receipt.

    Nothing is refunded or restocked here: the line becomes RETURN_REQUESTED, and only the seller's
    acceptance (goodsdrop.order_desk.decide_return) refunds and restocks it. Asking again while the
    request is open answers the same. The window is `settings.return_window_days` after delivery
    (lines delivered before deliveries were timed count from their last change); after it, 409
    `RETURN_WINDOW_CLOSED`.
    """
    with mysql_transaction() as cur:
        order = _locked_order(cur, caller, order_id)
        cur.execute("SELECT delivery_status, COALESCE(delivered_at, updated_at) AS delivered_at FROM order_products "
                    "WHERE order_id = %s AND product_id = %s FOR UPDATE", (order_id, product_id))
        line = cur.fetchone()
        if line is None:
            raise NotFound(f"order {order_id} has no product {product_id}")
        status = line["delivery_status"]
        if status == DeliveryStatus.RETURN_REQUESTED:
            pass  # asked before: the same answer
        elif order["status"] != OrderStatus.CONFIRMED or status != DeliveryStatus.DELIVERED:
            raise Conflict("only a DELIVERED line of a confirmed order can be returned", code="INVALID_STATE",
                           details={"deliveryStatus": status, "status": order["status"]})
        else:
            delivered = from_db(line["delivered_at"])
            assert delivered is not None
            closes = delivered + timedelta(days=settings.return_window_days)
            if now() >= closes:
                raise Conflict(f"returns are accepted for {settings.return_window_days} days after delivery",
                               code="RETURN_WINDOW_CLOSED",
                               details={"deliveredAt": iso(delivered), "returnWindowClosedAt": iso(closes),
                                        "returnWindowDays": settings.return_window_days})
            cur.execute("UPDATE order_products SET delivery_status = %s, return_requested_at = %s "
                        "WHERE order_id = %s AND product_id = %s",
                        (DeliveryStatus.RETURN_REQUESTED, db_now(), order_id, product_id))
    return get_order(caller, order_id)


def _end_line(caller: Caller, order_id: str, product_id: int, required: str, new_status: str,
              event_type: str) -> dict[str, Any]:
    with outbox.transaction() as tx:
        cur = tx.cursor
        order = _locked_order(cur, caller, order_id)
        lines = _locked_lines(cur, order_id)
        line = next((r for r in lines if int(r["product_id"]) == product_id), None)
        if line is None:
            raise NotFound(f"order {order_id} has no product {product_id}")
        if order["status"] != "CONFIRMED" or line["delivery_status"] != required:
            details = {"deliveryStatus": line["delivery_status"], "status": order["status"]}
            if order["status"] == OrderStatus.PENDING:  # it will be confirmed (or end) shortly
                details["retryAfterSeconds"] = PENDING_RETRY_SECONDS
            raise Conflict(f"only a {required} line of a confirmed order can be {new_status.lower()}",
                           code="INVALID_STATE", details=details)
        cur.execute("UPDATE order_products SET delivery_status = %s WHERE order_id = %s AND product_id = %s",
                    (new_status, order_id, product_id))
        if new_status == "CANCELLED" and all(r["delivery_status"] in ("CANCELLED", "RETURNED")
                                             for r in lines if r is not line):
            cur.execute("UPDATE orders SET status = 'CANCELLED' WHERE id = %s", (order_id,))
        give_back(tx, event_type, order_id, caller.member_id, [line])
    given_back(order_id, [line])
    return get_order(caller, order_id)


def update_delivery(seller: Caller, order_id: str, product_id: int, change: DeliveryChange) -> dict[str, Any]:
    """The product's seller moves a line's delivery status one step forward (PREPARING→SHIPPED→DELIVERED)."""
    with mysql_transaction() as cur:
        cur.execute("SELECT op.count, op.price, op.delivery_status, o.status FROM order_products op "
                    "JOIN orders o ON o.id = op.order_id JOIN products p ON p.id = op.product_id "
                    "WHERE op.order_id = %s AND op.product_id = %s AND p.seller_id = %s FOR UPDATE",
                    (order_id, product_id, seller.member_id))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no line of product {product_id} in order {order_id} among your products")
        current, wanted = row["delivery_status"], change.deliveryStatus
        allowed = (current in DELIVERY_FLOW and DELIVERY_FLOW.index(current) + 1 < len(DELIVERY_FLOW)
                   and DELIVERY_FLOW[DELIVERY_FLOW.index(current) + 1] == wanted)
        if row["status"] != "CONFIRMED" or not allowed:
            raise Conflict(f"a {current} line of a {row['status']} order cannot become {wanted}", code="INVALID_STATE",
                           details={"deliveryStatus": current, "status": row["status"]})
        cur.execute("UPDATE order_products SET delivery_status = %s, delivered_at = %s WHERE order_id = %s "
                    "AND product_id = %s",
                    (wanted, db_now() if wanted == DeliveryStatus.DELIVERED else None, order_id, product_id))
    return {"orderId": order_id, **_item(product_id, row["count"], row["price"], wanted)}
