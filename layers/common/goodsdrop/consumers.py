"""The one way a Kafka consumer function runs a saga step over its batch.

Each record is parsed into an `Envelope` and handed to the step; a record whose step raises is
reported alone in the partial batch response (the event-source mapping retries it, and the
records after it in its partition, then dead-letters it). Steps are idempotent, so records
delivered again are harmless. The batch's outcome events reach the broker before the function
returns, so they are published before the mapping commits the batch's offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

from goodsdrop.events import Envelope
from goodsdrop.saga import acknowledge_outcomes

SagaStep = Callable[[Envelope], Any]


def run_saga_step(event: dict[str, Any], context: Any, step: SagaStep, logger: Logger) -> dict[str, Any]:
    """Apply `step` to every record of a Kafka batch; returns Lambda's partial batch response."""
    processor = BatchProcessor(event_type=EventType.Kafka)

    def record_handler(record: KafkaEventRecord) -> None:
        envelope = Envelope.from_record(record)
        outcome = step(envelope)
        logger.debug(step.__name__, extra={"event_id": envelope.event_id, "type": envelope.type,
                                           "order_id": envelope.correlation_id, "outcome": outcome})

    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    acknowledge_outcomes()
    return response
