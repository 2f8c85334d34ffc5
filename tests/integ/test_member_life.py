"""The whole life of a member over HTTP against the running stack:
sign up → mail read from moto's SES → verify → login → me → refresh → replay of the old refresh
token refused and the family killed → login again → logout → tokens refused.
"""

from __future__ import annotations

import pytest

from goodsdrop.clients import mysql_cursor
from goodsdrop.tokens import ACCESS_TOKEN_SECONDS, token_digest
from tests.support.auth_flow import api, bearer, claims_of, login, reset_local_ip_throttle
from tests.support.mail import new_email, token_of, verification_links


@pytest.fixture(scope="module")
def client(stack):
    with api() as http:
        yield http
    reset_local_ip_throttle()


def test_the_whole_life_of_a_member(client):
    email = new_email()
    signed_up = client.post("/members", json={"email": f"  {email.upper()} ", "password": "correct horse 1",
                                              "name": "김민수", "phone": "010-1234-5678",
                                              "address": "서울특별시 성동구 성수이로 12, 3층"})
    assert signed_up.status_code == 202, signed_up.text
    assert signed_up.json() == {"accepted": True, "email": email}  # the same for a taken email

    # Unverified members can sign in; their token says so.
    early = login(client, email, "correct horse 1")
    assert claims_of(early["accessToken"])["ev"] is False
    member = client.get("/members/me", headers=bearer(early["accessToken"])).json()
    assert member["email"] == email and member["emailVerified"] is False and member["role"] == "member"
    assert member["name"] == "김민수" and "password" not in str(member) and "scrypt" not in str(member)

    # The verification mail went through SES (moto): follow its link.
    (link,) = verification_links(email)
    verified = client.get("/members/verify", params={"token": token_of(link)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["member"]["emailVerified"] is True
    again = client.get("/members/verify", params={"token": token_of(link)})
    assert again.status_code == 409 and again.json()["error"]["code"] == "VERIFICATION_LINK_USED"

    pair = login(client, email, "correct horse 1")
    assert set(pair) == {"accessToken", "refreshToken", "expiresIn"} and pair["expiresIn"] == ACCESS_TOKEN_SECONDS
    assert claims_of(pair["accessToken"])["ev"] is True

    me = client.get("/members/me", headers=bearer(pair["accessToken"]))
    assert me.status_code == 200 and me.json()["id"] == member["id"] and me.json()["emailVerified"] is True

    changed = client.patch("/members/me", json={"phone": None, "address": "12 Seongsu-ro, Seoul"},
                           headers=bearer(pair["accessToken"]))
    assert changed.status_code == 200, changed.text
    assert changed.json()["phone"] is None and changed.json()["address"] == "12 Seongsu-ro, Seoul"
    assert changed.json()["name"] == "김민수"

    # Refresh rotates: a new pair, the old refresh token spent.
    rotated = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refreshToken"] != pair["refreshToken"] and second["accessToken"] != pair["accessToken"]
    assert claims_of(second["accessToken"])["sid"] == claims_of(pair["accessToken"])["sid"]
    assert client.get("/members/me", headers=bearer(second["accessToken"])).status_code == 200

    # A client that lost the answer retries at once: the same pair, nothing revoked.
    retried = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert retried.status_code == 200 and retried.json() == second

    # Replaying the spent refresh token later (past the retry grace): refused, and the whole family
    # dies with its access tokens.
    with mysql_cursor() as cur:
        cur.execute("UPDATE refresh_tokens SET used_at = used_at - INTERVAL 1 MINUTE WHERE token_hash = %s",
                    (token_digest(pair["refreshToken"]),))
    replay = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "UNAUTHORIZED" and replay.json()["error"]["details"]["reason"] == "reused"
    for token in (pair["accessToken"], second["accessToken"]):
        refused = client.get("/members/me", headers=bearer(token))
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHORIZED"
    after = client.post("/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert after.status_code == 401 and after.json()["error"]["details"]["reason"] == "revoked"

    # The member's other session (signed in before verifying) is not part of that family.
    assert client.get("/members/me", headers=bearer(early["accessToken"])).status_code == 200

    # Sign in again, then log out: the access token is refused on the very next request.
    third = login(client, email, "correct horse 1")
    assert client.get("/members/me", headers=bearer(third["accessToken"])).status_code == 200
    out = client.post("/auth/logout", headers=bearer(third["accessToken"]))
    assert out.status_code == 204 and out.content == b""
    refused = client.get("/members/me", headers=bearer(third["accessToken"]))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHORIZED"
    ended = client.post("/auth/refresh", json={"refreshToken": third["refreshToken"]})
    assert ended.status_code == 401 and ended.json()["error"]["details"]["reason"] == "revoked"
    assert client.post("/auth/logout", headers=bearer(third["accessToken"])).status_code == 401


@pytest.mark.parametrize(("email", "password", "role"), [
    ("buyer@goodsdrop.local", "buyer-pass-1", "member"),
    ("seller@goodsdrop.local", "seller-pass-1", "seller"),
])
def test_demo_accounts_sign_in(client, email, password, role):
    pair = login(client, email, password)
    claims = claims_of(pair["accessToken"])
    assert claims["role"] == role and claims["ev"] is True
    me = client.get("/members/me", headers=bearer(pair["accessToken"])).json()
    assert me["email"] == email and me["role"] == role and (me["seller"] is not None) == (role == "seller")
    assert client.post("/auth/logout", headers=bearer(pair["accessToken"])).status_code == 204
