"""OrderRequested consumer: record the reservation, charge the mock gateway once, PaymentSucceeded / PaymentFailed.

Partial batch response: a record that fails is reported alone; the event-source mapping retries
it (and the records after it in its partition) and finally dead-letters it. The step is
idempotent, so records delivered again are harmless.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

from goodsdrop.events import Envelope
from goodsdrop.saga import acknowledge_outcomes, process_payment

logger = Logger()
processor = BatchProcessor(event_type=EventType.Kafka)


def record_handler(record: KafkaEventRecord) -> None:
    event = Envelope.from_record(record)
    outcome = process_payment(event)
    logger.debug("process_payment", extra={"event_id": event.event_id, "type": event.type,
                                           "order_id": event.correlation_id, "outcome": outcome})


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    acknowledge_outcomes()  # the batch's outcomes reach the broker before its offsets are committed
    return response
