"""The local runtime: `python -m goodsdrop_local serve | invoke FN EVENT | top`.

`serve` reads infra/template.yaml and runs it: the API (uvicorn, several worker processes, each
with warm functions), poller processes per Kafka event-source mapping (MinimumPollers), the SSE
container, and the template's schedules. Children that die are restarted, as Lambda replaces
failed pollers. `invoke` runs one function once with an event file, like `sam local invoke`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from goodsdrop.settings import settings
from goodsdrop_local.execution import FunctionError, FunctionPool
from goodsdrop_local.proxy_events import ACCOUNT_ID
from goodsdrop_local.status import STACK_DIR, write_status
from goodsdrop_local.template import REPO_ROOT, App, load

PYTHONPATH = [REPO_ROOT / "layers" / "common", REPO_ROOT / "local", REPO_ROOT]


@dataclass
class Child:
    """A supervised process."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path = REPO_ROOT
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    log: Path = field(default_factory=Path)

    def start(self) -> None:
        self.log = STACK_DIR / "logs" / f"runtime-{self.name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)


def _env(extra_path: list[Path] | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(p) for p in (extra_path or []) + PYTHONPATH]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def children(app: App) -> list[Child]:
    """Every long-running process the template asks for."""
    workers = os.environ.get("GOODSDROP_API_WORKERS", str(max(2, (os.cpu_count() or 2) + 1)))
    procs = [Child("api", [sys.executable, "-m", "goodsdrop_local.api_server", "--port", str(settings.api_port),
                           "--workers", workers], _env())]
    for mapping in app.kafka:
        if not mapping.enabled:
            continue
        # Several pollers of one mapping share its consumer group: Kafka gives each a share of the
        # partitions, so per-partition order is kept while the mapping scales out, as Lambda does.
        for index in range(mapping.pollers):
            procs.append(Child(f"poller-{mapping.name}-{index}", [sys.executable, "-m", "goodsdrop_local.kafka_poller",
                                                                 mapping.name, str(index)], _env()))
    for container in app.containers:
        # The container image runs `python`; locally that is this interpreter (the project's venv).
        command = [sys.executable if c == "python" else c for c in container.command]
        procs.append(Child(f"container-{container.logical_id}", command,
                           _env(container.python_path, **container.environment, HOST="127.0.0.1",
                                PORT=str(settings.stream_port)), cwd=container.working_dir))
    return procs


def scheduled_event(rule: str) -> dict[str, object]:
    """An EventBridge "Scheduled Event", as Lambda receives it."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT_ID, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": settings.aws_region,
            "resources": [f"arn:aws:events:{settings.aws_region}:{ACCOUNT_ID}:rule/{rule}"], "detail": {}}


def serve() -> None:
    """Run the template until SIGTERM/SIGINT; restart children that die."""
    app = load()
    procs = children(app)
    pool = FunctionPool(app.functions)
    due = {s.name: time.monotonic() + s.every_seconds for s in app.schedules}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in procs:
        child.start()
    while not stopping:
        now = time.monotonic()
        for child in procs:
            if child.process is not None and child.process.poll() is not None and now >= child.next_start:
                child.restarts += 1
                child.next_start = now + min(2 ** child.restarts, 30)
                print(f"{child.name} exited ({child.process.returncode}); restarting", file=sys.stderr, flush=True)
                child.start()
        for schedule in app.schedules:
            if now >= due[schedule.name]:
                due[schedule.name] = now + schedule.every_seconds
                try:
                    pool.get(schedule.function_id).invoke(scheduled_event(schedule.name))
                    write_status("schedules", schedule.name, {"state": "ok"})
                except FunctionError as err:
                    write_status("schedules", schedule.name, {"state": "failed", "error": str(err)})
        time.sleep(0.2)
    for child in procs:
        if child.process is not None and child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in procs:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)


def invoke(function_id: str, event_file: str) -> int:
    """Invoke one function once with an event file; print its result as JSON."""
    app = load()
    if function_id not in app.functions:
        print(f"no function {function_id!r}; the template has: {', '.join(sorted(app.functions))}", file=sys.stderr)
        return 2
    event = json.loads(Path(event_file).read_text())
    # Like `sam local invoke`: the function's own output (its logs) goes to stderr, the result to stdout.
    sys.stdout.flush()
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        result = FunctionPool(app.functions).get(function_id).invoke(event)
    except FunctionError as err:
        print(json.dumps({"errorType": err.error_type, "errorMessage": err.error_message}, indent=2), file=result_out)
        return 1
    finally:
        sys.stdout.flush()
    print(json.dumps(result, indent=2, ensure_ascii=False), file=result_out)
    result_out.flush()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        serve()
        return 0
    if argv[:1] == ["invoke"] and len(argv) == 3:
        return invoke(argv[1], argv[2])
    if argv[:1] == ["top"]:
        from goodsdrop_local import top

        return top.main(argv[1:])
    print("usage: python -m goodsdrop_local serve | invoke <FunctionLogicalId> <events/file.json> | top [--once]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
