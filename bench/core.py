"""The reservation core without HTTP, and redis-benchmark running the same script: the ceiling.

`reservation_core` builds each call exactly as the product did before sharded stock
(`bench.legacy_reserve.script_call`: the same KEYS and ARGV for a one-line order by a new buyer,
with its own Idempotency-Key) and runs the single-script reservation
(`bench/legacy_reserve_order.lua`; the product now runs a claim and per-shard takes, timed by
`bench.reserve_steps`) by EVALSHA from an asyncio client, several
pipelines in flight, parsing every answer with the product's `_parse`. `redis_benchmark` runs the
same script with the same arguments from redis-benchmark (C), a random member, order and key per
call (`__rand_int__`). Both sell a drop of `stock` units to many more buyers, so, like the real
drop, most calls are refusals after the first `stock`.

Every key lives under `bench:` (the product's key names with a prefix: the hash tags still hold),
so nothing here touches the product's data or its reservation-expiry index; the records get a
short TTL and the keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis

from bench.legacy_reserve import parse as _parse
from bench.legacy_reserve import script_call as _script_call
from bench.legacy_reserve import source as _legacy_source
from goodsdrop import keys
from goodsdrop.clock import now_ms
from goodsdrop.ids import new_ulid
from goodsdrop.reservations import Line, Reservation, ReserveResult, Terms
from goodsdrop.settings import settings

BENCH_TTL_SECONDS = 300
TTL_ARGS = (6, 7)  # ARGV[7] idempotency ttl and ARGV[8] order record ttl, 0-based in the args list
PRICE = 39_000


@dataclass
class CoreResult:
    """Calls per second, per-call latency and what the script answered."""

    name: str
    calls: int
    seconds: float
    latency_ms: dict[str, float]
    outcomes: dict[str, int]
    stock: int
    reserved: int
    available: int
    client_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def oversold(self) -> int:
        return max(0, self.reserved - self.stock, -self.available, self.outcomes.get("RESERVED", 0) - self.stock)


def _prefixed(tag: str, names: list[str]) -> list[str]:
    return [f"bench:{tag}:{name}" for name in names]


def _call(tag: str, product_id: int, i: int, limit: int | None, now: int) -> tuple[list[str], list[Any]]:
    res = Reservation(new_ulid(now), str(i), [Line(product_id, 1, PRICE)], [Terms(limit, None)],
                      "f" * 40, f"{i:040x}", now, now + 600_000)
    script_keys, args = _script_call(res)
    for position in TTL_ARGS:
        args[position] = BENCH_TTL_SECONDS
    return _prefixed(tag, script_keys), args


def _stock_key(tag: str, product_id: int) -> str:
    return _prefixed(tag, [keys.stock(product_id)])[0]


def _pct(sorted_ms: list[float], p: float) -> float:
    return round(sorted_ms[min(len(sorted_ms) - 1, int(p / 100 * len(sorted_ms)))], 3) if sorted_ms else 0.0


def _redis_cpu() -> float:
    info = redis.Redis.from_url(settings.redis_url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def cleanup(tag: str) -> int:
    """Delete every key of one benchmark tag; returns how many."""
    r = redis.Redis.from_url(settings.redis_url)
    removed = 0
    batch: list[bytes] = []
    for key in r.scan_iter(match=f"bench:{tag}:*", count=2000):
        batch.append(key)
        if len(batch) >= 2000:
            removed += r.unlink(*batch)
            batch = []
    if batch:
        removed += r.unlink(*batch)
    return removed


class _Pipelined(asyncio.Protocol):
    """One Redis connection that sends a batch of packed commands and collects the batch's replies."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        self.transport: asyncio.Transport | None = None
        self.wanted = 0
        self.replies: list[Any] = []
        self.done: asyncio.Future[list[Any]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.replies.append(reply)
        if len(self.replies) >= self.wanted and self.done is not None and not self.done.done():
            self.done.set_result(self.replies)

    async def round_trip(self, packed: bytes, count: int) -> list[Any]:
        assert self.transport is not None
        self.wanted, self.replies = count, []
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(packed)
        return await self.done


async def _core(tag: str, stock: int, calls: int, connections: int, pipeline: int, limit: int | None,
                progress: Any) -> CoreResult:
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    sha = r.script_load(_legacy_source())
    product_id = 9_000_000_000 + os.getpid()
    r.hset(_stock_key(tag, product_id), mapping={"available": stock, "reserved": 0, "version": 0})
    loop = asyncio.get_running_loop()
    links = [(await loop.create_connection(_Pipelined, "127.0.0.1", settings.redis_port))[1]
             for _ in range(connections)]
    # The calls are built (by the product's own builder) and packed before the clock starts, as
    # redis-benchmark has its command ready: the rate is sending, the script and parsing the answers.
    building = time.perf_counter()
    now = now_ms()
    batches = []
    for start in range(0, calls, pipeline):
        packed = []
        for i in range(start, min(start + pipeline, calls)):
            script_keys, args = _call(tag, product_id, i, limit, now)
            packed.append(hiredis.pack_command(("EVALSHA", sha, len(script_keys), *script_keys, *args)))
        batches.append((b"".join(packed), len(packed)))
    build_us = (time.perf_counter() - building) / max(calls, 1) * 1e6
    batches.reverse()
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    answered = 0

    async def worker(link: _Pipelined) -> None:
        nonlocal answered
        while batches:
            packed, count = batches.pop()
            sent = time.perf_counter()
            answers = await link.round_trip(packed, count)
            took = (time.perf_counter() - sent) * 1000
            for answer in answers:
                if isinstance(answer, hiredis.ReplyError):
                    outcomes[f"error: {answer}"] += 1
                    continue
                parsed = _parse(answer)
                kind = parsed.kind if isinstance(parsed, ReserveResult) else "LOAD"
                outcomes[kind if kind != "REFUSED" else parsed.outcome["code"]] += 1
            latencies.extend([took] * len(answers))
            answered += len(answers)
            progress(answered)

    redis_cpu = _redis_cpu()
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(link) for link in links))
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - cpu
    redis_cpu = _redis_cpu() - redis_cpu
    for link in links:
        if link.transport is not None:
            link.transport.close()
    available, reserved = r.hmget(_stock_key(tag, product_id), "available", "reserved")
    latencies.sort()
    return CoreResult("reservation core (Python, EVALSHA)", calls, seconds,
                      {"p50": _pct(latencies, 50), "p90": _pct(latencies, 90), "p99": _pct(latencies, 99),
                       "max": round(latencies[-1], 3) if latencies else 0.0},
                      dict(outcomes.most_common()), stock, int(reserved), int(available), client_cpu, redis_cpu,
                      {"connections": connections, "pipeline": pipeline, "build_us_per_call": round(build_us, 1)})


def reservation_core(stock: int, calls: int, *, connections: int = 4, pipeline: int = 32, limit: int | None = 2,
                     progress: Any = lambda done: None) -> CoreResult:
    """EVALSHA of the reservation script from Python, `calls` times, no HTTP."""
    tag = f"core{os.getpid()}"
    try:
        try:
            import uvloop

            return uvloop.run(_core(tag, stock, calls, connections, pipeline, limit, progress))
        except ImportError:
            return asyncio.run(_core(tag, stock, calls, connections, pipeline, limit, progress))
    finally:
        cleanup(tag)


def redis_benchmark(stock: int, calls: int, *, connections: int = 4, pipeline: int = 32,
                    limit: int | None = 2) -> CoreResult:
    """redis-benchmark running EVALSHA of the same script with the same arguments (a new buyer per call)."""
    binary = shutil.which("redis-benchmark")
    if not binary:
        raise SystemExit("redis-benchmark is missing (Debian package redis-tools)")
    tag = f"rb{os.getpid()}"
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    sha = r.script_load(_legacy_source())
    product_id = 9_100_000_000 + os.getpid()
    now = now_ms()
    res = Reservation("__rand_int__", "__rand_int__", [Line(product_id, 1, PRICE)], [Terms(limit, None)],
                      "f" * 40, "__rand_int__", now, now + 600_000)
    script_keys, args = _script_call(res)
    for position in TTL_ARGS:
        args[position] = BENCH_TTL_SECONDS
    script_keys = _prefixed(tag, script_keys)
    r.hset(_stock_key(tag, product_id), mapping={"available": stock, "reserved": 0, "version": 0})
    cmd = [binary, "-h", "127.0.0.1", "-p", str(settings.redis_port), "-c", str(connections), "-n", str(calls),
           "-P", str(pipeline), "-r", "2000000000", "--csv",
           "EVALSHA", sha, str(len(script_keys)), *script_keys, *(str(a) for a in args)]
    try:
        redis_cpu = _redis_cpu()
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
        seconds = time.perf_counter() - started
        redis_cpu = _redis_cpu() - redis_cpu
        # The CSV's first column is the command itself (with unescaped quotes): read the 7 figures at the end.
        figures = re.search(r'((?:,"[\d.]+"){7})\s*$', out.strip())
        if figures is None:
            raise RuntimeError(f"redis-benchmark gave no figures:\n{out[-1000:]}")
        row = dict(zip(("rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms", "p95_latency_ms",
                        "p99_latency_ms", "max_latency_ms"), re.findall(r'[\d.]+', figures.group(1)), strict=True))
        available, reserved = r.hmget(_stock_key(tag, product_id), "available", "reserved")
    finally:
        cleanup(tag)
    rps = float(row["rps"])
    return CoreResult("redis-benchmark EVALSHA (C)", calls, calls / rps,
                      {"mean": float(row["avg_latency_ms"]), "p50": float(row["p50_latency_ms"]),
                       "p90": float("nan"), "p99": float(row["p99_latency_ms"]), "max": float(row["max_latency_ms"])},
                      {"RESERVED": int(reserved), "refused or replayed": calls - int(reserved)}, stock, int(reserved),
                      int(available), 0.0, redis_cpu,
                      {"connections": connections, "pipeline": pipeline, "wall_s": round(seconds, 3)})
