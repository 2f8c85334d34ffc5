"""Access tokens: short-lived JWTs (HS256) signed with a key kept in SSM Parameter Store.

Keys: the SSM parameter's versions are the keys, its version number each key's `kid` (in every
token's header). A container signs with the newest version and also accepts the version before
it, but only for an access token's life after the newest was written, so rotating the key
(`aws ssm put-parameter --overwrite`) refuses no token in flight, and a leaked key is trusted at
most ACCESS_TOKEN_SECONDS after the rotation (rotate twice to drop it at once). Keys are fetched
again every `jwt_key_refresh_seconds` (60), and at once (at most once a second) when a token
names a newer kid than this container knows, so a rotation gives no random 401s while
containers catch up. A key shorter than 32 bytes is refused (`SigningKeyRefused`): signing and
verifying stop rather than use it.

Revocation is immediate: logout puts the token id and its session on a Redis deny-list until the
token would expire (so the session's other access tokens die too), and `revoke_all_access_tokens`
revokes every token of a member issued before a moment. When the deny-list is missing (Redis lost
its data: its `deny_list_ready` marker is gone) or being rebuilt, MySQL's `auth_sessions.revoked_at`
decides, and the first authorizer to notice rebuilds the list from it. The API Gateway authorizer is
the only place that checks tokens; handlers read the caller from the authorizer context.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from goodsdrop import keys
from goodsdrop.clients import aws_client, mysql_cursor, redis_client
from goodsdrop.errors import TokenExpired, Unauthorized
from goodsdrop.settings import settings

logger = Logger(child=True)

ACCESS_TOKEN_SECONDS = 15 * 60
ISSUER = "goodsdrop"
ALGORITHM = "HS256"
CLOCK_SKEW_SECONDS = 60
# iat/nbf (and exp) are checked with this much slack: a token issued on a host whose clock is a
# few seconds ahead is valid at once, not refused as "not yet valid".
LEEWAY_SECONDS = 5
MIN_KEY_BYTES = 32  # HS256 wants a key at least as long as its hash (RFC 7518, 3.2)
KEY_STALE_LIMIT_SECONDS = ACCESS_TOKEN_SECONDS  # SSM unreachable: keep the keys we have this long
KEY_FETCH_MIN_GAP_SECONDS = 1.0  # an unknown kid triggers at most one fetch a second
DENY_LIST_REBUILD_LOCK_SECONDS = 30
# Tokens whose signature this container already checked: a buyer sends the same token with every
# request, and checking an HS256 signature (PyJWT's segment validation) is the authorizer's
# biggest CPU cost. Expiry and revocation are still checked on every request.
VERIFIED_CACHE_SIZE = 4096
_verified: dict[str, AccessClaims] = {}


# ---------------------------------------------------------------------------- signing keys


class SigningKeyRefused(RuntimeError):
    """The signing key in SSM is unusable (shorter than MIN_KEY_BYTES): a configuration error."""


@dataclass(frozen=True)
class SigningKey:
    """One version of the signing key: its kid, its secret, and until when it is trusted (None: current)."""

    kid: str
    secret: str
    trusted_until: float | None = None


@dataclass(frozen=True)
class Keyring:
    """The key tokens are signed with, and the one before it while tokens it signed may still live."""

    current: SigningKey
    previous: SigningKey | None = None

    def for_kid(self, kid: str | None, now: float) -> SigningKey | None:
        """The key a token names; a token without a kid (signed before kids existed) is the current key's."""
        if kid is None or kid == self.current.kid:
            return self.current
        if self.previous is not None and kid == self.previous.kid and now < (self.previous.trusted_until or 0):
            return self.previous
        return None

    def trusted_secrets(self, now: float) -> list[str]:
        """Every secret trusted now, the current first."""
        trusted = [self.current.secret]
        if self.previous is not None and now < (self.previous.trusted_until or 0):
            trusted.append(self.previous.secret)
        return trusted


def _checked_secret(value: str, name: str) -> str:
    if len(value.encode()) < MIN_KEY_BYTES:
        raise SigningKeyRefused(f"the JWT signing key {name} is shorter than {MIN_KEY_BYTES} bytes")
    return value


def fetch_keyring() -> Keyring:
    """The current and the previous version of the signing key from SSM Parameter Store."""
    name = settings.jwt_parameter_name
    newest = aws_client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    version = int(newest["Version"])
    current = SigningKey(str(version), _checked_secret(str(newest["Value"]), f"{name}:{version}"))
    previous = None
    if version > 1:
        try:
            older = aws_client("ssm").get_parameter(Name=f"{name}:{version - 1}", WithDecryption=True)["Parameter"]
        except aws_client("ssm").exceptions.ParameterVersionNotFound:  # SSM keeps the latest 100 versions
            older = None
        rotated = newest.get("LastModifiedDate")
        if older is not None and len(str(older["Value"]).encode()) >= MIN_KEY_BYTES and isinstance(rotated, datetime):
            trusted_until = rotated.timestamp() + ACCESS_TOKEN_SECONDS + LEEWAY_SECONDS
            previous = SigningKey(str(version - 1), str(older["Value"]), trusted_until)
    return Keyring(current, previous)


_ring: Keyring | None = None
_ring_fetched_at = float("-inf")  # time.monotonic() of the last successful fetch
_ring_forced_at = float("-inf")  # ... of the last fetch an unknown, newer kid asked for
_ring_lock = threading.Lock()


def keyring(*, newer_than: str | None = None) -> Keyring:
    """This container's keys: refreshed every `jwt_key_refresh_seconds`, or now when a token names a
    kid newer than the current one (such fetches at most once a second). SSM briefly unreachable:
    the keys we have serve on for KEY_STALE_LIMIT_SECONDS."""
    global _ring, _ring_fetched_at, _ring_forced_at
    now = time.monotonic()
    ring = _ring
    due = ring is None or now - _ring_fetched_at >= settings.jwt_key_refresh_seconds
    forced = (not due and newer_than is not None and ring is not None and _is_newer(newer_than, ring.current.kid)
              and now - _ring_forced_at >= KEY_FETCH_MIN_GAP_SECONDS)
    if not (due or forced):
        assert ring is not None
        return ring
    with _ring_lock:
        if _ring is not ring:  # another thread fetched meanwhile
            assert _ring is not None
            return _ring
        if forced:
            _ring_forced_at = now
        try:
            fresh = fetch_keyring()
        except SigningKeyRefused:
            raise
        except Exception:  # SSM unreachable or throttled (botocore's errors: boto3 is the runtime's, not the layer's)
            if ring is None or now - _ring_fetched_at > KEY_STALE_LIMIT_SECONDS:
                raise
            logger.exception("the signing keys could not be refreshed; the cached ones serve on")
            return ring
        if ring is not None and (fresh.current.kid, fresh.previous) != (ring.current.kid, ring.previous):
            _verified.clear()  # signatures checked with a key that may no longer be trusted
        _ring, _ring_fetched_at = fresh, now
        return fresh


def _is_newer(kid: str, than: str) -> bool:
    return kid.isdigit() and than.isdigit() and len(kid) < 12 and int(kid) > int(than)


def signing_key() -> str:
    """The secret access tokens are signed with now (the current version of the SSM parameter)."""
    return keyring().current.secret


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
                       now: float | None = None, token_id: str | None = None) -> tuple[str, AccessClaims]:
    """A signed access token for a member's session, and its claims (the same inputs, the same token)."""
    issued = int(now if now is not None else time.time())
    claims = AccessClaims(str(member_id), role, email_verified, token_id or uuid.uuid4().hex, session_id, issued,
                          issued + ACCESS_TOKEN_SECONDS)
    import jwt  # here, not at the top: PyJWT brings cryptography (~25 ms), and most importers never sign

    key = keyring().current
    token = jwt.encode(
        {"iss": ISSUER, "sub": claims.member_id, "role": role, "ev": email_verified, "jti": claims.token_id,
         "sid": session_id, "iat": issued, "exp": claims.expires_at},
        key.secret, algorithm=ALGORITHM, headers={"kid": key.kid},
    )
    return token, claims


def verify_access_token(token: str) -> AccessClaims:
    """Check signature, algorithm, issuer, expiry and revocation; raise `Unauthorized`/`TokenExpired`."""
    keyring()  # a due refresh first: when the keys change, signatures checked before are forgotten
    claims = _verified.get(token)
    if claims is None:
        claims = _decode(token)
        if len(_verified) >= VERIFIED_CACHE_SIZE:
            _verified.clear()  # cheap and bounded; the next requests re-verify
        _verified[token] = claims
    elif claims.expires_at + LEEWAY_SECONDS <= time.time():
        raise TokenExpired("the access token has expired; refresh it")
    # One round trip; a pipeline of GETs (not MGET) also works when the keys live in different
    # Redis Cluster slots.
    pipe = redis_client().pipeline(transaction=False)
    pipe.get(keys.revoked_token(claims.token_id))
    pipe.get(keys.revoked_member_before(claims.member_id))
    pipe.get(keys.revoked_session(claims.member_id, claims.session_id or "-"))
    pipe.get(keys.deny_list_ready())
    if not claims.email_verified:  # verified since the token was issued? (same round trip)
        pipe.get(keys.member_email_verified(claims.member_id))
    revoked, revoked_before, session_revoked, ready, *verified_since = pipe.execute()
    if revoked is not None or session_revoked is not None or (
            revoked_before is not None and claims.issued_at <= int(revoked_before)):
        raise Unauthorized("the access token was revoked")
    if ready is None and _session_revoked_in_mysql(claims.session_id):
        raise Unauthorized("the access token was revoked")
    if verified_since and (verified_since[0] is not None or (ready is None and _verified_in_mysql(claims.member_id))):
        return dataclasses.replace(claims, email_verified=True)
    return claims


def note_email_verified(member_id: int | str) -> None:
    """The member verified their email: their older access tokens count as verified from the next request.

    Kept as long as a token issued before can live. Best effort: should Redis lose it, the member's next
    refresh gives a token that says so itself (and while Redis has lost its data, MySQL is asked).
    """
    try:
        redis_client().set(keys.member_email_verified(member_id), "1", ex=ACCESS_TOKEN_SECONDS + LEEWAY_SECONDS + 60)
    except Exception:  # the verification itself is committed; only its instant effect is lost
        logger.exception("could not note the verification in Redis")


def _verified_in_mysql(member_id: str) -> bool:
    with mysql_cursor() as cur:
        cur.execute("SELECT email_verified FROM members WHERE id = %s", (member_id,))
        row = cur.fetchone()
    return bool(row and row["email_verified"])


def _decode(token: str) -> AccessClaims:
    import jwt  # see issue_access_token

    try:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid is not None and not isinstance(kid, str):
            raise jwt.InvalidTokenError("kid is not a string")
        key = keyring().for_kid(kid, time.time()) or keyring(newer_than=kid).for_kid(kid, time.time())
        if key is None:
            raise jwt.InvalidTokenError("unknown or retired kid")
        payload = jwt.decode(token, key.secret, algorithms=[ALGORITHM], issuer=ISSUER, leeway=LEEWAY_SECONDS,
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


# ---------------------------------------------------------------------------- deny-list after Redis loss


def _session_revoked_in_mysql(session_id: str) -> bool:
    """The deny-list is missing (Redis lost its data) or being rebuilt: MySQL's session row decides.

    Also starts the rebuild when nobody has (this request then waits for it, once).
    """
    if session_id:
        with mysql_cursor() as cur:
            cur.execute("SELECT revoked_at FROM auth_sessions WHERE id = %s", (session_id,))
            row = cur.fetchone()
        revoked = row is not None and row["revoked_at"] is not None
    else:
        revoked = False
    rebuild_deny_list()
    return revoked


def rebuild_deny_list(now: datetime | None = None) -> bool:
    """Put every session revoked within an access token's life back on the deny-list, then mark the
    list ready. One process does it (a lock); returns whether this call did."""
    r = redis_client()
    lock = keys.deny_list_rebuild()
    token = uuid.uuid4().hex
    if not r.set(lock, token, nx=True, ex=DENY_LIST_REBUILD_LOCK_SECONDS):
        return False
    try:
        moment = now or datetime.now(UTC).replace(tzinfo=None)
        since = moment - timedelta(seconds=ACCESS_TOKEN_SECONDS + CLOCK_SKEW_SECONDS)
        with mysql_cursor() as cur:
            cur.execute("SELECT id, member_id, revoked_at FROM auth_sessions WHERE revoked_at >= %s", (since,))
            rows: list[dict[str, Any]] = list(cur.fetchall())
        pipe = r.pipeline(transaction=False)
        for row in rows:
            left = ACCESS_TOKEN_SECONDS + CLOCK_SKEW_SECONDS - int((moment - row["revoked_at"]).total_seconds())
            if left > 0:
                pipe.set(keys.revoked_session(row["member_id"], row["id"]), "1", ex=left)
        pipe.set(keys.deny_list_ready(), str(int(time.time())))
        pipe.execute()
        logger.info("deny-list rebuilt from MySQL", extra={"sessions": len(rows)})
        return True
    finally:
        if r.get(lock) == token:
            r.delete(lock)


# ---------------------------------------------------------------------------- refresh-token successors
_SUCCESSOR = b"goodsdrop refresh-token successor\0"


def _successor(token: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), _SUCCESSOR + token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def next_refresh_token(token: str) -> str:
    """The refresh token that rotating `token` issues: an HMAC of it under the current signing key.

    Unguessable without the key (and knowing `token` already gives its holder the refresh), yet
    the server can name it again for a retried refresh without having stored it.
    """
    return _successor(token, keyring().current.secret)


def refresh_successors(token: str) -> list[str]:
    """The successors `token` may have had: one per trusted key (a rotation may fall between)."""
    return [_successor(token, secret) for secret in keyring().trusted_secrets(time.time())]


def new_opaque_token() -> str:
    """A random opaque token (256 bits, URL-safe): refresh tokens and verification links."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """How an opaque token is stored and looked up: its SHA-256 in hex.

    A fast hash is enough here (unlike passwords): the token has 256 random bits, so nobody can
    guess it from the digest, and lookups stay a primary-key read.
    """
    return hashlib.sha256(token.encode()).hexdigest()
