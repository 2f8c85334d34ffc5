"""Products: reading them from MySQL, their sale status, and the cached detail document.

The detail document is cached look-aside in Redis (`keys.product_detail`). Every cached copy
carries a stamp (the row's `updated_at` in milliseconds) and is written by
`lua/put_product_detail.lua`, which never replaces a newer copy with an older one: a reader that
loaded the row just before an edit committed cannot put the old document back after the edit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from goodsdrop import keys
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.clock import from_db, from_ms, iso, now, to_ms
from goodsdrop.codes import SaleStatus
from goodsdrop.errors import NotFound, ValidationError
from goodsdrop.fields import ID_PATTERN
from goodsdrop.scripts import script

DETAIL_TTL_SECONDS = 300
MAX_ID = 2**63 - 1
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))


def parse_product_id(raw: str | None) -> int:
    """A product id from a path segment (`goodsdrop.fields.ID_PATTERN`: no leading zero), else 400."""
    if raw is None or not _ID.fullmatch(raw):
        raise ValidationError("product id must be a positive integer without leading zeros",
                              details={"fields": {"id": "malformed"}})
    return int(raw)


def sale_status(stock: int, sales_start_at: datetime | None) -> SaleStatus:
    """`sold_out` at zero stock, `upcoming` before the sales start, `on_sale` otherwise."""
    if stock <= 0:
        return SaleStatus.SOLD_OUT
    if sales_start_at is not None and now() < sales_start_at:
        return SaleStatus.UPCOMING
    return SaleStatus.ON_SALE


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
    updated_at: datetime | None = None
    stock_shards: int = 1  # how many Redis shards hold its live stock (fixed at creation)

    def to_json(self) -> dict[str, Any]:
        """The product as the API shows it (without stock; callers add the live stock)."""
        return {
            "id": str(self.id),
            "sellerId": str(self.seller_id),
            "name": self.name,
            "description": self.description,
            "price": self.price,
            "salesStartAt": iso(self.sales_start_at),
            "perMemberLimit": self.per_member_limit,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at or self.created_at),
        }

    @property
    def stamp(self) -> int:
        """The row's last change in epoch milliseconds: newer cached copies win over older ones."""
        return to_ms(self.updated_at or self.created_at)

    def to_cache(self) -> str:
        """The cached detail document: the API shape plus the stamp and exact times."""
        doc = self.to_json() | {
            "stamp": self.stamp,
            "salesStartAtMs": _millis(self.sales_start_at),
            "createdAtMs": to_ms(self.created_at),
            "updatedAtMs": _millis(self.updated_at),
            "stockShards": self.stock_shards,
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Product:
        """From a cached detail document."""

        def moment(ms_field: str, iso_field: str) -> datetime | None:
            if doc.get(ms_field) is not None:
                return from_ms(int(doc[ms_field]))
            value = doc.get(iso_field)
            return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

        created = moment("createdAtMs", "createdAt")
        assert created is not None
        return cls(int(doc["id"]), int(doc["sellerId"]), doc["name"], doc["description"], int(doc["price"]),
                   moment("salesStartAtMs", "salesStartAt"), doc["perMemberLimit"], created,
                   moment("updatedAtMs", "updatedAt"), int(doc.get("stockShards") or 1))


def _millis(moment: datetime | None) -> int | None:
    return to_ms(moment) if moment is not None else None


# The columns `product_from_row` needs, for every query that reads products (alias `p`).
PRODUCT_COLUMNS = ("p.id, p.seller_id, p.name, p.description, p.price, p.sales_start_at, p.per_member_limit, "
                   "p.created_at, p.updated_at, p.stock_shards, p.listed")


def product_from_row(row: dict[str, Any]) -> Product:
    """A `Product` from a row selected with `PRODUCT_COLUMNS` (MySQL keeps UTC without a zone)."""
    return Product(int(row["id"]), int(row["seller_id"]), row["name"], row["description"], int(row["price"]),
                   from_db(row["sales_start_at"]), row["per_member_limit"], from_db(row["created_at"]),  # type: ignore[arg-type]
                   from_db(row["updated_at"]), int(row.get("stock_shards") or 1))


def load_product(product_id: int) -> Product:
    """The product from MySQL, or `NotFound`."""
    with mysql_cursor() as cur:
        cur.execute(f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = %s AND p.listed = 1", (product_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"product {product_id} not found")
    return product_from_row(row)


def cache_product(product: Product) -> bool:
    """Put the detail document in Redis unless a newer copy is there; True when it was written."""
    written = script("put_product_detail")(keys=[keys.product_detail(product.id)],
                                           args=[product.to_cache(), product.stamp, DETAIL_TTL_SECONDS])
    return bool(written)


def cache_off_sale(product_id: int, stamp: int, stock_shards: int) -> None:
    """Put an off-sale marker (unlisted or deleted) in place of the detail document.

    It carries the row's new stamp, so a reader that loaded the row while it was still listed
    cannot put the listed document back over it (`lua/put_product_detail.lua` keeps the newer).
    """
    doc = json.dumps({"offSale": True, "stamp": stamp, "stockShards": stock_shards}, separators=(",", ":"))
    script("put_product_detail")(keys=[keys.product_detail(product_id)], args=[doc, stamp, DETAIL_TTL_SECONDS])


def get_product(product_id: int) -> Product:
    """The listed product, look-aside through the Redis detail cache; `NotFound` when it is off sale."""
    return product_from(product_id, redis_client().get(keys.product_detail(product_id)))


def product_from(product_id: int, cached: str | bytes | None) -> Product:
    """`get_product` given the detail cache's value (read by the caller, e.g. in a round trip of its own):
    that copy when it is readable (`NotFound` for an off-sale marker), else MySQL's row (cached again)."""
    if cached:
        try:
            doc = json.loads(cached)
            if doc.get("offSale"):
                raise NotFound(f"product {product_id} not found")
            product = Product.from_json(doc)
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # an unreadable copy is a miss; the fresh one below replaces it
        else:
            _shard_counts.setdefault(product.id, product.stock_shards)
            return product
    product = load_product(product_id)
    cache_product(product)
    _shard_counts.setdefault(product.id, product.stock_shards)
    return product


_shard_counts: dict[int, int] = {}


def known_shard_count(product_id: int) -> int | None:
    """The product's shard count when this process has seen it (no round trip), else None."""
    return _shard_counts.get(product_id)


def shard_count(product_id: int) -> int:
    """How many stock shards a product has (listed or not; fixed at creation, so kept per process)."""
    known = _shard_counts.get(product_id)
    if known is None:
        cached = redis_client().get(keys.product_detail(product_id))
        if cached:
            try:
                known = _shard_counts[product_id] = int(json.loads(cached).get("stockShards") or 1)
                return known
            except (ValueError, TypeError, AttributeError):
                pass  # an unreadable copy: ask MySQL
        with mysql_cursor() as cur:
            cur.execute("SELECT stock_shards FROM products WHERE id = %s", (product_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"product {product_id} not found")
        known = _shard_counts[product_id] = int(row["stock_shards"])
    return known


def listing_of(product_id: int) -> tuple[int, bool, bool] | None:
    """(seller id, listed, deleted) of any product, listed or not, from MySQL; None when there is no row."""
    with mysql_cursor() as cur:
        cur.execute("SELECT seller_id, listed, deleted_at FROM products WHERE id = %s", (product_id,))
        row = cur.fetchone()
    if row is None:
        return None
    return int(row["seller_id"]), bool(row["listed"]), row["deleted_at"] is not None


def forget_product(product_id: int) -> None:
    """Drop the cached detail (it is re-read from MySQL on the next request)."""
    redis_client().delete(keys.product_detail(product_id))
