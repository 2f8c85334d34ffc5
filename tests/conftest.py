"""Shared fixtures. Integration tests get the real stack (Redis, MariaDB, Kafka, moto, runtime)."""

from __future__ import annotations

import os

import httpx
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

# The signing keys are fetched again every 2 s (60 s by default), so the key-rotation test sees a
# rotated-out key refused without waiting a minute.
os.environ.setdefault("GOODSDROP_JWT_KEY_REFRESH_SECONDS", "2")

# The runtime the tests start lets the tests inject faults into the saga's steps: it registers
# tests/support/faults.py at the layer's checkpoints (goodsdrop.checkpoints); nothing else does.
os.environ.setdefault("GOODSDROP_CHECKPOINT_OBSERVER", "tests.support.faults:observe")

# Every Lua script call (here and in the runtime the tests start) checks that its keys share one
# Redis Cluster slot, so a single-Redis run catches what a cluster would refuse (goodsdrop.scripts).
os.environ.setdefault("GOODSDROP_CHECK_SCRIPT_SLOTS", "1")

# What CI also runs on a Redis Cluster (`make test CLUSTER=1 PYTEST_ARGS="-m cluster"`): the tests
# of everything that keeps state in Redis - the drop (exact sell-out, limits), stock reservation,
# the cart, the token deny-lists and login throttles, the stock cache, products taken off sale (their
# shards closed) - and the cluster itself.
CLUSTER_SUITE = (
    "tests/integ/test_stack.py",
    "tests/integ/test_redis_cluster.py",
    "tests/integ/test_auth_security.py",
    "tests/integ/test_member_life.py",
    "tests/integ/test_cart.py",
    "tests/integ/test_catalogue_stock_cache.py",
    "tests/integ/test_stock_reservation.py",
    "tests/integ/test_order_concurrency.py",
    "tests/integ/test_admission.py",
    "tests/integ/test_sharded_stock.py",
    "tests/integ/test_hostile_users.py",
    "tests/integ/test_product_listing.py",
)



def pytest_collection_modifyitems(config, items):
    """Mark the tests of CLUSTER_SUITE `cluster`; deselect `cluster_only` ones unless on a Redis Cluster.

    Deselected rather than skipped: a run says what it ran, and no skip reads as a pass."""
    from goodsdrop.settings import settings

    root = config.rootpath
    kept, dropped = [], []
    for item in items:
        path = item.path.relative_to(root).as_posix()
        if path in CLUSTER_SUITE:
            item.add_marker(pytest.mark.cluster)
        (dropped if item.get_closest_marker("cluster_only") and not settings.redis_cluster else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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


@pytest.fixture(scope="module")
def client(stack):
    """An HTTP client for the running stack's API (tests give whole URLs: tests.support.orders.API).

    Modules that need another kind (a base URL, a fresh source address, throttles reset after) define
    their own `client`."""
    with httpx.Client(timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def seller(stack):
    """A verified seller of the module's own (tests.support.accounts.new_account)."""
    from tests.support.accounts import new_account

    return new_account(seller=True)


@pytest.fixture
def fault():
    """`fault(kind, product_id)` injects a fault (tests/support/faults.py) for the rest of one test."""
    from tests.support import faults

    injected: list[tuple[str, int]] = []

    def inject(kind: str, product_id: int) -> None:
        faults.inject(kind, product_id)
        injected.append((kind, product_id))

    yield inject
    for kind, product_id in injected:
        faults.clear(kind, product_id)
