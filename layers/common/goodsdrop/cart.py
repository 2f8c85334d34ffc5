"""Carts: one Redis hash per member (productId → quantity), kept 7 days after its last change.

- Every change goes through one Lua script (lua/cart_change.lua) that checks the line limits and
  the number of lines and writes in the same atomic step, then renews the sliding TTL; two tabs
  adding at once never lose an update and never pass a limit together.
- A line holds 1..99 units and never more than the product's `perMemberLimit`
  (409 `PURCHASE_LIMIT_EXCEEDED`); 99 itself is the cart's own cap (409 `QUANTITY_LIMIT_EXCEEDED`).
  A cart holds at most 50 distinct products (409 `CART_FULL`).
- The view reads each product's current name, price and live stock; a product that was deleted
  or unlisted since is dropped from the cart and reported once in `notices`.
- Reading does not renew the TTL; only the member's changes do.

`cart_lines` and `clear_cart` are what the orders module uses to order `fromCart`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.errors import Conflict, NotFound, ValidationError
from goodsdrop.products import MAX_ID, get_product
from goodsdrop.scripts import script
from goodsdrop.stock import read_stock

CART_TTL_SECONDS = 7 * 24 * 60 * 60
MAX_LINE_QUANTITY = 99
MAX_LINES = 50

# Outcomes of lua/cart_change.lua.
_DONE, _OVER_LINE_LIMIT, _CART_FULL, _NOT_IN_CART = 0, 1, 2, 3


# ---------------------------------------------------------------------------------- requests
def _product_id(value: Any) -> int:
    """A product id given as a string of digits (the contract's form) or a plain integer."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a product id (a string of digits)")
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not 1 <= int(text) <= MAX_ID:
        raise ValueError("must be a product id (a string of digits)")
    return int(text)


ProductId = Annotated[int, BeforeValidator(_product_id)]


class AddCartItem(BaseModel):
    """Body of `POST /cart/items`: add `quantity` units of a product to the cart."""

    model_config = ConfigDict(extra="ignore")

    productId: ProductId  # noqa: N815 - the contract's field name
    quantity: StrictInt = Field(ge=1, le=MAX_LINE_QUANTITY)


class SetCartItem(BaseModel):
    """Body of `PATCH /cart/items/{productId}`: the line's new quantity (0 removes it)."""

    model_config = ConfigDict(extra="ignore")

    quantity: StrictInt = Field(ge=0, le=MAX_LINE_QUANTITY)


def parse_cart_product_id(raw: str | None) -> int:
    """The `{productId}` path segment as a product id, else 400 naming `productId`."""
    try:
        return _product_id(raw)
    except ValueError as err:
        raise ValidationError("productId must be a product id", details={"fields": {"productId": str(err)}}) from None


def _check_quantity(quantity: int, minimum: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not minimum <= quantity <= MAX_LINE_QUANTITY:
        bound = f"an integer between {minimum} and {MAX_LINE_QUANTITY}"
        raise ValidationError(f"quantity must be {bound}", details={"fields": {"quantity": f"must be {bound}"}})


# -------------------------------------------------------------------------------------- view
@dataclass(frozen=True)
class CartLine:
    """One product in a cart, priced and checked against the live stock now."""

    product_id: int
    name: str
    price: int
    quantity: int
    stock: int
    status: str  # on_sale | upcoming | sold_out | insufficient_stock
    per_member_limit: int | None

    @property
    def line_total(self) -> int:
        return self.price * self.quantity

    def to_json(self) -> dict[str, Any]:
        return {
            "productId": str(self.product_id),
            "name": self.name,
            "price": self.price,
            "quantity": self.quantity,
            "lineTotal": self.line_total,
            "stock": self.stock,
            "status": self.status,
            "perMemberLimit": self.per_member_limit,
        }


@dataclass(frozen=True)
class CartNotice:
    """Something the member should know about their cart (e.g. a product that went away)."""

    product_id: int
    quantity: int
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"productId": str(self.product_id), "quantity": self.quantity, "code": self.code,
                "message": self.message}


@dataclass(frozen=True)
class CartView:
    """A member's cart as `GET /cart` shows it."""

    lines: list[CartLine]
    notices: list[CartNotice] = field(default_factory=list)
    expires_in_seconds: int | None = None

    @property
    def total(self) -> int:
        return sum(line.line_total for line in self.lines)

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        expires_at = None
        if self.expires_in_seconds is not None and self.lines:
            moment = (now or datetime.now(UTC)) + timedelta(seconds=self.expires_in_seconds)
            expires_at = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
        return {
            "items": [line.to_json() for line in self.lines],
            "total": self.total,
            "totalQuantity": sum(line.quantity for line in self.lines),
            "notices": [notice.to_json() for notice in self.notices],
            "expiresAt": expires_at,
        }


def line_status(quantity: int, stock: int, sale_status: str) -> str:
    """The product's sale status, or `insufficient_stock` when on sale with fewer units than wanted."""
    if sale_status == "on_sale" and quantity > stock:
        return "insufficient_stock"
    return sale_status


def _parse_lines(raw: dict[str, str]) -> tuple[list[tuple[int, int]], list[str]]:
    """(productId, quantity) pairs sorted by product id, and the fields that are not valid lines."""
    lines, broken = [], []
    for product_field, quantity_text in raw.items():
        try:
            product_id, quantity = _product_id(product_field), int(quantity_text)
        except ValueError:
            broken.append(product_field)
            continue
        if quantity < 1:
            broken.append(product_field)
            continue
        lines.append((product_id, quantity))
    return sorted(lines), broken


def view_cart(member_id: str | int) -> CartView:
    """The member's cart with current names, prices and stock status; gone products are dropped.

    A product that was deleted or unlisted is removed from the cart and reported once as a
    `PRODUCT_UNAVAILABLE` notice. Reading does not renew the cart's TTL.
    """
    r = redis_client()
    with r.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.cart(member_id))
        pipe.ttl(keys.cart(member_id))
        raw, ttl = pipe.execute()
    pairs, broken = _parse_lines(raw)
    lines: list[CartLine] = []
    notices: list[CartNotice] = []
    gone: list[str] = list(broken)
    for product_id, quantity in pairs:
        try:
            product = get_product(product_id)
            level = read_stock(product_id)
        except NotFound:
            gone.append(str(product_id))
            notices.append(CartNotice(product_id, quantity, "PRODUCT_UNAVAILABLE",
                                      "this product is no longer available and was removed from your cart"))
            continue
        lines.append(CartLine(product_id, product.name, product.price, quantity, level.stock,
                              line_status(quantity, level.stock, level.status), product.per_member_limit))
    if gone:
        r.hdel(keys.cart(member_id), *gone)
    return CartView(lines, notices, ttl if ttl >= 0 else None)


# ----------------------------------------------------------------------------------- changes
def _change(member_id: str | int, product_id: int, change: str, quantity: int, line_limit: int) -> tuple[int, int]:
    outcome, value = script("cart_change")(
        keys=[keys.cart(member_id)],
        args=[product_id, change, quantity, line_limit, MAX_LINES, CART_TTL_SECONDS],
    )
    return int(outcome), int(value)


def _line_limit(per_member_limit: int | None) -> int:
    return MAX_LINE_QUANTITY if per_member_limit is None else min(MAX_LINE_QUANTITY, per_member_limit)


def _refuse_over_limit(product_id: int, per_member_limit: int | None, in_cart: int, wanted: int) -> Conflict:
    details = {"productId": str(product_id), "inCart": in_cart, "requested": wanted}
    if per_member_limit is not None and per_member_limit <= MAX_LINE_QUANTITY:
        return Conflict(f"at most {per_member_limit} of this product per member", code="PURCHASE_LIMIT_EXCEEDED",
                        details=details | {"limit": per_member_limit})
    return Conflict(f"a cart line holds at most {MAX_LINE_QUANTITY} units", code="QUANTITY_LIMIT_EXCEEDED",
                    details=details | {"limit": MAX_LINE_QUANTITY})


def _refuse_full(lines: int) -> Conflict:
    return Conflict(f"a cart holds at most {MAX_LINES} different products", code="CART_FULL",
                    details={"lines": lines, "limit": MAX_LINES})


def add_to_cart(member_id: str | int, product_id: int, quantity: int) -> CartView:
    """Add `quantity` (1..99) units of a product to what the cart holds; returns the cart.

    404 for an unknown product; 409 `PURCHASE_LIMIT_EXCEEDED` / `QUANTITY_LIMIT_EXCEEDED` when the
    line would pass the product's limit or 99, 409 `CART_FULL` for a 51st product. Atomic.
    """
    _check_quantity(quantity, 1)
    product = get_product(product_id)
    outcome, value = _change(member_id, product_id, "add", quantity, _line_limit(product.per_member_limit))
    if outcome == _OVER_LINE_LIMIT:
        raise _refuse_over_limit(product_id, product.per_member_limit, value, value + quantity)
    if outcome == _CART_FULL:
        raise _refuse_full(value)
    return view_cart(member_id)


def set_cart_quantity(member_id: str | int, product_id: int, quantity: int) -> CartView:
    """Set the quantity (0..99) of a line already in the cart; 0 removes it. Returns the cart.

    404 when the product is not in the cart (or, for a quantity above 0, no longer exists);
    409 `PURCHASE_LIMIT_EXCEEDED` / `QUANTITY_LIMIT_EXCEEDED` above the line's limit.
    """
    _check_quantity(quantity, 0)
    per_member_limit = None
    if quantity > 0:
        per_member_limit = get_product(product_id).per_member_limit
    outcome, value = _change(member_id, product_id, "set", quantity, _line_limit(per_member_limit))
    if outcome == _NOT_IN_CART:
        raise NotFound(f"product {product_id} is not in your cart", details={"productId": str(product_id)})
    if outcome == _OVER_LINE_LIMIT:
        raise _refuse_over_limit(product_id, per_member_limit, value, quantity)
    return view_cart(member_id)


def remove_from_cart(member_id: str | int, product_id: int) -> None:
    """Remove a product's line from the cart (nothing happens when it is not there)."""
    _change(member_id, product_id, "remove", 0, MAX_LINE_QUANTITY)


def clear_cart(member_id: str | int) -> None:
    """Empty the member's cart (after an order placed from it, or on `DELETE /cart`)."""
    redis_client().delete(keys.cart(member_id))


def cart_lines(member_id: str | int) -> list[tuple[int, int]]:
    """The raw lines of the member's cart as (productId, quantity), sorted by product id.

    No product is looked up: a line may name a product that has since been deleted or unlisted,
    so the caller (placing an order) checks every product as it would for any order.
    """
    pairs, _ = _parse_lines(redis_client().hgetall(keys.cart(member_id)))
    return pairs
