"""One hot key vs sharded stock: `python -m bench.sharded_drop [--shards 1,4,8] [--clients 500,2000]`.

The same oversubscribed drop (demand = 5 x stock, every payment succeeds) fired through the real
HTTP path for each shard count S and each number of concurrent clients C, on whatever Redis the
stack runs — meant for the 3-master Redis Cluster (`make up CLUSTER=1`), where each shard is its
own slot and so can live on its own master. Per run: throughput, latency percentiles, answers by
code, units sold against the stock, oversold (must be 0) and stranded units (must be 0: a unit
still available in some shard after buyers were told OUT_OF_STOCK). Results go to
bench/results/sharded_drop.{md,json,png}; exit code 3 on any oversell, 1 on a stranded unit.
Everything the run made is removed at the end (bench.drop_fixtures.BenchRun).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import drop_fixtures, loadgen
from bench.drop_fixtures import BenchRun
from bench.flash_drop import (
    IP_RATE_ENV,
    audit_stock,
    loadavg,
    machine_facts,
    restart_runtime,
    runtime_env,
    use_strategy,
    wait_saga,
    warm_up,
)
from bench.plots import Bars, bar_chart
from bench.reporting import RESULTS, ensure_stack, say, write_results


def _cluster_masters() -> int:
    """How many Redis masters serve the stack (1 without a cluster)."""
    from goodsdrop.clients import redis_client
    from goodsdrop.settings import settings

    if not getattr(settings, "redis_cluster", False):
        return 1
    return len(redis_client().get_primaries())


def audit(product_id: int, stock: int, accepted: int, out_of_stock: int) -> dict[str, Any]:
    """flash_drop's stock audit (summed over shards), plus the stranded units."""
    figures = audit_stock(product_id, stock, accepted)
    # Every payment succeeds, so nothing is given back: once a buyer heard OUT_OF_STOCK, any unit
    # still available in some shard was stranded there.
    return figures | {"stranded": figures["available"] if out_of_stock else 0}


def run(shards: int, clients: int, args: argparse.Namespace, bench: BenchRun, buyers: list[int], workdir: Path
        ) -> dict[str, Any]:
    """One drop with `shards` shards and `clients` concurrent clients; its table row."""
    total = clients * args.requests
    stock = max(total // args.oversubscribe, 1)
    stamp = datetime.now(UTC).strftime("%H%M%S")
    drop = bench.new_drop(f"[bench] sharded drop S={shards} C={clients} {stamp}", stock,
                          opens_in=timedelta(seconds=args.lead), per_member_limit=args.limit, stock_shards=shards)
    tokens = workdir / f"tokens-{shards}-{clients}.txt"
    drop_fixtures.write_tokens(buyers[:total], tokens)
    import httpx

    httpx.get(f"{args.api}/products/{drop.product_id}/stock", timeout=10)  # the shards are loaded before it opens
    start_at = time.monotonic() + (drop.opens_at.timestamp() - time.time()) + 0.05
    say(f"Drop {drop.product_id}: {stock} units over {shards} shard(s), {clients} clients x {args.requests}")
    fired = loadgen.fire_orders(args.api, tokens, drop.product_id, f"s{uuid.uuid4().hex[:8]}", connections=clients,
                                per_connection=args.requests, start_at=start_at,
                                label=f"S={shards} C={clients}")
    accepted = fired.counts.get("202", 0)
    saga = wait_saga(drop.product_id, accepted, args.saga_wait, f"S={shards} C={clients}: saga")
    out_of_stock = sum(n for code, n in fired.counts.items() if "OUT_OF_STOCK" in code)
    return {"shards": shards, "clients": clients, "product_id": drop.product_id, "requests": fired.requests,
            "throughput": round(fired.throughput, 1), "latency_ms": fired.latency_ms, "codes": fired.counts,
            "socket_errors": fired.socket_errors, "saga_settled": saga["settled"],
            "stock": audit(drop.product_id, stock, accepted, out_of_stock)}


def markdown(report: dict[str, Any]) -> str:
    m, p = report["machine"], report["params"]
    lines = [f"# Sharded stock benchmark ({report['finished_at']})", "",
             f"Oversubscribed drops (demand {p['oversubscribe']}x the stock, {p['requests']} requests per client, "
             f"each by its own verified buyer, limit {p['limit']}/member, every payment succeeds) through the HTTP "
             f"path, on {report['masters']} Redis master(s). Machine: {m['cores']} cores ({m['cpu']}), Redis "
             f"{m['redis']}, Python {m['python']}. Load average before: {report['loadavg_before'][0]:.2f}, after: "
             f"{report['loadavg_after'][0]:.2f} (shared cores: figures are noisy).", "",
             "| shards | clients | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | answers | sold / stock "
             "| oversold | stranded |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in report["runs"]:
        lat, st = r["latency_ms"], r["stock"]
        answers = ", ".join(f"{code}: {n:,}" for code, n in sorted(r["codes"].items()))
        lines.append(f"| {r['shards']} | {r['clients']:,} | {r['requests']:,} | **{r['throughput']:,.0f}** | "
                     f"{lat['p50']:,.1f} | {lat['p90']:,.1f} | {lat['p99']:,.1f} | {lat['max']:,.1f} | {answers} | "
                     f"{st['sold']} / {st['stock']} | {st['oversold']} | {st['stranded']} |")
    lines += ["", f"Reproduce: `make up CLUSTER=1 && python -m bench.sharded_drop` (took {report['seconds']} s). "
              f"Plots: {', '.join(report.get('plots', []))}.", ""]
    if report["problems"]:
        lines += ["PROBLEMS:", *[f"- {problem}" for problem in report["problems"]], ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> list[Path]:
    runs = report["runs"]
    categories = [f"{c:,} clients" for c in report["params"]["clients"]]
    series = [f"{s} shard{'s' if s > 1 else ''}" for s in report["params"]["shards"]]

    def value(clients: int, shards: int, pick: Any) -> float | None:
        found = [r for r in runs if r["clients"] == clients and r["shards"] == shards]
        return pick(found[0]) if found else None

    panels = [Bars(title, unit, categories, series,
                   [[value(c, s, pick) for s in report["params"]["shards"]] for c in report["params"]["clients"]])
              for title, unit, pick in (("Throughput", "req/s", lambda r: r["throughput"]),
                                        ("p99 latency", "ms", lambda r: r["latency_ms"]["p99"]))]
    bar_chart(path, panels, "One hot key vs sharded stock (POST /orders through HTTP)",
              f"{report['masters']} Redis master(s), {report['machine']['cores']} shared cores, load "
              f"{report['loadavg_before'][0]:.1f}; {report['finished_at']}")
    return [path]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sharded_drop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="1,4,8", help="comma-separated shard counts (default 1,4,8)")
    parser.add_argument("--clients", default="500,2000", help="comma-separated concurrent clients (default 500,2000)")
    parser.add_argument("--requests", "-R", type=int, default=2, help="requests per client (default 2)")
    parser.add_argument("--oversubscribe", type=int, default=5, help="demand / stock (default 5)")
    parser.add_argument("--limit", type=int, default=2, help="perMemberLimit of the drop (default 2)")
    parser.add_argument("--lead", type=float, default=4.0, help="seconds before the drop opens (clients connect)")
    parser.add_argument("--saga-wait", type=float, default=180.0, help="max seconds for the saga to settle")
    parser.add_argument("--out", type=Path, default=RESULTS / "sharded_drop", help="results path (no suffix)")
    args = parser.parse_args(argv)
    args.shards = [int(s) for s in args.shards.split(",")]
    args.clients = [int(c) for c in args.clients.split(",")]
    if any(not 1 <= s <= 16 for s in args.shards):
        parser.error("--shards: each between 1 and 16")
    return args


def main(argv: list[str] | None = None) -> int:
    from bench.flash_drop import api

    args = parse_args(argv)
    args.api = api()
    started = time.monotonic()
    load_before = loadavg()
    loadgen.require_wrk()
    ensure_stack()
    masters = _cluster_masters()
    if masters == 1:
        say("Note: the stack runs a single Redis (start it with `make up CLUSTER=1` for the 3-master cluster).")
    runs = []
    original = (runtime_env("GOODSDROP_STOCK_STRATEGY"), runtime_env("GOODSDROP_API_WORKERS"), runtime_env(IP_RATE_ENV))
    with tempfile.TemporaryDirectory(prefix="sharded-") as tmp, BenchRun(settle_timeout=args.saga_wait) as bench:
        buyers = bench.buyers(max(args.clients) * args.requests)
        try:
            use_strategy("lua", None)  # the Lua path, with the per-IP bucket off: every client is this machine
            warm_up(bench, buyers, Path(tmp), "lua", 50, 30)
            for clients in args.clients:
                for shards in args.shards:
                    runs.append(run(shards, clients, args, bench, buyers, Path(tmp)))
        finally:
            if (runtime_env("GOODSDROP_STOCK_STRATEGY"), runtime_env("GOODSDROP_API_WORKERS"),
                    runtime_env(IP_RATE_ENV)) != original:
                say("Restoring the runtime's settings ...")
                restart_runtime(*original)
    problems = [f"S={r['shards']} C={r['clients']}: OVERSOLD by {r['stock']['oversold']}" for r in runs
                if r["stock"]["oversold"]]
    problems += [f"S={r['shards']} C={r['clients']}: {r['stock']['stranded']} unit(s) stranded" for r in runs
                 if r["stock"]["stranded"]]
    problems += [f"S={r['shards']} C={r['clients']}: the saga did not settle in time" for r in runs
                 if not r["saga_settled"]]
    report = {"finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "seconds": round(time.monotonic() - started), "masters": masters, "machine": machine_facts(),
              "params": {"shards": args.shards, "clients": args.clients, "requests": args.requests,
                         "oversubscribe": args.oversubscribe, "limit": args.limit},
              "loadavg_before": load_before, "loadavg_after": loadavg(), "runs": runs, "problems": problems}
    write_results(args.out, report, markdown, plot)
    if any(r["stock"]["oversold"] for r in runs):
        say("\n!!! OVERSOLD: more units were sold than the drop had. !!!")
        return 3
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
