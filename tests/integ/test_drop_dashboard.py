"""The drop dashboard: who may watch what, the report's counts against the answers buyers got, the live
drop stream on the SSE container. Real stack (API, saga, Redis, MySQL, the container)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from goodsdrop.clock import now_ms
from goodsdrop.settings import settings
from tests.support.accounts import new_account
from tests.support.orders import API, make_product, place, wait_for

STREAM = f"http://127.0.0.1:{settings.stream_port}"


@pytest.fixture(scope="module")
def drop(stack):
    """A sold-out drop of 3 units (limit 1 per member) and the answers its buyers got."""
    seller = new_account(seller=True)
    product_id = make_product(seller, 3, limit=1, price=2500)
    buyers = [new_account() for _ in range(5)]
    answers: Counter[str] = Counter()
    with httpx.Client(timeout=30) as client:
        for buyer in buyers:
            response = place(client, buyer, [(product_id, 1)])
            answers["ACCEPTED" if response.status_code == 202 else response.json()["error"]["code"]] += 1
        again = place(client, buyers[0], [(product_id, 1)])  # over the per-member limit
        answers[again.json()["error"]["code"]] += 1
        declined = place(client, new_account(), [(product_id, 1)], token="tok_declined")
        answers[declined.json()["error"]["code"]] += 1
    return {"seller": seller, "product_id": product_id, "answers": answers}


def report(account, product_id, **params) -> httpx.Response:
    return httpx.get(f"{API}/dashboard/products/{product_id}/report", params=params, headers=account.headers(),
                     timeout=30)


def test_the_report_counts_every_answer_buyers_got(drop):
    assert drop["answers"]["ACCEPTED"] == 3 and sum(drop["answers"].values()) == 7
    doc = report(drop["seller"], drop["product_id"]).json()
    counted = {code: n for code, n in doc["answers"].items() if n}
    assert counted == dict(drop["answers"])
    assert doc["attempts"] == sum(drop["answers"].values())
    assert doc["refusals"] == {code: n for code, n in drop["answers"].items() if code != "ACCEPTED"}
    assert sum(second["attempts"] for second in doc["series"]) == doc["attempts"]
    assert doc["peakAttemptsPerSecond"] >= 1
    assert doc["stock"] == 0 and doc["status"] == "sold_out"
    assert doc["soldOutAt"] is not None


def test_after_the_saga_the_report_has_the_outcomes_from_mysql(drop):
    def settled():
        doc = report(drop["seller"], drop["product_id"]).json()
        return doc if doc["confirmed"] == 3 and sum(s["confirmed"] for s in doc["series"]) == 3 else None

    doc = wait_for(settled, 60, 0.5)
    assert doc, "the three accepted orders were not confirmed"
    assert doc["reserved"] == 3 and doc["buyersServed"] == 3 and doc["unitsSold"] == 3
    assert doc["orders"]["CONFIRMED"] == 3 and doc["orders"]["PENDING"] == 0
    assert doc["paymentsDeclined"] == 0 and doc["unitsGivenBack"] == 0
    assert doc["reserveToConfirmedMs"]["p50"] is not None
    assert sum(second["confirmed"] for second in doc["series"]) == 3


def test_declined_payments_and_units_given_back_are_reported(stack):
    seller = new_account(seller=True)
    product_id = make_product(seller, 5, price=1000)
    with httpx.Client(timeout=30) as client:
        assert place(client, new_account(), [(product_id, 2)], token="tok_declined").status_code == 202

    def failed():
        doc = report(seller, product_id).json()
        # (MySQL's FAILED is committed a moment before the saga counts the second's failure in Redis)
        return doc if doc["orders"]["FAILED"] == 1 and sum(s["failed"] for s in doc["series"]) else None

    doc = wait_for(failed, 60, 0.5)
    assert doc, "the declined order did not fail"
    assert doc["paymentsDeclined"] == 1 and doc["unitsGivenBack"] == 2 and doc["confirmed"] == 0
    assert doc["stock"] == 5
    assert sum(second["failed"] for second in doc["series"]) == 1


def test_who_may_watch(drop):
    product_id = drop["product_id"]
    assert httpx.get(f"{API}/dashboard/products/{product_id}/report", timeout=30).status_code == 401
    other_seller = report(new_account(seller=True), product_id)
    assert other_seller.status_code == 403 and other_seller.json()["error"]["code"] == "FORBIDDEN"
    assert report(new_account(), product_id).status_code == 403  # a buyer
    operator = new_account(operator=True)
    assert report(operator, product_id).status_code == 200
    unknown = report(drop["seller"], 999_999_999)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    assert report(drop["seller"], "abc").status_code == 400


def test_the_list_shows_a_seller_their_own_and_an_operator_every_product(drop):
    def ids(account) -> set[str]:
        doc = httpx.get(f"{API}/dashboard/products", params={"size": "100"}, headers=account.headers(),
                        timeout=30).json()
        return {item["productId"] for item in doc["items"]}

    other = new_account(seller=True)
    theirs = make_product(other, 1)
    assert ids(drop["seller"]) == {str(drop["product_id"])}
    operator_sees = ids(new_account(operator=True))
    assert {str(drop["product_id"]), str(theirs)} <= operator_sees
    assert httpx.get(f"{API}/dashboard/products", headers=new_account().headers(), timeout=30).status_code == 403
    assert httpx.get(f"{API}/dashboard/products", timeout=30).status_code == 401


@pytest.mark.parametrize("params", [{"from": "yesterday"}, {"to": "-5"}, {"from": "2000", "to": "1000"},
                                    {"from": "1000", "to": str(1000 + 7 * 3600 * 1000)}])
def test_bad_ranges_are_400(drop, params):
    response = report(drop["seller"], drop["product_id"], **params)
    assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_range_selects_its_seconds(drop):
    end = now_ms()
    doc = report(drop["seller"], drop["product_id"], **{"from": str(end - 10_000), "to": str(end)}).json()
    assert len(doc["series"]) == 11 and doc["series"][-1]["t"] == end // 1000


class DropStream(threading.Thread):
    """Reads a drop stream in the background and keeps its `drop` events."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.events, self.status = url, [], 0
        self.opened = threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(20, read=20)) as response:
                self.status = response.status_code
                self.opened.set()
                data = None
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        data = json.loads(line[5:])
                    elif not line and data is not None:
                        self.events.append(data)
                        data = None
        except httpx.HTTPError:
            self.opened.set()


def ticket(account, product_id) -> httpx.Response:
    return httpx.post(f"{API}/dashboard/products/{product_id}/stream-ticket", headers=account.headers(), timeout=30)


def test_the_live_stream_sends_the_figures_each_second(stack):
    seller = new_account(seller=True)
    product_id = make_product(seller, 10)
    issued = ticket(seller, product_id)
    assert issued.status_code == 201, issued.text
    stream = DropStream(STREAM + issued.json()["stream"])
    stream.start()
    assert stream.opened.wait(10) and stream.status == 200
    assert wait_for(lambda: stream.events, 5), "no first frame"
    first = stream.events[0]
    assert first["productId"] == str(product_id) and first["stock"] == 10 and len(first["series"]) == 60
    with httpx.Client(timeout=30) as client:
        assert place(client, new_account(), [(product_id, 1)]).status_code == 202
    live = wait_for(lambda: [e for e in stream.events if e["totals"]["ACCEPTED"] == 1 and e["stock"] == 9], 10)
    assert live, "the accepted order did not reach the stream"
    seconds = [s["t"] for e in stream.events for s in e["series"]]
    assert seconds == sorted(set(seconds)), "each second is sent once, in order"
    assert sum(s["answers"]["ACCEPTED"] for e in stream.events for s in e["series"]) <= 1


def test_the_stream_needs_a_ticket_for_its_product(stack):
    seller = new_account(seller=True)
    mine, theirs = make_product(seller, 1), make_product(new_account(seller=True), 1)
    assert httpx.get(f"{STREAM}/stream/products/{mine}/drop", timeout=10).status_code == 401
    assert httpx.get(f"{STREAM}/stream/products/{mine}/drop?ticket=forged", timeout=10).status_code == 401
    mine_ticket = ticket(seller, mine).json()["ticket"]
    assert httpx.get(f"{STREAM}/stream/products/{theirs}/drop?ticket={mine_ticket}", timeout=10).status_code == 403
    assert ticket(seller, theirs).status_code == 403
    assert ticket(seller, 999_999_999).status_code == 404
    assert httpx.post(f"{API}/dashboard/products/{mine}/stream-ticket", timeout=30).status_code == 401


def test_a_future_drop_counts_early_clicks_as_not_on_sale(stack):
    seller = new_account(seller=True)
    product_id = make_product(seller, 5, starts_in=timedelta(hours=1))
    with httpx.Client(timeout=30) as client:
        assert place(client, new_account(), [(product_id, 1)]).status_code == 409
    doc = report(seller, product_id).json()
    assert doc["answers"]["NOT_ON_SALE"] == 1 and doc["attempts"] == 1
    assert doc["timeToSellOutSeconds"] is None
