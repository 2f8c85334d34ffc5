"""Redis for the local stack: one server, or a three-master Redis Cluster and its formation.

With ``GOODSDROP_REDIS_CLUSTER=1`` (``make up CLUSTER=1``) Redis is a three-master Redis Cluster
instead of one server: nodes ``redis-1``..``redis-3`` on the Redis port and the two after it, each
with its own directory under ``redis-cluster/``. The first ``up`` forms the cluster; later ones
find it formed (each node keeps its ``nodes.conf``) and only wait until every slot is served.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from goodsdrop.settings import settings
from goodsdrop_local.stack.server import HOST, LOG_DIR, STACK_DIR, Server, StackError, run_logged, which

CLUSTER_BUS_PORT_SHIFT = 10000  # Redis's fixed offset of the cluster bus port
CLUSTER_SLOTS = 16384
CLUSTER_FORM_TIMEOUT = 30.0
# Every Redis of the stack: an append-only file (fsync every second), no RDB snapshots, in the
# foreground, its full command line (and so the stack dir) visible.
SERVER_FLAGS = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no",
                "--daemonize", "no", "--set-proc-title", "no")


def _answers_ping(port: int) -> bool:
    client = redis.Redis(host=HOST, port=port, socket_timeout=2)
    try:
        return bool(client.ping())
    finally:
        client.close()


class RedisServer(Server):
    """Redis with an append-only file (fsync every second) and no RDB snapshots."""

    name = "redis"
    marker = "redis-server"
    start_timeout = 20.0
    data_dir = STACK_DIR / "redis"

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.redis_port,)

    @property
    def address(self) -> str:
        return f"redis://{HOST}:{settings.redis_port}/0"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            which("redis-server"),
            "--port", str(settings.redis_port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            *SERVER_FLAGS,
        ]  # fmt: skip

    def healthy(self) -> bool:
        return _answers_ping(settings.redis_port)


class RedisClusterNode(Server):
    """One master of the local Redis Cluster: cluster mode on, its own directory and nodes.conf.

    Node i listens on the Redis port + i (and, as every cluster node, on that port + 10000 for
    the cluster bus), so GOODSDROP_PORT_OFFSET keeps stacks apart here too, and REDIS_URL's
    default (the Redis port) names the first node.
    """

    marker = "redis-server"
    start_timeout = 20.0

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"redis-{index + 1}"
        self.data_dir = STACK_DIR / "redis-cluster" / self.name

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def port(self) -> int:
        return settings.redis_port + self.index

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.port + CLUSTER_BUS_PORT_SHIFT)

    @property
    def address(self) -> str:
        return f"redis://{HOST}:{self.port} (cluster)"

    def command(self) -> list[str]:
        return [
            which("redis-server"),
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",  # the node's view of the cluster, kept across restarts
            "--cluster-node-timeout", "5000",
            *SERVER_FLAGS,
        ]  # fmt: skip

    def healthy(self) -> bool:
        return _answers_ping(self.port)

    def cluster_info(self) -> dict[str, str]:
        """This node's CLUSTER INFO (cluster_state, cluster_slots_ok, cluster_known_nodes, ...)."""
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=2, decode_responses=True)
        try:
            info: dict[str, Any] = client.cluster("INFO")  # type: ignore[assignment]  # redis-py: sync|async union
            return {key: str(value) for key, value in info.items()}
        finally:
            client.close()


CLUSTER_NODES = tuple(RedisClusterNode(index) for index in range(3))


def _cluster_formed(info: dict[str, str]) -> bool:
    """Whether a node sees the whole cluster: state ok, every slot served, every node known."""
    return (info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == str(CLUSTER_SLOTS)
            and info.get("cluster_known_nodes") == str(len(CLUSTER_NODES)))


def cluster_health() -> str:
    """'ok' when every node sees the whole cluster, else what the first node that does not says."""
    for node in CLUSTER_NODES:
        try:
            info = node.cluster_info()
        except Exception as err:  # noqa: BLE001 - any failure to answer is reported as such
            return f"{node.name}: {type(err).__name__}"
        if not _cluster_formed(info):
            return (f"{node.name}: state {info.get('cluster_state')}, {info.get('cluster_slots_ok')} slots ok, "
                    f"{info.get('cluster_known_nodes')} nodes known")
    return "ok"


def form_redis_cluster() -> str:
    """Join the running nodes into one cluster unless they already form one; wait until it serves every slot.

    `redis-cli --cluster create` runs only when no node has a slot yet (a fresh stack); a restarted
    stack reloads each node's nodes.conf and re-forms by itself. Returns a word on what happened.
    """
    t0 = time.monotonic()
    infos = [node.cluster_info() for node in CLUSTER_NODES]
    if all(_cluster_formed(info) for info in infos):
        return "already formed"
    fresh = all(info.get("cluster_slots_assigned") == "0" and info.get("cluster_known_nodes") == "1"
                for info in infos)
    what = "re-formed"
    if fresh:
        run_logged(
            [which("redis-cli"), "--cluster", "create", *(f"{HOST}:{node.port}" for node in CLUSTER_NODES),
             "--cluster-replicas", "0", "--cluster-yes"],
            LOG_DIR / "redis-cluster.log",
            "redis-cli --cluster create",
        )
        what = "formed"
    deadline = t0 + CLUSTER_FORM_TIMEOUT
    while (health := cluster_health()) != "ok":
        if time.monotonic() > deadline:
            raise StackError(
                f"the Redis Cluster did not become ready within {CLUSTER_FORM_TIMEOUT:.0f} s ({health}); "
                f"see {LOG_DIR / 'redis-cluster.log'} and the node logs; `make reset` starts it afresh"
            )
        time.sleep(0.2)
    return f"{what} in {time.monotonic() - t0:.1f} s"

