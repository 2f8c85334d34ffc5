"""Test-only fault injection for the order saga (clearly not a product feature).

A test marks a product id in the Redis set `keys.test_faults(step)`; every saga step named
`step` then misbehaves for orders containing that product:

- `order-persistence`, `stock-persistence`: the step fails permanently (`StepFailed`), so the saga
  compensates (refund, release, order FAILED).
- `unavailable:<step>`: the step raises a transient error every time (as if MySQL were down), so
  the event-source mapping retries it and then dead-letters it.
- `crash-after-commit:<step>`: the step's process dies (`os._exit`) right after its MySQL
  transaction committed and before it published its outcome, once per product - a consumer
  crash mid-batch (the event-source mapping redelivers the uncommitted batch), or an API process
  dying between a cancel's commit and its publish (`give-back`: the outbox sweep publishes).
- `reject:<step>`: the step refuses the record for good (a permanent failure with reason
  INJECTED_REJECTION), so the consumer dead-letters it; clearing the fault is "the fix" before a
  replay from the dead-letter topic.
- `fail-commit:<step>`: the step's transaction fails at its commit, after everything in it was
  written (its events included), as if MySQL went away at that moment.

Honoured only against the local stack (`settings.aws_target` is `moto` or `localstack`), never on
AWS, so a stray key in production changes nothing. Nothing outside tests writes these keys.
"""

from __future__ import annotations

import os

import pymysql

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.errors import ValidationError
from goodsdrop.settings import settings

ORDER_PERSISTENCE = "order-persistence"
STOCK_PERSISTENCE = "stock-persistence"
CRASH_AFTER_COMMIT = "crash-after-commit"
UNAVAILABLE = "unavailable"
REJECT = "reject"
FAIL_COMMIT = "fail-commit"


class StepFailed(Exception):
    """A saga step failed for good (not worth retrying): the saga compensates."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SimulatedOutage(ConnectionError):
    """A transient failure injected by a test (a connection error): the step should be retried."""


def _enabled() -> bool:
    return settings.aws_target in ("moto", "localstack")


def injected(step: str, product_ids: list[int]) -> bool:
    """Whether a test asked `step` to fail for any of these products."""
    if not _enabled() or not product_ids:
        return False
    flags = redis_client().smismember(keys.test_faults(step), [str(p) for p in product_ids])
    return any(flags)


def fail_if_injected(step: str, product_ids: list[int], reason: str) -> None:
    """Raise `StepFailed(reason)` when a test injected a failure of `step` for these products."""
    if injected(step, product_ids):
        raise StepFailed(reason)


def unavailable_if_injected(step: str, product_ids: list[int]) -> None:
    """Raise a transient `SimulatedOutage` when a test made `step` unavailable for these products."""
    if injected(f"{UNAVAILABLE}:{step}", product_ids):
        raise SimulatedOutage(f"{step} is unavailable (injected by a test)")


def reject_if_injected(step: str, product_ids: list[int]) -> None:
    """Raise a permanent failure (the record is dead-lettered) when a test made `step` reject these products."""
    if injected(f"{REJECT}:{step}", product_ids):
        raise ValidationError(f"{step} rejected the record (injected by a test)", code="INJECTED_REJECTION")


def fail_commit_if_injected(step: str, product_ids: list[int]) -> None:
    """Raise MySQL's "lost connection" inside the transaction, just before its commit, when a test asked for it."""
    if injected(f"{FAIL_COMMIT}:{step}", product_ids):
        raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during COMMIT (injected by a test)")


def crash_if_injected(step: str, product_ids: list[int], order_id: str) -> None:
    """Kill this process (once per marked product) when a test injected a crash after `step` committed."""
    name = f"{CRASH_AFTER_COMMIT}:{step}"
    if not _enabled() or not product_ids:
        return
    r = redis_client()
    for product_id, flagged in zip(product_ids, r.smismember(keys.test_faults(name), [str(p) for p in product_ids]),
                                   strict=True):
        if flagged and r.set(crash_marker(step, product_id), order_id, nx=True, ex=3600):
            os._exit(70)


def crash_marker(step: str, product_id: int) -> str:
    """Set (to the order id) when the injected crash after `step` fired for `product_id`."""
    return f"{keys.test_faults(f'{CRASH_AFTER_COMMIT}:{step}')}:fired:{product_id}"


def inject(step: str, product_id: int) -> None:
    """For tests: make `step` fail for orders of `product_id`."""
    redis_client().sadd(keys.test_faults(step), str(product_id))


def clear(step: str, product_id: int) -> None:
    """For tests: stop injecting `step` for `product_id`."""
    redis_client().srem(keys.test_faults(step), str(product_id))
