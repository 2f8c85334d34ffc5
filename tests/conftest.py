"""Shared fixtures. Integration tests get the real stack (Redis, MariaDB, Kafka, moto, runtime)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS", "0.05")
# The stack the tests start runs with these (the tests' own process reads the same settings):
# every test client connects from 127.0.0.1, one address for the whole suite, so its per-IP
# order bucket is wide (the per-member bucket keeps the product's defaults); a waiting room
# admits only its first ticket, so positions seen over HTTP never move while a test runs
# (tests/integ/test_admission.py drives admission over time through the scripts' clock).
os.environ.setdefault("GOODSDROP_ORDER_RATE_PER_IP", "1000")
os.environ.setdefault("GOODSDROP_ORDER_BURST_PER_IP", "10000")
os.environ.setdefault("GOODSDROP_WAITING_ROOM_INITIAL_BATCH", "1")
os.environ.setdefault("GOODSDROP_WAITING_ROOM_ADMIT_RATE", "0")


@pytest.fixture(scope="session")
def stack():
    """The whole local stack, brought up if it is not (and left running for the next run)."""
    from goodsdrop_local import stack as local_stack

    local_stack.ensure_up()
    return local_stack


@pytest.fixture(scope="session")
def servers():
    """Only the servers (Redis, MariaDB, Kafka, moto), with topics, schema and demo data."""
    from goodsdrop_local import bootstrap
    from goodsdrop_local import stack as local_stack

    local_stack.ensure_up(servers_only=True)
    bootstrap.run()
    return local_stack
