"""The bare stock decrement (tests/support/reserve_stock.lua) on the real Redis: check, decrement, never below
zero; and a seller's stock change against reserved units."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from goodsdrop import keys
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.errors import Conflict
from goodsdrop.reservations import load_stock
from goodsdrop.stock import set_stock
from tests.support.accounts import new_account
from tests.support.reserve_stock import reserve_stock


@pytest.fixture
def product(servers) -> int:
    seller = new_account(seller=True)
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO products (seller_id, name, description, price) VALUES (%s, 'Test', 'Test', 1000)",
                    (seller.member_id,))
        product_id = cur.lastrowid
        cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, 20)", (product_id,))
    return product_id


def test_reserve_decrements_and_refuses_below_zero(product):
    assert reserve_stock(product, 5) == 15  # the first call loads the stock from MySQL
    assert reserve_stock(product, 15) == 0
    with pytest.raises(Conflict) as refused:
        reserve_stock(product, 1)
    assert refused.value.code == "OUT_OF_STOCK"
    state = redis_client().hgetall(keys.stock(product))
    assert state["available"] == "0" and state["reserved"] == "20"


def test_a_refused_reservation_changes_nothing(product):
    reserve_stock(product, 18)
    before = redis_client().hgetall(keys.stock(product))
    with pytest.raises(Conflict):
        reserve_stock(product, 3)
    assert redis_client().hgetall(keys.stock(product)) == before


def test_concurrent_reservations_never_oversell(product):
    # Loaded first, alone: the threads share this process's one MySQL connection (one per process, as
    # in a Lambda environment, which runs one invocation at a time), and the decrement is under test.
    load_stock(product)
    assert redis_client().hget(keys.stock(product), "available") == "20"

    def attempt(_):
        try:
            reserve_stock(product, 1)
            return True
        except Conflict:
            return False

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(100)))
    assert results.count(True) == 20
    assert redis_client().hget(keys.stock(product), "available") == "0"


def test_seller_cannot_set_stock_below_reserved_units(product):
    reserve_stock(product, 8)
    with pytest.raises(Conflict) as refused:
        set_stock(product, 5)
    assert refused.value.code == "INVALID_STATE"
    level = set_stock(product, 10)  # 8 stay reserved, 2 more can be sold
    assert level.stock == 2


@pytest.mark.parametrize("units", [0, -1, 10**9])
def test_nonsense_quantities_are_validation_errors(product, units):
    from goodsdrop.errors import ValidationError

    with pytest.raises(ValidationError):
        reserve_stock(product, units)
