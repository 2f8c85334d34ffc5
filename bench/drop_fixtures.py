"""What a benchmark puts into the stack, and how it takes all of it out again.

A benchmark run (`BenchRun`, a context manager) makes its own seller, verified buyers and drops,
written straight into MySQL in bulk (like tests/support/accounts.py, not through 5,000 sign-ups).
Every account of a run has an address `<role>-<i>.<tag>@bench.goodsdrop.local` (the tag is the
run's), so the run can find everything it made: its members, the products they sell, the
orders, reservations, payments and refunds of those, and their Redis keys (by hash tag:
`{m<id>}`, `{p<id>}`, `{p<id>.<k>}`; the expiry-index entries; the mock gateway's records; the
order buckets of the benchmark's source addresses in 198.18.0.0/15, the range RFC 2544 reserves
for benchmarks). On exit the run waits (bounded) until the saga has settled its orders, then
deletes all of it, so the demo data is as the run found it: the storefront lists no "[bench]"
product afterwards. Access tokens are signed with the real key (`goodsdrop.tokens`), exactly as
the login endpoint signs them, so the API Gateway authorizer checks them for real.

Left behind on purpose: the Kafka topics' event log and the consumers' processed-event records
(the saga's idempotency bookkeeping, keyed by event id; nobody reads them but the consumers).

`python -m bench.drop_fixtures --remove` (`make bench-clean`) removes what any run left behind:
a run killed before its cleanup, or older versions of the benchmarks, which kept their data.
`demo_counts()` is the before/after check the flash-drop benchmark prints.
"""

from __future__ import annotations

import argparse
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql

from goodsdrop import keys
from goodsdrop.clients import mysql_connection, mysql_cursor, mysql_transaction, redis_client
from goodsdrop.passwords import hash_password
from goodsdrop.tokens import issue_access_token

DOMAIN = "bench.goodsdrop.local"
PASSWORD = "bench-pass-1"
INSERT_BATCH = 1000
ID_BATCH = 1000
BENCH_NETWORK = "198.18."  # 198.18.0.0/15 (RFC 2544): the source addresses the benchmarks make up
# The tables whose rows other tables point at, deleted last and in this order; every other table
# with an order_id, product_id or member_id column is cleared before them.
PARENTS = ("orders", "reservations", "stock", "products", "sellers", "members")
IGNORED = ("processed_events",)  # the consumers' idempotency records: kept (see the docstring)


@dataclass(frozen=True)
class Drop:
    """One drop: a product with `stock` units that opens at `opens_at`."""

    product_id: int
    stock: int
    per_member_limit: int | None
    price: int
    opens_at: datetime


def bench_address(i: int) -> str:
    """The i-th made-up source address of a benchmark (198.18.0.0/15, RFC 2544's benchmark range)."""
    i %= 2 ** 17 - 2
    return f"198.{18 + (i + 1) // 65536}.{((i + 1) // 256) % 256}.{(i + 1) % 256}"


@dataclass
class BenchRun:
    """The accounts, drops and synthetic member ids of one benchmark run; removed again on exit."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    settle_timeout: float = 60.0  # how long the removal waits for the saga to finish this run's orders
    synthetic_members: set[int] = field(default_factory=set)  # member ids used in Redis only (no MySQL row)
    _seller: int | None = None
    _buyers: list[int] = field(default_factory=list)

    def __enter__(self) -> BenchRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.remove()

    def email(self, role: str, i: int) -> str:
        return f"{role}-{i}.{self.tag}@{DOMAIN}"

    def seller(self) -> int:
        """The member id of this run's seller (created on first use)."""
        if self._seller is None:
            with mysql_transaction() as cur:
                cur.execute("INSERT INTO members (email, password_hash, name, email_verified, role) "
                            "VALUES (%s, %s, 'Bench Seller', 1, 'seller')",
                            (self.email("seller", 0), hash_password(PASSWORD)))
                self._seller = int(cur.lastrowid)
                cur.execute("INSERT INTO sellers (member_id, shop_name, address, contact_number, "
                            "registration_number) VALUES (%s, %s, '1 Bench-ro, Seoul', '02-000-0000', %s)",
                            (self._seller, f"Bench {self.tag}", f"{uuid.uuid4().int % 10**10:010d}"))
        return self._seller

    def buyers(self, size: int) -> list[int]:
        """Member ids of `size` verified buyers of this run (the missing ones inserted in multi-row batches)."""
        have = len(self._buyers)
        if have < size:
            password_hash = hash_password(PASSWORD)  # one slow hash, shared: nobody logs in as these
            conn = mysql_connection()
            for start in range(have, size, INSERT_BATCH):
                rows = [(self.email("buyer", i), password_hash, f"Bench Buyer {i}")
                        for i in range(start, min(start + INSERT_BATCH, size))]
                with conn.cursor() as cur:  # pymysql turns this into one multi-row INSERT
                    cur.executemany("INSERT INTO members (email, password_hash, name, email_verified, role) "
                                    "VALUES (%s, %s, %s, 1, 'member')", rows)
            with mysql_cursor() as cur:
                cur.execute("SELECT id FROM members WHERE email LIKE %s ORDER BY id", (f"buyer-%.{self.tag}@{DOMAIN}",))
                self._buyers = [int(row["id"]) for row in cur.fetchall()]
        return self._buyers[:size]

    def new_drop(self, name: str, stock: int, *, opens_in: timedelta, per_member_limit: int | None,
                 price: int = 39_000, stock_shards: int = 1, listed: bool = True) -> Drop:
        """A product of this run's seller with `stock` units (over `stock_shards` Redis shards), on sale
        `opens_in` from now. `listed=False` makes it an unlisted product, which is off sale: its stock is
        closed and every reservation is refused PRODUCT_UNAVAILABLE (goodsdrop.catalogue)."""
        opens_at = (datetime.now(UTC) + opens_in).replace(microsecond=0) + timedelta(seconds=1)
        with mysql_transaction() as cur:
            cur.execute("INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit, "
                        "stock_shards, listed) VALUES (%s, %s, 'A limited drop made by a benchmark.', %s, %s, %s, %s, "
                        "%s)", (self.seller(), name, price, opens_at.replace(tzinfo=None), per_member_limit,
                                stock_shards, int(listed)))
            product_id = int(cur.lastrowid)
            cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product_id, stock))
        return Drop(product_id, stock, per_member_limit, price, opens_at)

    def remove(self) -> dict[str, int]:
        """Delete everything this run made (after the saga settled its orders, bounded); what was removed."""
        members = _ids("SELECT id FROM members WHERE email LIKE %s", (f"%.{self.tag}@{DOMAIN}",))
        return remove(sorted(set(members) | self.synthetic_members), settle_timeout=self.settle_timeout)


def write_tokens(member_ids: list[int], path: Path) -> None:
    """One fresh access token per buyer, one per line, in `path` (the load generator reads it)."""
    path.write_text("".join(issue_access_token(m, "member", True, uuid.uuid4().hex)[0] + "\n" for m in member_ids))


# ---------------------------------------------------------------------------- removal


def _chunks(values: Sequence[Any], size: int = ID_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _ids(sql: str, args: tuple[Any, ...]) -> list[Any]:
    with mysql_cursor() as cur:
        cur.execute(sql, args)
        return [next(iter(row.values())) for row in cur.fetchall()]


def _ids_in(sql: str, values: Sequence[Any]) -> set[Any]:
    """`sql` has one `%s` for an IN list: run it over `values` in chunks, the first column of every row."""
    found: set[Any] = set()
    for chunk in _chunks(values):
        found.update(_ids(sql, (tuple(chunk),)))
    return found


def _columns() -> dict[str, set[str]]:
    with mysql_cursor() as cur:
        cur.execute("SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE()")
        tables: dict[str, set[str]] = {}
        for row in cur.fetchall():
            tables.setdefault(row["t"], set()).add(row["c"])
    return tables


def _pending(members: Sequence[int], products: Sequence[int], orders: Sequence[str]) -> int:
    """Orders of these members or products the saga has not finished: in Redis only, or OPEN in the ledger."""
    r = redis_client()
    waiting = 0
    for chunk in _chunks(members):
        pipe = r.pipeline(transaction=False)
        for member in chunk:
            pipe.zcard(keys.member_pending_orders(member))
        waiting += sum(pipe.execute())
    if orders:
        waiting += len(_ids_in("SELECT order_id FROM reservations WHERE state = 'OPEN' AND order_id IN %s",
                               list(orders)))
    return waiting


def _orders(members: Sequence[int], products: Sequence[int]) -> set[str]:
    orders: set[str] = set()
    if products:
        orders |= _ids_in("SELECT order_id FROM reservation_lines WHERE product_id IN %s", products)
        orders |= _ids_in("SELECT order_id FROM order_products WHERE product_id IN %s", products)
    if members:
        orders |= _ids_in("SELECT id FROM orders WHERE member_id IN %s", members)
        orders |= _ids_in("SELECT order_id FROM reservations WHERE member_id IN %s", members)
    return orders


def _delete(table: str, conditions: list[tuple[str, Sequence[Any]]]) -> int:
    """DELETE the rows of `table` where any (column IN values) holds; rows deleted."""
    removed = 0
    with mysql_cursor() as cur:
        for column, values in conditions:
            for chunk in _chunks(list(values)):
                removed += cur.execute(f"DELETE FROM `{table}` WHERE `{column}` IN %s", (tuple(chunk),))
    return removed


def _remove_rows(members: Sequence[int], products: Sequence[int], orders: Sequence[str]) -> dict[str, int]:
    by_column = {"member_id": members, "product_id": products, "order_id": orders}
    tables = _columns()
    removed: dict[str, int] = {}
    leaves = [t for t in tables if t not in PARENTS and t not in IGNORED and tables[t] & set(by_column)]
    # A table that points at another leaf (a future one) may refuse first: retry it after the others.
    for _ in range(len(leaves) + 1):
        refused = []
        for table in leaves:
            try:
                removed[table] = removed.get(table, 0) + _delete(
                    table, [(c, by_column[c]) for c in sorted(tables[table] & set(by_column)) if by_column[c]])
            except pymysql.err.IntegrityError:
                refused.append(table)
        if not refused:
            break
        leaves = refused
    parent_rows = {"orders": [("id", orders), ("member_id", members)],
                   "reservations": [("order_id", orders), ("member_id", members)],
                   "stock": [("product_id", products)], "products": [("id", products)],
                   "sellers": [("member_id", members)], "members": [("id", members)]}
    for table in PARENTS:
        removed[table] = _delete(table, [(c, v) for c, v in parent_rows[table] if v])
    if "outbox" in tables and orders:  # the saga's events of these orders (keyed by order id), sent or not
        removed["outbox"] = _delete("outbox", [("message_key", orders)])
    return {t: n for t, n in removed.items() if n}


_TAG = re.compile(r"\{([pm])(\d+)(?:\.\d+)?\}")


def _remove_keys(members: Iterable[int], products: Iterable[int], orders: Iterable[str]) -> int:
    """Delete the Redis keys of these members, products and orders; the expiry-index entries of the
    members; the order buckets of the benchmark's made-up source addresses. Keys deleted."""
    r = redis_client()
    member_ids, product_ids = {str(m) for m in members}, {str(p) for p in products}
    doomed = [keys.mock_gateway(order) for order in orders]
    bucket_prefix = keys.order_bucket_by_ip(BENCH_NETWORK)
    for key in r.scan_iter(match=f"{keys.PREFIX}:*", count=5000):
        tag = _TAG.search(key)
        if tag is not None:
            if (tag.group(1) == "m" and tag.group(2) in member_ids) or (tag.group(1) == "p" and
                                                                         tag.group(2) in product_ids):
                doomed.append(key)
        elif key.startswith(bucket_prefix):
            doomed.append(key)
    expiry = [entry for entry, _ in r.zscan_iter(keys.reservation_expiry(), count=5000)
              if entry.split(":", 1)[0] in member_ids]
    removed = 0
    for chunk in _chunks(doomed, 500):
        pipe = r.pipeline(transaction=False)
        for key in chunk:  # one key per command: on a cluster the keys live in many slots
            pipe.delete(key)
        removed += sum(pipe.execute())
    for chunk in _chunks(expiry, 500):
        r.zrem(keys.reservation_expiry(), *chunk)
    return removed


def remove(members: Sequence[int], *, settle_timeout: float = 60.0, products: Sequence[int] = ()) -> dict[str, int]:
    """Delete these members, the products they sell (and `products`), every order of either, and their
    Redis keys, once the saga has finished those orders (waits at most `settle_timeout` s)."""
    members = sorted(set(members))
    products = sorted(set(products) | (_ids_in("SELECT id FROM products WHERE seller_id IN %s", members)
                                       if members else set()))
    orders = sorted(_orders(members, products))
    deadline = time.monotonic() + settle_timeout
    while settle_timeout > 0 and _pending(members, products, orders) and time.monotonic() < deadline:
        time.sleep(0.5)
        orders = sorted(_orders(members, products))
    removed = _remove_rows(members, products, orders)
    removed["redis keys"] = _remove_keys(members, products, orders)
    return removed


def remove_all(settle_timeout: float = 10.0) -> dict[str, int]:
    """Delete every benchmark account (any run's, and the older benchmarks' `bench-*` accounts) with all of theirs."""
    members = _ids("SELECT id FROM members WHERE email LIKE %s", (f"%@{DOMAIN}",))
    return remove(members, settle_timeout=settle_timeout)


def demo_counts() -> dict[str, int]:
    """Rows per table (but the consumers' processed-event records) and listed "[bench]" products: the
    before/after check that a benchmark left the demo data as it found it."""
    counts: dict[str, int] = {}
    with mysql_cursor() as cur:
        for table in sorted(_columns()):
            if table not in IGNORED and not table.startswith("schema_"):
                cur.execute(f"SELECT COUNT(*) AS n FROM `{table}`")
                counts[table] = int(cur.fetchone()["n"])
        cur.execute("SELECT COUNT(*) AS n FROM products WHERE listed = 1 AND name LIKE %s", ("[bench]%",))
        counts["listed [bench] products"] = int(cur.fetchone()["n"])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drop_fixtures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--remove", action="store_true", help="delete everything any benchmark left behind")
    args = parser.parse_args()
    if not args.remove:
        parser.error("nothing to do: --remove deletes what benchmarks left behind")
    removed = remove_all()
    print("removed: " + (", ".join(f"{name} {n:,}" for name, n in removed.items() if n) or "nothing"))


if __name__ == "__main__":
    main()
