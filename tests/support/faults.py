"""Fault injection for the order saga's tests and chaos drills, through the layer's checkpoints.

The local runtime registers `observe` at `goodsdrop.checkpoints` when the environment variable
`GOODSDROP_CHECKPOINT_OBSERVER` is `tests.support.faults:observe` (tests/conftest.py sets it for the
stack the tests start; `bench.chaos` restarts the runtime with it). A test then marks a product id
in the Redis set `fault_key(step)`, and every saga step named `step` misbehaves for orders
containing that product:

- `order-persistence`, `stock-persistence`: the step fails permanently (`StepFailed` at its
  `WRITING` checkpoint), so the saga compensates (refund, release, order FAILED).
- `unavailable:<step>`: the step raises a transient error at its start every time (as if MySQL
  were down), so the event-source mapping retries it and then dead-letters it.
- `reject:<step>`: the step refuses the record for good at its start (a permanent failure with
  reason INJECTED_REJECTION), so the consumer dead-letters it; clearing the fault is "the fix"
  before a replay from the dead-letter topic.
- `fail-commit:<step>`: the step's transaction fails at its commit, after everything in it was
  written (its events included), as if MySQL went away at that moment.
- `crash-after-commit:<step>`: the step's process dies (`os._exit`) right after its transaction
  committed and before it published its outcome, once per product - a consumer crash mid-batch
  (the event-source mapping redelivers the uncommitted batch), or an API process dying between a
  cancel's commit and its publish (`give-back`: the outbox sweep publishes).
- `lost-ack:place-order`: the broker wrote OrderRequested but its acknowledgement comes too late
  for the hot path (a timeout), and only once the payment step has recorded the order.

Honoured only against the local stack (`settings.aws_target` is `moto` or `localstack`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import pymysql

from goodsdrop import keys
from goodsdrop.checkpoints import Moment
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.errors import StepFailed, ValidationError
from goodsdrop.settings import settings

OBSERVER_ENV = "GOODSDROP_CHECKPOINT_OBSERVER"
OBSERVER = "tests.support.faults:observe"

ORDER_PERSISTENCE = "order-persistence"
STOCK_PERSISTENCE = "stock-persistence"
CRASH_AFTER_COMMIT = "crash-after-commit"
UNAVAILABLE = "unavailable"
REJECT = "reject"
FAIL_COMMIT = "fail-commit"
LOST_ACK = "lost-ack"


class SimulatedOutage(ConnectionError):
    """A transient failure injected by a test (a connection error): the step should be retried."""


def fault_key(fault: str) -> str:
    """The Redis set of product ids whose orders get `fault` (a step name, or `<kind>:<step>`)."""
    return f"{keys.PREFIX}:test-faults:{fault}"


def crash_marker(step: str, product_id: int) -> str:
    """Set (to the order id) when the injected crash after `step` fired for `product_id`."""
    return f"{fault_key(f'{CRASH_AFTER_COMMIT}:{step}')}:fired:{product_id}"


def inject(fault: str, product_id: int) -> None:
    """Make `fault` happen to orders of `product_id`."""
    redis_client().sadd(fault_key(fault), str(product_id))


def clear(fault: str, product_id: int) -> None:
    """Stop injecting `fault` for `product_id`."""
    redis_client().srem(fault_key(fault), str(product_id))


def _marked(fault: str, product_ids: Sequence[int]) -> list[bool]:
    return [bool(flag) for flag in redis_client().smismember(fault_key(fault), [str(p) for p in product_ids])]


def observe(step: str, moment: Moment, product_ids: Sequence[int], order_id: str) -> None:
    """The checkpoint observer: do to this step what the tests marked for these products."""
    if settings.aws_target not in ("moto", "localstack") or not product_ids:
        return
    if moment is Moment.START:
        if any(_marked(f"{UNAVAILABLE}:{step}", product_ids)):
            raise SimulatedOutage(f"{step} is unavailable (injected by a test)")
        if any(_marked(f"{REJECT}:{step}", product_ids)):
            raise ValidationError(f"{step} rejected the record (injected by a test)", code="INJECTED_REJECTION")
    elif moment is Moment.WRITING:
        if any(_marked(step, product_ids)):
            raise StepFailed(f"{step.upper().replace('-', '_')}_FAILED")
    elif moment is Moment.BEFORE_COMMIT:
        if any(_marked(f"{FAIL_COMMIT}:{step}", product_ids)):
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during COMMIT (injected)")
    elif moment is Moment.COMMITTED:
        if any(_marked(f"{LOST_ACK}:{step}", product_ids)):
            _wait_until_recorded(order_id)
            raise TimeoutError(f"{step}: the acknowledgement came too late (injected by a test)")
        r = redis_client()
        for product_id, flagged in zip(product_ids, _marked(f"{CRASH_AFTER_COMMIT}:{step}", product_ids), strict=True):
            if flagged and r.set(crash_marker(step, product_id), order_id, nx=True, ex=3600):
                os._exit(70)


def _wait_until_recorded(order_id: str, seconds: float = 30.0) -> None:
    """Wait (bounded) until the payment step has written the order's ledger row."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with mysql_cursor() as cur:
            if cur.execute("SELECT 1 FROM reservations WHERE order_id = %s", (order_id,)):
                return
        time.sleep(0.05)
    raise AssertionError(f"the payment step never recorded {order_id}")
