"""Test accounts made directly in MySQL (fast), with real access tokens from the real signing key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from goodsdrop.clients import mysql_transaction
from goodsdrop.passwords import hash_password
from goodsdrop.tokens import issue_access_token

PASSWORD = "test-pass-123"
_HASH: list[str] = []


@dataclass(frozen=True)
class Account:
    member_id: int
    email: str
    password: str
    role: str
    verified: bool

    def token(self) -> str:
        """A fresh access token for this member, signed like the login endpoint signs them."""
        return issue_access_token(self.member_id, self.role, self.verified, uuid.uuid4().hex)[0]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


def new_account(*, verified: bool = True, seller: bool = False, operator: bool = False) -> Account:
    """A new member (optionally a seller with a shop, or an operator) with the password `PASSWORD`."""
    role = "seller" if seller else "operator" if operator else "member"
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))  # one slow hash per test session is enough
    email = f"t-{uuid.uuid4().hex[:12]}@example.test"
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO members (email, password_hash, name, email_verified, role) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (email, _HASH[0], "Test Member", int(verified), role))
        member_id = cur.lastrowid
        if seller:
            cur.execute("INSERT INTO sellers (member_id, shop_name, address, contact_number, registration_number) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        (member_id, f"Shop {member_id}", "1 Test-ro, Seoul", "02-000-0000",
                         f"{uuid.uuid4().int % 10**10:010d}"))
    return Account(member_id, email, PASSWORD, role, verified)
