"""The catalogue: sellers create and edit products and set their stock; anyone searches.

- Creating a product writes the product and its stock row in one MySQL transaction, then fills
  the stock cache (write-through), so the first buyers of a new drop find it in Redis.
- Only a product's own seller may edit it or set its stock (403 otherwise). An edit replaces
  the cached detail document at once (`goodsdrop.products.cache_product`); a stock change goes
  through `goodsdrop.stock.set_stock` (MySQL, Redis, StockChanged).
- Search runs one indexed query (plus one COUNT) over MySQL and shows each hit's live stock
  from Redis. The `status` filter reads MySQL's stock (units not yet sold), so during a live
  drop a product whose units are all reserved but not yet sold still counts as `on_sale` for
  filtering while its item already shows the live `sold_out`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import pymysql
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from goodsdrop import clock, keys, stock
from goodsdrop.admission import close_waiting_room
from goodsdrop.clients import NO_REFERENCED_ROW, fetch_one, mysql_cursor, mysql_transaction, redis_client
from goodsdrop.codes import SaleStatus
from goodsdrop.errors import Conflict, Forbidden, NotFound, ValidationError
from goodsdrop.fields import CamelCaseBody, check_visible, is_id
from goodsdrop.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, int_param
from goodsdrop.products import (
    PRODUCT_COLUMNS,
    Product,
    cache_off_sale,
    cache_product,
    get_product,
    product_from_row,
    sale_status,
    shard_count,
)
from goodsdrop.reservations import MAX_SHARDS, close_shards, forget_shards, load_stock, product_level

MAX_PRICE = 10**12  # won; far above any real price and exact in every JSON client
MAX_PER_MEMBER_LIMIT = 10_000
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 5_000
EARLIEST_SALES_YEAR, LATEST_SALES_YEAR = 2000, 2100


# ------------------------------------------------------------------------------ request bodies
def _clean_text(value: str, *, multiline: bool) -> str:
    """Reject what MySQL cannot store (lone surrogates) and invisible control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    allowed = {"\n", "\t", "\r"} if multiline else set()
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _name(value: str) -> str:
    # A name is what buyers recognise a product by: nothing invisible or direction-changing in it.
    return check_visible(_clean_text(value, multiline=False))


def _description(value: str) -> str:
    return _clean_text(value, multiline=True)


def parse_sales_start(value: Any) -> datetime:
    """An ISO-8601 date-time WITH a zone (`2025-06-01T12:00:00+09:00`, `...Z`) → aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and 10 <= len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be an ISO-8601 date-time with a time zone, e.g. 2025-06-01T12:00:00+09:00") from None
    else:
        raise ValueError("must be an ISO-8601 date-time string with a time zone, e.g. 2025-06-01T12:00:00Z")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must include a time zone (Z or +09:00)")
    if not EARLIEST_SALES_YEAR <= moment.year <= LATEST_SALES_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_SALES_YEAR} and {LATEST_SALES_YEAR}")
    return moment.astimezone(UTC)


Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Description = Annotated[StrictStr, Field(max_length=MAX_DESCRIPTION_CHARS)]
Price = Annotated[StrictInt, Field(ge=1, le=MAX_PRICE)]
StockUnits = Annotated[StrictInt, Field(ge=0, le=stock.MAX_STOCK)]
PerMemberLimit = Annotated[StrictInt, Field(ge=1, le=MAX_PER_MEMBER_LIMIT)]
StockShards = Annotated[StrictInt, Field(ge=1, le=MAX_SHARDS)]
SalesStart = Annotated[datetime, BeforeValidator(parse_sales_start)]


class _ProductText(CamelCaseBody):
    """The text rules of a product's name and description, shared by create and edit."""

    model_config = ConfigDict(str_strip_whitespace=True)

    @field_validator("name", check_fields=False)
    @classmethod
    def _name_text(cls, value: str | None) -> str | None:
        return None if value is None else _name(value)

    @field_validator("description", check_fields=False)
    @classmethod
    def _description_text(cls, value: str | None) -> str | None:
        return None if value is None else _description(value)


class NewProduct(_ProductText):
    """Body of POST /products."""

    name: Name
    description: Description
    price: Price
    stock: StockUnits
    sales_start_at: SalesStart | None = None
    per_member_limit: PerMemberLimit | None = None
    # Hot drops: the live stock split over this many Redis shards (each its own slot), fixed at creation.
    stock_shards: StockShards = 1


class ProductChanges(_ProductText):
    """Body of PATCH /products/{id}: only the fields sent change; `null` clears the optional ones."""

    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    sales_start_at: SalesStart | None = None
    per_member_limit: PerMemberLimit | None = None

    @field_validator("name", "description", "price", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _something_changes(self) -> ProductChanges:
        if not self.model_fields_set:
            raise ValueError("send at least one of name, description, price, salesStartAt, perMemberLimit")
        return self


class Listing(CamelCaseBody):
    """Body of PUT /products/{id}/listing: false takes the product off sale, true puts it back."""

    listed: StrictBool


class StockChange(CamelCaseBody):
    """Body of PUT /products/{id}/stock: the units not yet sold, from now on."""

    stock: StockUnits


# ------------------------------------------------------------------------------ sellers' writes
def _item(product: Product, available: int) -> dict[str, Any]:
    return product.to_json() | {"stock": available, "status": sale_status(available, product.sales_start_at)}


def product_detail(product_id: int) -> dict[str, Any]:
    """A product as GET /products/{id} shows it: the cached detail with its live stock and sale status."""
    product, level = get_product(product_id), stock.read_stock(product_id)
    return product.to_json() | {"stock": level.stock, "status": level.status}


def create_product(seller_id: int, new: NewProduct) -> dict[str, Any]:
    """Create a product with its stock; returns it as the API shows it (with stock and status)."""
    try:
        with mysql_transaction() as cur:
            cur.execute(
                "INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit, "
                "stock_shards) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (seller_id, new.name, new.description, new.price, clock.to_db(new.sales_start_at),
                 new.per_member_limit, new.stock_shards),
            )
            product_id = int(cur.lastrowid)
            cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product_id, new.stock))
            cur.execute(f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = %s", (product_id,))
            product = product_from_row(fetch_one(cur))
    except pymysql.err.IntegrityError as err:
        # A token that still says "seller" for a member whose shop row is gone (or never was).
        if err.args and err.args[0] == NO_REFERENCED_ROW:
            raise Forbidden("register as a seller before listing products") from None
        raise
    # Keys left from an earlier life of this id (a database reset without a Redis flush) must go.
    redis_client().delete(keys.product_detail(product_id))
    forget_shards(product_id, product.stock_shards)
    available, _ = load_stock(product_id)
    cache_product(product)
    return _item(product, available)


def owned_product(member_id: str | int, product_id: int) -> Product:
    """The product, if `member_id` sells it: `NotFound` when there is none, `Forbidden` when not theirs."""
    product = get_product(product_id)
    if str(product.seller_id) != str(member_id):
        raise Forbidden("only the product's seller may change it")
    return product


_COLUMNS = {"name": "name", "description": "description", "price": "price",
            "sales_start_at": "sales_start_at", "per_member_limit": "per_member_limit"}


def update_product(member_id: str | int, product_id: int, changes: ProductChanges) -> dict[str, Any]:
    """Apply a seller's changes to their own product; the cached detail is replaced at once."""
    values = {name: getattr(changes, name) for name in changes.model_fields_set}
    if "sales_start_at" in values:
        values["sales_start_at"] = clock.to_db(values["sales_start_at"])
    with mysql_transaction() as cur:
        cur.execute("SELECT seller_id FROM products WHERE id = %s AND listed = 1 FOR UPDATE", (product_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"product {product_id} not found")
        if str(row["seller_id"]) != str(member_id):
            raise Forbidden("only the product's seller may change it")
        assignments = ", ".join(f"{_COLUMNS[name]} = %s" for name in values)
        cur.execute(f"UPDATE products SET {assignments} WHERE id = %s", (*values.values(), product_id))
        cur.execute(f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = %s", (product_id,))
        product = product_from_row(fetch_one(cur))
    cache_product(product)  # newer stamp: replaces the old copy, and no older copy can come back
    return _item(product, stock.read_stock(product_id).stock)


def set_product_stock(member_id: str | int, product_id: int, units: int) -> dict[str, Any]:
    """A seller sets the units not yet sold of their own product (write-through; StockChanged).

    The live-drop rule: units already reserved by buyers stay held, so at most `units` minus
    the reserved units can still be sold; a stock below the reserved units is refused (409).
    """
    owned_product(member_id, product_id)
    return stock.set_stock(product_id, units).to_json()


# ------------------------------------------------------------------------------ off sale and back, deleting


def _locked_own_product(cur: Any, member_id: str | int, product_id: int) -> dict[str, Any]:
    """The product's row and its stock row, locked (the stock row lock orders this against every writer of
    its live stock, the rebuild included); 404 for none or a deleted one, 403 for another seller's."""
    cur.execute("SELECT seller_id, listed, deleted_at FROM products WHERE id = %s FOR UPDATE", (product_id,))
    row = cur.fetchone()
    if row is None or row["deleted_at"] is not None:
        raise NotFound(f"product {product_id} not found")
    if str(row["seller_id"]) != str(member_id):
        raise Forbidden("only the product's seller may change it")
    cur.execute("SELECT count FROM stock WHERE product_id = %s FOR UPDATE", (product_id,))
    return row


def _taken_off_sale(product_id: int, stamp: int, shards: int) -> None:
    """After the commit: the detail cache says off sale, and an open waiting room closes (nothing to queue for)."""
    cache_off_sale(product_id, stamp, shards)
    close_waiting_room(product_id)


def set_listing(member_id: str | int, product_id: int, listed: bool) -> dict[str, Any]:
    """A seller takes their product off sale (`listed: false`) or puts it back; the product as they see it.

    Off sale: search, the detail, the stock endpoint and the waiting room answer as if it did not
    exist, carts drop its line with a PRODUCT_UNAVAILABLE notice, and no new reservation is taken
    (every stock shard is closed in Redis in the same step as MySQL's `listed`, under the stock row
    lock): an order for it is 409 PRODUCT_UNAVAILABLE, while orders already reserved settle as usual.
    Its stock is kept, so putting it back sells the same units.
    """
    shards = shard_count(product_id)
    try:
        with mysql_transaction() as cur:
            _locked_own_product(cur, member_id, product_id)
            cur.execute("UPDATE products SET listed = %s WHERE id = %s", (int(listed), product_id))
            close_shards(product_id, shards, closed=not listed)  # before the commit, under the lock
            cur.execute(f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = %s", (product_id,))
            product = product_from_row(fetch_one(cur))
    except (NotFound, Forbidden):
        raise
    except Exception:
        # MySQL may not have committed while Redis changed: drop the shards, the next use rebuilds
        # them (closed or not) from what MySQL says.
        forget_shards(product_id, shards)
        raise
    if listed:
        cache_product(product)
    else:
        _taken_off_sale(product_id, product.stamp, shards)
    available, _ = product_level(product_id, shards) or load_stock(product_id)
    return _item(product, available) | {"listed": listed}


def delete_product(member_id: str | int, product_id: int) -> None:
    """A seller deletes their product, only if nothing of it was ever ordered (409 PRODUCT_HAS_ORDERS).

    Its shards are closed first and their open holds counted in the same step, so no reservation
    can appear once the check passed; if one exists (or MySQL has an order line or an open
    reservation of it), the product is put back as it was and the seller is told to unlist it
    instead. The row stays (deleted_at) for the ids in carts and records; nothing lists it again.
    """
    shards = shard_count(product_id)
    try:
        with mysql_transaction() as cur:
            row = _locked_own_product(cur, member_id, product_id)
            holds = close_shards(product_id, shards, closed=True)
            cur.execute("SELECT EXISTS (SELECT 1 FROM order_products WHERE product_id = %s) AS sold, "
                        "EXISTS (SELECT 1 FROM reservation_lines l JOIN reservations r ON r.order_id = l.order_id "
                        "WHERE l.product_id = %s AND r.state = 'OPEN') AS reserved", (product_id, product_id))
            found = fetch_one(cur)
            if holds or found["sold"] or found["reserved"]:
                close_shards(product_id, shards, closed=not row["listed"])
                raise Conflict("this product has been ordered: unlist it instead (PUT /products/{id}/listing)",
                               code="PRODUCT_HAS_ORDERS",
                               details={"productId": str(product_id), "sold": bool(found["sold"]),
                                        "reserved": bool(holds or found["reserved"])})
            cur.execute("UPDATE products SET listed = 0, deleted_at = UTC_TIMESTAMP(3) WHERE id = %s", (product_id,))
            cur.execute("SELECT updated_at FROM products WHERE id = %s", (product_id,))
            stamp = clock.to_ms(fetch_one(cur)["updated_at"])
    except (NotFound, Forbidden, Conflict):
        raise
    except Exception:
        forget_shards(product_id, shards)
        raise
    _taken_off_sale(product_id, stamp, shards)


# ------------------------------------------------------------------------------ search
SORTS = {
    "newest": "p.created_at DESC, p.id DESC",
    "price_asc": "p.price ASC, p.id ASC",
    "price_desc": "p.price DESC, p.id DESC",
}
STATUSES = tuple(SaleStatus)
MAX_QUERY_CHARS = 100
# Every word is a condition on every row it reaches: an anonymous search may name only a few, and
# few short ones, which no index serves (see SHORT_WORD_MATCHES).
MAX_QUERY_TERMS = 5
MAX_SHORT_TERMS = 2
# A search of short words only (and no seller) is matched row by row: it reads the matching ids once,
# in the page's order, up to this many, and counts those (its `total` stops there). Its page and
# its count are one bounded scan, never two full ones.
SHORT_WORD_MATCHES = 1000
# InnoDB's full-text index skips words shorter than innodb_ft_min_token_size (3) and its default
# stopwords; such words would match nothing as required terms, so they are matched with LIKE.
FULLTEXT_MIN_CHARS, FULLTEXT_MAX_CHARS = 3, 84
INNODB_STOPWORDS = frozenset((
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how", "i", "in", "is",
    "it", "la", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "who", "will",
    "with", "und", "www",
))
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: every field already checked."""

    fulltext_terms: tuple[str, ...] = ()
    like_terms: tuple[str, ...] = ()
    seller_id: int | None = None
    min_price: int | None = None
    max_price: int | None = None
    status: str | None = None
    sort: str = "newest"
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    now: datetime = field(default_factory=clock.now)
    with_unlisted: bool = False  # a seller's own list: off-sale products too (never deleted ones), flagged

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def _query_terms(raw: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    words = list(dict.fromkeys(_WORD.findall(raw)))  # a word given twice is one condition
    if len(words) > MAX_QUERY_TERMS:
        raise ValueError(f"must have at most {MAX_QUERY_TERMS} words")
    fulltext = tuple(w for w in words if FULLTEXT_MIN_CHARS <= len(w) <= FULLTEXT_MAX_CHARS
                     and w.lower() not in INNODB_STOPWORDS)
    like = tuple(w for w in words if w not in fulltext)
    if len(like) > MAX_SHORT_TERMS:
        raise ValueError(f"must have at most {MAX_SHORT_TERMS} words shorter than {FULLTEXT_MIN_CHARS} letters "
                         "or common words (the, and, ...)")
    return fulltext, like


def parse_search(params: Mapping[str, str | None]) -> SearchQuery:
    """Check the query parameters of GET /products; 400 `VALIDATION_ERROR` naming every bad one."""
    errors: dict[str, str] = {}
    page = int_param(params, "page", 1, MAX_PAGE, errors) or 1
    size = int_param(params, "size", 1, MAX_PAGE_SIZE, errors) or DEFAULT_PAGE_SIZE
    fulltext: tuple[str, ...] = ()
    like: tuple[str, ...] = ()
    q = (params.get("q") or "").strip()
    if q:
        if len(q) > MAX_QUERY_CHARS:
            errors["q"] = f"must be at most {MAX_QUERY_CHARS} characters"
        else:
            try:
                fulltext, like = _query_terms(q)
            except ValueError as err:
                errors["q"] = str(err)
            else:
                if not fulltext and not like:
                    errors["q"] = "must contain at least one letter or digit"
    seller_id = int_param(params, "sellerId", 1, 2**63 - 1, errors)
    if seller_id is not None and not is_id(params.get("sellerId")):
        errors["sellerId"], seller_id = "must be an id: a positive integer without leading zeros", None
    min_price = int_param(params, "minPrice", 0, MAX_PRICE, errors)
    max_price = int_param(params, "maxPrice", 0, MAX_PRICE, errors)
    if min_price is not None and max_price is not None and min_price > max_price:
        errors["minPrice"] = "must not be greater than maxPrice"
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        errors["status"] = f"must be one of {', '.join(STATUSES)}"
    sort = params.get("sort") or "newest"
    if sort not in SORTS:
        errors["sort"] = f"must be one of {', '.join(SORTS)}"
    if errors:
        raise ValidationError(f"invalid parameter(s): {', '.join(sorted(errors))}", details={"fields": errors})
    return SearchQuery(fulltext, like, seller_id, min_price, max_price, status, sort, page, size)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_and_filters(query: SearchQuery) -> tuple[list[str], list[Any]]:
    """Conditions on the products table alone (keyword, seller, price), with their arguments."""
    conditions: list[str] = ["p.deleted_at IS NULL" if query.with_unlisted else "p.listed = 1"]
    args: list[Any] = []
    if query.fulltext_terms:
        conditions.append("MATCH (p.name, p.description) AGAINST (%s IN BOOLEAN MODE)")
        args.append(" ".join(f"+{term}*" for term in query.fulltext_terms))
    for term in query.like_terms:
        conditions.append("(p.name LIKE %s OR p.description LIKE %s)")
        pattern = f"%{_escape_like(term)}%"
        args += [pattern, pattern]
    if query.seller_id is not None:
        conditions.append("p.seller_id = %s")
        args.append(query.seller_id)
    if query.min_price is not None:
        conditions.append("p.price >= %s")
        args.append(query.min_price)
    if query.max_price is not None:
        conditions.append("p.price <= %s")
        args.append(query.max_price)
    return conditions, args


def _status_conditions(status: str | None, now: datetime) -> tuple[list[str], list[Any]]:
    """Conditions on the stock table `s` (and the sales start) that select one sale status."""
    naive_now = clock.to_db(now)
    if status == SaleStatus.SOLD_OUT:
        return ["s.count = 0"], []
    if status == SaleStatus.UPCOMING:
        return ["s.count > 0", "p.sales_start_at > %s"], [naive_now]
    if status == SaleStatus.ON_SALE:
        return ["s.count > 0", "(p.sales_start_at IS NULL OR p.sales_start_at <= %s)"], [naive_now]
    return [], []


def _count(conditions: list[str], args: list[Any], with_stock: bool) -> tuple[str, list[Any]]:
    join = " JOIN stock s ON s.product_id = p.id" if with_stock else ""
    return f"SELECT COUNT(*) FROM products p{join} WHERE {' AND '.join(conditions)}", args


def search_sql(query: SearchQuery) -> tuple[str, list[Any], str, list[Any]]:
    """The page query and the count query (with arguments) of a search; `bench/` EXPLAINs these.

    The page query is a deferred join: the inner query finds the page's ids (index-only for the
    unfiltered sorts, so deep pages stay cheap), the outer one reads just those rows.
    Most products are on sale, so counting `on_sale` row by row would join nearly every stock
    row; without a keyword it is counted as all - sold_out - upcoming (three small index counts,
    one statement, one snapshot: the three statuses split every product with a stock row).
    """
    base, base_args = _text_and_filters(query)
    status, status_args = _status_conditions(query.status, query.now)
    where = " AND ".join(base + status)
    join = " JOIN stock s ON s.product_id = p.id" if status else ""
    order = SORTS[query.sort]
    page_sql = (f"SELECT {PRODUCT_COLUMNS}, s.count FROM (SELECT p.id FROM products p{join} WHERE {where} "
                f"ORDER BY {order} LIMIT %s OFFSET %s) AS page "
                f"JOIN products p ON p.id = page.id JOIN stock s ON s.product_id = p.id ORDER BY {order}")
    page_args = [*base_args, *status_args, query.size, query.offset]
    if query.status == SaleStatus.ON_SALE and not (query.fulltext_terms or query.like_terms):
        parts = [_count(base, base_args, False)]
        for other in (SaleStatus.SOLD_OUT, SaleStatus.UPCOMING):
            conditions, args = _status_conditions(other, query.now)
            parts.append(_count(base + conditions, base_args + args, True))
        count_sql = "SELECT " + " - ".join(f"({sql})" for sql, _ in parts) + " AS total"
        count_args = [arg for _, args in parts for arg in args]
    else:
        sql, count_args = _count(base + status, base_args + status_args, bool(status))
        count_sql = sql.replace("SELECT COUNT(*)", "SELECT COUNT(*) AS total", 1)
    return page_sql, page_args, count_sql, count_args


def scans_short_words_only(query: SearchQuery) -> bool:
    """Whether no index narrows the search's words (short words only, no seller): the bounded path."""
    return bool(query.like_terms) and not query.fulltext_terms and query.seller_id is None


def short_word_search_sql(query: SearchQuery) -> tuple[str, list[Any]]:
    """The one bounded scan of a short-word search: matching ids in page order, at most SHORT_WORD_MATCHES."""
    base, base_args = _text_and_filters(query)
    status, status_args = _status_conditions(query.status, query.now)
    join = " JOIN stock s ON s.product_id = p.id" if status else ""
    return (f"SELECT p.id FROM products p{join} WHERE {' AND '.join(base + status)} ORDER BY {SORTS[query.sort]} "
            "LIMIT %s", [*base_args, *status_args, SHORT_WORD_MATCHES])


def _search_short_words(query: SearchQuery) -> tuple[list[dict[str, Any]], int]:
    ids_sql, ids_args = short_word_search_sql(query)
    with mysql_cursor() as cur:
        cur.execute(ids_sql, ids_args)
        ids = [int(row["id"]) for row in cur.fetchall()]
        page_ids = ids[query.offset:query.offset + query.size]
        rows: list[dict[str, Any]] = []
        if page_ids:
            marks = ", ".join(["%s"] * len(page_ids))
            cur.execute(f"SELECT {PRODUCT_COLUMNS}, s.count FROM products p JOIN stock s ON s.product_id = p.id "
                        f"WHERE p.id IN ({marks}) ORDER BY {SORTS[query.sort]}", page_ids)
            rows = list(cur.fetchall())
    return rows, len(ids)


def _live_available(rows: list[dict[str, Any]]) -> list[int]:
    """Each row's live available units from Redis (summed over its shards, one round trip for the page);
    MySQL's units not yet sold where Redis misses a shard."""
    pipe = redis_client().pipeline(transaction=False)
    for row in rows:
        for shard in range(int(row["stock_shards"])):
            pipe.hget(keys.stock(row["id"], shard), "available")
    cached = iter(pipe.execute())
    live: list[int] = []
    for row in rows:
        shards = [next(cached) for _ in range(int(row["stock_shards"]))]
        live.append(sum(int(v) for v in shards) if all(v is not None for v in shards) else int(row["count"]))
    return live


def search_products(query: SearchQuery) -> dict[str, Any]:
    """One page of products matching `query`, with live stock and status, and the total (for a search
    of short words only, the matches up to SHORT_WORD_MATCHES)."""
    if scans_short_words_only(query):
        rows, total = _search_short_words(query)
    else:
        page_sql, page_args, count_sql, count_args = search_sql(query)
        with mysql_cursor() as cur:
            cur.execute(count_sql, count_args)
            total = int(fetch_one(cur)["total"])
            rows = []
            if query.offset < total:  # beyond the last page there is nothing to fetch
                cur.execute(page_sql, page_args)
                rows = list(cur.fetchall())
    items = [_item(product_from_row(row), available) | ({"listed": bool(row["listed"])} if query.with_unlisted else {})
             for row, available in zip(rows, _live_available(rows), strict=True)]
    return {"items": items, "page": query.page, "size": query.size, "total": total}


def list_seller_products(seller_id: str | int, page: int, size: int) -> dict[str, Any]:
    """A seller's own products, newest first, paged; off-sale ones too, each with `listed`."""
    return search_products(SearchQuery(seller_id=int(seller_id), page=page, size=size, with_unlisted=True))
