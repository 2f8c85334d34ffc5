"""Login sessions: login with throttling, refresh-token rotation with reuse detection, logout.

A session is one refresh-token family (table `auth_sessions`; its id is the `sid` claim of every
access token it issues). Refresh tokens are opaque random strings stored only as SHA-256 digests
in MySQL (`refresh_tokens`), each valid 14 days and usable once: a refresh marks it used and
issues the next one. Presenting a used token again means two parties hold the family (a stolen
token was replayed, or the thief already rotated it), so the whole session is revoked at once,
together with its access tokens (a Redis deny-list entry per session, kept for an access
token's life). Why MySQL rather than Redis for refresh tokens: the check-and-rotate step is a
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
from goodsdrop.clients import mysql_cursor, mysql_transaction
from goodsdrop.clock import db_now
from goodsdrop.errors import Unauthorized
from goodsdrop.fields import Email, GivenPassword
from goodsdrop.passwords import hash_password, verify_password
from goodsdrop.ratelimit import Limit
from goodsdrop.tokens import (
    ACCESS_TOKEN_SECONDS,
    issue_access_token,
    new_opaque_token,
    revoke_session_access_tokens,
    revoke_token_id,
    token_digest,
)

REFRESH_TOKEN_SECONDS = 14 * 24 * 3600
PURGE_AFTER_EXPIRY = timedelta(days=1)
LOGIN_FAILURES_PER_EMAIL = Limit(limit=5, window_seconds=15 * 60)
LOGIN_FAILURES_PER_IP = Limit(limit=50, window_seconds=15 * 60)
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
def _email_key(email: str) -> str:
    return keys.login_failures_by_email(hashlib.sha256(email.encode()).hexdigest()[:32])


def login_throttles(email: str, source_ip: str | None) -> list[tuple[str, Limit]]:
    """The failure counters a login attempt for `email` from `source_ip` is held to."""
    throttles = [(_email_key(email), LOGIN_FAILURES_PER_EMAIL)]
    if source_ip:
        throttles.append((keys.login_failures_by_ip(source_ip), LOGIN_FAILURES_PER_IP))
    return throttles


def ensure_login_allowed(email: str, source_ip: str | None) -> None:
    """429 `RATE_LIMITED` while the email or the IP has too many recent failures (even for the right password)."""
    ratelimit.ensure_below(login_throttles(email, source_ip), "too many failed sign-ins; try again later")


def record_login_failure(email: str, source_ip: str | None) -> None:
    """Count a failed password check against the email and the IP."""
    ratelimit.record_hit(login_throttles(email, source_ip))


@cache
def _decoy_hash() -> str:
    """A hash to check unknown emails against, so they cost as much time as known ones."""
    return hash_password(uuid.uuid4().hex)


def check_credentials(email: str, password: str, source_ip: str | None) -> dict[str, Any]:
    """The member row for `email` if `password` is right; else the same 401 whatever was wrong."""
    ensure_login_allowed(email, source_ip)
    with mysql_cursor() as cur:
        cur.execute("SELECT id, password_hash, role, email_verified FROM members WHERE email = %s", (email,))
        member = cur.fetchone()
    matches = verify_password(password, member["password_hash"] if member else _decoy_hash())
    if member is None or not matches:
        record_login_failure(email, source_ip)
        raise Unauthorized(WRONG_CREDENTIALS)
    ratelimit.reset(_email_key(email))
    return member


# ---------------------------------------------------------------------------------------- sessions
def _new_refresh_token(cur: Any, session_id: str, now: datetime) -> tuple[str, datetime]:
    token = new_opaque_token()
    expires = now + timedelta(seconds=REFRESH_TOKEN_SECONDS)
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
        cur.execute("INSERT INTO auth_sessions (id, member_id, expires_at) VALUES (%s, %s, %s)",
                    (session_id, member_id, now + timedelta(seconds=REFRESH_TOKEN_SECONDS)))
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
    REUSED = "reused"          # already rotated: theft, revoke the family
    EXPIRED = "expired"
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


def refresh_outcome(stored: StoredRefreshToken | None, now: datetime) -> RefreshOutcome:
    """Decide what a presented refresh token leads to (the rule, without the storage)."""
    if stored is None:
        return RefreshOutcome.UNKNOWN
    if stored.session_revoked_at is not None:
        return RefreshOutcome.REVOKED
    if stored.used_at is not None:
        return RefreshOutcome.REUSED
    if stored.expires_at <= now:
        return RefreshOutcome.EXPIRED
    return RefreshOutcome.ROTATE


_REFUSALS = {
    RefreshOutcome.UNKNOWN: "unknown refresh token; sign in again",
    RefreshOutcome.EXPIRED: "the refresh token has expired; sign in again",
    RefreshOutcome.REVOKED: "this session has ended; sign in again",
    RefreshOutcome.REUSED: "this refresh token was already used; the session is revoked, sign in again",
}


def refresh(request: RefreshRequest) -> TokenPair:
    """POST /auth/refresh: rotate a refresh token; a replayed one revokes its whole session."""
    digest, now = token_digest(request.refreshToken), db_now()
    with mysql_transaction() as cur:
        # The row lock makes check-and-rotate atomic: of two racing uses of one token, the
        # second sees it used and is treated as a replay.
        cur.execute("SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = %s FOR UPDATE",
                    (digest,))
        token_row = cur.fetchone()
        stored = None
        member: dict[str, Any] | None = None
        if token_row is not None:
            cur.execute("SELECT s.member_id, s.revoked_at, m.role, m.email_verified FROM auth_sessions s "
                        "JOIN members m ON m.id = s.member_id WHERE s.id = %s", (token_row["session_id"],))
            member = cur.fetchone()
            if member is not None:
                stored = StoredRefreshToken(token_row["session_id"], int(member["member_id"]),
                                            token_row["expires_at"], token_row["used_at"], member["revoked_at"])
        outcome = refresh_outcome(stored, now)
        if outcome is RefreshOutcome.ROTATE:
            assert stored is not None and member is not None
            cur.execute("UPDATE refresh_tokens SET used_at = %s WHERE token_hash = %s", (now, digest))
            next_token, expires = _new_refresh_token(cur, stored.session_id, now)
            cur.execute("UPDATE auth_sessions SET expires_at = %s WHERE id = %s AND revoked_at IS NULL",
                        (expires, stored.session_id))
        elif outcome is RefreshOutcome.REUSED:
            assert stored is not None
            cur.execute("UPDATE auth_sessions SET revoked_at = %s, revoked_reason = 'refresh_reuse' "
                        "WHERE id = %s AND revoked_at IS NULL", (now, stored.session_id))
    # Committed: a refusal (and the revocation of a reused family) stays done.
    if outcome is not RefreshOutcome.ROTATE:
        if outcome is RefreshOutcome.REUSED and stored is not None:
            revoke_session_access_tokens(stored.member_id, [stored.session_id])
        raise Unauthorized(_REFUSALS[outcome], details={"reason": outcome.value})
    assert stored is not None and member is not None
    access_token, _ = issue_access_token(stored.member_id, str(member["role"]), bool(member["email_verified"]),
                                         stored.session_id)
    return TokenPair(access_token, next_token, stored.session_id)


def logout(member_id: str, session_id: str, token_id: str, token_expires_at: int) -> None:
    """POST /auth/logout: end the session; its access tokens (this one first) are refused at once."""
    revoke_token_id(token_id, token_expires_at)
    if session_id:
        revoke_session_access_tokens(member_id, [session_id])
        with mysql_cursor() as cur:
            cur.execute("UPDATE auth_sessions SET revoked_at = %s, revoked_reason = 'logout' "
                        "WHERE id = %s AND member_id = %s AND revoked_at IS NULL", (db_now(), session_id, member_id))


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
