"""OrderCancelled / OrderLineCancelled / OrderLineReturned consumer: refund the lines and put their units back.

Batch handling (partial batch response, idempotent retries): goodsdrop.consumers.
"""

from aws_lambda_powertools import Logger

from goodsdrop.consumers import run_saga_step
from goodsdrop.saga import refund_and_restock

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return run_saga_step(event, context, refund_and_restock, logger)
