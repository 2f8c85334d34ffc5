"""`make top` (`python -m goodsdrop_local top`): the running stack's live figures at the terminal.

Once a second: requests per second and the answers the API gave (by status and error code: every
API worker writes its counts, goodsdrop_local.gateway.AnswerCounts), each Kafka mapping's processed
records, lag per partition and dead letters (the pollers' status, as /health shows them), the live
drop streams of the SSE container, and the CPU each process of the stack used. `--once` prints one
frame (two samples a second apart) and exits; `--seconds N` stops after N seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from goodsdrop_local.processes import children_map, cmdline, cpu_seconds, descendants
from goodsdrop_local.status import RUNTIME_DIR, mapping_rows

CLEAR = "\x1b[H\x1b[2J"


def _role(line: str) -> str:
    for marker, role in (("api_server", "api"), ("kafka_poller", "poller"), ("live_stock", "sse"),
                         ("execution", "lambda env"), ("forkserver", "lambda env"), ("multiprocessing", "lambda env")):
        if marker in line:
            return role
    return "runtime"


def stack_processes() -> dict[str, list[int]]:
    """The stack's processes by name: each server, and the runtime's children by role (api, pollers, sse)."""
    from goodsdrop_local import stack

    kids = children_map()
    groups: dict[str, list[int]] = {}
    for server in stack.SERVERS:
        pid = server.running_pid()
        if pid is not None:
            groups[server.name] = descendants(pid, kids)
    runtime = stack.RUNTIME.running_pid()
    if runtime is not None:
        groups["runtime"] = [runtime]
        for child in kids.get(runtime, []):
            groups.setdefault(_role(cmdline(child)), []).extend(descendants(child, kids))
    return groups


def api_answers() -> tuple[int, dict[str, int]]:
    """Requests and answers of every API worker so far (their status files)."""
    import json

    requests, answers = 0, dict[str, int]()
    for path in sorted((RUNTIME_DIR / "api").glob("worker-*.json")):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        requests += int(state.get("requests", 0))
        for key, n in (state.get("answers") or {}).items():
            answers[key] = answers.get(key, 0) + int(n)
    return requests, answers


def sse_health() -> dict[str, Any]:
    import httpx

    from goodsdrop.settings import settings

    try:
        return httpx.get(f"http://127.0.0.1:{settings.stream_port}/health", timeout=1).json()
    except (httpx.HTTPError, ValueError):
        return {}


@dataclass
class Sample:
    """One reading of the stack's counters."""

    at: float
    requests: int
    answers: dict[str, int]
    cpu: dict[str, float]
    mappings: list[dict[str, Any]] = field(default_factory=list)
    sse: dict[str, Any] = field(default_factory=dict)


def sample(app: Any) -> Sample:
    requests, answers = api_answers()
    cpu = {name: sum(cpu_seconds(p) for p in pids)
           for name, pids in stack_processes().items()}
    return Sample(time.monotonic(), requests, answers, cpu, mapping_rows(app), sse_health())


def frame(before: Sample, now: Sample) -> str:
    """The text of one refresh: rates over the interval between the two samples, totals so far."""
    seconds = max(now.at - before.at, 1e-6)
    lines = [f"GoodsDrop stack - {time.strftime('%H:%M:%S')}   (make top; Ctrl-C quits)", "",
             f"API: {(now.requests - before.requests) / seconds:,.1f} requests/s, {now.requests:,} since the "
             "workers started"]
    lines.append(f"  {'answer':<34} {'per s':>8} {'total':>9}")
    for key in sorted(now.answers, key=lambda k: (-now.answers[k], k)):
        rate = (now.answers[key] - before.answers.get(key, 0)) / seconds
        lines.append(f"  {key:<34} {rate:>8,.1f} {now.answers[key]:>9,}")
    lines += ["", f"  {'Kafka mapping':<28} {'up':<3} {'rec/s':>7} {'processed':>9} {'retried':>7} {'dead':>5}  "
                  "lag per partition (saga lag)"]
    earlier = {row["mapping"]: row for row in before.mappings}
    dead = 0
    for row in now.mappings:
        rate = (row["processed"] - earlier.get(row["mapping"], row)["processed"]) / seconds
        lag = " ".join(f"{name.rsplit('-', 1)[-1]}:{'?' if v is None else v}" for name, v in row["lag"].items()) or "-"
        total_lag = sum(v or 0 for v in row["lag"].values())
        dead += row["dead_lettered"]
        lines.append(f"  {row['mapping']:<28} {'yes' if row['up'] else 'NO':<3} {rate:>7,.1f} {row['processed']:>9,} "
                     f"{row['retried']:>7,} {row['dead_lettered']:>5}  {total_lag:>5} ({lag})")
    lines.append(f"  dead letters so far: {dead} (make dlq lists them)")
    if now.sse:
        lines.append(f"\nSSE container: {now.sse.get('subscribers', 0)} stock stream(s), "
                     f"{now.sse.get('drop_watchers', 0)} drop dashboard(s), {now.sse.get('drop_frames', 0)} drop "
                     f"frame(s) sent, {now.sse.get('published', 0)} stock change(s) fanned out")
    lines += ["", f"  {'process':<14} {'CPU %':>6}"]
    for name in sorted(now.cpu, key=lambda n: -(now.cpu[n] - before.cpu.get(n, now.cpu[n]))):
        used = now.cpu[name] - before.cpu.get(name, now.cpu[name])
        lines.append(f"  {name:<14} {100 * used / seconds:>6.1f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m goodsdrop_local top", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    args = parser.parse_args(argv)
    from goodsdrop_local import stack
    from goodsdrop_local.template import load

    if stack.RUNTIME.running_pid() is None:
        print("The stack is not running (make up starts it).", file=sys.stderr)
        return 1
    app = load()
    before = sample(app)
    ends = time.monotonic() + args.seconds if args.seconds else None
    try:
        while True:
            time.sleep(args.interval)
            now = sample(app)
            text = frame(before, now)
            if args.once:
                print(text, end="")
                return 0
            sys.stdout.write(("" if not sys.stdout.isatty() else CLEAR) + text)
            sys.stdout.flush()
            before = now
            if ends is not None and time.monotonic() >= ends:
                return 0
    except KeyboardInterrupt:
        return 0
