"""Shared fixtures. Integration tests get the real stack (Redis, MariaDB, Kafka, moto, runtime)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS", "0.05")


@pytest.fixture(scope="session", autouse=True)
def single_slot_scripts():
    """Every Lua script the tests run (in this process) touches keys of one hash slot only.

    Redis Cluster refuses a script whose KEYS span slots (CROSSSLOT); this makes the single Redis
    of the test stack refuse it too, so a script that would break on the cluster fails here.
    """
    from redis.commands.core import Script
    from redis.crc import key_slot

    original = Script.__call__

    def checked(self, keys=None, args=None, client=None):
        slots = {key_slot(k.encode() if isinstance(k, str) else k) for k in keys or []}
        assert len(slots) <= 1, f"a script touches keys of {len(slots)} slots: {keys}"
        return original(self, keys or [], args or [], client)

    Script.__call__ = checked
    yield
    Script.__call__ = original


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
