"""The seed's comparison where the strategies differ: the reservation core, no HTTP.

    python -m bench.core_strategies [--workers 500] [--requests 10] [--stock 100]

The same drop once per stock strategy (`lua`, `mysql_lock`, `redis_lock`:
goodsdrop.reservations.lock_strategies): a fresh product with `--stock` units, a limit of 2 per
member, on sale, its stock loaded in Redis; W workers x R reservations, each by another buyer
with its own Idempotency-Key, every worker starting at the same instant, every call
`goodsdrop.reservations.reserve(reservation, strategy)`: the domain's hot path as POST /orders runs
it after admission, without HTTP and the handlers.

The worker model: W threads spread over P forked processes (default 8 per core), each thread a
worker standing for one warm Lambda environment: its own MySQL connection (the layer keeps one per
process, as one Lambda environment runs one invocation at a time, so the harness gives each thread
its own; the row lock needs one held connection per waiting buyer) over one Redis connection pool
per process, its calls one after the other (a closed loop, like the seed's JMeter threads), warmed
up before the clock (its MySQL connection too). One process per worker (500 processes) made the
harness itself the limit on 2 cores; 2, 25 and 125 processes per core drove fewer calls than 8;
gevent greenlets drove the same Lua rate as these threads (within 2 %, 10 % less client CPU per
call), so a bench-only dependency was not worth it. Fair: the strategies get the same workers, the
same calls (built before the clock) and the same drop; only the strategy differs.

Is the client what gets measured? Two rows answer it: the same workers calling a no-op (the
harness alone: how fast this model hands out calls at all) and one Redis PING (one round trip, the
floor of any call: a sold-out refusal of the Lua way takes two). Each row says how busy the cores
were (client, Redis and MariaDB CPU over the wall time) and the client's CPU per call: a strategy
that leaves the cores idle is held up by its lock; one that fills them is bound by CPU, and then
the client's share says how much of it was the domain's Python and its round trips.

Every run is audited in Redis (units reserved against the stock: 0 oversold) and everything it
wrote is removed afterwards. Results: bench/results/core_strategies.{md,json,png}.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pymysql

import goodsdrop.clients
from bench.drop_fixtures import BenchRun
from bench.loadgen import Phases
from bench.procs import StackCpu, delta
from bench.reporting import RESULTS, ensure_stack, write_results
from goodsdrop import keys
from goodsdrop.clients import mysql_connection, mysql_cursor, redis_client
from goodsdrop.clock import now_ms
from goodsdrop.errors import DropError
from goodsdrop.ids import new_ulid
from goodsdrop.reservations import STRATEGIES, Line, Reservation, Terms, load_stock, reserve

PRICE = 39_000
LIMIT = 2
LABELS = {"lua": "Lua reservation", "mysql_lock": "MySQL row lock", "redis_lock": "Redis distributed lock",
          "noop": "harness alone (no-op call)", "ping": "harness + one Redis PING"}
SEED = {"lua": 318.5, "mysql_lock": 106.1, "redis_lock": 73.8}  # the seed's JMeter req/s (through HTTP)
TARGETS = {"mysql_lock": 30, "redis_lock": 20}  # issue 17: Lua >= 30x the row lock, >= 20x the distributed lock
DEFAULT_PROCESSES = 8 * (os.cpu_count() or 1)  # of 2, 8, 25, 125, 250 per core: most calls (docstring)


def _reservations(product_id: int, members: range) -> list[Reservation]:
    now = now_ms()
    return [Reservation(new_ulid(now), str(member), [Line(product_id, 1, PRICE)], [Terms(LIMIT, None, 1)],
                        uuid.uuid4().hex + "f" * 8, uuid.uuid4().hex + "0" * 8, now, now + 600_000)
            for member in members]


def _call_for(kind: str) -> Callable[[Reservation], str]:
    """What one worker call does: the strategy's reservation, or the harness rows' no-op / PING."""
    if kind == "noop":
        return lambda res: "NOOP"
    if kind == "ping":
        return lambda res: "PONG" if redis_client().ping() else "?"

    def call(res: Reservation) -> str:
        try:
            result = reserve(res, kind)
        except DropError as err:
            return f"{err.http_status} {err.code}"
        if result.kind == "REFUSED" and result.outcome:
            return str(result.outcome.get("code"))
        return str(result.kind)

    return call


class _ConnectionPerThread(dict[int, Any]):
    """goodsdrop.clients keeps one MySQL connection per process (`_mysql[pid]`): a Lambda environment
    runs one invocation at a time. Each worker thread here stands for an environment of its own, so
    each gets its own connection, as it would in Lambda (the harness's stand-in; the layer is unchanged)."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def get(self, key: int, default: Any = None) -> Any:
        return getattr(self._local, "connection", default)

    def __setitem__(self, key: int, value: Any) -> None:
        self._local.connection = value


def _worker_thread(call: Callable[[Reservation], str], calls: list[Reservation], warm: Reservation, kind: str,
                   warmed: threading.Barrier, go: Any, out: dict[str, Any]) -> None:
    """One worker: warm up, wait for the start, run its calls one after the other."""
    try:
        # Warm before the clock, as a warm Lambda environment is: connected, the reservation's code run
        # once (a refusal on a sold-out product of its own, so the measured drop is untouched; the Lua
        # way for every strategy, so that 500 warm-ups do not queue on one lock before the start).
        if kind == "mysql_lock":
            mysql_connection().ping()
        (_call_for("lua") if kind in STRATEGIES else call)(warm)
    except Exception as err:
        out["failed"] = f"{type(err).__name__}: {err}"
    warmed.wait()
    go.wait()
    out["first"] = time.monotonic()
    answers: list[str] = out.setdefault("answers", [])
    latencies: list[float] = out.setdefault("latencies", [])
    for res in calls:
        started = time.perf_counter()
        try:
            answers.append(call(res))
        except Exception as err:  # a failure is an answer to count, not a crash of the benchmark
            answers.append(f"error {type(err).__name__}")
        latencies.append(time.perf_counter() - started)
    out["ended"] = time.monotonic()


def _worker_process(kind: str, product_id: int, warm_product: int, member_ranges: list[range], ready: Any, go: Any,
                    pipe: Connection) -> None:
    """One process with a thread per worker: warm them up, wait for the start, report every call."""
    try:
        goodsdrop.clients._mysql = _ConnectionPerThread()
        call = _call_for(kind)
        redis_client().ping()
        work = [(_reservations(product_id, members), _reservations(warm_product, range(members.start,
                                                                                        members.start + 1))[0])
                for members in member_ranges]
        started = threading.Event()
        warmed = threading.Barrier(len(work) + 1)
        outs: list[dict[str, Any]] = [{} for _ in work]
        threads = [threading.Thread(target=_worker_thread, args=(call, calls, warm, kind, warmed, started, out),
                                    daemon=True) for (calls, warm), out in zip(work, outs, strict=True)]
        for thread in threads:
            thread.start()
        warmed.wait()
        ready.release()
        go.wait()
        cpu = time.process_time()
        started.set()
        for thread in threads:
            thread.join()
        failed = [out["failed"] for out in outs if "failed" in out]
        pipe.send({"failed": failed[0]} if failed else
                  {"answers": [a for out in outs for a in out["answers"]],
                   "latencies": [x for out in outs for x in out["latencies"]], "cpu": time.process_time() - cpu,
                   "first": max(out["first"] for out in outs), "ended": max(out["ended"] for out in outs)})
    except BaseException as err:
        pipe.send({"failed": f"{type(err).__name__}: {err}"})
    finally:
        pipe.close()


def _pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))] if sorted_values else 0.0


def fire(kind: str, product_id: int, warm_product: int, workers: int, requests: int, member_base: int,
         processes: int) -> dict[str, Any]:
    """W workers (threads over `processes` forked processes) x R calls of `kind`, all starting at once;
    throughput, latency, answers, CPU."""
    ctx = multiprocessing.get_context("fork")
    ready, go = ctx.Semaphore(0), ctx.Event()
    pipes, procs = [], []
    ranges = [range(member_base + w * requests, member_base + (w + 1) * requests) for w in range(workers)]
    gc.collect()
    gc.freeze()  # the forked processes share the parent's objects without copying their pages
    try:
        for p in range(processes):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_process, args=(kind, product_id, warm_product, ranges[p::processes],
                                                             ready, go, send), daemon=True)
            proc.start()
            send.close()
            pipes.append(receive)
            procs.append(proc)
    finally:
        gc.unfreeze()
    deadline = time.monotonic() + 180
    for _ in range(processes):
        if not ready.acquire(timeout=max(deadline - time.monotonic(), 0.1)):
            break
    stack_cpu = StackCpu.find()
    before = stack_cpu.snapshot()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    go.set()
    reports = [pipe.recv() for pipe in pipes]
    after = stack_cpu.snapshot()
    for proc in procs:
        proc.join(10)
    failed = [r["failed"] for r in reports if "failed" in r]
    if failed:
        raise RuntimeError(f"{len(failed)} worker process(es) failed, e.g. {failed[0]}")
    seconds = max(r["ended"] for r in reports) - started
    latencies = sorted(x * 1000 for r in reports for x in r["latencies"])
    answers = Counter(a for r in reports for a in r["answers"])
    used = delta(before, after)
    client_cpu = sum(r["cpu"] for r in reports)
    calls = len(latencies)
    cores = os.cpu_count() or 1
    server_cpu = used.get("redis", 0.0) + used.get("mariadb", 0.0)
    return {"name": kind, "label": LABELS.get(kind, kind), "workers": workers, "processes": processes,
            "requests": calls, "seconds": round(seconds, 3),
            "start_skew_ms": round(1000 * (max(r["first"] for r in reports) - started), 1),
            "throughput": round(calls / seconds, 1) if seconds > 0 else 0.0,
            "latency_ms": {"mean": round(sum(latencies) / max(calls, 1), 2), "p50": round(_pct(latencies, 50), 2),
                           "p90": round(_pct(latencies, 90), 2), "p99": round(_pct(latencies, 99), 2),
                           "max": round(latencies[-1], 2) if latencies else 0.0},
            "answers": dict(answers.most_common()),
            "cpu_s": {"client": round(client_cpu, 3), "redis": used.get("redis", 0.0),
                      "mariadb": used.get("mariadb", 0.0)},
            "client_cpu_us_per_call": round(1e6 * client_cpu / max(calls, 1), 1),
            "cores_busy_pct": round(100 * (client_cpu + server_cpu) / seconds / cores, 1) if seconds > 0 else 0.0,
            "loadavg_1m": [load_before, os.getloadavg()[0]]}


@contextmanager
def mysql_connections(wanted: int) -> Iterator[None]:
    """Room for `wanted` more MySQL connections: the row-lock run holds one per worker, as W Lambda
    environments would. Raises the local server's max_connections for the run if it is too low
    (through its root socket, as `make up` configures it) and puts it back afterwards."""
    from goodsdrop_local.stack.mariadb_server import MariaDBServer

    with mysql_cursor() as cur:
        cur.execute("SELECT @@max_connections AS m, (SELECT COUNT(*) FROM information_schema.PROCESSLIST) AS n")
        row = cur.fetchone()
    limit, used = int(row["m"]), int(row["n"])
    if used + wanted + 20 <= limit:
        yield
        return

    def set_limit(value: int) -> None:
        root = pymysql.connect(unix_socket=str(MariaDBServer().socket_path), user="root", autocommit=True)
        with root, root.cursor() as cur:
            cur.execute(f"SET GLOBAL max_connections = {int(value)}")

    _say(f"  MariaDB allows {limit} connections ({used} in use): raising it to {used + wanted + 50} for this run")
    set_limit(used + wanted + 50)
    try:
        yield
    finally:
        set_limit(limit)


def audit(product_id: int, stock: int, answers: dict[str, int]) -> dict[str, Any]:
    """Units reserved against the stock in Redis; `oversold` must be 0."""
    r = redis_client()
    available, reserved = (int(v or 0) for v in r.hmget(keys.stock(product_id), "available", "reserved"))
    holds = r.hlen(keys.stock_holds(product_id))
    accepted = answers.get("RESERVED", 0)
    oversold = max(0, accepted - stock, reserved - stock, -available)
    return {"stock": stock, "accepted": accepted, "reserved": reserved, "available": available, "holds": holds,
            "oversold": oversold, "consistent": available + reserved == stock and holds == reserved == accepted}


def compare(strategies: list[str], workers: int, requests: int, stock: int, phases: Phases | None = None,
            harness: bool = True, processes: int | None = None) -> dict[str, Any]:
    """Every strategy (and the harness rows) on its own fresh drop; the rows, ratios and verdicts."""
    processes = processes or DEFAULT_PROCESSES
    rows: list[dict[str, Any]] = []
    member_base = 9_000_000_000 + random.randrange(1_000) * 1_000_000  # synthetic buyers: Redis only
    kinds = (["noop", "ping"] if harness else []) + strategies
    with BenchRun(settle_timeout=0) as run:
        for i, kind in enumerate(kinds):
            with phases.phase(f"core: {LABELS.get(kind, kind)}") if phases else nullcontext():
                drop = run.new_drop(f"[bench] core {kind} {datetime.now(UTC):%H%M%S}", stock,
                                    opens_in=timedelta(seconds=-5), per_member_limit=LIMIT)
                warm = run.new_drop(f"[bench] core warm-up {kind}", 0, opens_in=timedelta(seconds=-5),
                                    per_member_limit=LIMIT)
                for product_id in (drop.product_id, warm.product_id):
                    load_stock(product_id)
                base = member_base + i * workers * requests
                run.synthetic_members.update(range(base, base + workers * requests))
                with mysql_connections(workers) if kind == "mysql_lock" else nullcontext():
                    row = fire(kind, drop.product_id, warm.product_id, workers, requests, base, processes)
                if kind in STRATEGIES:
                    row["stock"] = audit(drop.product_id, stock, row["answers"])
                rows.append(row)
                _say(f"  {row['label']}: {row['throughput']:,.0f} calls/s, p99 {row['latency_ms']['p99']:,.1f} ms, "
                     f"cores busy {row['cores_busy_pct']:.0f} %, {row['answers']}")
    by_name = {row["name"]: row for row in rows}
    ratios = {}
    if "lua" in by_name:
        for other in ("mysql_lock", "redis_lock"):
            if other in by_name and by_name[other]["throughput"] > 0:
                ratios[other] = round(by_name["lua"]["throughput"] / by_name[other]["throughput"], 1)
    return {"workers": workers, "processes": processes, "requests_per_worker": requests, "stock": stock,
            "rows": rows, "ratios": ratios, "cores": os.cpu_count()}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bound_by(row: dict[str, Any]) -> str:
    """What held a row back: the cores (CPU-bound) or waiting (a lock, a round trip)."""
    return "CPU" if row["cores_busy_pct"] >= 70 else "waiting (lock / round trips)"


def markdown_table(result: dict[str, Any]) -> list[str]:
    """The comparison as Markdown lines (also a section of the flash-drop report)."""
    lines = [f"{result['workers']} workers (threads over {result.get('processes', '?')} processes) x "
             f"{result['requests_per_worker']} reservations, drop of "
             f"{result['stock']} units (limit {LIMIT}/member), `goodsdrop.reservations.reserve` called directly "
             f"(no HTTP), one fresh drop per row; {result['cores']} cores.", "",
             "| run | calls | calls/s | mean ms | p50 ms | p99 ms | answers | reserved / stock | oversold "
             "| client CPU µs/call | cores busy | bound by | start skew ms | load 1m |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|"]
    for row in result["rows"]:
        lat = row["latency_ms"]
        st = row.get("stock")
        stock_cell = f"{st['reserved']} / {st['stock']}" if st else "-"
        answers = ", ".join(f"{k}: {v:,}" for k, v in row["answers"].items())
        lines.append(f"| {row['label']} | {row['requests']:,} | **{row['throughput']:,.0f}** | {lat['mean']:,.1f} | "
                     f"{lat['p50']:,.1f} | {lat['p99']:,.1f} | {answers} | {stock_cell} | "
                     f"{st['oversold'] if st else '-'} | {row['client_cpu_us_per_call']:,.0f} | "
                     f"{row['cores_busy_pct']:.0f} % | {bound_by(row)} | {row['start_skew_ms']:,.0f} | "
                     f"{row['loadavg_1m'][0]:.1f} → {row['loadavg_1m'][1]:.1f} |")
    for other, ratio in result["ratios"].items():
        lines.append("")
        lines.append(f"- Lua ÷ {LABELS[other]}: **{ratio:.1f}x** (target ≥ {TARGETS[other]}x: "
                     f"{'met' if ratio >= TARGETS[other] else 'NOT met'}); the seed through HTTP: "
                     f"{SEED['lua'] / SEED[other]:.1f}x")
    return lines


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's core targets, judged on this run."""
    return [{"target": f"core: Lua >= {TARGETS[other]}x {LABELS[other]}", "measured": f"{ratio:.1f}x",
             "met": ratio >= TARGETS[other]} for other, ratio in result["ratios"].items()]


def plot(result: dict[str, Any], path: Path, subtitle: str) -> list[Path]:
    """Calls/s per strategy at the core, the seed's req/s beside them (log scale)."""
    from bench.plots import Bars, bar_chart

    rows = [row for row in result["rows"] if row["name"] in STRATEGIES]
    harness = [row for row in result["rows"] if row["name"] not in STRATEGIES]
    panels = [Bars(f"Reservations per second ({result['workers']} workers, no HTTP)", "calls/s",
                   [LABELS[row["name"]] for row in rows], ["ours: calls/s at the core", "seed: req/s (HTTP)"],
                   [[row["throughput"], SEED.get(row["name"])] for row in rows], seed_series="seed: req/s (HTTP)"),
              Bars("Latency per call", "ms", [LABELS[row["name"]] for row in rows], ["p50", "p99"],
                   [[row["latency_ms"]["p50"], row["latency_ms"]["p99"]] for row in rows])]
    if harness:
        panels.append(Bars("The harness's own ceiling", "calls/s", [row["label"] for row in harness] +
                           [LABELS["lua"]], ["calls/s"], [[row["throughput"]] for row in harness] +
                           [[next((r["throughput"] for r in rows if r["name"] == "lua"), None)]]))
    bar_chart(path, panels, "The reservation core per stock strategy", subtitle)
    return [path]


def markdown(report: dict[str, Any]) -> str:
    result = report["core"]
    lines = [f"# Stock strategies at the reservation core ({report['finished_at']})", "",
             *markdown_table(result), "",
             f"Load average (1 min) before: {report['loadavg_before'][0]:.2f}, after: {report['loadavg_after'][0]:.2f} "
             "(shared cores: the figures are noisy).", "",
             f"Reproduce: `python -m bench.core_strategies` (took {report['seconds']} s). "
             f"Plots: {', '.join(report['plots'])}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.core_strategies", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", "-W", type=int, default=500, help="concurrent workers (default 500)")
    parser.add_argument("--processes", "-P", type=int, default=DEFAULT_PROCESSES,
                        help=f"processes the workers are spread over, as threads (default {DEFAULT_PROCESSES})")
    parser.add_argument("--requests", "-R", type=int, default=10, help="reservations per worker (default 10)")
    parser.add_argument("--stock", "-N", type=int, default=100, help="units in each drop (default 100)")
    parser.add_argument("--strategy", default="all", help="comma-separated strategies or all (default)")
    parser.add_argument("--no-harness", action="store_true", help="skip the no-op and PING rows")
    parser.add_argument("--out", type=Path, default=RESULTS / "core_strategies", help="results path (no suffix)")
    args = parser.parse_args(argv)
    strategies = list(STRATEGIES) if args.strategy == "all" else [s.strip() for s in args.strategy.split(",")]
    if any(s not in STRATEGIES for s in strategies):
        parser.error(f"choose strategies from {', '.join(STRATEGIES)}")
    started, load_before = time.monotonic(), list(os.getloadavg())
    ensure_stack()
    phases = Phases([f"core: {LABELS[k]}" for k in ([] if args.no_harness else ["noop", "ping"]) + strategies])
    result = compare(strategies, args.workers, args.requests, args.stock, phases, harness=not args.no_harness,
                     processes=args.processes)
    report = {"finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "core": result,
              "seconds": round(time.monotonic() - started), "loadavg_before": load_before,
              "loadavg_after": list(os.getloadavg()), "targets": targets(result)}
    subtitle = (f"{result['cores']} cores, load {load_before[0]:.1f}; {report['finished_at']}; "
                "seed: JMeter through its HTTP service")
    write_results(args.out, report, markdown, lambda rep, path: plot(rep["core"], path, subtitle))
    oversold = sum(row.get("stock", {}).get("oversold", 0) for row in result["rows"])
    if oversold:
        _say("\n!!! OVERSOLD at the core. !!!")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
