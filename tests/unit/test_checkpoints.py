"""The layer's checkpoints are neutral: nothing happens at them unless a host registers an observer,
and the local runtime registers one only when GOODSDROP_CHECKPOINT_OBSERVER names it."""

from __future__ import annotations

import pytest

from goodsdrop import checkpoints
from goodsdrop.checkpoints import Moment
from goodsdrop.errors import DropError, StepFailed
from goodsdrop_local import execution

seen: list[tuple[str, Moment, list[int], str]] = []


def record(step: str, moment: Moment, product_ids: list[int], order_id: str) -> None:
    seen.append((step, moment, list(product_ids), order_id))


@pytest.fixture(autouse=True)
def no_observer(monkeypatch):
    monkeypatch.setattr(checkpoints, "_observer", None)
    monkeypatch.setattr(execution, "_installed_observer", None)
    seen.clear()


def test_without_an_observer_a_checkpoint_does_nothing():
    checkpoints.reached("payments", Moment.COMMITTED, [1, 2], "o1")
    assert seen == []


def test_an_observer_sees_every_checkpoint_and_what_it_raises_propagates():
    checkpoints.observe(record)
    checkpoints.reached("stock-persistence", Moment.START, [7], "o2")
    assert seen == [("stock-persistence", Moment.START, [7], "o2")]

    def fail(step: str, moment: Moment, product_ids: list[int], order_id: str) -> None:
        raise StepFailed("STOCK_PERSISTENCE_FAILED")

    checkpoints.observe(fail)
    with pytest.raises(StepFailed) as raised:
        checkpoints.reached("stock-persistence", Moment.WRITING, [7], "o2")
    assert raised.value.reason == "STOCK_PERSISTENCE_FAILED" and isinstance(raised.value, DropError)


def test_the_runtime_registers_the_observer_the_environment_names(monkeypatch):
    monkeypatch.delenv(execution.CHECKPOINT_OBSERVER_ENV, raising=False)
    execution.install_checkpoint_observer()
    assert checkpoints._observer is None
    monkeypatch.setenv(execution.CHECKPOINT_OBSERVER_ENV, f"{__name__}:record")
    execution.install_checkpoint_observer()
    checkpoints.reached("payments", Moment.COMMITTED, [3], "o3")
    assert seen == [("payments", Moment.COMMITTED, [3], "o3")]
