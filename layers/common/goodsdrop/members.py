"""Members: sign-up, email verification, the member's own profile, password change.

Emails are normalised (trimmed, lower-cased) and unique; passwords are kept only as scrypt
hashes (`goodsdrop.passwords`). Verification links carry a random single-use token that
expires after 24 hours; only its SHA-256 is stored (`email_verifications`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pymysql
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, model_validator

from goodsdrop import keys, ratelimit, sessions
from goodsdrop.clients import DUPLICATE_KEY, mysql_cursor, mysql_transaction
from goodsdrop.clock import db_now, from_db, iso
from goodsdrop.errors import (
    Conflict,
    DropError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from goodsdrop.fields import Address, Email, GivenPassword, NewPassword, PersonName, Phone
from goodsdrop.mail import send_already_registered_mail, send_verification_mail
from goodsdrop.passwords import hash_password
from goodsdrop.ratelimit import Limit
from goodsdrop.settings import settings
from goodsdrop.tokens import new_opaque_token, note_email_verified, token_digest

logger = Logger(child=True)

VERIFICATION_SECONDS = 24 * 3600
VERIFICATION_RESENDS = Limit(limit=3, window_seconds=3600)
SIGN_UPS_PER_IP = Limit(limit=settings.sign_ups_per_ip_per_hour, window_seconds=3600)
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
_MEMBER_COLUMNS = ("m.id, m.email, m.name, m.phone, m.address, m.email_verified, m.role, m.created_at, "
                   "s.shop_name, s.address AS shop_address, s.contact_number, s.registration_number, "
                   "s.created_at AS seller_since")


class SignUp(BaseModel):
    """Body of POST /members."""

    model_config = ConfigDict(extra="forbid", strict=True)
    email: Email
    password: NewPassword
    name: PersonName
    phone: Phone | None = None
    address: Address | None = None


class ProfileUpdate(BaseModel):
    """Body of PATCH /members/me: any of name, phone, address (phone and address may be null to clear)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: PersonName | None = None
    phone: Phone | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ProfileUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, phone, address")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name may not be null")
        return self


class PasswordChange(BaseModel):
    """Body of PATCH /members/me/password."""

    model_config = ConfigDict(extra="forbid", strict=True)
    currentPassword: GivenPassword  # noqa: N815 - the contract's field names
    newPassword: NewPassword  # noqa: N815

    @model_validator(mode="after")
    def _new_differs(self) -> PasswordChange:
        if self.newPassword == self.currentPassword:
            raise ValueError("newPassword must differ from currentPassword")
        return self


@dataclass(frozen=True)
class Member:
    """A member as the API shows them (never the password hash)."""

    id: int
    email: str
    name: str
    phone: str | None
    address: str | None
    email_verified: bool
    role: str
    created_at: datetime
    seller: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Member:
        seller = None
        if row.get("shop_name") is not None:
            seller = {"shopName": row["shop_name"], "address": row["shop_address"],
                      "contactNumber": row["contact_number"], "registrationNumber": row["registration_number"],
                      "createdAt": iso(from_db(row["seller_since"]))}
        return cls(int(row["id"]), row["email"], row["name"], row["phone"], row["address"],
                   bool(row["email_verified"]), row["role"], row["created_at"], seller)

    def to_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "email": self.email, "name": self.name, "phone": self.phone,
                "address": self.address, "emailVerified": self.email_verified, "role": self.role,
                "createdAt": iso(from_db(self.created_at)), "seller": self.seller}


def get_member(member_id: int | str) -> Member:
    """A member with their seller profile, if any; 404 when there is no such member."""
    with mysql_cursor() as cur:
        cur.execute(f"SELECT {_MEMBER_COLUMNS} FROM members m LEFT JOIN sellers s ON s.member_id = m.id "
                    "WHERE m.id = %s", (member_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound("no such member")
    return Member.from_row(row)


# ------------------------------------------------------------------------------------ sign-up
def _new_verification(cur: Any, member_id: int, now: datetime) -> str:
    token = new_opaque_token()
    cur.execute("INSERT INTO email_verifications (token_hash, member_id, expires_at) VALUES (%s, %s, %s)",
                (token_digest(token), member_id, now + timedelta(seconds=VERIFICATION_SECONDS)))
    return token


def _send_verification(email: str, name: str, token: str) -> bool:
    """Send the mail; a failure is logged, not raised (the member exists and can ask for a resend)."""
    try:
        send_verification_mail(email, name, token)
    except Exception:  # any SES/boto failure: the sign-up itself succeeded
        logger.exception("verification mail failed")
        return False
    return True


def sign_up(request: SignUp, source_ip: str | None) -> dict[str, Any]:
    """POST /members: create an unverified member and mail them a verification link.

    A taken email gets the very same answer (no account enumeration): its owner is mailed that
    someone tried to sign up with it, and nothing else happens. Sign-ups are limited per source
    network (`SIGN_UPS_PER_IP`, 429 beyond). The password is hashed either way, so both cost alike.
    """
    if source_ip is not None:
        ratelimit.consume(keys.sign_ups_by_ip(source_ip), SIGN_UPS_PER_IP,
                          "too many sign-ups from your network; try again later")
    now, password_hash = db_now(), hash_password(request.password)  # slow: outside the transaction
    try:
        with mysql_transaction() as cur:
            cur.execute("INSERT INTO members (email, password_hash, name, phone, address) VALUES (%s, %s, %s, %s, %s)",
                        (request.email, password_hash, request.name, request.phone, request.address))
            token = _new_verification(cur, int(cur.lastrowid), now)
    except pymysql.err.IntegrityError as err:
        if not (err.args and err.args[0] == DUPLICATE_KEY):
            raise
        try:
            send_already_registered_mail(request.email)
        except Exception:  # as with a verification mail: logged, and the answer stays the same
            logger.exception("already-registered mail failed")
    else:
        _send_verification(request.email, request.name, token)
    return {"accepted": True, "email": request.email}


# ------------------------------------------------------------------------------- verification
def parse_verification_token(raw: str | None) -> str:
    """The `token` query parameter, or 400 naming it."""
    if raw is None or raw == "":
        raise ValidationError("token is required", details={"fields": {"token": "missing"}})
    if not _TOKEN_SHAPE.match(raw):
        raise ValidationError("token is malformed", details={"fields": {"token": "malformed"}})
    return raw


def verify_email(token: str) -> Member:
    """GET /members/verify: use a verification link once, within 24 hours, unless a newer one replaced it.

    Takes effect on the member's very next request: access tokens issued before say "not verified",
    so the authorizer also reads a verified flag written here (goodsdrop.tokens.note_email_verified).
    """
    now = db_now()
    with mysql_transaction() as cur:
        cur.execute("SELECT member_id, expires_at, used_at, replaced_at FROM email_verifications "
                    "WHERE token_hash = %s FOR UPDATE", (token_digest(token),))
        row = cur.fetchone()
        if row is None:
            raise NotFound("unknown verification link")
        if row["replaced_at"] is not None:
            raise DropError("this verification link was replaced by a newer one; open the link of the latest mail",
                            code="VERIFICATION_LINK_REPLACED", http_status=410)
        if row["used_at"] is not None:
            raise Conflict("this verification link was already used", code="VERIFICATION_LINK_USED")
        if row["expires_at"] <= now:
            raise DropError("this verification link has expired; ask for a new one",
                            code="VERIFICATION_LINK_EXPIRED", http_status=410)
        cur.execute("UPDATE members SET email_verified = 1 WHERE id = %s", (row["member_id"],))
        # Every other link of this member is spent too: the address is verified now.
        cur.execute("UPDATE email_verifications SET used_at = %s WHERE member_id = %s AND used_at IS NULL",
                    (now, row["member_id"]))
    note_email_verified(row["member_id"])
    return get_member(row["member_id"])


def resend_verification(member_id: int | str) -> None:
    """POST /members/verify/resend: a new link for an unverified member (3 per hour, then 429)."""
    member = get_member(member_id)
    if member.email_verified:
        raise Conflict("the email address is already verified", code="ALREADY_VERIFIED")
    ratelimit.consume(keys.verification_resends(member.id), VERIFICATION_RESENDS,
                      "verification mail was re-sent too often; try again later")
    with mysql_transaction() as cur:
        now = db_now()
        # The older links are replaced: each says so when opened (not "already used": it never was).
        cur.execute("UPDATE email_verifications SET replaced_at = %s WHERE member_id = %s AND used_at IS NULL "
                    "AND replaced_at IS NULL", (now, member.id))
        token = _new_verification(cur, member.id, now)
    if not _send_verification(member.email, member.name, token):
        raise ServiceUnavailable("the mail could not be sent; try again")


# ------------------------------------------------------------------------------------ profile
def update_profile(member_id: int | str, update: ProfileUpdate) -> Member:
    """PATCH /members/me: change the given fields of the caller's own profile."""
    changes = {name: getattr(update, name) for name in ("name", "phone", "address") if name in update.model_fields_set}
    assignments = ", ".join(f"{column} = %s" for column in changes)  # column names from the fixed tuple above
    with mysql_cursor() as cur:
        cur.execute(f"UPDATE members SET {assignments} WHERE id = %s", (*changes.values(), member_id))
    return get_member(member_id)


def change_password(member_id: int | str, session_id: str, request: PasswordChange,
                    source_ip: str | None = None) -> int:
    """PATCH /members/me/password: needs the current password; ends every other session.

    The current password is checked like a login (the same throttles, reserved first: a stolen
    access token must not become a password-guessing oracle). Returns how many sessions were ended.
    """
    with mysql_cursor() as cur:
        cur.execute("SELECT email FROM members WHERE id = %s", (member_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound("no such member")
    try:
        sessions.check_credentials(row["email"], request.currentPassword, source_ip)
    except Unauthorized:
        raise Forbidden("the current password is wrong",
                        details={"fields": {"currentPassword": "wrong password"}}) from None
    with mysql_cursor() as cur:
        cur.execute("UPDATE members SET password_hash = %s WHERE id = %s", (hash_password(request.newPassword),
                                                                           member_id))
    return sessions.revoke_other_sessions(member_id, session_id, "password_change")
