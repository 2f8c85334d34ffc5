"""Where does one POST /orders spend its CPU? `python -m bench.profile_path [--profile] [-n 3000]`

Runs the local API Gateway in this process (no uvicorn, no sockets on the client side: the same
`Gateway.handle` a uvicorn worker calls) against the running stack's Redis, MySQL and Kafka, and
measures CPU microseconds per request (time.process_time, so other load on the machine hardly
matters) for the whole path and its parts: the runtime (routing, event building, result mapping),
the authorizer, the PlaceOrder function (Powertools resolver + validation) and the domain call
alone. Every order goes to a sold-out drop (a refusal, the flash drop's common case) by a
different buyer from a different source address with its own Idempotency-Key, as in a real
drop, so the product's order buckets (per member and per source IP, goodsdrop.admission) stay on
and in the measured path, and no request is turned away by them. `--profile` adds a cProfile
listing of the path. Its buyers and drop are removed afterwards (bench.drop_fixtures.BenchRun).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.drop_fixtures import BenchRun, bench_address
from bench.flash_drop import RESULTS, write_results
from goodsdrop.settings import settings


def _cpu_us(fn: Callable[[int], object], n: int) -> float:
    for i in range(min(n, 200)):  # warm
        fn(i)
    started = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - started) / n * 1e6


class _Context:
    """The bits of a Lambda context the handlers read."""

    function_name = "PlaceOrderFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:PlaceOrderFunction"
    aws_request_id = "profile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--profile", action="store_true", help="print a cProfile listing of the whole path")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile_path", help="results path (no suffix)")
    args = parser.parse_args()
    with BenchRun(settle_timeout=0) as run:  # a sold-out drop: no order ever reaches the saga
        measure(run, args)


def markdown(report: dict[str, object]) -> str:
    """The figures as a Markdown table."""
    lines = [f"# CPU per POST /orders, in-process ({report['finished_at']})", "",
             f"Refused (sold out), {report['requests']:,} requests per row, CPU microseconds of this process "
             f"(time.process_time). Load average (1 min) before: {report['loadavg_before'][0]:.2f}, after: "
             f"{report['loadavg_after'][0]:.2f}.", "", "| part of the path | CPU µs per request |", "|---|---:|"]
    lines += [f"| {name} | {value:,.1f} |" for name, value in report["cpu_us"].items()]
    lines += ["", "Reproduce: `python -m bench.profile_path` (`--profile` adds a cProfile listing)."]
    return "\n".join(lines) + "\n"


def measure(run: BenchRun, args: argparse.Namespace) -> None:
    """Every figure of the table (and the profile), with this run's buyers and drop."""
    started = time.monotonic()

    from goodsdrop.callers import Caller
    from goodsdrop.clients import redis_client
    from goodsdrop.errors import DropError
    from goodsdrop.orders import PlaceOrder, place_order
    from goodsdrop.tokens import issue_access_token
    from goodsdrop_local.gateway import create_app

    gateway = create_app()
    gateway.pool.warm_up(sorted({r.function_id for r in gateway.app.routes}))
    buyers = run.buyers(args.n + 200)
    drop = run.new_drop("[bench] profile (sold out)", 0, opens_in=timedelta(seconds=-5), per_member_limit=2)
    tokens = [issue_access_token(m, "member", True, uuid.uuid4().hex)[0] for m in buyers]
    body = json.dumps({"items": [{"productId": str(drop.product_id), "quantity": 1}], "paymentToken": "tok_ok"})
    host = f"127.0.0.1:{settings.api_port}"

    def headers(i: int) -> dict[str, str]:
        return {"host": host, "authorization": f"Bearer {tokens[i % len(tokens)]}", "content-type": "application/json",
                "idempotency-key": uuid.uuid4().hex}

    def whole(i: int) -> object:
        status, _, answer = gateway.handle("POST", "/orders", "", headers(i), body.encode(), bench_address(i))
        assert status == 409, answer
        return answer

    route = next(r for r in gateway.app.routes if r.path == "/orders" and r.method == "POST")
    authorizer = gateway.app.authorizers[route.authorizer or ""]
    auth_fn, order_fn = gateway.pool.get(authorizer.function_id), gateway.pool.get(route.function_id)
    event = gateway.converter.create_lambda_event("POST", "/orders", headers(0), body.encode())
    gateway._complete_event(event, "POST", "/orders", "/orders", body.encode(), "127.0.0.1")

    def authorize(i: int) -> object:  # the authorizer's handler alone
        request = {"type": "REQUEST", "methodArn": "arn:aws:execute-api:local:000000000000:local/Prod/POST/orders",
                   "resource": "/orders", "path": "/orders", "httpMethod": "POST", "headers": headers(i),
                   "queryStringParameters": None, "pathParameters": None, "requestContext": event["requestContext"],
                   "authorizationToken": ""}
        return auth_fn.handler(request, None)

    policy = authorize(0)
    gateway._authorize(route, event)
    context = dict(event["requestContext"]["authorizer"])

    def function(i: int) -> object:  # PlaceOrder's handler alone (Powertools resolver, validation, domain)
        event["headers"]["idempotency-key"] = uuid.uuid4().hex
        buyer = str(buyers[i % len(buyers)])
        event["requestContext"]["authorizer"] = context | {"memberId": buyer, "principalId": buyer}
        event["requestContext"]["identity"]["sourceIp"] = bench_address(i)
        result = order_fn.handler(event, _Context())
        assert result["statusCode"] == 409, result
        return result

    refusal = function(0)

    def domain(i: int) -> object:  # the domain call alone
        try:
            place_order(Caller(str(buyers[i % len(buyers)]), "member", True, "", ""), order, uuid.uuid4().hex)
        except DropError as err:
            return err
        raise AssertionError("a sold-out drop accepted an order")

    def both(i: int) -> object:  # the two handlers one after the other, as a request runs them
        authorize(i)
        return function(i)

    order = PlaceOrder.model_validate_json(body)
    load_before = list(os.getloadavg())
    figures = {"whole path (gateway.handle)": _cpu_us(whole, args.n),
               "both handlers, no runtime": _cpu_us(both, args.n),
               "authorizer handler alone": _cpu_us(authorize, args.n),
               "PlaceOrder handler alone": _cpu_us(function, args.n),
               "  of which domain place_order()": _cpu_us(domain, args.n)}
    # The runtime alone: the same requests with both functions answering at once (canned results).
    auth_fn._handler, order_fn._handler = (lambda e, c: policy), (lambda e, c: refusal)
    figures["runtime alone (functions canned)"] = _cpu_us(whole, args.n)
    r = redis_client()
    figures["one Redis PING round trip (client CPU)"] = _cpu_us(lambda i: r.ping(), args.n)
    report = {"finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "requests": args.n,
              "cpu_us": {name.strip(): round(value, 1) for name, value in figures.items()},
              "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
              "seconds": round(time.monotonic() - started)}
    write_results(args.out, report, markdown, lambda report, path: [])
    if args.profile:
        auth_fn._handler = order_fn._handler = None
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for i in range(args.n):
            whole(i)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(35)
        print(out.getvalue())


if __name__ == "__main__":
    main()
