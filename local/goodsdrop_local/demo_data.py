"""Demo data for `make up`: known accounts, a seller's catalogue, and a drop.

Accounts (also in the README): buyer@goodsdrop.local / buyer-pass-1 (verified member) and
seller@goodsdrop.local / seller-pass-1 (verified seller).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from goodsdrop.clients import mysql_transaction
from goodsdrop.passwords import hash_password

BUYER = ("buyer@goodsdrop.local", "buyer-pass-1", "Demo Buyer")
SELLER = ("seller@goodsdrop.local", "seller-pass-1", "Demo Seller")

CATALOGUE = [
    # name, description, price (won), stock, starts in (minutes, None = on sale), per-member limit
    ("Hoshino Figure 1/7", "Limited drop: hand-painted scale figure, numbered box", 189000, 500, 5, 2),
    ("Acrylic Stand Set", "Five acrylic stands from the spring event", 25000, 120, None, None),
    ("Enamel Pin: Moon", "Hard enamel pin with gold plating", 9000, 300, None, 5),
    ("Tour Hoodie (M)", "Heavyweight hoodie from the winter tour", 69000, 0, None, None),
    ("Art Book Vol. 2", "96 pages of illustrations and sketches", 42000, 80, None, None),
    ("Sticker Pack", "Twelve vinyl stickers, waterproof", 6000, 1000, None, None),
]


def load() -> str:
    """Insert the demo data once; returns what it did."""
    with mysql_transaction() as cur:
        cur.execute("SELECT id FROM members WHERE email = %s", (SELLER[0],))
        if cur.fetchone() is not None:
            return "already loaded"
        ids = {}
        for email, password, name in (BUYER, SELLER):
            cur.execute(
                "INSERT INTO members (email, password_hash, name, email_verified, role) VALUES (%s, %s, %s, 1, %s)",
                (email, hash_password(password), name, "seller" if email == SELLER[0] else "member"),
            )
            ids[email] = cur.lastrowid
        seller_id = ids[SELLER[0]]
        cur.execute(
            "INSERT INTO sellers (member_id, shop_name, address, contact_number, registration_number) "
            "VALUES (%s, %s, %s, %s, %s)",
            (seller_id, "Drop Studio", "12 Seongsu-ro, Seoul", "02-555-0100", "123-45-67890"),
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        for name, description, price, stock, starts_in, limit in CATALOGUE:
            start = now + timedelta(minutes=starts_in) if starts_in is not None else None
            cur.execute(
                "INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (seller_id, name, description, price, start, limit),
            )
            cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (cur.lastrowid, stock))
    return f"{len(CATALOGUE)} products, 2 accounts"
