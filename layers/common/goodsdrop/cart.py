"""The cart: one Redis hash per member (productId → quantity), kept 7 days after its last change.

Every change is one Lua script (lua/change_cart_line.lua) that applies the rules and renews the
TTL atomically, so two tabs adding at once never lose an update. Rules: a quantity is 1 to 99, a
line never exceeds the product's per-member limit (409 PURCHASE_LIMIT_EXCEEDED), at most 50
distinct lines (409 CART_FULL), unknown products are 404. Reading the cart shows each line's
current name, price, line total and stock status; lines whose product is gone are dropped with a
notice instead of breaking the cart. The per-member limit counts the units the member already holds
or bought (`keys.member_held`, kept by the reservation core on the same slot), so the cart refuses
what checkout would refuse.

Checkout (`POST /orders {"fromCart": true}`) does not empty the cart: `begin_checkout` marks the cart
as being bought by one order and snapshots its lines (lua/begin_checkout.lua), in one step, so a
second order of the same lines is refused (409 CHECKOUT_PENDING) and the cart cannot change under
the order. When the order ends, `end_checkout` takes the bought units out of the cart (CONFIRMED) or
leaves the lines where they were (FAILED, EXPIRED, cancelled) and removes the marker. The marker
outlives the reservation by `CHECKOUT_GRACE_SECONDS`, so a saga that never ends cannot lock the cart
for good.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, StrictInt

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.codes import CartLineChange, CartLineCode, CartLineStatus, CheckoutCode, CheckoutEnd, SaleStatus
from goodsdrop.errors import Conflict, NotFound, ValidationError
from goodsdrop.fields import MAX_LINE_QUANTITY, CamelCaseBody, IdText, LineQuantity
from goodsdrop.products import get_product, parse_product_id
from goodsdrop.scripts import script
from goodsdrop.settings import settings
from goodsdrop.stock import read_stock

CART_TTL_SECONDS = 7 * 24 * 3600
MAX_QUANTITY = MAX_LINE_QUANTITY
MAX_LINES = 50
CHECKOUT_GRACE_SECONDS = 300  # the marker outlives the reservation by this much (then the expiry job has run)


class NewCartLine(CamelCaseBody):
    """Body of POST /cart/items: adds `quantity` to what the cart holds."""

    product_id: IdText
    quantity: LineQuantity


class CartLineQuantity(CamelCaseBody):
    """Body of PATCH /cart/items/{productId}: sets the quantity (0 removes the line)."""

    quantity: Annotated[StrictInt, Field(ge=0, le=MAX_QUANTITY)]


def parse_cart_product_id(raw: str | None) -> int:
    """A product id given to the cart (body or path), else 400 naming `productId`."""
    try:
        return parse_product_id(raw)
    except ValidationError:
        raise ValidationError("productId must be a positive integer",
                              details={"fields": {"productId": "malformed"}}) from None


def _checkout_pending(member_id: int | str) -> Conflict:
    order_id = redis_client().hget(keys.cart_checkout(member_id), "order")
    return Conflict("an order of this cart is still being placed; the cart changes once it is confirmed or failed",
                    code="CHECKOUT_PENDING", details={"orderId": order_id, "location": f"/orders/{order_id}"})


def _change(member_id: str, product_id: int, mode: CartLineChange, quantity: int, per_member_limit: int | None) -> int:
    result = int(script("change_cart_line")(
        keys=[keys.cart(member_id), keys.member_held(member_id), keys.cart_checkout(member_id)],
        args=[product_id, mode, quantity, per_member_limit or 0, MAX_QUANTITY, MAX_LINES, CART_TTL_SECONDS],
    ))
    if result == CartLineCode.CHECKOUT_PENDING:
        raise _checkout_pending(member_id)
    if result == CartLineCode.OVER_MEMBER_LIMIT:
        held = int(redis_client().hget(keys.member_held(member_id), str(product_id)) or 0)
        raise Conflict(f"at most {per_member_limit} of this product per member, counting the {held} you hold "
                       "or bought", code="PURCHASE_LIMIT_EXCEEDED",
                       details={"productId": str(product_id), "perMemberLimit": per_member_limit, "held": held})
    if result == CartLineCode.CART_FULL:
        raise Conflict(f"a cart holds at most {MAX_LINES} different products", code="CART_FULL",
                       details={"maxLines": MAX_LINES})
    if result == CartLineCode.OVER_LINE_MAXIMUM:
        raise ValidationError(f"a line holds at most {MAX_QUANTITY} units",
                              details={"fields": {"quantity": f"the line would exceed {MAX_QUANTITY}"}})
    if result == CartLineCode.NOT_IN_CART:
        raise NotFound(f"product {product_id} is not in your cart", details={"productId": str(product_id)})
    return result


def add_to_cart(member_id: str, line: NewCartLine) -> dict[str, Any]:
    """Add units of a product to the member's cart; returns the cart."""
    product_id = parse_cart_product_id(line.product_id)
    product = get_product(product_id)  # 404 for unknown or unlisted products
    _change(member_id, product_id, CartLineChange.ADD, line.quantity, product.per_member_limit)
    return view_cart(member_id)


def set_cart_quantity(member_id: str, product_id: int, quantity: int) -> dict[str, Any]:
    """Set a line's quantity (0 removes it); 404 when the product is not in the cart.

    Whether the line exists is checked inside the script, atomically with the change. Setting 0
    needs no product lookup, so a line whose product was unlisted can still be zeroed.
    """
    per_member_limit = get_product(product_id).per_member_limit if quantity > 0 else None
    _change(member_id, product_id, CartLineChange.SET, quantity, per_member_limit)
    return view_cart(member_id)


def remove_from_cart(member_id: str, product_id: int) -> None:
    """Remove one line; 404 when it is not in the cart."""
    r = redis_client()
    if not r.hdel(keys.cart(member_id), str(product_id)):
        raise NotFound(f"product {product_id} is not in your cart")
    r.expire(keys.cart(member_id), CART_TTL_SECONDS)


def clear_cart(member_id: int | str) -> None:
    """Empty the member's cart."""
    redis_client().delete(keys.cart(member_id))


def _valid_lines(raw: dict[str, Any]) -> list[tuple[int, int]]:
    lines = []
    for product, quantity in raw.items():
        if str(product).isdigit() and str(quantity).isdigit() and int(quantity) > 0:
            lines.append((int(product), int(quantity)))
    return sorted(lines)


def cart_lines(member_id: int | str) -> list[tuple[int, int]]:
    """The member's cart as (product id, quantity) pairs, by product id."""
    return _valid_lines(redis_client().hgetall(keys.cart(member_id)))


def begin_checkout(member_id: int | str, order_id: str, key_digest: str) -> tuple[bool, list[tuple[int, int]]]:
    """Mark the cart as being bought by `order_id`; (taken now, the cart's lines at that moment).

    A retry of the request that holds the marker (same Idempotency-Key) gets the marker's snapshot
    and False; another order while one is pending is 409 CHECKOUT_PENDING.
    """
    code, *rest = script("begin_checkout")(
        keys=[keys.cart_checkout(member_id), keys.cart(member_id)],
        args=[order_id, key_digest, settings.reservation_ttl_seconds + CHECKOUT_GRACE_SECONDS])
    if int(code) == CheckoutCode.BUSY:
        raise _checkout_pending(member_id)
    return int(code) == CheckoutCode.TAKEN, _valid_lines(json.loads(rest[1]))


def end_checkout(member_id: int | str, order_id: str, how: CheckoutEnd) -> bool:
    """The cart's order `order_id` ended: bought units leave the cart (BOUGHT), else it keeps its lines.

    Does nothing (False) when the cart's marker is not this order's: not a cart order, or ended before.
    """
    return bool(script("end_checkout")(keys=[keys.cart_checkout(member_id), keys.cart(member_id)],
                                       args=[order_id, how]))


def adopt_checkout(member_id: int | str, order_id: str, key_digest: str) -> None:
    """A retry of a cart order started a new order (its first attempt failed): the checkout is this order's."""
    r = redis_client()
    if r.hget(keys.cart_checkout(member_id), "digest") == key_digest:
        r.hset(keys.cart_checkout(member_id), "order", order_id)


def pending_checkout(member_id: int | str) -> str | None:
    """The order id of the cart's pending checkout, if any."""
    return redis_client().hget(keys.cart_checkout(member_id), "order")


def _line_status(quantity: int, stock: int, status: str) -> str:
    if status == SaleStatus.ON_SALE and quantity > stock:
        return CartLineStatus.INSUFFICIENT_STOCK
    return status


def view_cart(member_id: str) -> dict[str, Any]:
    """The cart with current names, prices, line totals and stock status, and the cart total."""
    items, notices, gone = [], [], []
    for product_id, quantity in cart_lines(member_id):
        try:
            product = get_product(product_id)
            level = read_stock(product_id)
        except NotFound:
            gone.append(str(product_id))
            notices.append({"productId": str(product_id), "quantity": quantity, "code": "PRODUCT_UNAVAILABLE",
                            "message": "this product is no longer available and was removed from your cart"})
            continue
        items.append({
            "productId": str(product_id), "name": product.name, "price": product.price, "quantity": quantity,
            "lineTotal": product.price * quantity, "stock": level.stock,
            "status": _line_status(quantity, level.stock, level.status),
            "perMemberLimit": product.per_member_limit,
        })
    if gone:
        redis_client().hdel(keys.cart(member_id), *gone)
    ttl = redis_client().ttl(keys.cart(member_id))
    checkout = pending_checkout(member_id)
    return {"items": items, "total": sum(i["lineTotal"] for i in items), "notices": notices,
            "expiresInSeconds": ttl if ttl > 0 else None,
            "checkout": None if checkout is None else {"orderId": checkout, "location": f"/orders/{checkout}"}}
