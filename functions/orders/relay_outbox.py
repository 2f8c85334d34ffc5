"""Scheduled: publish the outbox rows left unsent (their process died between commit and publish, or Kafka was away)."""

from aws_lambda_powertools import Logger

from goodsdrop.outbox import sweep

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:  # noqa: ARG001 - Lambda's signature (a schedule)
    published = sweep()
    if published:
        logger.info("outbox rows published by the sweep", extra={"published": published})
    return {"published": published}
