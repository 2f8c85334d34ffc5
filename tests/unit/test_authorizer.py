"""The Lambda authorizer's decisions, with fixed signing keys and an in-memory deny-list; the key
ring's lifecycle (kid, current and previous key, refresh, short keys) against a fake SSM."""

from __future__ import annotations

import base64
import importlib.util
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest

from goodsdrop import keys, tokens

KEY = "unit-test-signing-key-" + "x" * 40
AUTHORIZER = Path(__file__).parents[2] / "functions" / "auth" / "authorizer.py"


class DenyList:
    """Just enough of a Redis client for `verify_access_token`: GET in a pipeline, SET with a TTL."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, key: str, value: object, ex: int | None = None) -> None:
        assert ex is None or ex > 0
        self.values[key] = str(value)

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def pipeline(self, transaction: bool = True) -> DenyList.Pipeline:
        return DenyList.Pipeline(self)

    class Pipeline:
        def __init__(self, owner: DenyList) -> None:
            self.owner, self.calls = owner, []

        def get(self, key: str) -> None:
            self.calls.append(("get", key, None, None))

        def set(self, key: str, value: object, ex: int | None = None) -> None:
            self.calls.append(("set", key, value, ex))

        def execute(self) -> list[object]:
            out = []
            for op, key, value, ex in self.calls:
                if op == "get":
                    out.append(self.owner.values.get(key))
                else:
                    self.owner.set(key, value, ex)
                    out.append(True)
            return out


RING = tokens.Keyring(tokens.SigningKey("7", KEY))


@pytest.fixture
def deny_list(monkeypatch):
    store = DenyList()
    store.set(keys.deny_list_ready(), "1")  # a complete deny-list (see test_deny_list_fallback in integ)
    monkeypatch.setattr(tokens, "keyring", lambda **_: RING)
    monkeypatch.setattr(tokens, "redis_client", lambda: store)
    tokens._verified.clear()
    return store


@pytest.fixture(scope="module")
def authorizer():
    spec = importlib.util.spec_from_file_location("authorizer_under_test", AUTHORIZER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def event(authorization: str | None) -> dict:
    headers = {} if authorization is None else {"Authorization": authorization}
    return {"type": "REQUEST", "methodArn": "arn:aws:execute-api:ap-northeast-2:123456789012:api1/dev/GET/members/me",
            "resource": "/members/me", "path": "/members/me", "httpMethod": "GET", "headers": headers,
            "requestContext": {"accountId": "123456789012", "apiId": "api1", "stage": "dev"}}


def decide(authorizer, authorization: str | None) -> tuple[str, dict]:
    policy = authorizer(event(authorization), None)
    (statement,) = policy["policyDocument"]["Statement"]
    return statement["Effect"], policy.get("context") or {}


def b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_a_valid_token_is_allowed_with_the_member_in_the_context(authorizer, deny_list):
    token, claims = tokens.issue_access_token(42, "seller", True, "sess-1")
    effect, context = decide(authorizer, f"Bearer {token}")
    assert effect == "Allow"
    assert context == {"memberId": "42", "role": "seller", "emailVerified": "true", "tokenId": claims.token_id,
                       "sessionId": "sess-1", "expiresAt": claims.expires_at}


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "bearer", "Bearer not-a-jwt", "Bearer a.b.c"])
def test_missing_or_garbled_credentials_are_denied_unauthorized(authorizer, deny_list, header):
    effect, context = decide(authorizer, header)
    assert (effect, context["errorCode"]) == ("Deny", "UNAUTHORIZED") and context["errorMessage"]


def test_expired_token_is_denied_token_expired(authorizer, deny_list):
    token, _ = tokens.issue_access_token(42, "member", True, "s", now=time.time() - tokens.ACCESS_TOKEN_SECONDS - 5)
    effect, context = decide(authorizer, f"Bearer {token}")
    assert (effect, context["errorCode"]) == ("Deny", "TOKEN_EXPIRED")


def test_forged_tokens_are_denied(authorizer, deny_list):
    token, _ = tokens.issue_access_token(42, "member", False, "s")
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = [
        jwt.encode(claims, "some-other-key-" * 4, algorithm="HS256"),
        f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        f"{header}.{b64(claims | {'role': 'seller'})}.{signature}",
        f"{header}.{b64(claims | {'ev': True})}.{signature}",
        f"{header}.{b64(claims | {'sub': '1'})}.{signature}",
        jwt.encode(claims, KEY, algorithm="HS512"),
        jwt.encode(claims | {"iss": "someone-else"}, KEY, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims.items() if k != "jti"}, KEY, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims.items() if k != "exp"}, KEY, algorithm="HS256"),
    ]
    for candidate in forged:
        effect, context = decide(authorizer, f"Bearer {candidate}")
        assert (effect, context["errorCode"]) == ("Deny", "UNAUTHORIZED"), candidate


def test_revoked_token_session_or_member_is_denied(authorizer, deny_list):
    revoked, claims = tokens.issue_access_token(42, "member", True, "sess-a")
    sibling, _ = tokens.issue_access_token(42, "member", True, "sess-a")
    other_session, _ = tokens.issue_access_token(42, "member", True, "sess-b")
    tokens.revoke_access_token(claims)
    assert decide(authorizer, f"Bearer {revoked}")[0] == "Deny"
    assert decide(authorizer, f"Bearer {sibling}")[0] == "Allow"

    tokens.revoke_session_access_tokens(42, ["sess-a"])
    assert decide(authorizer, f"Bearer {sibling}")[0] == "Deny"
    assert decide(authorizer, f"Bearer {other_session}")[0] == "Allow"
    assert deny_list.values[keys.revoked_session(42, "sess-a")] == "1"

    tokens.revoke_all_access_tokens(42, now=time.time() + 1)
    assert decide(authorizer, f"Bearer {other_session}")[0] == "Deny"
    someone_else, _ = tokens.issue_access_token(43, "member", True, "sess-a")
    assert decide(authorizer, f"Bearer {someone_else}")[0] == "Allow"


def test_a_token_checked_before_still_expires_and_can_be_revoked(authorizer, deny_list, monkeypatch):
    # The signature check is cached per container; expiry and revocation must not be.
    token, claims = tokens.issue_access_token(42, "member", True, "sess-c")
    assert decide(authorizer, f"Bearer {token}")[0] == "Allow"
    assert token in tokens._verified
    later = claims.expires_at + tokens.LEEWAY_SECONDS + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    effect, context = decide(authorizer, f"Bearer {token}")
    assert (effect, context["errorCode"]) == ("Deny", "TOKEN_EXPIRED")
    monkeypatch.undo()
    monkeypatch.setattr(tokens, "keyring", lambda **_: RING)
    monkeypatch.setattr(tokens, "redis_client", lambda: deny_list)
    tokens.revoke_access_token(claims)
    assert decide(authorizer, f"Bearer {token}") == ("Deny", {"errorCode": "UNAUTHORIZED",
                                                               "errorMessage": "the access token was revoked"})


# ------------------------------------------------------------------------------ clock skew
def _signed(claims: dict, key: str = KEY, kid: str | None = "7") -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid} if kid else None)


def _claims(**changes) -> dict:
    now = int(time.time())
    return {"iss": "goodsdrop", "sub": "42", "role": "member", "ev": True, "jti": "j1", "sid": "s1", "iat": now,
            "exp": now + tokens.ACCESS_TOKEN_SECONDS} | changes


def test_a_token_from_a_host_a_few_seconds_ahead_is_accepted(authorizer, deny_list):
    now = int(time.time())
    for ahead in (1, 2, tokens.LEEWAY_SECONDS - 1):
        assert decide(authorizer, f"Bearer {_signed(_claims(iat=now + ahead, jti=f'a{ahead}'))}")[0] == "Allow", ahead
        assert decide(authorizer, f"Bearer {_signed(_claims(nbf=now + ahead, jti=f'n{ahead}'))}")[0] == "Allow", ahead
    # Beyond the leeway a token from the future is refused.
    assert decide(authorizer, f"Bearer {_signed(_claims(iat=now + 120, jti='far'))}")[0] == "Deny"
    assert decide(authorizer, f"Bearer {_signed(_claims(nbf=now + 120, jti='far-nbf'))}")[0] == "Deny"


# ------------------------------------------------------------------------------ key lifecycle
class FakeSsm:
    """The versions of one SSM parameter, as GetParameter shows them (`name` and `name:version`)."""

    class exceptions:
        class ParameterVersionNotFound(Exception):
            pass

    def __init__(self) -> None:
        self.versions: list[tuple[str, datetime]] = []
        self.calls = 0

    def put(self, value: str, at: datetime | None = None) -> None:
        self.versions.append((value, at or datetime.now(UTC)))

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict:
        self.calls += 1
        name, _, version = Name.partition(":")
        number = int(version) if version else len(self.versions)
        if not 1 <= number <= len(self.versions):
            raise self.exceptions.ParameterVersionNotFound(Name)
        value, written = self.versions[number - 1]
        return {"Parameter": {"Name": name, "Value": value, "Version": number, "LastModifiedDate": written}}


@pytest.fixture
def ssm(monkeypatch):
    fake = FakeSsm()
    monkeypatch.setattr(tokens, "aws_client", lambda service: fake)
    monkeypatch.setattr(tokens, "_ring", None)
    monkeypatch.setattr(tokens, "_ring_fetched_at", float("-inf"))
    monkeypatch.setattr(tokens, "_ring_forced_at", float("-inf"))
    store = DenyList()
    store.set(keys.deny_list_ready(), "1")
    monkeypatch.setattr(tokens, "redis_client", lambda: store)
    tokens._verified.clear()
    return fake


def test_tokens_carry_the_kid_and_a_rotation_keeps_the_previous_key_for_a_token_life(authorizer, ssm, monkeypatch):
    ssm.put("first-key-" + "a" * 40)
    old_token, _ = tokens.issue_access_token(42, "member", True, "s")
    assert jwt.get_unverified_header(old_token)["kid"] == "1"
    ssm.put("second-key-" + "b" * 40)
    # This container has not refreshed yet, but another one signs with the new key: the unknown,
    # newer kid makes it fetch at once instead of refusing the token.
    fresh = _signed(_claims(jti="new"), "second-key-" + "b" * 40, kid="2")
    assert decide(authorizer, f"Bearer {fresh}")[0] == "Allow"
    assert decide(authorizer, f"Bearer {old_token}")[0] == "Allow"  # the previous key, within a token's life
    assert jwt.get_unverified_header(tokens.issue_access_token(42, "member", True, "s")[0])["kid"] == "2"
    # A token's life after the rotation the previous key is no longer trusted.
    later = time.time() + tokens.ACCESS_TOKEN_SECONDS + tokens.LEEWAY_SECONDS + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    still_valid = _signed(_claims(jti="late", iat=int(later), exp=int(later) + 600), "first-key-" + "a" * 40, kid="1")
    assert decide(authorizer, f"Bearer {still_valid}") == ("Deny", {"errorCode": "UNAUTHORIZED",
                                                                     "errorMessage": "invalid access token"})


def test_rotating_twice_drops_a_leaked_key_at_the_next_refresh(authorizer, ssm, monkeypatch):
    leaked = "leaked-key-" + "c" * 40
    ssm.put(leaked)
    token, _ = tokens.issue_access_token(42, "member", True, "s")
    assert decide(authorizer, f"Bearer {token}")[0] == "Allow"
    ssm.put("next-key-" + "d" * 40)
    ssm.put("after-key-" + "e" * 40)
    assert decide(authorizer, f"Bearer {token}")[0] == "Allow"  # until this container refreshes its keys
    clock = time.monotonic() + tokens.settings.jwt_key_refresh_seconds + 1
    monkeypatch.setattr(tokens.time, "monotonic", lambda: clock)
    assert decide(authorizer, f"Bearer {token}")[0] == "Deny"  # refreshed: kid 1 is neither key, and its cache is gone
    forged = _signed(_claims(jti="forged"), leaked, kid="3")  # the leaked key under the current kid
    assert decide(authorizer, f"Bearer {forged}")[0] == "Deny"


def test_keys_are_refreshed_on_an_interval_not_per_request(ssm, monkeypatch):
    ssm.put("steady-key-" + "f" * 40)
    for _ in range(20):
        tokens.issue_access_token(42, "member", True, "s")
    assert ssm.calls == 1
    garbage = _signed(_claims(jti="g"), "whatever-key-" + "g" * 40, kid="999999")
    for _ in range(20):  # unknown kids trigger at most one fetch a second
        with pytest.raises(tokens.Unauthorized):
            tokens.verify_access_token(garbage)
    assert ssm.calls == 2
    clock = time.monotonic() + tokens.KEY_FETCH_MIN_GAP_SECONDS + 0.1
    monkeypatch.setattr(tokens.time, "monotonic", lambda: clock)
    for _ in range(20):
        with pytest.raises(tokens.Unauthorized):
            tokens.verify_access_token(garbage)
    assert ssm.calls == 3


def test_a_key_shorter_than_32_bytes_is_refused(ssm):
    ssm.put("short-key-31-bytes-xxxxxxxxxxxx")
    assert len(ssm.versions[0][0]) == 31
    with pytest.raises(tokens.SigningKeyRefused):
        tokens.issue_access_token(42, "member", True, "s")
    ssm.put("x" * 32)
    assert jwt.get_unverified_header(tokens.keyring(newer_than="2") and tokens.issue_access_token(
        42, "member", True, "s")[0])["kid"] == "2"
