"""Every Redis key name GoodsDrop uses, in one place.

Keys that one Lua script touches together share a hash tag (`{p<id>}`, `{m<id>}`), so every
script stays within one slot and the product can run on Redis Cluster unchanged.
"""

from __future__ import annotations

PREFIX = "gd"


def stock(product_id: int | str) -> str:
    """Hash of a product's live stock: `available`, `reserved`, `version`."""
    return f"{PREFIX}:{{p{product_id}}}:stock"


def stock_loading(product_id: int | str) -> str:
    """Short-lived lock held by the one loader that fills a missing stock key (stampede guard)."""
    return f"{PREFIX}:{{p{product_id}}}:stock:loading"


def product_detail(product_id: int | str) -> str:
    """Cached product detail document (JSON), invalidated on edit and on stock change."""
    return f"{PREFIX}:{{p{product_id}}}:detail"


def revoked_token(token_id: str) -> str:
    """Deny-list entry of a revoked access token; expires when the token would have."""
    return f"{PREFIX}:revoked:{token_id}"


def revoked_member_before(member_id: int | str) -> str:
    """Epoch second before which every access token of a member is revoked (password change)."""
    return f"{PREFIX}:{{m{member_id}}}:revoked-before"


def cart(member_id: int | str) -> str:
    """A member's cart: hash of productId → quantity (sliding 7-day TTL)."""
    return f"{PREFIX}:{{m{member_id}}}:cart"


def revoked_session(member_id: int | str, session_id: str) -> str:
    """Deny-list entry of a revoked login session: every access token it issued is refused."""
    return f"{PREFIX}:{{m{member_id}}}:revoked-session:{session_id}"


def login_failures_by_email(email_digest: str) -> str:
    """Failed logins for one email (SHA-256 of it, no address in key names) in the current window."""
    return f"{PREFIX}:login-failures:email:{email_digest}"


def login_failures_by_ip(source_ip: str) -> str:
    """Failed logins from one source IP in the current window."""
    return f"{PREFIX}:login-failures:ip:{source_ip}"


def verification_resends(member_id: int | str) -> str:
    """Verification mails re-sent to a member in the current window."""
    return f"{PREFIX}:{{m{member_id}}}:verification-resends"
