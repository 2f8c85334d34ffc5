"""Where the runtime's processes report what they are doing, and the /health report built from it.

Each Kafka poller (goodsdrop_local.kafka_poller) writes its figures every second, also while one
of its partitions is retrying a batch: records processed, retried and dead-lettered (by the
mapping's on-failure destination and by the function itself), and per partition the lag (records
not yet committed), what is buffered and whether it is retrying. `/health` shows them per poller
and summed per mapping (`mapping_rows`, which `make status` prints).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from goodsdrop.settings import settings
from goodsdrop_local.template import REPO_ROOT, App

STACK_DIR = Path(os.environ.get("GOODSDROP_STACK_DIR", REPO_ROOT / ".stack"))
RUNTIME_DIR = STACK_DIR / "runtime"
STALE_SECONDS = 15.0
POLLER_FIELDS = ("state", "processed", "retried", "dead_lettered", "dead_lettered_by_mapping",
                 "dead_lettered_by_function", "invocations", "errors", "environments", "environment_exits",
                 "partitions", "pid", "updated")


def write_status(kind: str, name: str, state: dict[str, Any]) -> None:
    """Record a runtime process's state (atomically) for /health."""
    directory = RUNTIME_DIR / kind
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps({**state, "pid": os.getpid(), "updated": time.time()}))
    tmp.replace(directory / f"{name}.json")


def read_status(kind: str, name: str) -> dict[str, Any] | None:
    path = RUNTIME_DIR / kind / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _check(fn: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        fn()
        return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as err:  # noqa: BLE001 - a health report names any failure
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}


def health_report(app: App) -> dict[str, Any]:
    """Each server, each Kafka poller and each container, with an overall verdict."""
    from goodsdrop.clients import mysql_cursor, redis_client

    def redis_ping() -> None:
        client = redis_client()
        if not settings.redis_cluster:
            client.ping()
            return
        # A cluster answers PING on one node even while slots go unserved: ask for its state.
        info = client.cluster_info()
        if info.get("cluster_state") != "ok":
            raise ConnectionError(f"the Redis Cluster is {info.get('cluster_state')}")

    def mysql_ping() -> None:
        with mysql_cursor() as cur:
            cur.execute("SELECT 1")

    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")

    def kafka_ping() -> None:
        if not _port_open(host, int(port)):
            raise ConnectionError(f"nothing listens on {settings.kafka_bootstrap}")

    servers = {
        "redis": _check(redis_ping),
        "mysql": _check(mysql_ping),
        "kafka": _check(kafka_ping),
    }
    if settings.aws_endpoint_url:
        aws_host, _, aws_port = settings.aws_endpoint_url.split("//")[-1].rpartition(":")

        def aws_ping() -> None:
            if not _port_open(aws_host, int(aws_port)):
                raise ConnectionError(f"nothing listens on {settings.aws_endpoint_url}")

        servers["aws"] = _check(aws_ping)
    now = time.time()
    pollers = {}
    for mapping in app.kafka:
        if not mapping.enabled:
            continue
        for index in range(mapping.pollers):
            name = f"{mapping.name}-{index}"
            state = read_status("pollers", name) or {}
            alive = bool(state) and now - state.get("updated", 0) < STALE_SECONDS
            pollers[name] = {"ok": alive, **{k: state.get(k) for k in POLLER_FIELDS}}
    containers = {c.logical_id: {"ok": _port_open("127.0.0.1", settings.stream_port)} for c in app.containers}
    healthy = all(v["ok"] for group in (servers, pollers, containers) for v in group.values())
    return {"healthy": healthy, "servers": servers, "pollers": pollers, "mappings": mapping_rows(app),
            "containers": containers}


def mapping_rows(app: App) -> list[dict[str, Any]]:
    """Per Kafka mapping, its pollers' figures summed: processed, retried, dead-lettered, lag per partition."""
    now = time.time()
    rows = []
    for mapping in app.kafka:
        if not mapping.enabled:
            continue
        states = [read_status("pollers", f"{mapping.name}-{i}") or {} for i in range(mapping.pollers)]
        partitions: dict[str, Any] = {}
        for state in states:
            partitions.update(state.get("partitions") or {})
        rows.append({
            "mapping": mapping.name,
            "up": all(s and now - s.get("updated", 0) < STALE_SECONDS for s in states),
            **{k: sum(int(s.get(k) or 0) for s in states) for k in ("processed", "retried", "dead_lettered")},
            "lag": {name: p.get("lag") for name, p in sorted(partitions.items())},
            "retrying": sorted(name for name, p in partitions.items() if p.get("retrying")),
        })
    return rows


def print_mappings(app: App) -> None:
    """The `make status` table of the Kafka mappings."""
    print(f"  {'mapping':<26} {'up':<3} {'processed':>9} {'retried':>7} {'dead':>5}  lag per partition")
    for row in mapping_rows(app):
        lag = " ".join(f"{name.rsplit('-', 1)[-1]}:{'?' if value is None else value}"
                       for name, value in row["lag"].items()) or "-"
        retrying = f"  (retrying: {', '.join(row['retrying'])})" if row["retrying"] else ""
        print(f"  {row['mapping']:<26} {'yes' if row['up'] else 'no':<3} {row['processed']:>9} {row['retried']:>7} "
              f"{row['dead_lettered']:>5}  {lag}{retrying}")
