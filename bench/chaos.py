"""Chaos drills: a live, oversubscribed drop while a server or a consumer fails; then the invariants.

    python -m bench.chaos              # the five drills, short form (what CI runs)
    python -m bench.chaos --long       # bigger drops, longer outages, repeated kills
    python -m bench.chaos --drill kafka --drill redis   # some of them

Every drill runs a drop oversubscribed 20x (buyers x attempts = 20 x stock, perMemberLimit 2,
payment tokens mixed: tok_ok, tok_declined and tok_error, which fails twice before it succeeds)
through HTTP on the running stack, in three waves; the fault starts after the first wave and
ends during the second. Buyers behave like real clients: a 503 is retried with the same
Idempotency-Key after its Retry-After. When the saga has settled, `bench.invariants.check`
states the verdict. The drills stop and start the stack's own servers (goodsdrop_local.stack):
run them on a stack you can spare (`make up` first, or `make test`'s test stack).

Drills:
- poller:     the payments consumer is SIGKILLed mid-batch (the runtime's supervisor starts a new
              one) and the confirmation step's process dies right after committing (before it
              published) for one product;
- kafka:      the broker is stopped for a few seconds, then started again;
- redis:      Redis is stopped and restarted empty (every stock key, hold and counter lost; the
              mock payment processor's books, which are not ours, are kept);
- mariadb:    MariaDB is stopped for a few seconds;
- duplicates: every saga event is delivered a second time, after a random delay (so some arrive
              out of order, after later events of the same order);
- poison:     during a drop oversubscribed 10x, 5 bad records of each kind (bench.poison: undecodable,
              not an envelope, unknown type, unknown version, bad payload, another consumer's event,
              an order or product that does not exist) go to every consumed topic on every
              partition; every real order must settle and every bad record reach the dead-letter
              topic, with its reason, without a retry. Figures: reserve→CONFIRMED p50/p99 of the
              drop's orders, and how long each bad record took to reach the dead-letter topic.

Every drill also reports the reserve→CONFIRMED latency of its confirmed orders (p50 / p99: the
reservation's `reserved_at` to the order's `confirmed_at`). Targets are figures, not assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import shutil
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.invariants import Report, check, wait_settled
from bench.poison import CONSUMED, Written, write_bad_records
from goodsdrop import keys, topics
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.saga import STOCK_PERSISTENCE
from goodsdrop.settings import settings
from goodsdrop_local import stack as local_stack
from goodsdrop_local.dlq import DeadLetterTopic
from goodsdrop_local.status import read_status
from tests.support import faults
from tests.support.accounts import Account, new_account

API = f"http://127.0.0.1:{settings.api_port}"
TOKENS = ["tok_ok"] * 6 + ["tok_declined"] * 3 + ["tok_error"]
OVERSUBSCRIPTION = 20
LIMIT = 2
THREADS = 12
# A buyer retries a 503 (same key) for this long after its first attempt, and while the fault lasts
# until this long after it ended: a stopped server can take a minute to come back on a loaded
# machine, and a buyer giving up during the outage measures the buyer, not the saga.
CLIENT_PATIENCE_SECONDS = 60.0
SAGA_TOPICS = (topics.ORDER_REQUESTED, topics.PAYMENT_SUCCEEDED, topics.ORDER_PLACED, topics.ORDER_FAILURES)
SAGA_GROUPS = {topics.ORDER_REQUESTED: "goodsdrop-payments", topics.PAYMENT_SUCCEEDED: "goodsdrop-order-persistence",
               topics.ORDER_PLACED: "goodsdrop-stock-persistence", topics.ORDER_FAILURES: "goodsdrop-compensation"}
DUPLICATE_HEADER = "chaos-duplicate"


@dataclass(frozen=True)
class Size:
    """How big a drill is."""

    stock: int = 10
    outage_seconds: float = 3.0
    settle_seconds: float = 120.0
    kills: int = 1
    poison_per_kind: int = 5  # bad records of each kind per partition of each consumed topic (poison drill)


SHORT, LONG = Size(), Size(stock=60, outage_seconds=10.0, settle_seconds=300.0, kills=3)


# ------------------------------------------------------------------------------------------- the drop


@dataclass
class Attempt:
    buyer: Account
    token: str
    product: int
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Outcome:
    """A buyer's final answer, and how many 503s (clean refusals) it saw on the way."""

    status: int
    code: str
    order_id: str = ""
    unavailable: int = 0
    token: str = ""


class Drop:
    """A product on sale and its crowd of buyers, plus a second product whose paid orders all fail.

    Every order of `doomed` passes payment and then fails to persist (fault injected), so the saga
    must refund it: the drills exercise refunds as well as sales and declines.
    """

    def __init__(self, stock: int, price: int = 1000, shards: int = 1,
                 oversubscription: int = OVERSUBSCRIPTION) -> None:
        self.stock, self.shards = stock, shards
        self.seller = new_account(seller=True)
        self.product = self._product(stock, price)
        self.doomed = self._product(max(stock // 5, 1), price * 3)
        self.start = {self.product: stock, self.doomed: max(stock // 5, 1)}
        faults.inject(faults.ORDER_PERSISTENCE, self.doomed)
        buyers = [new_account() for _ in range(stock * oversubscription // LIMIT)]
        self.attempts = [Attempt(b, TOKENS[i % len(TOKENS)], self.doomed if i % 7 == 3 else self.product)
                         for i, b in enumerate(b for b in buyers for _ in range(LIMIT))]
        random.Random(self.product).shuffle(self.attempts)
        self.outcomes: list[Outcome] = []
        self.fault_ended: float | None = 0.0  # monotonic; None while a fault is in progress
        self._lock = threading.Lock()

    def _product(self, stock: int, price: int) -> int:
        with mysql_transaction() as cur:
            cur.execute("INSERT INTO products (seller_id, name, description, price, per_member_limit, stock_shards) "
                        "VALUES (%s, %s, 'chaos drill', %s, %s, %s)",
                        (self.seller.member_id, f"Chaos drop {uuid.uuid4().hex[:6]}", price, LIMIT, self.shards))
            product = int(cur.lastrowid)
            cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product, stock))
        return product

    def close(self) -> None:
        faults.clear(faults.ORDER_PERSISTENCE, self.doomed)

    def waves(self) -> list[list[Attempt]]:
        """A few buyers before the fault (units remain), half of the crowd during it, the rest after."""
        first, half = max(self.stock // 2, 1), len(self.attempts) // 2
        return [self.attempts[:first], self.attempts[first:half], self.attempts[half:]]

    def buy(self, client: httpx.Client, attempt: Attempt) -> Outcome:
        """One buyer's order, retried like a well-behaved client (same key) while it gets 503, 429 or no answer."""
        body = {"items": [{"productId": str(attempt.product), "quantity": 1}], "paymentToken": attempt.token}
        first = time.monotonic()
        unavailable = 0
        while True:
            try:
                response = client.post(f"{API}/orders", json=body, headers=attempt.buyer.headers()
                                       | {"Idempotency-Key": attempt.key})
            except httpx.HTTPError as err:
                outcome = Outcome(0, type(err).__name__)
            else:
                doc = response.json() if response.headers.get("content-type", "").startswith("application/json") \
                    else {}
                code = (doc.get("error") or {}).get("code", "ACCEPTED" if response.status_code == 202 else "")
                outcome = Outcome(response.status_code, code, doc.get("orderId", ""))
                if response.status_code not in (503, 429):
                    break
                unavailable += response.status_code == 503
            if not self.patient(first):
                break
            # A rate-limited buyer (the per-IP order bucket: every buyer here is on this machine)
            # waits what Retry-After says, like a browser would.
            time.sleep(float(response.headers.get("Retry-After", 1)) if outcome.status == 429
                       else 1.0 if outcome.status == 503 else 0.5)
        outcome.unavailable, outcome.token = unavailable, attempt.token
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def patient(self, first: float) -> bool:
        """Whether a buyer who first tried at `first` (monotonic) still retries a 503."""
        now = time.monotonic()
        if now <= first + CLIENT_PATIENCE_SECONDS:
            return True
        return self.fault_ended is None or now <= self.fault_ended + CLIENT_PATIENCE_SECONDS

    def run_wave(self, client: httpx.Client, pool: ThreadPoolExecutor, wave: list[Attempt]) -> list[Any]:
        return [pool.submit(self.buy, client, attempt) for attempt in wave]

    @property
    def accepted(self) -> list[str]:
        return [o.order_id for o in self.outcomes if o.status == 202]

    def answers(self) -> Counter[str]:
        return Counter(o.code or str(o.status) for o in self.outcomes)


# ------------------------------------------------------------------------------------------- faults


class Fault:
    """What a drill does to the stack: `begin` after the first wave, `end` during the second."""

    name = ""

    def __init__(self, size: Size, drop: Drop) -> None:
        self.size, self.drop = size, drop
        self.notes: dict[str, Any] = {}

    def begin(self) -> None: ...

    def end(self) -> None: ...

    def finish(self) -> None:
        """After the saga settled (e.g. let duplicates drain)."""


def poller_pid(mapping: str) -> int | None:
    state = read_status("pollers", mapping) or {}
    return int(state["pid"]) if state.get("pid") else None


def wait_poller_replaced(mapping: str, old_pid: int, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = poller_pid(mapping)
        if pid and pid != old_pid and (read_status("pollers", mapping) or {}).get("state") == "running":
            return True
        time.sleep(0.2)
    return False


class KillPoller(Fault):
    """SIGKILL the payments poller while its batch is uncommitted; the confirm step dies after a commit."""

    name = "poller"
    mapping = "ProcessPaymentMapping-0"  # the status name of its first poller process

    def begin(self) -> None:
        faults.inject(f"{faults.CRASH_AFTER_COMMIT}:{STOCK_PERSISTENCE}", self.drop.product)
        redis_client().delete(faults.crash_marker(STOCK_PERSISTENCE, self.drop.product))
        self.notes["killed"] = []

    def end(self) -> None:
        for _ in range(self.size.kills):
            pid = poller_pid(self.mapping)
            if pid is None:
                continue
            with_suppress_kill(pid)
            self.notes["killed"].append(pid)
            if not wait_poller_replaced(self.mapping, pid):
                self.notes["not_replaced"] = pid
            time.sleep(0.5)

    def finish(self) -> None:
        faults.clear(f"{faults.CRASH_AFTER_COMMIT}:{STOCK_PERSISTENCE}", self.drop.product)
        self.notes["confirm_crashed_after_commit"] = bool(
            redis_client().get(faults.crash_marker(STOCK_PERSISTENCE, self.drop.product)))


def with_suppress_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class StopKafka(Fault):
    """Stop the broker (SIGTERM, its usual shutdown) for `outage_seconds`, then start it."""

    name = "kafka"

    def begin(self) -> None:
        local_stack.KafkaServer().stop()

    def end(self) -> None:
        time.sleep(self.size.outage_seconds)
        local_stack.KafkaServer().start()


class WipeRedis(Fault):
    """Stop Redis and start it with no data (the AOF removed): every key is lost.

    The mock payment processor's books live in our Redis only for convenience; a real processor
    keeps them, so they are carried over.
    """

    name = "redis"

    def begin(self) -> None:
        r = redis_client()
        r.execute_command("CLIENT", "PAUSE", "10000", "WRITE")  # no charge lands between the copy and the stop
        self.books = {k: r.dump(k) for k in r.scan_iter(match=keys.mock_gateway("*"), count=1000)}
        server = local_stack.RedisServer()
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)

    def end(self) -> None:
        time.sleep(min(self.size.outage_seconds, 1.0))
        local_stack.RedisServer().start()
        r = redis_client()
        for k, v in self.books.items():
            if v is not None:
                r.restore(k, 0, v, replace=True)
        self.notes["books_kept"] = len(self.books)
        faults.inject(faults.ORDER_PERSISTENCE, self.drop.doomed)  # the drill's own fault was in Redis too
        restarted = time.monotonic()
        self.watch = threading.Thread(target=self._watch_recovery, args=(restarted,), daemon=True)
        self.watch.start()

    def _watch_recovery(self, restarted: float) -> None:
        """How long after the restart stock could be rebuilt again (the epoch marker is back)."""
        r = redis_client()
        while time.monotonic() - restarted < self.size.settle_seconds:
            with contextlib.suppress(Exception):
                if r.exists(keys.stock_epoch()):
                    self.notes["sales_paused_s"] = round(time.monotonic() - restarted, 1)
                    return
            time.sleep(0.05)

    def finish(self) -> None:
        self.watch.join(timeout=self.size.settle_seconds)


class StopMariaDB(Fault):
    """Stop MariaDB (SIGTERM) for `outage_seconds`, then start it."""

    name = "mariadb"

    def begin(self) -> None:
        local_stack.MariaDBServer().stop()

    def end(self) -> None:
        time.sleep(self.size.outage_seconds)
        local_stack.MariaDBServer().start()


class DuplicateEvents(Fault):
    """Deliver every saga event a second time, each after a random delay of up to 2 s.

    A tap reads the saga topics from now on and publishes each record again (same key, value and
    headers, plus a marker header so the tap skips its own copies); delays reorder the copies
    among later events, of other orders and of the same order.
    """

    name = "duplicates"
    max_delay = 2.0

    def __init__(self, size: Size, drop: Drop) -> None:
        super().__init__(size, drop)
        self.stop_flag = threading.Event()
        self.copied = 0
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                      enable_auto_commit=False)
        parts = [TopicPartition(topics.topic(t), p) for t in SAGA_TOPICS
                 for p in sorted(self.consumer.partitions_for_topic(topics.topic(t)) or ())]
        self.consumer.assign(parts)
        self.consumer.seek_to_end(*parts)
        for tp in parts:
            self.consumer.position(tp)
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()  # from the first wave on

    def _run(self) -> None:
        rng = random.Random(7)
        due: list[tuple[float, int, Any]] = []
        n = 0
        while not self.stop_flag.is_set() or due:
            if not self.stop_flag.is_set():
                for batch in self.consumer.poll(timeout_ms=100).values():
                    for record in batch:
                        if any(name == DUPLICATE_HEADER for name, _ in record.headers or []):
                            continue
                        n += 1
                        heapq.heappush(due, (time.monotonic() + rng.uniform(0, self.max_delay), n, record))
            else:
                time.sleep(0.05)
            while due and due[0][0] <= time.monotonic():
                _, _, record = heapq.heappop(due)
                self.producer.send(record.topic, key=record.key, value=record.value,
                                   headers=[*(record.headers or []), (DUPLICATE_HEADER, b"1")])
                self.copied += 1
        self.producer.flush()

    def finish(self) -> None:
        # Keep duplicating until the originals stopped coming, then let every copy be consumed.
        time.sleep(self.max_delay + 0.5)
        self.stop_flag.set()
        self.thread.join(timeout=30)
        self.consumer.close()
        self.producer.close()
        self.notes["copies_delivered"] = self.copied
        self.notes["drained"] = wait_drained(seconds=self.size.settle_seconds)


def group_lag(group: str, topic_name: str) -> int:
    from kafka import KafkaAdminClient

    name = topics.topic(topic_name)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        ends = consumer.end_offsets(parts)
        done = admin.list_consumer_group_offsets(group, partitions=parts)
        return sum(max(ends[tp] - (done[tp].offset if tp in done and done[tp].offset >= 0 else 0), 0) for tp in parts)
    finally:
        consumer.close()
        admin.close()


def wait_drained(seconds: float) -> bool:
    """Whether every saga consumer group caught up with its topic within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if all(group_lag(group, name) == 0 for name, group in SAGA_GROUPS.items()):
                return True
        except Exception:
            pass
        time.sleep(0.5)
    return False


class PoisonRecords(Fault):
    """Bad records of every kind on every partition of every consumed topic, in the middle of the drop."""

    name = "poison"
    oversubscription = 10

    def begin(self) -> None:
        buyer = new_account()
        self.started_ms = int(time.time() * 1000) - 1000
        self.written: list[Written] = write_bad_records(list(CONSUMED), self.size.poison_per_kind,
                                                        int(buyer.member_id), self.drop.product)
        self.notes["bad_records"] = len(self.written)

    def finish(self) -> None:
        """Wait (bounded) until every bad record is in the dead-letter topic; how long each took, and why."""
        dlq = DeadLetterTopic(settings.kafka_bootstrap, topics.topic(topics.DEAD_LETTERS))
        wanted = {(w.topic, w.partition, w.offset): w for w in self.written}
        deadline = time.monotonic() + self.size.settle_seconds
        while True:
            letters, _ = dlq.read(self.started_ms)
            found = {(x.source_topic, x.source_partition, x.source_offset): x for x in letters
                     if (x.source_topic, x.source_partition, x.source_offset) in wanted}
            if len(found) == len(wanted) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        delays = sorted(max(found[k].timestamp - w.timestamp_ms, 0) for k, w in wanted.items() if k in found)
        self.notes["dead_lettered"] = len(found)
        self.notes["wrong_reason"] = sum(found[k].reason != w.reason for k, w in wanted.items() if k in found)
        self.notes["by_mapping"] = sum(found[k].kind != "consumer" for k in found)  # retried until given up
        self.notes["dlq_p50_ms"] = _pct(delays, 50)
        self.notes["dlq_p99_ms"] = _pct(delays, 99)
        self.notes["dlq_max_ms"] = delays[-1] if delays else None
        self.notes["within_5s"] = sum(d <= 5000 for d in delays)


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p / 100), len(ordered) - 1)]


def confirm_latencies(orders: list[str]) -> list[float]:
    """Reserve→CONFIRMED in ms (the reservation's reserved_at to the order's confirmed_at) of confirmed orders."""
    if not orders:
        return []
    with mysql_cursor() as cur:
        cur.execute("SELECT TIMESTAMPDIFF(MICROSECOND, r.reserved_at, o.confirmed_at) / 1000 AS ms FROM orders o "
                    "JOIN reservations r ON r.order_id = o.id WHERE o.status = 'CONFIRMED' AND o.confirmed_at IS "
                    f"NOT NULL AND o.id IN ({', '.join(['%s'] * len(orders))})", orders)
        return sorted(float(row["ms"]) for row in cur.fetchall())


FAULTS: dict[str, type[Fault]] = {f.name: f for f in (KillPoller, StopKafka, WipeRedis, StopMariaDB, DuplicateEvents,
                                                      PoisonRecords)}


# ------------------------------------------------------------------------------------------- a drill


@dataclass
class DrillResult:
    """What a drill did and what the invariant checker found."""

    drill: str
    attempts: int
    answers: dict[str, int]
    retried_503: int
    report: Report
    fault_seconds: float
    recovered_seconds: float | None
    notes: dict[str, Any]
    confirm_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok and self.recovered_seconds is not None and not self.unclean

    @property
    def unclean(self) -> dict[str, int]:
        """Answers that are neither an order, a business refusal nor a clean 503 (5xx, no answer)."""
        return {k: v for k, v in self.answers.items() if k not in ("ACCEPTED", "OUT_OF_STOCK",
                                                                    "PURCHASE_LIMIT_EXCEEDED")}

    def row(self) -> dict[str, Any]:
        f = self.report.figures
        return {"drill": self.drill, "attempts": self.attempts, "accepted": f.orders,
                "confirmed": f.statuses.get("CONFIRMED", 0), "failed": f.statuses.get("FAILED", 0),
                "expired": f.statuses.get("EXPIRED", 0), "sold": f"{f.units_sold}/{f.units_start}",
                "left_mysql": f.units_left_mysql, "left_redis": f.units_available_redis, "open": f.units_open,
                "charged": f.charged, "refunded": f.refunded, "refunds_owed": f.refunds_owed,
                "503_retried": self.retried_503, "unclean": sum(self.unclean.values()),
                "fault_s": round(self.fault_seconds, 1),
                "recover_s": None if self.recovered_seconds is None else round(self.recovered_seconds, 1),
                "confirm_p50_ms": _round(_pct(self.confirm_ms, 50)),
                "confirm_p99_ms": _round(_pct(self.confirm_ms, 99)),
                "invariants": "OK" if self.report.ok else f"{len(self.report.violations)} broken"}

    def poison_row(self) -> dict[str, Any]:
        """The poison drill's own figures: bad records written, dead-lettered (and how fast), real orders."""
        n = self.notes
        return {"drill": self.drill, "bad_records": n.get("bad_records"), "dead_lettered": n.get("dead_lettered"),
                "wrong_reason": n.get("wrong_reason"), "retried_first": n.get("by_mapping"),
                "dlq_p50_ms": _round(n.get("dlq_p50_ms")), "dlq_p99_ms": _round(n.get("dlq_p99_ms")),
                "dlq_max_ms": _round(n.get("dlq_max_ms")), "within_5s": n.get("within_5s"),
                "orders": self.report.figures.orders, "settled": self.recovered_seconds is not None,
                "confirm_p99_ms": _round(_pct(self.confirm_ms, 99)),
                "invariants": "OK" if self.report.ok else f"{len(self.report.violations)} broken"}


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


def run_drill(name: str, size: Size = SHORT, shards: int = 1) -> DrillResult:
    """Run one drill on the running stack and check the invariants once the saga settled.

    `shards` > 1 splits the drop's live stock over that many Redis shards (a hot drop).
    """
    kind = FAULTS[name]
    drop = Drop(size.stock, shards=shards, oversubscription=getattr(kind, "oversubscription", OVERSUBSCRIPTION))
    fault = kind(size, drop)
    waves = drop.waves()
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=THREADS)) as client, \
            ThreadPoolExecutor(THREADS) as pool:
        for future in drop.run_wave(client, pool, waves[0]):
            future.result()
        started = time.monotonic()
        drop.fault_ended = None
        fault.begin()
        pending = drop.run_wave(client, pool, waves[1])
        try:
            fault.end()
        finally:  # (a fault that failed to end still ends the buyers' wait for it)
            ended = drop.fault_ended = time.monotonic()
        pending += drop.run_wave(client, pool, waves[2])
        for future in pending:
            future.result()
    products = list(drop.start)
    settled = wait_settled(products, drop.accepted, seconds=size.settle_seconds)
    recovered = None if settled is None else time.monotonic() - ended
    fault.finish()
    drop.close()
    for product in products:  # the live stock as a buyer reads it (after a Redis loss: rebuilt now)
        httpx.get(f"{API}/products/{product}/stock", timeout=30)
    report = check(products, drop.accepted, drop.start)
    return DrillResult(name, len(drop.attempts), dict(drop.answers()),
                       sum(o.unavailable for o in drop.outcomes), report, ended - started, recovered, fault.notes,
                       confirm_latencies(drop.accepted))


def _table(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--long", action="store_true", help="bigger drops, longer outages, repeated kills")
    parser.add_argument("--drill", action="append", choices=list(FAULTS), help="run only these (repeat)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--shards", type=int, default=1, help="split each drop's live stock over 1-16 shards")
    args = parser.parse_args(argv)
    # The drills inject faults at the saga's checkpoints: a runtime started without the tests' observer
    # is restarted with it (its code fingerprint includes the variable).
    os.environ.setdefault(faults.OBSERVER_ENV, faults.OBSERVER)
    local_stack.ensure_up()
    results = []
    for name in args.drill or list(FAULTS):
        print(f"drill {name} ...", file=sys.stderr, flush=True)
        results.append(run_drill(name, LONG if args.long else SHORT, args.shards))
        for violation in results[-1].report.violations:
            print(f"  broken: {violation}", file=sys.stderr)
    if args.json:
        print(json.dumps([r.row() | {"notes": r.notes, "answers": r.answers,
                                     "violations": r.report.violations} for r in results], indent=2))
    else:
        print(_table([r.row() for r in results]))
        poisoned = [r.poison_row() for r in results if r.drill == PoisonRecords.name]
        if poisoned:
            print()
            print(_table(poisoned))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
