"""Sellers: a verified member registers a shop and becomes a seller.

The shop name and the business registration number are unique (409 `SHOP_NAME_TAKEN`,
`REGISTRATION_NUMBER_TAKEN`); a member registers once (409 `ALREADY_SELLER`). The member's role
becomes `seller` in the same transaction, so the next access token (login or refresh) says so.
"""

from __future__ import annotations

from typing import Any

import pymysql
from pydantic import BaseModel, ConfigDict

from goodsdrop.clients import DUPLICATE_KEY, mysql_transaction
from goodsdrop.errors import Conflict, EmailNotVerified, NotFound
from goodsdrop.fields import Address, Phone, RegistrationNumber, ShopName
from goodsdrop.members import Member, get_member


class SellerRegistration(BaseModel):
    """Body of POST /sellers."""

    model_config = ConfigDict(extra="forbid", strict=True)
    shopName: ShopName  # noqa: N815 - the contract's field names
    address: Address
    contactNumber: Phone  # noqa: N815
    registrationNumber: RegistrationNumber  # noqa: N815


_DUPLICATES = {
    "uq_sellers_registration": ("REGISTRATION_NUMBER_TAKEN", "registrationNumber",
                                "this business registration number is already registered"),
    "uq_sellers_shop_name": ("SHOP_NAME_TAKEN", "shopName", "this shop name is taken"),
}


def _conflict(err: pymysql.err.IntegrityError) -> Conflict:
    text = str(err.args[1]) if len(err.args) > 1 else ""
    for index, (code, field, message) in _DUPLICATES.items():
        if index in text:
            return Conflict(message, code=code, details={"fields": {field: "already registered"}})
    return Conflict("you are already a seller", code="ALREADY_SELLER")


def register_seller(member_id: int | str, registration: SellerRegistration) -> Member:
    """POST /sellers: the member (verified email, checked in the database) becomes a seller."""
    try:
        with mysql_transaction() as cur:
            cur.execute("SELECT email_verified, role FROM members WHERE id = %s FOR UPDATE", (member_id,))
            member: dict[str, Any] | None = cur.fetchone()
            if member is None:
                raise NotFound("no such member")
            if not member["email_verified"]:
                raise EmailNotVerified("verify your email address before opening a shop")
            cur.execute("SELECT 1 FROM sellers WHERE member_id = %s", (member_id,))
            if member["role"] == "seller" or cur.fetchone() is not None:
                raise Conflict("you are already a seller", code="ALREADY_SELLER")
            cur.execute("INSERT INTO sellers (member_id, shop_name, address, contact_number, registration_number) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        (member_id, registration.shopName, registration.address, registration.contactNumber,
                         registration.registrationNumber))
            cur.execute("UPDATE members SET role = 'seller' WHERE id = %s", (member_id,))
    except pymysql.err.IntegrityError as err:
        if err.args and err.args[0] == DUPLICATE_KEY:
            raise _conflict(err) from None
        raise
    return get_member(member_id)
