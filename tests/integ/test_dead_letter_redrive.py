"""Dead-letter redrive (issue 14): an operator lists what was dead-lettered, fixes the cause, replays it, and the
order settles; replaying again changes nothing.

The confirmation step is made to refuse an order's OrderPlaced for good (`reject:stock-persistence`, a test-only
fault: a permanent failure, dead-lettered by the consumer at once); clearing the fault is the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from goodsdrop import payment_gateway, topics
from goodsdrop.saga import STOCK_PERSISTENCE
from goodsdrop_local.template import REPO_ROOT
from tests.support import faults
from tests.support.accounts import new_account
from tests.support.orders import (
    make_product,
    mysql_stock,
    order_status,
    place,
    redis_stock,
    wait_drained,
    wait_final,
    wait_for,
)

REJECT = f"{faults.REJECT}:{STOCK_PERSISTENCE}"


def dlq(*args: str) -> str:
    """`python -m goodsdrop_local.dlq ARGS` against the stack's broker, as an operator runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("layers/common", "local", "."))}
    done = subprocess.run([sys.executable, "-m", "goodsdrop_local.dlq", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_list_show_replay_and_the_order_settles_once(client):
    seller, buyer = new_account(seller=True), new_account()
    product = make_product(seller, 5, price=800)
    faults.inject(REJECT, product)
    try:
        order_id = place(client, buyer, [(product, 1)]).json()["orderId"]
        listed = wait_for(lambda: json.loads(dlq("list", "--json", "--key", order_id)), 60)
        assert [(d["reason"], d["consumer"], d["kind"]) for d in listed] == [
            ("INJECTED_REJECTION", "ConfirmOrderFunction", "consumer")]
        (letter,) = listed
        assert letter["source"].startswith(topics.topic(topics.ORDER_PLACED) + ":")
        # Dead-lettered, not retried: paid and persisted, the units still held.
        assert order_status(client, buyer, order_id)["status"] == "PENDING"
        assert mysql_stock(product) == 5 and redis_stock(product)["reserved"] == 1
        grouped = dlq("list", "--reason", "INJECTED_REJECTION")
        assert "INJECTED_REJECTION" in grouped and "ConfirmOrderFunction" in grouped
        shown = json.loads(dlq("show", letter["id"]))
        assert shown["value"]["type"] == "OrderPlaced" and shown["value"]["payload"]["orderId"] == order_id
        assert "INJECTED_REJECTION" in shown["detail"] or "rejected" in shown["detail"]
    finally:
        faults.clear(REJECT, product)  # the fix

    replayed = dlq("replay", "--key", order_id, "--reason", "INJECTED_REJECTION")
    assert f"{letter['id']}: INJECTED_REJECTION (ConfirmOrderFunction) replayed to" in replayed
    assert wait_final(client, buyer, order_id)["status"] == "CONFIRMED"
    assert mysql_stock(product) == 4 and redis_stock(product)["reserved"] == 0
    assert json.loads(dlq("list", "--json", "--key", order_id)) == []  # nothing waits any more
    (done,) = json.loads(dlq("list", "--json", "--all", "--key", order_id))
    assert len(done["replayedTo"]) == 1

    # Replaying the same set again does nothing: the tool skips it, and forced, the consumer drops the repeat.
    assert "replayed before" in dlq("replay", "--key", order_id)
    dlq("replay", "--key", order_id, "--again")
    wait_drained("goodsdrop-stock-persistence", topics.ORDER_PLACED)
    assert order_status(client, buyer, order_id)["status"] == "CONFIRMED"
    assert mysql_stock(product) == 4 and redis_stock(product) == redis_stock(product) | {"available": 4,
                                                                                          "reserved": 0}
    books = payment_gateway.books(order_id)
    assert books["captured"] == 800 and books["refunded"] == 0
