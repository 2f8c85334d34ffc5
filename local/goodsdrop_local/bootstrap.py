"""After the servers are up: Kafka topics, AWS resources, schema migrations, demo data.

Topics and schema come from `provision` (what a deploy to AWS runs too); the AWS resources
(the JWT signing key in SSM, the SES sender) and the demo data are the local stack's. Every step
is idempotent, so `make up` can run it on every start.
"""

from __future__ import annotations

import secrets

import pymysql

from goodsdrop.clients import aws_client
from goodsdrop.settings import settings
from goodsdrop_local import demo_data
from provision.kafka_topics import ensure_topics
from provision.migrations import ensure_schema


def ensure_aws_resources() -> None:
    """The JWT signing key in SSM Parameter Store and the verified SES sender."""
    ssm = aws_client("ssm")
    try:
        ssm.get_parameter(Name=settings.jwt_parameter_name, WithDecryption=True)
    except ssm.exceptions.ParameterNotFound:
        ssm.put_parameter(Name=settings.jwt_parameter_name, Value=secrets.token_urlsafe(48), Type="SecureString")
    aws_client("ses").verify_email_identity(EmailAddress=settings.mail_sender)


def run() -> None:
    """Topics, AWS resources, schema, then the demo data."""
    created = ensure_topics()
    ensure_aws_resources()
    try:
        applied = ensure_schema()
    except pymysql.err.OperationalError as err:
        raise SystemExit(f"MySQL refused the migrations: {err}") from err
    loaded = demo_data.load()
    print(f"bootstrap: topics created {len(created)}, migrations applied {applied or 'none'}, demo data: {loaded}")


if __name__ == "__main__":
    run()
