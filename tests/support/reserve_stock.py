"""The bare check-and-decrement of one product's live stock, for tests that hold units without an order.

`reserve_stock.lua` (beside this file) takes units from the product's first shard in one atomic
step, with no order, hold or member limit: a test uses it to make units reserved the quick way
(orders reserve through goodsdrop.reservations, which passes over every shard and records holds,
limits and expiry). Meant for one-shard products. Its calls are slot-checked like the product's
scripts (goodsdrop.scripts.DropScript).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.errors import Conflict, ValidationError
from goodsdrop.reservations import load_stock
from goodsdrop.scripts import DropScript
from goodsdrop.settings import settings
from goodsdrop.stock import MAX_STOCK

SOURCE_PATH = Path(__file__).with_name("reserve_stock.lua")
SHORT = -1  # fewer units are available than asked for: nothing changed
NOT_LOADED = -2  # the stock is not in Redis: load it from MySQL and call again


@cache
def _script() -> DropScript:
    return DropScript(redis_client(), SOURCE_PATH.read_text(), "reserve_stock", settings.check_script_slots)


def reserve_stock(product_id: int, units: int) -> int:
    """Take `units` from the live stock atomically; returns what is left.

    Raises `Conflict(OUT_OF_STOCK)` when fewer units are available (nothing is taken then), and
    `ValidationError` for a quantity outside 1..MAX_STOCK.
    """
    if not 1 <= units <= MAX_STOCK:
        raise ValidationError("quantity must be a positive integer", details={"fields": {"quantity": "out of range"}})
    for _ in range(2):
        left = int(_script()(keys=[keys.stock(product_id)], args=[units]))
        if left == NOT_LOADED:
            load_stock(product_id)
            continue
        if left == SHORT:
            raise Conflict("not enough stock", code="OUT_OF_STOCK", details={"productId": str(product_id)})
        return left
    raise Conflict("stock is being rebuilt, try again", code="OUT_OF_STOCK", details={"productId": str(product_id)})
