"""Who is calling: the identity the API Gateway authorizer established, as the domain takes it.

Handlers get a `Caller` from `goodsdrop.http.current_caller(app)` (or `require_verified`,
`require_seller`); the domain only reads it, so it never needs the HTTP edge.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the API Gateway authorizer established it (never parsed from the JWT here)."""

    member_id: str
    role: str
    email_verified: bool
    token_id: str = ""
    session_id: str = ""
    token_expires_at: int = 0

    @property
    def is_seller(self) -> bool:
        """True for a seller (the role the authorizer put in the context)."""
        return self.role == "seller"
