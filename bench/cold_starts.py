"""Cold starts: each function's init time, and the imports that dominate it.

    python -m bench.cold_starts [--repeat 3] [--functions AuthorizerFunction,PlaceOrderFunction]

For every function of infra/template.yaml: a fresh Python process, started like a Lambda
environment (only the layer on PYTHONPATH, the function's code directory as the working
directory and first on sys.path, the template's environment), imports the handler module and
serves its first event: events/<Function>.json, or for the authorizer an event with a real
access token, so its first call verifies a signature with the key it fetches from SSM. The table
shows the median over `--repeat` processes of the import, the first event and their sum (the
init time; target <= 250 ms), the interpreter's own start beside it, and where the import time
goes: one more process runs under `python -X importtime`, whose self times are summed per
top-level package (and the first project module that pulled each in).

The first events write (sign-ups, products, payments), so they run against a namespace of their
own on the running stack's servers, removed afterwards: a MySQL database `goodsdrop_coldstart_*`
with the schema and the demo data, an empty Redis database number, Kafka topics with a prefix of
their own. Only moto's mailbox keeps the verification mails of the sign-up events. Needs
`make up` (a single Redis; a Redis Cluster has one database only). Results:
bench/results/cold_starts.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql
import redis

from bench.reporting import REPO, RESULTS, ensure_stack, write_results
from goodsdrop.settings import settings
from goodsdrop_local.template import Function, load

TARGET_MS = 250.0
RESULT_MARK = "@@cold-start-result "
TOP_PACKAGES = 12  # packages kept per phase in the results (the rest summed)
PHASE_MARK = "@@cold-start-phase "

# What runs in the fresh process: nothing of the benchmark, only the standard library, then the handler.
CHILD = f"""
import importlib.util, json, os, sys, time
t0, c0 = time.perf_counter(), time.process_time()
spec = json.loads(os.environ.pop("COLD_START_SPEC"))
sys.stderr.write({PHASE_MARK!r} + "import\\n"); sys.stderr.flush()
module_spec = importlib.util.spec_from_file_location("goodsdrop_fn_" + spec["id"], spec["file"])
module = importlib.util.module_from_spec(module_spec)
sys.modules[module_spec.name] = module
module_spec.loader.exec_module(module)
handler = getattr(module, spec["handler"])
t1, c1 = time.perf_counter(), time.process_time()
sys.stderr.write({PHASE_MARK!r} + "first event\\n"); sys.stderr.flush()
with open(spec["event"]) as f:
    event = json.load(f)

class Context:
    function_name = spec["id"]
    function_version = "$LATEST"
    memory_limit_in_mb = spec["memory"]
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:" + spec["id"]
    aws_request_id = "cold-start"
    log_group_name = "/aws/lambda/" + spec["id"]
    log_stream_name = "cold-start"
    def get_remaining_time_in_millis(self):
        return 30000

answer, error = None, ""
try:
    result = handler(event, Context())
except Exception as err:
    result, error = None, type(err).__name__ + ": " + str(err)[:200]
t2, c2 = time.perf_counter(), time.process_time()
if isinstance(result, dict):
    if "statusCode" in result:
        answer = str(result["statusCode"])
    elif "policyDocument" in result:
        answer = "policy: " + result["policyDocument"]["Statement"][0]["Effect"]
    elif "batchItemFailures" in result:
        answer = "%d failed records" % len(result["batchItemFailures"])
elif error == "":
    answer = "returned"
if answer is None and error == "":
    answer = "returned"
sys.stdout.write({RESULT_MARK!r} + json.dumps({{"import_ms": (t1 - t0) * 1000, "first_event_ms": (t2 - t1) * 1000,
    "import_cpu_ms": (c1 - c0) * 1000, "first_event_cpu_ms": (c2 - c1) * 1000,
    "answer": answer, "error": error}}) + "\\n")
sys.stdout.flush()
"""


# ---------------------------------------------------------------------------- the namespace of the first events


class Namespace:
    """A MySQL database, a Redis database and a Kafka topic prefix of the cold starts' own."""

    def __init__(self) -> None:
        if settings.redis_cluster:
            raise SystemExit("bench.cold_starts needs a single Redis (a Redis Cluster has one database only)")
        tag = uuid.uuid4().hex[:8]
        self.database = f"{settings.mysql_database}_coldstart_{tag}"
        self.prefix = f"coldstart-{tag}."
        self.redis_db = self._empty_redis_db()
        base = settings.redis_url.rsplit("/", 1)[0]
        self.env = {"GOODSDROP_MYSQL_DATABASE": self.database, "GOODSDROP_TOPIC_PREFIX": self.prefix,
                    "GOODSDROP_REDIS_URL": f"{base}/{self.redis_db}"}

    @staticmethod
    def _empty_redis_db() -> int:
        base = settings.redis_url.rsplit("/", 1)[0]
        for db in range(15, 0, -1):
            if redis.Redis.from_url(f"{base}/{db}").dbsize() == 0:
                return db
        raise SystemExit("no empty Redis database (1..15) for the cold starts' first events")

    def _mysql(self) -> pymysql.connections.Connection:
        return pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user=settings.mysql_user,
                               password=settings.mysql_password, autocommit=True)

    def create(self) -> None:
        """The schema, topics, AWS resources and demo data (goodsdrop_local.bootstrap) in the namespace."""
        with self._mysql() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        subprocess.run([sys.executable, "-m", "goodsdrop_local.bootstrap"], check=True, timeout=300,
                       env={**os.environ, **self.env, "PYTHONPATH": _repo_path()}, stdout=subprocess.DEVNULL)

    def remove(self) -> None:
        with self._mysql() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
        redis.Redis.from_url(self.env["GOODSDROP_REDIS_URL"]).flushdb()
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="cold-starts")
        try:
            mine = [t for t in admin.list_topics() if t.startswith(self.prefix)]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()


def _repo_path() -> str:
    return os.pathsep.join(str(REPO / p) for p in ("layers/common", "local", "."))


# ---------------------------------------------------------------------------- one fresh process


def _event_file(fn: Function, workdir: Path) -> Path:
    """events/<Function>.json, or for the authorizer one with a real token (its first call verifies it)."""
    sample = REPO / "events" / f"{fn.logical_id}.json"
    if fn.handler != "authorizer.handler":
        return sample
    from goodsdrop.tokens import issue_access_token

    event = json.loads(sample.read_text())
    event["headers"]["authorization"] = f"Bearer {issue_access_token(2, 'member', True, uuid.uuid4().hex)[0]}"
    built = workdir / f"{fn.logical_id}.json"
    built.write_text(json.dumps(event))
    return built


def _child_env(fn: Function, namespace: Namespace, event: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ") or k.startswith("GOODSDROP_")
            or k.startswith("AWS_")}
    return {**keep, **fn.environment, **namespace.env, "PYTHONPATH": os.pathsep.join(map(str, fn.layer_dirs)),
            "COLD_START_SPEC": json.dumps({"id": fn.logical_id, "file": str(fn.module_file),
                                           "handler": fn.handler_name, "event": str(event), "memory": fn.memory})}


def run_once(fn: Function, namespace: Namespace, event: Path, importtime: bool = False) -> dict[str, Any]:
    """One fresh process: import the handler, serve the event; its timings (and import times if asked)."""
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", CHILD]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=fn.code_dir, env=_child_env(fn, namespace, event), capture_output=True, text=True,
                          timeout=120)
    wall_ms = (time.perf_counter() - started) * 1000
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)), None)
    if line is None:
        raise RuntimeError(f"{fn.logical_id}: no result (exit {done.returncode}):\n{done.stderr[-2000:]}")
    result = json.loads(line.removeprefix(RESULT_MARK)) | {"process_ms": wall_ms}
    if importtime:
        result["imports"] = parse_importtime(done.stderr)
    return result


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def parse_importtime(stderr: str) -> dict[str, dict[str, Any]]:
    """`-X importtime` output per phase ("import", "first event"): ms of self time per top-level package,
    and for each package the module that pulled in most of it (its nearest importer from another package)."""
    phases: dict[str, dict[str, Any]] = {}
    phase = None
    # importtime prints a module after its children: collect one top-level import's block, then walk it.
    block: list[tuple[int, str, int]] = []
    for line in stderr.splitlines():
        if line.startswith(PHASE_MARK):
            phase = line.removeprefix(PHASE_MARK).strip()
            phases[phase] = {"self_ms": defaultdict(float), "importers": defaultdict(lambda: defaultdict(float))}
            continue
        match = _IMPORT_LINE.match(line)
        if phase is None or match is None:
            continue
        self_us, depth, name = int(match.group(1)), len(match.group(3)) // 2, match.group(4)
        block.append((depth, name, self_us))
        if depth == 0:
            _account(phases[phase], block)
            block = []
    report: dict[str, dict[str, Any]] = {}
    for name, data in phases.items():
        ranked = sorted(data["self_ms"].items(), key=lambda kv: -kv[1])
        top = ranked[:TOP_PACKAGES]
        report[name] = {"self_ms": {k: round(v, 1) for k, v in top},
                        "other_packages_ms": round(sum(v for _, v in ranked[TOP_PACKAGES:]), 1),
                        "via": {package: max(data["importers"][package], key=data["importers"][package].get)
                                for package, _ in top}}
    return report


def _account(phase: dict[str, Any], block: list[tuple[int, str, int]]) -> None:
    """Add one top-level import's block (children first, the top last) to the phase's sums."""
    parents: dict[int, str] = {}
    for depth, name, self_us in reversed(block):  # the top first: a line's ancestors come before it
        parents[depth] = name
        package = name.split(".")[0]
        phase["self_ms"][package] += self_us / 1000
        importer = next((parents[d] for d in range(depth - 1, -1, -1) if parents[d].split(".")[0] != package), name)
        phase["importers"][package][importer] += self_us / 1000


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def measure(fn: Function, namespace: Namespace, event: Path, repeat: int) -> dict[str, Any]:
    """`repeat` timed processes (medians) and one under -X importtime (where the import time goes)."""
    runs = [run_once(fn, namespace, event) for _ in range(repeat)]
    traced = run_once(fn, namespace, event, importtime=True)
    import_ms = _median([r["import_ms"] for r in runs])
    first_ms = _median([r["first_event_ms"] for r in runs])
    cpu_ms = _median([r["import_cpu_ms"] + r["first_event_cpu_ms"] for r in runs])
    return {"function": fn.logical_id, "handler": f"{fn.code_dir.name}/{fn.handler}", "import_ms": import_ms,
            "first_event_ms": first_ms, "init_ms": round(import_ms + first_ms, 1), "init_cpu_ms": cpu_ms,
            "process_ms": _median([r["process_ms"] for r in runs]), "answer": runs[-1]["answer"],
            "error": runs[-1]["error"], "runs": [{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}
                                                 for r in runs],
            "imports": traced["imports"]}


def interpreter_start_ms(repeat: int = 5) -> float:
    """The median wall time of `python -c pass`: the interpreter's own start, before any init code."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env={"PATH": os.environ.get("PATH", "")})
        times.append((time.perf_counter() - started) * 1000)
    return _median(times)


# ---------------------------------------------------------------------------- report


def top_imports(row: dict[str, Any], phase: str = "import", count: int = 3) -> str:
    data = row["imports"].get(phase, {"self_ms": {}, "via": {}})
    items = list(data["self_ms"].items())[:count]
    def via(name: str) -> str:  # the importer, unless the package imported itself (a top-level import)
        importer = data["via"].get(name, "")
        return f" (via {importer})" if importer and importer.split(".")[0] != name else ""

    return ", ".join(f"{name} {ms:,.0f}{via(name)}" for name, ms in items)


def markdown(report: dict[str, Any]) -> str:
    rows = report["functions"]
    met = sum(1 for r in rows if r["init_ms"] <= TARGET_MS)
    lines = [f"# Cold starts ({report['finished_at']})", "",
             f"Each function in a fresh Python {report['python']} process (the layer on PYTHONPATH, the template's "
             f"environment), median of {report['repeat']} processes: the handler module's import, its first event, "
             f"and init = both (target ≤ {TARGET_MS:.0f} ms: met by {met} of {len(rows)}), with the CPU time init "
             "took in that process (steadier than wall time when the cores are shared). The interpreter's own start "
             f"(`python -c pass`) adds {report['interpreter_start_ms']:.0f} ms before any of it. Imports that "
             "dominate: self time per top-level package under `python -X importtime` (one more process; it runs "
             "slower than the timed ones), with the module that pulled in most of it. Load average (1 min) "
             f"before: {report['loadavg_before'][0]:.2f}, after: {report['loadavg_after'][0]:.2f} (shared cores).", "",
             "| function | import ms | first event ms | init ms | ≤ 250 | init CPU ms | first answer "
             "| imports that dominate (ms) | imported during the first event (ms) |",
             "|---|---:|---:|---:|:---:|---:|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["init_ms"]):
        answer = r["answer"] if not r["error"] else f"raised {r['error'][:60]}"
        lines.append(f"| {r['function']} | {r['import_ms']:,.0f} | {r['first_event_ms']:,.0f} | "
                     f"**{r['init_ms']:,.0f}** | {'yes' if r['init_ms'] <= TARGET_MS else 'NO'} | "
                     f"{r['init_cpu_ms']:,.0f} | {answer} | "
                     f"{top_imports(r)} | "
                     f"{top_imports(r, 'first event', 2) or '-'} |")
    lines += ["", f"Reproduce: `python -m bench.cold_starts` (took {report['seconds']} s). "
                  f"Plot: {', '.join(report.get('plots', []))}."]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> list[Path]:
    from bench.plots import stacked_barh

    rows = sorted(report["functions"], key=lambda r: r["init_ms"])
    stacked_barh(path, [r["function"].removesuffix("Function") for r in rows],
                 {"import": [r["import_ms"] for r in rows], "first event": [r["first_event_ms"] for r in rows]},
                 "ms", TARGET_MS, f"target {TARGET_MS:.0f} ms", "Cold start per function: import + first event",
                 f"median of {report['repeat']} fresh processes; interpreter start "
                 f"{report['interpreter_start_ms']:.0f} ms not included; load {report['loadavg_before'][0]:.1f}; "
                 f"{report['finished_at']}")
    return [path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_starts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed fresh processes per function (default 3)")
    parser.add_argument("--functions", default="", help="comma-separated logical ids (default: every function)")
    parser.add_argument("--out", type=Path, default=RESULTS / "cold_starts", help="results path (no suffix)")
    args = parser.parse_args(argv)
    started, load_before = time.monotonic(), list(os.getloadavg())
    ensure_stack()
    functions = load().functions
    chosen = [f.strip() for f in args.functions.split(",") if f.strip()] or list(functions)
    unknown = [f for f in chosen if f not in functions]
    if unknown:
        parser.error(f"no function {', '.join(unknown)} in the template")
    from bench.loadgen import Phases

    phases = Phases(["namespace for the first events", *chosen, "remove the namespace"])
    namespace = Namespace()
    rows = []
    try:
        with phases.phase("namespace for the first events"):
            namespace.create()
        start_ms = interpreter_start_ms()
        with tempfile.TemporaryDirectory(prefix="coldstarts-") as tmp:
            for logical_id in chosen:
                with phases.phase(logical_id):
                    fn = functions[logical_id]
                    rows.append(measure(fn, namespace, _event_file(fn, Path(tmp)), args.repeat))
                    print(f"  init {rows[-1]['init_ms']:,.0f} ms (import {rows[-1]['import_ms']:,.0f}, first event "
                          f"{rows[-1]['first_event_ms']:,.0f}): {top_imports(rows[-1])}", file=sys.stderr)
    finally:
        with phases.phase("remove the namespace"):
            namespace.remove()
    report = {"finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "python": sys.version.split()[0],
              "repeat": args.repeat, "interpreter_start_ms": start_ms, "functions": rows,
              "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
              "seconds": round(time.monotonic() - started)}
    write_results(args.out, report, markdown, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
