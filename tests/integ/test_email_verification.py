"""Email verification as a new member meets it (issue 20), through HTTP on the running stack.

The mail's link lands on the storefront's verification page; an older link replaced by a resend
says so (410 VERIFICATION_LINK_REPLACED); verifying takes effect on the member's next request,
with the access token issued before it.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from goodsdrop.settings import settings
from tests.support.accounts import new_account
from tests.support.auth_flow import api, bearer, claims_of, login, reset_local_ip_throttle
from tests.support.mail import new_email, token_of, verification_links
from tests.support.orders import make_product


@pytest.fixture(scope="module")
def client(stack):
    with api() as c:
        yield c
    reset_local_ip_throttle()


def _sign_up(client: httpx.Client) -> str:
    email = new_email()
    response = client.post("/members", json={"email": email, "password": "password-123", "name": "Kim"})
    assert response.status_code == 202, response.text
    return email


def _code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def test_the_link_lands_on_the_storefronts_verification_page(client):
    email = _sign_up(client)
    (link,) = verification_links(email)
    assert link.startswith(f"{settings.storefront_url.rstrip('/')}/#/verify?token=")
    page = client.get(link.split("#")[0])  # what the browser loads: the storefront, which asks the API
    assert page.status_code == 200 and "app.js" in page.text
    assert "verify" in client.get("/app.js").text


def test_a_link_replaced_by_a_resend_says_so(client):
    email = _sign_up(client)
    headers = bearer(login(client, email, "password-123")["accessToken"])
    assert client.post("/members/verify/resend", headers=headers).status_code == 202
    first, latest = verification_links(email, at_least=2)
    replaced = client.get("/members/verify", params={"token": token_of(first)})
    assert replaced.status_code == 410 and _code(replaced) == "VERIFICATION_LINK_REPLACED"
    assert "newer" in replaced.json()["error"]["message"]
    assert client.get("/members/verify", params={"token": token_of(latest)}).status_code == 200
    again = client.get("/members/verify", params={"token": token_of(first)})
    assert again.status_code == 410 and _code(again) == "VERIFICATION_LINK_REPLACED"  # still not "used"
    used = client.get("/members/verify", params={"token": token_of(latest)})
    assert used.status_code == 409 and _code(used) == "VERIFICATION_LINK_USED"


def test_verifying_takes_effect_on_the_next_request_with_the_token_issued_before(client):
    seller = new_account(seller=True)
    product = make_product(seller, 5, price=100)
    email = _sign_up(client)
    early = login(client, email, "password-123")["accessToken"]
    assert claims_of(early)["ev"] is False
    body = {"items": [{"productId": str(product), "quantity": 1}], "paymentToken": "tok_ok"}
    refused = client.post("/orders", json=body, headers=bearer(early) | {"Idempotency-Key": uuid.uuid4().hex})
    assert refused.status_code == 403 and _code(refused) == "EMAIL_NOT_VERIFIED"
    (link,) = verification_links(email)
    assert client.get("/members/verify", params={"token": token_of(link)}).status_code == 200
    # The same token, not refreshed: the very next request counts the verification.
    placed = client.post("/orders", json=body, headers=bearer(early) | {"Idempotency-Key": uuid.uuid4().hex})
    assert placed.status_code == 202, placed.text
    assert client.get("/members/me", headers=bearer(early)).json()["emailVerified"] is True


def test_an_unverified_member_is_told_how_to_verify(client):
    email = _sign_up(client)
    token = login(client, email, "password-123")["accessToken"]
    refused = client.post("/orders", json={"fromCart": True, "paymentToken": "tok_ok"},
                          headers=bearer(token) | {"Idempotency-Key": uuid.uuid4().hex})
    assert refused.status_code == 403 and _code(refused) == "EMAIL_NOT_VERIFIED"
    assert "next request" in refused.json()["error"]["message"]
