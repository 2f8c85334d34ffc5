"""Login sessions: login with throttling, refresh-token rotation with reuse detection, logout.

A session is one refresh-token family (table `auth_sessions`; its id is the `sid` claim of every
access token it issues). Refresh tokens are opaque strings stored only as SHA-256 digests in
MySQL (`refresh_tokens`), each valid 14 days and usable once: a refresh marks it used and issues
the next one; a session ends 30 days after its login however often it is refreshed. Presenting a
used token again means two parties hold the family (a stolen token was replayed, or the thief
already rotated it), so the whole session is revoked at once, together with its access tokens (a
Redis deny-list entry per session, kept for an access token's life) - except a retry within 10
seconds of the rotation while the new token is unused: a client that lost the answer gets the
same new pair again. Why MySQL rather than Redis for refresh tokens: the check-and-rotate step is a
row lock in one transaction, rotated tokens must outlive any Redis eviction or restart for
theft detection to hold, "all other sessions of a member" is one indexed query, and the load
is tiny (one refresh per member per 15 minutes).
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StrictStr, StringConstraints

from goodsdrop import keys, ratelimit
from goodsdrop.clients import fetch_one, mysql_cursor, mysql_transaction, redis_client
from goodsdrop.clock import db_now, now_ms, to_ms
from goodsdrop.errors import Unauthorized
from goodsdrop.fields import Email, GivenPassword
from goodsdrop.passwords import hash_password, needs_rehash, verify_password
from goodsdrop.ratelimit import AttemptThrottle
from goodsdrop.tokens import (
    ACCESS_TOKEN_SECONDS,
    issue_access_token,
    new_opaque_token,
    next_refresh_token,
    refresh_successors,
    revoke_session_access_tokens,
    revoke_token_id,
    token_digest,
)

REFRESH_TOKEN_SECONDS = 14 * 24 * 3600
SESSION_MAX_SECONDS = 30 * 24 * 3600  # however often it is refreshed, a session ends this long after login
REFRESH_RETRY_GRACE_SECONDS = 10  # a retried refresh within this gets the same pair (see `refresh`)
PURGE_AFTER_EXPIRY = timedelta(days=1)
WRONG_CREDENTIALS = "wrong email or password"

RefreshTokenText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200)]


class LoginRequest(BaseModel):
    """Body of POST /auth/login."""

    model_config = ConfigDict(extra="forbid", strict=True)
    email: Email
    password: GivenPassword


class RefreshRequest(BaseModel):
    """Body of POST /auth/refresh."""

    model_config = ConfigDict(extra="forbid", strict=True)
    refreshToken: RefreshTokenText  # noqa: N815 - the contract's field name


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh return."""

    access_token: str
    refresh_token: str
    session_id: str

    def to_json(self) -> dict[str, Any]:
        return {"accessToken": self.access_token, "refreshToken": self.refresh_token,
                "expiresIn": ACCESS_TOKEN_SECONDS}


# ---------------------------------------------------------------------------------------- throttle
# Three throttles hold a login attempt, each reserved BEFORE the password is checked (see
# goodsdrop.ratelimit.reserve_attempt), so parallel guesses cannot all pass one check:
# - the pair (email, source network): 5 attempts per 15 minutes. A guesser locks only their own
#   pair: the owner signing in elsewhere is not affected by it.
# - the account (email, from networks its owner has not signed in from in 30 days): 5 attempts,
#   then each must wait 15, then 30 minutes after the latest, in a window that lasts while the
#   attempts go on (an hour after the latest), at most 100. Spread over any number of addresses a
#   guesser gets 5, then 2 an hour - never more than before (5 every 15 minutes, from anywhere)
#   at any moment, and a tenth of it over a day. The owner on a network they signed in from before
#   is exempt: a stranger's failures cannot lock them out (before: 15 minutes for anyone).
# - the source network, whatever the email: 50 attempts per 15 minutes (credential stuffing).
# A failed attempt keeps its reservation (it is the failure count); a successful one gives it
# back and clears its pair.
LOGIN_ATTEMPTS_PER_PAIR = AttemptThrottle(limit=5, window_seconds=15 * 60)
LOGIN_ATTEMPTS_PER_ACCOUNT = AttemptThrottle(limit=100, window_seconds=3600, free=5, first_delay_seconds=15 * 60,
                                             longest_delay_seconds=30 * 60, sliding=True)
LOGIN_ATTEMPTS_PER_IP = AttemptThrottle(limit=50, window_seconds=15 * 60)
KNOWN_NETWORK_SECONDS = 30 * 24 * 3600
KNOWN_NETWORKS_KEPT = 10
TOO_MANY_ATTEMPTS = "too many failed sign-ins; try again later"


def login_digest(*parts: str) -> str:
    """What names an email's (and a network's) login keys: no address appears in a key name."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _is_known_network(email: str, source_ip: str | None, at_ms: int) -> bool:
    if source_ip is None:
        return False
    seen = redis_client().zscore(keys.login_known_networks(login_digest(email)), source_ip)
    return seen is not None and at_ms - float(seen) < KNOWN_NETWORK_SECONDS * 1000


def login_throttles(email: str, source_ip: str | None, *, known_network: bool) -> list[tuple[str, AttemptThrottle]]:
    """The throttles a login attempt for `email` from `source_ip` (a normalised network) is held to."""
    throttles = [(keys.login_attempts_by_pair(login_digest(email, source_ip or "-")), LOGIN_ATTEMPTS_PER_PAIR)]
    if not known_network:
        throttles.append((keys.login_attempts_by_account(login_digest(email)), LOGIN_ATTEMPTS_PER_ACCOUNT))
    if source_ip is not None:
        throttles.append((keys.login_attempts_by_ip(source_ip), LOGIN_ATTEMPTS_PER_IP))
    return throttles


def _signed_in(email: str, source_ip: str | None, throttles: list[tuple[str, AttemptThrottle]], at_ms: int) -> None:
    """A right password: its reservations go back, its pair is forgiven, its network becomes known."""
    pair_key = throttles[0][0]
    ratelimit.give_back_attempt(throttles[1:], at_ms)
    pipe = redis_client().pipeline(transaction=False)
    pipe.delete(pair_key)
    if source_ip is not None:
        known = keys.login_known_networks(login_digest(email))
        pipe.zadd(known, {source_ip: at_ms})
        pipe.zremrangebyrank(known, 0, -KNOWN_NETWORKS_KEPT - 1)  # the latest few places only
        pipe.expire(known, KNOWN_NETWORK_SECONDS)
    pipe.execute()


@cache
def _decoy_hash() -> str:
    """A hash to check unknown emails against, so they cost as much time as known ones."""
    return hash_password(uuid.uuid4().hex)


def _rehash(member_id: int, stored: str, password: str) -> None:
    """Store the password with today's parameters (unless it was changed meanwhile)."""
    with mysql_cursor() as cur:
        cur.execute("UPDATE members SET password_hash = %s WHERE id = %s AND password_hash = %s",
                    (hash_password(password), member_id, stored))


def check_credentials(email: str, password: str, source_ip: str | None, *, at_ms: int | None = None) -> dict[str, Any]:
    """The member row for `email` if `password` is right; else the same 401 whatever was wrong.

    429 `RATE_LIMITED` (with Retry-After) when a throttle refuses the attempt; the password is then
    not checked at all. A right password hashed with older parameters is re-hashed.
    """
    at = now_ms() if at_ms is None else at_ms
    throttles = login_throttles(email, source_ip, known_network=_is_known_network(email, source_ip, at))
    ratelimit.reserve_attempt(throttles, TOO_MANY_ATTEMPTS, at)
    try:
        with mysql_cursor() as cur:
            cur.execute("SELECT id, password_hash, role, email_verified FROM members WHERE email = %s", (email,))
            member = cur.fetchone()
        stored = member["password_hash"] if member else _decoy_hash()
        matches = verify_password(password, stored)
    except BaseException:
        ratelimit.give_back_attempt(throttles, at)  # an outage is not a failed guess
        raise
    if member is None or not matches:
        raise Unauthorized(WRONG_CREDENTIALS)  # the reservations stay: they count this failure
    _signed_in(email, source_ip, throttles, at)
    if needs_rehash(stored):
        _rehash(int(member["id"]), stored, password)
    return member


# ---------------------------------------------------------------------------------------- sessions
def _new_refresh_token(cur: Any, session_id: str, now: datetime, *, token: str | None = None,
                       not_after: datetime | None = None) -> tuple[str, datetime]:
    token = token or new_opaque_token()
    expires = now + timedelta(seconds=REFRESH_TOKEN_SECONDS)
    if not_after is not None:
        expires = min(expires, not_after)
    cur.execute("INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (%s, %s, %s)",
                (token_digest(token), session_id, expires))
    return token, expires


def start_session(member_id: int, role: str, email_verified: bool) -> TokenPair:
    """A new session (refresh-token family) for a member whose credentials were checked."""
    now = db_now()
    session_id = uuid.uuid4().hex
    with mysql_transaction() as cur:
        cur.execute("DELETE FROM auth_sessions WHERE member_id = %s AND expires_at < %s",
                    (member_id, now - PURGE_AFTER_EXPIRY))
        # created_at in UTC from here (not the server's clock and zone): the absolute lifetime counts from it.
        cur.execute("INSERT INTO auth_sessions (id, member_id, expires_at, created_at) VALUES (%s, %s, %s, %s)",
                    (session_id, member_id, now + timedelta(seconds=REFRESH_TOKEN_SECONDS), now))
        refresh_token, _ = _new_refresh_token(cur, session_id, now)
    access_token, _ = issue_access_token(member_id, role, email_verified, session_id)
    return TokenPair(access_token, refresh_token, session_id)


def login(request: LoginRequest, source_ip: str | None) -> TokenPair:
    """POST /auth/login: check the credentials (throttled) and start a session."""
    member = check_credentials(request.email, request.password, source_ip)
    return start_session(int(member["id"]), str(member["role"]), bool(member["email_verified"]))


class RefreshOutcome(enum.Enum):
    """What presenting a refresh token leads to."""

    ROTATE = "rotate"          # valid: mark it used, issue the next pair
    RETRY = "retry"            # rotated moments ago, its successor unused: the same pair again
    REUSED = "reused"          # already rotated: theft, revoke the family
    EXPIRED = "expired"        # the token's 14 days, or the session's absolute lifetime, are over
    REVOKED = "revoked"        # its session was ended (logout, reuse, password change)
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StoredRefreshToken:
    """A refresh token's row with its session's state."""

    session_id: str
    member_id: int
    expires_at: datetime
    used_at: datetime | None
    session_revoked_at: datetime | None
    session_ends_at: datetime | None = None  # the session's absolute end (its start + SESSION_MAX_SECONDS)
    successor_unused: bool = False  # the token its rotation issued exists and was not used yet


def refresh_outcome(stored: StoredRefreshToken | None, now: datetime) -> RefreshOutcome:
    """Decide what a presented refresh token leads to (the rule, without the storage)."""
    if stored is None:
        return RefreshOutcome.UNKNOWN
    if stored.session_revoked_at is not None:
        return RefreshOutcome.REVOKED
    if stored.used_at is not None:
        # A client that lost the answer to its refresh retries with the same token: within the
        # grace, and while the successor is unused, that is a retry, not a replay.
        if stored.successor_unused and now - stored.used_at <= timedelta(seconds=REFRESH_RETRY_GRACE_SECONDS):
            return RefreshOutcome.RETRY
        return RefreshOutcome.REUSED
    if stored.expires_at <= now or (stored.session_ends_at is not None and stored.session_ends_at <= now):
        return RefreshOutcome.EXPIRED
    return RefreshOutcome.ROTATE


_REFUSALS = {
    RefreshOutcome.UNKNOWN: "unknown refresh token; sign in again",
    RefreshOutcome.EXPIRED: "the refresh token has expired; sign in again",
    RefreshOutcome.REVOKED: "this session has ended; sign in again",
    RefreshOutcome.REUSED: "this refresh token was already used; the session is revoked, sign in again",
}


def _epoch(moment: datetime) -> int:
    return to_ms(moment) // 1000


def _successor_row(cur: Any, session_id: str, token: str) -> str | None:
    """The successor a rotation of `token` issued, if it is still unused (locked for this transaction)."""
    for candidate in refresh_successors(token):
        cur.execute("SELECT used_at FROM refresh_tokens WHERE token_hash = %s AND session_id = %s FOR UPDATE",
                    (token_digest(candidate), session_id))
        row = cur.fetchone()
        if row is not None:
            return candidate if row["used_at"] is None else None
    return None


def refresh(request: RefreshRequest) -> TokenPair:
    """POST /auth/refresh: rotate a refresh token; a replayed one revokes its whole session.

    The successor of a token is derived from it (`goodsdrop.tokens.next_refresh_token`) and its
    access token from the successor and the moment of rotation, so a retry within
    REFRESH_RETRY_GRACE_SECONDS gets the very same pair without any of it being stored.
    """
    digest, now = token_digest(request.refreshToken), db_now()
    successor: str | None = None
    with mysql_transaction() as cur:
        # The row lock makes check-and-rotate atomic: of two racing uses of one token, the
        # second sees it used (and gets the first one's pair as a retry, or is a replay).
        cur.execute("SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = %s FOR UPDATE",
                    (digest,))
        token_row = cur.fetchone()
        stored = None
        member: dict[str, Any] | None = None
        if token_row is not None:
            cur.execute("SELECT s.member_id, s.revoked_at, s.created_at, m.role, m.email_verified FROM auth_sessions s "
                        "JOIN members m ON m.id = s.member_id WHERE s.id = %s", (token_row["session_id"],))
            member = cur.fetchone()
            if member is not None:
                used_at = token_row["used_at"]
                if used_at is not None and now - used_at <= timedelta(seconds=REFRESH_RETRY_GRACE_SECONDS):
                    successor = _successor_row(cur, token_row["session_id"], request.refreshToken)
                stored = StoredRefreshToken(token_row["session_id"], int(member["member_id"]),
                                            token_row["expires_at"], used_at, member["revoked_at"],
                                            member["created_at"] + timedelta(seconds=SESSION_MAX_SECONDS),
                                            successor is not None)
        outcome = refresh_outcome(stored, now)
        if outcome is RefreshOutcome.ROTATE:
            assert stored is not None
            cur.execute("UPDATE refresh_tokens SET used_at = %s WHERE token_hash = %s", (now, digest))
            successor, expires = _new_refresh_token(cur, stored.session_id, now,
                                                    token=next_refresh_token(request.refreshToken),
                                                    not_after=stored.session_ends_at)
            cur.execute("UPDATE auth_sessions SET expires_at = %s WHERE id = %s AND revoked_at IS NULL",
                        (expires, stored.session_id))
            # Read back as stored (DATETIME(3)): a retry derives the access token from this moment.
            cur.execute("SELECT used_at FROM refresh_tokens WHERE token_hash = %s", (digest,))
            rotated_at = fetch_one(cur)["used_at"]
        elif outcome is RefreshOutcome.REUSED:
            assert stored is not None
            cur.execute("UPDATE auth_sessions SET revoked_at = %s, revoked_reason = 'refresh_reuse' "
                        "WHERE id = %s AND revoked_at IS NULL", (now, stored.session_id))
    # Committed: a refusal (and the revocation of a reused family) stays done.
    if outcome not in (RefreshOutcome.ROTATE, RefreshOutcome.RETRY):
        if outcome is RefreshOutcome.REUSED and stored is not None:
            revoke_session_access_tokens(stored.member_id, [stored.session_id])
        raise Unauthorized(_REFUSALS[outcome], details={"reason": outcome.value})
    assert stored is not None and member is not None and successor is not None
    if outcome is RefreshOutcome.RETRY:
        assert stored.used_at is not None
        rotated_at = stored.used_at
    access_token, _ = issue_access_token(stored.member_id, str(member["role"]), bool(member["email_verified"]),
                                         stored.session_id, now=_epoch(rotated_at),
                                         token_id=token_digest(successor)[:32])
    return TokenPair(access_token, successor, stored.session_id)


def logout(member_id: str, session_id: str, token_id: str, token_expires_at: int) -> None:
    """POST /auth/logout: end the session; its access tokens (this one first) are refused at once.

    MySQL first: it is what decides while the Redis deny-list is missing or being rebuilt.
    """
    if session_id:
        with mysql_cursor() as cur:
            cur.execute("UPDATE auth_sessions SET revoked_at = %s, revoked_reason = 'logout' "
                        "WHERE id = %s AND member_id = %s AND revoked_at IS NULL", (db_now(), session_id, member_id))
    revoke_token_id(token_id, token_expires_at)
    if session_id:
        revoke_session_access_tokens(member_id, [session_id])


def revoke_other_sessions(member_id: int | str, keep_session_id: str, reason: str) -> int:
    """End every live session of a member except `keep_session_id`; returns how many ended."""
    now = db_now()
    with mysql_transaction() as cur:
        cur.execute("SELECT id FROM auth_sessions WHERE member_id = %s AND revoked_at IS NULL AND expires_at > %s "
                    "AND id <> %s FOR UPDATE", (member_id, now, keep_session_id))
        session_ids = [row["id"] for row in cur.fetchall()]
        if session_ids:
            marks = ", ".join(["%s"] * len(session_ids))
            cur.execute(f"UPDATE auth_sessions SET revoked_at = %s, revoked_reason = %s WHERE id IN ({marks})",
                        (now, reason, *session_ids))
    revoke_session_access_tokens(member_id, session_ids)
    return len(session_ids)
