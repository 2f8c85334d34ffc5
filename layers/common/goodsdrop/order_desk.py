"""The seller's order desk: the lines of their products that buyers ordered, and return decisions.

- `list_seller_lines` pages a seller's own order lines (never another seller's: the lines are
  selected through `products.seller_id`), newest order first, filtered by delivery status, product
  and order date. Lines of confirmed orders are shown, and the cancelled lines of cancelled ones
  (so a seller sees what not to ship); orders still being placed or that failed never reach here.
- `decide_return` is the seller's answer to a buyer's return request (`goodsdrop.orders.request_return`):
  accepting, on receipt of the goods, marks the line RETURNED and writes the refund-and-restock
  request to the outbox in the same transaction (the saga's `refund_and_restock` refunds and
  restocks it once); refusing marks it RETURN_REFUSED. A decision is final; sending the same one
  again answers the same and changes nothing (a double accept refunds once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from goodsdrop import outbox
from goodsdrop.callers import Caller
from goodsdrop.clients import fetch_one, mysql_cursor
from goodsdrop.clock import db_now, from_db, iso, to_db
from goodsdrop.codes import DeliveryStatus, OrderStatus
from goodsdrop.errors import Conflict, NotFound, ValidationError
from goodsdrop.fields import CamelCaseBody, is_id
from goodsdrop.orders import give_back, given_back
from goodsdrop.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, int_param, page_body
from goodsdrop.products import MAX_ID

STATUSES = tuple(DeliveryStatus)
# The orders whose lines a seller handles: confirmed ones, and cancelled ones (their lines say CANCELLED).
DESK_ORDER_STATUSES = (OrderStatus.CONFIRMED, OrderStatus.CANCELLED)
EARLIEST_DATE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(2100, 1, 1, tzinfo=UTC)


class ReturnDecision(CamelCaseBody):
    """Body of PUT /seller/orders/{id}/items/{productId}/return: accept (goods received) or refuse."""

    decision: Annotated[Literal["ACCEPT", "REFUSE"], Field(description="ACCEPT refunds and restocks; REFUSE ends it")]


@dataclass(frozen=True)
class DeskQuery:
    """A validated GET /seller/orders: every filter already checked."""

    status: DeliveryStatus | None = None
    product_id: int | None = None
    ordered_from: datetime | None = None  # inclusive
    ordered_before: datetime | None = None  # exclusive
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE


def _moment(raw: str, *, end_of_day: bool) -> datetime:
    """`YYYY-MM-DD` (a UTC day; as an upper bound, the whole day counts) or an ISO-8601 date-time with a zone."""
    text = raw.strip()
    moment: datetime | None
    if len(text) == 10:
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError("must be a date YYYY-MM-DD or an ISO-8601 date-time with a zone") from None
        moment = day + timedelta(days=1) if end_of_day else day
    else:
        try:
            moment = datetime.fromisoformat(text) if 16 <= len(text) <= 40 else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("must be a date YYYY-MM-DD or an ISO-8601 date-time with a zone (Z or +09:00)")
    assert moment is not None
    if not EARLIEST_DATE <= moment <= LATEST_DATE:
        raise ValueError("must be between the years 2000 and 2100")
    return moment.astimezone(UTC)


def parse_desk_query(params: Mapping[str, str | None]) -> DeskQuery:
    """Check GET /seller/orders's parameters; 400 `VALIDATION_ERROR` naming every bad one."""
    errors: dict[str, str] = {}
    page = int_param(params, "page", 1, MAX_PAGE, errors) or 1
    size = int_param(params, "size", 1, MAX_PAGE_SIZE, errors) or DEFAULT_PAGE_SIZE
    product_id = int_param(params, "productId", 1, MAX_ID, errors)
    if product_id is not None and not is_id(params.get("productId")):
        errors["productId"], product_id = "must be an id: a positive integer without leading zeros", None
    raw_status = params.get("status") or None
    status = None
    if raw_status is not None:
        if raw_status in STATUSES:
            status = DeliveryStatus(raw_status)
        else:
            errors["status"] = f"must be one of {', '.join(STATUSES)}"
    bounds: dict[str, datetime] = {}
    for name, end_of_day in (("from", False), ("to", True)):
        raw = params.get(name)
        if raw:
            try:
                bounds[name] = _moment(raw, end_of_day=end_of_day)
            except ValueError as err:
                errors[name] = str(err)
    if "from" in bounds and "to" in bounds and bounds["from"] >= bounds["to"]:
        errors["from"] = "must be before to"
    if errors:
        raise ValidationError(f"invalid parameter(s): {', '.join(sorted(errors))}", details={"fields": errors})
    return DeskQuery(status, product_id, bounds.get("from"), bounds.get("to"), page, size)


_LINE_COLUMNS = ("op.order_id, op.product_id, op.count, op.price, op.delivery_status, op.delivered_at, "
                 "op.return_requested_at, op.return_decided_at, op.restocked_at, o.created_at AS ordered_at, "
                 "o.status AS order_status, p.name AS product_name, m.name AS buyer_name, m.address AS buyer_address, "
                 "m.phone AS buyer_phone")
_LINE_JOINS = ("FROM order_products op JOIN products p ON p.id = op.product_id JOIN orders o ON o.id = op.order_id "
               "JOIN members m ON m.id = o.member_id")


def _line_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "orderId": row["order_id"], "productId": str(row["product_id"]), "productName": row["product_name"],
        "quantity": int(row["count"]), "price": int(row["price"]), "lineTotal": int(row["count"]) * int(row["price"]),
        "deliveryStatus": row["delivery_status"], "orderStatus": row["order_status"],
        "orderedAt": iso(from_db(row["ordered_at"])), "deliveredAt": iso(from_db(row["delivered_at"])),
        "returnRequestedAt": iso(from_db(row["return_requested_at"])),
        "returnDecidedAt": iso(from_db(row["return_decided_at"])),
        "restocked": row["restocked_at"] is not None,
        "shipTo": {"name": row["buyer_name"], "address": row["buyer_address"], "phone": row["buyer_phone"]},
    }


def list_seller_lines(seller: Caller, query: DeskQuery) -> dict[str, Any]:
    """The seller's own order lines matching `query`, newest order first, paged."""
    marks = ", ".join(["%s"] * len(DESK_ORDER_STATUSES))
    where, args = ["p.seller_id = %s", f"o.status IN ({marks})"], [int(seller.member_id), *DESK_ORDER_STATUSES]
    if query.status is not None:
        where.append("op.delivery_status = %s")
        args.append(query.status)
    if query.product_id is not None:
        where.append("op.product_id = %s")
        args.append(query.product_id)
    if query.ordered_from is not None:
        where.append("o.created_at >= %s")
        args.append(to_db(query.ordered_from))
    if query.ordered_before is not None:
        where.append("o.created_at < %s")
        args.append(to_db(query.ordered_before))
    condition = " AND ".join(where)
    with mysql_cursor() as cur:
        cur.execute(f"SELECT COUNT(*) AS n {_LINE_JOINS} WHERE {condition}", args)
        total = int(fetch_one(cur)["n"])
        rows: list[dict[str, Any]] = []
        offset = (query.page - 1) * query.size
        if offset < total:
            cur.execute(f"SELECT {_LINE_COLUMNS} {_LINE_JOINS} WHERE {condition} "
                        "ORDER BY o.created_at DESC, op.order_id DESC, op.product_id LIMIT %s OFFSET %s",
                        [*args, query.size, offset])
            rows = list(cur.fetchall())
    return page_body([_line_doc(row) for row in rows], query.page, query.size, total)


def _seller_line(cur: Any, seller: Caller, order_id: str, product_id: int) -> dict[str, Any]:
    cur.execute(f"SELECT {_LINE_COLUMNS}, o.member_id {_LINE_JOINS} WHERE op.order_id = %s AND op.product_id = %s "
                "AND p.seller_id = %s", (order_id, product_id, int(seller.member_id)))
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"no line of product {product_id} in order {order_id} among your products")
    return row


def decide_return(seller: Caller, order_id: str, product_id: int, body: ReturnDecision) -> dict[str, Any]:
    """Accept (refund and restock follow, once) or refuse a line's return request; the line as the desk shows it."""
    accept = body.decision == "ACCEPT"
    outcome = DeliveryStatus.RETURNED if accept else DeliveryStatus.RETURN_REFUSED
    with outbox.transaction() as tx:
        row = _seller_line(tx.cursor, seller, order_id, product_id)  # whose line it is never changes
        # Only the line's own row is locked: decisions on one line queue here, nothing else waits on them.
        tx.cursor.execute("SELECT delivery_status FROM order_products WHERE order_id = %s AND product_id = %s "
                          "FOR UPDATE", (order_id, product_id))
        current = fetch_one(tx.cursor)["delivery_status"]  # the row _seller_line just found
        decided_now = current != outcome  # decided so before: the same answer, no second refund
        if decided_now and current != DeliveryStatus.RETURN_REQUESTED:
            raise Conflict(f"a {current} line has no return request to {body.decision.lower()}",
                           code="NO_RETURN_REQUESTED", details={"deliveryStatus": current})
        line = {"product_id": row["product_id"], "count": row["count"], "price": row["price"]}
        if decided_now:
            tx.cursor.execute("UPDATE order_products SET delivery_status = %s, return_decided_at = %s "
                              "WHERE order_id = %s AND product_id = %s", (outcome, db_now(), order_id, product_id))
            if accept:
                give_back(tx, "OrderLineReturned", order_id, str(row["member_id"]), [line])
    if decided_now and accept:
        given_back(order_id, [line])
    with mysql_cursor() as cur:
        return _line_doc(_seller_line(cur, seller, order_id, product_id))
