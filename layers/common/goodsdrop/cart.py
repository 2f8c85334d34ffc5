"""Minimal cart access for orders placed `fromCart` (the cart issue owns the full module).

A cart is a Redis hash at `keys.cart(member_id)`: productId → quantity.
"""

from __future__ import annotations

from goodsdrop import keys
from goodsdrop.clients import redis_client


def cart_lines(member_id: int | str) -> list[tuple[int, int]]:
    """The member's cart as (product id, quantity) pairs, by product id; malformed entries skipped."""
    lines = []
    for product, quantity in redis_client().hgetall(keys.cart(member_id)).items():
        if product.isdigit() and quantity.lstrip("-").isdigit() and int(quantity) > 0:
            lines.append((int(product), int(quantity)))
    return sorted(lines)


def clear_cart(member_id: int | str) -> None:
    """Empty the member's cart."""
    redis_client().delete(keys.cart(member_id))
