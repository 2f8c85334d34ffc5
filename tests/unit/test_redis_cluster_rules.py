"""Redis Cluster rules that need no server: what one script or multi-key command combines shares
one slot, the live slot check of scripts, and the cluster switch reaching every function.

Slots come from redis-py's CRC16 (redis.crc.key_slot), as a cluster computes them. The test runs
(GOODSDROP_CHECK_SCRIPT_SLOTS=1) also check every script call live: goodsdrop.scripts.
"""

from __future__ import annotations

import dataclasses

import pytest
import redis

from goodsdrop import keys, scripts
from goodsdrop.scripts import CrossSlotKeys, DropScript, slots_of
from goodsdrop_local.template import load

PRODUCTS = [1, 7, 42, 100_003]
MEMBERS = ["1", "17", "900001"]
ORDER = "01JD0000000000000000000000"


def product_keys(product_id: int, shard: int = 0) -> dict[str, str]:
    """Every key of one stock shard of a product: take/settle/restock/load combine them."""
    named = {
        "stock": keys.stock(product_id, shard),
        "stock_holds": keys.stock_holds(product_id, shard),
        "stock_settled": keys.stock_settled(product_id, ORDER, shard),
        "stock_restocked": keys.stock_restocked(product_id, ORDER, shard),
        "stock_rebuild": keys.stock_rebuild(product_id, shard),
    }
    if shard == 0:  # the product's own keys live with its first shard
        named |= {"stock_loading": keys.stock_loading(product_id), "product_detail": keys.product_detail(product_id),
                  "stock_lock": keys.stock_lock(product_id)}
    return named


def member_keys(member_id: str) -> dict[str, str]:
    """Every key of one member: their cart, orders, idempotency records and revocations."""
    return {
        "cart": keys.cart(member_id),
        "revoked_member_before": keys.revoked_member_before(member_id),
        "revoked_session": keys.revoked_session(member_id, "session-1"),
        "verification_resends": keys.verification_resends(member_id),
        "order_record": keys.order_record(member_id, ORDER),
        "member_pending_orders": keys.member_pending_orders(member_id),
        "order_idempotency": keys.order_idempotency(member_id, "digest"),
        "order_idempotency_resume": keys.order_idempotency_resume(member_id, "digest"),
        "member_held": keys.member_held(member_id),
        "member_held_returned": keys.member_held_returned(member_id, ORDER),
        "member_held_rebuilt": keys.member_held_rebuilt(member_id),
    }


@pytest.mark.parametrize("product_id", PRODUCTS)
@pytest.mark.parametrize("shard", [0, 1, 7, 15])
def test_every_key_of_a_stock_shard_hashes_to_one_slot(product_id, shard):
    named = product_keys(product_id, shard)
    assert len(slots_of(named.values())) == 1, {name: slots_of([key]) for name, key in named.items()}


def test_the_shards_of_a_hot_product_spread_over_slots():
    # The point of sharding: S shards, S slots, so a cluster can serve them from different masters.
    assert len(slots_of(keys.stock(42, shard) for shard in range(16))) == 16


@pytest.mark.parametrize("member_id", MEMBERS)
def test_every_key_of_a_member_hashes_to_one_slot(member_id):
    named = member_keys(member_id)
    assert len(slots_of(named.values())) == 1, {name: slots_of([key]) for name, key in named.items()}


def test_the_scripts_key_lists_keep_to_one_slot():
    """The KEYS each script is given today (goodsdrop.stock, .reservations, .cart, .products, tests/support)."""
    p = 42
    m = "17"
    calls = {
        "claim_order": [keys.order_idempotency(m, "digest"), keys.order_record(m, ORDER),
                        keys.member_pending_orders(m), keys.member_held(m)],
        "unclaim_order": [keys.order_idempotency(m, "digest"), keys.order_record(m, ORDER),
                          keys.member_pending_orders(m), keys.member_held(m), keys.member_held_returned(m, ORDER)],
        "return_held": [keys.member_held(m), keys.member_held_returned(m, ORDER)],
        "load_held": [keys.member_held(m), keys.member_held_rebuilt(m)],
        "take_units": [keys.stock(p, 3), keys.stock_holds(p, 3), keys.stock_settled(p, ORDER, 3),
                       keys.stock_closed(p, 3)],
        "settle_hold": [keys.stock(p, 3), keys.stock_holds(p, 3), keys.stock_settled(p, ORDER, 3)],
        "restock_units": [keys.stock(p, 3), keys.stock_restocked(p, ORDER, 3)],
        "load_stock": [keys.stock(p, 3), keys.stock_holds(p, 3), keys.stock_rebuild(p, 3), keys.stock_closed(p, 3)],
        "shift_available": [keys.stock(p, 3)],
        "reserve_stock": [keys.stock(p)],
        "release_lock": [keys.stock_lock(p)],
        "put_product_detail": [keys.product_detail(p)],
        "change_cart_line": [keys.cart("17")],
    }
    for name, script_keys in calls.items():
        assert len(slots_of(script_keys)) == 1, name
    # (A script added later is covered by the live check every test run does: goodsdrop.scripts.)


def test_different_products_and_members_spread_over_slots():
    # Hash tags keep one product (or member) together, not everything together: a cluster can spread them.
    assert len(slots_of(keys.stock(p) for p in PRODUCTS)) == len(PRODUCTS)
    assert len(slots_of(keys.cart(m) for m in MEMBERS)) == len(MEMBERS)


def test_a_slot_checked_script_refuses_keys_of_two_slots_before_sending_anything():
    # A client pointed at a port nothing listens on: the refusal must come before any connection.
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    checked = DropScript(client, "return 1", "example", check_slots=True)
    with pytest.raises(CrossSlotKeys, match=r"lua/example\.lua .* several cluster slots"):
        checked(keys=[keys.stock(1), keys.stock(7)])
    with pytest.raises(CrossSlotKeys):
        checked(keys=[keys.stock(1), keys.reservation_expiry()])
    with pytest.raises(redis.exceptions.ConnectionError):  # one slot: it goes on to Redis (absent here)
        checked(keys=[keys.stock(1), keys.stock_holds(1)])


def test_the_check_is_on_for_every_script(monkeypatch):
    monkeypatch.setattr(scripts, "settings", dataclasses.replace(scripts.settings, check_script_slots=True))
    scripts.script.cache_clear()
    try:
        assert scripts.script("settle_hold").check_slots
        assert scripts.script("change_cart_line").check_slots
        assert scripts.script("claim_order").check_slots
        assert scripts.script("load_stock").check_slots
    finally:
        scripts.script.cache_clear()


def test_the_cluster_switch_reaches_every_function_only_when_set():
    # SAM parameter RedisCluster feeds GOODSDROP_REDIS_CLUSTER; locally it comes from the environment.
    on = load(environ={"GOODSDROP_REDIS_CLUSTER": "1"})
    assert on.functions and all(f.environment.get("GOODSDROP_REDIS_CLUSTER") == "1" for f in on.functions.values())
    off = load(environ={})
    assert all("GOODSDROP_REDIS_CLUSTER" not in f.environment for f in off.functions.values())
