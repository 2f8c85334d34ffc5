"""Rate limits in Redis: fixed-window counters and token buckets, shared by every Lambda container.

Fixed windows (verification mails, sign-ups per IP): a window starts with the first hit and lasts
`window_seconds` (the key's TTL); at `limit` hits the caller gets 429 `RATE_LIMITED` with
`Retry-After` = the seconds left in the window.

Token buckets (POST /orders, per member and per IP; see goodsdrop.admission): a bucket holds up to
`burst` tokens and refills `rate_per_second`; each request takes one, an empty bucket answers 429
`RATE_LIMITED` with `Retry-After` = the whole seconds until a token is back. Unlike a window, a
bucket lets a steady buyer through at the rate and absorbs a short burst, without the double burst
at a window's edge. One Lua script per bucket (`lua/take_token.lua`, one key per call), so each
bucket is one slot on Redis Cluster.

Attempt throttles (login): an attempt is reserved before the work it limits is done (the password
check), in one script call per throttle (`lua/take_login_attempt.lua`), so parallel attempts can
never all pass a check made before any of them was counted. A throttle may add growing delays
after its first `free` attempts. A failed attempt keeps its reservation (it is the failure count);
a successful one gives it back.

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
from typing import Any

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


# ---------------------------------------------------------------------------- attempt throttles


@dataclass(frozen=True)
class AttemptThrottle:
    """At most `limit` attempts per window; after `free` of them, each waits a delay after the latest
    one that starts at `first_delay_seconds` and doubles up to `longest_delay_seconds`. A `sliding`
    window is renewed by every attempt (it lasts while the attempts go on)."""

    limit: int
    window_seconds: int
    free: int | None = None  # None: no delays
    first_delay_seconds: float = 0.0
    longest_delay_seconds: float = 0.0
    sliding: bool = False

    def script_args(self, mode: str, at_ms: int) -> list[int | str]:
        """ARGV of `lua/take_login_attempt.lua`."""
        return [mode, at_ms, self.limit, self.window_seconds * 1000,
                self.limit if self.free is None else self.free, int(self.first_delay_seconds * 1000),
                int(self.longest_delay_seconds * 1000), "1" if self.sliding else "0"]


def _run_attempt_scripts(mode: str, throttles: list[tuple[str, AttemptThrottle]], at_ms: int) -> list[Any]:
    pipe = redis_client().pipeline(transaction=False)  # one single-key script per throttle: any cluster slot
    for key, throttle in throttles:
        script("take_login_attempt")(keys=[key], args=throttle.script_args(mode, at_ms), client=pipe)
    return pipe.execute()


def reserve_attempt(throttles: list[tuple[str, AttemptThrottle]], message: str, at_ms: int | None = None) -> None:
    """Count one attempt on every throttle, or raise `RateLimited` (with Retry-After) and count none.

    Each throttle's check-and-count is one atomic script; when one refuses, the others' reservations
    are given back, so no throttle ever lets more than its limit through.
    """
    at = now_ms() if at_ms is None else at_ms
    results = _run_attempt_scripts("take", throttles, at)
    waits = [int(wait) for taken, wait in results if int(taken) != 1]
    if waits:
        taken = [pair for pair, (ok, _) in zip(throttles, results, strict=True) if int(ok) == 1]
        if taken:
            _run_attempt_scripts("give_back", taken, at)
        raise RateLimited(message, retry_after=retry_after_seconds(max(waits)))


def give_back_attempt(throttles: list[tuple[str, AttemptThrottle]], at_ms: int | None = None) -> None:
    """Return the reservation of an attempt that succeeded (it was no failure)."""
    if throttles:
        _run_attempt_scripts("give_back", throttles, now_ms() if at_ms is None else at_ms)
