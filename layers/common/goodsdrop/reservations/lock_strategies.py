"""How reservations are serialised (`settings.stock_strategy`): the benchmark's comparison.

`lua` (the product's way: the scripts alone, atomic and lock-free), `mysql_lock` (the stock rows
locked with SELECT ... FOR UPDATE around the claim-and-take) or `redis_lock` (a Redisson-style lock
per product: SET NX PX with a token, spin-wait, compare-and-delete release). All three run the
same scripts, so they write the same records and differ only in how buyers are serialised.

Only the flash-drop benchmark (`bench.flash_drop`) picks a lock strategy. It lives in the layer
nevertheless: the benchmark compares the strategies through the real HTTP path, so the functions
select it from their environment (the template's `StockStrategy` parameter, honoured by the
local runtime and by a deploy alike); code kept in bench/ would not ship with the functions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from goodsdrop import keys
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.errors import ServiceUnavailable, ValidationError
from goodsdrop.scripts import script

LUA, MYSQL_LOCK, REDIS_LOCK = "lua", "mysql_lock", "redis_lock"
STRATEGIES = (LUA, MYSQL_LOCK, REDIS_LOCK)
LOCK_TTL_MS = 3000
LOCK_WAIT_SECONDS = 3.0


def checked(strategy: str) -> str:
    """`strategy` if it is one of STRATEGIES, else a `ValidationError` naming it."""
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown stock strategy {strategy!r}", details={"fields": {"stock_strategy": strategy}})
    return strategy


@contextmanager
def serialised(strategy: str, product_ids: list[int]) -> Iterator[None]:
    """Run the body serialised the `strategy` way over these products (`lua`: not at all)."""
    if strategy == LUA:
        yield
    elif strategy == MYSQL_LOCK:
        with mysql_transaction() as cur:
            marks = ", ".join(["%s"] * len(product_ids))
            cur.execute(f"SELECT product_id FROM stock WHERE product_id IN ({marks}) ORDER BY product_id FOR UPDATE",
                        product_ids)
            cur.fetchall()
            yield
    else:
        with _redis_locks(product_ids):
            yield


@contextmanager
def _redis_locks(product_ids: list[int]) -> Iterator[None]:
    """Redisson-style locks, taken in product order (no deadlock), each with an owner token and a lease."""
    r = redis_client()
    token = uuid.uuid4().hex
    taken: list[int] = []
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    try:
        for product_id in product_ids:
            delay = 0.001
            while not r.set(keys.stock_lock(product_id), token, nx=True, px=LOCK_TTL_MS):
                if time.monotonic() > deadline:
                    raise ServiceUnavailable("the product is busy; try again", retry_after=1)
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
            taken.append(product_id)
        yield
    finally:
        for product_id in reversed(taken):
            script("release_lock")(keys=[keys.stock_lock(product_id)], args=[token])
