"""Scheduled: release reservations not confirmed within settings.reservation_ttl_seconds (order EXPIRED)."""

from aws_lambda_powertools import Logger

from goodsdrop.saga import expire_due_reservations

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:  # noqa: ARG001 - Lambda's signature (a schedule)
    expired = expire_due_reservations()
    if expired:
        logger.debug("reservations expired", extra={"expired": expired})
    return {"expired": expired}
