"""Order rules that need no servers: the template's saga wiring, ids, the request model, the scripts' headers."""

from __future__ import annotations

import re
import time

import pytest
from pydantic import ValidationError

from goodsdrop import ledger, topics
from goodsdrop.ids import event_id_for, is_ulid, new_ulid
from goodsdrop.orders import PlaceOrder, _fingerprint
from goodsdrop_local.template import REPO_ROOT, load

SAGA_TOPICS = {topics.ORDER_REQUESTED, topics.PAYMENT_SUCCEEDED, topics.ORDER_PLACED, topics.ORDER_FAILURES,
               topics.ORDER_RETURNS}


@pytest.fixture(scope="module")
def app():
    return load(environ={})


def test_every_saga_topic_has_one_consumer_with_lambda_failure_handling(app):
    by_topic = {m.topics[0].removeprefix("goodsdrop."): m for m in app.kafka}
    assert set(by_topic) >= SAGA_TOPICS
    for name in SAGA_TOPICS:
        mapping = by_topic[name]
        assert mapping.starting_position == "TRIM_HORIZON", name  # nothing published before a poller starts is lost
        assert mapping.report_item_failures and mapping.bisect_on_error, name
        assert mapping.on_failure_topic == "goodsdrop.dead-letters", name
        assert mapping.effective_retries is not None and mapping.effective_retries >= 2, name
    # The stock rebuild waits for this group (goodsdrop.ledger.caught_up): it must be the payments mapping's.
    assert by_topic[topics.ORDER_REQUESTED].consumer_group == ledger.PAYMENTS_CONSUMER_GROUP
    assert set(topics.ALL) >= SAGA_TOPICS | {topics.ORDER_CONFIRMED, topics.ORDER_CLOSED}


def test_the_expiry_job_and_the_outbox_relay_are_scheduled_and_every_order_route_is_declared(app):
    assert sorted((s.function_id, s.every_seconds) for s in app.schedules) == [("ExpireReservationsFunction", 60),
                                                                               ("RelayOutboxFunction", 60)]
    routes = {(r.method, r.path): r.authorizer for r in app.routes}
    for route in [("POST", "/orders"), ("GET", "/orders"), ("GET", "/orders/{id}"), ("POST", "/orders/{id}/cancel"),
                  ("POST", "/orders/{id}/items/{productId}/cancel"), ("POST", "/orders/{id}/items/{productId}/return"),
                  ("PATCH", "/seller/orders/{id}/items/{productId}")]:
        assert routes[route] == "MemberAuthorizer", route


def test_ulids_sort_by_time_and_event_ids_are_deterministic():
    first = new_ulid(int(time.time() * 1000))
    later = new_ulid(int(time.time() * 1000) + 1)
    assert is_ulid(first) and len(first) == 26 and first < later
    assert not is_ulid("0" * 25) and not is_ulid("I" * 26) and not is_ulid("01kaaaaaaaaaaaaaaaaaaaaaa1")
    assert event_id_for("A", "OrderPlaced") == event_id_for("A", "OrderPlaced") != event_id_for("B", "OrderPlaced")


def test_the_fingerprint_ignores_key_order_but_not_content():
    a = PlaceOrder.model_validate({"paymentToken": "tok_ok", "items": [{"quantity": 1, "productId": "5"}]})
    b = PlaceOrder.model_validate({"items": [{"productId": "5", "quantity": 1}], "paymentToken": "tok_ok"})
    c = PlaceOrder.model_validate({"items": [{"productId": "5", "quantity": 2}], "paymentToken": "tok_ok"})
    assert _fingerprint(a) == _fingerprint(b) != _fingerprint(c)


@pytest.mark.parametrize("body", [
    {"items": [{"productId": "01", "quantity": 1}], "paymentToken": "tok_ok"},
    {"items": [{"productId": "1", "quantity": True}], "paymentToken": "tok_ok"},
    {"items": [{"productId": "1", "quantity": 1}] * 21, "paymentToken": "tok_ok"},
    {"items": [{"productId": "1", "quantity": 1}], "paymentToken": ""},
    {"items": [{"productId": "1", "quantity": 1}], "paymentToken": "tök"},
])
def test_the_request_model_refuses_malformed_lines(body):
    with pytest.raises(ValidationError):
        PlaceOrder.model_validate(body)


@pytest.mark.parametrize("name", ["claim_order", "unclaim_order", "take_units", "settle_hold", "return_held",
                                  "restock_units", "shift_available", "load_stock", "load_held", "release_lock"])
def test_every_script_documents_its_keys_arguments_and_result(name):
    text = (REPO_ROOT / "lua" / f"{name}.lua").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
    assert re.search(r"KEYS\[1\]", header) and re.search(r"ARGV\[1\]", header) and "Returns" in header
