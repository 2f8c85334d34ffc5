"""How fast is the local API Gateway runtime itself? `python -m bench.runtime_throughput`

Serves tests/fixtures/template.yaml (a trivial echo function behind the same gateway code as the
product) on a spare port with the same uvicorn settings as `make up`, then drives it with wrk
(200 connections, 2 threads, 10 s) and prints a table. Also measures a real product endpoint,
GET /products/{id}/stock (Redis hit), on the running stack if it is up.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from goodsdrop.settings import settings

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    """Run wrk and parse requests/s and latency percentiles (ms)."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50%"), "p90": ms("90%"), "p99": ms("99%"),
            "non2xx": float(errors.group(1)) if errors else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", default=os.environ.get("GOODSDROP_API_WORKERS", "3"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: scripts/install.sh installs it")
    port = _free_port()
    env = {**os.environ, "GOODSDROP_TEMPLATE": str(REPO / "tests" / "fixtures" / "template.yaml"),
           "PYTHONPATH": f"{REPO}/layers/common:{REPO}/local:{REPO}"}
    server = subprocess.Popen([sys.executable, "-m", "goodsdrop_local.api_server", "--port", str(port),
                               "--workers", str(args.workers)], env=env)
    rows = []
    try:
        _wait(port)
        wrk(f"http://127.0.0.1:{port}/things/1", 10, 2)  # warm every worker
        rows.append(("trivial echo function", wrk(f"http://127.0.0.1:{port}/things/1", args.connections,
                                                    args.seconds)))
    finally:
        server.terminate()
        server.wait(10)
    product = f"http://127.0.0.1:{settings.api_port}/products/2/stock"
    try:
        socket.create_connection(("127.0.0.1", settings.api_port), 0.2).close()
        wrk(product, 10, 2)
        rows.append(("GET /products/{id}/stock (Redis hit)", wrk(product, args.connections, args.seconds)))
    except OSError:
        print("(stack not running: product endpoint skipped; `make up` first)")
    print(f"\nLocal runtime throughput - {os.cpu_count()} cores, {args.workers} uvicorn workers, "
          f"wrk -t2 -c{args.connections} -d{args.seconds}s\n")
    print("| endpoint | req/s | p50 ms | p90 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['non2xx']:.0f} |")


if __name__ == "__main__":
    main()
