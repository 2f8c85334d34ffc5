"""Taking a product off sale and back, and deleting one (issue 20), through HTTP against the real stack.

What unlisting does, each checked here: search, the detail and the stock endpoint no longer show it;
carts drop its line with a PRODUCT_UNAVAILABLE notice; the waiting room is closed and issues no
ticket; no new reservation is taken (every stock shard is closed in Redis, and a rebuild keeps it
closed), so an order is 409 PRODUCT_UNAVAILABLE; a reservation made before settles as usual; Redis
stock stays equal to MySQL's.
"""

from __future__ import annotations

import time
import uuid

from goodsdrop import keys, reservations
from goodsdrop.admission import open_waiting_room
from goodsdrop.clients import redis_client
from goodsdrop.ids import new_ulid
from goodsdrop.saga import STOCK_PERSISTENCE
from tests.support import faults
from tests.support.accounts import new_account
from tests.support.orders import (
    API,
    make_product,
    mysql_stock,
    place,
    redis_stock,
    settled,
    wait_final,
    wait_for,
)


def listing(client, seller, product, listed):
    return client.put(f"{API}/products/{product}/listing", json={"listed": listed}, headers=seller.headers())


def reserve_directly(product: int, units: int, shards: int = 1) -> reservations.ReserveResult:
    """A reservation straight at the reservation core, past every HTTP check (a request already in flight)."""
    now = int(time.time() * 1000)
    member = new_account()
    res = reservations.Reservation(order_id=new_ulid(), member_id=str(member.member_id),
                                   lines=[reservations.Line(product, units, 100)],
                                   terms=[reservations.Terms(None, None, shards)], fingerprint="fp",
                                   key_digest=uuid.uuid4().hex, now_ms=now, expires_ms=now + 600_000)
    return reservations.reserve(res)


def closed_shards(product: int, shards: int) -> list[bool]:
    return [bool(redis_client().exists(keys.stock_closed(product, shard))) for shard in range(shards)]


def test_unlisting_takes_a_product_off_sale_and_relisting_puts_it_back(client, fault):
    seller, buyer, shopper = new_account(seller=True), new_account(), new_account()
    product = make_product(seller, 10, price=100)
    assert client.post(f"{API}/cart/items", json={"productId": str(product), "quantity": 1},
                       headers=shopper.headers()).status_code == 200
    # A reservation made before the unlisting, kept open: its confirmation step fails until the fault clears.
    fault(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    pending = place(client, buyer, [(product, 2)])
    assert pending.status_code == 202
    assert redis_stock(product)["reserved"] == 2
    open_waiting_room(product)

    off = listing(client, seller, product, False)
    assert off.status_code == 200, off.text
    assert off.json()["listed"] is False and off.json()["stock"] == 8
    assert closed_shards(product, 1) == [True]
    # Gone from every buyer's view.
    assert client.get(f"{API}/products/{product}").status_code == 404
    assert client.get(f"{API}/products/{product}/stock").status_code == 404
    found = client.get(f"{API}/products", params={"sellerId": str(seller.member_id)}).json()
    assert str(product) not in {i["id"] for i in found["items"]}
    mine = client.get(f"{API}/sellers/me/products", headers=seller.headers()).json()["items"]
    assert [(i["id"], i["listed"]) for i in mine] == [(str(product), False)]
    cart = client.get(f"{API}/cart", headers=shopper.headers()).json()
    assert cart["items"] == [] and [(n["productId"], n["code"]) for n in cart["notices"]] == [
        (str(product), "PRODUCT_UNAVAILABLE")]
    assert client.post(f"{API}/cart/items", json={"productId": str(product), "quantity": 1},
                       headers=shopper.headers()).status_code == 404
    # No new reservation: over HTTP, and at the reservation core itself (a request already past its checks).
    refused = place(client, new_account(), [(product, 1)])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "PRODUCT_UNAVAILABLE"
    core = reserve_directly(product, 1)
    assert core.kind == "REFUSED" and core.outcome["code"] == "PRODUCT_UNAVAILABLE"
    # The waiting room closed with it and issues no ticket.
    assert not redis_client().exists(keys.queue_room(product))
    assert client.post(f"{API}/products/{product}/queue", headers=buyer.headers()).status_code == 404
    assert redis_stock(product) == redis_stock(product) | {"available": 8, "reserved": 2}

    # The reservation made before settles as usual once its step can run.
    faults.clear(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    assert wait_final(client, buyer, pending.json()["orderId"], 90)["status"] == "CONFIRMED"
    assert wait_for(lambda: settled(product, 8))
    # Ordered once: it can no longer be deleted, only kept off sale.
    deleted = client.delete(f"{API}/products/{product}", headers=seller.headers())
    assert deleted.status_code == 409 and deleted.json()["error"]["code"] == "PRODUCT_HAS_ORDERS"
    assert closed_shards(product, 1) == [True]  # the refused delete left it as it was: off sale

    on = listing(client, seller, product, True)
    assert on.status_code == 200 and on.json()["listed"] is True and on.json()["stock"] == 8
    assert closed_shards(product, 1) == [False]
    assert client.get(f"{API}/products/{product}").json()["stock"] == 8
    again = place(client, shopper, [(product, 3)])
    assert again.status_code == 202
    assert wait_final(client, shopper, again.json()["orderId"])["status"] == "CONFIRMED"
    assert wait_for(lambda: settled(product, 5)) and mysql_stock(product) == 5


def test_a_sharded_product_is_closed_in_every_shard_and_stays_closed_through_a_rebuild(client):
    seller = new_account(seller=True)
    product = make_product(seller, 8, price=100, shards=4)
    assert client.get(f"{API}/products/{product}/stock").json()["stock"] == 8
    assert listing(client, seller, product, False).status_code == 200
    assert closed_shards(product, 4) == [True] * 4
    for units in (1, 2, 8):
        refused = reserve_directly(product, units, shards=4)
        assert refused.kind == "REFUSED" and refused.outcome["code"] == "PRODUCT_UNAVAILABLE"
    assert redis_stock(product, 4) == redis_stock(product, 4) | {"available": 8, "reserved": 0}
    # Redis forgets the shards and their markers (a lost or evicted key): the rebuild closes them again from MySQL.
    for shard in range(4):
        redis_client().delete(keys.stock(product, shard), keys.stock_closed(product, shard))
    reservations.load_stock(product)
    assert closed_shards(product, 4) == [True] * 4
    refused = reserve_directly(product, 1, shards=4)
    assert refused.kind == "REFUSED" and refused.outcome["code"] == "PRODUCT_UNAVAILABLE"
    assert redis_stock(product, 4)["available"] == 8 == mysql_stock(product)

    assert listing(client, seller, product, True).status_code == 200
    assert closed_shards(product, 4) == [False] * 4
    everything = reserve_directly(product, 8, shards=4)  # all eight units, from every shard
    assert everything.kind == "RESERVED"
    assert redis_stock(product, 4) == redis_stock(product, 4) | {"available": 0, "reserved": 8}


def test_a_product_never_ordered_is_deleted_for_good(client):
    seller, shopper = new_account(seller=True), new_account()
    product = make_product(seller, 5)
    assert client.post(f"{API}/cart/items", json={"productId": str(product), "quantity": 2},
                       headers=shopper.headers()).status_code == 200
    assert client.delete(f"{API}/products/{product}", headers=new_account(seller=True).headers()).status_code == 403
    assert client.delete(f"{API}/products/{product}", headers=shopper.headers()).status_code == 403

    deleted = client.delete(f"{API}/products/{product}", headers=seller.headers())
    assert deleted.status_code == 204, deleted.text
    assert client.get(f"{API}/products/{product}").status_code == 404
    assert client.delete(f"{API}/products/{product}", headers=seller.headers()).status_code == 404
    assert listing(client, seller, product, True).status_code == 404  # deleted is not unlisted: no way back
    assert client.get(f"{API}/sellers/me/products", headers=seller.headers()).json()["total"] == 0
    cart = client.get(f"{API}/cart", headers=shopper.headers()).json()
    assert cart["items"] == [] and cart["notices"][0]["code"] == "PRODUCT_UNAVAILABLE"
    refused = place(client, shopper, [(product, 1)])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "PRODUCT_UNAVAILABLE"
    assert closed_shards(product, 1) == [True]


def test_a_product_with_an_open_reservation_is_not_deleted_and_stays_on_sale(client):
    seller = new_account(seller=True)
    product = make_product(seller, 5)
    assert reserve_directly(product, 1).kind == "RESERVED"  # a reservation still on its way through the saga
    refused = client.delete(f"{API}/products/{product}", headers=seller.headers())
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "PRODUCT_HAS_ORDERS" and error["details"]["reserved"] is True
    assert closed_shards(product, 1) == [False]
    assert client.get(f"{API}/products/{product}").json()["stock"] == 4
    assert reserve_directly(product, 1).kind == "RESERVED"


def test_bad_listing_requests(client):
    seller = new_account(seller=True)
    product = make_product(seller, 1)
    for body in ({"listed": "false"}, {"listed": 0}, {}, {"listed": False, "extra": 1}):
        response = client.put(f"{API}/products/{product}/listing", json=body, headers=seller.headers())
        assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR", body
    assert listing(client, new_account(seller=True), product, False).status_code == 403
    assert listing(client, new_account(), product, False).status_code == 403
    assert listing(client, seller, 10**15, False).status_code == 404
    assert client.put(f"{API}/products/abc/listing", json={"listed": False},
                      headers=seller.headers()).status_code == 400
    assert client.delete(f"{API}/products/0", headers=seller.headers()).status_code == 400
    assert client.put(f"{API}/products/{product}/listing", json={"listed": False}).status_code == 401
