"""Refunds are never lost (issue 14): a cancel or return announces its refund only once it committed, a committed
one always gets it, and a rolled-back attempt followed by its retry refunds and restocks exactly once.

Faults come from tests/support/faults.py (through the layer's checkpoints): `fail-commit:give-back` fails the
transaction at its commit after
everything in it (the event included) was written - where the old code had already published the refund;
`crash-after-commit:give-back` kills the process between the commit and the publish.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from goodsdrop import outbox, payment_gateway, topics
from goodsdrop.clients import mysql_cursor
from goodsdrop.orders import GIVE_BACK
from goodsdrop_local.execution import FunctionPool
from goodsdrop_local.template import REPO_ROOT, load
from tests.support import faults
from tests.support.orders import API, confirmed_sale, mysql_stock, records_for, settled, wait_drained, wait_for

RETURNS_GROUP = "goodsdrop-returns"


@pytest.fixture
def sale(client):
    """A confirmed order of two products: (seller, buyer, order id, product a, product b); faults cleared after."""
    seller, buyer, order_id, a, b = confirmed_sale(client)
    yield seller, buyer, order_id, a, b
    for step in (f"{faults.FAIL_COMMIT}:{GIVE_BACK}", f"{faults.CRASH_AFTER_COMMIT}:{GIVE_BACK}"):
        for product in (a, b):
            faults.clear(step, product)


def given_back(order_id: str) -> dict[str, int]:
    """What the refund consumer did for an order: gateway refunds, MySQL refund rows, lines restocked."""
    with mysql_cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount FROM refunds WHERE order_id = %s",
                    (order_id,))
        refunds = cur.fetchone()
        cur.execute("SELECT COUNT(*) AS n FROM order_products WHERE order_id = %s AND restocked_at IS NOT NULL",
                    (order_id,))
        restocked = cur.fetchone()["n"]
    books = payment_gateway.books(order_id)
    return {"gateway_refunds": int(books["refunds"]), "gateway_refunded": int(books["refunded"]),
            "refund_rows": int(refunds["n"]), "refunded": int(refunds["amount"]), "restocked": int(restocked)}


def line_statuses(order_id: str) -> dict[str, str]:
    with mysql_cursor() as cur:
        cur.execute("SELECT o.status, op.product_id, op.delivery_status FROM orders o JOIN order_products op "
                    "ON op.order_id = o.id WHERE o.id = %s", (order_id,))
        rows = cur.fetchall()
    return {"order": rows[0]["status"], **{str(r["product_id"]): r["delivery_status"] for r in rows}}


def outbox_rows(order_id: str) -> list[dict]:
    with mysql_cursor() as cur:
        cur.execute("SELECT id, topic, sent_at FROM outbox WHERE message_key = %s AND topic = %s ORDER BY id",
                    (order_id, topics.ORDER_RETURNS))
        return list(cur.fetchall())


def test_a_cancel_whose_commit_fails_announces_nothing_and_its_retry_refunds_once(client, sale):
    since = int(time.time() * 1000) - 1000
    _, buyer, order_id, a, b = sale
    faults.inject(f"{faults.FAIL_COMMIT}:{GIVE_BACK}", a)
    failed = client.post(f"{API}/orders/{order_id}/cancel", headers=buyer.headers())
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    # Nothing of the failed attempt exists: no cancellation, no event row, nothing on the topic.
    assert line_statuses(order_id) == {"order": "CONFIRMED", str(a): "PREPARING", str(b): "PREPARING"}
    assert outbox_rows(order_id) == []
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert records_for(topics.ORDER_RETURNS, order_id, since) == []
    assert given_back(order_id)["restocked"] == 0 and mysql_stock(a) == 8 and mysql_stock(b) == 7

    faults.clear(f"{faults.FAIL_COMMIT}:{GIVE_BACK}", a)
    retried = client.post(f"{API}/orders/{order_id}/cancel", headers=buyer.headers())
    assert retried.status_code == 200 and retried.json()["status"] == "CANCELLED"
    assert wait_for(lambda: settled(a, 10) and settled(b, 10), 30)
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert given_back(order_id) == {"gateway_refunds": 2, "gateway_refunded": 2900, "refund_rows": 2,
                                    "refunded": 2900, "restocked": 2}
    assert [r["sent_at"] is not None for r in outbox_rows(order_id)] == [True]
    assert len(records_for(topics.ORDER_RETURNS, order_id, since)) == 1
    assert settled(a, 10) and settled(b, 10)  # restocked once, not twice


def test_a_return_whose_commit_fails_and_its_retry_refund_once(client, sale):
    seller, buyer, order_id, a, b = sale
    for status in ("SHIPPED", "DELIVERED"):
        response = client.patch(f"{API}/seller/orders/{order_id}/items/{a}", json={"deliveryStatus": status},
                                headers=seller.headers())
        assert response.status_code == 200
    requested = client.post(f"{API}/orders/{order_id}/items/{a}/return", headers=buyer.headers())
    assert requested.status_code == 200 and outbox_rows(order_id) == []  # a request asks for no refund yet
    # The seller's acceptance writes the refund request: its commit fails, then the seller retries.
    accept = {"json": {"decision": "ACCEPT"}, "headers": seller.headers()}
    faults.inject(f"{faults.FAIL_COMMIT}:{GIVE_BACK}", a)
    failed = client.put(f"{API}/seller/orders/{order_id}/items/{a}/return", **accept)
    assert failed.status_code == 503
    assert line_statuses(order_id)[str(a)] == "RETURN_REQUESTED" and outbox_rows(order_id) == []
    faults.clear(f"{faults.FAIL_COMMIT}:{GIVE_BACK}", a)
    retried = client.put(f"{API}/seller/orders/{order_id}/items/{a}/return", **accept)
    assert retried.status_code == 200
    assert wait_for(lambda: settled(a, 10), 30)
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert given_back(order_id) == {"gateway_refunds": 1, "gateway_refunded": 2000, "refund_rows": 1,
                                    "refunded": 2000, "restocked": 1}
    assert settled(a, 10) and mysql_stock(b) == 7


def test_a_process_killed_between_commit_and_publish_still_refunds_once(client, sale):
    since = int(time.time() * 1000) - 1000
    _, buyer, order_id, a, b = sale
    faults.inject(f"{faults.CRASH_AFTER_COMMIT}:{GIVE_BACK}", a)
    # The cancel runs in a process of its own, which the fault kills right after the commit.
    code = ("from goodsdrop import checkpoints; from tests.support.faults import observe; "
            "checkpoints.observe(observe); "
            "from goodsdrop.callers import Caller; from goodsdrop.orders import cancel_order; "
            f"cancel_order(Caller(member_id={str(buyer.member_id)!r}, role='member', email_verified=True), "
            f"{order_id!r})")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("layers/common", "local", "."))}
    died = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert died.returncode == 70, died.stderr.decode()[-2000:]
    assert line_statuses(order_id) == {"order": "CANCELLED", str(a): "CANCELLED", str(b): "CANCELLED"}
    (row,) = outbox_rows(order_id)
    assert row["sent_at"] is None  # committed, never published
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert records_for(topics.ORDER_RETURNS, order_id, since) == [] and given_back(order_id)["restocked"] == 0

    # The sweep's grace period is over (the clock driven, not waited for); the scheduled relay runs.
    with mysql_cursor() as cur:
        cur.execute("UPDATE outbox SET created_at = created_at - INTERVAL 1 MINUTE WHERE id = %s", (row["id"],))
    app = load()
    assert ("RelayOutboxFunction", 60) in [(s.function_id, s.every_seconds) for s in app.schedules]
    result = FunctionPool(app.functions).get("RelayOutboxFunction").invoke({"detail-type": "Scheduled Event"})
    assert result["published"] >= 1 or outbox.unsent(order_id) == 0  # (the runtime's own schedule may run first)
    assert wait_for(lambda: settled(a, 10) and settled(b, 10), 30)
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert given_back(order_id) == {"gateway_refunds": 2, "gateway_refunded": 2900, "refund_rows": 2,
                                    "refunded": 2900, "restocked": 2}
    assert outbox.unsent(order_id) == 0
