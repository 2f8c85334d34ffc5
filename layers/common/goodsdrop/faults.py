"""Test-only fault injection for the order saga (clearly not a product feature).

A test marks a product id in the Redis set `keys.test_faults(step)`; every saga step named
`step` then misbehaves for orders containing that product:

- `order-persistence`, `stock-persistence`: the step fails permanently (`StepFailed`), so the saga
  compensates (refund, release, order FAILED).
- `crash-after-commit:<step>`: the step's process dies (`os._exit`) right after its MySQL
  transaction committed and before it published its outcome, the first time only — a consumer
  crash mid-batch; the event-source mapping redelivers the uncommitted batch.

Honoured only against the local stack (`settings.aws_target` is `moto` or `localstack`), never on
AWS, so a stray key in production changes nothing. Nothing outside tests writes these keys.
"""

from __future__ import annotations

import os

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.settings import settings

ORDER_PERSISTENCE = "order-persistence"
STOCK_PERSISTENCE = "stock-persistence"
CRASH_AFTER_COMMIT = "crash-after-commit"


class StepFailed(Exception):
    """A saga step failed for good (not worth retrying): the saga compensates."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def crash_if_injected(step: str, product_ids: list[int], order_id: str) -> None:
    """Kill this process once per order when a test injected a crash after `step` committed."""
    name = f"{CRASH_AFTER_COMMIT}:{step}"
    if injected(name, product_ids) and redis_client().set(f"{keys.test_faults(name)}:{order_id}", "1", nx=True,
                                                          ex=3600):
        os._exit(70)


def inject(step: str, product_id: int) -> None:
    """For tests: make `step` fail for orders of `product_id`."""
    redis_client().sadd(keys.test_faults(step), str(product_id))


def clear(step: str, product_id: int) -> None:
    """For tests: stop injecting `step` for `product_id`."""
    redis_client().srem(keys.test_faults(step), str(product_id))
