"""Failure consumer (PaymentFailed, OrderPersistenceFailed, StockPersistenceFailed): refund if paid, release, FAILED.

Batch handling (partial batch response, idempotent retries): goodsdrop.consumers.
"""

from aws_lambda_powertools import Logger

from goodsdrop.consumers import run_saga_step
from goodsdrop.saga import compensate_order

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return run_saga_step(event, context, compensate_order, logger)
