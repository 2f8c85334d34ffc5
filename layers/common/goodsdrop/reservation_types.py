"""The values the reservation core, the ledger, the saga and orders hand each other.

An order `Line`; what one reservation asks for (`Reservation`, with each line's `Terms`) and the
answer (`ReserveResult`); what ending a line's holds did (`Settled`); an order as its Redis
record knows it (`OrderRecord`). Imports nothing of goodsdrop, so the MySQL ledger below the
reservation core and everything above it share these without an import cycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

RECORD_TTL_AFTER_EXPIRY_SECONDS = 24 * 3600  # an order record outlives its reservation's expiry by this


@dataclass(frozen=True)
class Line:
    """One order line: a product, how many, and the unit price when it was reserved."""

    product_id: int
    quantity: int
    price: int

    def to_json(self) -> dict[str, Any]:
        """The line as events and order documents carry it."""
        return {"productId": str(self.product_id), "quantity": self.quantity, "price": self.price}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Line:
        """From `to_json`'s form."""
        return cls(int(doc["productId"]), int(doc["quantity"]), int(doc["price"]))


@dataclass(frozen=True)
class Terms:
    """What is checked for one line besides stock (member limit, sales start), and its product's shards."""

    per_member_limit: int | None
    sales_start_ms: int | None
    shards: int = 1


@dataclass(frozen=True)
class Reservation:
    """What the caller asks to reserve."""

    order_id: str
    member_id: str
    lines: list[Line]
    terms: list[Terms]
    fingerprint: str
    key_digest: str
    now_ms: int
    expires_ms: int

    @property
    def total(self) -> int:
        """The order's price: every line's quantity times its unit price."""
        return sum(line.quantity * line.price for line in self.lines)

    def document(self) -> str:
        """The order document the Redis record keeps (lines with prices, total), as JSON."""
        return json.dumps({"lines": [line.to_json() for line in self.lines], "total": self.total},
                          separators=(",", ":"))

    @property
    def record_ttl(self) -> int:
        """Seconds the Redis order record is kept: until the reservation expires, and a day more."""
        return max((self.expires_ms - self.now_ms) // 1000, 1) + RECORD_TTL_AFTER_EXPIRY_SECONDS


@dataclass(frozen=True)
class ReserveResult:
    """The answer (`kind`, a goodsdrop.codes.ReserveKind): RESERVED (with each line's stock after it),
    REFUSED, REPLAY or REUSED."""

    kind: str
    outcome: dict[str, Any] | None = None  # REFUSED / REPLAY (DONE): the stored outcome
    state: str = ""  # REPLAY: the key's goodsdrop.codes.IdempotencyState (DONE or IN_FLIGHT)
    order_id: str = ""  # REPLAY: the order the key produced, if any
    # RESERVED: (available, version) per line; None for a sharded line (see `level_reads`)
    levels: list[tuple[int, int] | None] | None = None


@dataclass(frozen=True)
class Settled:
    """What ending one line's holds did: `code`, a goodsdrop.codes.SettleCode (APPLIED, ALREADY,
    NOT_CACHED or REFUSED).

    `available` and `version` are the product's, summed over its shards (-1 when unknown).
    """

    product_id: int
    code: int
    available: int
    version: int


@dataclass(frozen=True)
class OrderRecord:
    """An order as Redis knows it while the saga runs (`status`: a goodsdrop.codes.RecordStatus)."""

    order_id: str
    member_id: str
    status: str
    lines: list[Line]
    total: int
    created_ms: int
    expires_ms: int
    reason: str = ""
