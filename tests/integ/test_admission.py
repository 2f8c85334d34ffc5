"""Admission control on POST /orders: token buckets per member and per IP, and a drop's waiting room.

Real Redis throughout. Over HTTP: the 429 and 409 answers, the queue endpoints and who may read a
ticket. The bucket and room arithmetic is driven in-process through the scripts' clock (`at_ms`)
with small policies, so nothing waits for time to pass except one Retry-After.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from goodsdrop import admission, keys
from goodsdrop.admission import (
    POLICY,
    AdmissionPolicy,
    WaitingRoomPolicy,
    admit_order,
    join_queue,
    open_waiting_room,
    queue_standing,
)
from goodsdrop.clients import redis_client
from goodsdrop.errors import Conflict, NotFound, QueueRequired, RateLimited
from goodsdrop.ids import now_ms
from goodsdrop.ratelimit import TokenBucket, take_token
from goodsdrop.stock import read_stock
from tests.support.accounts import new_account
from tests.support.orders import API, make_product, place

OFF = TokenBucket(0, 1)
ROOM = WaitingRoomPolicy(threshold_per_second=3, admit_per_second=2, initial_batch=0, open_seconds=60,
                         pass_seconds=120)


@pytest.fixture(scope="module", autouse=True)
def running(stack):
    """Every test here needs Redis and MySQL, most the runtime too."""
    return stack


def a_test_ip() -> str:
    """A loopback address of its own (127.0.0.0/8 all reaches the stack), so each test has a fresh IP bucket."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def buckets_only(per_member: TokenBucket = OFF, per_ip: TokenBucket = OFF) -> AdmissionPolicy:
    return AdmissionPolicy(per_member, per_ip, replace(ROOM, threshold_per_second=0))


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


# ---------------------------------------------------------------------------- token buckets


def test_a_bucket_gives_its_burst_then_refills_at_its_rate():
    key, bucket, t = f"gd:test-bucket:{uuid.uuid4().hex}", TokenBucket(2, 3), now_ms()
    assert [take_token(key, bucket, t) for _ in range(3)] == [0, 0, 0]
    assert take_token(key, bucket, t) == 500  # one token every 500 ms
    assert take_token(key, bucket, t + 500) == 0
    assert take_token(key, bucket, t + 200) == 500  # a caller whose clock is behind gets no refill
    assert take_token(key, bucket, t + 10_000) == 0  # refills up to the burst, not beyond
    assert [take_token(key, bucket, t + 10_000) for _ in range(2)] == [0, 0]
    assert take_token(key, bucket, t + 10_000) > 0
    assert 0 < redis_client().pttl(key) <= 3 * 500 + 1000  # forgotten once it would be full again


def test_member_and_ip_buckets_are_independent():
    ip, other_ip = a_test_ip(), a_test_ip()
    policy, t = buckets_only(per_member=TokenBucket(1, 2), per_ip=TokenBucket(1, 3)), now_ms()
    crowd = [str(new_account().member_id) for _ in range(4)]
    for member in crowd[:3]:
        admit_order(member, ip, [], policy=policy, at_ms=t)
    with pytest.raises(RateLimited) as refused:  # a fresh member, but the IP's burst is spent
        admit_order(crowd[3], ip, [], policy=policy, at_ms=t)
    assert refused.value.headers == {"Retry-After": "1"} and refused.value.details == {"retryAfterSeconds": 1}
    admit_order(crowd[3], other_ip, [], policy=policy, at_ms=t)  # the same member from another IP
    # A member who spends their own burst does not hold back another member behind the same IP.
    busy, calm = crowd[0], crowd[1]
    third_ip = a_test_ip()
    admit_order(busy, third_ip, [], policy=policy, at_ms=t)  # busy's second (and last) token
    with pytest.raises(RateLimited):
        admit_order(busy, third_ip, [], policy=policy, at_ms=t)
    admit_order(calm, third_ip, [], policy=policy, at_ms=t)
    admit_order(busy, third_ip, [], policy=policy, at_ms=t + 1000)  # a second later busy has a token again


def test_over_http_a_member_is_refused_after_the_burst_and_recovers(client, seller):
    """The product's default bucket (5/s, burst 10): 30 attempts at once answer 429 RATE_LIMITED."""
    assert POLICY.per_member == TokenBucket(5, 10), "the stack runs the product's default member bucket"
    product = make_product(seller, 10, starts_in=timedelta(days=1))  # every admitted attempt: 409 NOT_ON_SALE
    buyer, neighbour = new_account(), new_account()
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: place(client, buyer, [(product, 1)]), range(30)))
    codes = [error_code(r) for r in answers]
    assert set(codes) == {"NOT_ON_SALE", "RATE_LIMITED"}
    assert codes.count("NOT_ON_SALE") >= 10  # the burst went through
    limited = [r for r in answers if r.status_code == 429]
    retry_after = max(int(r.headers["Retry-After"]) for r in limited)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert all(r.json()["error"]["details"]["retryAfterSeconds"] == int(r.headers["Retry-After"]) for r in limited)
    # Another member behind the same IP (every test client is 127.0.0.1) is not held back.
    assert error_code(place(client, neighbour, [(product, 1)])) == "NOT_ON_SALE"
    time.sleep(retry_after)  # the buyer does what Retry-After says
    assert error_code(place(client, buyer, [(product, 1)])) == "NOT_ON_SALE"


def test_over_http_the_bucket_is_keyed_by_the_connection_source_ip(stack, seller):
    ip = a_test_ip()
    product = make_product(seller, 10, starts_in=timedelta(days=1))
    buyer = new_account()
    with httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address=ip)) as from_ip:
        assert error_code(place(from_ip, buyer, [(product, 1)])) == "NOT_ON_SALE"
    r = redis_client()
    assert r.exists(keys.order_bucket_by_ip(ip)) == 1
    assert r.exists(keys.order_bucket_by_member(buyer.member_id)) == 1
    tokens = float(r.hget(keys.order_bucket_by_ip(ip), "tokens"))
    assert POLICY.per_ip.burst - 1 <= tokens < POLICY.per_ip.burst  # one token taken from this IP's bucket


# ---------------------------------------------------------------------------- the waiting room opens


def test_the_room_opens_when_a_seconds_attempts_pass_the_threshold(seller):
    policy = AdmissionPolicy(OFF, OFF, ROOM)
    product, calm_product = make_product(seller, 10), make_product(seller, 10)
    members = [str(new_account().member_id) for _ in range(5)]
    t = (now_ms() // 1000) * 1000 + 100  # early in a second, so the attempts below share it
    for member in members[:3]:
        admit_order(member, None, [product], policy=policy, at_ms=t)  # up to the threshold: no room
    assert redis_client().exists(keys.queue_room(product)) == 0
    with pytest.raises(QueueRequired) as queued:
        admit_order(members[3], None, [calm_product, product], policy=policy, at_ms=t + 5)
    assert queued.value.http_status == 409
    assert queued.value.details == {"productId": str(product), "queue": f"/products/{product}/queue"}
    assert 0 < redis_client().pttl(keys.queue_room(product)) <= ROOM.open_seconds * 1000
    # Still open a second later at low demand, and only for that product.
    with pytest.raises(QueueRequired):
        admit_order(members[4], None, [product], policy=policy, at_ms=t + 1000)
    admit_order(members[4], None, [calm_product], policy=policy, at_ms=t + 1000)
    # A threshold of 0 never opens a room by demand.
    quiet = make_product(seller, 10)
    off = AdmissionPolicy(OFF, OFF, replace(ROOM, threshold_per_second=0))
    for member in members:
        admit_order(member, None, [quiet], policy=off, at_ms=t)
    assert redis_client().exists(keys.queue_room(quiet)) == 0


def test_tickets_are_admitted_in_arrival_order_as_time_passes(seller):
    policy = AdmissionPolicy(OFF, OFF, ROOM)  # admits 2 tickets a second, none at the opening
    product = make_product(seller, 10)
    t0 = now_ms()
    open_waiting_room(product, policy=policy, at_ms=t0)
    members = [str(new_account().member_id) for _ in range(5)]
    random.shuffle(members)  # arrival order, not member id order
    joined = [join_queue(m, product, policy=policy, at_ms=t0 + 10) for m in members]
    assert [s.ticket for s in joined] == [1, 2, 3, 4, 5]
    assert [(s.position, s.admitted, s.estimated_wait_seconds) for s in joined] == [
        (1, False, 1), (2, False, 1), (3, False, 2), (4, False, 2), (5, False, 3)]
    assert join_queue(members[2], product, policy=policy, at_ms=t0 + 20).ticket == 3  # joining again: same ticket

    def admitted_at(ms: int) -> list[bool]:
        return [queue_standing(m, product, s.ticket, policy=policy, at_ms=t0 + ms).admitted
                for m, s in zip(members, joined, strict=True)]

    assert admitted_at(499) == [False] * 5
    assert admitted_at(500) == [True, False, False, False, False]
    assert admitted_at(1000) == [True, True, False, False, False]
    assert queue_standing(members[2], product, 3, policy=policy, at_ms=t0 + 1000).position == 1
    assert admitted_at(2000) == [True, True, True, True, False]
    assert admitted_at(2500) == [True] * 5
    assert all(redis_client().exists(keys.queue_pass(product, m)) for m in members)


def test_concurrent_joins_get_distinct_tickets_in_one_sequence(seller):
    product = make_product(seller, 10)
    open_waiting_room(product)
    members = [str(new_account().member_id) for _ in range(24)]
    read_stock(product)  # cached in Redis now: the threads below never share this process' MySQL connection
    go = threading.Barrier(8)

    def join(member: str) -> int:
        if members.index(member) < 8:
            go.wait()
        return join_queue(member, product).ticket

    with ThreadPoolExecutor(8) as pool:
        tickets = list(pool.map(join, members))
    assert sorted(tickets) == list(range(1, 25))
    held = redis_client().hgetall(keys.queue_tickets(product))  # memberId -> "<opening>:<ticket>"
    assert {m: int(t.split(":")[1]) for m, t in held.items()} == dict(zip(members, tickets, strict=True))
    assert len({t.split(":")[0] for t in held.values()}) == 1  # all of one opening


def test_a_room_closes_at_once_when_the_product_is_sold_out(seller):
    product = make_product(seller, 0)
    open_waiting_room(product)
    member = str(new_account().member_id)
    with pytest.raises(Conflict) as closed:  # nothing left to queue for: order directly (OUT_OF_STOCK)
        join_queue(member, product)
    assert closed.value.code == "NO_WAITING_ROOM"
    assert redis_client().exists(keys.queue_room(product)) == 0
    assert redis_client().exists(keys.queue_pass(product, member)) == 0


# ---------------------------------------------------------------------------- the waiting room over HTTP


def test_over_http_queue_required_then_join_then_the_pass_lets_the_order_through(client, seller):
    assert (POLICY.room.initial_batch, POLICY.room.admit_per_second) == (1, 0), "the test stack's room settings"
    product = make_product(seller, 10)
    first, second, third = new_account(), new_account(), new_account()
    open_waiting_room(product)
    refused = place(client, first, [(product, 1)])
    assert refused.status_code == 409 and error_code(refused) == "QUEUE_REQUIRED"
    assert refused.json()["error"]["details"] == {"productId": str(product), "queue": f"/products/{product}/queue"}

    def join(buyer) -> dict:
        response = client.post(f"{API}/products/{product}/queue", headers=buyer.headers())
        assert response.status_code == 200, response.text
        return response.json()

    standings = [join(b) for b in (first, second, third)]
    assert [int(s["ticket"]) for s in standings] == [1, 2, 3]
    assert standings[0] == {"productId": str(product), "ticket": "1", "position": 0, "admitted": True,
                            "estimatedWaitSeconds": 0}
    assert [(s["position"], s["admitted"], s["estimatedWaitSeconds"]) for s in standings[1:]] == [
        (1, False, None), (2, False, None)]  # this stack's room admits only its first ticket
    assert join(second) == standings[1]  # joining twice: the same ticket
    mine = client.get(f"{API}/products/{product}/queue/2", headers=second.headers())
    assert mine.status_code == 200 and mine.json() == standings[1]

    order = place(client, first, [(product, 1)])  # the admitted ticket's pass
    assert order.status_code == 202, order.text
    still = place(client, second, [(product, 1)])
    assert still.status_code == 409 and error_code(still) == "QUEUE_REQUIRED"


def test_over_http_tickets_are_their_owners_only_and_bad_ones_are_400(client, seller):
    product = make_product(seller, 10)
    open_waiting_room(product)
    owner, other = new_account(), new_account()
    ticket = client.post(f"{API}/products/{product}/queue", headers=owner.headers()).json()["ticket"]
    assert client.get(f"{API}/products/{product}/queue/{ticket}", headers=other.headers()).status_code == 404
    assert client.get(f"{API}/products/{product}/queue/{int(ticket) + 1}", headers=owner.headers()).status_code == 404
    with pytest.raises(NotFound):
        queue_standing(str(other.member_id), product, int(ticket))
    for bad in ("abc", "0", "-1", "1.5", "9" * 16):
        response = client.get(f"{API}/products/{product}/queue/{bad}", headers=owner.headers())
        assert response.status_code == 400 and response.json()["error"]["details"]["fields"] == {"ticket": "malformed"}
    assert client.post(f"{API}/products/abc/queue", headers=owner.headers()).status_code == 400
    missing = client.post(f"{API}/products/999999999/queue", headers=owner.headers())
    assert missing.status_code == 404 and error_code(missing) == "NOT_FOUND"
    unverified = client.post(f"{API}/products/{product}/queue", headers=new_account(verified=False).headers())
    assert unverified.status_code == 403 and error_code(unverified) == "EMAIL_NOT_VERIFIED"
    assert client.post(f"{API}/products/{product}/queue").status_code == 401


def test_over_http_a_retry_of_a_placed_order_gets_its_answer_after_the_room_opened(client, seller):
    product = make_product(seller, 10)
    buyer = new_account()
    key = uuid.uuid4().hex
    first = place(client, buyer, [(product, 1)], key=key)
    assert first.status_code == 202
    open_waiting_room(product)
    again = place(client, buyer, [(product, 1)], key=key)
    assert again.status_code == 202 and again.json() == first.json()
    assert error_code(place(client, buyer, [(product, 1)])) == "QUEUE_REQUIRED"  # a new order queues
    admission.close_waiting_room(product)
    assert place(client, buyer, [(product, 1)]).status_code == 202


def test_admission_survives_redis_losing_its_scripts(seller):
    """After a restart or failover Redis has no scripts: the pipelined gate loads them and runs again."""
    product = make_product(seller, 10)
    policy = AdmissionPolicy(TokenBucket(1, 1), TokenBucket(1, 1), ROOM)
    member, ip, t = str(new_account().member_id), a_test_ip(), now_ms()
    redis_client().script_flush()
    admit_order(member, ip, [product], policy=policy, at_ms=t)
    with pytest.raises(RateLimited):  # each call ran exactly once: the one token is spent
        admit_order(member, ip, [product], policy=policy, at_ms=t)
    assert redis_client().hget(keys.queue_arrivals(product), "count") == "2"
