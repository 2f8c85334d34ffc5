"""Access tokens: short-lived JWTs (HS256) signed with a key kept in SSM Parameter Store.

The key is fetched once per warm container (never hard-coded). Revocation is immediate: logout
puts the token id on a Redis deny-list until the token would expire, and a password change
revokes every token issued before it. The API Gateway authorizer is the only place that checks
tokens; handlers read the caller from the authorizer context.
"""

from __future__ import annotations

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
    try:
        payload = jwt.decode(token, signing_key(), algorithms=[ALGORITHM], issuer=ISSUER,
                             options={"require": ["exp", "iat", "sub", "jti"]})
    except jwt.ExpiredSignatureError:
        raise TokenExpired("the access token has expired; refresh it") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid access token") from None
    claims = AccessClaims(str(payload["sub"]), str(payload.get("role", "member")), bool(payload.get("ev")),
                          str(payload["jti"]), str(payload.get("sid", "")), int(payload["iat"]), int(payload["exp"]))
    revoked, revoked_before = redis_client().mget(keys.revoked_token(claims.token_id),
                                                  keys.revoked_member_before(claims.member_id))
    if revoked is not None or (revoked_before is not None and claims.issued_at <= int(revoked_before)):
        raise Unauthorized("the access token was revoked")
    return claims


def revoke_access_token(claims: AccessClaims, now: float | None = None) -> None:
    """Deny-list one access token until it would expire anyway."""
    remaining = claims.expires_at - int(now if now is not None else time.time())
    if remaining > 0:
        redis_client().set(keys.revoked_token(claims.token_id), "1", ex=remaining)


def revoke_all_access_tokens(member_id: int | str, now: float | None = None) -> None:
    """Revoke every access token a member holds now (e.g. after a password change)."""
    redis_client().set(keys.revoked_member_before(member_id), str(int(now if now is not None else time.time())),
                       ex=ACCESS_TOKEN_SECONDS + 60)
