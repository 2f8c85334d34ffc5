"""Hostile users on drop day (issue 15), over HTTP against the running stack and on the real Redis
and MySQL: parallel password guessing, locking a rival out, finding out who has an account, old
password hashes, the signing key's rotation, clock skew, revoked sessions after Redis loses its
data, a retried refresh, endless sessions, walking past a waiting room, names that pose as others,
a spoofed X-Forwarded-For, expensive searches and the local edge's own refusals.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import jwt
import pytest

from goodsdrop import keys, ratelimit, sessions, tokens
from goodsdrop.admission import POLICY, AdmissionPolicy, admit_order, close_waiting_room, join_queue, open_waiting_room
from goodsdrop.clients import aws_client, mysql_cursor, redis_client
from goodsdrop.clock import db_now
from goodsdrop.errors import QueueRequired, RateLimited
from goodsdrop.ids import now_ms
from goodsdrop.members import SIGN_UPS_PER_IP
from goodsdrop.ratelimit import TokenBucket
from goodsdrop.sessions import (
    LOGIN_ATTEMPTS_PER_ACCOUNT,
    LOGIN_ATTEMPTS_PER_PAIR,
    REFRESH_RETRY_GRACE_SECONDS,
    SESSION_MAX_SECONDS,
)
from goodsdrop.settings import settings
from tests.support.accounts import PASSWORD, new_account
from tests.support.auth_flow import LOCAL_IP, api, bearer, claims_of, clean_api, login, reset_local_ip_throttle
from tests.support.mail import messages_to, new_email, new_registration_number, verification_links
from tests.support.orders import make_product, place, wait_for

API = f"http://127.0.0.1:{settings.api_port}"
_ips = iter(range(1, 10**6))


def fresh_loopback() -> str:
    """A loopback address no other test uses (all of 127.0.0.0/8 reaches the stack): a fresh network."""
    n = next(_ips) + (os.getpid() % 50) * 20_000
    return f"127.{100 + n // 65536 % 100}.{n // 256 % 256}.{n % 256 or 1}"


def client_from(ip: str) -> httpx.Client:
    return httpx.Client(base_url=API, timeout=60, transport=httpx.HTTPTransport(local_address=ip))


def _code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture(scope="module")
def client(stack):
    yield from clean_api()


# ------------------------------------------------------------------------------ the login throttle race
def _guess_in_parallel(email: str, addresses: list[str]) -> Counter:
    def guess(ip: str) -> int:
        with client_from(ip) as http:
            return http.post("/auth/login", json={"email": email, "password": "not-the-password"}).status_code

    with ThreadPoolExecutor(len(addresses)) as pool:
        return Counter(pool.map(guess, addresses))


def test_fifty_parallel_guesses_from_one_address_verify_no_more_than_the_limit(client):
    """Each 401 is a password that was checked (scrypt ran); every other guess was refused before."""
    member = new_account()
    ip = fresh_loopback()
    answers = _guess_in_parallel(member.email, [ip] * 50)
    assert answers == Counter({401: LOGIN_ATTEMPTS_PER_PAIR.limit, 429: 50 - LOGIN_ATTEMPTS_PER_PAIR.limit})


def test_fifty_parallel_guesses_from_fifty_addresses_verify_no_more_than_the_accounts_limit(client):
    member = new_account()
    answers = _guess_in_parallel(member.email, [fresh_loopback() for _ in range(50)])
    assert LOGIN_ATTEMPTS_PER_ACCOUNT.free == 5
    assert answers == Counter({401: 5, 429: 45})


# ------------------------------------------------------------------------------ targeted lockout
def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out(client):
    owner = new_account()
    home, attacker = fresh_loopback(), fresh_loopback()
    with client_from(home) as at_home:
        login(at_home, owner.email, PASSWORD)  # the owner has signed in from home before
    with client_from(attacker) as evil:
        for _ in range(LOGIN_ATTEMPTS_PER_PAIR.limit):
            assert evil.post("/auth/login", json={"email": owner.email, "password": "guess-guess"}).status_code == 401
        refused = evil.post("/auth/login", json={"email": owner.email, "password": PASSWORD})
        assert refused.status_code == 429 and _code(refused) == "RATE_LIMITED"  # even with the right password
    with client_from(home) as at_home:
        login(at_home, owner.email, PASSWORD)  # before: 429 for 15 minutes
    # A third network the owner never used is held to the account's throttle: a delay, not a lockout.
    with client_from(fresh_loopback()) as elsewhere:
        delayed = elsewhere.post("/auth/login", json={"email": owner.email, "password": PASSWORD})
    assert delayed.status_code == 429
    assert 0 < int(delayed.headers["Retry-After"]) <= LOGIN_ATTEMPTS_PER_ACCOUNT.first_delay_seconds


def _attacker_guesses(horizon_seconds: int, may_guess) -> int:
    """How many passwords an attacker with unlimited addresses gets checked in `horizon_seconds`,
    retrying exactly when Retry-After says (the time is driven, nothing waits)."""
    t, end, guesses = now_ms(), now_ms() + horizon_seconds * 1000, 0
    while t < end:
        wait_seconds = may_guess(t)
        if wait_seconds == 0:
            guesses += 1
        t += wait_seconds * 1000
    return guesses


def test_brute_force_of_one_account_is_never_faster_than_before():
    """Before: 5 failures per email per 15-minute window, from any number of addresses."""

    def before(horizon: int) -> int:
        return 5 * -(-horizon // 900)

    for horizon in (900, 1800, 3600, 6 * 3600, 24 * 3600):
        email = new_email()

        def may_guess(at_ms: int, email: str = email) -> int:
            throttles = sessions.login_throttles(email, fresh_loopback(), known_network=False)
            try:
                ratelimit.reserve_attempt(throttles, "x", at_ms)  # a failed guess keeps its reservation
            except RateLimited as refused:
                return int(refused.headers["Retry-After"])
            return 0

        now = _attacker_guesses(horizon, may_guess)
        assert now <= before(horizon), (horizon, now, before(horizon))
        if horizon == 24 * 3600:
            assert now * 5 < before(horizon)  # a day: a fraction of what it was
        redis_client().delete(keys.login_attempts_by_account(sessions.login_digest(email)))


# ------------------------------------------------------------------------------ password hashes
def _old_hash(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_an_old_hash_is_upgraded_at_the_next_successful_login(client):
    member = new_account()
    with mysql_cursor() as cur:
        cur.execute("UPDATE members SET password_hash = %s WHERE id = %s", (_old_hash(PASSWORD), member.member_id))
    assert client.post("/auth/login", json={"email": member.email, "password": "wrong-pass-1"}).status_code == 401
    with mysql_cursor() as cur:
        cur.execute("SELECT password_hash FROM members WHERE id = %s", (member.member_id,))
        assert cur.fetchone()["password_hash"].startswith("scrypt$16384$")  # a wrong password changes nothing
    login(client, member.email, PASSWORD)
    with mysql_cursor() as cur:
        cur.execute("SELECT password_hash FROM members WHERE id = %s", (member.member_id,))
        assert cur.fetchone()["password_hash"].startswith("scrypt$131072$8$1$")
    login(client, member.email, PASSWORD)  # and the new hash verifies


# ------------------------------------------------------------------------------ sign-up enumeration
def test_sign_up_answers_the_same_for_a_new_and_a_registered_email_and_mails_the_owner(client):
    registered, fresh = new_account(), new_email()
    body = {"password": "another-pass-9", "name": "Kim"}
    taken = client.post("/members", json=body | {"email": registered.email})
    new = client.post("/members", json=body | {"email": fresh})
    assert taken.status_code == new.status_code == 202
    assert set(taken.json()) == set(new.json()) and taken.json()["email"] == registered.email
    assert dict(taken.headers).keys() - {"date", "content-length", "x-amzn-requestid"} == dict(
        new.headers).keys() - {"date", "content-length", "x-amzn-requestid"}
    verification_links(fresh)  # the new address got its verification link
    (mail,) = wait_for(lambda: messages_to(registered.email), seconds=10)
    assert "already has one" in mail["body"] and "/members/verify" not in mail["body"]
    login(client, registered.email, PASSWORD)  # the account is untouched
    reset_local_ip_throttle()


def test_sign_ups_are_limited_per_source_address(client):
    ip = fresh_loopback()
    key = keys.sign_ups_by_ip(ip)
    redis_client().set(key, SIGN_UPS_PER_IP.limit - 1, ex=3600)
    with client_from(ip) as http:
        body = {"password": "another-pass-9", "name": "Kim"}
        assert http.post("/members", json=body | {"email": new_email()}).status_code == 202
        refused = http.post("/members", json=body | {"email": new_email()})
    assert refused.status_code == 429 and _code(refused) == "RATE_LIMITED" and int(refused.headers["Retry-After"]) > 0
    with client_from(fresh_loopback()) as other:  # another network is not affected
        assert other.post("/members", json={"password": "another-pass-9", "name": "Kim",
                                            "email": new_email()}).status_code == 202


# ------------------------------------------------------------------------------ source IP
def test_the_source_ip_is_the_connections_never_x_forwarded_for(client):
    """From 127.0.0.1 (the address uvicorn's proxy headers used to trust) X-Forwarded-For is still ignored."""
    member = new_account()
    mark = uuid.uuid4().hex[:8]  # this run's spoofed text, to look for in every key name
    spoofed = ["203.0.113.77", f"x}}{{m1}}:evil-{mark}", f"gd:{{p1}}:{mark}", f"1.2.3.4, 5.6.7.{int(mark, 16) % 250}"]
    reset_local_ip_throttle()
    r = redis_client()
    for forwarded in spoofed:
        response = client.post("/auth/login", json={"email": member.email, "password": "wrong-pass-1"},
                               headers={"X-Forwarded-For": forwarded})
        assert response.status_code == 401
    attempts = int(r.hget(keys.login_attempts_by_ip(LOCAL_IP), "n") or 0)
    assert attempts == len(spoofed)  # every attempt counted against the connection's address
    assert r.exists(keys.login_attempts_by_ip("203.0.113.77")) == 0
    assert r.exists(keys.login_attempts_by_ip(f"5.6.7.{int(mark, 16) % 250}")) == 0
    assert not list(r.scan_iter(match=f"*{mark}*", count=1000))
    reset_local_ip_throttle()


# ------------------------------------------------------------------------------ the signing key
def test_rotating_the_signing_key_under_traffic_refuses_no_valid_token_and_drops_a_leaked_one(client):
    ssm, name = aws_client("ssm"), settings.jwt_parameter_name
    members = [new_account() for _ in range(3)]
    pairs = [login(client, m.email, PASSWORD) for m in members]
    stop, failures, served = threading.Event(), [], Counter()

    def traffic(index: int) -> None:
        pair = pairs[index]
        with api() as http:
            while not stop.is_set():
                me = http.get("/members/me", headers=bearer(pair["accessToken"]))
                if me.status_code != 200:
                    failures.append(("me", me.status_code, me.text))
                mine = http.get("/members/me", headers=members[index].headers())  # signed in this process
                if mine.status_code != 200:
                    failures.append(("in-process", mine.status_code, mine.text))
                rotated = http.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
                if rotated.status_code == 429:
                    # The stage's method throttle (AuthThrottleRate, shared by every caller), reached by
                    # three loops on a fast machine: a client waits as told and tries again.
                    time.sleep(float(rotated.headers.get("Retry-After", "1")))
                    continue
                if rotated.status_code != 200:
                    failures.append(("refresh", rotated.status_code, rotated.text))
                    return
                pair = rotated.json()
                served[index] += 1

    before = int(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Version"])
    old_token = members[0].token()
    with ThreadPoolExecutor(len(pairs)) as pool:
        running = [pool.submit(traffic, i) for i in range(len(pairs))]
        assert wait_for(lambda: min(served[i] for i in range(len(pairs))) >= 2, seconds=60)
        ssm.put_parameter(Name=name, Value=secrets.token_urlsafe(48), Type="SecureString", Overwrite=True)
        rotated_at = dict(served)
        # A token under the new key, before any API worker has refreshed: accepted at once.
        assert wait_for(lambda: tokens.keyring().current.kid == str(before + 1), seconds=15)
        fresh = members[1].token()
        assert jwt.get_unverified_header(fresh)["kid"] == str(before + 1)
        assert client.get("/members/me", headers=bearer(fresh)).status_code == 200
        # Traffic goes on past every worker's refresh; the runtime then signs with the new key.
        assert wait_for(lambda: all(served[i] >= rotated_at[i] + 5 for i in range(len(pairs))), seconds=60)
        assert wait_for(lambda: jwt.get_unverified_header(login(client, members[2].email, PASSWORD)["accessToken"])[
            "kid"] == str(before + 1), seconds=30, every=0.5)
        stop.set()
        for future in running:
            future.result()
    assert failures == []
    assert client.get("/members/me", headers=bearer(old_token)).status_code == 200  # the previous key, still trusted
    # A leaked key: rotate twice, and once the containers refresh it is trusted nowhere.
    for _ in range(2):
        ssm.put_parameter(Name=name, Value=secrets.token_urlsafe(48), Type="SecureString", Overwrite=True)
    assert wait_for(lambda: client.get("/members/me", headers=bearer(old_token)).status_code == 401,
                    seconds=settings.jwt_key_refresh_seconds * 5 + 10)
    assert wait_for(lambda: tokens.keyring().current.kid == str(before + 3), seconds=15)
    assert client.get("/members/me", headers=members[0].headers()).status_code == 200


def test_a_key_shorter_than_32_bytes_is_never_used(client, monkeypatch):
    ssm, name = aws_client("ssm"), settings.jwt_parameter_name
    good = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    member = new_account()
    token = member.token()
    assert client.get("/members/me", headers=bearer(token)).status_code == 200
    ssm.put_parameter(Name=name, Value="too-short-key-1234567890", Type="SecureString", Overwrite=True)
    try:
        # Once a worker refreshes its keys it refuses to verify (or sign) with the short one: 503, not a weak key.
        assert wait_for(lambda: client.get("/members/me", headers=bearer(token)).status_code == 503,
                        seconds=settings.jwt_key_refresh_seconds * 5 + 10)
        monkeypatch.setattr(tokens, "_ring", None)  # this process fetches now
        with pytest.raises(tokens.SigningKeyRefused):
            tokens.issue_access_token(member.member_id, "member", True, "s")
    finally:
        ssm.put_parameter(Name=name, Value=good, Type="SecureString", Overwrite=True)
        monkeypatch.undo()
    assert wait_for(lambda: client.get("/members/me", headers=member.headers()).status_code == 200,
                    seconds=settings.jwt_key_refresh_seconds * 5 + 10)


# ------------------------------------------------------------------------------ clock skew
def test_a_token_from_a_host_a_second_ahead_is_accepted(client):
    member = new_account()
    ahead, _ = tokens.issue_access_token(member.member_id, "member", True, uuid.uuid4().hex, now=time.time() + 2)
    response = client.get("/members/me", headers=bearer(ahead))
    assert response.status_code == 200, response.text


# ------------------------------------------------------------------------------ deny-list after Redis loss
def _forget_deny_list(member_id: int, access_token: str) -> None:
    """What Redis losing its data does to the deny-list (the rest of Redis is left alone)."""
    claims = claims_of(access_token)
    redis_client().delete(keys.revoked_token(claims["jti"]), keys.revoked_session(member_id, claims["sid"]),
                          keys.deny_list_ready())


def test_a_revoked_session_stays_revoked_when_redis_loses_the_deny_list(client):
    member = new_account()
    pair = login(client, member.email, PASSWORD)
    assert client.post("/auth/logout", headers=bearer(pair["accessToken"])).status_code == 204
    _forget_deny_list(member.member_id, pair["accessToken"])
    refused = client.get("/members/me", headers=bearer(pair["accessToken"]))
    assert refused.status_code == 401 and _code(refused) == "UNAUTHORIZED"  # MySQL's revoked_at decided
    # The list was rebuilt from MySQL on the way: Redis alone refuses the token again.
    assert redis_client().get(keys.deny_list_ready()) is not None
    assert redis_client().exists(keys.revoked_session(member.member_id, claims_of(pair["accessToken"])["sid"])) == 1
    other = login(client, member.email, PASSWORD)
    assert client.get("/members/me", headers=bearer(other["accessToken"])).status_code == 200


def test_while_the_deny_list_is_being_rebuilt_mysql_decides(client):
    member = new_account()
    pair = login(client, member.email, PASSWORD)
    assert client.post("/auth/logout", headers=bearer(pair["accessToken"])).status_code == 204
    r = redis_client()
    r.set(keys.deny_list_rebuild(), "another-process", ex=30)  # someone else is rebuilding
    try:
        _forget_deny_list(member.member_id, pair["accessToken"])
        assert client.get("/members/me", headers=bearer(pair["accessToken"])).status_code == 401
        assert r.get(keys.deny_list_ready()) is None  # not this request's rebuild
        assert client.get("/members/me", headers=member.headers()).status_code == 200  # live sessions still work
    finally:
        r.delete(keys.deny_list_rebuild())
    assert tokens.rebuild_deny_list() is True
    assert client.get("/members/me", headers=bearer(pair["accessToken"])).status_code == 401


# ------------------------------------------------------------------------------ refresh retry and session end
def test_a_retried_refresh_gets_the_same_pair_and_keeps_the_session(client):
    member = new_account()
    pair = login(client, member.email, PASSWORD)
    first = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    again = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})  # the answer was lost
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert client.get("/members/me", headers=bearer(first.json()["accessToken"])).status_code == 200
    third = client.post("/auth/refresh", json={"refreshToken": first.json()["refreshToken"]})
    assert third.status_code == 200  # the family goes on
    # Once the successor is used, the old token is a replay even within the grace: the family dies.
    replay = client.post("/auth/refresh", json={"refreshToken": first.json()["refreshToken"]})
    assert replay.status_code == 200 and replay.json() == third.json()  # third's own retry is fine
    stale = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert stale.status_code == 401 and stale.json()["error"]["details"]["reason"] == "reused"
    assert client.get("/members/me", headers=bearer(third.json()["accessToken"])).status_code == 401
    assert REFRESH_RETRY_GRACE_SECONDS <= 30


def test_a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed(client):
    member = new_account()
    pair = login(client, member.email, PASSWORD)
    sid = claims_of(pair["accessToken"])["sid"]
    with mysql_cursor() as cur:  # logged in almost 30 days ago, refreshed ever since
        cur.execute("UPDATE auth_sessions SET created_at = %s WHERE id = %s",
                    (db_now() - timedelta(seconds=SESSION_MAX_SECONDS - 60), sid))
    rotated = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert rotated.status_code == 200
    with mysql_cursor() as cur:
        cur.execute("SELECT expires_at FROM refresh_tokens WHERE session_id = %s AND used_at IS NULL", (sid,))
        assert cur.fetchone()["expires_at"] <= db_now() + timedelta(seconds=61)  # not 14 more days
        cur.execute("UPDATE auth_sessions SET created_at = %s WHERE id = %s",
                    (db_now() - timedelta(seconds=SESSION_MAX_SECONDS + 1), sid))
        cur.execute("UPDATE refresh_tokens SET expires_at = %s WHERE session_id = %s",
                    (db_now() + timedelta(days=7), sid))  # even a token that says otherwise
    ended = client.post("/auth/refresh", json={"refreshToken": rotated.json()["refreshToken"]})
    assert ended.status_code == 401 and ended.json()["error"]["details"]["reason"] == "expired"


# ------------------------------------------------------------------------------ the waiting room
def test_no_ticket_and_no_pass_while_no_room_is_open(client):
    seller, buyer = new_account(seller=True), new_account()
    product = make_product(seller, 10)
    joined = client.post(f"{API}/products/{product}/queue", headers=buyer.headers())
    assert joined.status_code == 409 and _code(joined) == "NO_WAITING_ROOM", joined.text
    r = redis_client()
    assert r.exists(keys.queue_pass(product, buyer.member_id)) == 0
    assert r.hget(keys.queue_tickets(product), str(buyer.member_id)) is None
    assert place(client, buyer, [(product, 1)]).status_code == 202  # no room: the order goes through directly


def test_a_bot_rejoining_every_100_seconds_still_queues_when_the_room_opens(client):
    seller = new_account(seller=True)
    product = make_product(seller, 10)
    policy = AdmissionPolicy(TokenBucket(0, 1), TokenBucket(0, 1), POLICY.room)  # admits only ticket 1
    bot, early_bird, fan = (str(new_account().member_id) for _ in range(3))
    t0 = now_ms()
    # An earlier opening: the bot and another buyer hold tickets and passes from it.
    open_waiting_room(product, policy=policy, at_ms=t0)
    first = join_queue(bot, product, policy=policy, at_ms=t0 + 1)
    assert first.admitted and redis_client().get(keys.queue_pass(product, bot)) is not None
    join_queue(early_bird, product, policy=policy, at_ms=t0 + 2)
    close_waiting_room(product)
    # The next opening (the drop): the old pass and the old ticket are worth nothing in it.
    t1 = t0 + 100_000
    open_waiting_room(product, policy=policy, at_ms=t1)
    with pytest.raises(QueueRequired):
        admit_order(bot, None, [product], policy=policy, at_ms=t1 + 1)
    fan_standing = join_queue(fan, product, policy=policy, at_ms=t1 + 2)
    bot_standing = join_queue(bot, product, policy=policy, at_ms=t1 + 3)
    assert fan_standing.admitted and not bot_standing.admitted  # behind the fan who came first in this opening
    assert bot_standing.ticket > fan_standing.ticket and bot_standing.position >= 1
    with pytest.raises(QueueRequired):
        admit_order(bot, None, [product], policy=policy, at_ms=t1 + 4)
    admit_order(fan, None, [product], policy=policy, at_ms=t1 + 5)  # the fan's pass is of this opening
    close_waiting_room(product)


# ------------------------------------------------------------------------------ names that pose as others
def test_product_and_shop_names_with_bidi_overrides_or_invisible_characters_are_refused(client):
    seller = new_account(seller=True)
    for name in ("Official\u202eStore", "Drop\u200bStudio", "Drop\u3164Studio"):
        product = client.post("/products", json={"name": name, "description": "d", "price": 1000, "stock": 1},
                              headers=seller.headers())
        assert product.status_code == 400 and "name" in product.json()["error"]["details"]["fields"], name
    created = client.post("/products", json={"name": "Official Store Figure", "description": "d", "price": 1000,
                                             "stock": 1}, headers=seller.headers())
    assert created.status_code == 201
    renamed = client.patch(f"/products/{created.json()['id']}", json={"name": "Official\u2066Store\u2069"},
                           headers=seller.headers())
    assert renamed.status_code == 400
    for shop in ("Drop\u3164Studio", "Drop\u2800Studio", "\u115fDrop Studio"):
        member = new_account()
        response = client.post("/sellers", json={"shopName": shop, "address": "1 Test-ro, Seoul",
                                                 "contactNumber": "02-555-0100",
                                                 "registrationNumber": new_registration_number()},
                               headers=member.headers())
        assert response.status_code == 400 and "shopName" in response.json()["error"]["details"]["fields"], shop


# ------------------------------------------------------------------------------ searches and the edge
def test_anonymous_searches_are_capped_in_words(client):
    for q in ("alpha bravo charlie delta echo foxtrot", "ab cd ef", "a b c d e"):
        response = client.get("/products", params={"q": q})
        assert response.status_code == 400 and "q" in response.json()["error"]["details"]["fields"], q
    assert client.get("/products", params={"q": "alpha bravo charlie delta echo"}).status_code == 200
    short = client.get("/products", params={"q": "zq"})  # short words only: one bounded scan
    assert short.status_code == 200 and short.json()["total"] >= 0


@pytest.mark.parametrize("path", ["/%00", "/%01", "/%0a", "/products/1%0a", "/products/1%00", "/" + "a" * 5000,
                                  "/%c0%ae%c0%ae/"])
def test_odd_paths_get_a_json_4xx_never_a_plain_text_500(client, path):
    response = client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"error"}
