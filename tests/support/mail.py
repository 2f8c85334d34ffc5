"""Read the mail GoodsDrop sent through SES from the moto server's state (`/moto-api/data.json`)."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import unquote

import httpx

from goodsdrop.fields import registration_check_digit
from goodsdrop.settings import settings

# The mail links to the storefront's verification page (`/#/verify?token=...`).
_LINK = re.compile(r"https?://[^\s\"'<>]+/#/verify\?token=[A-Za-z0-9_%-]+")
_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_%-]+)")


def messages_to(address: str) -> list[dict]:
    """Every mail moto's SES holds for `address`, oldest first."""
    state = httpx.get(f"{settings.aws_endpoint_url}/moto-api/data.json", timeout=10).json()
    return [m for m in state["ses"]["Message"] if address in (m.get("destinations") or {}).get("ToAddresses", [])]


def verification_links(address: str, at_least: int = 1, wait_seconds: float = 5.0) -> list[str]:
    """The verification links mailed to `address` (waits, bounded, until `at_least` mails arrived)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        mails = messages_to(address)
        if len(mails) >= at_least or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    links = [match.group(0) for mail in mails for match in [_LINK.search(mail["body"])] if match]
    assert len(links) >= at_least, f"expected {at_least} verification mail(s) to {address}, found {len(links)}"
    return links


def token_of(link: str) -> str:
    match = _TOKEN.search(link.replace("&amp;", "&"))
    assert match is not None, link
    return unquote(match.group(1))


def new_email() -> str:
    return f"m-{uuid.uuid4().hex[:12]}@example.test"


def new_registration_number() -> str:
    """A random, valid business registration number, written NNN-NN-NNNNN."""
    first = f"{uuid.uuid4().int % 10**9:09d}"
    digits = first + str(registration_check_digit(first))
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
