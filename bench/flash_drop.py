"""The flash-drop benchmark: `make bench` (= `python -m bench.flash_drop`), `make bench ARGS=--quick`.

The seed's experiment (500 JMeter threads x 10 first-come orders) reproduced on this machine, in
parts (`--only` / `--skip` pick them; `make bench` runs all, each shown as a phase of the
progress bar on stderr):

- `drops`: through the real HTTP path (local API Gateway runtime -> authorizer -> PlaceOrder ->
  reservation), once per stock strategy of the product (`GOODSDROP_STOCK_STRATEGY`: `lua`,
  `mysql_lock`, `redis_lock`; the runtime is restarted with it, and with the per-IP order bucket
  off: every client of the benchmark connects from this one machine);
- `curve`: the Lua path's load curve, one drop per point at 50, 100, 200, 500 and 1,000 clients;
- `core`: the strategies at the reservation core, 500 workers calling the domain's reservation
  directly (bench.core_strategies);
- `ceiling`: the reservation script without HTTP against redis-benchmark running it (bench.core);
- `catalogue`: the cached GET /products/{id} at 100 connections; `sse`: the SSE fan-out.

For every drop: a fresh product (stock N, a per-member limit, sales opening a few seconds ahead;
a probe before the opening must be refused NOT_ON_SALE), C buyers' clients x R requests, every
request by a different verified buyer with its own Idempotency-Key; throughput, latency
percentiles, answers by status and error code, units sold against the stock (any oversell fails
the run with exit code 3), the saga's reserve -> CONFIRMED latency of the accepted orders, and the
CPU each part of the stack and the load generator used.

Writes bench/results/flash_drop.{md,json} and its plots (`--quick`: flash_drop_quick.*; `--only
curve`: flash_drop_curve.*). The stack is started if it is not running and is left running, with
the settings it had. Everything the run made (buyers, seller, drops, orders, Redis keys) is
removed at the end, and the demo data is compared with what it was before (bench.drop_fixtures).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import core_strategies, dashboard_check, drop_fixtures, loadgen
from bench.core import CoreResult, redis_benchmark, reservation_core
from bench.drop_fixtures import BenchRun
from bench.loadgen import Phases
from bench.plots import Bars, Curve, CurvePanel, bar_chart, curve_chart
from bench.procs import StackCpu, cpu_detail, delta, per_request
from bench.reporting import RESULTS, ensure_stack, say, write_results
from goodsdrop.reservations import STRATEGIES
from goodsdrop.settings import settings

FINAL_STATUSES = ("CONFIRMED", "FAILED", "EXPIRED", "CANCELLED")
SEED = {  # the seed's JMeter figures (../shared/seed-summary.md): req/s, average latency in ms
    "lua": (318.5, 1090.0), "mysql_lock": (106.1, 4074.0), "redis_lock": (73.8, 2531.0),
}
LABELS = {"lua": "Lua reservation", "mysql_lock": "MySQL row lock", "redis_lock": "Redis distributed lock"}


class OversoldError(RuntimeError):
    """More units were sold or reserved than the drop had."""


def api() -> str:
    return f"http://127.0.0.1:{settings.api_port}"


# ---------------------------------------------------------------------------- the machine and the stack


def _version(cmd: list[str], pattern: str = r"[\d.]+\d") -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(0) if match else "?"


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine_facts() -> dict[str, Any]:
    """Cores, CPU, memory, OS and the versions of everything measured."""
    import pymysql
    import redis
    import uvicorn

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    mem = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    os_name = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()) \
        if Path("/etc/os-release").exists() else None
    r = redis.Redis.from_url(settings.redis_url)
    with pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user=settings.mysql_user,
                         password=settings.mysql_password) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        mariadb = cur.fetchone()[0]
    from goodsdrop_local import stack

    kafka = sorted(p.name for p in stack.KAFKA_LIBS.glob("kafka-server-[0-9]*.jar"))
    return {
        "cores": os.cpu_count(), "cpu": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "os": os_name.group(1) if os_name else platform.platform(), "kernel": platform.release(),
        "python": platform.python_version(), "redis": r.info("server")["redis_version"], "mariadb": mariadb,
        "kafka": kafka[0].removeprefix("kafka-server-").removesuffix(".jar") if kafka else "?",
        "uvicorn": uvicorn.__version__,
        "wrk": _version(["wrk", "-v"], r"wrk\s+\S+"), "redis-benchmark": _version(["redis-benchmark", "--version"]),
    }


def runtime_env(name: str) -> str | None:
    """An environment variable of the running runtime (None: not set or no runtime)."""
    from goodsdrop_local import stack

    pid = stack.RUNTIME.running_pid()
    if pid is None:
        return None
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    prefix = f"{name}=".encode()
    for entry in environ:
        if entry.startswith(prefix):
            return entry.removeprefix(prefix).decode()
    return None


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# Every client of the benchmark connects from this machine: one source IP for 500 buyers, which the
# product's per-IP order bucket (goodsdrop.admission) would rightly throttle. The runtime runs the
# drops with that bucket off (0); the per-member bucket stays on (each order is another buyer's).
IP_RATE_ENV, BENCH_IP_RATE = "GOODSDROP_ORDER_RATE_PER_IP", "0"


def restart_runtime(strategy: str | None, workers: str | None, ip_rate: str | None = BENCH_IP_RATE) -> float:
    """Restart the runtime alone with GOODSDROP_STOCK_STRATEGY / GOODSDROP_API_WORKERS /
    GOODSDROP_ORDER_RATE_PER_IP (None: unset); seconds."""
    from goodsdrop_local import stack

    started = time.monotonic()
    _set_env("GOODSDROP_STOCK_STRATEGY", strategy)
    _set_env("GOODSDROP_API_WORKERS", workers)
    _set_env(IP_RATE_ENV, ip_rate)
    with stack.stack_lock():  # the same lock `make up` / `make down` take
        stack.RUNTIME.stop()
        stack.RUNTIME.start()
    return time.monotonic() - started


def use_strategy(strategy: str, workers: str | None) -> None:
    """Make sure the runtime runs `strategy` (and `workers` API workers when given): restart it if not."""
    current_workers = runtime_env("GOODSDROP_API_WORKERS")
    wanted_workers = workers if workers is not None else current_workers
    if ((runtime_env("GOODSDROP_STOCK_STRATEGY") or "lua") == strategy and current_workers == wanted_workers
            and runtime_env(IP_RATE_ENV) == BENCH_IP_RATE):
        return
    say(f"Restarting the runtime with GOODSDROP_STOCK_STRATEGY={strategy}"
        f"{f' GOODSDROP_API_WORKERS={wanted_workers}' if wanted_workers else ''} {IP_RATE_ENV}={BENCH_IP_RATE} ...")
    say(f"  runtime up again in {restart_runtime(strategy, wanted_workers):.1f} s")


# ---------------------------------------------------------------------------- one drop


def _mysql() -> Any:
    from goodsdrop.clients import mysql_cursor

    return mysql_cursor()


def saga_state(product_id: int) -> dict[str, int]:
    """Orders of one product per status (MySQL: the saga persisted them)."""
    with _mysql() as cur:
        cur.execute("SELECT o.status, COUNT(*) AS n FROM reservation_lines rl JOIN orders o ON o.id = rl.order_id "
                    "WHERE rl.product_id = %s GROUP BY o.status", (product_id,))
        return {row["status"]: int(row["n"]) for row in cur.fetchall()}


def wait_saga(product_id: int, accepted: int, timeout_s: float, label: str) -> dict[str, Any]:
    """Wait (bounded) until every accepted order has left PENDING; the reserve -> CONFIRMED latencies."""
    bar = loadgen.Progress(label, accepted)
    deadline = time.monotonic() + timeout_s
    while True:
        state = saga_state(product_id)
        final = sum(state.get(s, 0) for s in FINAL_STATUSES)
        bar.update(final)
        if final >= accepted or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    bar.finish("settled" if final >= accepted else "TIMED OUT")
    with _mysql() as cur:
        cur.execute("SELECT TIMESTAMPDIFF(MICROSECOND, r.reserved_at, o.confirmed_at) / 1000 AS ms, "
                    "r.reserved_at, o.confirmed_at FROM reservation_lines rl "
                    "JOIN reservations r ON r.order_id = rl.order_id JOIN orders o ON o.id = rl.order_id "
                    "WHERE rl.product_id = %s AND o.status = 'CONFIRMED' ORDER BY ms", (product_id,))
        rows = cur.fetchall()
    latencies = [float(row["ms"]) for row in rows]
    result: dict[str, Any] = {"orders": state, "settled": final >= accepted, "confirmed": len(latencies)}
    if latencies:
        result |= {"p50_ms": _pct(latencies, 50), "p90_ms": _pct(latencies, 90), "p99_ms": _pct(latencies, 99),
                   "max_ms": round(latencies[-1], 1),
                   "drain_s": round((max(r["confirmed_at"] for r in rows) -
                                     min(r["reserved_at"] for r in rows)).total_seconds(), 2)}
    return result


def _pct(sorted_values: list[float], p: float) -> float:
    return round(sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))], 1)


def audit_stock(product_id: int, stock: int, accepted: int) -> dict[str, Any]:
    """Units sold and held against the stock, in Redis and MySQL; `oversold` must be 0."""
    from goodsdrop import keys
    from goodsdrop.clients import redis_client
    from goodsdrop.products import shard_count

    r = redis_client()
    shards = range(shard_count(product_id))
    available = sum(int(r.hget(keys.stock(product_id, shard), "available") or 0) for shard in shards)
    reserved = sum(int(r.hget(keys.stock(product_id, shard), "reserved") or 0) for shard in shards)
    holds = sum(r.hlen(keys.stock_holds(product_id, shard)) for shard in shards)
    with _mysql() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (product_id,))
        left = int(cur.fetchone()["count"])
        cur.execute("SELECT COALESCE(SUM(op.count), 0) AS units FROM order_products op "
                    "JOIN orders o ON o.id = op.order_id WHERE op.product_id = %s AND o.status = 'CONFIRMED'",
                    (product_id,))
        sold = int(cur.fetchone()["units"])
    # (MySQL's count is unsigned and only ever decremented with a "count >= units" guard: it cannot go below 0.)
    oversold = max(0, accepted - stock, sold - stock, reserved + sold - stock, -available)
    consistent = (stock - left == sold) and (available + reserved + sold == stock) and holds == reserved
    return {"stock": stock, "accepted": accepted, "sold": sold, "held": reserved, "available": available,
            "mysql_left": left, "oversold": oversold, "consistent": consistent}


def _post_order(client: httpx.Client, token: str, product_id: int) -> httpx.Response:
    return client.post(f"{api()}/orders", json={"items": [{"productId": str(product_id), "quantity": 1}],
                                                 "paymentToken": "tok_ok"},
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})


def warm_up(run: BenchRun, buyers: list[int], workdir: Path, strategy: str, connections: int, units: int) -> None:
    """A small drop sold out through the same path, so that every API worker has its clients (Kafka, MySQL)
    connected and the saga's consumers are running before the measured drop."""
    drop = run.new_drop(f"[bench] warm-up {strategy}", units, opens_in=timedelta(seconds=-2), per_member_limit=None)
    tokens = workdir / "warm-tokens.txt"
    drop_fixtures.write_tokens(buyers[:connections * 3], tokens)
    httpx.get(f"{api()}/products/{drop.product_id}/stock", timeout=10)
    result = loadgen.fire_orders(api(), tokens, drop.product_id, f"w{uuid.uuid4().hex[:8]}", connections=connections,
                                 per_connection=3, label=f"warm-up ({strategy})")
    wait_saga(drop.product_id, result.counts.get("202", 0), 60, "warm-up saga")


def run_drop(strategy: str, clients: int, requests: int, args: argparse.Namespace, run: BenchRun, buyers: list[int],
             workdir: Path, *, warm: bool = True, time_in_process: bool = False) -> dict[str, Any]:
    """One measured drop through the HTTP path with `strategy`, `clients` x `requests`; its table row.
    `time_in_process`: the Lua drop also times the same path in-process (`in_process_path`)."""
    use_strategy(strategy, args.api_workers)
    if warm:
        warm_up(run, buyers, workdir, strategy, min(clients, 20 if args.quick else 50), 10 if args.quick else 30)
    stamp = datetime.now(UTC).strftime("%H%M%S")
    drop = run.new_drop(f"[bench] flash drop {strategy} C={clients} {stamp}", args.stock,
                        opens_in=timedelta(seconds=args.lead), per_member_limit=args.limit)
    total = clients * requests
    tokens = workdir / f"tokens-{strategy}-{clients}.txt"
    drop_fixtures.write_tokens(buyers[:total], tokens)
    spare = workdir / "spare-token.txt"
    drop_fixtures.write_tokens(buyers[total:total + 1], spare)
    with httpx.Client(timeout=10) as client:
        # Buyers look at the product page before the drop opens (the detail and stock caches warm up) ...
        page = client.get(f"{api()}/products/{drop.product_id}").json()
        client.get(f"{api()}/products/{drop.product_id}/stock")
        # ... and one who clicks too early is refused.
        early = _post_order(client, spare.read_text().strip(), drop.product_id)
    early_code = early.json().get("error", {}).get("code") if early.status_code == 409 else str(early.status_code)
    cpu = StackCpu.find()
    # Every client connects now and sends its first request when the drop opens (+50 ms: the server's clock).
    start_at = time.monotonic() + (drop.opens_at.timestamp() - time.time()) + 0.05
    say(f"Drop {drop.product_id} ({LABELS[strategy]}): {args.stock} units, limit {args.limit}/member, "
        f"status {page.get('status')!r}, early click -> {early_code}; {clients} clients connect and click "
        f"when it opens in {max(start_at - time.monotonic(), 0):.1f} s")
    load_before = loadavg()[0]
    snapshots: list[dict[str, float]] = []
    api_details: list[dict[str, float]] = []

    def snapshot() -> None:
        snapshots.append(cpu.snapshot())
        api_details.append(cpu_detail(cpu.groups.get("api", [])))

    fired = loadgen.fire_orders(api(), tokens, drop.product_id, f"d{uuid.uuid4().hex[:8]}",
                                connections=clients, per_connection=requests, start_at=start_at,
                                label=f"{strategy}: {clients} clients x {requests}",
                                on_start=snapshot, on_end=snapshot)
    used = delta(snapshots[0], snapshots[-1]) if len(snapshots) == 2 else {}
    api_detail = per_request(api_details[0], api_details[-1], fired.requests) if len(api_details) == 2 else None
    load_after = loadavg()[0]
    accepted = fired.counts.get("202", 0)
    saga = wait_saga(drop.product_id, accepted, args.saga_wait, f"{strategy}: saga to CONFIRMED")
    audit = audit_stock(drop.product_id, args.stock, accepted)
    # The drop dashboard watched this drop too: its report must agree with our own counts exactly.
    dashboard = dashboard_check.compare(api(), run.seller(), drop.product_id, fired.counts, early_code, saga, audit)
    for line in dashboard_check.lines(f"{LABELS[strategy]}, C={clients}", dashboard):
        say(line if dashboard["match"] else f"!!! {line}")
    in_process = None
    if time_in_process and strategy == "lua" and used.get("api"):
        in_process = in_process_path(run, len(buyers), fired.requests, accepted, args)
        in_process["api_under_load_us"] = round(1e6 * used["api"] / max(fired.requests, 1), 1)
        in_process["api_under_load"] = api_detail
        in_process["ratio"] = round(in_process["api_under_load_us"] / in_process["mix_us"], 2)
    return {
        "name": strategy, "label": LABELS[strategy], "kind": "http", "product_id": drop.product_id,
        "clients": clients, "requests": fired.requests, "seconds": round(fired.seconds, 3),
        "throughput": round(fired.throughput, 1), "latency_ms": fired.latency_ms, "codes": fired.counts,
        "socket_errors": fired.socket_errors, "early_click": early_code, "stock": audit, "saga": saga,
        "cpu_s": used | {"generator": round(fired.generator_cpu_s, 3)},
        "server_cpu_ms_per_request": round(1000 * sum(used.values()) / max(fired.requests, 1), 3),
        "api_cpu_ms_per_request": round(1000 * used.get("api", 0) / max(fired.requests, 1), 3),
        "generator_cpu_pct": round(fired.generator_cpu_pct, 1), "loadavg_1m": [load_before, load_after],
        "dashboard": dashboard,
        "in_process": in_process,
    }


def in_process_path(run: BenchRun, first_buyer: int, requests: int, accepted: int,
                    args: argparse.Namespace) -> dict[str, Any]:
    """The same path's CPU in this process (bench.profile_path: `Gateway.handle`, no uvicorn, no load but
    this one), right after the drop: per sold-out refusal and per accepted order, each request by a new
    buyer with a token not seen before, as in the drop; weighted by the drop's answers, it is what the API
    workers' CPU per request would be if serving under load cost nothing more."""
    from bench import profile_path

    say("Timing the same path in-process (bench.profile_path) ...")
    refusals = 300 if args.quick else 1000
    probe = profile_path.PathProbe(run, refusals + 2 * 200 + 100, first=first_buyer)  # buyers the drops did not use
    sold_out = run.new_drop("[bench] in-process path (sold out)", 0, opens_in=timedelta(seconds=-5),
                            per_member_limit=args.limit)
    refused_us = probe.whole_path_us(sold_out.product_id, refusals, 409)
    refused_detail = probe.last_detail
    on_sale_n = 50 if args.quick else 100
    on_sale = run.new_drop("[bench] in-process path (accepted)", on_sale_n + 250, opens_in=timedelta(seconds=-5),
                           per_member_limit=args.limit)
    accepted_us = probe.whole_path_us(on_sale.product_id, on_sale_n, 202, offset=refusals + 200)
    mix = ((requests - accepted) * refused_us + accepted * accepted_us) / max(requests, 1)
    return {"refused_us": round(refused_us, 1), "accepted_us": round(accepted_us, 1), "mix_us": round(mix, 1),
            "refusals_timed": refusals, "accepted_timed": on_sale_n, "refused": refused_detail}


# ---------------------------------------------------------------------------- the other benchmarks


def run_core(args: argparse.Namespace) -> tuple[CoreResult, CoreResult]:
    """The core and redis-benchmark, alternately, `--core-rounds` times each; the best round of each counts
    (short runs on shared cores: the best round is the one least disturbed by other processes)."""
    cores: list[CoreResult] = []
    benches: list[CoreResult] = []
    for round_ in range(1, args.core_rounds + 1):
        bar = loadgen.Progress(f"reservation core #{round_}", args.core_calls)
        cores.append(reservation_core(args.stock, args.core_calls, connections=args.core_connections,
                                      pipeline=args.core_pipeline, limit=args.limit, progress=bar.update))
        bar.finish(f"{cores[-1].throughput:,.0f} calls/s")
        bar = loadgen.Progress(f"redis-benchmark EVALSHA #{round_}", args.core_calls)
        benches.append(redis_benchmark(args.stock, args.core_calls, connections=args.core_connections,
                                       pipeline=args.core_pipeline, limit=args.limit))
        bar.finish(f"{benches[-1].throughput:,.0f} calls/s")
    core = max(cores, key=lambda r: r.throughput)
    bench = max(benches, key=lambda r: r.throughput)
    core.settings["rounds"] = [round(r.throughput) for r in cores]
    bench.settings["rounds"] = [round(r.throughput) for r in benches]
    # Every round must have sold exactly the stock, not only the best one.
    core.reserved = max(r.reserved for r in cores)
    core.available = min(r.available for r in cores)
    bench.reserved = max(r.reserved for r in benches)
    bench.available = min(r.available for r in benches)
    return core, bench


def core_row(result: CoreResult) -> dict[str, Any]:
    rounds = result.settings.get("rounds", [])
    label = f"{result.name}, best of {len(rounds)}" if len(rounds) > 1 else result.name
    return {"name": "core" if result.name.startswith("reservation") else "redis-benchmark", "label": label,
            "kind": "redis", "requests": result.calls, "seconds": round(result.seconds, 3),
            "throughput": round(result.throughput, 1), "latency_ms": result.latency_ms, "codes": result.outcomes,
            "stock": {"stock": result.stock, "accepted": result.outcomes.get("RESERVED", 0), "sold": result.reserved,
                      "held": result.reserved, "available": result.available, "oversold": result.oversold,
                      "consistent": result.reserved + result.available == result.stock},
            "cpu_s": {"client": round(result.client_cpu_s, 3), "redis": round(result.redis_cpu_s, 3)},
            "settings": result.settings}


def catalogue_read(args: argparse.Namespace) -> dict[str, Any]:
    """GET /products/{id} served from the Redis detail cache."""
    with _mysql() as cur:
        cur.execute("SELECT MIN(id) AS id FROM products WHERE listed = 1")
        product_id = int(cur.fetchone()["id"])
    url = f"{api()}/products/{product_id}"
    httpx.get(url, timeout=10).raise_for_status()  # now cached
    cpu = StackCpu.find()
    before = cpu.snapshot()
    result = loadgen.fire_get(url, connections=args.read_connections, seconds=args.read_seconds,
                              threads=args.threads, label=f"GET /products/{{id}} x{args.read_connections}")
    used = delta(before, cpu.snapshot())
    return {"name": "catalogue read", "url": f"/products/{product_id}", "connections": args.read_connections,
            "requests": result.requests, "seconds": round(result.seconds, 2), "throughput": round(result.throughput, 1),
            "latency_ms": result.latency_ms, "codes": result.counts, "socket_errors": result.socket_errors,
            "api_cpu_ms_per_request": round(1000 * used.get("api", 0) / max(result.requests, 1), 3),
            "generator_cpu_pct": round(result.generator_cpu_pct, 1)}


def sse_fanout(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from bench import sse_fanout as sse

    with _mysql() as cur:
        cur.execute("SELECT MIN(id) AS id FROM products WHERE listed = 1")
        product_id = int(cur.fetchone()["id"])
    ns = argparse.Namespace(subscribers=args.sse_subscribers, changes=args.sse_changes, product=product_id,
                            pause=0.2)
    say(f"SSE fan-out: {ns.subscribers} subscribers, {ns.changes} stock changes ...")
    with contextlib.redirect_stdout(sys.stderr):  # its own table is part of ours
        figures = asyncio.run(sse.main_async(ns))
    say("")
    return figures


# ---------------------------------------------------------------------------- targets, table, files


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 17's targets against what this run measured (shown, not asserted)."""
    runs = {run["name"]: run for run in report["runs"]}
    targets: list[dict[str, Any]] = []

    def add(name: str, value: str, met: bool | None) -> None:
        targets.append({"target": name, "measured": value, "met": met})

    lua = runs.get("lua")
    if lua:
        add(f"Lua path >= 1,100 req/s at {lua['clients']} clients", f"{lua['throughput']:,.0f} req/s",
            lua["throughput"] >= 1100)
        add("Lua path p99 <= 1,000 ms", f"{lua['latency_ms']['p99']:,.0f} ms", lua["latency_ms"]["p99"] <= 1000)
        path = lua.get("in_process")
        if path:
            add("API CPU per order request under the drop <= 1.25x the same path in-process (same run)",
                f"{path['api_under_load_us'] / 1000:.2f} ms vs {path['mix_us'] / 1000:.2f} ms: {path['ratio']:.2f}x",
                path["ratio"] <= 1.25)
        for other in ("mysql_lock", "redis_lock"):
            if other in runs and runs[other]["throughput"] > 0:
                ratio = lua["throughput"] / runs[other]["throughput"]
                add(f"HTTP: Lua ÷ {LABELS[other]} (shown; the targets are at the core)", f"{ratio:.1f}x", None)
    if report.get("core"):
        targets += core_strategies.targets(report["core"])
    if "core" in runs and "redis-benchmark" in runs:
        share = runs["core"]["throughput"] / runs["redis-benchmark"]["throughput"]
        add("reservation script from Python >= 60 % of redis-benchmark EVALSHA", f"{share:.0%}", share >= 0.6)
    oversold = sum(run["stock"]["oversold"] for run in [*report["runs"], *report.get("curve", [])])
    oversold += sum(row.get("stock", {}).get("oversold", 0) for row in (report.get("core") or {}).get("rows", []))
    add("0 units oversold (every run)", str(oversold), oversold == 0)
    if report.get("catalogue"):
        cat = report["catalogue"]
        add(f"GET /products/{{id}} (cached) >= 6,000 req/s at {cat['connections']} connections",
            f"{cat['throughput']:,.0f} req/s", cat["throughput"] >= 6000)
    if report.get("sse"):
        sse = report["sse"]
        add(f"SSE: {sse['subscribers']} subscribers, change -> every client", f"p99 {sse['p99_ms']} ms, "
            f"{sse['missed']} missed", None)
    demo = report.get("demo_data")
    if demo:
        add("the demo data as found afterwards (rows per table; no [bench] product listed)",
            "as found" if demo["as_found"] else f"changed: {demo['changed']}", demo["as_found"])
    return targets


def _switches(path: dict[str, Any]) -> str:
    """Per request: user/system CPU and context switches, the API workers under the drop vs in-process."""
    load, alone = path.get("api_under_load"), path.get("refused")
    if not load or not alone:
        return ""
    return (f". Per request, API workers under the drop: user {load['user_us']:,.0f} µs + system "
            f"{load['sys_us']:,.0f} µs, {load['voluntary']:.1f} voluntary and {load['involuntary']:.1f} "
            f"involuntary context switches; in-process (sold out): user {alone['user_us']:,.0f} µs + system "
            f"{alone['sys_us']:,.0f} µs, {alone['voluntary']:.1f} and {alone['involuntary']:.1f}")


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in codes.items())


def _socket_errors(run: dict[str, Any]) -> dict[str, int]:
    return {f"socket {kind}": n for kind, n in (run.get("socket_errors") or {}).items() if n}


def _ms(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:,.1f}"  # value != value: NaN


def markdown(report: dict[str, Any]) -> str:  # noqa: C901 - one table per part, in the README's order
    """The report as Markdown (also what the terminal shows)."""
    p, m = report["params"], report["machine"]
    lines = [f"# Flash-drop benchmark ({'quick' if p['quick'] else 'full'} run, {report['finished_at']}; "
             f"parts: {', '.join(p['parts'])})", "",
             f"{p['clients']} concurrent clients x {p['requests']} requests = {p['clients'] * p['requests']:,} "
             f"first-come orders per strategy, each by a different verified buyer; drop of {p['stock']} units, "
             f"limit {p['limit']} per member. Load generator: wrk with one thread and one keep-alive connection "
             f"per client (like JMeter's threads), all connected before the opening and sending their first "
             f"request at the opening instant, per-request latencies timed in its Lua script. "
             f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}; Python {m['python']}, "
             f"Redis {m['redis']}, MariaDB {m['mariadb']}, Kafka {m['kafka']}, uvicorn {m['uvicorn']} "
             f"({m['api_workers']} API workers), {m['wrk']}, redis-benchmark {m['redis-benchmark']}. "
             f"Load average (1 min) before the run: {report['loadavg_before'][0]:.2f}, after: "
             f"{report['loadavg_after'][0]:.2f} (the cores are shared: figures are noisy).", ""]
    if report["runs"]:
        lines += ["| run | requests | req/s | mean ms | p50 ms | p90 ms | p99 ms | max ms | answers | sold / stock "
                  "| oversold | reserve→CONFIRMED p50 / p99 ms | server CPU ms/req | generator CPU |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for run in report["runs"]:
        lat, st = run["latency_ms"], run["stock"]
        saga = run.get("saga") or {}
        saga_cell = f"{saga['p50_ms']:,.0f} / {saga['p99_ms']:,.0f}" if saga.get("p50_ms") is not None else "-"
        if run["kind"] == "http":
            cpu_cell = f"{run['server_cpu_ms_per_request']:.2f}"
            gen = f"{run['generator_cpu_pct']:.0f} % of a core"
        else:
            cpu_cell = f"redis {1000 * run['cpu_s']['redis'] / max(run['requests'], 1):.3f}"
            gen = (f"{100 * run['cpu_s']['client'] / run['seconds']:.0f} % of a core" if run["cpu_s"]["client"]
                   else "-")
        lines.append(
            f"| {run['label']} | {run['requests']:,} | **{run['throughput']:,.0f}** | {_ms(lat.get('mean'))} | "
            f"{_ms(lat['p50'])} | {_ms(lat.get('p90'))} | {_ms(lat['p99'])} | {_ms(lat['max'])} | "
            f"{_codes(run['codes'] | _socket_errors(run))} | {st['sold']} / {st['stock']} | {st['oversold']} | "
            f"{saga_cell} | {cpu_cell} | {gen} |")
    seed_rows = [run for run in report["runs"] if run["name"] in SEED]
    if seed_rows:
        lines += ["", "Against the seed's JMeter figures (500 threads x 10 loops):", "",
                  "| strategy | seed req/s | ours req/s | x | seed mean ms | ours mean ms |",
                  "|---|---:|---:|---:|---:|---:|"]
        for run in seed_rows:
            seed_rps, seed_ms = SEED[run["name"]]
            lines.append(f"| {run['label']} | {seed_rps} | {run['throughput']:,.0f} | "
                         f"{run['throughput'] / seed_rps:.1f}x | {seed_ms:,.0f} | {run['latency_ms']['mean']:,.0f} |")
    curve = report.get("curve")
    if curve:
        lines += ["", f"Load curve of the Lua path: one drop of {p['stock']} units per point, about "
                      f"{p['curve_requests']:,} requests per point (C clients x R requests each), every request by "
                      "another buyer:", "",
                      "| clients | requests | req/s | mean ms | p50 ms | p99 ms | sold / stock | oversold "
                      "| API CPU ms/req | server CPU ms/req | load 1m |",
                      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for run in curve:
            lat, st = run["latency_ms"], run["stock"]
            lines.append(f"| {run['clients']:,} | {run['requests']:,} | **{run['throughput']:,.0f}** | "
                         f"{_ms(lat.get('mean'))} | {_ms(lat['p50'])} | {_ms(lat['p99'])} | {st['sold']} / "
                         f"{st['stock']} | {st['oversold']} | {run['api_cpu_ms_per_request']:.2f} | "
                         f"{run['server_cpu_ms_per_request']:.2f} | {run['loadavg_1m'][0]:.1f} → "
                         f"{run['loadavg_1m'][1]:.1f} |")
    if report.get("core"):
        lines += ["", "The stock strategies at the reservation core (the seed's comparison where the strategies "
                      "differ; `python -m bench.core_strategies`):", "",
                  *core_strategies.markdown_table(report["core"])]
    cat = report.get("catalogue")
    if cat:
        lines += ["", f"Catalogue read: GET {cat['url']} (Redis detail cache), {cat['connections']} connections, "
                      f"{cat['seconds']} s: **{cat['throughput']:,.0f} req/s**, p50 {cat['latency_ms']['p50']:.1f} ms, "
                      f"p99 {cat['latency_ms']['p99']:.1f} ms, {_codes(cat['codes'])}, API CPU "
                      f"{cat['api_cpu_ms_per_request']:.2f} ms/req, wrk {cat['generator_cpu_pct']:.0f} % of a core."]
    sse = report.get("sse")
    if sse:
        lines += ["", f"SSE fan-out: {sse['subscribers']} subscribers on one product, {sse['changes']} stock changes "
                      f"(publish → Kafka → container → every client): p50 {sse['p50_ms']} ms, p90 {sse['p90_ms']} ms, "
                      f"p99 {sse['p99_ms']} ms, max {sse['max_ms']} ms, {sse['missed']} missed, "
                      f"{sse['rss_kib_per_subscriber']} KiB per idle subscriber."]
    watched = [run for run in [*report["runs"], *(curve or [])] if run.get("dashboard")]
    if watched:
        lines += ["", "The drop dashboard's report (GET /dashboard/products/{id}/report) against the benchmark's own "
                      "counts, for every drop:", ""]
        for run in watched:
            lines += dashboard_check.lines(f"{run['label']}, {run['clients']} clients", run["dashboard"])
    lines += ["", "| target | measured | met |", "|---|---:|:---:|"]
    for t in report["targets"]:
        met = "-" if t["met"] is None else "yes" if t["met"] else "NO"
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    cpu_lines = []
    for run in report["runs"]:
        if run["kind"] == "http":
            parts = ", ".join(f"{k} {v:.2f}" for k, v in run["cpu_s"].items() if v >= 0.005)
            per_request = 1000 * sum(run["cpu_s"].values()) / max(run["requests"], 1)
            cores = report["machine"]["cores"] or 1
            cpu_lines.append(f"- {run['label']}: {parts} (CPU s over {run['seconds']:.1f} s; "
                             f"load {run['loadavg_1m'][0]:.1f} → {run['loadavg_1m'][1]:.1f}); "
                             f"{per_request:.2f} ms of CPU per request in all → at most "
                             f"~{1000 * cores / per_request:,.0f} req/s if these {cores} cores were ours alone")
    for run in report["runs"]:
        path = run.get("in_process")
        if path:
            cpu_lines.append(
                f"- {run['label']}, the API's CPU per request against the same path in-process "
                f"(`bench.profile_path`, timed in this process right after the drop, each request by a new buyer "
                f"with a new token): {path['api_under_load_us']:,.0f} µs per request in the API workers under "
                f"the drop; in-process {path['refused_us']:,.0f} µs per sold-out refusal "
                f"({path['refusals_timed']:,} timed) and {path['accepted_us']:,.0f} µs per accepted order "
                f"({path['accepted_timed']:,} timed), {path['mix_us']:,.0f} µs for the drop's mix of answers: "
                f"**{path['ratio']:.2f}x**" + _switches(path))
    if cpu_lines:
        lines += ["", "Where the CPU went during each fire (CPU seconds per process group; the ceiling assumes "
                      "the path stays CPU-bound):", "", *cpu_lines]
    demo = report.get("demo_data")
    if demo:
        lines += ["", f"Demo data: {'as found' if demo['as_found'] else 'CHANGED: ' + str(demo['changed'])} "
                      f"({len(demo['before'])} counts compared before and after; the run removed "
                      f"{_codes(demo['removed'])}); the storefront's search for \"bench\" lists "
                      f"{demo['storefront_bench_products']} \"[bench]\" product(s)."]
    if report.get("problems"):
        lines += ["", "**PROBLEMS:**", "", *[f"- {problem}" for problem in report["problems"]]]
    lines += ["", f"Reproduce: `{report.get('command', 'make bench')}` (took {report['seconds']:,} s; flags: "
                  f"`python -m bench.flash_drop --help`). Plots: {', '.join(report.get('plots', [])) or '-'}."]
    return "\n".join(lines) + "\n"


def _figure(path: Path, suffix: str) -> Path:
    """Where one of the run's figures goes: beside `path` with `suffix` (flash_drop_curve.png), or
    `path` itself when the run is that part alone (`--only curve` writes flash_drop_curve.*)."""
    return path if path.stem.endswith(suffix) else path.with_name(f"{path.stem}{suffix}.png")


def plot(report: dict[str, Any], path: Path) -> list[Path]:
    """The run's figures (PNG): the drops beside the seed's, the load curve, the core comparison."""
    written: list[Path] = []
    subtitle = (f"{report['machine']['cores']} shared cores, load {report['loadavg_before'][0]:.1f} → "
                f"{report['loadavg_after'][0]:.1f}; {report['finished_at']}; seed: JMeter, 500 threads x 10")
    http = [run for run in report["runs"] if run["kind"] == "http"]
    p = report["params"]
    if http:
        names = [LABELS[run["name"]] for run in http]
        bar_chart(path, [
            Bars("Throughput", "req/s", names, ["ours", "seed"],
                 [[run["throughput"], SEED[run["name"]][0]] for run in http], seed_series="seed"),
            Bars("Latency per request", "ms", names, ["mean", "p50", "p99", "seed mean"],
                 [[run["latency_ms"].get("mean"), run["latency_ms"]["p50"], run["latency_ms"]["p99"],
                   SEED[run["name"]][1]] for run in http], seed_series="seed mean")],
            f"Flash drop through HTTP: {p['clients']} clients x {p['requests']} orders, {p['stock']} units", subtitle)
        written.append(path)
    curve = report.get("curve")
    if curve:
        clients = [run["clients"] for run in curve]
        curve_path = _figure(path, "_curve")
        seed_rps, seed_ms = SEED["lua"]
        curve_chart(curve_path, [
            CurvePanel("Throughput", "concurrent clients", "req/s",
                       [Curve("Lua path (ours)", clients, [run["throughput"] for run in curve])],
                       [("seed, Lua (500 threads)", 500, seed_rps)]),
            CurvePanel("Latency", "concurrent clients", "ms",
                       [Curve("p50", clients, [run["latency_ms"]["p50"] for run in curve]),
                        Curve("p99", clients, [run["latency_ms"]["p99"] for run in curve], "s--")],
                       [("seed, Lua: mean", 500, seed_ms)])],
            "Load curve of the Lua path (POST /orders, one drop per point)", subtitle)
        written.append(curve_path)
    if report.get("core"):
        core_path = _figure(path, "_core")
        core_strategies.plot(report["core"], core_path, subtitle)
        written.append(core_path)
    return written


# ---------------------------------------------------------------------------- main

PARTS = ("drops", "curve", "core", "ceiling", "catalogue", "sse")
HTTP_PARTS = ("drops", "curve")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.flash_drop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stock", "-N", type=int, help="units in each drop (default 100; quick 50)")
    parser.add_argument("--clients", "-C", type=int, help="concurrent clients (default 500)")
    parser.add_argument("--requests", "-R", type=int, help="requests per client (default 10; quick 2)")
    parser.add_argument("--limit", type=int, default=2, help="perMemberLimit of the drop (default 2)")
    parser.add_argument("--strategy", default="all",
                        help="comma-separated stock strategies: lua, mysql_lock, redis_lock or all (default)")
    parser.add_argument("--only", default="", help=f"comma-separated parts to run, of {', '.join(PARTS)} "
                                                   "(default: all); e.g. --only curve for the load curve alone")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip")
    parser.add_argument("--curve-clients", default="50,100,200,500,1000",
                        help="the load curve's points: concurrent clients (default 50,100,200,500,1000)")
    parser.add_argument("--curve-requests", type=int,
                        help="requests per point of the curve, split over its clients (default 5,000; quick 1,000)")
    parser.add_argument("--core-workers", type=int, default=500, help="worker processes at the core (default 500)")
    parser.add_argument("--core-requests", type=int, help="reservations per core worker (default 10; quick 2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads of the catalogue read (default 2)")
    parser.add_argument("--lead", type=float, default=3.0, help="seconds between creating a drop and its opening "
                                                                "(the clients connect meanwhile)")
    parser.add_argument("--api-workers", help="run the drops with this many API worker processes (the runtime's "
                                              "concurrency, like Lambda environments; default: as the runtime runs)")
    parser.add_argument("--saga-wait", type=float, default=120.0, help="max seconds to wait for the saga to settle")
    parser.add_argument("--core-calls", type=int,
                        help="calls of the ceiling's script and redis-benchmark (default 100,000; quick 20,000)")
    parser.add_argument("--core-connections", type=int, default=8, help="Redis connections of both (default 8)")
    parser.add_argument("--core-pipeline", type=int, default=64, help="calls in flight per connection (default 64)")
    parser.add_argument("--core-rounds", type=int, default=3, help="rounds of the script and of redis-benchmark; "
                                                                   "the best of each is reported (default 3)")
    parser.add_argument("--read-connections", type=int, default=100, help="connections of the catalogue read")
    parser.add_argument("--read-seconds", type=float, help="seconds of the catalogue read (default 10; quick 3)")
    parser.add_argument("--sse-subscribers", type=int, help="SSE subscribers (default 1,000; quick 200)")
    parser.add_argument("--sse-changes", type=int, help="SSE stock changes (default 20; quick 5)")
    parser.add_argument("--quick", action="store_true", help="a smaller run of every part (a few minutes)")
    parser.add_argument("--out", type=Path, help="write the results here (default bench/results/flash_drop"
                                                 "[_quick][_<parts>])")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"stock": 50 if quick else 100, "clients": 500, "requests": 2 if quick else 10,
                "core_calls": 20_000 if quick else 100_000, "read_seconds": 3 if quick else 10,
                "sse_subscribers": 200 if quick else 1000, "sse_changes": 5 if quick else 20,
                "curve_requests": 1_000 if quick else 5_000, "core_requests": 2 if quick else 10}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.strategies = list(STRATEGIES) if args.strategy == "all" else [s.strip() for s in args.strategy.split(",")]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategy {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if set(only) - set(PARTS) or skip - set(PARTS):
        parser.error(f"unknown part {', '.join(sorted((set(only) | skip) - set(PARTS)))}; parts: {', '.join(PARTS)}")
    args.parts = [part for part in PARTS if (not only or part in only) and part not in skip]
    args.curve_clients = [int(c) for c in args.curve_clients.split(",") if c.strip()]
    if args.out is None:
        suffix = "" if not only else "_" + "_".join(args.parts)
        args.out = RESULTS / (("flash_drop_quick" if quick else "flash_drop") + suffix)
    args.command = "make bench" + (f" ARGS=\"{' '.join(argv)}\"" if argv else "")
    return args


def planned_phases(args: argparse.Namespace) -> list[str]:
    """The phases `main` will go through, in order, for the overall progress bar."""
    phases = ["stack, machine and demo data counts"]
    if set(args.parts) & set(HTTP_PARTS):
        phases.append("buyers and tokens")
    if "drops" in args.parts:
        phases += [f"drop: {LABELS[s]}" for s in args.strategies]
    if "curve" in args.parts:
        phases += [f"curve: {c} clients" for c in args.curve_clients]
    if "core" in args.parts:
        phases += [f"core: {core_strategies.LABELS[k]}" for k in ["noop", "ping", *args.strategies]]
    if "ceiling" in args.parts:
        phases.append("ceiling: the script vs redis-benchmark")
    if "catalogue" in args.parts:
        phases.append(f"catalogue read: {args.read_connections} connections")
    if "sse" in args.parts:
        phases.append(f"SSE fan-out: {args.sse_subscribers} subscribers")
    return [*phases, "remove the bench data and compare the demo data", "results"]


def storefront_bench_products() -> int:
    """How many "[bench]" products the storefront's search lists (it must be none after a run)."""
    listed = httpx.get(f"{api()}/products", params={"q": "bench", "size": "100"}, timeout=30).json()
    return sum(1 for item in listed.get("items", []) if str(item.get("name", "")).startswith("[bench]"))


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one branch per --only part
    args = parse_args(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    load_before = loadavg()
    loadgen.require_wrk()
    phases = Phases(planned_phases(args))
    with phases.phase("stack, machine and demo data counts"):
        ensure_stack()
        machine = machine_facts()
        demo_before = drop_fixtures.demo_counts()
    original = (runtime_env("GOODSDROP_STOCK_STRATEGY"), runtime_env("GOODSDROP_API_WORKERS"),
                runtime_env(IP_RATE_ENV))
    # The runtime's default (goodsdrop_local.__main__): cores + 1 uvicorn workers.
    machine["api_workers"] = args.api_workers or original[1] or str(max(2, (os.cpu_count() or 2) + 1))
    current = original[0] or "lua"
    order = sorted(args.strategies, key=lambda s: s != current)  # the runtime's current strategy first
    say(f"Flash-drop benchmark: parts {', '.join(args.parts)}; strategies {', '.join(order)}; {args.clients} "
        f"clients x {args.requests} requests, stock {args.stock}; {machine['cores']} cores, load {load_before[0]:.2f}")
    runs: list[dict[str, Any]] = []
    report: dict[str, Any] = {"curve": []}
    run = drop_fixtures.BenchRun(settle_timeout=args.saga_wait)
    try:
        with tempfile.TemporaryDirectory(prefix="flashdrop-") as tmp:
            workdir = Path(tmp)
            try:
                if set(args.parts) & set(HTTP_PARTS):
                    with phases.phase("buyers and tokens"):
                        needed = max([args.clients * args.requests + 1] +
                                     [c * max(1, round(args.curve_requests / c)) + 1 for c in args.curve_clients])
                        buyers = run.buyers(needed)
                if "drops" in args.parts:
                    for strategy in order:
                        with phases.phase(f"drop: {LABELS[strategy]}"):
                            runs.append(run_drop(strategy, args.clients, args.requests, args, run, buyers, workdir,
                                                 time_in_process=True))
                if "curve" in args.parts:
                    for i, clients in enumerate(args.curve_clients):
                        with phases.phase(f"curve: {clients} clients"):
                            per_client = max(1, round(args.curve_requests / clients))
                            report["curve"].append(run_drop("lua", clients, per_client, args, run, buyers, workdir,
                                                            warm=i == 0))
            finally:
                if (runtime_env("GOODSDROP_STOCK_STRATEGY"), runtime_env("GOODSDROP_API_WORKERS"),
                        runtime_env(IP_RATE_ENV)) != original:
                    say(f"Restoring the runtime's settings (stock strategy {original[0] or 'lua, the default'}) ...")
                    restart_runtime(*original)
        runs.sort(key=lambda r: STRATEGIES.index(r["name"]))
        if "core" in args.parts:
            report["core"] = core_strategies.compare(args.strategies, args.core_workers, args.core_requests,
                                                     args.stock, phases)
        if "ceiling" in args.parts:
            with phases.phase("ceiling: the script vs redis-benchmark"):
                core, bench = run_core(args)
                runs += [core_row(core), core_row(bench)]
        if "catalogue" in args.parts:
            with phases.phase(f"catalogue read: {args.read_connections} connections"):
                report["catalogue"] = catalogue_read(args)
        if "sse" in args.parts:
            with phases.phase(f"SSE fan-out: {args.sse_subscribers} subscribers"):
                report["sse"] = sse_fanout(args)
    finally:
        with phases.phase("remove the bench data and compare the demo data"):
            removed = run.remove()
            demo_after = drop_fixtures.demo_counts()
            changed = {name: [demo_before.get(name), n] for name, n in demo_after.items()
                       if demo_before.get(name) != n}
            report["demo_data"] = {"before": demo_before, "after": demo_after, "changed": changed,
                                   "removed": removed, "storefront_bench_products": storefront_bench_products()}
            report["demo_data"]["as_found"] = not changed and not report["demo_data"]["storefront_bench_products"]
            say(f"  removed {_codes(removed) or 'nothing'}; demo data "
                f"{'as found' if report['demo_data']['as_found'] else f'CHANGED: {changed}'}")
    report |= {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "seconds": round(time.monotonic() - started),
        "command": args.command,
        "params": {"stock": args.stock, "clients": args.clients, "requests": args.requests, "limit": args.limit,
                   "threads": args.threads, "quick": args.quick, "strategies": args.strategies, "parts": args.parts,
                   "curve_clients": args.curve_clients, "curve_requests": args.curve_requests,
                   "core_workers": args.core_workers, "core_requests": args.core_requests,
                   "core_calls": args.core_calls, "core_connections": args.core_connections,
                   "core_pipeline": args.core_pipeline},
        "machine": machine, "loadavg_before": load_before, "loadavg_after": loadavg(), "runs": runs,
    }
    report["problems"] = problems_of(runs + report["curve"])
    for row in (report.get("core") or {}).get("rows", []):
        if row.get("stock", {}).get("oversold"):
            report["problems"].append(f"core, {row['label']}: OVERSOLD by {row['stock']['oversold']} ({row['stock']})")
        elif not row.get("stock", {}).get("consistent", True):
            report["problems"].append(f"core, {row['label']}: the stock in Redis does not add up ({row['stock']})")
    report["targets"] = evaluate(report)
    with phases.phase("results"):
        write_results(args.out, report, markdown, plot)
    code = exit_code(report)
    if code == 3:
        say("\n!!! OVERSOLD: more units were sold than the drop had. This is a correctness failure. !!!")
    elif code:
        say("\nThe run had problems (see PROBLEMS above).")
    return code


def problems_of(runs: list[dict[str, Any]]) -> list[str]:
    """What went wrong in the runs: oversells, stock records that disagree, an unsettled saga, an early sale."""
    problems = []
    for run in runs:
        st = run["stock"]
        if st["oversold"]:
            problems.append(f"{run['label']}: OVERSOLD by {st['oversold']} units ({st})")
        elif not st.get("consistent", True):
            problems.append(f"{run['label']}: Redis and MySQL disagree about the stock ({st})")
        if run["kind"] == "http" and not run["saga"]["settled"]:
            problems.append(f"{run['label']}: the saga did not settle every accepted order in time "
                            f"({run['saga']['orders']})")
        if run["kind"] == "http" and "dashboard" in run and not run["dashboard"]["match"]:
            problems.append(f"{run['label']} (C={run['clients']}): the drop dashboard's report does not match the "
                            f"benchmark's counts ({dashboard_check.lines('', run['dashboard'])[0]})")
        if run["kind"] == "http" and run["early_click"] != "NOT_ON_SALE":
            problems.append(f"{run['label']}: a click before the opening got {run['early_click']}, not NOT_ON_SALE")
    return problems


def exit_code(report: dict[str, Any]) -> int:
    """3 when any run oversold, 1 for any other problem, else 0 (missed targets are shown, not failed)."""
    core_rows = [row for row in (report.get("core") or {}).get("rows", []) if "stock" in row]
    if any(run["stock"]["oversold"] for run in [*report["runs"], *report.get("curve", []), *core_rows]):
        return 3
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
