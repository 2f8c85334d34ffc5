"""The three stock strategies of POST /orders' reservation step sell exactly the stock (benchmark switch).

Each runs in 8 processes at once (like 8 Lambda environments), 40 one-unit reservations at 20 units.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.ids import new_ulid
from goodsdrop.reservations import Line, Reservation, Terms, reserve
from tests.support.accounts import new_account
from tests.support.orders import make_product


def _attempt(args: tuple[str, int, int, int]) -> str:
    strategy, product, member, shards = args
    now = int(time.time() * 1000)
    res = Reservation(new_ulid(), str(member), [Line(product, 1, 100)], [Terms(5, None, shards)], "fp",
                      uuid.uuid4().hex, now, now + 600_000)
    result = reserve(res, strategy)
    return result.kind if result.kind != "REFUSED" else result.outcome["code"]


@pytest.mark.parametrize("shards", [1, 4])
@pytest.mark.parametrize("strategy", ["lua", "mysql_lock", "redis_lock"])
def test_each_strategy_sells_exactly_the_stock(servers, strategy, shards):
    product = make_product(new_account(seller=True), 20, shards=shards)
    members = [new_account().member_id for _ in range(10)]
    jobs = [(strategy, product, members[i % 10], shards) for i in range(40)]
    with multiprocessing.get_context("fork").Pool(8) as pool:
        outcomes = pool.map(_attempt, jobs)
    assert outcomes.count("RESERVED") == 20
    assert set(outcomes) == {"RESERVED", "OUT_OF_STOCK"}
    r = redis_client()
    levels = [r.hmget(keys.stock(product, shard), "available", "reserved") for shard in range(shards)]
    assert [sum(int(level[i]) for level in levels) for i in (0, 1)] == [0, 20]
    assert sum(r.hlen(keys.stock_holds(product, shard)) for shard in range(shards)) == 20
    assert sum(int(r.hget(keys.member_held(m), str(product)) or 0) for m in members) == 20
    assert r.exists(keys.stock_lock(product)) == 0  # every lock was released
