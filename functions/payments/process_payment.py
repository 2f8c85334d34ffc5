"""OrderRequested consumer: record the reservation, charge the mock gateway once, PaymentSucceeded / PaymentFailed.

Batch handling (partial batch response, idempotent retries): goodsdrop.consumers.
"""

from aws_lambda_powertools import Logger

from goodsdrop.consumers import run_saga_step
from goodsdrop.saga import process_payment

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return run_saga_step(event, context, process_payment, logger)
