"""The load generator: wrk, driven with a Lua script, plus a progress bar.

Why wrk: it is a small C program on an epoll loop (Debian package `wrk`) that keeps hundreds of
keep-alive connections busy from 2 threads at a few percent of a core, so on a 2-core machine the
generator does not eat the CPU the system under test needs (an asyncio/httpx client spends tens of
microseconds of Python per request, about as much as the server's own work). Its LuaJIT hooks give
every request its own buyer token and Idempotency-Key and count the answers by status and error
code. Its latency histogram is per request (closed loop: each connection sends its next request when
the answer arrives, like the seed's JMeter threads). The generator's own CPU is measured (rusage of
the wrk process) and reported next to every figure.

A run sends exactly C x R requests: C connections, R requests each (each wrk thread stops after its
share of answers; the driver then interrupts wrk's fixed-length sleep). Throughput is answers / the
time from starting wrk (connects included) until the last answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("wrk_orders.lua")


class Progress:
    """A one-line progress bar on stderr (redrawn in place on a terminal)."""

    def __init__(self, label: str, total: int, width: int = 30) -> None:
        self.label, self.total, self.width = label, max(total, 1), width
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last = -1.0

    def update(self, done: int, note: str = "") -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 5 and done < self.total:
            return
        self._last = now
        filled = int(self.width * min(done, self.total) / self.total)
        line = (f"  {self.label:<26} [{'#' * filled}{'.' * (self.width - filled)}] {done:>7,}/{self.total:,} "
                f"{now - self.started:6.1f} s {note}")
        sys.stderr.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        sys.stderr.flush()

    def finish(self, note: str = "") -> None:
        self.update(self.total, note)
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


@dataclass
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    latency_ms: dict[str, float]
    counts: dict[str, int]
    socket_errors: dict[str, int]
    generator_cpu_s: float
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def generator_cpu_pct(self) -> float:
        """The generator's CPU as a percentage of one core over the run."""
        return 100 * self.generator_cpu_s / self.seconds if self.seconds > 0 else 0.0


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is missing: `make install` (scripts/install.sh) installs the Debian package")
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fire_orders(url: str, tokens_file: Path, product_id: int, tag: str, *, connections: int, per_connection: int,
                threads: int = 2, label: str = "fire", timeout_s: float = 300.0) -> LoadResult:
    """POST /orders, `connections` x `per_connection` times, each request by its own buyer (token line)."""
    wrk = require_wrk()
    threads = max(1, min(threads, connections))
    connections -= connections % threads  # wrk gives every thread connections / threads
    quota = connections // threads * per_connection
    total = quota * threads
    with tempfile.TemporaryDirectory(prefix="flashdrop-") as tmp:
        prefix = f"{tmp}/progress-"
        cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{int(timeout_s)}s", "--timeout", "60s",
               "-s", str(SCRIPT), url, "--", str(tokens_file), str(threads), str(quota), str(product_id), tag, prefix]
        bar = Progress(label, total)
        cpu_before = _children_cpu()
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        finished = None
        while proc.poll() is None:
            done = 0
            for t in range(threads):
                with contextlib.suppress(OSError, ValueError):  # not written yet, or half-written
                    done += int(Path(f"{prefix}{t}").read_text() or 0)
            bar.update(done)
            if done >= total:
                finished = time.monotonic()
                proc.send_signal(signal.SIGINT)  # wrk sleeps for -d; SIGINT ends it now and prints its report
                break
            if time.monotonic() - started > timeout_s + 10:
                proc.kill()
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=30)
        seconds = (finished or time.monotonic()) - started
        generator_cpu = _children_cpu() - cpu_before
        bar.finish(f"{total / seconds:,.0f} req/s" if finished else "(incomplete)")
    return _parse(out, err, seconds, generator_cpu)


def fire_get(url: str, *, connections: int, seconds: float, threads: int = 2, label: str = "GET") -> LoadResult:
    """GET `url` for `seconds` with `connections` keep-alive connections (wrk's plain mode)."""
    wrk = require_wrk()
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "--latency",
           url]
    bar = Progress(label, int(seconds * 10))
    cpu_before = _children_cpu()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        bar.update(int((time.monotonic() - started) * 10))
        time.sleep(0.1)
    out, err = proc.communicate()
    elapsed = time.monotonic() - started
    generator_cpu = _children_cpu() - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {err or out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    run_seconds = _duration(re.search(r"requests in ([\d.]+\w+),", out).group(1))

    def pct(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return _ms(match.group(1), match.group(2)) if match else float("nan")

    mean = re.search(r"Latency\s+([\d.]+)(us|ms|s)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bar.finish(f"{requests / run_seconds:,.0f} req/s")
    return LoadResult(
        requests=requests, seconds=run_seconds,
        latency_ms={"mean": _ms(mean.group(1), mean.group(2)), "p50": pct("50"), "p90": pct("90"), "p99": pct("99"),
                    "max": _ms(mean.group(3), mean.group(4))},
        counts={"non-2xx": int(non2xx.group(1))} if non2xx else {"2xx": requests},
        socket_errors=dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
        if sock else {},
        generator_cpu_s=generator_cpu, raw={"elapsed_s": elapsed})


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _duration(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def _parse(out: str, err: str, seconds: float, generator_cpu: float) -> LoadResult:
    match = re.search(r"^WRK_RESULT (\{.*\})$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk gave no result:\n{out[-2000:]}\n{err[-2000:]}")
    raw = json.loads(match.group(1))
    lat = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}
    counts = dict(sorted(raw["counts"].items(), key=lambda kv: -kv[1]))
    return LoadResult(requests=sum(counts.values()), seconds=seconds, latency_ms=lat, counts=counts,
                      socket_errors={k: v for k, v in raw["errors"].items() if k != "status"},
                      generator_cpu_s=generator_cpu, raw=raw)


def cpu_count() -> int:
    return os.cpu_count() or 1
