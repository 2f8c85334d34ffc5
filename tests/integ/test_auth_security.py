"""Attacks and edge cases over HTTP: forged and expired tokens, login throttling and enumeration,
refresh races, password change, verification links, and one member probing another's data.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import jwt
import pytest

from goodsdrop import keys, sessions
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.clock import db_now
from goodsdrop.errors import RateLimited, Unauthorized
from goodsdrop.sessions import LOGIN_ATTEMPTS_PER_IP, LOGIN_ATTEMPTS_PER_PAIR
from goodsdrop.tokens import issue_access_token, new_opaque_token, signing_key, token_digest
from tests.support.accounts import PASSWORD, new_account
from tests.support.auth_flow import api, bearer, clean_api, login, reset_local_ip_throttle
from tests.support.mail import new_email, token_of, verification_links


@pytest.fixture(scope="module")
def client(stack):
    yield from clean_api()


def _segment(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def _error(response) -> str:
    return response.json()["error"]["code"]


# ------------------------------------------------------------------------------ forged tokens
def test_forged_and_garbled_tokens_are_refused(client):
    member = new_account()
    real = member.token()
    header, payload, signature = real.split(".")
    claims = jwt.decode(real, options={"verify_signature": False})
    now = int(time.time())
    forged = {
        "wrong key": jwt.encode(claims, "not-the-signing-key-" * 3, algorithm="HS256"),
        "alg none": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg none, no signature": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{payload}",
        "tampered role": f"{header}.{_segment(claims | {'role': 'seller'})}.{signature}",
        "tampered subject": f"{header}.{_segment(claims | {'sub': '1'})}.{signature}",
        "tampered expiry": f"{header}.{_segment(claims | {'exp': now + 10**6})}.{signature}",
        "other HMAC algorithm": jwt.encode(claims, signing_key(), algorithm="HS512"),
        "wrong issuer": jwt.encode(claims | {"iss": "evil"}, signing_key(), algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, signing_key(), algorithm="HS256"),
        "garbage": "not.a.jwt",
        "empty segments": "..",
    }
    for name, token in forged.items():
        response = client.get("/members/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert _error(response) == "UNAUTHORIZED", name
    for header_value in ("", "Bearer", f"Basic {real}", real, f"Token {real}"):
        response = client.get("/members/me", headers={"Authorization": header_value})
        assert response.status_code == 401 and _error(response) == "UNAUTHORIZED", header_value
    assert client.get("/members/me").status_code == 401
    assert client.get("/members/me", headers=bearer(real)).status_code == 200


def test_expired_token_is_401_token_expired(client):
    member = new_account()
    expired, _ = issue_access_token(member.member_id, "member", True, "s-expired", now=time.time() - 3600)
    response = client.get("/members/me", headers=bearer(expired))
    assert response.status_code == 401 and _error(response) == "TOKEN_EXPIRED"


# ------------------------------------------------------------------------------ login
def test_wrong_email_and_wrong_password_look_the_same(client):
    member = new_account()
    wrong_password = client.post("/auth/login", json={"email": member.email, "password": "wrong-password"})
    wrong_email = client.post("/auth/login", json={"email": new_email(), "password": "wrong-password"})
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert wrong_password.json() == wrong_email.json()
    assert _error(wrong_password) == "UNAUTHORIZED"


def test_login_is_throttled_per_email_and_address_even_for_the_right_password(client):
    member = new_account()
    for _ in range(LOGIN_ATTEMPTS_PER_PAIR.limit - 1):
        assert client.post("/auth/login", json={"email": member.email, "password": "nope-nope"}).status_code == 401
    login(client, member.email, PASSWORD)  # a success forgives the failures so far
    for _ in range(LOGIN_ATTEMPTS_PER_PAIR.limit):
        assert client.post("/auth/login", json={"email": member.email, "password": "nope-nope"}).status_code == 401
    for password in ("nope-nope", PASSWORD):
        blocked = client.post("/auth/login", json={"email": f" {member.email.upper()}", "password": password})
        assert blocked.status_code == 429 and _error(blocked) == "RATE_LIMITED"
        assert 0 < int(blocked.headers["Retry-After"]) <= LOGIN_ATTEMPTS_PER_PAIR.window_seconds
    # Other members are not affected.
    login(client, new_account().email, PASSWORD)
    reset_local_ip_throttle()


def test_login_is_throttled_per_source_ip(stack):
    ip = "198.51.100.23"
    key = keys.login_attempts_by_ip(ip)
    redis_client().hset(key, mapping={"n": LOGIN_ATTEMPTS_PER_IP.limit - 1, "last": 0})
    redis_client().expire(key, LOGIN_ATTEMPTS_PER_IP.window_seconds)
    try:
        first, second = new_account(), new_account()
        with pytest.raises(Unauthorized):
            sessions.check_credentials(first.email, "wrong-password", ip)
        with pytest.raises(RateLimited) as blocked:
            sessions.check_credentials(second.email, PASSWORD, ip)  # a different email, the right password
        assert 0 < int(blocked.value.headers["Retry-After"]) <= LOGIN_ATTEMPTS_PER_IP.window_seconds
        assert sessions.check_credentials(second.email, PASSWORD, "198.51.100.24")["id"] == second.member_id
    finally:
        redis_client().delete(key)


# ------------------------------------------------------------------------------ refresh
def test_racing_refreshes_of_one_token_rotate_once_and_give_both_the_same_pair(client):
    member = new_account()
    pair = login(client, member.email, PASSWORD)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: api().post("/auth/refresh", json={"refreshToken": pair["refreshToken"]}),
                                range(2)))
    assert [r.status_code for r in results] == [200, 200]
    first, second = (r.json() for r in results)
    assert first == second  # one rotation; the other is its retry (within the grace)
    assert client.get("/members/me", headers=bearer(first["accessToken"])).status_code == 200
    with mysql_cursor() as cur:  # once the grace is over, the spent token is a replay: the family dies
        cur.execute("UPDATE refresh_tokens SET used_at = used_at - INTERVAL 1 MINUTE WHERE token_hash = %s",
                    (token_digest(pair["refreshToken"]),))
    replay = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert replay.status_code == 401 and replay.json()["error"]["details"]["reason"] == "reused"
    assert client.get("/members/me", headers=bearer(first["accessToken"])).status_code == 401
    assert client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]}).status_code == 401


def test_unknown_and_expired_refresh_tokens(client):
    unknown = client.post("/auth/refresh", json={"refreshToken": new_opaque_token()})
    assert unknown.status_code == 401 and unknown.json()["error"]["details"]["reason"] == "unknown"
    member = new_account()
    pair = login(client, member.email, PASSWORD)
    with mysql_cursor() as cur:
        cur.execute("UPDATE refresh_tokens SET expires_at = %s WHERE token_hash = %s",
                    (db_now() - timedelta(seconds=1), token_digest(pair["refreshToken"])))
    expired = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert expired.status_code == 401 and expired.json()["error"]["details"]["reason"] == "expired"


def test_refresh_carries_the_current_role_and_verification(client):
    member = new_account(verified=False)
    pair = login(client, member.email, PASSWORD)
    with mysql_cursor() as cur:
        cur.execute("UPDATE members SET email_verified = 1 WHERE id = %s", (member.member_id,))
    rotated = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]}).json()
    assert jwt.decode(rotated["accessToken"], options={"verify_signature": False})["ev"] is True


# ------------------------------------------------------------------------------ password change
def test_password_change_needs_the_current_password_and_ends_other_sessions(client):
    member = new_account()
    mine, other = login(client, member.email, PASSWORD), login(client, member.email, PASSWORD)
    wrong = client.patch("/members/me/password", json={"currentPassword": "not-my-password",
                                                       "newPassword": "brand-new-pass-9"},
                         headers=bearer(mine["accessToken"]))
    assert wrong.status_code == 403 and "currentPassword" in wrong.json()["error"]["details"]["fields"]
    changed = client.patch("/members/me/password", json={"currentPassword": PASSWORD,
                                                         "newPassword": "brand-new-pass-9"},
                           headers=bearer(mine["accessToken"]))
    assert changed.status_code == 200 and changed.json() == {"passwordChanged": True, "otherSessionsRevoked": 1}
    assert client.get("/members/me", headers=bearer(other["accessToken"])).status_code == 401
    assert client.post("/auth/refresh", json={"refreshToken": other["refreshToken"]}).status_code == 401
    assert client.get("/members/me", headers=bearer(mine["accessToken"])).status_code == 200
    assert client.post("/auth/refresh", json={"refreshToken": mine["refreshToken"]}).status_code == 200
    assert client.post("/auth/login", json={"email": member.email, "password": PASSWORD}).status_code == 401
    login(client, member.email, "brand-new-pass-9")
    reset_local_ip_throttle()


# ------------------------------------------------------------------------------ verification links
def test_verification_links_expire_and_resend_is_rate_limited(client):
    email = new_email()
    assert client.post("/members", json={"email": email, "password": "password-123", "name": "Kim"}).status_code == 202
    member_id = client.post("/auth/login", json={"email": email, "password": "password-123"}).json()
    headers = bearer(member_id["accessToken"])
    with mysql_cursor() as cur:
        cur.execute("SELECT id FROM members WHERE email = %s", (email,))
        mid = cur.fetchone()["id"]
        stale = new_opaque_token()
        cur.execute("INSERT INTO email_verifications (token_hash, member_id, expires_at) VALUES (%s, %s, %s)",
                    (token_digest(stale), mid, db_now() - timedelta(seconds=1)))
    expired = client.get("/members/verify", params={"token": stale})
    assert expired.status_code == 410 and _error(expired) == "VERIFICATION_LINK_EXPIRED"
    assert client.get("/members/verify", params={"token": new_opaque_token()}).status_code == 404

    for _ in range(3):
        sent = client.post("/members/verify/resend", headers=headers)
        assert sent.status_code == 202, sent.text
    blocked = client.post("/members/verify/resend", headers=headers)
    assert blocked.status_code == 429 and _error(blocked) == "RATE_LIMITED" and int(blocked.headers["Retry-After"]) > 0
    links = verification_links(email, at_least=4)
    assert len({token_of(link) for link in links}) == 4
    assert client.get("/members/verify", params={"token": token_of(links[-1])}).status_code == 200
    # The older links were replaced by the resends: they say so (never "already used": they were not).
    replaced = client.get("/members/verify", params={"token": token_of(links[0])})
    assert replaced.status_code == 410 and _error(replaced) == "VERIFICATION_LINK_REPLACED"
    already = client.post("/members/verify/resend", headers=headers)
    assert already.status_code == 409 and _error(already) == "ALREADY_VERIFIED"
    assert client.post("/members/verify/resend").status_code == 401
    with mysql_cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM email_verifications WHERE token_hash = %s",
                    (token_of(links[-1]),))
        assert cur.fetchone()["n"] == 0  # only digests are stored


def test_sign_up_with_a_taken_email_in_any_case_changes_nothing(client):
    email = new_email()
    assert client.post("/members", json={"email": email, "password": "password-123", "name": "Lee"}).status_code == 202
    taken = client.post("/members", json={"email": f" {email.upper()} ", "password": "password-456", "name": "Park"})
    assert taken.status_code == 202 and taken.json() == {"accepted": True, "email": email}
    login(client, email, "password-123")  # the first sign-up's password, untouched
    assert client.post("/auth/login", json={"email": email, "password": "password-456"}).status_code == 401
    with mysql_cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n, MIN(name) AS name FROM members WHERE email = %s", (email,))
        assert cur.fetchone() == {"n": 1, "name": "Lee"}
    reset_local_ip_throttle()


# ------------------------------------------------------------------------------ authz probes
def test_one_member_cannot_read_or_change_another(client):
    alice, bob = new_account(), new_account()
    alice_pair, bob_pair = login(client, alice.email, PASSWORD), login(client, bob.email, PASSWORD)
    ah, bh = bearer(alice_pair["accessToken"]), bearer(bob_pair["accessToken"])

    assert client.get("/members/me", headers=ah, params={"memberId": bob.member_id, "id": bob.member_id}).json()[
        "id"] == str(alice.member_id)
    for body in ({"id": str(bob.member_id), "name": "Hacked"}, {"memberId": bob.member_id, "name": "Hacked"},
                 {"email": bob.email}, {"role": "seller"}, {"emailVerified": True}):
        response = client.patch("/members/me", json=body, headers=ah)
        assert response.status_code == 400 and _error(response) == "VALIDATION_ERROR", body
    assert client.get(f"/members/{bob.member_id}", headers=ah).status_code == 404
    assert client.patch(f"/members/{bob.member_id}", json={"name": "Hacked"}, headers=ah).status_code in (404, 405)

    # A token whose subject is rewritten to Bob's is refused.
    header, _, signature = alice_pair["accessToken"].split(".")
    claims = jwt.decode(alice_pair["accessToken"], options={"verify_signature": False})
    as_bob = f"{header}.{_segment(claims | {'sub': str(bob.member_id)})}.{signature}"
    assert client.patch("/members/me", json={"name": "Hacked"}, headers=bearer(as_bob)).status_code == 401

    # Alice's logout and password change touch only Alice's sessions.
    assert client.patch("/members/me/password", json={"currentPassword": PASSWORD, "newPassword": "alice-new-pass"},
                        headers=ah).json()["otherSessionsRevoked"] == 0
    assert client.post("/auth/logout", headers=ah).status_code == 204
    bob_me = client.get("/members/me", headers=bh)
    assert bob_me.status_code == 200 and bob_me.json()["name"] == "Test Member"
    assert bob_me.json()["email"] == bob.email and bob_me.json()["role"] == "member"
    assert client.post("/auth/refresh", json={"refreshToken": bob_pair["refreshToken"]}).status_code == 200
