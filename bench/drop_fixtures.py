"""What a flash-drop run needs in the database: a seller, a pool of verified buyers, drops, tokens.

Everything is written straight into MySQL in bulk (like tests/support/accounts.py, not through
5,000 sign-ups) and is idempotent: the buyer pool `bench-buyer-<i>@bench.goodsdrop.local` and the
seller are created once and reused by every later run; each run adds only its drop products.
Access tokens are signed with the real key (`goodsdrop.tokens.issue_access_token`), exactly as the
login endpoint signs them, so the API Gateway authorizer checks them for real.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from goodsdrop.clients import mysql_connection, mysql_cursor, mysql_transaction
from goodsdrop.passwords import hash_password
from goodsdrop.tokens import issue_access_token

DOMAIN = "bench.goodsdrop.local"
SELLER_EMAIL = f"bench-seller@{DOMAIN}"
PASSWORD = "bench-pass-1"
INSERT_BATCH = 1000


@dataclass(frozen=True)
class Drop:
    """One drop: a product with `stock` units that opens at `opens_at`."""

    product_id: int
    stock: int
    per_member_limit: int | None
    price: int
    opens_at: datetime


def bench_seller() -> int:
    """The member id of the benchmark's seller (created on first use)."""
    with mysql_cursor() as cur:
        cur.execute("SELECT id FROM members WHERE email = %s", (SELLER_EMAIL,))
        row = cur.fetchone()
        if row is not None:
            return int(row["id"])
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO members (email, password_hash, name, email_verified, role) "
                    "VALUES (%s, %s, 'Bench Seller', 1, 'seller')", (SELLER_EMAIL, hash_password(PASSWORD)))
        seller_id = int(cur.lastrowid)
        cur.execute("INSERT INTO sellers (member_id, shop_name, address, contact_number, registration_number) "
                    "VALUES (%s, 'Flash Drop Bench', '1 Bench-ro, Seoul', '02-000-0000', '0000000000')",
                    (seller_id,))
    return seller_id


def buyer_pool(size: int) -> list[int]:
    """Member ids of `size` verified buyers (the missing ones are inserted in multi-row batches)."""
    with mysql_cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM members WHERE email LIKE %s", (f"bench-buyer-%@{DOMAIN}",))
        have = int(cur.fetchone()["n"])
    if have < size:
        password_hash = hash_password(PASSWORD)  # one slow hash, shared: nobody logs in as these
        conn = mysql_connection()
        for start in range(have, size, INSERT_BATCH):
            rows = [(f"bench-buyer-{i}@{DOMAIN}", password_hash, f"Bench Buyer {i}")
                    for i in range(start, min(start + INSERT_BATCH, size))]
            with conn.cursor() as cur:  # pymysql turns this into one multi-row INSERT
                cur.executemany("INSERT IGNORE INTO members (email, password_hash, name, email_verified, role) "
                                "VALUES (%s, %s, %s, 1, 'member')", rows)
    with mysql_cursor() as cur:
        cur.execute("SELECT id FROM members WHERE email LIKE %s ORDER BY id LIMIT %s",
                    (f"bench-buyer-%@{DOMAIN}", size))
        return [int(row["id"]) for row in cur.fetchall()]


def write_tokens(member_ids: list[int], path: Path) -> None:
    """One fresh access token per buyer, one per line, in `path` (the load generator reads it)."""
    path.write_text("".join(issue_access_token(m, "member", True, uuid.uuid4().hex)[0] + "\n" for m in member_ids))


def new_drop(seller_id: int, name: str, stock: int, *, opens_in: timedelta, per_member_limit: int | None,
             price: int = 39_000, stock_shards: int = 1) -> Drop:
    """A listed product with `stock` units (over `stock_shards` Redis shards) whose sales open `opens_in` from now."""
    opens_at = (datetime.now(UTC) + opens_in).replace(microsecond=0) + timedelta(seconds=1)
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit, "
                    "stock_shards) VALUES (%s, %s, 'A limited drop made by the flash-drop benchmark.', %s, %s, %s, %s)",
                    (seller_id, name, price, opens_at.replace(tzinfo=None), per_member_limit, stock_shards))
        product_id = int(cur.lastrowid)
        cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product_id, stock))
    return Drop(product_id, stock, per_member_limit, price, opens_at)
