"""PaymentSucceeded consumer: the order and its lines in MySQL in one transaction, then OrderPlaced.

Batch handling (poison records dead-lettered at once, transient faults retried): goodsdrop.consumers.
"""

from aws_lambda_powertools import Logger

from goodsdrop.consumers import run_saga_step
from goodsdrop.saga import PERSIST_ORDER
from goodsdrop.telemetry import capture_handler

logger = Logger()


@capture_handler
@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return run_saga_step(event, context, PERSIST_ORDER, logger)
