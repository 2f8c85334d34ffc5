"""The load generator: wrk, driven with a Lua script, plus a progress bar.

Why wrk: it is a small C program on epoll loops (Debian package `wrk`) that keeps hundreds of
keep-alive connections busy at a few percent of a core, so on a 2-core machine the
generator does not eat the CPU the system under test needs (an asyncio/httpx client spends tens of
microseconds of Python per request, about as much as the server's own work). Its LuaJIT hooks give
every request its own buyer token and Idempotency-Key and count the answers by status and error
code. Its latency histogram is per request (closed loop: each connection sends its next request when
the answer arrives, like the seed's JMeter threads). The generator's own CPU is measured (rusage of
the wrk process) and reported next to every figure.

A drop sends exactly C x R requests: C clients (one wrk thread and one keep-alive connection each),
R requests each, one after the other, like the seed's JMeter threads; all connect first and send
their first request at the same instant (the drop's opening). Latencies are per request, timed in
the script (wrk's own histogram is "corrected" for coordinated omission, see wrk_orders.lua).
Throughput is answers / the time from the first request sent to the last answer received.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import cpu_seconds

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


class Phases:
    """The phases of a benchmark run as an overall progress bar on stderr.

    One line when a phase starts (`[###.......] 3/9 MySQL row lock drop ...`) and one when it ends
    (with its time and the run's so far), on a terminal and in a log file alike: nothing is redrawn
    in place, so piping `make bench` to a file or CI shows the same progress. Phases not announced
    up front are counted in as they come.
    """

    def __init__(self, names: list[str], width: int = 20) -> None:
        self.names, self.width = list(names), width
        self.done = 0
        self.started = time.monotonic()

    def _bar(self, position: int) -> str:
        total = max(len(self.names), position, 1)
        filled = int(self.width * position / total)
        return f"[{'#' * filled}{'.' * (self.width - filled)}] {position}/{total}"

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Announce `name`, run the body, report how long it took (also when it fails)."""
        if name not in self.names[self.done:]:
            self.names.insert(self.done, name)
        position = self.done + 1
        sys.stderr.write(f"\n{self._bar(self.done)} {name} ...\n")
        sys.stderr.flush()
        began = time.monotonic()
        outcome = "FAILED"
        try:
            yield
            outcome = "done"
        finally:
            self.done = position
            sys.stderr.write(f"{self._bar(position)} {name}: {outcome} in {time.monotonic() - began:,.1f} s "
                             f"(run {time.monotonic() - self.started:,.0f} s)\n")
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
                start_at: float | None = None, label: str = "fire", timeout_s: float = 300.0,
                on_start: Callable[[], object] | None = None, on_end: Callable[[], object] | None = None) -> LoadResult:
    """POST /orders from `connections` clients, `per_connection` requests each, each by its own buyer (token line).

    One wrk thread per client (one keep-alive connection each, like JMeter's threads). With `start_at`
    (a time.monotonic() value) every client connects first and sends its first request then.
    `on_start` / `on_end` run when the first request goes out and when the last answer is in.
    """
    wrk = require_wrk()
    total = connections * per_connection
    with tempfile.TemporaryDirectory(prefix="flashdrop-") as tmp:
        progress = Path(tmp) / "progress"
        progress.touch()
        cmd = [wrk, f"-t{connections}", f"-c{connections}", f"-d{int(timeout_s)}s", "--timeout", "30s",
               "-s", str(SCRIPT), url, "--", str(per_connection), str(product_id), tag, str(progress)]
        env = {**os.environ, "FLASHDROP_TOKENS": str(tokens_file), "FLASHDROP_PER_CLIENT": str(per_connection)}
        if start_at is not None:
            env["FLASHDROP_START_US"] = str(int(start_at * 1_000_000))
        bar = Progress(label, total)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        finished = None
        cpu_at_start: float | None = None  # the generator's CPU from the first request on
        cpu_at_end = 0.0
        while proc.poll() is None:
            if cpu_at_start is None and time.monotonic() >= (start_at or started):
                cpu_at_start = cpu_seconds(proc.pid)
                if on_start is not None:
                    on_start()
            done = progress.stat().st_size  # one byte per answer
            bar.update(done)
            if done >= total:
                finished = time.monotonic()
                cpu_at_end = cpu_seconds(proc.pid)
                if on_end is not None:
                    on_end()
                proc.send_signal(signal.SIGINT)  # wrk sleeps for -d; SIGINT ends it now and prints its report
                break
            if time.monotonic() - started > timeout_s + 10:
                proc.kill()
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=60)
        wall = (finished or time.monotonic()) - max(started, start_at or started)
    result = _parse(out, err, max(cpu_at_end - (cpu_at_start or 0.0), 0.0))
    result.raw["wall_s"] = round(wall, 3)
    result.raw["lead_s"] = round(start_at - started, 2) if start_at is not None else None  # time to connect first
    bar.finish(f"{result.throughput:,.0f} req/s" if finished else "(incomplete)")
    return result


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


def _parse(out: str, err: str, generator_cpu: float) -> LoadResult:
    match = re.search(r"^WRK_RESULT (\{.*\})$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk gave no result:\n{out[-2000:]}\n{err[-2000:]}")
    raw = json.loads(match.group(1))
    lat = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}
    counts = dict(sorted(raw["counts"].items(), key=lambda kv: -kv[1]))
    # The throughput window: from the first request sent to the last answer received.
    return LoadResult(requests=sum(counts.values()), seconds=raw["window_us"] / 1e6, latency_ms=lat, counts=counts,
                      socket_errors={k: v for k, v in raw["errors"].items() if k != "status"},
                      generator_cpu_s=generator_cpu, raw=raw)


def cpu_count() -> int:
    return os.cpu_count() or 1
