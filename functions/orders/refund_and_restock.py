"""OrderCancelled / OrderLineCancelled / OrderLineReturned consumer: refund the lines and put their units back.

Batch handling (poison records dead-lettered at once, transient faults retried): goodsdrop.consumers.
"""

from aws_lambda_powertools import Logger

from goodsdrop.consumers import run_saga_step
from goodsdrop.saga import REFUND_AND_RESTOCK

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return run_saga_step(event, context, REFUND_AND_RESTOCK, logger)
