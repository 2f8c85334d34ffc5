"""CPU accounting from /proc: how much CPU each part of the stack (and the load generator) spent.

On a shared 2-core machine wall-clock figures are noisy; CPU seconds per request are not, so the
benchmark reports both. `StackCpu` groups the stack's processes (the API workers, the saga's Kafka
pollers, Redis, MariaDB, Kafka) and `snapshot()`/`delta()` measure one phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from goodsdrop_local.processes import TICKS, children_map, cmdline, cpu_seconds, descendants
from goodsdrop_local.processes import stat_fields as _stat


def cpu_detail(pids: list[int]) -> dict[str, float]:
    """These processes' user and system CPU seconds and their voluntary (waiting for I/O: a Redis answer,
    the next request) and involuntary (preempted) context switches so far, summed."""
    totals = {"user_s": 0.0, "sys_s": 0.0, "voluntary": 0.0, "involuntary": 0.0}
    for pid in pids:
        fields = _stat(pid)
        if fields is None:
            continue
        totals["user_s"] += int(fields[11]) / TICKS
        totals["sys_s"] += int(fields[12]) / TICKS
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name == "voluntary_ctxt_switches":
                totals["voluntary"] += int(value)
            elif name == "nonvoluntary_ctxt_switches":
                totals["involuntary"] += int(value)
    return totals


def self_detail() -> dict[str, float]:
    """`cpu_detail` of this process (rusage)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"user_s": usage.ru_utime, "sys_s": usage.ru_stime, "voluntary": float(usage.ru_nvcsw),
            "involuntary": float(usage.ru_nivcsw)}


def per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    """What `cpu_detail` grew by per request: user and system CPU µs, context switches."""
    n = max(requests, 1)
    return {"user_us": round(1e6 * (after["user_s"] - before["user_s"]) / n, 1),
            "sys_us": round(1e6 * (after["sys_s"] - before["sys_s"]) / n, 1),
            "voluntary": round((after["voluntary"] - before["voluntary"]) / n, 2),
            "involuntary": round((after["involuntary"] - before["involuntary"]) / n, 2)}


@dataclass
class StackCpu:
    """The stack's processes, grouped by role (found once; re-found after a runtime restart)."""

    groups: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def find(cls) -> StackCpu:
        from goodsdrop_local import stack

        groups: dict[str, list[int]] = {"api": [], "saga": [], "sse": []}
        kids = children_map()
        runtime = stack.RUNTIME.running_pid()
        if runtime is not None:
            for child in kids.get(runtime, []):
                line = cmdline(child)
                role = "api" if "api_server" in line else "saga" if "kafka_poller" in line else "sse"
                groups[role] += descendants(child, kids)
        for server in stack.SERVERS:
            pid = server.running_pid()
            if pid is not None and server.name != "moto":
                groups[server.name] = descendants(pid, kids)
        return cls(groups)

    def snapshot(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.groups.items()}


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent per group between two snapshots."""
    return {name: round(after[name] - before.get(name, 0.0), 3) for name in after}
