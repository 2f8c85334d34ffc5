"""The saga's give-backs interleaved with the rebuilds and the hot path (the chaos drills of issue 14).

Each test drives one interleaving the drills hit by chance, step by step, with no sleeps: a step is
paused by a MySQL row lock the test holds (it blocks on that row's locking read, seen in the
process list), its rival runs, then the lock goes. Steps that must run at the same time run in
processes of their own (each process has its own MySQL connection, goodsdrop.clients).
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from goodsdrop import keys, ledger
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.clock import now_ms
from goodsdrop.codes import RebuildCode, ReserveKind
from goodsdrop.events import Envelope
from goodsdrop.ids import new_ulid
from goodsdrop.orders import abort_reservation
from goodsdrop.reservations import Line, Reservation, Terms, rebuild_held, reserve, unsettle
from goodsdrop.saga import compensate_order, confirm_order
from goodsdrop.scripts import script
from goodsdrop.settings import settings
from goodsdrop.stock import read_stock
from tests.support.accounts import Account, new_account
from tests.support.orders import make_product, mysql_stock, redis_stock, wait_for

FORK = multiprocessing.get_context("fork")
LIMIT = 2


def open_order(member: Account, product: int, quantity: int = 1) -> tuple[str, Line]:
    """A reservation held in Redis (the hot path's claim and take), OPEN in the ledger, its order PENDING.

    The state a paid order is in between persistence and confirmation; no event of it is published.
    """
    started = now_ms()
    order_id = new_ulid(started)
    line = Line(product, quantity, 1000)
    res = Reservation(order_id, member.member_id, [line], [Terms(LIMIT, None, 1)], uuid.uuid4().hex,
                      uuid.uuid4().hex, started, started + 600_000)
    assert reserve(res).kind == ReserveKind.RESERVED
    with mysql_transaction() as cur:
        ledger.record(cur, order_id, member.member_id, [line], line.quantity * line.price, started,
                      started + 600_000)
        cur.execute("INSERT INTO orders (id, member_id, status, total_price) VALUES (%s, %s, 'PENDING', %s)",
                    (order_id, member.member_id, line.quantity * line.price))
    return order_id, line


def failure_event(order_id: str, member: Account) -> Envelope:
    return Envelope(type="StockPersistenceFailed", correlation_id=order_id,
                    payload={"orderId": order_id, "memberId": member.member_id, "reason": "STOCK_PERSISTENCE_FAILED"})


def _raw_connection() -> pymysql.connections.Connection:
    return pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user=settings.mysql_user,
                           password=settings.mysql_password, database=settings.mysql_database, autocommit=True,
                           cursorclass=pymysql.cursors.DictCursor)


@contextmanager
def row_locked(sql: str, args: tuple[Any, ...]) -> Iterator[None]:
    """Hold the rows `sql` (a SELECT ... FOR UPDATE) locks, on a connection of the test's own, until the block ends."""
    conn = _raw_connection()
    try:
        conn.begin()
        with conn.cursor() as cur:
            cur.execute(sql, args)
        yield
    finally:
        conn.rollback()
        conn.close()


def running(fragment: str) -> bool:
    """Whether a statement containing `fragment` is executing now (blocked: it waits for a row lock)."""
    conn = _raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE %s "
                        "AND ID <> CONNECTION_ID()", (f"%{fragment}%",))
            return int(cur.fetchone()["n"]) > 0
    finally:
        conn.close()


def _call(results: Any, name: str, fn: Callable[..., Any], *args: Any) -> None:
    try:
        results.put((name, fn(*args)))
    except BaseException as err:  # the test reports it
        results.put((name, f"raised {type(err).__name__}: {err}"))


def start(results: Any, name: str, fn: Callable[..., Any], *args: Any) -> Any:
    process = FORK.Process(target=_call, args=(results, name, fn, *args), daemon=True)
    process.start()
    return process


def only_member_rebuilt(member: Account, token: str) -> None:
    """Scope a `held` rebuild to one member: every other member with ledger rows counts as done under `token`.

    (The rebuild adds MySQL's counts to every member; the other tests' members must keep theirs.)
    """
    with mysql_cursor() as cur:
        cur.execute("SELECT DISTINCT member_id FROM reservations WHERE member_id <> %s", (member.member_id,))
        others = [str(row["member_id"]) for row in cur.fetchall()]
    pipe = redis_client().pipeline(transaction=False)
    for other in others:
        pipe.set(keys.member_held_rebuilt(other), token, ex=600)
    pipe.execute()


def held(member: Account, product: int) -> int:
    return int(redis_client().hget(keys.member_held(member.member_id), str(product)) or 0)


def test_a_held_rebuild_waits_for_a_compensation_that_gave_units_back_before_its_commit(seller):
    """The redis drill's `held` one too high: the rebuild read OPEN while Redis already had the units back."""
    buyer = new_account()
    product = make_product(seller, 5, limit=LIMIT)
    order_id, _ = open_order(buyer, product)
    assert held(buyer, product) == 1
    redis_client().delete(keys.member_held(buyer.member_id))  # Redis lost the member's counts
    token = uuid.uuid4().hex
    only_member_rebuilt(buyer, token)
    results = FORK.Queue()
    # The compensation gives the unit back in Redis (released, `held` returned), then blocks on the order row.
    with row_locked("SELECT id FROM orders WHERE id = %s FOR UPDATE", (order_id,)):
        compensation = start(results, "compensation", compensate_order, failure_event(order_id, buyer))
        assert wait_for(lambda: running(f"FROM orders WHERE id = '{order_id}' FOR UPDATE"), 30)
        assert redis_client().hget(keys.member_held_returned(buyer.member_id, order_id), str(product)) == "1"
        rebuild = start(results, "rebuild", rebuild_held, token)
        # Before the fix the rebuild read the ledger's committed OPEN row and finished at once; now it
        # waits for the compensation's row lock.
        assert wait_for(lambda: not rebuild.is_alive() or running("LOCK IN SHARE MODE"), 30)
    compensation.join(30)
    rebuild.join(30)
    answers = dict(results.get(timeout=10) for _ in range(2))
    assert answers["compensation"] == "failed: STOCK_PERSISTENCE_FAILED"
    assert not str(answers["rebuild"]).startswith("raised"), answers
    with mysql_cursor() as cur:
        cur.execute("SELECT state FROM reservations WHERE order_id = %s", (order_id,))
        assert cur.fetchone()["state"] == "RELEASED"
    assert held(buyer, product) == 0  # the member holds nothing: the released unit is not counted again


def placed_event(order_id: str, member: Account, line: Line) -> Envelope:
    return Envelope(type="OrderPlaced", correlation_id=order_id,
                    payload={"orderId": order_id, "memberId": member.member_id, "total": line.quantity * line.price,
                             "lines": [{"productId": str(line.product_id)}]})


def test_a_late_hot_path_release_never_gives_back_units_the_saga_sold(seller):
    """A reservation the hot path gives up on (its publish failed) after the saga confirmed it: the sale stands.

    The saga's releases undo a Redis sale only holding the order's ledger row OPEN (the sale never
    committed); the hot path cannot know, so before the fix its release put the sold unit back in
    Redis - one unit MySQL no longer had, sold again and again to buyers whose confirmation failed.
    """
    buyer = new_account()
    product = make_product(seller, 5, limit=LIMIT)
    order_id, line = open_order(buyer, product)
    assert confirm_order(placed_event(order_id, buyer, line)) == "confirmed"
    before = redis_stock(product)
    assert mysql_stock(product) == 4 and (before["available"], before["reserved"]) == (4, 0)
    started = now_ms()
    assert not abort_reservation(Reservation(order_id, buyer.member_id, [line], [Terms(LIMIT, None, 1)], "",
                                             uuid.uuid4().hex, started, started + 600_000))
    assert redis_stock(product)["available"] == 4  # Redis = MySQL - open reservations (none)
    assert held(buyer, product) == 1  # the member still bought it


def test_an_undone_settle_invalidates_a_rebuild_under_way(seller):
    """A step whose transaction failed forgets its settle and the cached stock: a rebuild that read it must not write.

    Called in the order the race runs: a rebuild froze the shard (its token) and read the holds and
    markers, the compensation's transaction failed and `unsettle` ran, then the rebuild writes.
    """
    buyer = new_account()
    product = make_product(seller, 5, limit=LIMIT)
    order_id, line = open_order(buyer, product)
    r = redis_client()
    r.set(keys.stock_rebuild(product, 0), "rebuild-under-way", px=10_000)
    unsettle(order_id, [line], buyer.member_id)
    written = script("load_stock")(keys=[keys.stock(product, 0), keys.stock_holds(product, 0),
                                         keys.stock_rebuild(product, 0)], args=["rebuild-under-way", 4, 0, 0])
    assert int(written[0]) == RebuildCode.TOKEN_LOST
    assert not r.exists(keys.stock(product, 0))  # the next read rebuilds from MySQL
    assert read_stock(product).stock == 4 and redis_stock(product)["reserved"] == 1  # the open hold counted
