"""Kafka consumer of StockChanged: keeps the stock and detail caches coherent.

Partial batch response: a record that fails is reported alone and retried by the event-source
mapping (then dead-lettered); the records around it are not processed twice.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

from goodsdrop.events import Envelope
from goodsdrop.stock import apply_stock_changed

logger = Logger()
processor = BatchProcessor(event_type=EventType.Kafka)


def record_handler(record: KafkaEventRecord) -> None:
    event = Envelope.from_record(record)
    logger.debug("stock changed", extra={"event_id": event.event_id, "payload": event.payload})
    apply_stock_changed(event.payload)


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
