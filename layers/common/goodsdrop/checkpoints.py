"""Checkpoints: named moments of the saga's steps at which an observer, when one is registered, may act.

A step announces `reached(step, moment, product_ids, order_id)`:

- `Moment.START`: before the step reads or writes anything;
- `Moment.WRITING`: inside the step's transaction, before its writes (an exception here is the
  step's own failure: `errors.StepFailed` compensates, like data MySQL refuses);
- `Moment.BEFORE_COMMIT`: inside the step's transaction, after its writes, just before the commit;
- `Moment.COMMITTED`: after the commit, before the step publishes or returns its outcome.

The product registers no observer, so a checkpoint costs one comparison. A host may register one
with `observe(fn)`; the local runtime does so only when `GOODSDROP_CHECKPOINT_OBSERVER` names one as
`module:function` (the tests set it to inject faults: tests/support/faults.py). Whatever the observer
raises propagates from the checkpoint as the step's own error would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum


class Moment(StrEnum):
    """Where in a step a checkpoint stands."""

    START = "start"
    WRITING = "writing"
    BEFORE_COMMIT = "before-commit"
    COMMITTED = "committed"


Observer = Callable[[str, Moment, Sequence[int], str], None]

_observer: Observer | None = None


def observe(observer: Observer | None) -> None:
    """Register `observer(step, moment, product_ids, order_id)` for every checkpoint (None: remove it)."""
    global _observer
    _observer = observer


def reached(step: str, moment: Moment, product_ids: Sequence[int], order_id: str = "") -> None:
    """Announce that `step` reached `moment` for an order of these products."""
    if _observer is not None:
        _observer(step, moment, product_ids, order_id)
