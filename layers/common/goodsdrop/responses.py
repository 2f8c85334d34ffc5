"""The API's response bodies, as pydantic models: the typed half of the contract.

Each route declares what it answers with its return annotation, `-> Response[Member]` (Powertools
validates the body against the model on every answer: a body the model does not allow is our bug,
a 500 `INTERNAL_ERROR` logged whole), and `python -m contract.openapi` writes these models into
the OpenAPI document (functions/openapi/openapi.json). Field names are the API's (camelCase).
Models allow extra fields: the document promises at least these.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Doc):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="stable machine-readable code")
    message: str
    details: dict[str, Any]


class Error(_Doc):
    """The contract's one error shape."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorBody


class TokenPair(_Doc):
    accessToken: str  # noqa: N815
    refreshToken: str  # noqa: N815
    expiresIn: int  # noqa: N815


class SellerProfile(_Doc):
    shopName: str  # noqa: N815
    address: str
    contactNumber: str  # noqa: N815
    registrationNumber: str  # noqa: N815
    createdAt: str | None  # noqa: N815


class Member(_Doc):
    id: str
    email: str
    name: str
    phone: str | None
    address: str | None
    emailVerified: bool  # noqa: N815
    role: Literal["member", "seller"]
    createdAt: str | None  # noqa: N815
    seller: SellerProfile | None


class SignUpAccepted(_Doc):
    """The same for a new and a registered email: the mail tells the address's owner which it was."""

    accepted: bool
    email: str


class EmailVerified(_Doc):
    verified: bool
    member: Member


class MailSent(_Doc):
    sent: bool


class PasswordChanged(_Doc):
    passwordChanged: bool  # noqa: N815
    otherSessionsRevoked: int  # noqa: N815


SaleStatus = Literal["on_sale", "upcoming", "sold_out"]


class Product(_Doc):
    id: str
    sellerId: str  # noqa: N815
    name: str
    description: str
    price: int
    salesStartAt: str | None  # noqa: N815
    perMemberLimit: int | None  # noqa: N815
    createdAt: str | None  # noqa: N815
    updatedAt: str | None  # noqa: N815
    stock: int
    status: SaleStatus
    listed: bool | None = Field(None, description="the seller's own views only: false while off sale")


class ProductPage(_Doc):
    items: list[Product]
    page: int
    size: int
    total: int


class Stock(_Doc):
    productId: str  # noqa: N815
    stock: int
    status: SaleStatus


DeliveryStatus = Literal["PREPARING", "SHIPPED", "DELIVERED", "RETURN_REQUESTED", "RETURNED", "RETURN_REFUSED",
                         "CANCELLED"]


class OrderItem(_Doc):
    productId: str  # noqa: N815
    quantity: int
    price: int
    deliveryStatus: DeliveryStatus | None  # noqa: N815


class OrderLine(OrderItem):
    """A line of the buyer's order: name and unit price at purchase, what it was charged and refunded."""

    productName: str | None = Field(description="the product's name when the order was placed")  # noqa: N815
    unitPrice: int = Field(description="the unit price when the order was placed (= price)")  # noqa: N815
    lineTotal: int  # noqa: N815
    chargedAmount: int = Field(description="what this line was charged (0 until the payment succeeded)")  # noqa: N815
    refundedAmount: int  # noqa: N815
    refundedAt: str | None  # noqa: N815
    refundStatus: Literal["PENDING", "REFUNDED"] | None = Field(  # noqa: N815
        description="PENDING from the line's cancel or return until its refund is recorded")


class Refund(_Doc):
    productId: str | None = Field(description="the refunded line; null: the whole order")  # noqa: N815
    amount: int
    reason: str
    refundedAt: str | None  # noqa: N815


class Order(_Doc):
    id: str
    status: Literal["PENDING", "CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"]
    failureReason: str | None  # noqa: N815
    totalPrice: int  # noqa: N815
    createdAt: str | None  # noqa: N815
    confirmedAt: str | None  # noqa: N815
    items: list[OrderLine]
    chargedAmount: int  # noqa: N815
    refundedAmount: int  # noqa: N815
    paymentStatus: Literal["NONE", "DECLINED", "CHARGED", "REFUND_PENDING", "PARTIALLY_REFUNDED",  # noqa: N815
                           "REFUNDED"] = Field(description="the money's side of the order: NONE until charged; "
                                                           "REFUND_PENDING while a refund is in flight")
    refunds: list[Refund]


class OrderPage(_Doc):
    items: list[Order]
    page: int
    size: int
    total: int


class OrderAccepted(_Doc):
    orderId: str  # noqa: N815
    status: Literal["PENDING"]


class DeliveryChanged(OrderItem):
    orderId: str  # noqa: N815


class ShipTo(_Doc):
    name: str
    address: str | None
    phone: str | None


class SellerOrderLine(_Doc):
    orderId: str  # noqa: N815
    productId: str  # noqa: N815
    productName: str  # noqa: N815
    quantity: int
    price: int
    lineTotal: int  # noqa: N815
    deliveryStatus: DeliveryStatus  # noqa: N815
    orderStatus: Literal["CONFIRMED", "CANCELLED"]  # noqa: N815
    orderedAt: str  # noqa: N815
    deliveredAt: str | None  # noqa: N815
    returnRequestedAt: str | None  # noqa: N815
    returnDecidedAt: str | None  # noqa: N815
    restocked: bool
    shipTo: ShipTo  # noqa: N815


class SellerOrderPage(_Doc):
    items: list[SellerOrderLine]
    page: int
    size: int
    total: int


class CartLine(_Doc):
    productId: str  # noqa: N815
    name: str
    price: int
    quantity: int
    lineTotal: int  # noqa: N815
    stock: int
    status: Literal["on_sale", "upcoming", "sold_out", "insufficient_stock"]
    perMemberLimit: int | None  # noqa: N815


class CartNotice(_Doc):
    productId: str  # noqa: N815
    code: str
    message: str
    quantity: int


class CartCheckout(_Doc):
    """The cart's order while it is pending: the cart keeps its lines and cannot change until it ends."""

    orderId: str  # noqa: N815
    location: str


class Cart(_Doc):
    items: list[CartLine]
    total: int
    notices: list[CartNotice]
    expiresInSeconds: int | None  # noqa: N815
    checkout: CartCheckout | None


class QueueStanding(_Doc):
    productId: str  # noqa: N815
    ticket: str
    position: int
    admitted: bool
    estimatedWaitSeconds: int | None  # noqa: N815


class WatchedProduct(_Doc):
    productId: str  # noqa: N815
    sellerId: str  # noqa: N815
    name: str
    salesStartAt: str | None  # noqa: N815
    stock: int


class WatchedProductPage(_Doc):
    items: list[WatchedProduct]
    page: int
    size: int
    total: int


class DropSecond(_Doc):
    t: int = Field(description="epoch second")
    answers: dict[str, int]
    attempts: int
    stock: int | None
    confirmed: int
    failed: int
    expired: int
    latencyMs: float | None  # noqa: N815


class DropReport(_Doc):
    """A drop's figures per second over the range and over the whole drop (goodsdrop.drop_watch)."""

    productId: str  # noqa: N815
    name: str
    stock: int
    status: SaleStatus
    answers: dict[str, int]
    attempts: int
    refusals: dict[str, int]
    peakAttemptsPerSecond: int  # noqa: N815
    timeToSellOutSeconds: float | None  # noqa: N815
    orders: dict[str, int]
    confirmed: int
    buyersServed: int  # noqa: N815
    paymentsDeclined: int  # noqa: N815
    unitsGivenBack: int  # noqa: N815
    series: list[DropSecond]


class StreamTicket(_Doc):
    ticket: str
    productId: str  # noqa: N815
    expiresIn: int  # noqa: N815
    stream: str = Field(description="the path of the drop stream on the SSE container, with the ticket")


class OpenApiDocument(_Doc):
    openapi: str
    paths: dict[str, Any]
