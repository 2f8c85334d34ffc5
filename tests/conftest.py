"""Shared fixtures. Integration tests get the real stack (Redis, MariaDB, Kafka, moto, runtime)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS", "0.05")
# Every Lua script call (here and in the runtime the tests start) checks that its keys share one
# Redis Cluster slot, so a single-Redis run catches what a cluster would refuse (goodsdrop.scripts).
os.environ.setdefault("GOODSDROP_CHECK_SCRIPT_SLOTS", "1")


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
