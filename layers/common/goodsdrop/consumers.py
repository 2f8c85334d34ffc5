"""The one way a Kafka consumer function runs its step over a batch: every consumer of the template uses it.

Per record: `decode_record` reads the envelope and checks its type, version and payload schema
(and that the step takes this type), the step runs, and the events it committed to the outbox
are handed to the producer at once (goodsdrop.outbox). When a record raises,
goodsdrop.failures.classify decides:

- transient (a store, the broker or the gateway briefly away, a lock timeout, a deadlock): the
  record is reported in `batchItemFailures`; the event-source mapping retries it, and the records
  after it in its partition, with backoff. Steps are idempotent, so a retry is harmless.
- permanent (it can never succeed as it is): the record is written to the dead-letter topic now,
  with its reason, source topic/partition/offset and the consumer's name (goodsdrop.dead_letters),
  and the batch carries on - on AWS too, where the mapping's own on-failure destination would
  only take it after every retry. The batch's dead letters are confirmed together before the
  function returns; one the broker did not take is reported as a failed record instead, so
  nothing is dropped silently.

Powertools' `BatchProcessor` runs with `raise_on_entire_batch_failure=False`: a batch whose every
record failed transiently returns its `batchItemFailures` like any other instead of raising
`BatchProcessingError` (which would fail the whole invocation), and a permanent failure never
reaches it. Before the function returns, the batch's outbox rows are confirmed and marked sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from goodsdrop import dead_letters, outbox
from goodsdrop.clients import kafka_producer
from goodsdrop.events import Envelope, decode_record
from goodsdrop.failures import classify
from goodsdrop.stock import apply_stock_changed
from goodsdrop.telemetry import Metric, count, timed, traced

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

DEAD_LETTER_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Step:
    """What one consumer does: its `name` (processed-event records, dead letters), the event types it takes."""

    name: str
    accepts: tuple[str, ...]
    apply: Callable[[Envelope], Any]


def _cache_stock_level(event: Envelope) -> str:
    apply_stock_changed(event.payload)
    return "cached"


# The StockChanged consumer (functions/stock/on_stock_changed.py); the saga's steps are in goodsdrop.saga.
STOCK_CACHE = Step("stock-cache", ("StockChanged",), _cache_stock_level)


def run_saga_step(event: dict[str, Any], context: Any, step: Step, logger: Logger) -> dict[str, Any]:
    """Apply `step` to every record of a Kafka batch; returns Lambda's partial batch response."""
    # Imported here: the API functions that cancel or place orders import this module through
    # goodsdrop.saga (for `Step`), and Powertools' batch utility is ~10 % of their cold start.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.Kafka, raise_on_entire_batch_failure=False)
    consumer = getattr(context, "function_name", "") or step.name
    letters: list[tuple[dict[str, Any], Any]] = []  # (record, the dead letter's future)

    def record_handler(record: KafkaEventRecord) -> None:
        raw = record.raw_event
        where = {"topic": raw.get("topic"), "partition": raw.get("partition"), "offset": raw.get("offset")}
        try:
            envelope = decode_record(raw, step.accepts)
            order_id = envelope.payload.get("orderId") if isinstance(envelope.payload, dict) else None
            with traced(step.name, str(order_id) if order_id else None), \
                    timed(Metric.SAGA_STEP_LATENCY, Step=step.name):
                outcome = step.apply(envelope)
        except Exception as err:
            failure = classify(err)
            if failure.transient:
                logger.warning("record failed; the mapping retries it",
                               extra={**where, "reason": failure.reason, "detail": failure.detail})
                raise
            letters.append((raw, dead_letters.write(raw, failure, consumer, step.name, wait=False)))
            count(Metric.DEAD_LETTERED_RECORDS)
            logger.error("record dead-lettered", extra={**where, "reason": failure.reason, "detail": failure.detail})
            return
        outbox.publish_committed(wait=False)
        logger.debug(step.name, extra={**where, "event_id": envelope.event_id, "type": envelope.type,
                                       "order_id": envelope.correlation_id, "outcome": outcome})

    try:
        response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                            context=context)
    finally:
        outbox.publish_committed(wait=True)
    return _confirm_dead_letters(response, letters, logger)


def _confirm_dead_letters(response: Mapping[str, Any], letters: list[tuple[dict[str, Any], Any]],
                          logger: Logger) -> dict[str, Any]:
    """Wait for the batch's dead letters; a record whose dead letter the broker refused is reported failed."""
    if not letters:
        return dict(response)
    kafka_producer().flush(DEAD_LETTER_TIMEOUT_SECONDS)
    failed = []
    for raw, future in letters:
        try:
            future.get(timeout=0)
        except Exception as err:  # noqa: BLE001 - any refusal: the mapping delivers the record again
            logger.warning("dead letter not written; the record is retried", extra={"error": str(err)})
            failed.append({"itemIdentifier": {"partition": f"{raw.get('topic')}-{raw.get('partition')}",
                                              "offset": raw.get("offset")}})
    if failed:
        response = {**response, "batchItemFailures": [*response.get("batchItemFailures", []), *failed]}
    return dict(response)
