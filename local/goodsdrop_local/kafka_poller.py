"""Kafka event-source mapping emulation: Lambda's event poller for one mapping of the template.

Semantics follow the AWS Lambda developer guide for MSK / self-managed Kafka mappings:
- each partition is delivered on its own, in order, with at most one invocation in flight per
  partition; the partitions of a poller are invoked concurrently (an AWS event poller runs up to 5
  invocations at once), each invocation in a warm execution environment of its own (a worker
  process that runs one invocation at a time, imports the function once and enforces its
  Timeout). So a record that is failing and being retried with backoff holds up only its own
  partition; the others keep flowing.
- a batch is up to BatchSize records, handed over once it is full or its oldest record waited
  MaximumBatchingWindowInSeconds (0: at once, Lambda's low-latency mode), in Lambda's Kafka event
  format (records grouped by "<topic>-<partition>", base64 key and value, headers as byte lists);
- offsets are committed per partition once a batch succeeded or went to the destination;
- a failed invocation is retried MaximumRetryAttempts times (-1: forever, capped at 10 when an
  on-failure destination is set); BisectBatchOnFunctionError splits a failed batch in two and the
  halves are retried separately (a split does not use up retries);
- with ReportBatchItemFailures the function names failed records as
  {"itemIdentifier": {"partition": "<topic>-<partition>", "offset": n}}: the lowest failed offset
  and everything after it are retried, records before it count as done;
- records older than MaximumRecordAgeInSeconds, and records whose retries ran out, go to the
  `kafka://<topic>` on-failure destination as AWS writes them: one message per record, keyed like
  it, a JSON document with requestContext (condition RetriesExhausted / RecordAgeExceeded),
  responseContext, KafkaBatchInfo and the Lambda event of that record as `payload`.
Local differences (README, "The local runtime"): batches never mix partitions; retry backoff is
exponential from GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS (default 0.1 s, cap 20 s); the number of
pollers per mapping is fixed at ProvisionedPollerConfig.MinimumPollers.

The poller reports to /health and `make status` (goodsdrop_local.status) every second, also while a
batch is being retried: records processed, retried and dead-lettered (by the mapping's destination
and by the function itself, read back from the dead-letter topic), and the lag of each partition.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
import uuid
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import wait
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from goodsdrop_local.execution import ProcessEnvironment as Environment
from goodsdrop_local.status import write_status
from goodsdrop_local.template import Function, KafkaMapping

MAX_CONCURRENCY = 5  # invocations one Lambda event poller runs at once
RETRY_BACKOFF_CAP_SECONDS = 20.0
STATUS_SECONDS = 1.0
LAG_SECONDS = 2.0
IDLE_POLL_SECONDS = 0.1
COLLECT_WAIT_SECONDS = 0.02  # how long the loop waits for an invocation before it polls Kafka again
ACCOUNT = "000000000000"


def _backoff(attempt: int) -> float:
    """Seconds before retry `attempt`: quick at first (a deadlock, `tok_error`), long enough in all for an outage."""
    base = float(os.environ.get("GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS", "0.1"))
    return min(base * 2 ** max(attempt - 1, 0), RETRY_BACKOFF_CAP_SECONDS)


def _iso(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lambda_event(records: list[Any], bootstrap: str) -> dict[str, Any]:
    """Lambda's event for a batch of kafka-python `ConsumerRecord`s."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        grouped.setdefault(f"{r.topic}-{r.partition}", []).append({
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "timestampType": "CREATE_TIME" if r.timestamp_type == 0 else "LOG_APPEND_TIME",
            "key": base64.b64encode(r.key).decode() if r.key is not None else None,
            "value": base64.b64encode(r.value).decode() if r.value is not None else None,
            "headers": [{name: list(value or b"")} for name, value in (r.headers or [])],
        })
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": bootstrap, "records": grouped}


def function_arn(function_id: str) -> str:
    from goodsdrop.settings import settings

    return f"arn:aws:lambda:{settings.aws_region}:{ACCOUNT}:function:{function_id}"


def on_failure_record(record: Any, mapping: KafkaMapping, bootstrap: str, condition: str, attempts: int,
                      function_error: str | None) -> bytes:
    """What Lambda writes to a `kafka://` on-failure destination for one record (AWS's documented format)."""
    event = lambda_event([record], bootstrap)
    doc: dict[str, Any] = {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function_arn(mapping.function_id),
                           "condition": condition, "approximateInvokeCount": attempts},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "version": "1.0",
        "timestamp": _iso(time.time() * 1000),
        "KafkaBatchInfo": {"batchSize": 1, "bootstrapServers": bootstrap, "payloadSize": len(json.dumps(event)),
                           "recordInfo": {"offset": str(record.offset), "timestamp": _iso(record.timestamp)}},
        "payload": event,
    }
    if function_error:
        doc["responseContext"]["functionError"] = function_error
    return json.dumps(doc).encode()


# ------------------------------------------------------------------------------ partitions and batches


@dataclass
class Outcome:
    """What one invocation said about its batch."""

    ok: bool
    retry: list[Any] = field(default_factory=list)  # records to try again
    error: str = ""
    function_error: str | None = None


@dataclass
class Batch:
    records: list[Any]
    attempts: int = 0  # failed attempts so far
    redelivery: bool = False  # its records were delivered before (a retry or a bisected half)
    end: int = -1  # the offset after its last record: committed once it is done

    def __post_init__(self) -> None:
        if self.end < 0 and self.records:
            self.end = self.records[-1].offset + 1


@dataclass
class Lane:
    """One assigned partition: records fetched but not yet delivered, and the batches being delivered."""

    tp: TopicPartition
    buffer: deque[Any] = field(default_factory=deque)
    waiting_since: float | None = None  # when the oldest buffered record arrived (batching window)
    work: list[Batch] = field(default_factory=list)  # front first; bisected halves go in front
    retry_at: float = 0.0
    busy: bool = False
    done: int | None = None  # the offset to commit next
    committed: int | None = None
    paused: bool = False
    revoked: bool = False

    @property
    def name(self) -> str:
        return f"{self.tp.topic}-{self.tp.partition}"


@dataclass
class Counters:
    invocations: int = 0
    errors: int = 0  # invocations that failed (function error or batch item failures)
    processed: int = 0  # records the function finished with (done, incl. those it dead-lettered itself)
    retried: int = 0  # record deliveries that were retries
    dead_lettered_by_mapping: int = 0  # sent to the on-failure destination by this poller
    dead_lettered_by_function: int = 0  # written to the dead-letter topic by the function (read back)
    environment_exits: int = 0  # execution environments that died mid-invocation

    @property
    def dead_lettered(self) -> int:
        return self.dead_lettered_by_mapping + self.dead_lettered_by_function


class _CommitBeforeRevoke(ConsumerRebalanceListener):
    def __init__(self, poller: MappingPoller) -> None:
        self.poller = poller

    def on_partitions_revoked(self, revoked: Any) -> None:  # noqa: ARG002 - kafka-python's listener signature
        self.poller._commit()

    def on_partitions_assigned(self, assigned: Any) -> None:
        pass


class _DeadLetterTally:
    """Counts the function's own dead letters of the partitions this poller holds (reads the dead-letter topic)."""

    def __init__(self, bootstrap: str, topic: str, function_id: str) -> None:
        self.function_id = function_id
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                                      client_id=f"lambda-{function_id}-dlq-tally", metrics_enabled=False)
        parts = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
        self.consumer.assign(parts)
        self.consumer.seek_to_end(*parts)

    def count(self, held: set[tuple[str, int]]) -> int:
        from goodsdrop import dead_letters

        found = 0
        for records in self.consumer.poll(timeout_ms=0, max_records=1000).values():
            for message in records:
                letter = dead_letters.read(message)
                if (isinstance(letter, dead_letters.DeadLetter) and letter.kind == "consumer"
                        and letter.consumer == self.function_id
                        and (letter.source_topic, letter.source_partition) in held):
                    found += 1
        return found

    def close(self) -> None:
        self.consumer.close()


class MappingPoller:
    """Polls one mapping's topics and drives its function with Lambda's failure semantics."""

    def __init__(self, mapping: KafkaMapping, function: Function, bootstrap: str, index: int = 0) -> None:
        self.mapping = mapping
        self.function = function
        self.index = index
        self.bootstrap = bootstrap
        self.counters = Counters()
        self.lanes: dict[TopicPartition, Lane] = {}
        self.environments: list[Environment] = []
        self._stop = False
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._tally: _DeadLetterTally | None = None
        self._last_status = 0.0
        self._last_lag = 0.0
        self._lag: dict[str, int] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop = True

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","),
            group_id=self.mapping.consumer_group,
            client_id=f"lambda-{self.mapping.name}-{self.index}",
            enable_auto_commit=False,
            auto_offset_reset="latest" if self.mapping.starting_position == "LATEST" else "earliest",
            max_poll_records=self.mapping.batch_size,
            max_poll_interval_ms=900_000,  # a partition may retry for minutes, as on Lambda
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            metadata_max_age_ms=5_000,
            metrics_enabled=False,  # nobody reads them; recording them is a quarter of a poll's CPU when records flow
        )
        consumer.subscribe(self.mapping.topics, listener=_CommitBeforeRevoke(self))
        self._consumer = consumer
        return consumer

    def run(self, max_idle_polls: int | None = None) -> None:
        """Poll until stopped (or, for tests, after `max_idle_polls` idle polls in a row once partitions are held)."""
        consumer = self._connect()
        if self.mapping.on_failure_topic:
            try:
                self._tally = _DeadLetterTally(self.bootstrap, self.mapping.on_failure_topic, self.mapping.function_id)
            except Exception:  # noqa: BLE001 - the tally is for the status report only
                self._tally = None
        self.environments.append(Environment(self.function))  # the first one warms up while we join the group
        idle = 0
        self._report("running", force=True)
        try:
            while not self._stop:
                self._sync_lanes()
                self._dispatch()
                finished = self._collect()
                polled = self._poll(0 if finished or self._in_flight() else self._idle_wait())
                self._commit()
                self._report("running")
                if max_idle_polls is not None:
                    quiet = not polled and not self._in_flight() and not self._pending() and self._caught_up()
                    idle = idle + 1 if quiet else 0
                    if idle >= max_idle_polls:
                        return
            self._drain()
        finally:
            self._report("stopped", force=True)
            for environment in self.environments:
                environment.close()
            if self._tally is not None:
                self._tally.close()
            consumer.close()
            if self._producer is not None:
                self._producer.close()

    def _drain(self, seconds: float = 10.0) -> None:
        """Stopping: invocations in flight finish and what they completed is committed; retries are left to the next."""
        deadline = time.monotonic() + seconds
        while self._in_flight() and time.monotonic() < deadline:
            self._collect()
        self._commit()

    # -- partitions ---------------------------------------------------------------------------
    def _sync_lanes(self) -> None:
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        for tp in list(self.lanes):
            if tp not in assigned:
                self.lanes.pop(tp).revoked = True  # an invocation in flight finishes; its result is dropped
        for tp in assigned:
            if tp not in self.lanes:
                lane = self.lanes[tp] = Lane(tp)
                try:
                    lane.committed = self._consumer.committed(tp)
                except Exception:  # noqa: BLE001 - only the lag report needs it
                    lane.committed = None
        # An environment per partition (up to the poller's concurrency), warming up before records come.
        while len(self.environments) < min(MAX_CONCURRENCY, len(self.lanes)):
            self.environments.append(Environment(self.function))

    def _poll(self, timeout: float) -> bool:
        assert self._consumer is not None
        # Enough for a batch on every partition held: one poll can feed every lane.
        polled = self._consumer.poll(timeout_ms=int(timeout * 1000),
                                     max_records=self.mapping.batch_size * max(len(self.lanes), 1))
        self._sync_lanes()  # the poll may have joined the group: its first records come with the assignment
        now = time.monotonic()
        for tp, records in polled.items():
            lane = self.lanes[tp]
            lane.buffer.extend(records)
            if lane.waiting_since is None:
                lane.waiting_since = now
        for lane in self.lanes.values():
            full = len(lane.buffer) >= self.mapping.batch_size
            if full != lane.paused:
                (self._consumer.pause if full else self._consumer.resume)(lane.tp)
                lane.paused = full
        return bool(polled)

    def _caught_up(self) -> bool:
        """Every assigned partition was fetched up to its end (what the tests' `max_idle_polls` waits for)."""
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        return bool(assigned) and all(self._consumer.highwater(tp) is not None
                                      and self._consumer.position(tp) >= self._consumer.highwater(tp)
                                      for tp in assigned)

    def _in_flight(self) -> bool:
        return any(e.owner is not None for e in self.environments)

    def _pending(self) -> bool:
        return any(lane.buffer or lane.work for lane in self.lanes.values())

    def _idle_wait(self) -> float:
        """How long a poll may block: until the next retry or batching window is due (a poll returns on new records)."""
        now = time.monotonic()
        deadlines = [lane.retry_at for lane in self.lanes.values() if lane.work]
        deadlines += [(lane.waiting_since or now) + self.mapping.batching_window_seconds
                      for lane in self.lanes.values() if lane.buffer and not lane.work]
        if not deadlines:
            return IDLE_POLL_SECONDS * 5
        return min(max(min(deadlines) - now, 0.0), IDLE_POLL_SECONDS)

    # -- delivering batches ---------------------------------------------------------------------
    def _next_batch(self, lane: Lane, now: float) -> Batch | None:
        if lane.busy or now < lane.retry_at:
            return None
        if not lane.work:
            if not lane.buffer:
                return None
            full = len(lane.buffer) >= self.mapping.batch_size
            if not full and now - (lane.waiting_since or now) < self.mapping.batching_window_seconds:
                return None
            records = [lane.buffer.popleft() for _ in range(min(len(lane.buffer), self.mapping.batch_size))]
            lane.waiting_since = now if lane.buffer else None
            lane.work.append(Batch(records))
        batch = lane.work[0]
        batch.records = self._drop_expired(batch.records)
        if not batch.records:
            self._finish(lane, lane.work.pop(0), [])
            return self._next_batch(lane, now)
        return batch

    def _dispatch(self) -> None:
        now = time.monotonic()
        for lane in sorted(self.lanes.values(), key=lambda ln: (ln.tp.topic, ln.tp.partition)):
            batch = self._next_batch(lane, now)
            if batch is None:
                continue
            environment = self._free_environment()
            if environment is None:
                return
            try:
                environment.invoke(lambda_event(batch.records, self.bootstrap), owner=lane)
            except OSError:  # it died while idle: replaced below, the batch goes on the next round
                self._discard(environment)
                continue
            lane.busy = True
            self.counters.invocations += 1
            if batch.redelivery:
                self.counters.retried += len(batch.records)

    def _discard(self, environment: Environment) -> None:
        self.counters.environment_exits += 1
        self.environments.remove(environment)
        environment.close(0.1)

    def _free_environment(self) -> Environment | None:
        for environment in list(self.environments):
            if environment.owner is None and not environment.alive:
                self._discard(environment)
        for environment in self.environments:
            if environment.owner is None:
                return environment
        if len(self.environments) < min(MAX_CONCURRENCY, max(len(self.lanes), 1)):
            environment = Environment(self.function)  # a cold start
            self.environments.append(environment)
            return environment
        return None

    def _collect(self) -> bool:
        """Wait briefly for invocations in flight; handle each that finished. True when one did."""
        busy = [e for e in self.environments if e.owner is not None]
        if not busy:
            return False
        ready = wait([e.conn for e in busy], timeout=COLLECT_WAIT_SECONDS)
        finished = False
        for environment in busy:
            if environment.conn not in ready and not environment.overdue:
                continue
            if environment.conn in ready:
                result = environment.result()
            else:
                environment.process.kill()
                result = ("error", "Sandbox.Timedout", "the execution environment did not answer; it was stopped")
            lane, environment.owner = environment.owner, None
            assert isinstance(lane, Lane)
            lane.busy = False
            finished = True
            if not environment.alive or result[1] in ("Runtime.ExitError", "Sandbox.Timedout"):
                self._discard(environment)
            if not lane.revoked:
                self._settle(lane, self._outcome(result, lane.work[0].records))
        return finished

    def _outcome(self, result: tuple[Any, ...], batch: list[Any]) -> Outcome:
        if result[0] == "error":
            return Outcome(False, error=f"{result[1]}: {result[2]}", function_error="Unhandled")
        response = result[1]
        if not self.mapping.report_item_failures or not isinstance(response, dict):
            return Outcome(True)
        failures = response.get("batchItemFailures") or []
        if not failures:
            return Outcome(True)
        lowest: dict[str, int] = {}
        for item in failures:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(ident, dict) or "partition" not in ident or "offset" not in ident:
                return Outcome(False, error="malformed batchItemFailures: whole batch fails")
            key = str(ident["partition"])
            lowest[key] = min(int(ident["offset"]), lowest.get(key, sys.maxsize))
        retry = [r for r in batch if r.offset >= lowest.get(f"{r.topic}-{r.partition}", sys.maxsize)]
        return Outcome(False, retry=retry or batch, error="function reported batch item failures")

    def _settle(self, lane: Lane, outcome: Outcome) -> None:
        """Lambda's rules for the batch at the front of `lane`, given what its invocation said."""
        batch = lane.work[0]
        if outcome.ok:
            self._finish(lane, lane.work.pop(0), batch.records)
            return
        self.counters.errors += 1
        if not outcome.retry and self.mapping.bisect_on_error and len(batch.records) > 1:
            half = len(batch.records) // 2
            lane.work[0:1] = [Batch(batch.records[:half], redelivery=True),
                              Batch(batch.records[half:], redelivery=True, end=batch.end)]
            return
        if outcome.retry:
            done = [r for r in batch.records if r not in outcome.retry]
            self.counters.processed += len(done)
            if done:  # commit up to the lowest failed record
                lane.done = max(lane.done or 0, done[-1].offset + 1)
            batch.records = outcome.retry
        batch.attempts += 1
        batch.redelivery = True
        retries = self.mapping.effective_retries
        if retries is not None and batch.attempts > retries:
            self._dead_letter(batch.records, "RetriesExhausted", batch.attempts, outcome.function_error)
            self._finish(lane, lane.work.pop(0), [])
            return
        lane.retry_at = time.monotonic() + _backoff(batch.attempts)

    def _finish(self, lane: Lane, batch: Batch, processed: list[Any]) -> None:
        self.counters.processed += len(processed)
        if batch.end >= 0:
            lane.done = max(lane.done or 0, batch.end)
        lane.retry_at = 0.0

    def _drop_expired(self, records: list[Any]) -> list[Any]:
        """Records older than MaximumRecordAgeInSeconds go to the destination instead of the function."""
        max_age = self.mapping.maximum_record_age_seconds
        if max_age < 0:
            return records
        cutoff = (time.time() - max_age) * 1000
        expired = [r for r in records if r.timestamp < cutoff]
        if expired:
            self._dead_letter(expired, "RecordAgeExceeded", 0, None)
        return [r for r in records if r.timestamp >= cutoff]

    def _dead_letter(self, records: list[Any], condition: str, attempts: int, function_error: str | None) -> None:
        """Send records to the on-failure destination (or drop them, as Lambda does without one)."""
        self.counters.dead_lettered_by_mapping += len(records)
        topic = self.mapping.on_failure_topic
        if not topic:
            return
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap.split(","), acks="all", retries=5,
                                           metrics_enabled=False)
        for r in records:
            self._producer.send(topic, key=r.key, value=on_failure_record(r, self.mapping, self.bootstrap, condition,
                                                                          attempts, function_error))
        self._producer.flush(timeout=10)

    # -- offsets and the report ---------------------------------------------------------------
    def _commit(self) -> None:
        if self._consumer is None:
            return
        offsets = {lane.tp: OffsetAndMetadata(lane.done, "", -1) for lane in self.lanes.values()
                   if lane.done is not None and lane.done != lane.committed}
        if not offsets:
            return
        try:
            self._consumer.commit(offsets)
        except Exception as err:  # noqa: BLE001 - a rebalance or a broker away: the next commit carries them
            print(f"{self.mapping.name}: commit failed: {err}", file=sys.stderr, flush=True)
            return
        for tp, offset in offsets.items():
            if tp in self.lanes:
                self.lanes[tp].committed = offset.offset

    def _report(self, state: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < STATUS_SECONDS:
            return
        self._last_status = now
        if self._consumer is not None and self.lanes and (force or now - self._last_lag >= LAG_SECONDS):
            self._last_lag = now
            with suppress(Exception):  # the broker is away: keep the last figures
                ends = self._consumer.end_offsets(list(self.lanes))
                self._lag = {lane.name: max(ends[tp] - (lane.committed or 0), 0) for tp, lane in self.lanes.items()
                             if tp in ends}
        if self._tally is not None:
            with suppress(Exception):  # the report goes on without it
                held = {(tp.topic, tp.partition) for tp in self.lanes}
                self.counters.dead_lettered_by_function += self._tally.count(held)
        partitions = {}
        for lane in sorted(self.lanes.values(), key=lambda ln: ln.name):
            front = lane.work[0] if lane.work else None
            partitions[lane.name] = {
                "lag": self._lag.get(lane.name),
                "committed": lane.committed,
                "buffered": len(lane.buffer) + sum(len(b.records) for b in lane.work),
                "retrying": bool(front and front.attempts),
                "attempt": front.attempts if front else 0,
            }
        counters = self.counters
        write_status("pollers", f"{self.mapping.name}-{self.index}", {
            "state": state, "mapping": self.mapping.name, "function": self.mapping.function_id,
            "invocations": counters.invocations, "errors": counters.errors, "processed": counters.processed,
            "retried": counters.retried, "dead_lettered": counters.dead_lettered,
            "dead_lettered_by_mapping": counters.dead_lettered_by_mapping,
            "dead_lettered_by_function": counters.dead_lettered_by_function,
            "environments": len(self.environments), "environment_exits": counters.environment_exits,
            "partitions": partitions,
        })


def main(argv: list[str]) -> None:
    """`python -m goodsdrop_local.kafka_poller <mapping name> [index]`: run one poller until SIGTERM."""
    from goodsdrop.settings import settings
    from goodsdrop_local.template import load

    app = load()
    mapping = next(m for m in app.kafka if m.name == argv[0])
    poller = MappingPoller(mapping, app.functions[mapping.function_id], settings.kafka_bootstrap,
                           int(argv[1]) if len(argv) > 1 else 0)
    signal.signal(signal.SIGTERM, lambda *_: poller.stop())
    poller.run()


if __name__ == "__main__":
    main(sys.argv[1:])
