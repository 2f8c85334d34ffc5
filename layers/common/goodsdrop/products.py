"""Products: reading them from MySQL, their sale status, and the cached detail document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from goodsdrop import keys
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.errors import NotFound, ValidationError

DETAIL_TTL_SECONDS = 300
MAX_ID = 2**63 - 1


def parse_product_id(raw: str | None) -> int:
    """A product id from a path segment: a positive integer in a string, else 400."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) < 1 or int(raw) > MAX_ID:
        raise ValidationError("product id must be a positive integer", details={"fields": {"id": "malformed"}})
    return int(raw)


def sale_status(stock: int, sales_start_at: datetime | None, now: datetime | None = None) -> str:
    """`sold_out` at zero stock, `upcoming` before the sales start, `on_sale` otherwise."""
    if stock <= 0:
        return "sold_out"
    now = now or datetime.now(UTC)
    if sales_start_at is not None and now < sales_start_at:
        return "upcoming"
    return "on_sale"


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, as the API shows times."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Product:
    """A product as stored (stock lives with the stock cache, not here)."""

    id: int
    seller_id: int
    name: str
    description: str
    price: int
    sales_start_at: datetime | None
    per_member_limit: int | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "sellerId": str(self.seller_id),
            "name": self.name,
            "description": self.description,
            "price": self.price,
            "salesStartAt": iso(self.sales_start_at),
            "perMemberLimit": self.per_member_limit,
            "createdAt": iso(self.created_at),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Product:
        def parse(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

        created = parse(doc["createdAt"])
        assert created is not None
        return cls(int(doc["id"]), int(doc["sellerId"]), doc["name"], doc["description"], int(doc["price"]),
                   parse(doc["salesStartAt"]), doc["perMemberLimit"], created)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def load_product(product_id: int) -> Product:
    """The product from MySQL, or `NotFound`."""
    with mysql_cursor() as cur:
        cur.execute(
            "SELECT id, seller_id, name, description, price, sales_start_at, per_member_limit, created_at "
            "FROM products WHERE id = %s AND listed = 1",
            (product_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"product {product_id} not found")
    return Product(row["id"], row["seller_id"], row["name"], row["description"], row["price"],
                   _utc(row["sales_start_at"]), row["per_member_limit"], _utc(row["created_at"]))  # type: ignore[arg-type]


def get_product(product_id: int) -> Product:
    """The product, look-aside through the Redis detail cache."""
    r = redis_client()
    cached = r.get(keys.product_detail(product_id))
    if cached:
        return Product.from_json(json.loads(cached))
    product = load_product(product_id)
    r.set(keys.product_detail(product_id), json.dumps(product.to_json()), ex=DETAIL_TTL_SECONDS)
    return product


def forget_product(product_id: int) -> None:
    """Drop the cached detail (after an edit)."""
    redis_client().delete(keys.product_detail(product_id))
