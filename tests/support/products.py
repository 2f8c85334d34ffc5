"""Products made directly in MySQL (fast), for tests that need one of their own."""

from __future__ import annotations

from goodsdrop.clients import mysql_transaction
from tests.support.accounts import new_account


def new_product(stock: int = 120, price: int = 1000, name: str = "Test product") -> int:
    """A listed product, on sale now, of a new seller; returns its id."""
    seller = new_account(seller=True)
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO products (seller_id, name, description, price) VALUES (%s, %s, %s, %s)",
                    (seller.member_id, name, name, price))
        product_id = cur.lastrowid
        cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product_id, stock))
    return int(product_id)
