"""Sharded stock for hot drops, through the real HTTP path and saga (Redis, MariaDB, Kafka).

A product's live stock is split over S shards (each its own hash slot); a buyer's reservation
starts at the shard the member hashes to and passes over the others if it has too few units.
These tests check what a drop must guarantee whatever the shards: exact sell-out (0 oversold),
the last unit sellable wherever it sits, the per-member limit held exactly (its count lives with
the member), split lines, payment failures and expiry giving units back to their shard and to the
member's count, a seller's stock change mid-drop, and recovery after Redis lost its data.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bench import invariants
from goodsdrop import keys, reservations, topics
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.errors import Conflict
from goodsdrop.ids import new_ulid
from goodsdrop.reservations import home_shard
from goodsdrop.saga import expire_reservation
from goodsdrop.stock import read_stock, set_stock
from tests.support.accounts import new_account
from tests.support.catalogue import create_product
from tests.support.orders import (
    API,
    make_product,
    mysql_stock,
    place,
    redis_stock,
    wait_drained,
    wait_final,
    wait_for,
)

THREADS = 24


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=THREADS)) as c:
        yield c


def shard_levels(product: int, shards: int) -> list[dict[str, int]]:
    return [{k: int(v) for k, v in redis_client().hgetall(keys.stock(product, s)).items()} for s in range(shards)]


def held(member_id: int | str, product: int) -> int:
    return int(redis_client().hget(keys.member_held(member_id), str(product)) or 0)


def holds_of(order_id: str, product: int, shards: int) -> dict[int, int]:
    """Units the order holds in each shard (shards without a hold left out)."""
    found = {}
    for shard in range(shards):
        hold = redis_client().hget(keys.stock_holds(product, shard), order_id)
        if hold:
            found[shard] = int(hold.rsplit(":", 1)[1])
    return found


def taken_from(order_id: str, product: int, shards: int) -> dict[int, int]:
    """Units the order took from each shard, whether still held or already sold/released (its markers)."""
    found = holds_of(order_id, product, shards)
    for shard in range(shards):
        marker = redis_client().get(keys.stock_settled(product, order_id, shard))
        if marker and int(marker.split(":")[1]) > 0:
            found[shard] = int(marker.split(":")[1])
    return found


def buyers_homed(shards: int, wanted_home: int | None = None, avoid: int | None = None, count: int = 1) -> list:
    """New verified members whose home shard is `wanted_home` (or is not `avoid`)."""
    found = []
    while len(found) < count:
        account = new_account()
        home = home_shard(account.member_id, shards)
        if (wanted_home is None or home == wanted_home) and (avoid is None or home != avoid):
            found.append(account)
    return found


def assert_invariants(products: list[int], accepted: list[str], start: dict[int, int]) -> None:
    assert invariants.wait_settled(products, accepted, seconds=120) is not None, "the saga never settled"
    report = invariants.check(products, accepted, start)
    assert report.ok, report.violations


@pytest.mark.parametrize("shards", [4, 8])
def test_a_sharded_drop_sells_exactly_its_stock_to_many_concurrent_buyers(client, seller, shards):
    stock, limit = 40, 2
    product = make_product(seller, stock, price=5_000, limit=limit, shards=shards)
    assert read_stock(product).stock == stock
    assert [level["available"] for level in shard_levels(product, shards)] == [stock // shards] * shards
    buyers = [new_account() for _ in range(60)]
    attempts = [buyer for buyer in buyers for _ in range(2)]  # 120 one-unit requests, 2 per buyer at once
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda b: (b.member_id, place(client, b, [(product, 1)])), attempts))
    assert {r.status_code for _, r in results} <= {202, 409}
    accepted = [(member, r.json()["orderId"]) for member, r in results if r.status_code == 202]
    refused = Counter(r.json()["error"]["code"] for _, r in results if r.status_code == 409)
    assert len(accepted) == stock  # sold out exactly: every shard was emptied, none oversold
    assert set(refused) <= {"OUT_OF_STOCK", "PURCHASE_LIMIT_EXCEEDED"} and refused["OUT_OF_STOCK"] > 0
    assert max(Counter(member for member, _ in accepted).values()) <= limit
    assert all(level["available"] == 0 for level in shard_levels(product, shards))
    for member, order_id in accepted:
        assert wait_final(client, next(b for b in buyers if b.member_id == member), order_id)["status"] == "CONFIRMED"
    assert mysql_stock(product) == 0
    assert redis_stock(product, shards) | {"version": 0} == {"available": 0, "reserved": 0, "version": 0}
    assert_invariants([product], [o for _, o in accepted], {product: stock})


def test_a_hot_drop_created_with_shards_spreads_its_stock_and_readers_see_the_sum(seller):
    created = create_product(seller, stock=10, stockShards=4)
    product = int(created["id"])
    assert created["stock"] == 10
    assert [level["available"] for level in shard_levels(product, 4)] == [3, 3, 2, 2]
    detail = httpx.get(f"{API}/products/{product}").json()
    assert detail["stock"] == 10 and detail["status"] == "on_sale"
    assert httpx.get(f"{API}/products/{product}/stock").json()["stock"] == 10
    redis_client().hincrby(keys.stock(product, 3), "available", -2)  # as if shard 3 sold its units
    assert httpx.get(f"{API}/products/{product}/stock").json()["stock"] == 8  # every shard counts
    redis_client().hincrby(keys.stock(product, 3), "available", 2)


def test_declined_payments_in_a_sharded_drop_give_units_back_and_they_sell_again(client, seller):
    shards, stock = 8, 24
    product = make_product(seller, stock, price=2_000, limit=1, shards=shards)
    buyers = [new_account() for _ in range(40)]
    tokens = ["tok_ok", "tok_declined", "tok_error"]
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda ib: (ib[1], tokens[ib[0] % 3], place(client, ib[1], [(product, 1)],
                                                                             token=tokens[ib[0] % 3])),
                                enumerate(buyers)))
    accepted = [(b, t, a.json()["orderId"]) for b, t, a in answers if a.status_code == 202]
    assert len(accepted) >= stock  # declined units came back during the drop and sold again
    finals = {o: wait_final(client, b, o) for b, _, o in accepted}
    declined = [(b, o) for b, t, o in accepted if t == "tok_declined"]
    confirmed = [o for _, t, o in accepted if t != "tok_declined"]
    assert declined and all(finals[o]["failureReason"] == "PAYMENT_DECLINED" for _, o in declined)
    assert all(finals[o]["status"] == "CONFIRMED" for o in confirmed)
    assert len(confirmed) <= stock
    assert all(held(b.member_id, product) == 0 for b, _ in declined)  # their limit came back
    left = stock - len(confirmed)
    assert read_stock(product).stock == left and mysql_stock(product) == left
    # The given-back units, wherever their shards are, sell again - to the declined buyers too.
    wave = [b for b, _ in declined] + [new_account() for _ in range(max(left - len(declined), 0))]
    wave.append(new_account())
    again = [place(client, b, [(product, 1)]) for b in wave]
    assert [a.status_code for a in again] == [202] * left + [409] * (len(wave) - left)
    accepted_ids = [o for _, _, o in accepted] + [a.json()["orderId"] for a in again[:left]]
    assert_invariants([product], accepted_ids, {product: stock})
    assert mysql_stock(product) == 0


def test_a_cancelled_sharded_order_restocks_once_and_gives_the_limit_back(client, seller):
    shards = 4
    product = make_product(seller, 8, price=1_000, limit=3, shards=shards)
    buyer = new_account()
    order_id = place(client, buyer, [(product, 3)]).json()["orderId"]
    assert wait_final(client, buyer, order_id)["status"] == "CONFIRMED"
    assert held(buyer.member_id, product) == 3 and read_stock(product).stock == 5
    cancelled = client.post(f"{API}/orders/{order_id}/cancel", headers=buyer.headers())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert wait_for(lambda: mysql_stock(product) == 8, seconds=30)
    assert read_stock(product).stock == 8 and held(buyer.member_id, product) == 0
    assert redis_client().exists(keys.stock_restocked(product, order_id, home_shard(buyer.member_id, shards)))
    assert place(client, buyer, [(product, 3)]).status_code == 202  # the limit came back with the units


def test_the_last_unit_is_sellable_from_a_shard_no_buyer_hashes_to(client, seller):
    shards = 4
    product = make_product(seller, shards, price=700, shards=shards)  # one unit in each shard
    read_stock(product)
    buyers = buyers_homed(shards, wanted_home=2, count=shards + 1)  # every buyer starts at shard 2
    answers = [place(client, buyer, [(product, 1)]) for buyer in buyers]
    assert [a.status_code for a in answers] == [202] * shards + [409]
    assert answers[-1].json()["error"]["code"] == "OUT_OF_STOCK"
    assert answers[-1].json()["error"]["details"]["available"] == 0
    order_ids = [a.json()["orderId"] for a in answers[:-1]]
    # The first buyer took shard 2's unit; the others found it empty and took the rest, wherever it was.
    assert taken_from(order_ids[0], product, shards) == {2: 1}
    assert sorted(next(iter(taken_from(o, product, shards))) for o in order_ids) == [0, 1, 2, 3]
    assert_invariants([product], order_ids, {product: shards})


def test_an_empty_home_shard_is_refilled_from_the_fullest_one(seller):
    shards = 4
    product = make_product(seller, 40, price=100, shards=shards)
    read_stock(product)
    # Empty shard 1 as a run of buyers would, then one more buyer homed there triggers the refill.
    redis_client().hset(keys.stock(product, 1), "available", 0)
    redis_client().hincrby(keys.stock(product, 0), "available", 10)  # keep the units: 20 in shard 0 now
    buyer = buyers_homed(shards, wanted_home=1)[0]
    now = int(time.time() * 1000)
    res = reservations.Reservation(new_ulid(), str(buyer.member_id), [reservations.Line(product, 1, 100)],
                                   [reservations.Terms(None, None, shards)], "fp", uuid.uuid4().hex, now, now + 60_000)
    assert reservations.reserve(res).kind == "RESERVED"
    levels = [level["available"] for level in shard_levels(product, shards)]
    assert sum(levels) == 39  # nothing created, nothing lost
    assert levels[1] > 0  # the buyer's home shard got units from the fullest shard
    assert reservations.rebalance(product, shards) == 0  # no shard is empty any more
    reservations.release_order(res.order_id, buyer.member_id, res.lines)
    assert sum(level["available"] for level in shard_levels(product, shards)) == 40


def test_one_member_racing_over_shards_never_passes_the_limit(client, seller):
    shards, limit = 8, 3
    product = make_product(seller, 50, price=300, limit=limit, shards=shards)
    buyer = new_account()
    racing = 10  # the member's order bucket holds 10 tokens (burst): none of these is rate-limited
    with ThreadPoolExecutor(racing) as pool:
        answers = list(pool.map(lambda _: place(client, buyer, [(product, 1)]), range(racing)))
    assert Counter(a.status_code for a in answers) == {202: limit, 409: racing - limit}
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"PURCHASE_LIMIT_EXCEEDED"}
    assert held(buyer.member_id, product) == limit
    two = place(client, new_account(), [(product, 2)])  # other members are not affected
    assert two.status_code == 202
    order_ids = [a.json()["orderId"] for a in answers if a.status_code == 202] + [two.json()["orderId"]]
    assert_invariants([product], order_ids, {product: 50})
    assert held(buyer.member_id, product) == limit  # sold units stay counted
    assert place(client, buyer, [(product, 1)]).json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED"


def test_a_multi_unit_line_is_split_over_shards_and_a_declined_payment_gives_each_unit_back(client, seller):
    shards = 4
    product = make_product(seller, 8, price=1_000, limit=6, shards=shards)  # two units in each shard
    read_stock(product)
    buyer = new_account()
    declined = place(client, buyer, [(product, 5)], token="tok_declined")
    assert declined.status_code == 202
    order_id = declined.json()["orderId"]
    split = taken_from(order_id, product, shards)
    assert sum(split.values()) == 5 and len(split) == 3 and split[home_shard(buyer.member_id, shards)] == 2
    assert held(buyer.member_id, product) == 5
    doc = wait_final(client, buyer, order_id)
    assert (doc["status"], doc["failureReason"]) == ("FAILED", "PAYMENT_DECLINED")
    # Every unit went back to the shard it came from, and to the buyer's count.
    assert [level["available"] for level in shard_levels(product, shards)] == [2, 2, 2, 2]
    assert held(buyer.member_id, product) == 0
    bought = place(client, buyer, [(product, 6)])
    assert bought.status_code == 202
    assert wait_final(client, buyer, bought.json()["orderId"])["status"] == "CONFIRMED"
    assert mysql_stock(product) == 2 and held(buyer.member_id, product) == 6
    assert_invariants([product], [order_id, bought.json()["orderId"]], {product: 8})


def test_a_line_the_shards_cannot_complete_takes_nothing(client, seller):
    shards = 4
    other = make_product(seller, 3, price=100, shards=2)  # the lower id: its line is taken first
    product = make_product(seller, 6, price=100, shards=shards)
    buyer = new_account()
    refused = place(client, buyer, [(other, 2), (product, 7)])  # the first line fits, the second does not
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "OUT_OF_STOCK"
    assert refused.json()["error"]["details"] == {"productId": str(product), "available": 6}
    assert read_stock(product).stock == 6 and read_stock(other).stock == 3  # the first line's units came back
    assert held(buyer.member_id, product) == 0 and held(buyer.member_id, other) == 0
    key = uuid.uuid4().hex
    again = [place(client, buyer, [(product, 7)], key=key) for _ in range(2)]
    assert again[0].json() == again[1].json()  # the refusal is stored: a replay answers the same


def test_an_expired_sharded_reservation_goes_back_to_its_shards_and_to_the_member(seller):
    shards = 8
    product = make_product(seller, 16, price=400, limit=4, shards=shards)
    read_stock(product)
    buyer = new_account()
    now = int(time.time() * 1000)
    res = reservations.Reservation(new_ulid(), str(buyer.member_id), [reservations.Line(product, 4, 400)],
                                   [reservations.Terms(4, None, shards)], "fp", uuid.uuid4().hex, now, now + 600_000)
    assert reservations.reserve(res).kind == "RESERVED"
    assert sum(holds_of(res.order_id, product, shards).values()) == 4 and held(buyer.member_id, product) == 4
    assert expire_reservation(str(buyer.member_id), res.order_id, now + 3_600_000) == 1
    assert holds_of(res.order_id, product, shards) == {}
    assert redis_stock(product, shards) | {"version": 0} == {"available": 16, "reserved": 0, "version": 0}
    assert held(buyer.member_id, product) == 0
    assert expire_reservation(str(buyer.member_id), res.order_id, now + 3_600_000) == 0  # once only
    assert held(buyer.member_id, product) == 0
    # A late shard step of the expired order takes nothing (its hold ended in every shard).
    assert reservations.take_lines(res)[0] == "ENDED"


def test_a_seller_stock_change_mid_drop_is_spread_over_the_shards(client, seller):
    shards = 4
    product = make_product(seller, 10, price=100, shards=shards)
    read_stock(product)
    buyer = new_account()
    now = int(time.time() * 1000)
    res = reservations.Reservation(new_ulid(), str(buyer.member_id), [reservations.Line(product, 6, 100)],
                                   [reservations.Terms(None, None, shards)], "fp", uuid.uuid4().hex, now,
                                   now + 600_000)
    assert reservations.reserve(res).kind == "RESERVED"
    assert set_stock(product, 15).stock == 9  # 6 stay reserved: 15 - 6 may still be sold
    assert sum(level["available"] for level in shard_levels(product, shards)) == 9
    assert set_stock(product, 7).stock == 1
    levels = shard_levels(product, shards)
    assert all(level["available"] >= 0 for level in levels) and sum(level["available"] for level in levels) == 1
    with pytest.raises(Conflict) as below:
        set_stock(product, 5)  # below the 6 reserved units
    assert below.value.code == "INVALID_STATE" and below.value.details == {"reserved": 6}
    assert mysql_stock(product) == 7 and sum(level["available"] for level in shard_levels(product, shards)) == 1
    reservations.release_order(res.order_id, buyer.member_id, res.lines)
    assert read_stock(product).stock == 7


def test_after_redis_loses_its_data_every_shard_and_every_member_count_is_rebuilt(client, seller):
    shards = 4
    product = make_product(seller, 12, price=100, limit=3, shards=shards)
    buyer, holder = new_account(), new_account()
    sold = place(client, buyer, [(product, 3)])
    assert wait_final(client, buyer, sold.json()["orderId"])["status"] == "CONFIRMED"
    now = int(time.time() * 1000)
    res = reservations.Reservation(new_ulid(), str(holder.member_id), [reservations.Line(product, 2, 100)],
                                   [reservations.Terms(3, None, shards)], "fp", uuid.uuid4().hex, now, now + 600_000)
    assert reservations.reserve(res).kind == "RESERVED"
    from goodsdrop import ledger

    with mysql_transaction() as cur:  # the payment step recorded it; it is not paid yet
        ledger.record(cur, res.order_id, holder.member_id, res.lines, res.total, now, now + 600_000)
    redis_client().flushall()  # Redis lost everything: shards, holds, members' counts, the epoch

    # A buyer at its limit tries first, before anything was rebuilt: still refused.
    over = place(client, buyer, [(product, 1)])
    assert over.status_code == 409 and over.json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED"
    assert held(buyer.member_id, product) == 3 and held(holder.member_id, product) == 2
    assert read_stock(product).stock == 7  # 12 - 3 sold - 2 held
    assert redis_stock(product, shards)["reserved"] == 2 and len(holds_of(res.order_id, product, shards)) == 1
    late_buyers = [new_account() for _ in range(8)]
    last = [place(client, b, [(product, 1)]) for b in late_buyers]
    assert [r.status_code for r in last] == [202] * 7 + [409]
    assert expire_reservation(str(holder.member_id), res.order_id, now + 3_600_000) == 1
    assert read_stock(product).stock == 2 and held(holder.member_id, product) == 0
    wait_drained("goodsdrop-stock-persistence", topics.ORDER_PLACED)
    assert wait_for(lambda: mysql_stock(product) == 2, seconds=60)
    # (The mock gateway's books were in the flushed Redis too, so the money invariants cannot be checked.)
    assert redis_stock(product, shards) | {"version": 0} == {"available": 2, "reserved": 0, "version": 0}
    assert held(buyer.member_id, product) == 3
    assert [held(b.member_id, product) for b in late_buyers] == [1] * 7 + [0]


def test_a_hold_released_while_the_shards_are_rebuilt_comes_back_to_its_shard(seller, monkeypatch):
    from goodsdrop import ledger
    from goodsdrop.reservations import forget_shards

    shards = 4
    product = make_product(seller, 12, price=100, shards=shards)
    read_stock(product)
    buyer = new_account()
    now = int(time.time() * 1000)
    res = reservations.Reservation(new_ulid(), str(buyer.member_id), [reservations.Line(product, 3, 100)],
                                   [reservations.Terms(None, None, shards)], "fp", uuid.uuid4().hex, now,
                                   now + 600_000)
    assert reservations.reserve(res).kind == "RESERVED"
    forget_shards(product, shards)  # the next read rebuilds every shard
    real_snapshot = ledger.stock_snapshot

    def snapshot_then_release(cur, product_id, held_orders):
        found = real_snapshot(cur, product_id, held_orders)
        # The hot path gives the units back (no MySQL lock) after the rebuild read the holds.
        reservations.release_order(res.order_id, buyer.member_id, res.lines)
        return found

    monkeypatch.setattr(ledger, "stock_snapshot", snapshot_then_release)
    assert read_stock(product).stock == 12  # nothing stranded: the released units are available again
    assert redis_stock(product, shards)["reserved"] == 0 and held(buyer.member_id, product) == 0


@pytest.mark.parametrize("shards", [1, 4])
def test_a_sold_out_drop_refuses_without_claiming_and_the_refusal_replays(client, seller, shards):
    # The sold-out fast path (goodsdrop.reservations.claim._sold_out_answer): one read, nothing claimed or held.
    product = make_product(seller, 2, price=500, limit=2, shards=shards)
    first = place(client, new_account(), [(product, 2)])
    assert first.status_code == 202
    late, key = new_account(), uuid.uuid4().hex
    expiry_before = redis_client().zcard(keys.reservation_expiry())
    refused = place(client, late, [(product, 1)], key=key)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "OUT_OF_STOCK"
    assert held(late.member_id, product) == 0 and not redis_client().exists(keys.member_pending_orders(late.member_id))
    assert redis_client().zcard(keys.reservation_expiry()) <= expiry_before
    again = place(client, late, [(product, 1)], key=key)
    assert (again.status_code, again.json()) == (409, refused.json())
    reused = place(client, late, [(product, 2)], key=key)
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # A line over the member's limit hears PURCHASE_LIMIT_EXCEEDED first, sold out or not.
    over = place(client, new_account(), [(product, 3)])
    assert over.json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED", over.text
