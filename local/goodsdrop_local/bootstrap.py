"""After the servers are up: Kafka topics, AWS resources, schema migrations, demo data.

Every step is idempotent, so `make up` can run it on every start.
"""

from __future__ import annotations

import secrets
from contextlib import suppress

import pymysql
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from goodsdrop import topics
from goodsdrop.clients import aws_client, mysql_connection
from goodsdrop.settings import settings
from goodsdrop_local import demo_data, migrations
from goodsdrop_local.template import load

PARTITIONS = 3


def ensure_topics() -> list[str]:
    """Create every topic the product and the template's mappings use; returns those created now."""
    app = load()
    wanted = {topics.topic(name) for name in topics.ALL}
    for mapping in app.kafka:
        wanted.update(mapping.topics)
        if mapping.on_failure_topic:
            wanted.add(mapping.on_failure_topic)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="goodsdrop-bootstrap")
    try:
        existing = set(admin.list_topics())
        missing = sorted(wanted - existing)
        for name in missing:
            with suppress(TopicAlreadyExistsError):  # another `make up` raced us to it
                admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
        return missing
    finally:
        admin.close()


def ensure_aws_resources() -> None:
    """The JWT signing key in SSM Parameter Store and the verified SES sender."""
    ssm = aws_client("ssm")
    try:
        ssm.get_parameter(Name=settings.jwt_parameter_name, WithDecryption=True)
    except ssm.exceptions.ParameterNotFound:
        ssm.put_parameter(Name=settings.jwt_parameter_name, Value=secrets.token_urlsafe(48), Type="SecureString")
    aws_client("ses").verify_email_identity(EmailAddress=settings.mail_sender)


def ensure_schema() -> list[str]:
    """Apply pending migrations."""
    return migrations.apply(mysql_connection())


def run() -> None:
    """Everything above, then the demo data."""
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
