"""Where does one POST /orders spend its CPU? `python -m bench.profile_path [--profile] [-n 3000]`

Runs the local API Gateway in this process (no uvicorn, no sockets on the client side: the same
`Gateway.handle` a uvicorn worker calls) against the running stack's Redis, MySQL and Kafka, and
measures CPU microseconds per request (time.process_time, so other load on the machine hardly
matters) for the whole path and its parts: the runtime (routing, event building, result mapping),
the authorizer, the PlaceOrder function (Powertools resolver + validation) and the domain call
alone. Every order goes to a sold-out drop (a refusal, the flash drop's common case) by a
different buyer from a different source address with its own Idempotency-Key and a token the
authorizer has not verified before, as in a real drop, so the product's order buckets (per member
and per source IP, goodsdrop.admission) stay on and in the measured path, and no request is
turned away by them; one row times the accepted order's whole path (a drop with stock: the claim,
the take, OrderRequested published to Kafka). `--profile` adds a cProfile listing of the path.
Its buyers, drops and orders are removed afterwards (bench.drop_fixtures.BenchRun, once the saga
settled the accepted orders).
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
from bench.procs import per_request, self_detail
from bench.reporting import RESULTS, write_results
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
    parser.add_argument("--accepted", type=int, default=300,
                        help="accepted orders for the accepted path's row (each starts a saga; 0: no row)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile listing of the whole path")
    parser.add_argument("--sort", default="tottime", help="the listing's order (a pstats key: tottime, cumtime)")
    parser.add_argument("--lines", type=int, default=35, help="lines of the listing")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile_path", help="results path (no suffix)")
    args = parser.parse_args()
    with BenchRun(settle_timeout=60 if args.accepted else 0) as run:  # the saga settles the accepted orders
        measure(run, args)


def markdown(report: dict[str, object]) -> str:
    """The figures as a Markdown table."""
    lines = [f"# CPU per POST /orders, in-process ({report['finished_at']})", "",
             f"{report['requests']:,} requests per row ({report['accepted_requests']:,} for the accepted order), "
             "CPU microseconds of this process (time.process_time). Every request of a whole-path row brings a "
             "token the authorizer has not seen (as in the flash drop, where each buyer orders once), unless the "
             f"row says otherwise. Load average (1 min) before: {report['loadavg_before'][0]:.2f}, after: "
             f"{report['loadavg_after'][0]:.2f}.", "", "| part of the path | CPU µs per request |", "|---|---:|"]
    lines += [f"| {name} | {value:,.1f} |" for name, value in report["cpu_us"].items()]
    lines += ["", "Reproduce: `python -m bench.profile_path` (`--profile` adds a cProfile listing)."]
    return "\n".join(lines) + "\n"


class PathProbe:
    """The local API Gateway in this process with a run's buyers: POST /orders through `Gateway.handle`."""

    def __init__(self, run: BenchRun, buyers: int, first: int = 0) -> None:
        from goodsdrop_local.gateway import create_app

        self.run = run
        self.gateway = create_app()
        self.gateway.pool.warm_up(sorted({r.function_id for r in self.gateway.app.routes}))
        self.buyers = run.buyers(first + buyers)
        self.host = f"127.0.0.1:{settings.api_port}"
        self._used = first  # buyers (and their tokens) handed out so far; the first `first` are others'
        self.last_detail: dict[str, float] = {}  # the last whole_path_us: user/sys µs, context switches per request


    def tokens(self, count: int) -> list[str]:
        """Fresh access tokens of `count` buyers not used before in this probe (each orders once)."""
        from goodsdrop.tokens import issue_access_token

        if self._used + count > len(self.buyers):
            self.buyers = self.run.buyers(self._used + count)
        members = self.buyers[self._used:self._used + count]
        self._used += count
        return [issue_access_token(m, "member", True, uuid.uuid4().hex)[0] for m in members]

    def headers(self, token: str) -> dict[str, str]:
        return {"host": self.host, "authorization": f"Bearer {token}", "content-type": "application/json",
                "idempotency-key": uuid.uuid4().hex}

    def order(self, product_id: int, token: str, source: str, expect: int) -> bytes:
        """One POST /orders of one unit of `product_id`, answered `expect` (else AssertionError)."""
        body = json.dumps({"items": [{"productId": str(product_id), "quantity": 1}], "paymentToken": "tok_ok"})
        status, _, answer = self.gateway.handle("POST", "/orders", "", self.headers(token), body.encode(), source)
        assert status == expect, (status, answer)
        return answer

    def whole_path_us(self, product_id: int, n: int, expect: int, *, fresh_tokens: bool = True,
                      offset: int = 0) -> float:
        """CPU µs per POST /orders over `n` requests (after a short warm-up), each by another buyer from
        another source address; `fresh_tokens=False` reuses the warm-up's tokens (the authorizer's
        per-container cache of verified signatures then answers)."""
        warm = min(n, 200)
        tokens = self.tokens(warm + (n if fresh_tokens else 0))
        for i in range(warm):
            self.order(product_id, tokens[i], bench_address(offset + i), expect)
        measured = tokens[warm:] if fresh_tokens else [tokens[i % warm] for i in range(n)]
        detail = self_detail()
        started = time.process_time()
        for i, token in enumerate(measured):
            self.order(product_id, token, bench_address(offset + warm + i), expect)
        spent = (time.process_time() - started) / n * 1e6
        self.last_detail = per_request(detail, self_detail(), n)
        return spent


def sold_out_us(run: BenchRun, n: int = 1000) -> float:
    """CPU µs per sold-out refusal through the whole in-process path (the flash drop reports it beside
    its API workers' CPU per request, measured in the same run)."""
    probe = PathProbe(run, n + 200)
    drop = run.new_drop("[bench] in-process path (sold out)", 0, opens_in=timedelta(seconds=-5), per_member_limit=2)
    return probe.whole_path_us(drop.product_id, n, 409)


def measure(run: BenchRun, args: argparse.Namespace) -> None:
    """Every figure of the table (and the profile), with this run's buyers and drops."""
    started = time.monotonic()

    from goodsdrop.callers import Caller
    from goodsdrop.clients import redis_client
    from goodsdrop.errors import DropError
    from goodsdrop.orders import PlaceOrder, place_order
    from goodsdrop_local.proxy_events import header_pairs, rest_proxy_event

    probe = PathProbe(run, 2 * args.n + args.accepted + 600)
    gateway = probe.gateway
    drop = run.new_drop("[bench] profile (sold out)", 0, opens_in=timedelta(seconds=-5), per_member_limit=2)
    body = json.dumps({"items": [{"productId": str(drop.product_id), "quantity": 1}], "paymentToken": "tok_ok"})
    tokens = probe.tokens(args.n + 200)
    buyers = probe.buyers[probe._used - len(tokens):probe._used]

    route = next(r for r in gateway.app.routes if r.path == "/orders" and r.method == "POST")
    authorizer = gateway.app.authorizers[route.authorizer or ""]
    auth_fn, order_fn = gateway.pool.get(authorizer.function_id), gateway.pool.get(route.function_id)
    event = rest_proxy_event(method="POST", path="/orders", resource="/orders", path_parameters={},
                             multi_query=None, headers=header_pairs(probe.headers(tokens[0])), body=body.encode(),
                             source_ip="127.0.0.1", stage=gateway.app.stage, port=settings.api_port)

    def authorize(i: int) -> object:  # the authorizer's handler alone (tokens seen before: its cache answers)
        request = {"type": "REQUEST", "methodArn": "arn:aws:execute-api:local:000000000000:local/Prod/POST/orders",
                   "resource": "/orders", "path": "/orders", "httpMethod": "POST",
                   "headers": probe.headers(tokens[i % len(tokens)]), "queryStringParameters": None,
                   "pathParameters": None, "requestContext": event["requestContext"]}
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
            place_order(Caller(str(buyers[i % len(buyers)]), "member", True, "", ""), order, uuid.uuid4().hex,
                        bench_address(i))
        except DropError as err:
            return err
        raise AssertionError("a sold-out drop accepted an order")

    def both(i: int) -> object:  # the two handlers one after the other, as a request runs them
        authorize(i)
        return function(i)

    order = PlaceOrder.model_validate_json(body)
    load_before = list(os.getloadavg())
    figures = {"whole path, sold out (gateway.handle)": probe.whole_path_us(drop.product_id, args.n, 409),
               "whole path, sold out, tokens seen before": probe.whole_path_us(drop.product_id, args.n, 409,
                                                                               fresh_tokens=False, offset=args.n),
               "both handlers, no runtime": _cpu_us(both, args.n),
               "authorizer handler alone": _cpu_us(authorize, args.n),
               "PlaceOrder handler alone": _cpu_us(function, args.n),
               "  of which domain place_order()": _cpu_us(domain, args.n)}
    if args.accepted:
        stock = args.accepted + 200
        on_sale = run.new_drop("[bench] profile (accepted)", stock, opens_in=timedelta(seconds=-5),
                               per_member_limit=2)
        figures["whole path, accepted order (202)"] = probe.whole_path_us(on_sale.product_id, args.accepted, 202,
                                                                          offset=3 * args.n)
    # The runtime alone: the same requests with both functions answering at once (canned results).
    auth_fn._handler, order_fn._handler = (lambda e, c: policy), (lambda e, c: refusal)
    figures["runtime alone (functions canned)"] = _cpu_us(
        lambda i: gateway.handle("POST", "/orders", "", probe.headers(tokens[0]), body.encode()), args.n)
    auth_fn._handler = order_fn._handler = None
    r = redis_client()
    figures["one Redis PING round trip (client CPU)"] = _cpu_us(lambda i: r.ping(), args.n)
    report = {"finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "requests": args.n,
              "accepted_requests": args.accepted,
              "cpu_us": {name.strip(): round(value, 1) for name, value in figures.items()},
              "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
              "seconds": round(time.monotonic() - started)}
    write_results(args.out, report, markdown, lambda report, path: [])
    if args.profile:
        fresh = probe.tokens(args.n)
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for i, token in enumerate(fresh):
            probe.order(drop.product_id, token, bench_address(4 * args.n + i), 409)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.lines)
        print(out.getvalue())


if __name__ == "__main__":
    main()
