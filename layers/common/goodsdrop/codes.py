"""Named codes and statuses: every bare number or string GoodsDrop exchanges with Redis and MySQL.

- The Lua scripts' return codes and arguments (`lua/*.lua`): each script's header comment names
  the constants it answers with, as `Class.NAME = value` (tests/unit/test_codes.py checks that
  the headers and this module agree).
- The statuses stored in Redis (the order record, the Idempotency-Key's state) and in MySQL
  (orders, the reservation ledger, payments, order lines).
- The answers the reservation core hands its callers (`ReserveKind`, `PassKind`).

The enums are `IntEnum` / `StrEnum`: a member equals its bare value, so what Redis or MySQL
returns compares directly (`code == SettleCode.REFUSED`), and a member passed to Redis, MySQL or
JSON is written as its value. Imports nothing of goodsdrop.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

# ---------------------------------------------------------------------------- Lua return codes and arguments


class TakeCode(IntEnum):
    """`lua/take_units.lua`: the first value when the shard took nothing (else the units held there)."""

    NOT_LOADED = -2  # the shard's stock is not in Redis: load it and call again
    HOLD_ENDED = -4  # the order's hold already ended in this shard (released or sold): take nothing
    CLOSED = -5  # the product is off sale (unlisted or deleted): no new hold


class SettleCode(IntEnum):
    """`lua/settle_hold.lua` and `lua/restock_units.lua`: what ending a hold (or restocking) did."""

    REFUSED = -3  # a sale ("C") of units already released ("X"): the caller must not sell them
    ALREADY = 0  # done before (the marker says so): nothing changed
    APPLIED = 1  # done now
    NOT_CACHED = 2  # the stock is not cached: only the marker was written, the next load computes it


class ShiftCode(IntEnum):
    """`lua/shift_available.lua`: whether a shard's `available` could be changed."""

    SHIFTED = 1
    NOT_CACHED = 2  # the shard's stock is not cached: nothing changed


class RebuildCode(IntEnum):
    """`lua/load_stock.lua`: the first value when the rebuilt shard was not written (else its available)."""

    TOKEN_LOST = -9  # the rebuild's token is gone: Redis lost its data meanwhile, recover first


class CartLineCode(IntEnum):
    """`lua/change_cart_line.lua`: a refused change (else the line's new quantity)."""

    OVER_MEMBER_LIMIT = -1
    CART_FULL = -2
    OVER_LINE_MAXIMUM = -3
    NOT_IN_CART = -4  # "set" on a product the cart does not hold (removed meanwhile)
    CHECKOUT_PENDING = -5  # an order of the cart is pending: its lines are being bought


class CheckoutCode(IntEnum):
    """`lua/begin_checkout.lua`: the first element of the answer."""

    TAKEN = 1  # the cart is this order's checkout now
    SAME = 0  # a retry of the request whose checkout is pending
    BUSY = -1  # another order of the cart is pending


class CheckoutEnd(StrEnum):
    """`lua/end_checkout.lua`'s ARGV[2]: how the cart's order ended."""

    BOUGHT = "bought"  # confirmed: the bought units leave the cart
    RELEASED = "released"  # failed, expired or cancelled: the cart keeps its lines


class CartLineChange(StrEnum):
    """`lua/change_cart_line.lua`'s ARGV[2]: add to the line, or set it."""

    ADD = "add"
    SET = "set"


class ClaimAnswer(StrEnum):
    """`lua/claim_order.lua` and `lua/record_refusal.lua`: the first element of the answer."""

    CLAIMED = "CLAIMED"
    REFUSED = "REFUSED"  # NOT_ON_SALE / PURCHASE_LIMIT_EXCEEDED / OUT_OF_STOCK, stored under the key
    REPLAY = "REPLAY"  # the key was used before with the same request
    REUSED = "REUSED"  # the key was used before with another request


class SettleTarget(StrEnum):
    """`lua/settle_hold.lua`'s ARGV[2], and the first letter of its settled markers ("C:<units>")."""

    SOLD = "C"
    RELEASED = "X"


class HeldChange(StrEnum):
    """`lua/return_held.lua`'s ARGV[1]: give a line's units back to `held`, or undo that."""

    RETURN = "return"
    UNDO = "undo"


# ---------------------------------------------------------------------------- stored statuses


class IdempotencyState(StrEnum):
    """An Idempotency-Key's record in Redis (`keys.order_idempotency`): its `state` field."""

    IN_FLIGHT = "IN_FLIGHT"  # claimed; the answer is not recorded yet
    DONE = "DONE"  # the answer (`outcome`) is recorded


class RecordStatus(StrEnum):
    """The Redis order record's `status` (`keys.order_record`) while and after the saga runs."""

    PENDING = "PENDING"
    REFUSED = "REFUSED"  # the claim was undone: its units could not be taken
    ABORTED = "ABORTED"  # undone: OrderRequested could not be published, or the stock stayed unloadable
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"  # the buyer cancelled it while it was pending


class OrderStatus(StrEnum):
    """`orders.status` in MySQL, as the API shows it."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class DeliveryStatus(StrEnum):
    """`order_products.delivery_status` in MySQL: where one order line is, as buyer and seller see it."""

    PREPARING = "PREPARING"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RETURN_REQUESTED = "RETURN_REQUESTED"  # the buyer asked within the return window; the seller decides
    RETURNED = "RETURNED"  # the seller accepted the returned goods: refunded and restocked
    RETURN_REFUSED = "RETURN_REFUSED"  # the seller refused the return (final)
    CANCELLED = "CANCELLED"


class LedgerState(StrEnum):
    """`reservations.state` in MySQL (goodsdrop.ledger)."""

    OPEN = "OPEN"  # units held, not sold yet
    CONSUMED = "CONSUMED"  # sold
    RELEASED = "RELEASED"  # given back (with a reason)


class SaleStatus(StrEnum):
    """A product's sale status as the API shows it (and search filters by)."""

    ON_SALE = "on_sale"
    UPCOMING = "upcoming"  # before its sales start
    SOLD_OUT = "sold_out"


class CartLineStatus(StrEnum):
    """A cart line's status where it differs from its product's `SaleStatus`."""

    INSUFFICIENT_STOCK = "insufficient_stock"  # on sale, but fewer units left than the line holds


class PaymentStatus(StrEnum):
    """`payments.status` in MySQL."""

    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    REFUNDED = "REFUNDED"


# ---------------------------------------------------------------------------- the reservation core's answers


class ReserveKind(StrEnum):
    """`ReserveResult.kind`: what `goodsdrop.reservations.reserve` did."""

    RESERVED = "RESERVED"
    REFUSED = "REFUSED"
    REPLAY = "REPLAY"
    REUSED = "REUSED"


class PassKind(StrEnum):
    """What one pass of `goodsdrop.reservations.take_lines` over an order's lines got."""

    TAKEN = "TAKEN"  # every line complete
    SHORT = "SHORT"  # a line could not be completed; everything taken was given back
    LOAD = "LOAD"  # a shard's stock is not in Redis: load the product and pass again
    ENDED = "ENDED"  # the order's hold already ended in a shard: nothing more is taken


class Role(StrEnum):
    """`members.role`: what the authorizer hands handlers as the caller's role."""

    MEMBER = "member"
    SELLER = "seller"
    OPERATOR = "operator"  # watches every drop (granted by hand: README, "Operators")
