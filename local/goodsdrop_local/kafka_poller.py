"""Kafka event-source mapping emulation: Lambda's poller for one mapping of the template.

Semantics follow the AWS Lambda developer guide for MSK / self-managed Kafka mappings:
- records are polled in batches of up to BatchSize (waiting up to MaximumBatchingWindowInSeconds)
  and handed to the function in Lambda's Kafka event format (records grouped by
  "<topic>-<partition>", base64 key and value, headers as lists of byte values);
- offsets are committed only after the whole batch succeeded or was sent to the destination;
- a failed invocation is retried MaximumRetryAttempts times (-1: forever, capped at 10 when an
  on-failure destination is set); BisectBatchOnFunctionError splits a failed batch in two, and
  the halves are retried separately (a split does not use up retries);
- with ReportBatchItemFailures the function names failed records as
  {"itemIdentifier": {"partition": "<topic>-<partition>", "offset": n}}: per partition, the lowest
  failed offset and everything after it are retried, records before it count as done;
- records older than MaximumRecordAgeInSeconds, and records whose retries ran out, go to the
  `kafka://<topic>` on-failure destination: the records themselves plus failure metadata headers.
Local differences (documented in the README): failure metadata is carried in `lambda-*` headers;
retry backoff is exponential from GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS (default 0.5 s, cap 10 s);
as many pollers per mapping as its ProvisionedPollerConfig.MinimumPollers (default 1).
"""

from __future__ import annotations

import base64
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from goodsdrop_local.execution import FunctionError
from goodsdrop_local.status import write_status
from goodsdrop_local.template import KafkaMapping

Invoke = Callable[[dict[str, Any]], Any]


def _backoff(attempt: int) -> float:
    base = float(os.environ.get("GOODSDROP_LOCAL_RETRY_BACKOFF_SECONDS", "0.5"))
    return min(base * 2 ** max(attempt - 1, 0), 10.0)


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


@dataclass
class Outcome:
    """What one invocation said about its batch."""

    ok: bool
    retry: list[Any] = field(default_factory=list)  # records to try again
    error: str = ""


@dataclass
class Counters:
    batches: int = 0
    records: int = 0
    failures: int = 0
    dead_lettered: int = 0


class MappingPoller:
    """Polls one mapping's topics and drives its function with Lambda's failure semantics."""

    def __init__(self, mapping: KafkaMapping, invoke: Invoke, bootstrap: str, index: int = 0) -> None:
        self.mapping = mapping
        self.index = index
        self.invoke = invoke
        self.bootstrap = bootstrap
        self.counters = Counters()
        self._stop = False
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._last_status = 0.0

    # -- lifecycle ----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop = True

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            *self.mapping.topics,
            bootstrap_servers=self.bootstrap.split(","),
            group_id=self.mapping.consumer_group,
            client_id=f"lambda-{self.mapping.name}-{self.index}",
            enable_auto_commit=False,
            auto_offset_reset="latest" if self.mapping.starting_position == "LATEST" else "earliest",
            max_poll_records=self.mapping.batch_size,
            max_poll_interval_ms=900_000,  # a batch may retry for minutes, as on Lambda
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            metadata_max_age_ms=5_000,
        )
        self._consumer = consumer
        return consumer

    def run(self, max_idle_polls: int | None = None) -> None:
        """Poll until stopped (or after `max_idle_polls` empty polls in a row, for tests)."""
        consumer = self._connect()
        idle = 0
        self._report("running", force=True)
        try:
            while not self._stop:
                polled = consumer.poll(timeout_ms=int(self.mapping.batching_window_seconds * 1000),
                                       max_records=self.mapping.batch_size)
                self._report("running")
                if not polled:
                    idle += 1
                    if max_idle_polls is not None and idle >= max_idle_polls:
                        return
                    continue
                idle = 0
                records = [r for tp in sorted(polled, key=lambda t: (t.topic, t.partition)) for r in polled[tp]]
                self.process(records)
                consumer.commit({
                    TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(recs[-1].offset + 1, "", -1)
                    for tp, recs in polled.items()
                })
        finally:
            self._report("stopped", force=True)
            consumer.close()
            if self._producer is not None:
                self._producer.close()

    # -- one polled batch ---------------------------------------------------------------------
    def process(self, records: list[Any]) -> None:
        """Deliver `records` until each succeeded or went to the on-failure destination."""
        queue: list[list[Any]] = [records]
        while queue and not self._stop:
            batch = queue.pop(0)
            attempts = 0
            while batch:
                batch = self._drop_expired(batch)
                if not batch:
                    break
                outcome = self._invoke(batch)
                if outcome.ok:
                    break
                self.counters.failures += 1
                if not outcome.retry and self.mapping.bisect_on_error and len(batch) > 1:
                    half = len(batch) // 2
                    queue[:0] = [batch[:half], batch[half:]]
                    break
                attempts += 1
                batch = outcome.retry or batch
                retries = self.mapping.effective_retries
                if retries is not None and attempts > retries:
                    self._dead_letter(batch, outcome.error, attempts)
                    break
                time.sleep(_backoff(attempts))
                if self._stop:
                    # Shutting down mid-retry: leave offsets uncommitted so the batch comes back.
                    raise SystemExit(0)

    def _invoke(self, batch: list[Any]) -> Outcome:
        self.counters.batches += 1
        self.counters.records += len(batch)
        try:
            response = self.invoke(lambda_event(batch, self.bootstrap))
        except FunctionError as err:
            return Outcome(False, error=f"{err.error_type}: {err.error_message}")
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

    def _drop_expired(self, batch: list[Any]) -> list[Any]:
        max_age = self.mapping.maximum_record_age_seconds
        if max_age < 0:
            return batch
        cutoff = (time.time() - max_age) * 1000
        expired = [r for r in batch if r.timestamp < cutoff]
        if expired:
            self._dead_letter(expired, "record exceeded MaximumRecordAgeInSeconds", 0)
        return [r for r in batch if r.timestamp >= cutoff]

    def _dead_letter(self, records: list[Any], reason: str, attempts: int) -> None:
        """Send records to the on-failure destination (or drop them, as Lambda does without one)."""
        self.counters.dead_lettered += len(records)
        topic = self.mapping.on_failure_topic
        if not topic:
            return
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap.split(","), acks="all", retries=5)
        for r in records:
            headers = [
                *(r.headers or []),
                ("lambda-failure-reason", reason[:1000].encode()),
                ("lambda-function", self.mapping.function_id.encode()),
                ("lambda-mapping", self.mapping.name.encode()),
                ("lambda-attempts", str(attempts + 1).encode()),
                ("lambda-source-topic", r.topic.encode()),
                ("lambda-source-partition", str(r.partition).encode()),
                ("lambda-source-offset", str(r.offset).encode()),
            ]
            self._producer.send(topic, key=r.key, value=r.value, headers=headers)
        self._producer.flush(timeout=10)

    def _report(self, state: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_status > 1.0:
            self._last_status = now
            write_status("pollers", f"{self.mapping.name}-{self.index}", {"state": state, **self.counters.__dict__})


def main(argv: list[str]) -> None:
    """`python -m goodsdrop_local.kafka_poller <mapping name> [index]`: run one poller until SIGTERM."""
    from goodsdrop.settings import settings
    from goodsdrop_local.execution import FunctionPool
    from goodsdrop_local.template import load

    app = load()
    mapping = next(m for m in app.kafka if m.name == argv[0])
    function = FunctionPool(app.functions).get(mapping.function_id)
    poller = MappingPoller(mapping, function.invoke, settings.kafka_bootstrap, int(argv[1]) if len(argv) > 1 else 0)
    signal.signal(signal.SIGTERM, lambda *_: poller.stop())
    function.handler  # noqa: B018 - import the function before polling, like a Lambda init
    poller.run()


if __name__ == "__main__":
    main(sys.argv[1:])
