"""Bounded waiting for things that happen asynchronously (Kafka consumers, streams)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], seconds: float = 10.0) -> Any:
    """Poll until `predicate()` is truthy (bounded); returns its last value."""
    deadline = time.monotonic() + seconds
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(0.05)
        value = predicate()
    return value
