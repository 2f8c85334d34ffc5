"""The Lambda authorizer's decisions, with a fixed signing key and an in-memory deny-list."""

from __future__ import annotations

import base64
import importlib.util
import json
import time
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


@pytest.fixture
def deny_list(monkeypatch):
    store = DenyList()
    monkeypatch.setattr(tokens, "signing_key", lambda: KEY)
    monkeypatch.setattr(tokens, "redis_client", lambda: store)
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
    later = claims.expires_at + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    effect, context = decide(authorizer, f"Bearer {token}")
    assert (effect, context["errorCode"]) == ("Deny", "TOKEN_EXPIRED")
    monkeypatch.undo()
    monkeypatch.setattr(tokens, "signing_key", lambda: KEY)
    monkeypatch.setattr(tokens, "redis_client", lambda: deny_list)
    tokens.revoke_access_token(claims)
    assert decide(authorizer, f"Bearer {token}") == ("Deny", {"errorCode": "UNAUTHORIZED",
                                                               "errorMessage": "the access token was revoked"})
