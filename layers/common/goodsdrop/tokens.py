"""Access tokens: short-lived JWTs (HS256) signed with a key kept in SSM Parameter Store.

The key is fetched once per warm container (never hard-coded). Revocation is immediate: logout
puts the token id and its session on a Redis deny-list until the token would expire (so the
session's other access tokens die too), and `revoke_all_access_tokens` revokes every token of a
member issued before a moment. The API Gateway authorizer is the only place that checks
tokens; handlers read the caller from the authorizer context.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from functools import cache

import jwt

from goodsdrop import keys
from goodsdrop.clients import aws_client, redis_client
from goodsdrop.errors import TokenExpired, Unauthorized
from goodsdrop.settings import settings

ACCESS_TOKEN_SECONDS = 15 * 60
ISSUER = "goodsdrop"
ALGORITHM = "HS256"
CLOCK_SKEW_SECONDS = 60
# Tokens whose signature this container already checked: a buyer sends the same token with every
# request, and checking an HS256 signature (PyJWT's segment validation) is the authorizer's
# biggest CPU cost. Expiry and revocation are still checked on every request.
VERIFIED_CACHE_SIZE = 4096
_verified: dict[str, AccessClaims] = {}


@cache
def signing_key() -> str:
    """The JWT signing key from SSM Parameter Store (cached for the container's life)."""
    response = aws_client("ssm").get_parameter(Name=settings.jwt_parameter_name, WithDecryption=True)
    return str(response["Parameter"]["Value"])


@dataclass(frozen=True)
class AccessClaims:
    """What an access token says about its holder."""

    member_id: str
    role: str
    email_verified: bool
    token_id: str
    session_id: str
    issued_at: int
    expires_at: int


def issue_access_token(member_id: int | str, role: str, email_verified: bool, session_id: str,
                       now: float | None = None) -> tuple[str, AccessClaims]:
    """A signed access token for a member's session, and its claims."""
    issued = int(now if now is not None else time.time())
    claims = AccessClaims(str(member_id), role, email_verified, uuid.uuid4().hex, session_id, issued,
                          issued + ACCESS_TOKEN_SECONDS)
    token = jwt.encode(
        {"iss": ISSUER, "sub": claims.member_id, "role": role, "ev": email_verified, "jti": claims.token_id,
         "sid": session_id, "iat": issued, "exp": claims.expires_at},
        signing_key(), algorithm=ALGORITHM,
    )
    return token, claims


def verify_access_token(token: str) -> AccessClaims:
    """Check signature, algorithm, issuer, expiry and revocation; raise `Unauthorized`/`TokenExpired`."""
    claims = _verified.get(token)
    if claims is None:
        claims = _decode(token)
        if len(_verified) >= VERIFIED_CACHE_SIZE:
            _verified.clear()  # cheap and bounded; the next requests re-verify
        _verified[token] = claims
    elif claims.expires_at <= time.time():
        raise TokenExpired("the access token has expired; refresh it")
    # One round trip; a pipeline of GETs (not MGET) also works when the keys live in different
    # Redis Cluster slots.
    pipe = redis_client().pipeline(transaction=False)
    pipe.get(keys.revoked_token(claims.token_id))
    pipe.get(keys.revoked_member_before(claims.member_id))
    pipe.get(keys.revoked_session(claims.member_id, claims.session_id or "-"))
    revoked, revoked_before, session_revoked = pipe.execute()
    if revoked is not None or session_revoked is not None or (
            revoked_before is not None and claims.issued_at <= int(revoked_before)):
        raise Unauthorized("the access token was revoked")
    return claims


def _decode(token: str) -> AccessClaims:
    try:
        payload = jwt.decode(token, signing_key(), algorithms=[ALGORITHM], issuer=ISSUER,
                             options={"require": ["exp", "iat", "sub", "jti"]})
    except jwt.ExpiredSignatureError:
        raise TokenExpired("the access token has expired; refresh it") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid access token") from None
    return AccessClaims(str(payload["sub"]), str(payload.get("role", "member")), bool(payload.get("ev")),
                        str(payload["jti"]), str(payload.get("sid", "")), int(payload["iat"]), int(payload["exp"]))


def revoke_access_token(claims: AccessClaims, now: float | None = None) -> None:
    """Deny-list one access token until it would expire anyway."""
    revoke_token_id(claims.token_id, claims.expires_at, now)


def revoke_token_id(token_id: str, expires_at: int, now: float | None = None) -> None:
    """Deny-list the access token `token_id` (expiring at `expires_at`) for the rest of its life."""
    remaining = int(expires_at) - int(now if now is not None else time.time())
    if remaining > 0 and token_id:
        redis_client().set(keys.revoked_token(token_id), "1", ex=remaining)


def revoke_session_access_tokens(member_id: int | str, session_ids: list[str]) -> None:
    """Refuse every access token issued for these sessions (they live at most ACCESS_TOKEN_SECONDS)."""
    if not session_ids:
        return
    pipe = redis_client().pipeline(transaction=False)
    for session_id in session_ids:
        pipe.set(keys.revoked_session(member_id, session_id), "1", ex=ACCESS_TOKEN_SECONDS + CLOCK_SKEW_SECONDS)
    pipe.execute()


def revoke_all_access_tokens(member_id: int | str, now: float | None = None) -> None:
    """Revoke every access token a member holds now (e.g. after a password change)."""
    redis_client().set(keys.revoked_member_before(member_id), str(int(now if now is not None else time.time())),
                       ex=ACCESS_TOKEN_SECONDS + 60)


def new_opaque_token() -> str:
    """A random opaque token (256 bits, URL-safe): refresh tokens and verification links."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """How an opaque token is stored and looked up: its SHA-256 in hex.

    A fast hash is enough here (unlike passwords): the token has 256 random bits, so nobody can
    guess it from the digest, and lookups stay a primary-key read.
    """
    return hashlib.sha256(token.encode()).hexdigest()
