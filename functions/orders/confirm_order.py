"""OrderPlaced consumer: sold units persisted to MySQL stock, reservation consumed, order CONFIRMED, OrderConfirmed.

Batch handling (poison records dead-lettered at once, transient faults retried): goodsdrop.consumers.
"""

from aws_lambda_powertools import Logger

from goodsdrop.consumers import run_saga_step
from goodsdrop.saga import CONFIRM_ORDER
from goodsdrop.telemetry import capture_handler

logger = Logger()


@capture_handler
@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return run_saga_step(event, context, CONFIRM_ORDER, logger)
