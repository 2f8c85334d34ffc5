"""The stack's commands: up, down, reset, status (``python -m goodsdrop_local.stack ...``).

Usage::

    python -m goodsdrop_local.stack up [--servers-only]
    python -m goodsdrop_local.stack down
    python -m goodsdrop_local.stack reset
    python -m goodsdrop_local.stack status [--servers-only]

`up` starts whatever is not running (idempotent), then bootstraps (topics, AWS resources, schema,
demo data) and starts the runtime. Ports come from :mod:`goodsdrop.settings` (all shifted together
by ``GOODSDROP_PORT_OFFSET``). Tests call :func:`ensure_up` (the same as ``up``) and :func:`is_healthy`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from goodsdrop.settings import settings
from goodsdrop_local import bootstrap
from goodsdrop_local.stack.kafka_server import KAFKA_LIBS, KafkaServer
from goodsdrop_local.stack.mariadb_server import MariaDBServer
from goodsdrop_local.stack.moto_server import MotoServer
from goodsdrop_local.stack.redis_server import (
    CLUSTER_NODES,
    CLUSTER_SLOTS,
    RedisServer,
    cluster_health,
    form_redis_cluster,
)
from goodsdrop_local.stack.runtime_server import LocalRuntime
from goodsdrop_local.stack.server import STACK_DIR, STACK_MARK, Server, StackError, stack_lock, stop_group, stray_pids
from goodsdrop_local.status import print_mappings
from goodsdrop_local.template import load

SINGLE_REDIS = RedisServer()
# Redis as configured: one server, or the three nodes of a cluster (GOODSDROP_REDIS_CLUSTER=1).
REDIS_SERVERS: tuple[Server, ...] = CLUSTER_NODES if settings.redis_cluster else (SINGLE_REDIS,)
OTHER_REDIS_SERVERS: tuple[Server, ...] = (SINGLE_REDIS,) if settings.redis_cluster else CLUSTER_NODES
SERVERS: tuple[Server, ...] = (*REDIS_SERVERS, MariaDBServer(), KafkaServer(), MotoServer())
RUNTIME = LocalRuntime()
ALL: tuple[Server, ...] = (*SERVERS, RUNTIME)
# What `down` stops: whichever Redis kind this stack directory ran, whatever is configured now.
EVERY_SERVER: tuple[Server, ...] = (*OTHER_REDIS_SERVERS, *ALL)


# --------------------------------------------------------------------------- commands


def _row(server: Server, state: str) -> str:
    pid = server.running_pid()
    return f"  {server.name:<8} {pid or '-':>8}  {server.address:<44} {state}"


def _refuse_other_redis_kind() -> None:
    """Stop `up` from starting one Redis kind while this stack directory runs the other."""
    running = [server.name for server in OTHER_REDIS_SERVERS if server.running_pid() is not None]
    if running:
        now, wanted = ("one Redis", "a Redis Cluster") if settings.redis_cluster else ("a Redis Cluster", "one Redis")
        raise StackError(f"this stack runs {now} ({', '.join(running)}) but {wanted} is configured "
                         f"(GOODSDROP_REDIS_CLUSTER); run `make down` first")


def ensure_up(servers_only: bool = False) -> None:
    """Start whatever is not running (idempotent), bootstrap, start the runtime; print a table."""
    with stack_lock():
        STACK_MARK.touch()
        _refuse_other_redis_kind()
        print(f"GoodsDrop stack in {STACK_DIR}")
        print(f"  {'server':<8} {'pid':>8}  {'address':<44} state")
        for server in SERVERS:
            print(_row(server, server.start()), flush=True)
            if server is CLUSTER_NODES[-1]:  # every node runs: join them (once) and wait for all slots
                print(f"  {'cluster':<8} {'':>8}  {f'{len(CLUSTER_NODES)} masters, {CLUSTER_SLOTS} slots':<44} "
                      f"{form_redis_cluster()}", flush=True)
        if servers_only:
            return
        t0 = time.monotonic()
        bootstrap.run()
        print(f"  {'bootstrap':<18}{'':<44} done in {time.monotonic() - t0:.1f} s", flush=True)
        print(_row(RUNTIME, RUNTIME.start()), flush=True)


def stop_all() -> None:
    """Stop the runtime and every server (reverse order), then any straggler; idempotent."""
    with stack_lock():
        for server in reversed(EVERY_SERVER):
            if server.stop():
                print(f"  stopped {server.name}")
        strays = stray_pids()
        for pid in strays:
            stop_group(pid, grace=5.0)
        if strays:
            print(f"  stopped {len(strays)} straggler process(es): {strays}")
        left = stray_pids()
        if left:
            raise StackError(f"processes still running after down: {left}")


def reset() -> None:
    """Stop everything and delete all state except the downloaded Kafka jars."""
    stop_all()
    if not STACK_DIR.exists():
        return
    if not STACK_MARK.exists():
        raise StackError(f"{STACK_DIR} has no {STACK_MARK.name}; not deleting a directory I did not make")
    keep = {KAFKA_LIBS, STACK_MARK, STACK_DIR / "stack.lock"}
    for path in [*STACK_DIR.iterdir(), *(STACK_DIR / "kafka").glob("*")]:
        if path in keep or path == STACK_DIR / "kafka" or not path.exists():
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    MariaDBServer().socket_path.unlink(missing_ok=True)
    print(f"  reset {STACK_DIR} (kept {KAFKA_LIBS.relative_to(STACK_DIR)})")


def is_healthy(servers_only: bool = False) -> bool:
    """Whether every server (and, unless servers_only, the runtime) runs and answers; a cluster serves every slot."""
    servers_up = all(server.is_up() for server in (SERVERS if servers_only else ALL))
    return servers_up and (not settings.redis_cluster or cluster_health() == "ok")


def status(servers_only: bool = False) -> bool:
    """Print pid, port and health of each server (each cluster node and the cluster); True when all are healthy."""
    ok = True
    print(f"  {'server':<8} {'pid':>8}  {'ports':<12} healthy")
    for server in SERVERS if servers_only else ALL:
        up = server.is_up()
        ok = ok and up
        ports = ",".join(str(p) for p in server.ports)
        print(f"  {server.name:<8} {server.running_pid() or '-':>8}  {ports:<12} {'yes' if up else 'no'}")
        if server is CLUSTER_NODES[-1]:
            health = cluster_health()
            ok = ok and health == "ok"
            print(f"  {'cluster':<8} {'':>8}  {'':<12} {'yes' if health == 'ok' else 'no: ' + health}")
    for server in OTHER_REDIS_SERVERS:  # left running from a start in the other Redis mode
        if server.running_pid() is not None:
            ok = False
            print(f"  {server.name:<8} {server.running_pid():>8}  {'':<12} running, but GOODSDROP_REDIS_CLUSTER "
                  "says otherwise")
    if not servers_only and RUNTIME.is_up():  # the Kafka mappings: processed, retried, dead-lettered, lag
        print_mappings(load())
    return ok


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m goodsdrop_local.stack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack (idempotent) and wait until healthy")
    up.add_argument("--servers-only", action="store_true", help="stop after the four servers")
    commands.add_parser("down", help="stop everything")
    commands.add_parser("reset", help="down, then delete all state (keeps the Kafka jars)")
    st = commands.add_parser("status", help="exit 0 only when everything is healthy")
    st.add_argument("--servers-only", action="store_true", help="ignore the runtime")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            ensure_up(servers_only=args.servers_only)
        elif args.command == "down":
            stop_all()
        elif args.command == "reset":
            reset()
        elif args.command == "status":
            return 0 if status(servers_only=args.servers_only) else 1
    except StackError as error:
        print(f"stack {args.command}: {error}", file=sys.stderr)
        return 1
    return 0
