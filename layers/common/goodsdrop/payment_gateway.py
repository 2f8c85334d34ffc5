"""A mock payment gateway, standing in for the external card processor.

Like a real processor it is idempotent by key: charging an order again returns the first
charge (never a second debit), and a refund id is honoured once. Test tokens:

- `tok_ok`        the charge succeeds;
- `tok_declined`  the charge is declined (a final answer, not an error);
- `tok_error`     the gateway is unavailable for the first two attempts of an order, then
                  succeeds — the payment consumer lets the event-source mapping retry.

Any other token is declined. Its books live in Redis (`keys.mock_gateway(order_id)`), which is
where an external service's state would be from our point of view: not in our database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.ids import new_ulid

TRANSIENT_FAILURES = 2
BOOKS_TTL_SECONDS = 30 * 86400


class GatewayUnavailable(Exception):
    """The gateway could not be reached or answered 5xx: try again later."""


@dataclass(frozen=True)
class Charge:
    """The gateway's answer to a charge."""

    payment_id: str
    approved: bool
    amount: int
    decline_reason: str = ""


def _decision(raw: str) -> Charge:
    doc = json.loads(raw)
    return Charge(doc["payment_id"], doc["approved"], int(doc["amount"]), doc.get("decline_reason", ""))


def charge(order_id: str, token: str, amount: int) -> Charge:
    """Charge `amount` for `order_id` with `token`, once per order whatever the number of calls."""
    r = redis_client()
    key = keys.mock_gateway(order_id)
    decided = r.hget(key, "decision")
    if decided:
        return _decision(decided)
    if token == "tok_error":  # noqa: S105 - a test card token, not a secret
        attempt = r.hincrby(key, "attempts", 1)
        r.expire(key, BOOKS_TTL_SECONDS)
        if attempt <= TRANSIENT_FAILURES:
            raise GatewayUnavailable(f"gateway unavailable (attempt {attempt})")
    approved = token in ("tok_ok", "tok_error")
    decision = json.dumps({"payment_id": new_ulid(), "approved": approved, "amount": amount,
                           "decline_reason": "" if approved else "card declined"})
    # One atomic field holds the whole decision: the first writer wins, a duplicate call reads it.
    r.hsetnx(key, "decision", decision)
    r.expire(key, BOOKS_TTL_SECONDS)
    return _decision(r.hget(key, "decision") or decision)


def refund(order_id: str, refund_id: str, amount: int) -> None:
    """Refund `amount` of the order's charge under `refund_id` (a repeat of the same id is a no-op)."""
    r = redis_client()
    key = keys.mock_gateway(order_id)
    decided = r.hget(key, "decision")
    if not decided or not _decision(decided).approved:
        raise GatewayUnavailable(f"nothing was charged for order {order_id}")
    if r.hsetnx(key, f"refund:{refund_id}", amount):
        r.hincrby(key, "refunded", amount)


def books(order_id: str) -> dict[str, int | str]:
    """The gateway's books for an order (for tests and support): captured and refunded amounts."""
    raw = redis_client().hgetall(keys.mock_gateway(order_id))
    decision = _decision(raw["decision"]) if raw.get("decision") else None
    return {"status": "" if decision is None else "approved" if decision.approved else "declined",
            "captured": decision.amount if decision is not None and decision.approved else 0,
            "refunded": int(raw.get("refunded", 0)), "attempts": int(raw.get("attempts", 0)),
            "refunds": sum(1 for k in raw if k.startswith("refund:"))}
