"""Fixed-window counters in Redis for throttling (login failures, verification mails).

A window starts with the first hit and lasts `window_seconds` (the key's TTL); at `limit` hits
the caller gets 429 `RATE_LIMITED` with `Retry-After` = the seconds left in the window. Counters
are shared by every Lambda container, so a throttle holds however many instances run.
"""

from __future__ import annotations

from dataclasses import dataclass

from goodsdrop.clients import redis_client
from goodsdrop.errors import RateLimited


@dataclass(frozen=True)
class Limit:
    """At most `limit` hits per `window_seconds`."""

    limit: int
    window_seconds: int


def _retry_after(key: str, limit: Limit) -> int:
    ttl = int(redis_client().ttl(key))
    return ttl if ttl > 0 else limit.window_seconds


def ensure_below(keys_and_limits: list[tuple[str, Limit]], message: str) -> None:
    """Raise `RateLimited` if any counter has reached its limit (does not count a hit)."""
    pipe = redis_client().pipeline(transaction=False)
    for key, _ in keys_and_limits:
        pipe.get(key)  # GETs in a pipeline, not MGET: the keys may sit in different cluster slots
    counts = pipe.execute()
    blocked = [(key, limit) for (key, limit), count in zip(keys_and_limits, counts, strict=True)
               if count is not None and int(count) >= limit.limit]
    if blocked:
        raise RateLimited(message, retry_after=max(_retry_after(key, limit) for key, limit in blocked))


def record_hit(keys_and_limits: list[tuple[str, Limit]]) -> None:
    """Count one hit on each counter (a new window starts with the first hit)."""
    pipe = redis_client().pipeline(transaction=False)
    for key, limit in keys_and_limits:
        pipe.incr(key)
        pipe.expire(key, limit.window_seconds, nx=True)
    pipe.execute()


def consume(key: str, limit: Limit, message: str) -> None:
    """Count one hit and raise `RateLimited` if it went over the limit (the hit is still counted)."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, limit.window_seconds, nx=True)
    count, _ = pipe.execute()
    if int(count) > limit.limit:
        raise RateLimited(message, retry_after=_retry_after(key, limit))


def reset(key: str) -> None:
    """Forget a counter (e.g. the failures of an email after a successful login)."""
    redis_client().delete(key)
