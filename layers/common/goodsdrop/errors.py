"""One error hierarchy for the whole product.

Every error a client can cause is a `DropError` with a stable machine-readable `code` and the
HTTP status it maps to. `goodsdrop.http` turns them into the contract's JSON error shape in one
place; Kafka consumers use the same types to decide between "retry" and "give up".
"""

from __future__ import annotations

from typing import Any


class DropError(Exception):
    """Base of every expected, client-visible failure."""

    code: str = "ERROR"
    http_status: int = 400

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.message = str(self.args[0])
        self.details: dict[str, Any] = details or {}
        self.headers: dict[str, str] = headers or {}

    def to_body(self) -> dict[str, Any]:
        """The contract's error document."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationError(DropError):
    """The request is malformed."""

    code, http_status = "VALIDATION_ERROR", 400


class Unauthorized(DropError):
    """Authentication is missing or invalid."""

    code, http_status = "UNAUTHORIZED", 401


class TokenExpired(Unauthorized):
    """The access token has expired."""

    code = "TOKEN_EXPIRED"


class Forbidden(DropError):
    """You may not do this."""

    code, http_status = "FORBIDDEN", 403


class EmailNotVerified(Forbidden):
    """Verify your email address first (once verified, it counts from your next request)."""

    code = "EMAIL_NOT_VERIFIED"


class NotFound(DropError):
    """No such resource."""

    code, http_status = "NOT_FOUND", 404


class Conflict(DropError):
    """The request conflicts with the current state (the code says which conflict)."""

    code, http_status = "CONFLICT", 409


class QueueRequired(Conflict):
    """The product's waiting room is open: join its queue and order once admitted."""

    code = "QUEUE_REQUIRED"


class PayloadTooLarge(DropError):
    """The request body is too large."""

    code, http_status = "PAYLOAD_TOO_LARGE", 413


class UnsupportedMediaType(DropError):
    """Send JSON (Content-Type: application/json)."""

    code, http_status = "UNSUPPORTED_MEDIA_TYPE", 415


class RateLimited(DropError):
    """Too many requests; try again later (Retry-After and `details.retryAfterSeconds` say when)."""

    code, http_status = "RATE_LIMITED", 429

    def __init__(self, message: str = "", *, retry_after: int = 1, details: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)},
                         details={**(details or {}), "retryAfterSeconds": retry_after}, **kwargs)


class ServiceUnavailable(DropError):
    """A dependency is briefly unavailable; nothing was changed, try again."""

    code, http_status = "SERVICE_UNAVAILABLE", 503

    def __init__(self, message: str = "", *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class StepFailed(DropError):
    """A saga step failed for good (not worth retrying): the saga compensates, with `reason` as the
    order's failure reason (`ORDER_PERSISTENCE_FAILED`, `STOCK_PERSISTENCE_FAILED`, ...)."""

    code, http_status = "STEP_FAILED", 409

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code=reason)
        self.reason = reason
