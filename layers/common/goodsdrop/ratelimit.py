"""Rate limits in Redis: fixed-window counters and token buckets, shared by every Lambda container.

Fixed windows (login failures, verification mails): a window starts with the first hit and lasts
`window_seconds` (the key's TTL); at `limit` hits the caller gets 429 `RATE_LIMITED` with
`Retry-After` = the seconds left in the window.

Token buckets (POST /orders, per member and per IP; see goodsdrop.admission): a bucket holds up to
`burst` tokens and refills `rate_per_second`; each request takes one, an empty bucket answers 429
`RATE_LIMITED` with `Retry-After` = the whole seconds until a token is back. Unlike a window, a
bucket lets a steady buyer through at the rate and absorbs a short burst, without the double burst
at a window's edge. One Lua script per bucket (`lua/take_token.lua`, one key per call), so each
bucket is one slot on Redis Cluster.

The bucket's clock is the caller's (`now` in milliseconds), not Redis' TIME. TIME would give each
key one clock (the master that holds it) and be immune to skew between Lambda hosts; but those
keep NTP time (Amazon Time Sync, within milliseconds of each other, against a refill of one token
per 100-200 ms), the script tolerates a caller slightly behind (no refill, no debt), and a `now`
argument keeps the script a pure function of its inputs, so tests drive time without sleeping.
The waiting room (goodsdrop.admission) uses the same clock for the same reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from goodsdrop.clients import redis_client
from goodsdrop.clock import now_ms
from goodsdrop.errors import RateLimited
from goodsdrop.scripts import script


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


# ---------------------------------------------------------------------------- token buckets


@dataclass(frozen=True)
class TokenBucket:
    """Up to `burst` requests at once, `rate_per_second` on average; a rate of 0 turns the bucket off."""

    rate_per_second: float
    burst: int

    @property
    def is_on(self) -> bool:
        return self.rate_per_second > 0

    def script_args(self, now_ms: int) -> list[int | str]:
        """ARGV of `lua/take_token.lua` for one call at `now_ms`."""
        return [now_ms, repr(float(self.rate_per_second)), max(1, self.burst)]


def retry_after_seconds(wait_ms: int) -> int:
    """Retry-After in whole seconds (at least 1) for a wait of `wait_ms` milliseconds."""
    return max(1, math.ceil(wait_ms / 1000))


def take_token(key: str, bucket: TokenBucket, at_ms: int | None = None) -> int:
    """Take one token from the bucket at `key`: 0 when taken, else the milliseconds until one is back."""
    if not bucket.is_on:
        return 0
    taken, wait_ms = script("take_token")(keys=[key], args=bucket.script_args(now_ms() if at_ms is None else at_ms))
    return 0 if int(taken) == 1 else int(wait_ms)
