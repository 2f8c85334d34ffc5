"""Kafka consumer of StockChanged: keeps the stock and detail caches coherent.

Batch handling (poison records dead-lettered at once, transient faults retried): goodsdrop.consumers.
"""

from aws_lambda_powertools import Logger

from goodsdrop.consumers import STOCK_CACHE, run_saga_step

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return run_saga_step(event, context, STOCK_CACHE, logger)
